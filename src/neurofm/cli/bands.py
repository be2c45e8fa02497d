"""``neurofm bands``: write a next-band dataset in the ``.npz`` folder format (train/, val/)."""

from __future__ import annotations

from typing import Optional


def bands(
    output: str,
    synthetic: bool = False,
    store: Optional[str] = None,
    window_length: int = 500,
    stride: Optional[int] = None,
    bands: Optional[list] = None,
    normalize: bool = False,
    max_train_windows: Optional[int] = None,
    max_val_windows: Optional[int] = None,
    n_train: int = 32,
    n_val: int = 8,
    n_chans: int = 4,
    sfreq: float = 100.0,
) -> None:
    """Write cumulative frequency bands as ``<output>/train/*.npz`` and ``<output>/val/*.npz``.

    Each file holds ``signal`` (C, T), ``cumulative_bands`` (n_bands, C, T), ``bands``
    (n_bands, 2) Hz and ``sfreq``, the format ``data.format: band_npz`` reads. Either the
    deterministic synthetic dataset (``--synthetic true``: one sinusoid per band and channel, the
    same files for the same arguments) or the windows of a prepared store (``--store``), bands
    computed with the store's sampling rate.

    Args:
        output: folder to write (``train/`` and ``val/`` inside).
        synthetic: write the synthetic dataset instead of reading a store.
        store: prepared store whose train / val windows are written.
        window_length: window length in samples.
        stride: step between window starts (default ``window_length``).
        bands: ``[[low, high], ...]`` Hz (default delta, theta, alpha, beta, gamma).
        normalize: apply the store's robust scaler.
        max_train_windows: write the first N train windows only.
        max_val_windows: write the first N val windows only.
        n_train: synthetic train samples.
        n_val: synthetic val samples.
        n_chans: synthetic channels.
        sfreq: synthetic sampling rate (Hz).
    """
    from neurofm.errors import ConfigError
    from neurofm.tokenizers.band_data import synthetic_band_folder, write_band_folder
    from neurofm.tokenizers.bands import DEFAULT_BANDS

    band_list = [list(b) for b in (bands or DEFAULT_BANDS)]
    if synthetic == (store is not None):
        raise ConfigError("bands: give --synthetic true or --store <prepared store>, not both")
    if synthetic:
        counts = synthetic_band_folder(
            output,
            n_train=n_train,
            n_val=n_val,
            n_chans=n_chans,
            n_times=window_length,
            sfreq=sfreq,
            bands=band_list,
        )
    else:
        from neurofm.config import build_config
        from neurofm.training.config import DataConfig
        from neurofm.training.data import build_dataset, data_sfreq, open_data

        data = build_config(
            DataConfig,
            {
                "store": store,
                "window_length": window_length,
                "stride": stride,
                "bands": band_list,
                "normalize": normalize,
                "max_train_windows": max_train_windows,
                "max_val_windows": max_val_windows,
            },
            prefix="bands",
        )
        prepared = open_data(data)
        splits = {split: build_dataset(prepared, data, split) for split in ("train", "val")}
        rate = data_sfreq(prepared, splits["train"])
        counts = write_band_folder(output, splits, sfreq=rate, bands=band_list)
    print(f"wrote {counts} samples to {output}")
