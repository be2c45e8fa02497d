"""File-level checks run before a vendor reader: format sniffing, emptiness, truncation."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from neurofm.errors import RecordingError

# extension (lower case, longest first) -> format name
EXTENSIONS: dict[str, str] = {
    "-ave.fif.gz": "fif-evoked",
    "_ave.fif.gz": "fif-evoked",
    "-ave.fif": "fif-evoked",
    "_ave.fif": "fif-evoked",
    ".fif.gz": "fif",
    ".fif": "fif",
    ".edf": "edf",
    ".bdf": "bdf",
    ".gdf": "gdf",
    ".vhdr": "brainvision",
    ".set": "eeglab",
    ".ds": "ctf",
    ".con": "kit",
    ".sqd": "kit",
    ".lay": "persyst",
    ".cnt": "cnt",
    ".mff": "egi",
    ".egi": "egi",
    ".snirf": "snirf",
    ".npy": "npy",
    ".npz": "npz",
    ".mat": "mat",
    ".nwb": "nwb",
    ".txt": "text",
    ".csv": "text",
    ".tsv": "text",
}

# MAT 5 top-level element types: miMATRIX, miCOMPRESSED
_MAT5_ELEMENTS = {14, 15}

# format -> the file signatures its content may start with
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "edf": (b"0       ",),
    "bdf": (b"\xffBIOSEMI",),
    "npy": (b"\x93NUMPY",),
    "npz": (b"PK\x03\x04",),
    "nwb": (b"\x89HDF\r\n\x1a\n",),
    "mat": (b"MATLAB 5.0", b"\x89HDF\r\n\x1a\n"),
    "brainvision": (b"Brain Vision", b"BrainVision", b"\xef\xbb\xbfBrain"),
    "fif": (b"\x00\x00\x00\x64", b"\x1f\x8b"),
    "fif-evoked": (b"\x00\x00\x00\x64", b"\x1f\x8b"),
    "eeglab": (b"MATLAB 5.0", b"\x89HDF\r\n\x1a\n"),
    "gdf": (b"GDF",),
}


def format_from_name(path: Path) -> str:
    """The format a file name announces; RecordingError when the extension is unknown."""
    name = path.name.lower()
    for ext, fmt in sorted(EXTENSIONS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(ext):
            return fmt
    if (path.is_dir() and (path / "c,rfDC").exists()) or name.startswith("c,rf"):
        return "bti"
    raise RecordingError(
        f"unknown file extension {path.suffix!r}; readable: {sorted(set(EXTENSIONS))}",
        path=str(path),
    )


def check_file(path: Path, fmt: str) -> None:
    """Raise a RecordingError for a missing or empty file, or content of another format."""
    if not path.exists():
        raise RecordingError("no such file", path=str(path))
    if path.is_dir():
        return
    size = path.stat().st_size
    if size == 0:
        raise RecordingError("the file is empty (0 bytes)", path=str(path))
    signatures = _MAGIC.get(fmt)
    if signatures is None:
        return
    with open(path, "rb") as fh:
        head = fh.read(16)
    if any(head.startswith(sig) for sig in signatures):
        return
    found = [name for name, sigs in _MAGIC.items() if any(head.startswith(s) for s in sigs)]
    hint = f"; the content looks like {found[0]!r}" if found else ""
    raise RecordingError(
        f"the content does not start like a {fmt!r} file (first bytes {head[:8]!r}){hint}: "
        "mis-named or corrupt",
        path=str(path),
    )


def _field(header: bytes, start: int, stop: int, name: str, path: Path, kind: type) -> float:
    text = header[start:stop].decode("latin-1").strip()
    try:
        return kind(text)
    except ValueError:
        raise RecordingError(
            f"corrupt header: field {name!r} is {text!r}, not a number", path=str(path)
        ) from None


def edf_truncation(path: Path, fmt: str) -> str | None:
    """Compare an EDF/BDF header's record count with the file size.

    Returns a description of the shortfall, or None when the file holds every record the
    header announces. Corrupt header fields raise a RecordingError naming the field.
    """
    with open(path, "rb") as fh:
        header = fh.read(256)
        if len(header) < 256:
            raise RecordingError(
                f"corrupt header: {len(header)} bytes, an EDF header has 256", path=str(path)
            )
        n_signals = int(_field(header, 252, 256, "number of signals", path, int))
        if n_signals <= 0:
            raise RecordingError(
                f"corrupt header: number of signals is {n_signals}", path=str(path)
            )
        header_bytes = 256 * (n_signals + 1)
        signal_header = fh.read(256 * n_signals)
    if len(signal_header) < 256 * n_signals:
        raise RecordingError("truncated inside the signal headers", path=str(path))
    n_records = int(_field(header, 236, 244, "number of data records", path, int))
    record_s = _field(header, 244, 252, "duration of a data record", path, float)
    base = 216 * n_signals  # where the samples-per-record fields start in the signal headers
    samples = [
        int(
            _field(
                signal_header,
                base + 8 * i,
                base + 8 * (i + 1),
                f"samples per record of signal {i}",
                path,
                int,
            )
        )
        for i in range(n_signals)
    ]
    record_bytes = sum(samples) * (3 if fmt == "bdf" else 2)
    if record_bytes <= 0:
        raise RecordingError("corrupt header: data records hold no samples", path=str(path))
    data_bytes = path.stat().st_size - header_bytes
    complete = data_bytes // record_bytes
    if n_records < 0:
        if data_bytes % record_bytes:
            return (
                f"the last data record is incomplete ({data_bytes % record_bytes} of "
                f"{record_bytes} bytes)"
            )
        return None
    if complete < n_records or data_bytes < n_records * record_bytes:
        return (
            f"the header announces {n_records} data records of {record_s:g} s "
            f"({n_records * record_s:g} s) but the file holds {complete} complete records "
            f"({complete * record_s:g} s): truncated"
        )
    return None


def mat5_truncation(path: Path) -> None:
    """Walk the top-level data elements of a MATLAB 5 file (an EEGLAB ``.set``).

    The layout (MathWorks, "MAT-File Format"): a 128-byte header whose last two bytes are the
    endian mark ``IM``/``MI``, then elements, each an 8-byte tag (uint32 type, uint32 byte
    count) and its bytes. A file cut short or with a zeroed tag raises a RecordingError naming
    the byte offset; a MAT file cannot be read in part, so ``allow_truncated`` does not apply.
    HDF5-based (v7.3) files are left to their reader.
    """
    with open(path, "rb") as fh:
        header = fh.read(128)
        if header.startswith(b"\x89HDF"):
            return
        if len(header) < 128:
            raise RecordingError(
                f"corrupt header: {len(header)} bytes, a MAT-file header has 128", path=str(path)
            )
        marks = {b"IM": "<", b"MI": ">"}
        if header[126:128] not in marks:
            raise RecordingError(
                f"corrupt header: endian mark {header[126:128]!r} at byte 126, expected b'IM' "
                "or b'MI'",
                path=str(path),
            )
        endian = marks[header[126:128]]
        size = path.stat().st_size
        offset = 128
        while offset < size:
            tag = fh.read(8)
            if len(tag) < 8:
                raise RecordingError(
                    f"truncated: the file ends {len(tag)} bytes into the element tag at byte "
                    f"{offset}",
                    path=str(path),
                )
            kind, n_bytes = struct.unpack(f"{endian}II", tag)
            if kind not in _MAT5_ELEMENTS:
                raise RecordingError(
                    f"corrupt: the element at byte {offset} has type {kind}, not a MAT "
                    f"array ({sorted(_MAT5_ELEMENTS)})",
                    path=str(path),
                )
            if offset + 8 + n_bytes > size:
                raise RecordingError(
                    f"truncated: the element at byte {offset} announces {n_bytes} bytes but the "
                    f"file ends at byte {size}",
                    path=str(path),
                )
            offset += 8 + n_bytes
            fh.seek(offset)


def brainvision_truncation(vhdr: Path) -> str | None:
    """Check a BrainVision binary file's size against the header's channel count and format."""
    text = vhdr.read_text(encoding="latin-1")
    fields = dict(re.findall(r"^\s*([A-Za-z]+)\s*=\s*(.*?)\s*$", text, flags=re.MULTILINE))
    if fields.get("DataFormat", "BINARY").upper() != "BINARY" or "DataFile" not in fields:
        return None
    data = vhdr.parent / fields["DataFile"]
    if not data.is_file():
        raise RecordingError(
            f"the data file {fields['DataFile']!r} named in the header is missing", path=str(vhdr)
        )
    sizes = {"INT_16": 2, "UINT_16": 2, "INT_32": 4, "IEEE_FLOAT_32": 4}
    width = sizes.get(fields.get("BinaryFormat", "INT_16").upper())
    n_chans = int(fields.get("NumberOfChannels", "0") or 0)
    if width is None or n_chans <= 0:
        return None
    frame = width * n_chans
    size = data.stat().st_size
    if size == 0:
        return f"the data file {data.name!r} is empty"
    if size % frame:
        return (
            f"the data file {data.name!r} has {size} bytes, not a whole number of "
            f"{n_chans}-channel samples of {width} bytes: truncated"
        )
    expected = fields.get("DataPoints")
    if expected and expected.isdigit() and int(expected) != size // frame:
        return (
            f"the header announces {expected} samples but {data.name!r} holds "
            f"{size // frame}: truncated"
        )
    return None
