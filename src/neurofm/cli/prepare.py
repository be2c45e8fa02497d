"""``neurofm prepare``: raw recordings -> prepared store (the work is in neurofm.data.prepare)."""

from __future__ import annotations

from typing import Any, Optional, Union


def prepare(
    *,
    recipe: Optional[Union[str, dict]] = None,
    inputs: Optional[Union[list, dict, str]] = None,
    output: Optional[str] = None,
    preprocessing: Optional[list] = None,
    splits: Optional[dict] = None,
    scaler: Union[dict, bool, None] = True,
    name: Optional[str] = None,
    jobs: Optional[int] = None,
    reader: Optional[dict] = None,
    channel_policy: Optional[str] = None,
    no_scaler: bool = False,
) -> None:
    """Preprocess recordings into a prepared store with splits and a train-fitted scaler.

    Examples: ``neurofm prepare configs/prepare/eegbci_sample.yaml`` (same as ``--config``),
    ``neurofm prepare --recipe eegbci_sample --output prepared/eegbci --jobs 2``. Options given
    after the config file override it; sections given beside a recipe override the recipe's;
    dotted overrides such as ``--splits.window 4`` apply last. The resolved config is written to
    the output folder.

    Args:
        recipe: a registered dataset recipe (``neurofm list datasets``), or
            ``{name: eegbci, path: DIR}``.
        inputs: files, folders of recordings (companion files such as ``.vmrk``, ``.eeg``,
            ``.fdt``, ``.dat`` go with their header) or glob patterns, or
            ``{bids_root: DIR, subjects: [...], ...}``.
        output: folder of the prepared store.
        preprocessing: steps, e.g. ``[{name: bandpass, l_freq: 0.5, h_freq: 40}]``.
        splits: split policy: ``by`` (subject / session / recording / time), ``fractions``,
            ``assign``, ``window`` and ``gap`` (s), ``seed``.
        scaler: ``{kind: robust, max_samples: N}``, fitted on the train split; ``null`` or
            ``false`` stores none (e.g. spike counts modelled as counts); default: a robust
            scaler.
        name: dataset name (default: the output folder's name).
        jobs: recordings prepared in parallel.
        reader: options of the file reader, e.g. ``{data_format: int16}`` for Neuroscan .cnt
            files whose header does not tell the sample width, ``{allow_truncated: true}``,
            ``{sfreq: 250, ch_types: eeg}`` for ``.npy`` arrays (samples x channels need
            ``ch_names`` or the array's own orientation).
        channel_policy: recordings with other channel sets: ``same`` (refuse, the default),
            ``intersect`` (keep the channels all share) or ``keep`` (store each as it is).
        no_scaler: store no scaler.
    """
    from neurofm.cli._context import take_overrides
    from neurofm.config import apply_overrides
    from neurofm.data.prepare import prepare as run_prepare

    given = {
        "recipe": recipe,
        "inputs": inputs,
        "output": output,
        "preprocessing": preprocessing,
        "splits": splits,
        "name": name,
        "jobs": jobs,
        "reader": reader,
        "channel_policy": channel_policy,
    }
    data: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if no_scaler or scaler is None or scaler is False:
        data["scaler"] = None
    elif isinstance(scaler, dict):
        data["scaler"] = scaler
    data = apply_overrides(data, take_overrides())
    store = run_prepare(data)
    sizes = {k: len(v) for k, v in store.manifest.get("splits", {}).items()}
    print(f"prepared {len(store)} recordings into {store.root} (segments per split: {sizes})")
