"""Training: the generic LightningModule, datamodule, callbacks, checkpoint I/O and run folders.

Entry points: :func:`neurofm.training.fit.fit` (what ``neurofm fit`` runs),
:func:`neurofm.training.run.load_run` (read a run folder back), and
:func:`~neurofm.training.pretrained.save_pretrained` /
:func:`~neurofm.training.pretrained.from_pretrained` (the model hub form of any registered model).
Import submodules directly. Only ``fit``, ``module``, ``datamodule`` and ``callbacks`` import
Lightning; ``run``, ``run_folder``, ``checkpoint``, ``pretrained``, ``config`` and ``data`` do not
(a test checks it), so a run is read back without the training stack.
"""
