"""Long recordings labelled by a separate table of intervals (the Capture-24 layout), read for training.

``--dataset RECORDING --annotations TABLE``: the recording is a device file or a table of samples
(:func:`harvit.data.streams.open_recording`), the annotations a table with one row per labelled interval:
``start``, ``end`` (date-times: ISO text, or numbers since 1970 in s, ms, us or ns) and ``label`` (also found as
``annotation``, ``activity``, ``class``). Intervals are ``[start, end)`` in the recording's own wall-clock
time; a date-time written with an offset is read as written. Samples outside every interval are unlabelled
(no window touches them). A folder of recordings takes a folder of annotation tables: each recording
``NAME.<ext>`` is labelled by the table named ``NAME`` (or ``NAME-annotations``, ``NAME_annotations``), and
each recording is one subject, named ``NAME`` (a single recording names no subject: its windows are split as a
table without subjects is).

The recordings are read chunk by chunk and only their labelled samples are kept; they then go through the
same steps as any table of recordings (:func:`harvit.data.recordings.table_windows`: gaps, rate, resampling,
windows inside labelled runs).

Refused with one line: an interval whose end is not after its start, intervals that overlap, an interval
outside its recording (by more than :data:`EDGE_TOLERANCE_S`), an empty label, an annotation file missing for
a recording.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harvit.config.fields import split_list
from harvit.data.devices import is_device_file
from harvit.data.options import OwnOptions
from harvit.data.recordings import Piece, TableData, _class_names
from harvit.data.streams import open_recording
from harvit.data.table_time import file_rate
from harvit.data.tables import TABLE_SUFFIXES, Columns, is_table, read_table
from harvit.data.timebase import UNITS, epoch_unit, gap_pieces
from harvit.data.windows import NO_SUBJECT
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

START_NAMES = ("start", "start_time", "starttime", "begin", "from")
END_NAMES = ("end", "end_time", "endtime", "stop", "to")
LABEL_NAMES = ("label", "annotation", "activity", "class")
EDGE_TOLERANCE_S = 1.0
"""An interval may start or end this many seconds beyond its recording's samples."""
ANNOTATION_SUFFIXES = ("", "-annotations", "_annotations", ".annotations")
"""What may follow a recording's name in its annotation file's name."""


@dataclass
class Annotations:
    """Labelled intervals, sorted by start.

    Attributes:
        start_ns, end_ns: int64 [K] interval bounds, ``[start, end)``, local wall-clock ns since 1970-01-01.
        label: object [K] label text.
        row: int64 [K] each interval's 1-based data row in its file (for messages).
        source: the file.
    """

    start_ns: np.ndarray
    end_ns: np.ndarray
    label: np.ndarray
    row: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.start_ns)

    def index_at(self, time_ns: np.ndarray) -> np.ndarray:
        """int64 [n] the index of the interval holding each time in ``time_ns`` (int64 [n]); -1 outside all."""
        k = np.searchsorted(self.start_ns, time_ns, side="right") - 1
        inside = (k >= 0) & (time_ns < self.end_ns[np.maximum(k, 0)])
        return np.where(inside, k, -1).astype(np.int64)

    def labels_at(self, time_ns: np.ndarray) -> np.ndarray:
        """object [n] the label of the interval holding each time in ``time_ns``; ``""`` outside all."""
        k = self.index_at(time_ns)
        out = np.full(len(time_ns), "", dtype=object)
        out[k >= 0] = self.label[k[k >= 0]]
        return out


def _pick(found: list[str], names: tuple[str, ...], role: str, where: str) -> str:
    lower = {c.lower().strip(): c for c in found}
    for name in names:
        if name in lower:
            return lower[name]
    raise HarvitError(f"{where}: no {role} column (looked for {', '.join(names)}); found columns: {', '.join(found)}")


def _times(values: pd.Series, column: str, where: str) -> np.ndarray:
    """int64 ns of a date-time column (ISO text or datetimes: as written; numbers: since 1970 in a unit told by
    their magnitude)."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        raw = values.to_numpy(dtype=np.float64, na_value=np.nan)
        unit = epoch_unit(raw[np.isfinite(raw)]) if np.isfinite(raw).any() else None
        if unit is None or np.isnan(raw).any():
            raise HarvitError(f"{where}: column {column!r} holds numbers that are not times since 1970; expected "
                              "ISO date-times (YYYY-MM-DD hh:mm:ss)")
        return np.round(raw * UNITS[unit] * 1e9).astype(np.int64)
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        text = values.astype(str).str.strip()
        try:
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        except (ValueError, TypeError):  # offsets that differ row to row: read as written
            parsed = pd.to_datetime(text.str.replace(r"(Z|[+-]\d{2}:?\d{2})$", "", regex=True), format="ISO8601",
                                    errors="coerce")
        if parsed.isna().any():
            row = int(np.argmax(parsed.isna().to_numpy()))
            raise HarvitError(f"{where} row {row + 1} column {column!r}: {str(values.iloc[row])[:40]!r} is not a "
                              "date-time; expected an ISO date-time (YYYY-MM-DD hh:mm:ss)")
        values = parsed
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    return values.to_numpy().astype("datetime64[ns]").astype(np.int64)


def read_annotations(path: str | Path) -> Annotations:
    """Read and check an annotation table (see the module docstring).

    Raises:
        HarvitError: a missing start, end or label column, a bad date-time, an empty label, an end not after its
            start, overlapping intervals.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise HarvitError(f"--annotations {path}: no such file")
    where = path.name
    frame = read_table(path)
    if frame.empty:
        raise HarvitError(f"{where}: no annotations; expected rows of start, end, label")
    found = [str(c) for c in frame.columns]
    cols = [_pick(found, names, role, where) for names, role in ((START_NAMES, "start"), (END_NAMES, "end"),
                                                               (LABEL_NAMES, "label"))]
    start, end = (_times(frame[c], c, where) for c in cols[:2])
    labels = frame[cols[2]].astype(object).where(frame[cols[2]].notna(), "").astype(str).str.strip()
    empty = np.flatnonzero((labels == "").to_numpy())
    if empty.size:
        raise HarvitError(f"{where} row {empty[0] + 1}: empty label; expected a label on every interval")
    bad = np.flatnonzero(end <= start)
    if bad.size:
        r = int(bad[0])
        raise HarvitError(f"{where} row {r + 1}: ends at {_stamp(end[r])}, not after its start {_stamp(start[r])}")
    order = np.argsort(start, kind="stable")
    start, end, rows = start[order], end[order], order + 1
    label = labels.to_numpy(dtype=object)[order]
    clash = np.flatnonzero(start[1:] < end[:-1])
    if clash.size:
        k = int(clash[0])
        raise HarvitError(f"{where}: rows {rows[k]} and {rows[k + 1]} overlap ({_stamp(start[k])} to "
                          f"{_stamp(end[k])} and {_stamp(start[k + 1])} to {_stamp(end[k + 1])}); expected "
                          "intervals that do not overlap")
    return Annotations(start, end, label, rows.astype(np.int64), where)


def _stamp(ns: int) -> str:
    return str(pd.Timestamp(int(ns)))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(TABLE_SUFFIXES, key=len, reverse=True) + [".cwa", ".bin", ".gt3x"]:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def recording_files(path: Path) -> list[Path]:
    """The recordings of ``--dataset``: the file itself, or a folder's device and table files (non-hidden, at any
    depth), in path order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise HarvitError(f"--dataset {path}: no such file or folder")
    files = sorted((p for p in path.rglob("*") if p.is_file() and (is_device_file(p) or is_table(p))
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)),
                   key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise HarvitError(f"--dataset {path}: no device files (.cwa, .bin, .gt3x) or tables in the folder")
    return files


def annotation_file(recording: Path, annotations: Path, single: bool) -> Path:
    """The annotation table of ``recording``: ``annotations`` itself when it is a file (one recording only), else
    the table in that folder named after the recording."""
    if annotations.is_file():
        if not single:
            raise HarvitError(f"--annotations {annotations}: one file for several recordings; give a folder holding "
                              "one annotation table per recording, named after it")
        return annotations
    if not annotations.is_dir():
        raise HarvitError(f"--annotations {annotations}: no such file or folder")
    stem = _stem(recording)
    for tail in ANNOTATION_SUFFIXES:
        for suffix in TABLE_SUFFIXES:
            candidate = annotations / f"{stem}{tail}{suffix}"
            if candidate.is_file() and candidate.resolve() != recording.resolve():
                return candidate
    raise HarvitError(f"--annotations {annotations}: no annotation table for recording {recording.name} (expected "
                      f"{stem}.csv or {stem}-annotations.csv there)")


def annotated_sources(path: Path, options: OwnOptions) -> list[Path]:
    """The recordings and their annotation tables (for the cache key)."""
    recordings = recording_files(path)
    ann = Path(str(options.annotations)).expanduser()
    return [f for r in recordings for f in (r, annotation_file(r, ann, len(recordings) == 1))]


def _columns(options: OwnOptions) -> dict:
    columns = {}
    if options.time_column:
        columns["time"] = options.time_column
    for name in split_list(options.channels):
        columns[name] = name
    return columns


def read_annotated(path: Path, options: OwnOptions) -> TableData:
    """Every recording of ``path`` labelled by its annotations, as the labelled pieces of a table data set.

    Returns:
        :class:`harvit.data.recordings.TableData` whose pieces hold float64 [T, C] samples and their times in
        seconds from each recording's first sample; one subject per recording.
    """
    recordings = recording_files(path)
    ann_root = Path(str(options.annotations)).expanduser()
    pieces: list[tuple[Piece, np.ndarray, np.ndarray]] = []  # (piece, interval index per sample, their labels)
    channels: list[str] | None = None
    rates: dict[str, float] = {}
    units: dict[str, str] = {}
    single = len(recordings) == 1  # one recording names no subjects, as a table without a subject column
    ids = {name: (NO_SUBJECT if single else k + 1) for k, name in enumerate(sorted(_stem(r) for r in recordings))}
    for rec_path in recordings:
        ann = read_annotations(annotation_file(rec_path, ann_root, len(recordings) == 1))
        stream = open_recording(rec_path, columns=None if is_device_file(rec_path) else _columns(options),
                                rate_hz=options.rate or None)
        if channels is None:
            channels = list(stream.channels)
        elif stream.channels != channels:
            raise HarvitError(f"{rec_path.name}: channels {', '.join(stream.channels)}; expected those of "
                              f"{recordings[0].name}: {', '.join(channels)}")
        kept_t, kept_x, kept_k = [], [], []
        first = last = None
        for chunk in stream:
            first = int(chunk.time_ns[0]) if first is None else first
            last = int(chunk.time_ns[-1])
            k = ann.index_at(chunk.time_ns)
            keep = k >= 0
            if keep.any():
                kept_t.append(chunk.time_ns[keep])
                kept_x.append(chunk.values[keep])
                kept_k.append(k[keep])
        _check_inside(ann, first, last, rec_path.name)
        if not kept_t:
            raise HarvitError(f"{ann.source}: no sample of {rec_path.name} lies in an annotated interval")
        t_ns = np.concatenate(kept_t)
        x = np.concatenate(kept_x).astype(np.float64)
        k = np.concatenate(kept_k)
        del kept_t, kept_x, kept_k
        t = (t_ns - t_ns[0]).astype(np.float64) * 1e-9
        where = str(rec_path)
        units[where] = "device clock" if is_device_file(rec_path) else str(stream.info.get("time", ""))
        spans = gap_pieces(t)
        for a, b in spans:
            pieces.append((Piece(where, ids[_stem(rec_path)], x[a:b], k[a:b], t[a:b]), k[a:b], ann.label))
        rate = file_rate([np.diff(t[a:b]) for a, b in spans])
        if rate:
            rates[where] = rate
        log.info("%s: %d labelled samples in %d annotated intervals (%s)", rec_path.name, len(t), len(ann),
                 ann.source)
    assert channels is not None
    classes = _class_names([list(np.unique(labels[idx])) for _, idx, labels in pieces])
    for piece, idx, labels in pieces:
        codes = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
        piece.labels = codes[idx]
    return TableData(Columns("annotations", "recording file", None, "time", channels), [p for p, _, _ in pieces],
                     classes, {} if single else {v: k for k, v in ids.items()}, rates, units,
                     "none" if single else "file")


def _check_inside(ann: Annotations, first: int | None, last: int | None, name: str) -> None:
    """Refuse intervals that lie beyond the recording's samples by more than :data:`EDGE_TOLERANCE_S`."""
    if first is None or last is None:
        raise HarvitError(f"{name}: the recording holds no samples")
    tol = int(EDGE_TOLERANCE_S * 1e9)
    outside = np.flatnonzero((ann.start_ns < first - tol) | (ann.end_ns > last + tol))
    if outside.size:
        k = int(outside[0])
        raise HarvitError(f"{ann.source} row {ann.row[k]}: interval {_stamp(ann.start_ns[k])} to "
                          f"{_stamp(ann.end_ns[k])} lies outside recording {name} ({_stamp(first)} to "
                          f"{_stamp(last)}); expected annotations within their recording")
