"""A recording of any length, read in chunks with bounded memory: a device file or a table.

:func:`open_recording` opens a device file (:mod:`harvit.data.devices`: a long ``.cwa`` or ``.bin`` file read a
slice at a time, other device files read whole by their reader and then handed out in chunks) or a table
(``.csv``, ``.tsv``, optionally ``.gz``, or ``.parquet``) that is read chunk by chunk
(``pyarrow.parquet.ParquetFile.iter_batches``; ``pandas.read_csv(chunksize=...)``), so the memory a table takes
does not grow with its length. Iterating a :class:`RecordingStream` yields :class:`SampleChunk` values in file
order; every iteration reads the file again from its start.

Tables: one row per sample, with a header. Column roles by the default names of :mod:`harvit.data.tables`
(time: ``time``, ``timestamp``, ``time_s``, ``t``, or one of them with a unit suffix such as ``timestamp_ms``;
label: ``label``, ``activity``, ``class``; subject and recording columns are not channels), or by ``columns``.
Channels are every other numeric column, named as in the table; plain ``x``, ``y``, ``z`` columns (no sensor
prefix) are the accelerometer and named ``acc_x``, ``acc_y``, ``acc_z``.

Time: a numeric time column's unit is detected from the first chunk (:func:`harvit.data.timebase.detect_unit`)
and kept for the rest; numbers since 1970 are instants (UTC), ISO date-times are read as written. With
``timezone`` (an IANA name such as ``Europe/London``), instants and date-times that carry an offset become that
zone's local wall-clock time; without it they are kept as given (UTC wall-clock for epoch numbers, the written
wall-clock for date-times with an offset). Date-times without an offset are local already and are never
shifted; device files carry the device's local clock and are never shifted either. Numbers that are not since
1970 (seconds from the start) count from 1970-01-01. A table without a time column needs ``rate_hz``: its
samples then count from 1970-01-01 00:00 at that rate.

Acceleration unit: ``g`` for device files; for tables, from the median magnitude of the accelerometer triple in
the first chunk (0.5-2: ``g``; 5-15: ``m/s2``), else ``unknown``.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harvit.data.channels import axis_table
from harvit.data.devices import (
    DeviceRecording,
    device_slices,
    is_device_file,
    is_sliced,
    partial_block_bytes,
    read_device,
    skipped_blocks,
)
from harvit.data.tables import DEFAULT_NAMES, TABLE_SUFFIXES, _sniff, numeric_share
from harvit.data.timebase import UNITS, detect_unit, epoch_unit, median_rate, nominal_rate, suffix_unit
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

G = 9.80665
"""Standard gravity in m/s^2."""
ACC_CHANNELS = ["acc_x", "acc_y", "acc_z"]
GYRO_CHANNELS = ["gyro_x", "gyro_y", "gyro_z"]
ROLE_KEYS = ("time", "label")
"""Keys of ``columns`` that name a role; every other key names a channel."""
G_RANGE = (0.5, 2.0)
MS2_RANGE = (5.0, 15.0)
"""Median accelerometer magnitudes that say the unit is g, or m/s^2."""
PARQUET_OPTIONS = {"pre_buffer": False, "buffer_size": 1 << 22}
"""Read a parquet file's column chunks through a small buffer: with pre-buffering, pyarrow keeps every row
group's buffers until the file is closed, so memory grew with the file's length."""
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


@dataclass
class SampleChunk:
    """Consecutive samples of a recording.

    Attributes:
        time_ns: int64 [n] local wall-clock time of each sample, ns since 1970-01-01 (naive).
        values: float32 [n, C] samples, columns in :attr:`RecordingStream.channels` order (NaN: empty cell).
        labels: object [n] label text per sample (``""`` where unlabelled), or None without a label column.
    """

    time_ns: np.ndarray
    values: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time_ns)


@dataclass
class RecordingStream:
    """A recording read in chunks (see the module docstring); iterate for :class:`SampleChunk` values.

    Attributes:
        channels: C channel names (``acc_x``.. and ``gyro_x``.. for device files; the table's names otherwise).
        rate_hz: nominal sample rate in Hz (a table's: the median step of its first chunk, as a whole number
            of Hz when within 0.5% of one).
        acc_unit: ``g``, ``m/s2`` or ``unknown``.
        source: the file name.
        n_rows: the number of samples when known before reading (device files, parquet), else None.
        device: the device for device files, else None.
        info: how the file was read (reader, time unit, skipped blocks, ...).
    """

    channels: list[str]
    rate_hz: float
    acc_unit: str
    source: str
    _chunks: Callable[[], Iterator[SampleChunk]] = field(repr=False)
    n_rows: int | None = None
    device: str | None = None
    info: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[SampleChunk]:
        return self._chunks()

    def acc_index(self) -> tuple[int, int, int]:
        """Channel indices of the accelerometer's x, y, z (:func:`acc_triple`); raises without one."""
        triple = acc_triple(self.channels)
        if triple is None:
            raise HarvitError(f"{self.source}: no accelerometer triple among channels {', '.join(self.channels)}; "
                              "expected <sensor>_x/_y/_z columns of an accelerometer (e.g. acc_x, acc_y, acc_z)")
        return triple


def acc_triple(channels: list[str]) -> tuple[int, int, int] | None:
    """Indices ``(x, y, z)`` of the accelerometer: the first complete sensor triple whose prefix holds ``acc``
    (``acc``, ``total_acc``, ``body_acc``: ``total`` preferred), else the only complete triple; None otherwise."""
    table, _ = axis_table(channels)
    full = {p: a for p, a in table.items() if len(a) == 3}
    named = [p for p in full if "acc" in p.lower()]
    named.sort(key=lambda p: "total" not in p.lower())
    pick = named[0] if named else (next(iter(full)) if len(full) == 1 else None)
    if pick is None:
        return None
    a = full[pick]
    return a["x"], a["y"], a["z"]


def open_recording(path: str | Path, chunk_rows: int = 1_000_000, columns: dict | None = None,
                   timezone: str | None = None, rate_hz: float | None = None) -> RecordingStream:
    """Open a device file or a table as a :class:`RecordingStream` (see the module docstring).

    Args:
        path: a device file (:data:`harvit.data.devices.DEVICE_SUFFIXES`) or a table file.
        chunk_rows: samples per chunk (the last may be shorter).
        columns: tables only: ``{"time": column, "label": column, <channel>: column, ...}``; channel keys, when
            given, are the channels read (in that order, renamed to the keys); absent roles keep their defaults.
        timezone: IANA zone into which instants and offset date-times are converted (None: kept as given).
        rate_hz: the nominal rate: required for a table without a time column; for other files it replaces the
            estimated rate.

    Raises:
        HarvitError: a missing or unknown file, a table without a header, time column (and no ``rate_hz``) or
            channels, a bad ``columns`` entry or ``timezone``, fewer than two samples.
    """
    path = Path(path).expanduser()
    if chunk_rows < 1:
        raise HarvitError(f"chunk_rows {chunk_rows}: expected >= 1")
    if timezone is not None:
        _check_timezone(timezone)
    if not path.is_file():
        raise HarvitError(f"--recording {path}: no such file")
    if is_device_file(path):
        if columns:
            raise HarvitError(f"{path.name}: a device file's channels are fixed; columns are for tables only")
        if is_sliced(path):
            return _sliced_stream(path, chunk_rows, rate_hz)
        return _device_stream(path, _device_samples(path), chunk_rows, rate_hz)
    if path.name.lower().endswith(TABLE_SUFFIXES):
        return _table_stream(path, chunk_rows, dict(columns or {}), timezone, rate_hz)
    raise HarvitError(f"--recording {path.name}: unknown file type; expected a device file "
                      f"(.cwa, .bin, .gt3x) or a table ({', '.join(TABLE_SUFFIXES)})")


def _check_timezone(timezone: str) -> None:
    try:
        pd.Timestamp(0, tz=timezone)
    except Exception:  # pytz / zoneinfo raise different types for an unknown zone
        raise HarvitError(f"--timezone {timezone}: unknown time zone; expected an IANA name such as "
                          "Europe/London or America/New_York") from None


_OPEN_DEVICES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
"""Device files held by a live stream, by (path, size, modification time): opening one again while its first
stream lives shares the samples rather than reading the file twice (nothing is kept after the streams go)."""


def _device_samples(path: Path) -> DeviceRecording:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    rec = _OPEN_DEVICES.get(key)
    if rec is None:
        rec = read_device(path)
        _OPEN_DEVICES[key] = rec
    return rec


def _device_stream(path: Path, rec: DeviceRecording, chunk_rows: int, rate_hz: float | None) -> RecordingStream:
    channels = ACC_CHANNELS + (GYRO_CHANNELS if rec.gyro is not None else [])

    def chunks() -> Iterator[SampleChunk]:
        yield from _chunks_of(rec, chunk_rows, rec.gyro is not None)

    info = {**rec.info, "time": "device clock (local wall-clock time)"}
    if rec.info.get("blocks_skipped"):
        log.warning("%s: %d corrupt block(s) skipped (%s)", path.name, rec.info["blocks_skipped"],
                    "; ".join(rec.info.get("warnings", [])[:3]))
    if len(rec) < 2:
        raise HarvitError(f"{path.name}: {len(rec)} sample(s); expected a recording")
    return RecordingStream(channels, float(rate_hz or rec.rate_hz), "g", path.name, chunks, len(rec), rec.device,
                           info)


def _sliced_stream(path: Path, chunk_rows: int, rate_hz: float | None) -> RecordingStream:
    """A long ``.cwa`` or ``.bin`` file as a stream read slice by slice (:func:`harvit.data.devices.device_slices`):
    the first slice with samples gives the channels, rate and device; each pass over the file sets
    ``info["blocks_skipped"]`` and ``info["warnings"]`` to the whole file's (logged once); a partial last ``.cwa``
    block is told at opening (``info["truncated_bytes"]``)."""
    first = next((rec for rec in device_slices(path) if len(rec)), None)
    if first is None:
        raise HarvitError(f"{path.name}: the file holds no acceleration samples")
    gyro = first.gyro is not None
    channels = ACC_CHANNELS + (GYRO_CHANNELS if gyro else [])
    info = {**first.info, "time": "device clock (local wall-clock time)", "read": "in slices"}
    truncated = []
    if tail := partial_block_bytes(path):
        info["truncated_bytes"] = tail
        truncated = [f"the file ends in a partial block of {tail} bytes (truncated); dropped"]
        log.warning("%s: %s", path.name, truncated[0])
    said: list[bool] = []

    def chunks() -> Iterator[SampleChunk]:
        warnings: list[str] = []
        for rec in device_slices(path):
            warnings += rec.info.get("warnings", [])
            yield from _chunks_of(rec, chunk_rows, gyro)
        skipped = skipped_blocks(warnings)
        info.update(blocks_skipped=skipped, warnings=(truncated + warnings)[:20])
        if skipped and not said:
            said.append(True)
            log.warning("%s: %d corrupt block(s) skipped (%s)", path.name, skipped, "; ".join(warnings[:3]))

    return RecordingStream(channels, float(rate_hz or first.rate_hz), "g", path.name, chunks, None, first.device,
                           info)


def _chunks_of(rec: DeviceRecording, chunk_rows: int, gyro: bool) -> Iterator[SampleChunk]:
    """A device recording's samples as chunks of ``chunk_rows``: acceleration, and the gyroscope where ``gyro``."""
    for start in range(0, len(rec), chunk_rows):
        stop = min(start + chunk_rows, len(rec))
        parts = [rec.acc[start:stop]] + ([rec.gyro[start:stop]] if gyro and rec.gyro is not None else [])
        values = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        yield SampleChunk(rec.time_ns[start:stop], np.ascontiguousarray(values, dtype=np.float32))


@dataclass
class _Roles:
    time: str | None
    label: str | None
    channels: list[str]
    names: list[str]
    """The channel names the stream gives (``columns`` keys, or the table's names)."""


def _roles(found: list[str], numeric: set[str], columns: dict, where: str) -> _Roles:
    """The time, label and channel columns of a table with columns ``found`` (``numeric``: those whose cells
    are mostly numbers; a stray text cell in one is an error when its chunk is read)."""
    listing = ", ".join(found)
    lower = {c.lower(): c for c in found}
    for key, col in columns.items():
        if col not in found:
            raise HarvitError(f"{where}: no column {col!r} (for {key}); found columns: {listing}")

    def default(role: str) -> str | None:
        return next((lower[n] for n in DEFAULT_NAMES[role] if n in lower), None)

    time = columns.get("time", default("time") or _suffixed_time(found))
    label = columns.get("label", default("label"))
    wanted = {k: v for k, v in columns.items() if k not in ROLE_KEYS}
    if wanted:
        bad = [k for k, v in wanted.items() if v not in numeric]
        if bad:
            raise HarvitError(f"{where}: column {wanted[bad[0]]!r} (for {bad[0]}) holds no numbers")
        return _Roles(time, label, list(wanted.values()), list(wanted))
    others = {time, label, default("subject"), default("recording")}
    chans = [c for c in found if c not in others and c in numeric]
    if not chans:
        raise HarvitError(f"{where}: no numeric channel columns; found columns: {listing}")
    names = list(chans)
    if acc_triple(names) is None:
        plain = {c.lower(): k for k, c in enumerate(names)}
        if all(a in plain for a in "xyz"):
            for axis in "xyz":
                names[plain[axis]] = f"acc_{axis}"
    return _Roles(time, label, chans, names)


def _suffixed_time(found: list[str]) -> str | None:
    """The first column named as a default time column with a unit suffix (``timestamp_ms``, ``time [s]``)."""
    for name in found:
        unit = suffix_unit(name)
        if unit:
            stem = re.sub(r"[\s_]*[(\[]?" + unit + r"[)\]]?$", "", name.lower().strip())
            if stem in DEFAULT_NAMES["time"]:
                return name
    return None


def _table_stream(path: Path, chunk_rows: int, columns: dict, timezone: str | None,
                  rate_hz: float | None) -> RecordingStream:
    where = path.name
    if path.name.lower().endswith(".parquet"):
        batches, head, n_rows = _parquet_reader(path, chunk_rows)
    else:
        batches, head, n_rows = _csv_reader(path, chunk_rows)
    found = [str(c) for c in head.columns]
    numeric = {c for c in found if not pd.api.types.is_bool_dtype(head[c].dtype) and numeric_share(head[c]) >= 0.5}
    roles = _roles(found, numeric, columns, where)
    if roles.time is None and not rate_hz:
        raise HarvitError(f"{where}: no time column (looked for {', '.join(DEFAULT_NAMES['time'])}); name it, or "
                          "give the sampling rate")
    clock = _Clock(roles.time, timezone, rate_hz, where)
    first = clock.to_ns(head[roles.time] if roles.time else None, 0, len(head))
    if len(first) < 2:
        raise HarvitError(f"{where}: {len(first)} sample(s); expected a recording")
    rate = float(rate_hz) if rate_hz else nominal_rate(median_rate(first.astype(np.float64) * 1e-9))
    unit = _acc_unit(head, roles)
    wanted = [c for c in (roles.time, roles.label, *roles.channels) if c]

    def chunks() -> Iterator[SampleChunk]:
        chunk_clock = _Clock(roles.time, timezone, rate_hz, where, clock.unit)
        offset = 0
        for frame in batches(wanted):
            n = len(frame)
            if n == 0:
                continue
            t = chunk_clock.to_ns(frame[roles.time] if roles.time else None, offset, n)
            values = np.empty((n, len(roles.channels)), dtype=np.float32)
            for k, col in enumerate(roles.channels):
                values[:, k] = _numbers(frame[col], col, where, offset)
            labels = None
            if roles.label:
                labels = frame[roles.label].astype(object).where(frame[roles.label].notna(), "").astype(str)
                labels = labels.str.strip().to_numpy(dtype=object)
            yield SampleChunk(t, values, labels)
            offset += n

    info = {"reader": "pyarrow" if path.name.lower().endswith(".parquet") else "pandas",
            "time": clock.describe(), "time_column": roles.time, "label_column": roles.label,
            "channel_columns": roles.channels}
    return RecordingStream(roles.names, rate, unit, where, chunks, n_rows, None, info)


def _parquet_reader(path: Path, chunk_rows: int):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path, **PARQUET_OPTIONS)
        n_rows = pf.metadata.num_rows
        head = next(pf.iter_batches(batch_size=min(chunk_rows, 100_000)), None)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for a damaged file
        raise HarvitError(f"{path.name}: cannot read as parquet ({str(e).splitlines()[0][:160]})") from None
    if head is None:
        raise HarvitError(f"{path.name}: the table has no rows")
    head = head.to_pandas()

    def batches(wanted: list[str]) -> Iterator[pd.DataFrame]:
        for batch in pq.ParquetFile(path, **PARQUET_OPTIONS).iter_batches(batch_size=chunk_rows, columns=wanted):
            yield batch.to_pandas()

    return batches, head, n_rows


def _csv_reader(path: Path, chunk_rows: int):
    sep, trailing, headed = _sniff(path)
    if not headed:
        raise HarvitError(f"{path.name}: the first line holds numbers; a recording table needs a header line "
                          "naming its columns (e.g. time,acc_x,acc_y,acc_z)")
    if trailing and sep != ";":
        raise HarvitError(f"{path.name}: records end in ';'; expected one record per line for a recording table")
    options = {"sep": sep, "encoding": "utf-8-sig", "skip_blank_lines": True}
    try:
        head = pd.read_csv(path, nrows=min(chunk_rows, 100_000), **options)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise HarvitError(f"{path.name}: cannot read as a table ({str(e).splitlines()[0][:160]})") from None
    head.columns = [str(c).strip() for c in head.columns]
    if head.empty:
        raise HarvitError(f"{path.name}: the table has no rows")

    def batches(wanted: list[str]) -> Iterator[pd.DataFrame]:
        try:
            with pd.read_csv(path, chunksize=chunk_rows, **options) as reader:
                for frame in reader:
                    frame.columns = [str(c).strip() for c in frame.columns]
                    yield frame[wanted]
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise HarvitError(f"{path.name}: cannot read as a table ({str(e).splitlines()[0][:160]})") from None

    return batches, head, None


def _numbers(values: pd.Series, name: str, where: str, offset: int) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = pd.to_numeric(values.astype(object), errors="coerce")
    bad = np.flatnonzero((numbers.isna() & values.notna()).to_numpy())
    if bad.size:
        row = int(bad[0])
        raise HarvitError(f"{where} row {offset + row + 1} column {name!r}: found {str(values.iloc[row])[:40]!r}; "
                          "expected a number (rows counted from 1 after the header)")
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def _acc_unit(head: pd.DataFrame, roles: _Roles) -> str:
    triple = acc_triple(roles.names)
    if triple is None:
        return "unknown"
    xyz = np.column_stack([pd.to_numeric(head[roles.channels[k]].astype(object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan) for k in triple])
    norm = np.linalg.norm(xyz, axis=1)
    norm = norm[np.isfinite(norm)]
    if norm.size == 0:
        return "unknown"
    magnitude = float(np.median(norm))
    if G_RANGE[0] <= magnitude <= G_RANGE[1]:
        return "g"
    if MS2_RANGE[0] <= magnitude <= MS2_RANGE[1]:
        return "m/s2"
    return "unknown"


class _Clock:
    """A table's time column -> int64 ns of local wall-clock time, chunk by chunk (the unit fixed by the first)."""

    def __init__(self, column: str | None, timezone: str | None, rate_hz: float | None, where: str,
                 unit: str | None = None) -> None:
        self.column, self.timezone, self.rate_hz, self.where = column, timezone, rate_hz, where
        self.unit = unit
        self.epoch = True

    def describe(self) -> str:
        if self.column is None:
            return f"no time column: samples at {self.rate_hz:g} Hz from 1970-01-01"
        if self.unit == "datetime":
            return f"{self.column!r}: date-times" + (f", converted to {self.timezone}" if self.timezone else "")
        since = "since 1970" if self.epoch else "from the start (counted from 1970-01-01)"
        zone = f", converted to {self.timezone}" if self.timezone and self.epoch else (", UTC" if self.epoch else "")
        return f"{self.column!r}: {self.unit} {since}{zone}"

    def to_ns(self, values: pd.Series | None, offset: int, n: int) -> np.ndarray:
        if values is None:
            return np.round((offset + np.arange(n)) * (1e9 / self.rate_hz)).astype(np.int64)
        if self.unit is None:
            self.unit = self._detect(values)
        if self.unit == "datetime":
            return self._datetimes(values)
        if values.isna().any():
            row = int(np.argmax(values.isna().to_numpy()))
            raise HarvitError(f"{self.where} row {offset + row + 1} column {self.column!r}: empty time; expected a "
                              "time on every row")
        scale = UNITS[self.unit] * 1e9
        if pd.api.types.is_integer_dtype(values.dtype):
            ns = values.to_numpy(dtype=np.int64) * np.int64(round(scale))
        else:
            raw = _numbers(values, self.column, self.where, offset)
            ns = np.round(raw * scale).astype(np.int64)
        if self.timezone and self.epoch:
            ns = pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(
                self.timezone).tz_localize(None).asi8
        return ns

    def _detect(self, values: pd.Series) -> str:
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return "datetime"
        if not pd.api.types.is_numeric_dtype(values.dtype):
            sample = values.dropna().head(1000).astype(str)
            parsed = pd.to_datetime(sample.str.replace(_OFFSET, "", regex=True), errors="coerce", format="ISO8601")
            if len(sample) and parsed.notna().mean() > 0.99:
                return "datetime"
        raw = _numbers(values, self.column, self.where, 0)
        unit = detect_unit(self.column, raw[np.isfinite(raw)])
        self.epoch = epoch_unit(raw[np.isfinite(raw)] * UNITS[unit] / UNITS["s"]) == "s"
        return unit

    def _datetimes(self, values: pd.Series) -> np.ndarray:
        if not pd.api.types.is_datetime64_any_dtype(values.dtype):
            text = values.astype(str).str.strip()
            try:
                parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
            except (ValueError, TypeError):  # offsets that differ row to row (a clock change)
                if self.timezone:
                    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
                else:  # kept as written: the offsets dropped
                    parsed = pd.to_datetime(text.str.replace(_OFFSET, "", regex=True), format="ISO8601",
                                            errors="coerce")
            if parsed.isna().any():
                row = int(np.argmax(parsed.isna().to_numpy()))
                raise HarvitError(f"{self.where}: time column {self.column!r}: {str(values.iloc[row])[:40]!r} is not "
                                  "an ISO date-time; expected one on every row")
            values = parsed
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert(self.timezone).dt.tz_localize(None) if self.timezone else \
                values.dt.tz_localize(None)
        return values.to_numpy().astype("datetime64[ns]").astype(np.int64)
