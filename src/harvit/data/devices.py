"""Research-device files: Axivity AX3/AX6 ``.cwa``, GENEActiv ``.bin``, ActiGraph ``.gt3x``.

Each format is read by a maintained reader, never a parser of our own:

- ``.cwa`` and ``.bin``: ``actfast`` (a dependency), in its lenient mode: blocks that fail their checksum are
  skipped and counted (``info["blocks_skipped"]``), the rest of the file is kept;
- ``.gt3x``: ``pygt3x`` (GPL-3.0, the optional extra ``harvit[gt3x]``), which reads the acceleration that
  ``actfast`` leaves empty for these files; without it, ``actfast`` is tried and a file it returns no samples
  for is refused with one line naming the extra. Idle-sleep-mode stretches are filled by ``pygt3x`` with the
  last sample (counted in ``info["idle_sleep_samples"]``).

Files larger than :data:`SLICE_BYTES` (a ``.cwa`` or ``.bin`` of more than a few hours) are read a slice at a time
(:func:`device_slices`): the file's header and a run of its blocks (``.cwa``) or pages (``.bin``) are written to a
temporary file that ``actfast`` reads, so memory does not grow with the recording. Both formats time each block
or page on its own, so the slices read sample for sample as the whole file does. ``.gt3x`` files are read whole.

Times are the device's own clock: local wall-clock time, no time zone, as int64 nanoseconds since
1970-01-01 (a naive date-time). Acceleration is in g, gyroscope (AX6) in degrees per second.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

DEVICE_SUFFIXES: tuple[str, ...] = (".cwa", ".bin", ".gt3x")
GT3X_EXTRA = "pip install 'harvit[gt3x]'"
"""The command that installs the optional ``.gt3x`` reader."""
CWA_BLOCK_BYTES = 512
"""An AX3/AX6 file is a header and data blocks of this size: a file of another size was cut short."""
CWA_HEADER_BYTES = 1024
"""The header of an AX3/AX6 file, before its first data block."""
SLICE_BYTES = 8 << 20
"""A ``.cwa`` or ``.bin`` file larger than this is read in slices of about this size (:func:`device_slices`): 8 MB
is about 2 million samples of an AX3 (150 MB of arrays), an hour at 100 Hz of a GENEActiv."""
GENEACTIV_PAGE = b"Recorded Data"
"""The first line of each page of a GENEActiv ``.bin`` file (what comes before the first one is the header)."""
_DEVICE_NAMES = {"Axivity CWA": "Axivity", "GeneActiv BIN": "GENEActiv", "Actigraph GT3X": "ActiGraph GT3X"}


def is_device_file(path: str | Path) -> bool:
    """Whether ``path``'s name ends in a device suffix (:data:`DEVICE_SUFFIXES`, any case)."""
    return Path(path).name.lower().endswith(DEVICE_SUFFIXES)


@dataclass
class DeviceRecording:
    """One device file's samples.

    Attributes:
        time_ns: int64 [N] local wall-clock time of each sample, ns since 1970-01-01 (naive, as the device
            writes it), in file order.
        acc: float32 [N, 3] acceleration in g.
        gyro: float32 [N, 3] angular rate in deg/s, or None (no gyroscope).
        rate_hz: nominal sample rate in Hz (the file's configured rate where it states one).
        device: the device, e.g. ``"Axivity AX3"``, ``"GENEActiv"``, ``"ActiGraph GT3X"``.
        info: the reader and its version, serial number, blocks or samples skipped, warnings.
    """

    time_ns: np.ndarray
    acc: np.ndarray
    gyro: np.ndarray | None
    rate_hz: float
    device: str
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.time_ns)


def read_device(path: str | Path) -> DeviceRecording:
    """Read a device file (see the module docstring for the reader of each format).

    Raises:
        HarvitError: one line for a missing, empty, unknown or unreadable file, a file with no acceleration
            samples, or a ``.gt3x`` file without the optional reader.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise HarvitError(f"{path}: no such device file")
    if not is_device_file(path):
        raise HarvitError(f"{path.name}: not a device file; expected one of {', '.join(DEVICE_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise HarvitError(f"{path}: the file is empty")
    if path.name.lower().endswith(".gt3x"):
        try:
            import pygt3x  # noqa: F401
        except ImportError:
            return _read_actfast(path, f"; install the optional .gt3x reader with: {GT3X_EXTRA}")
        return _read_pygt3x(path)
    return _read_actfast(path)


def is_sliced(path: str | Path) -> bool:
    """Whether :func:`open_recording <harvit.data.streams.open_recording>` reads ``path`` in slices: a ``.cwa`` or
    ``.bin`` file larger than :data:`SLICE_BYTES`."""
    path = Path(path)
    return path.name.lower().endswith((".cwa", ".bin")) and path.stat().st_size > SLICE_BYTES


def device_slices(path: str | Path) -> Iterator[DeviceRecording]:
    """A ``.cwa`` or ``.bin`` file's samples, a slice of about :data:`SLICE_BYTES` at a time, in file order.

    Each slice is the file's header and a run of whole ``.cwa`` blocks (:data:`CWA_BLOCK_BYTES`) or ``.bin``
    pages (from a :data:`GENEACTIV_PAGE` line to the next), written to a temporary file and read by ``actfast``
    (:func:`read_device`'s reader and lenient mode); each slice's ``info`` counts its own skipped blocks. A slice
    whose blocks are all corrupt yields no samples; a partial last ``.cwa`` block is dropped
    (:func:`partial_block_bytes` tells of one). Memory: one slice's samples.

    Raises:
        HarvitError: the file is not a ``.cwa`` or ``.bin`` file, or ``actfast`` cannot read a slice.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".cwa"):
        pieces = _cwa_pieces(path)
    elif name.endswith(".bin"):
        pieces = _bin_pieces(path)
    else:
        raise HarvitError(f"{path.name}: only .cwa and .bin files are read in slices")
    suffix = path.suffix
    for piece in pieces:
        fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="harvit-slice-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(piece)
            rec = _read_actfast(Path(tmp), empty_ok=True, name=path.name)
        finally:
            os.unlink(tmp)
        yield rec


def _cwa_pieces(path: Path) -> Iterator[bytes]:
    """The header + a run of whole blocks, :data:`SLICE_BYTES` at a time."""
    blocks = max(1, SLICE_BYTES // CWA_BLOCK_BYTES) * CWA_BLOCK_BYTES
    with path.open("rb") as f:
        header = f.read(CWA_HEADER_BYTES)
        while True:
            body = f.read(blocks)
            whole = len(body) - len(body) % CWA_BLOCK_BYTES
            if whole == 0:
                return
            yield header + body[:whole]


def _bin_pieces(path: Path) -> Iterator[bytes]:
    """The header + a run of whole pages, about :data:`SLICE_BYTES` at a time (the file's lines as written)."""
    with path.open("rb") as f:
        header: list[bytes] = []
        pages: list[bytes] = []
        size = 0
        for line in f:
            if not pages and not line.startswith(GENEACTIV_PAGE):
                header.append(line)
                continue
            if line.startswith(GENEACTIV_PAGE) and size > SLICE_BYTES:
                yield b"".join(header + pages)
                pages, size = [], 0
            pages.append(line)
            size += len(line)
        if pages:
            yield b"".join(header + pages)


def skipped_blocks(warnings: list[str]) -> int:
    """The corrupt blocks ``actfast``'s lenient read skipped, counted from its warnings."""
    return sum("checksum" in w or "sector" in w for w in warnings)


def partial_block_bytes(path: Path) -> int:
    """Bytes of a partial last block of a ``.cwa`` file (a file cut short), else 0."""
    return path.stat().st_size % CWA_BLOCK_BYTES if path.name.lower().endswith(".cwa") else 0


def _check_samples(path: Path, time_ns: np.ndarray, acc: np.ndarray) -> None:
    if len(time_ns) == 0:
        raise HarvitError(f"{path.name}: the file holds no acceleration samples")
    if acc.ndim != 2 or acc.shape[1] != 3 or len(acc) != len(time_ns):
        raise HarvitError(f"{path.name}: acceleration of shape {list(acc.shape)} for {len(time_ns)} times; "
                          "expected [N, 3]")


def _median_rate(time_ns: np.ndarray) -> float:
    steps = np.diff(time_ns[: 1_000_000])
    steps = steps[steps > 0]
    return float(1e9 / np.median(steps)) if steps.size else 0.0


def _stated_rate(metadata: dict) -> float:
    """The sample rate a file's metadata states (AX3/AX6 ``sample_rate_hz``, GENEActiv ``Measurement
    Frequency``, GT3X ``Sample Rate``), or 0.0."""
    for group in metadata.values():
        for key in ("sample_rate_hz", "Measurement Frequency", "Sample Rate"):
            if key in group:
                try:
                    return float(str(group[key]).split()[0])
                except ValueError:
                    continue
    return 0.0


def _read_actfast(path: Path, hint: str = "", empty_ok: bool = False, name: str | None = None) -> DeviceRecording:
    """``actfast``'s lenient read of ``path`` (called ``name`` in messages; a slice of another file for
    :func:`device_slices`); ``empty_ok``: a file without samples gives an empty recording instead of an error."""
    import actfast

    name = name or path.name
    try:
        result = actfast.read(str(path), lenient=True)
    except (ValueError, OSError) as e:
        raise HarvitError(f"{name}: cannot read as a device file ({str(e).splitlines()[0][:200]})") from None
    series = [s for s in result["timeseries"].values() if "acceleration" in s]
    if not series or len(series[0]["datetime"]) == 0:
        if empty_ok:
            empty = np.zeros(0, dtype=np.int64)
            return DeviceRecording(empty, np.zeros((0, 3), np.float32), None, _stated_rate(result["metadata"]),
                                   _DEVICE_NAMES.get(result["format"], result["format"]),
                                   {"blocks_skipped": skipped_blocks(result["warnings"]),
                                    "warnings": list(result["warnings"])})
        raise HarvitError(f"{name}: actfast read no acceleration samples from this {result['format']} "
                          f"file{hint}")
    s = series[0]
    time_ns = np.asarray(s["datetime"], dtype=np.int64)
    acc = np.asarray(s["acceleration"], dtype=np.float32)
    _check_samples(Path(name), time_ns, acc)
    gyro = s.get("gyroscope")
    gyro = np.asarray(gyro, dtype=np.float32) if gyro is not None and len(gyro) == len(time_ns) else None
    metadata = result["metadata"]
    warnings = list(result["warnings"])
    device = _DEVICE_NAMES.get(result["format"], result["format"])
    hardware = metadata.get("device", {}).get("hardware_type") or metadata.get("Device Identity", {}).get(
        "Device Type")
    if device == "Axivity" and hardware:
        device = f"Axivity {hardware}"
    serial = (metadata.get("device", {}).get("device_id") or metadata.get("Device Identity", {}).get(
        "Device Unique Serial Code") or metadata.get("info", {}).get("Serial Number"))
    info = {
        "reader": "actfast",
        "reader_version": importlib.metadata.version("actfast"),
        "format": result["format"],
        "serial": serial,
        "blocks_skipped": skipped_blocks(warnings),
        "warnings": warnings,
    }
    if partial_block_bytes(path):
        info["truncated_bytes"] = partial_block_bytes(path)
        warnings.append(f"the file ends in a partial block of {info['truncated_bytes']} bytes (truncated); dropped")
    rate = _stated_rate(metadata) or _median_rate(time_ns)
    return DeviceRecording(time_ns, acc, gyro, rate, device, info)


@contextmanager
def _collected(logger_name: str) -> Iterator[list[str]]:
    """Gather a library logger's warnings in a list (said once, counted) instead of one log line each."""
    notes: list[str] = []

    class _Gather(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notes.append(record.getMessage())

    logger = logging.getLogger(logger_name)
    handler, propagate = _Gather(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield notes
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _read_pygt3x(path: Path) -> DeviceRecording:
    from pygt3x.reader import FileReader

    try:
        with _collected("pygt3x") as notes, FileReader(str(path)) as reader:
            frame = reader.to_pandas()
            rate = float(reader.info.sample_rate or 0)
            serial = reader.info.serial_number
            kind = reader.info.device_type
            tz = reader.info.timezone
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, AssertionError) as e:
        raise HarvitError(f"{path.name}: cannot read as a .gt3x file ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160] if str(e) else 'truncated or corrupt'})") from None
    seconds = frame.index.to_numpy(dtype=np.float64)
    whole = np.floor(seconds)
    time_ns = whole.astype(np.int64) * 1_000_000_000 + np.round((seconds - whole) * 1e9).astype(np.int64)
    acc = frame[["X", "Y", "Z"]].to_numpy(dtype=np.float32)
    _check_samples(path, time_ns, acc)
    idle = int(frame["IdleSleepMode"].sum()) if "IdleSleepMode" in frame else 0
    info = {
        "reader": "pygt3x",
        "reader_version": importlib.metadata.version("pygt3x"),
        "format": "Actigraph GT3X",
        "serial": serial,
        "device_type": kind,
        "utc_offset": str(tz) if tz is not None else None,
        "idle_sleep_samples": idle,
        "blocks_skipped": 0,
        "warnings": notes[:20],
        "reader_warnings": len(notes),
    }
    if notes:
        log.warning("%s: the reader warned %d time(s), e.g. %s", path.name, len(notes), notes[0])
    return DeviceRecording(time_ns, acc, None, rate or _median_rate(time_ns), "ActiGraph GT3X", info)
