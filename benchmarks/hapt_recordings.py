"""HAPT's test subjects' continuous recordings through ``harvit predict``, with and without HMM smoothing.

HAPT's raw files are whole experiments (about 5 minutes each at 50 Hz, acc + gyro) with labelled
intervals in ``RawData/labels.txt``; between and around them the subject stands, turns or changes
posture. Each test subject's experiment goes through the path of ``harvit predict RUN --acc FILE --gyro
FILE`` (:func:`harvit.deploy.predict.predict_recording`: the training preprocessing, windows of 128
samples at stride 64 over every sample), and each sample takes the prediction of the window whose
centre is nearest (as ``predict`` does for its time shares). Scored: every sample inside a labelled
interval of one of the model's classes (HAPT's postural transitions are not hapt6 classes and are left
out), per-sample accuracy and macro-F1, once with each window's own prediction (``--smooth none``)
and once with the run's hidden Markov model (``--smooth hmm``, :mod:`harvit.deploy.smoothing`).

Without ``--run`` it first trains a ``cpu``-preset run on hapt6 (which writes ``smoother.json``); a run
without ``smoother.json`` (trained before smoothers existed) gets one fitted from its folder.

    HARVIT_DATA_DIR=../shared/data PYTHONPATH=src python benchmarks/hapt_recordings.py \
        [--run RUN | --epochs 8 [--no-refit]] [--json hapt_recordings.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from harvit.data import resolve_data_dir
from harvit.data.archive import open_source
from harvit.data.hapt import MARKER, TEST_SUBJECTS, locate_hapt, read_activity_labels, read_segments
from harvit.data.signals import parse_numeric_text
from harvit.deploy.predict import predict_recording
from harvit.deploy.smoothing import load_smoother, smooth_log_probs
from harvit.models.loading import load_trained
from harvit.training.smoother import smoother_for_run_dir
from harvit.utils.atomic import write_json
from harvit.utils.machine import describe_machine, machine_info


def train_run(out_dir: Path, epochs: int, refit: bool) -> Path:
    """Train ``harvit train --preset cpu --dataset hapt6`` in a fresh process; returns the run folder."""
    cmd = [sys.executable, "-m", "harvit", "train", "--preset", "cpu", "--dataset", "hapt6", "--epochs", str(epochs),
           "--output-dir", str(out_dir), "--run-name", "hapt6_recordings", "--no-report", "--no-baselines",
           "--no-progress", *([] if refit else ["--no-refit"])]
    print("training:", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return out_dir / "hapt6_recordings"


def sample_owner(n_samples: int, n_windows: int, length: int, stride: int) -> np.ndarray:
    """int64 [n_samples]: the window whose centre is nearest to each sample (the first / last beyond them)."""
    t = np.arange(n_samples)
    return np.clip(np.floor((t - length / 2) / stride + 0.5), 0, n_windows - 1).astype(np.int64)


def recording_labels(rows: np.ndarray, n_samples: int, names: list[str], classes: list[str]) -> np.ndarray:
    """int64 [n_samples]: the model's class index of each sample inside a labelled interval of one of its
    classes, -1 elsewhere. ``rows``: labels.txt rows (exp, user, activity id, start, end 1-based inclusive)."""
    out = np.full(n_samples, -1, dtype=np.int64)
    index = {c: k for k, c in enumerate(classes)}
    for _exp, _user, act, start, end, _line in rows:
        k = index.get(names[int(act) - 1])
        if k is not None:
            out[int(start) - 1:int(end)] = k
    return out


def changes(x: np.ndarray) -> int:
    return int((x[1:] != x[:-1]).sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="a trained hapt6 run folder (default: train one)")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of the run trained without --run")
    ap.add_argument("--no-refit", action="store_true", help="train without the refit on training + validation")
    ap.add_argument("--output-dir", default=None, help="where a trained run goes (default: a temporary folder)")
    ap.add_argument("--data-dir", default=None, help="folder holding hapt/ (default: HARVIT_DATA_DIR)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="write the results here")
    ns = ap.parse_args(argv)

    t0 = time.perf_counter()
    run = Path(ns.run) if ns.run else train_run(Path(ns.output_dir or tempfile.mkdtemp(prefix="hapt_rec_")),
                                                ns.epochs, not ns.no_refit)
    train_s = time.perf_counter() - t0
    trained = load_trained(run, ns.device)
    smoother = load_smoother(run)
    fitted_here = smoother is None
    if smoother is None:
        print(f"{run}: no smoother.json; fitting one from the run's folder", flush=True)
        smoother = smoother_for_run_dir(run, ns.device, ns.data_dir)
    classes = list(trained.classes)

    path = locate_hapt(resolve_data_dir(ns.data_dir), allow_download=False)
    truth, raw, smooth, subjects = [], [], [], []
    per_recording = []
    t1 = time.perf_counter()
    with open_source(path, MARKER) as src:
        names = read_activity_labels(src)
        segments = read_segments(src, len(names))
        pairs = sorted({(int(e), int(u)) for e, u in segments[:, :2] if int(u) in TEST_SUBJECTS})
        for i, (exp, user) in enumerate(pairs, 1):
            acc, gyro = (parse_numeric_text(src.read(rel), src.where(rel), ncols=3)
                         for rel in (f"RawData/{s}_exp{exp:02d}_user{user:02d}.txt" for s in ("acc", "gyro")))
            result = predict_recording(trained, acc, gyro, rate_hz=50.0)
            stride_s = result["stride"] / result["model_rate_hz"]
            pred_raw = result["pred"]
            pred_hmm = smooth_log_probs(result["probs"], smoother, stride_s)
            owner = sample_owner(len(acc), len(pred_raw), result["window_length"], result["stride"])
            y = recording_labels(segments[segments[:, 0] == exp], len(acc), names, classes)
            known = y >= 0
            a_raw, a_hmm = pred_raw[owner][known], pred_hmm[owner][known]
            truth.append(y[known])
            raw.append(a_raw)
            smooth.append(a_hmm)
            subjects.append(np.full(int(known.sum()), user))
            per_recording.append({
                "exp": exp, "user": user, "samples": len(acc), "labelled_samples": int(known.sum()),
                "windows": len(pred_raw), "accuracy_none": float((a_raw == y[known]).mean()),
                "accuracy_hmm": float((a_hmm == y[known]).mean()),
                "changes_none": changes(pred_raw), "changes_hmm": changes(pred_hmm),
            })
            r = per_recording[-1]
            print(f"[{i}/{len(pairs)}] exp {exp:2d} user {user:2d}: {r['windows']} windows, per-sample accuracy "
                  f"{100 * r['accuracy_none']:.2f}% -> {100 * r['accuracy_hmm']:.2f}% smoothed; class changes "
                  f"{r['changes_none']} -> {r['changes_hmm']}", flush=True)
    y, p_raw, p_hmm, subj = map(np.concatenate, (truth, raw, smooth, subjects))
    labels = list(range(len(classes)))
    out = {
        "run": str(run), "run_trained_here": ns.run is None, "train_s": round(train_s, 1),
        "smoother_fitted_here": fitted_here, "smoother_step_s": smoother.step_s,
        "prediction_stride_s": stride_s, "classes": classes,
        "test_subjects": sorted(int(s) for s in np.unique(subj)), "recordings": len(per_recording),
        "labelled_samples": int(len(y)),
        "accuracy_none": float((p_raw == y).mean()), "accuracy_hmm": float((p_hmm == y).mean()),
        "macro_f1_none": float(f1_score(y, p_raw, labels=labels, average="macro")),
        "macro_f1_hmm": float(f1_score(y, p_hmm, labels=labels, average="macro")),
        "changes_none": sum(r["changes_none"] for r in per_recording),
        "changes_hmm": sum(r["changes_hmm"] for r in per_recording),
        "per_subject": {int(s): {"accuracy_none": float((p_raw[subj == s] == y[subj == s]).mean()),
                                 "accuracy_hmm": float((p_hmm[subj == s] == y[subj == s]).mean())}
                        for s in np.unique(subj)},
        "per_recording": per_recording, "predict_s": round(time.perf_counter() - t1, 1),
    }
    print(f"\nHAPT test subjects {out['test_subjects']}: {out['recordings']} recordings, "
          f"{out['labelled_samples']} labelled samples of the model's {len(classes)} classes")
    print(f"{'':18}{'accuracy':>10}{'macro-F1':>10}{'changes':>9}")
    for key, name in (("none", "--smooth none"), ("hmm", "--smooth hmm")):
        print(f"{name:18}{100 * out[f'accuracy_{key}']:9.2f}%{100 * out[f'macro_f1_{key}']:9.2f}%"
              f"{out[f'changes_{key}']:9d}")
    out["machine"] = machine_info()
    print(f"machine: {describe_machine(out['machine'])}")
    if ns.json:
        write_json(ns.json, out)
        print(f"results: {ns.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
