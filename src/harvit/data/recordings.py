"""Tables of recordings -> windows: grouping, time base, resampling, preprocessing, windowing.

The steps, per file and then per recording (a subject and recording pair, or a file and subject pair):

1. columns get their roles (:func:`harvit.data.tables.resolve_columns`); every file must have the
   first file's columns;
2. time (if any) becomes seconds (:mod:`harvit.data.timebase`); time going backwards is an error,
   repeated times keep their first row, a step over 1 s splits the recording into pieces;
3. each file's rate is the median step's; files whose rates differ by more than 5% are an error;
   the data set's rate is ``--rate``, else the median of the files' rates;
4. a piece whose samples stray from a regular grid is interpolated onto one; a piece at another rate is
   resampled with :func:`scipy.signal.resample_poly` (anti-aliased);
5. NaN policy; optional ``--lowpass`` and ``--gravity-split`` (:func:`harvit.data.signals.prepare_channels`);
6. windows of ``round(window_s * rate)`` samples, stride ``round(length * (1 - overlap))``, wholly
   inside one labelled run (:mod:`harvit.data.runs`); pieces shorter than a window are skipped and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harvit.data.options import OwnOptions, split_list
from harvit.data.runs import UNLABELLED, clear_of, gather_windows, label_runs, run_window_starts
from harvit.data.signals import apply_nan_policy, prepare_channels
from harvit.data.tables import Columns, numeric_column, numeric_columns, numeric_share, read_table, resolve_columns
from harvit.data.timebase import (
    UNITS,
    detect_unit,
    gap_pieces,
    is_jittery,
    median_rate,
    onto_grid,
    resample,
    round_rate,
)
from harvit.data.windows import NO_SUBJECT
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

RATE_TOLERANCE = 0.05
"""Files whose rates differ by more than this fraction are not one data set."""


@dataclass
class Piece:
    """One stretch of one recording without gaps.

    Attributes:
        where: the file it came from.
        subject: subject id (:data:`NO_SUBJECT` without a subject column).
        x: float64 [T, C] samples in the file's units.
        labels: int64 [T] class codes into the file's own label list, :data:`UNLABELLED` where empty.
        t: float64 [T] times in seconds, or None without a time column.
    """

    where: str
    subject: int
    x: np.ndarray
    labels: np.ndarray
    t: np.ndarray | None


@dataclass
class TableData:
    """Everything read from the files before windowing."""

    columns: Columns
    pieces: list[Piece] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    subject_names: dict[int, str] = field(default_factory=dict)
    file_rates: dict[str, float] = field(default_factory=dict)
    time_units: dict[str, str] = field(default_factory=dict)


@dataclass
class TableWindows:
    """Windows of a table data set, before the test split.

    Attributes:
        x: float32 [N, C, T]; y: int64 [N]; subject: int64 [N].
    """

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    channels: list[str]
    classes: list[str]
    rate_hz: float
    stride: int
    subject_names: dict[int, str]
    stats: dict


def read_tables(files: list[Path], opts: OwnOptions, require_label: bool = True) -> TableData:
    """Read every file into gap-free :class:`Piece` s with labels mapped onto one class list.

    ``require_label=False`` (prediction): a table without a label column is read with every sample
    unlabelled (``columns.label`` None, no classes)."""
    header = split_list(opts.columns) or None
    data: TableData | None = None
    raw_labels: list[tuple[Piece, list]] = []
    raw_subjects: list[object] = []
    first_columns: list[str] = []
    for path in files:
        frame = read_table(path, header)
        where = str(path)
        found = list(frame.columns)
        if data is None:
            cols = resolve_columns(found, opts, where, require_label)
            if opts.channels is None:
                cols = _numeric_channels(frame, cols, where)
            data, first_columns = TableData(cols), found
        elif found != first_columns:
            raise HarvitError(
                f"{where} has columns {', '.join(found)}; expected those of {files[0]}: {', '.join(first_columns)}"
            )
        cols = data.columns
        for piece, labels, subject in _file_pieces(frame, cols, where, opts, data.time_units):
            data.pieces.append(piece)
            raw_labels.append((piece, labels))
            raw_subjects.append(subject)
        rate = _file_rate([p for p in data.pieces if p.where == where])
        if rate:
            data.file_rates[where] = rate
        del frame
    assert data is not None
    data.classes = _class_names([lab for _, lab in raw_labels])
    lookup = {name: k for k, name in enumerate(data.classes)}
    for piece, labels in raw_labels:
        table = np.array([lookup[_label_name(v)] for v in labels] + [UNLABELLED], dtype=np.int64)
        piece.labels = table[piece.labels]  # UNLABELLED (-1) picks the appended entry
    data.subject_names = _subject_ids(data.pieces, raw_subjects)
    return data


def _numeric_channels(frame: pd.DataFrame, cols: Columns, where: str) -> Columns:
    """Without ``--channels``: keep the columns holding numbers (text columns are skipped, stated in the log)."""
    keep = [c for c in cols.channels if numeric_share(frame[c]) >= 0.5]
    skipped = [c for c in cols.channels if c not in keep]
    if skipped:
        log.info("%s: columns %s hold text, not channels (name channels with --channels)", where, ", ".join(skipped))
    if not keep:
        raise HarvitError(f"{where}: no numeric channel columns; found columns: {', '.join(frame.columns)}")
    return Columns(cols.label, cols.subject, cols.recording, cols.time, keep)


def _file_pieces(frame: pd.DataFrame, cols: Columns, where: str, opts: OwnOptions, time_units: dict[str, str]):
    """Yield ``(piece, its label values, its subject value)`` for the gap-free pieces of one file; the time
    column's unit goes into ``time_units[where]``."""
    if cols.label is None:  # prediction on a table without labels
        codes, label_values = np.full(len(frame), UNLABELLED, dtype=np.int64), np.array([], dtype=object)
    else:
        labels = frame[cols.label]
        if labels.dtype == object or pd.api.types.is_string_dtype(labels.dtype):
            labels = labels.astype("string").str.strip().replace("", pd.NA)
        codes, label_values = pd.factorize(labels, use_na_sentinel=True)
        codes = codes.astype(np.int64)  # -1 = empty = UNLABELLED
    subj_codes, subj_values = _codes(frame, cols.subject)
    rec_codes, _ = _codes(frame, cols.recording)
    x = numeric_columns(frame, cols.channels, where)
    t = None
    if cols.time:
        t, time_units[where] = _seconds(frame[cols.time], cols.time, where)
    if t is None and not opts.rate:
        raise HarvitError(f"{where}: no time column (looked for time, timestamp, time_s, t; --time-column names "
                          "one); pass --rate HZ to give the sampling rate")
    key = subj_codes * (int(rec_codes.max(initial=0)) + 2) + rec_codes
    contiguous = bool(np.all(np.diff(key) >= 0))  # rows already grouped: pieces are views, not copies
    order = np.arange(len(key)) if contiguous else np.argsort(key, kind="stable")
    sorted_key = key[order]
    bounds = np.flatnonzero(np.diff(sorted_key)) + 1
    for rows in np.split(order, bounds):
        if rows.size == 0:
            continue
        subject = subj_values[subj_codes[rows[0]]] if cols.subject else None
        seg_t = None if t is None else t[rows]
        keep = np.ones(rows.size, dtype=bool)
        if seg_t is not None:
            step = np.diff(seg_t)
            back = np.flatnonzero(step < 0)
            if back.size:
                r = int(rows[back[0] + 1])
                raise HarvitError(
                    f"{where} row {r + 1}: time {cols.time!r} goes backwards ({seg_t[back[0]]:.6g} s -> "
                    f"{seg_t[back[0] + 1]:.6g} s) within one recording; expected increasing times"
                )
            keep[1:] = step > 0
            if not keep.all():
                log.info("%s: %d rows repeat the previous time; kept the first of each", where, int((~keep).sum()))
        rows, seg_t = rows[keep], (None if seg_t is None else seg_t[keep])
        spans = gap_pieces(seg_t) if seg_t is not None else [(0, rows.size)]
        if len(spans) > 1:
            log.info("%s: a recording splits into %d pieces at gaps > 1 s", where, len(spans))
        for a, b in spans:
            piece_rows = rows[a:b]
            if contiguous and keep.all():
                piece_rows = slice(int(piece_rows[0]), int(piece_rows[-1]) + 1)
            yield (
                Piece(where, NO_SUBJECT, x[piece_rows], codes[piece_rows], None if seg_t is None else seg_t[a:b]),
                list(label_values),
                subject,
            )


def _codes(frame: pd.DataFrame, column: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(int64 [rows] codes, values) of a grouping column; all zero without one; empty cells are one group."""
    if column is None:
        return np.zeros(len(frame), dtype=np.int64), np.array([None], dtype=object)
    codes, values = pd.factorize(frame[column], use_na_sentinel=False)
    return codes.astype(np.int64), np.asarray(values, dtype=object)


def _seconds(values: pd.Series, name: str, where: str) -> tuple[np.ndarray, str]:
    """(float64 seconds relative to the first value, the unit found) of a time column; unit stated in the log."""
    if not pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        if parsed.notna().mean() > 0.99 and parsed.notna().any():
            values = parsed
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if values.isna().any():
            raise HarvitError(f"{where} row {int(np.argmax(values.isna().to_numpy())) + 1} column {name!r}: "
                              "empty time; expected a time on every row")
        ns = values.to_numpy().astype("datetime64[ns]").astype(np.int64)
        log.info("%s: time column %r holds ISO datetimes", where, name)
        return (ns - ns[0]).astype(np.float64) * 1e-9, "ISO datetime"
    raw = numeric_column(values, name, where)
    if np.isnan(raw).any():
        raise HarvitError(f"{where} row {int(np.argmax(np.isnan(raw))) + 1} column {name!r}: empty time; "
                          "expected a time on every row")
    unit = detect_unit(name, raw)
    log.info("%s: time column %r is in %s", where, name, unit)
    if pd.api.types.is_integer_dtype(values.dtype):
        ints = values.to_numpy(dtype=np.int64)
        return (ints - ints[0]).astype(np.float64) * UNITS[unit], unit
    return (raw - raw[0]) * UNITS[unit], unit


def _file_rate(pieces: list[Piece]) -> float:
    """The median-step rate of a file's timed pieces in Hz (0.0 without time)."""
    steps = [np.diff(p.t) for p in pieces if p.t is not None and len(p.t) > 1]
    if not steps:
        return 0.0
    return round_rate(1.0 / float(np.median(np.concatenate(steps))))


def _label_name(value: object) -> str:
    """A label value as a class name: integer-valued numbers without ``.0``."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _class_names(values: list[list]) -> list[str]:
    """Sorted class names of all label values: numerically when every name is an integer, else as text."""
    names = {_label_name(v) for vals in values for v in vals}
    try:
        return sorted(names, key=int)
    except ValueError:
        return sorted(names)


def _subject_ids(pieces: list[Piece], subjects: list) -> dict[int, str]:
    """Set each piece's subject id; returns id -> name. Integer subjects keep their number, others get 1..K
    in name order."""
    if all(s is None for s in subjects):
        return {}
    names = sorted({_label_name(s) for s in subjects if s is not None})
    if any(s is None or (isinstance(s, float) and np.isnan(s)) for s in subjects) or "nan" in names:
        raise HarvitError("subject column: some rows have no subject; expected a subject on every row")
    try:
        ids = {name: int(name) for name in names}
    except ValueError:
        ids = {name: k + 1 for k, name in enumerate(names)}
    for piece, s in zip(pieces, subjects, strict=True):
        piece.subject = ids[_label_name(s)]
    return {v: k for k, v in ids.items()}


def check_rates(file_rates: dict[str, float]) -> float:
    """The median rate of the files; raise naming the two files whose rates differ most when that is over 5%."""
    if not file_rates:
        return 0.0
    lo = min(file_rates, key=file_rates.__getitem__)
    hi = max(file_rates, key=file_rates.__getitem__)
    if file_rates[hi] > file_rates[lo] * (1 + RATE_TOLERANCE):
        raise HarvitError(
            f"sampling rates differ by more than {RATE_TOLERANCE:.0%}: {hi} is at {file_rates[hi]:.4g} Hz, "
            f"{lo} at {file_rates[lo]:.4g} Hz; pass --rate HZ to resample them all, or load them separately"
        )
    return round_rate(float(np.median(list(file_rates.values()))))


def table_windows(data: TableData, opts: OwnOptions, nan_policy: str, stride: int | None = None) -> TableWindows:
    """Cut the windows of every piece (see the module docstring's steps 3-6).

    Args:
        stride: step between window starts in samples (None: from ``--overlap``).
    """
    if opts.rate:  # every file is resampled to the rate asked for, whatever its own
        own_rate = round_rate(float(np.median(list(data.file_rates.values())))) if data.file_rates else 0.0
    else:
        own_rate = check_rates(data.file_rates)
    rate = float(opts.rate) or own_rate
    if own_rate:
        log.info("sampling rate: %.4g Hz (median time step)%s", own_rate,
                 f"; resampled to {rate:g} Hz" if abs(rate / own_rate - 1) > 1e-3 else "")
    length, default_stride = opts.window_samples(rate)
    stride = stride or default_stride
    stats = {"pieces": len(data.pieces), "short_pieces": 0, "resampled_pieces": 0, "gridded_pieces": 0,
             "nan_dropped_windows": 0}
    xs, ys, subjects = [], [], []
    channels = list(data.columns.channels)
    for piece in data.pieces:
        x, labels = regular_piece(piece, rate, own_rate, stats)
        piece.x = piece.x[:0]  # the windows are all that is kept
        if x.shape[0] < length:
            stats["short_pieces"] += 1
            continue
        x, bad = apply_nan_policy(x, piece.where, nan_policy, "empty or NaN/Inf channel values")
        x, channels = prepare_channels(x, list(data.columns.channels), rate, opts.lowpass, opts.gravity_split)
        starts, y = run_window_starts(label_runs(labels), length, stride)
        keep = clear_of(starts, bad, length)
        stats["nan_dropped_windows"] += int((~keep).sum())
        starts, y = starts[keep], y[keep]
        if len(starts):
            xs.append(gather_windows(x.T, starts, length))
            ys.append(y)
            subjects.append(np.full(len(y), piece.subject, dtype=np.int64))
    if stats["short_pieces"]:
        log.warning("skipped %d of %d recording pieces shorter than one window (%d samples = %g s)",
                    stats["short_pieces"], stats["pieces"], length, opts.window_s)
    if not xs:
        raise HarvitError(
            f"no windows: none of the {stats['pieces']} recording pieces holds a labelled run of {length} samples "
            f"(--window-s {opts.window_s} at {rate:g} Hz); {stats['short_pieces']} pieces are shorter than a window"
        )
    stats["time_units"] = sorted(set(data.time_units.values())) or ["none (--rate)"]
    stats["own_rate_hz"] = round(own_rate, 4)
    x_all = np.concatenate(xs)
    del xs
    return TableWindows(x_all, np.concatenate(ys), np.concatenate(subjects), channels,
                        list(data.classes), rate, stride, data.subject_names, stats)


def regular_piece(piece: Piece, rate: float, own_rate: float, stats: dict | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A piece's samples on a regular grid at ``rate`` Hz (steps 4 of the module docstring).

    Args:
        piece: samples with their times (or None: the samples are taken to be at ``rate``).
        rate: the data set's rate in Hz; own_rate: the files' own rate (0.0 without time).
        stats: counts ``gridded_pieces`` and ``resampled_pieces`` are increased here when given.

    Returns:
        (float64 [T', C] samples, int64 [T'] label codes), both at ``rate``.
    """
    x, labels = piece.x, piece.labels
    if piece.t is not None and len(piece.t) > 1:
        piece_rate = median_rate(piece.t)
        if is_jittery(piece.t, piece_rate):
            x, labels = onto_grid(piece.t, x, labels, piece_rate)
            if stats is not None:
                stats["gridded_pieces"] += 1
    else:
        piece_rate = rate if piece.t is None else own_rate or rate
    if piece.t is not None and abs(piece_rate / rate - 1) > 1e-3:
        x, labels = resample(x, labels, piece_rate, rate)
        if stats is not None:
            stats["resampled_pieces"] += 1
    return x, labels
