"""``harvit predict RUN --table FILE``: classify every window of a table with the training columns.

The run's ``config.json`` holds the own-data options it was trained with (:class:`OwnOptions`), so a
table with the same columns goes through the same steps as training (:mod:`harvit.data.recordings`):
the columns' roles, the time base (units, gaps > 1 s split a recording, jittery times put on a grid,
resampling to the model's rate), the NaN policy, ``--lowpass`` and ``--gravity-split``
(:func:`harvit.data.signals.prepare_channels`), and windows of the model's length at the training
stride (``--overlap``). Unlike training, windows slide over *every* sample, labelled or not; a
window's true label (when the table has a label column) is the label of its centre sample.

Memory: the table is read once (pandas/pyarrow, like training); the preprocessing and the model then
run over chunks of :data:`CHUNK_WINDOWS` windows, each with :data:`MARGIN_S` seconds of signal on both
sides so the zero-phase filters see the same neighbourhood as on the whole recording. Only the
per-window results (N x K probabilities) grow with the recording's length.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harvit.data.options import OwnOptions
from harvit.data.own import dataset_kind
from harvit.data.recordings import apply_nan_policy, read_tables, regular_piece
from harvit.data.registry import is_builtin
from harvit.data.segments import UNLABELLED, gather_windows
from harvit.data.signals import prepare_channels, window_starts
from harvit.data.tables import is_table, table_files
from harvit.deploy.smoothing import HmmSmoother, smooth_log_probs
from harvit.evaluation.inference import window_log_probs
from harvit.models.loading import TrainedModel
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

CHUNK_WINDOWS = 4096
"""Windows preprocessed and classified together (at 128 samples and stride 64: 4.4 min at 50 Hz)."""
MARGIN_S = 30.0
"""Seconds of signal on each side of a chunk: the 0.3 Hz gravity split's filter has faded long before."""


@dataclass
class TablePrediction:
    """Per-window predictions of a table (all arrays [N], in time order within each piece).

    Attributes:
        piece: recording piece index (a recording splits at gaps > 1 s); subject: its subject id.
        start_s, end_s: window bounds in seconds from the file's first row (or first sample).
        pred: predicted class index; prob: its probability; probs: float64 [N, K].
        true: the centre sample's label (empty string where unlabelled); None without a label column.
    """

    classes: list[str]
    piece: np.ndarray
    subject: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    pred: np.ndarray
    prob: np.ndarray
    probs: np.ndarray
    true: list[str] | None
    rate_hz: float
    window_length: int
    stride: int
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.pred))


def table_options(trained: TrainedModel) -> OwnOptions:
    """The own-data options a run was trained with; a run on a built-in data set or on ready windows is refused."""
    cfg = trained.config
    if is_builtin(cfg.dataset):
        raise HarvitError(f"--table: {trained.path} was trained on {cfg.dataset}, not on a table; predict on its "
                          "recordings with --acc/--gyro")
    source = Path(cfg.dataset).expanduser()
    kind = dataset_kind(source) if source.exists() else ("table" if is_table(source) or not source.suffix else "?")
    if kind != "table":
        raise HarvitError(f"--table: {trained.path} was trained on ready windows ({source.name}); predict on a "
                          "table needs a model trained on a table of recordings")
    return OwnOptions.from_settings(cfg.to_dict())


def raw_channel_names(channels: list[str], gravity_split: str | None) -> list[str]:
    """The table columns a model's channels were made from: ``--gravity-split S`` turned ``S_x..z`` into
    ``body_S_x..z`` in place and appended ``total_S_x..z``."""
    if not gravity_split:
        return list(channels)
    body, total = f"body_{gravity_split}_", f"total_{gravity_split}_"
    return [f"{gravity_split}_{c[len(body):]}" if c.startswith(body) else c for c in channels
            if not c.startswith(total)]


def predict_table(trained: TrainedModel, path: str | Path, rate_hz: float | None = None,
                  chunk_windows: int = CHUNK_WINDOWS, smoother: HmmSmoother | None = None) -> TablePrediction:
    """Classify every window of a table (a file or folder) with the run's columns and preprocessing.

    Args:
        trained: a model trained on a table (:func:`harvit.models.loading.load_trained`).
        path: ``.csv``, ``.csv.gz``, ``.parquet`` or a folder of them, with the training columns
            (the label column is optional).
        rate_hz: sampling rate of a table without a time column (default: the training ``--rate``,
            else the model's rate).
        chunk_windows: windows per preprocessing and inference chunk (bounds the memory).
        smoother: the run's HMM (:mod:`harvit.deploy.smoothing`): ``pred`` is then the Viterbi path of each
            recording piece (a gap starts a new sequence), ``prob`` that class's probability; None: arg-max.

    Returns:
        :class:`TablePrediction`.

    Raises:
        HarvitError: a run not trained on a table, missing columns, channels that differ from the
            model's after preprocessing, or a table shorter than one window.
    """
    opts = table_options(trained)
    path = Path(path).expanduser()
    if not path.exists():
        raise HarvitError(f"--table: no such file or folder {path}")
    model_rate = float(trained.rate_hz)
    if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
        raise HarvitError(f"--rate-hz: got {rate_hz!r}, expected a positive sampling rate in Hz")
    files = table_files(path) if path.is_dir() or is_table(path) else None
    if files is None:
        raise HarvitError(f"--table {path}: expected a .csv, .csv.gz or .parquet file, or a folder of them")
    data = read_tables(files, opts, require_label=False)
    length = int(trained.window_length)
    _, stride = opts.window_samples(model_rate)
    own_rate = float(np.median(list(data.file_rates.values()))) if data.file_rates else 0.0
    untimed_rate = float(rate_hz or opts.rate or model_rate)
    nan_policy = str(trained.config.nan_policy)
    raw_channels = list(data.columns.channels)
    expected = raw_channel_names(list(trained.channels), opts.gravity_split)
    if raw_channels != expected:
        raise HarvitError(f"--table {path}: channel columns {', '.join(raw_channels)}; the model was trained on "
                          f"{', '.join(expected)} (expected the same columns as training, in the same order)")
    out: dict[str, list] = {k: [] for k in ("piece", "subject", "start", "pred", "probs", "true", "t0")}
    short = 0
    for k, piece in enumerate(data.pieces):
        if piece.t is None:  # samples at the given rate; resampled to the model's below
            piece.t = np.arange(len(piece.x)) / untimed_rate
        x, labels = regular_piece(piece, model_rate, own_rate or untimed_rate)
        t0 = float(piece.t[0])
        piece.x = piece.x[:0]
        if len(x) < length:
            short += 1
            continue
        x, _ = apply_nan_policy(x, piece.where, nan_policy)
        starts = window_starts(len(x), length, stride)
        for a in range(0, len(starts), chunk_windows):
            chunk = starts[a:a + chunk_windows]
            probs = chunk_probs(trained, x, chunk, raw_channels, opts, model_rate)
            out["start"].append(chunk)
            out["probs"].append(probs)
            out["piece"].append(np.full(len(chunk), k, dtype=np.int64))
            out["subject"].append(np.full(len(chunk), piece.subject, dtype=np.int64))
            out["t0"].append(np.full(len(chunk), t0))
            if data.columns.label is not None:
                centre = labels[chunk + length // 2]
                names = np.array([*data.classes, ""], dtype=object)
                out["true"].append(names[np.where(centre == UNLABELLED, len(data.classes), centre)])
        del x, labels
    if not out["start"]:
        raise HarvitError(f"--table {path}: no recording piece holds one window of {length} samples "
                          f"({length / model_rate:.2f} s at {model_rate:g} Hz); {short} pieces are shorter")
    if short:
        log.warning("%s: skipped %d recording pieces shorter than one window", path, short)
    probs = np.concatenate(out["probs"])
    piece = np.concatenate(out["piece"])
    pred = probs.argmax(axis=1) if smoother is None else smooth_log_probs(
        probs, smoother, stride / model_rate, np.r_[True, piece[1:] != piece[:-1]])
    start = np.concatenate(out["start"])
    start_s = np.concatenate(out["t0"]) + start / model_rate
    true = [str(v) for v in np.concatenate(out["true"])] if data.columns.label is not None else None
    return TablePrediction(
        classes=list(trained.classes), piece=piece, subject=np.concatenate(out["subject"]),
        start_s=start_s, end_s=start_s + length / model_rate, pred=pred.astype(np.int64),
        prob=probs[np.arange(len(pred)), pred], probs=probs, true=true, rate_hz=model_rate,
        window_length=length, stride=stride,
        info={"files": [str(f) for f in files], "pieces": len(data.pieces), "short_pieces": short,
              "own_rate_hz": own_rate, "label_column": data.columns.label,
              "channels": raw_channels, "smoothed": smoother is not None},
    )


def chunk_probs(trained: TrainedModel, x: np.ndarray, starts: np.ndarray, raw_channels: list[str],
                opts: OwnOptions, rate: float, as_log: bool = False) -> np.ndarray:
    """Probabilities float64 [n, K] (``as_log``: the model's log-probabilities, float32) of the windows at ``starts``
    of one piece ``x`` [T, C_raw] at the model's ``rate``, preprocessed over the chunk's span plus
    :data:`MARGIN_S` on each side (as far as ``x`` reaches). Used by ``--table`` and ``--recording``."""
    length = int(trained.window_length)
    margin = int(round(MARGIN_S * rate))
    lo = max(0, int(starts[0]) - margin)
    hi = min(len(x), int(starts[-1]) + length + margin)
    sig, channels = prepare_channels(x[lo:hi], raw_channels, rate, opts.lowpass, opts.gravity_split)
    if list(channels) != list(trained.channels):
        raise HarvitError(f"--table: its channels after preprocessing are {', '.join(channels)}; the model was "
                          f"trained on {', '.join(trained.channels)} (the same columns as training are expected)")
    windows = gather_windows(np.ascontiguousarray(sig.T, dtype=np.float32), starts - lo, length)
    log_probs = window_log_probs(trained, windows)
    if as_log:
        return log_probs
    probs = np.exp(log_probs.astype(np.float64))
    return probs / probs.sum(axis=1, keepdims=True)  # the mean of view log-probs is not exactly normalised


# ---- output -------------------------------------------------------------------------------------
def table_csv(result: TablePrediction) -> str:
    """CSV text, one row per window: ``piece,subject,start_s,end_s,activity,confidence[,true_label],p_<class>...``."""
    has_true = result.true is not None
    head = ["piece", "subject", "start_s", "end_s", "activity", "confidence", *(["true_label"] if has_true else []),
            *[f"p_{c}" for c in result.classes]]
    rows = [",".join(_csv_cell(h) for h in head)]
    names = [_csv_cell(c) for c in result.classes]
    for i in range(len(result)):
        cells = [str(int(result.piece[i])), str(int(result.subject[i])), f"{result.start_s[i]:.3f}",
                 f"{result.end_s[i]:.3f}", names[int(result.pred[i])], f"{result.prob[i]:.4f}"]
        if has_true:
            cells.append(_csv_cell(result.true[i]))  # type: ignore[index]
        cells += [f"{p:.4f}" for p in result.probs[i]]
        rows.append(",".join(cells))
    return "\n".join(rows) + "\n"


def _csv_cell(text: str) -> str:
    text = str(text)
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n') else text


def table_summary(result: TablePrediction) -> str:
    """Lines: windows and hours classified, the share of windows per predicted class, and the agreement with
    the true labels where the table has them."""
    n = len(result)
    hours = n * result.stride / result.rate_hz / 3600
    lines = [f"{n} windows of {result.window_length} samples at {result.rate_hz:g} Hz, stride {result.stride} "
             f"(~{hours:.2f} h), {result.info['pieces']} recording pieces"]
    counts = np.bincount(result.pred, minlength=len(result.classes))
    width = max(len("activity"), *(len(c) for c in result.classes))
    for k in np.argsort(-counts):
        if counts[k]:
            lines.append(f"  {result.classes[k]:<{width}}  {100 * counts[k] / n:5.1f}%  "
                         f"mean confidence {result.prob[result.pred == k].mean():.3f}")
    if result.true is not None:
        true = np.array(result.true, dtype=object)
        known = true != ""
        if known.any():
            names = np.array(result.classes, dtype=object)[result.pred]
            acc = float((names[known] == true[known]).mean())
            lines.append(f"agreement with the table's labels: {100 * acc:.1f}% of {int(known.sum())} labelled windows")
    return "\n".join(lines)
