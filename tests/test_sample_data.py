"""The shipped sample is byte-identical to PhysioNet's published files."""

import hashlib
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"


def test_shipped_sample_matches_sha256sums():
    folder = SAMPLE_DIR / "eegbci_S001"
    lines = (folder / "SHA256SUMS").read_text().split("\n")
    entries = [line.split() for line in lines if line.strip()]
    assert len(entries) == 5
    for digest, name in entries:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_gitattributes_keeps_data_binary():
    text = (SAMPLE_DIR.parents[1] / ".gitattributes").read_text()
    assert "data/** -text" in text
