"""Training: the generic LightningModule, datamodule, callbacks and checkpoint I/O.

Entry points: :func:`neurofm.training.fit.fit` (what ``neurofm fit`` runs),
:func:`neurofm.training.run.load_run` (read a run folder back), and
:func:`~neurofm.training.pretrained.save_pretrained` /
:func:`~neurofm.training.pretrained.from_pretrained` (the model hub form of any registered model).
Submodules import Lightning; import them directly.
"""
