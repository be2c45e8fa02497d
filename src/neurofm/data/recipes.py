"""Dataset recipes registered in ``DATASETS`` (e.g. the shipped EEG sample)."""
