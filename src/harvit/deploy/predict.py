"""Predict activities on a raw recording: accelerometer + gyroscope text files -> per-window labels.

(A table with the columns a run was trained on: :mod:`harvit.deploy.table`, ``--table``.)

A recording is two text files of T rows ``x y z`` (acc in g, gyro in rad/s, the same sampling rate;
HAPT's ``RawData/acc_expXX_userYY.txt`` and ``gyro_...`` are such files). The recipe is the one the
model was trained on:

1. resample both sensors to the model's rate (``scipy.signal.resample_poly``) when the recording's
   rate differs;
2. :func:`harvit.data.signals.preprocess_inertial`: median + 20 Hz low-pass, gravity split ->
   the 9 HAR channels [9, T];
3. sliding windows of the model's length with 50% overlap
   (:func:`harvit.data.signals.sliding_windows`);
4. the model's window log-probabilities, in batches.

The result is one row per window (start and end time in seconds, predicted activity, its
probability) and a summary: the share of the recording's time given to each activity, where each
sample takes the prediction of the window whose centre is nearest.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal as sps

from harvit.data.signals import CHANNELS, parse_numeric_text, preprocess_inertial, sliding_windows
from harvit.deploy.smoothing import HmmSmoother, resolve_smoother, smooth_log_probs, smoothing_line
from harvit.deploy.table import predict_table, table_csv, table_options, table_summary
from harvit.deploy.timeline import plot_timeline
from harvit.evaluation.inference import window_log_probs
from harvit.models.ensemble import load_ensemble
from harvit.models.loading import TrainedModel, load_trained
from harvit.utils.atomic import write_text
from harvit.utils.errors import HarvitError
from harvit.utils.runtime import pick_device


# ---- input ----------------------------------------------------------------------------------------
def read_sensor_file(path: str | Path, flag: str) -> np.ndarray:
    """Read a recording file of T rows ``x y z``.

    Args:
        path: text file, whitespace-separated numbers, one sample per line (blank lines skipped).
        flag: the CLI flag that named it (``--acc`` / ``--gyro``), for messages.

    Returns:
        float64 [T, 3], all finite.

    Raises:
        HarvitError: missing/unreadable file, a non-numeric value or a row without 3 values (file and
        line named), NaN/Inf values (file and first line named).
    """
    path = Path(path)
    if not path.exists():
        raise HarvitError(f"{flag}: file {path} not found")
    if path.is_dir():
        raise HarvitError(f"{flag}: {path} is a folder; expected a text file of x y z rows")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise HarvitError(f"{flag}: cannot read {path}: {e.strerror or e}") from None
    table = parse_numeric_text(data, str(path), ncols=3, hint="x y z per row")
    finite = np.isfinite(table).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        lines = [i for i, ln in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1) if ln.split()]
        line = lines[row] if row < len(lines) else row + 1
        raise HarvitError(f"{path} line {line}: found NaN/Inf ({int((~finite).sum())} rows in all); "
                          "expected finite numbers (fill or cut the gaps first)")
    return table


def check_rate(rate_hz: float | None, default: float) -> float:
    """The recording's rate: ``rate_hz`` or, when None, the model's ``default``."""
    if rate_hz is None:
        return float(default)
    rate = float(rate_hz)
    if not (math.isfinite(rate) and rate > 0):
        raise HarvitError(f"--rate-hz: got {rate_hz!r}, expected a positive sampling rate in Hz")
    return rate


def check_model(trained: TrainedModel) -> None:
    """Predict reads acc + gyro: the model must have been trained on the 9 standard HAR channels."""
    if list(trained.channels) != list(CHANNELS):
        raise HarvitError(
            f"{trained.path}: trained on channels {', '.join(trained.channels)}; predict needs a model "
            f"trained on the 9 HAR channels ({', '.join(CHANNELS)}), as made from acc + gyro recordings")


def resample(x: np.ndarray, rate_hz: float, target_hz: float) -> np.ndarray:
    """Resample [T, C] along time from ``rate_hz`` to ``target_hz`` (polyphase, anti-aliased)."""
    if math.isclose(rate_hz, target_hz, rel_tol=1e-9):
        return x
    ratio = Fraction(target_hz / rate_hz).limit_denominator(1000)
    if ratio.numerator == 0:
        raise HarvitError(f"--rate-hz {rate_hz}: too far from the model's {target_hz} Hz to resample")
    return sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=0)


# ---- prediction ---------------------------------------------------------------------------------
def predict_recording(trained: TrainedModel, acc: np.ndarray, gyro: np.ndarray, rate_hz: float | None = None,
                      smoother: HmmSmoother | None = None) -> dict[str, Any]:
    """Classify every window of one recording.

    Args:
        trained: from :func:`harvit.models.loading.load_trained` (trained on the 9 HAR channels).
        acc: [T, 3] total acceleration in g.
        gyro: [T, 3] angular velocity in rad/s.
        rate_hz: sampling rate of both, in Hz (None: the model's rate).
        smoother: the run's HMM (:mod:`harvit.deploy.smoothing`): ``pred`` is then the Viterbi path of the
            windows (the recording is one sequence); None: each window's arg-max.

    Returns:
        dict with ``start_s``, ``end_s`` (float64 [N], window bounds in seconds of the recording),
        ``pred`` (int64 [N] class index), ``label`` (list of N class names), ``prob`` (float64 [N],
        probability of the predicted class), ``probs`` (float64 [N, K], rows sum to 1), ``classes``
        (K names), ``seconds`` and ``share`` (dict class -> seconds / fraction of the covered time),
        ``covered_s``, ``duration_s``, ``rate_hz`` (the recording's), ``model_rate_hz``,
        ``window_length`` and ``stride`` (samples at the model's rate).
    """
    check_model(trained)
    rate = check_rate(rate_hz, trained.rate_hz)
    acc = np.asarray(acc, dtype=np.float64)
    gyro = np.asarray(gyro, dtype=np.float64)
    for name, a in (("acc", acc), ("gyro", gyro)):
        if a.ndim != 2 or a.shape[1] != 3:
            raise HarvitError(f"{name} has shape {list(a.shape)}; expected [T, 3] (x, y, z columns)")
        if not np.isfinite(a).all():
            raise HarvitError(f"{name} has {int((~np.isfinite(a)).sum())} NaN/Inf values; expected finite samples")
    if len(acc) != len(gyro):
        raise HarvitError(f"acc has {len(acc)} samples but gyro has {len(gyro)}; expected one row per sample in "
                          "both, at the same rate")
    model_rate = float(trained.rate_hz)
    length = int(trained.window_length)
    stride = max(1, length // 2)
    duration = len(acc) / rate
    need = length * rate / model_rate
    if len(acc) < math.ceil(need - 1e-9):
        raise HarvitError(f"the recording has {len(acc)} samples ({duration:.2f} s at {rate:g} Hz); one window "
                          f"needs {length / model_rate:.2f} s ({math.ceil(need)} samples)")
    acc_m, gyro_m = resample(acc, rate, model_rate), resample(gyro, rate, model_rate)
    sig = preprocess_inertial(acc_m, gyro_m, model_rate)
    windows = sliding_windows(sig, length, stride)
    if len(windows) == 0:
        raise HarvitError(f"the recording has {len(acc)} samples ({duration:.2f} s at {rate:g} Hz); one window "
                          f"needs {length / model_rate:.2f} s")
    probs = np.exp(window_log_probs(trained, windows).astype(np.float64))
    probs /= probs.sum(axis=1, keepdims=True)  # the mean of view log-probs is not exactly normalised
    pred = probs.argmax(axis=1) if smoother is None else smooth_log_probs(probs, smoother, stride / model_rate)
    n = len(windows)
    starts = np.arange(n) * stride
    classes = list(trained.classes)
    # each covered sample takes the prediction of the window whose centre is nearest
    covered = int(starts[-1] + length)
    t = np.arange(covered)
    owner = np.clip(np.floor((t - length / 2) / stride + 0.5), 0, n - 1).astype(np.int64)
    counts = np.bincount(pred[owner], minlength=len(classes))
    seconds = {c: float(counts[i] / model_rate) for i, c in enumerate(classes)}
    return dict(
        start_s=starts / model_rate, end_s=(starts + length) / model_rate, pred=pred.astype(np.int64),
        label=[classes[i] for i in pred], prob=probs[np.arange(n), pred], probs=probs, classes=classes,
        seconds=seconds, share={c: float(counts[i] / covered) for i, c in enumerate(classes)},
        covered_s=covered / model_rate, duration_s=duration, rate_hz=rate, model_rate_hz=model_rate,
        window_length=length, stride=stride,
    )


# ---- output -------------------------------------------------------------------------------------
def predictions_csv(result: dict[str, Any]) -> str:
    """CSV text: ``window,start_s,end_s,activity,probability,p_<class>...``, one row per window."""
    classes = result["classes"]
    rows = [",".join(["window", "start_s", "end_s", "activity", "probability", *[f"p_{c}" for c in classes]])]
    for i in range(len(result["pred"])):
        probs = ",".join(f"{p:.6f}" for p in result["probs"][i])
        rows.append(f"{i},{result['start_s'][i]:.3f},{result['end_s'][i]:.3f},{result['label'][i]},"
                    f"{result['prob'][i]:.6f},{probs}")
    return "\n".join(rows) + "\n"


#: Window rows ``harvit predict`` prints; every row goes to the CSV (``--out``).
HEAD_ROWS = 10


def format_predictions(result: dict[str, Any], head: int | None = HEAD_ROWS) -> str:
    """The summary (share of time per activity), then the first ``head`` window rows (None: all)."""
    width = max(len("activity"), *(len(c) for c in result["classes"]))
    n = len(result["pred"])
    lines = [f"summary: {n} windows, {result['covered_s']:.1f} s of {result['duration_s']:.1f} s classified"]
    order = sorted(result["classes"], key=lambda c: -result["share"][c])
    for c in order:
        if result["seconds"][c] > 0:
            lines.append(f"  {c:<{width}}  {100 * result['share'][c]:5.1f}%  {result['seconds'][c]:8.1f} s")
    shown = n if head is None else min(n, head)
    lines += ["", f"windows{'' if shown == n else f' (first {shown} of {n})'}:",
              f"{'start_s':>9} {'end_s':>9}  {'activity':<{width}}  probability"]
    for i in range(shown):
        lines.append(f"{result['start_s'][i]:9.2f} {result['end_s'][i]:9.2f}  {result['label'][i]:<{width}}  "
                     f"{result['prob'][i]:11.3f}")
    return "\n".join(lines)


def predict_command(checkpoint: str | Path | None, acc: str | Path, gyro: str | Path, rate_hz: float | None = None,
                    device: str = "auto", out: str | Path | None = None,
                    ensemble: list[str | Path] | None = None, smooth: str = "hmm") -> str:
    """``harvit predict``: read the two files, classify, optionally write the CSV; returns the text to print.

    With ``ensemble`` (run folders, checkpoints or a cv parent folder; ``checkpoint`` joins them when
    given) the windows' log-probabilities are the mean of the members' (:mod:`harvit.models.ensemble`).
    ``smooth``: ``hmm`` smooths with the run's ``smoother.json`` (not for an ensemble), ``none`` does not.
    """
    dev = pick_device(device)
    rate = None if rate_hz is None else check_rate(rate_hz, 0.0)
    acc_x = read_sensor_file(acc, "--acc")
    gyro_x = read_sensor_file(gyro, "--gyro")
    if len(acc_x) != len(gyro_x):
        raise HarvitError(f"{acc} has {len(acc_x)} rows but {gyro} has {len(gyro_x)}; expected equal lengths "
                          "(one row per sample in both)")
    if ensemble:
        trained = load_ensemble(([checkpoint] if checkpoint else []) + list(ensemble), dev)
        name = f"ensemble of {len(trained.model.members)} runs ({trained.path}, ...)"
    elif checkpoint:
        trained = load_trained(checkpoint, dev)
        name = str(trained.path)
    else:
        raise HarvitError("harvit predict: expected a run folder or checkpoint file, or --ensemble RUN [RUN ...]")
    smoother = None if ensemble else resolve_smoother(trained.path, trained.classes, smooth)
    result = predict_recording(trained, acc_x, gyro_x, rate, smoother=smoother)
    head = (f"model: {name} ({len(trained.classes)} classes, {trained.window_length} samples at "
            f"{trained.rate_hz:g} Hz per window)\nrecording: {acc} + {gyro}, {len(acc_x)} samples at "
            f"{result['rate_hz']:g} Hz" + (" (resampled)" if result["rate_hz"] != result["model_rate_hz"] else "")
            + "\n" + smoothing_line("none" if ensemble else smooth, smoother))
    text = head + "\n\n" + format_predictions(result)
    if out is not None:
        write_text(out, predictions_csv(result))
        text += f"\nevery window: {out} (CSV, {len(result['pred'])} rows)"
    elif len(result["pred"]) > HEAD_ROWS:
        text += "\nevery window: --out FILE writes them as CSV"
    return text


def predict_table_command(checkpoint: str | Path, table: str | Path, rate_hz: float | None = None,
                          device: str = "auto", out: str | Path | None = None,
                          timeline: str | Path | None = None, smooth: str = "hmm") -> str:
    """``harvit predict RUN --table FILE``: classify a table with the run's columns and preprocessing
    (:func:`harvit.deploy.table.predict_table`), write the window CSV and the timeline PNG; returns the
    text to print.

    Args:
        out: CSV path (default: ``<run>/predict_<table name>.csv``).
        timeline: PNG path (default: the CSV's path with ``_timeline.png``).
        smooth: ``hmm`` (the run's ``smoother.json``; without one, said in one line and not smoothed) or ``none``.
    """
    dev = pick_device(device)
    trained = load_trained(checkpoint, dev)
    table_options(trained)  # refuse a run not trained on a table before reading anything
    smoother = resolve_smoother(trained.path, trained.classes, smooth)
    result = predict_table(trained, table, rate_hz, smoother=smoother)
    run_dir = Path(trained.path).parent
    stem = Path(table).name.split(".")[0] or "table"
    csv_path = Path(out) if out is not None else run_dir / f"predict_{stem}.csv"
    png_path = Path(timeline) if timeline is not None else csv_path.with_name(csv_path.stem + "_timeline.png")
    write_text(csv_path, table_csv(result))
    plot_timeline(result, png_path, title=f"{Path(table).name}: predicted activity ({Path(trained.path).parent.name})")
    head = (f"model: {trained.path} ({len(trained.classes)} classes, {trained.window_length} samples at "
            f"{trained.rate_hz:g} Hz per window)\ntable: {table}\n{smoothing_line(smooth, smoother)}")
    return "\n".join([head, "", table_summary(result), "", f"predictions: {csv_path}", f"timeline: {png_path}"])
