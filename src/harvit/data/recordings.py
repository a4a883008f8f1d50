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
   inside one labelled segment (:mod:`harvit.data.segments`); pieces shorter than a window are skipped and counted.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harvit.config.fields import split_list
from harvit.data.file_notes import FileNotes
from harvit.data.options import OwnOptions
from harvit.data.segments import UNLABELLED, clear_of, gather_windows, label_segments, segment_window_starts
from harvit.data.signals import apply_nan_policy, prepare_channels
from harvit.data.subject_source import file_subject, subject_source
from harvit.data.table_time import check_pieces, check_rates, file_rate, seconds
from harvit.data.tables import Columns, numeric_columns, numeric_share, read_table, resolve_columns
from harvit.data.timebase import gap_pieces, is_jittery, median_rate, nominal_rate, onto_grid, resample, round_rate
from harvit.data.windows import NO_SUBJECT
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

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
    subject_source: str = "column"


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


def read_tables(files: list[Path], opts: OwnOptions, require_label: bool = True, root: Path | None = None
                ) -> TableData:
    """Read every file into gap-free :class:`Piece` s with labels mapped onto one class list.

    Args:
        files: the table files (a folder's, at any depth).
        opts: the own-data options.
        require_label: False (prediction): a table without a label column is read with every sample
            unlabelled (``columns.label`` None, no classes).
        root: the data set's folder, whose first folder level names subjects with ``--subject-from folder``
            (None: the files' common folder).
    """
    header = split_list(opts.columns) or None
    data: TableData | None = None
    raw_labels: list[tuple[Piece, list]] = []
    raw_subjects: list[object] = []
    first_columns: list[str] = []
    source = "column"
    notes = FileNotes()  # what each file's time showed, said once for all of them after the loop
    for path in files:
        frame = read_table(path, header)
        where = str(path)
        found = list(frame.columns)
        if data is None:
            if frame.attrs.get("headerless"):
                header = found  # every later file gets the first one's names
                log.info("%s: no header (the first line holds numbers): %s; the others are channels "
                         "(name the columns with --columns)", where, frame.attrs["headerless"])
            cols = resolve_columns(found, opts, where, require_label)
            if opts.channels is None:
                cols = _numeric_channels(frame, cols, where)
            data, first_columns = TableData(cols), found
            source = subject_source(opts.subject_from, cols.subject, files, root)
        elif found != first_columns:
            raise HarvitError(
                f"{where} has columns {', '.join(found)}; expected those of {files[0]}: {', '.join(first_columns)}"
            )
        given = None if source in ("column", "none") else file_subject(path, source, files, root)
        pieces = list(_file_pieces(frame, data.columns, where, opts, data.time_units, source, given, notes))
        for piece, labels, subject in pieces:
            data.pieces.append(piece)
            raw_labels.append((piece, labels))
            raw_subjects.append(subject)
        rate = file_rate([np.diff(p.t) for p, _, _ in pieces if p.t is not None])
        if rate:
            data.file_rates[where] = rate
        del frame
    assert data is not None
    notes.log()
    data.subject_source = source
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


def _file_pieces(frame: pd.DataFrame, cols: Columns, where: str, opts: OwnOptions, time_units: dict[str, str],
                 source: str, given_subject: str | None, notes: FileNotes):
    """Yield ``(piece, its label values, its subject value)`` for the gap-free pieces of one file; the time
    column's unit goes into ``time_units[where]``. ``source`` is where subjects come from (column, folder,
    file or none); ``given_subject`` the file's subject when not from the column; what the time showed goes
    into ``notes``."""
    if cols.label is None:  # prediction on a table without labels
        codes, label_values = np.full(len(frame), UNLABELLED, dtype=np.int64), np.array([], dtype=object)
    else:
        labels = frame[cols.label]
        if labels.dtype == object or pd.api.types.is_string_dtype(labels.dtype):
            labels = labels.astype("string").str.strip().replace("", pd.NA)
        codes, label_values = pd.factorize(labels, use_na_sentinel=True)
        codes = codes.astype(np.int64)  # -1 = empty = UNLABELLED
    subj_codes, subj_values = _codes(frame, cols.subject if source == "column" else None)
    rec_codes, _ = _codes(frame, cols.recording)
    x = numeric_columns(frame, cols.channels, where)
    t = None
    if cols.time:
        t, time_units[where] = seconds(frame[cols.time], cols.time, where, opts.time_unit, notes)
    if t is None and not opts.rate:
        raise HarvitError(f"{where}: no time column (looked for time, timestamp, time_s, t; --time-column names "
                          "one); pass --rate HZ to give the sampling rate")
    key = subj_codes * (int(rec_codes.max(initial=0)) + 2) + rec_codes
    contiguous = bool(np.all(np.diff(key) >= 0))  # rows already grouped: pieces are views, not copies
    order = np.arange(len(key)) if contiguous else np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    groups = [rows for rows in np.split(order, bounds) if rows.size]
    out, spans_seen, backs, repeats = [], [], 0, 0
    for rows in groups:
        subject = subj_values[subj_codes[rows[0]]] if source == "column" else given_subject
        seg_t = None if t is None else t[rows]
        keep = np.ones(rows.size, dtype=bool)
        if seg_t is not None:
            step = np.diff(seg_t)
            backs += int((step < 0).sum())
            keep[1:] = step != 0
            repeats += int((~keep).sum())
        rows, seg_t = rows[keep], (None if seg_t is None else seg_t[keep])
        spans = gap_pieces(seg_t) if seg_t is not None else [(0, rows.size)]
        if seg_t is not None:
            spans_seen += [(float(seg_t[b - 1] - seg_t[a]), b - a) for a, b in spans]
        for a, b in spans:
            piece_rows = rows[a:b]
            if contiguous and keep.all():
                piece_rows = slice(int(piece_rows[0]), int(piece_rows[-1]) + 1)
            out.append((Piece(where, NO_SUBJECT, x[piece_rows], codes[piece_rows],
                              None if seg_t is None else seg_t[a:b]), list(label_values), subject))
    if t is not None:
        if repeats:
            notes.add(where, "{} rows repeat the previous time; kept the first of each", repeats)
        if backs:
            notes.add(where, "time steps back {} time(s) within a recording; each starts a new piece", backs)
        if len(spans_seen) > len(groups):
            notes.add(where, "{} recording(s) split into {} pieces at gaps > 1 s or steps back", len(groups),
                      len(spans_seen))
        steps = np.concatenate([np.diff(p.t) for p, _, _ in out if p.t is not None and len(p.t) > 1] or [[]])
        rate = 1.0 / float(np.median(steps)) if steps.size else 0.0
        check_pieces(spans_seen, len(groups), where, str(cols.time), time_units[where], rate)
    yield from out


def _codes(frame: pd.DataFrame, column: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(int64 [rows] codes, values) of a grouping column; all zero without one; empty cells are one group."""
    if column is None:
        return np.zeros(len(frame), dtype=np.int64), np.array([None], dtype=object)
    codes, values = pd.factorize(frame[column], use_na_sentinel=False)
    return codes.astype(np.int64), np.asarray(values, dtype=object)


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


def table_windows(data: TableData, opts: OwnOptions, nan_policy: str, stride: int | None = None) -> TableWindows:
    """Cut the windows of every piece (see the module docstring's steps 3-6).

    Args:
        stride: step between window starts in samples (None: from ``--overlap``).
    """
    if opts.rate:  # every file is resampled to the rate asked for, whatever its own
        measured = round_rate(float(np.median(list(data.file_rates.values())))) if data.file_rates else 0.0
    else:
        measured = check_rates(data.file_rates)
    own_rate = nominal_rate(measured)
    rate = float(opts.rate) or own_rate
    if own_rate:
        log.info("sampling rate: %.6g Hz (median time step)%s%s", measured,
                 f", taken as {own_rate:g} Hz" if own_rate != measured else "",
                 f"; resampled to {rate:g} Hz" if abs(rate / own_rate - 1) > 1e-3 else "")
    length, default_stride = opts.window_samples(rate)
    stride = stride or default_stride
    stats = {"pieces": len(data.pieces), "short_pieces": 0, "resampled_pieces": 0, "gridded_pieces": 0,
             "nan_dropped_windows": 0}
    xs, ys, subjects = [], [], []
    longest = np.zeros(len(data.classes), dtype=np.int64)  # longest labelled segment of each class, in samples
    channels = list(data.columns.channels)
    for piece in data.pieces:
        x, labels = regular_piece(piece, rate, own_rate, stats)
        piece.x = piece.x[:0]  # the windows are all that is kept
        segments = label_segments(labels)
        np.maximum.at(longest, segments[:, 2], segments[:, 1] - segments[:, 0])
        if x.shape[0] < length:
            stats["short_pieces"] += 1
            continue
        x, bad = apply_nan_policy(x, piece.where, nan_policy, "empty or NaN/Inf channel values")
        x, channels = prepare_channels(x, list(data.columns.channels), rate, opts.lowpass, opts.gravity_split)
        starts, y = segment_window_starts(segments, length, stride)
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
            f"no windows: none of the {stats['pieces']} recording pieces holds a labelled segment of {length} samples "
            f"(--window-s {opts.window_s} at {rate:g} Hz); {stats['short_pieces']} pieces are shorter than a window"
        )
    stats["time_units"] = sorted(set(data.time_units.values())) or ["none (--rate)"]
    stats["subjects_from"] = data.subject_source
    shortest = int(longest[longest > 0].min()) if (longest > 0).any() else 0
    # the longest window (in 0.01 s) whose samples fit in every class's longest labelled segment
    stats["longest_window_s"] = math.floor(100 * shortest / rate) / 100 if shortest >= 2 else 0.0
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
