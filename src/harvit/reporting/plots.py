"""Plots of a run: training curves, LR schedule, confusion matrices, per-class and per-subject accuracy,
and the text classification report. The encoded images the model sees: :mod:`harvit.reporting.encoded`
(re-exported here).

Figures are built with matplotlib's object API on the Agg canvas (no pyplot state, no display
needed) and written as PNG atomically (:func:`harvit.utils.atomic.write_with`). Every ``plot_*``
function returns the path it wrote.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import ConfusionMatrixDisplay, classification_report, confusion_matrix

from harvit.config import Config
from harvit.evaluation.metrics import HEADLINE
from harvit.reporting.encoded import (
    MAX_EXAMPLE_ROWS,
    channel_titles,
    image_mosaic,
    pick_examples,
    plot_encoded_images,
)
from harvit.training.optim import build_scheduler
from harvit.training.results import TRAINING_RESULTS_FILE, TrainingResults, saved_config
from harvit.utils.errors import HarvitError
from harvit.utils.figures import LABEL_CHARS, new_figure, save_figure, short_labels

__all__ = [
    "MAX_EXAMPLE_ROWS",
    "TEXT_CELLS_UP_TO",
    "channel_titles",
    "generate_classification_report",
    "image_mosaic",
    "load_history",
    "pick_examples",
    "plot_confusion_matrices",
    "plot_confusion_matrix",
    "plot_encoded_images",
    "plot_lr_schedule",
    "plot_per_class_accuracy",
    "plot_per_subject_accuracy",
    "plot_training_history",
    "schedule_curve",
    "steps_per_epoch",
]


# new_figure, save_figure and short_labels: harvit.utils.figures (shared with deploy's predict timeline)
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(s) for s in lines if s.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise HarvitError(f"{path}: not readable as JSON lines ({e})") from None


def load_history(source: str | Path | dict[str, Any]) -> tuple[list[dict[str, Any]], Path | None]:
    """Per-epoch records of a run and its folder.

    Args:
        source: a run folder, its ``metrics.jsonl`` or ``training_results.json`` (the history is
            read from ``metrics.jsonl`` beside it, or from a ``history`` list inside), or a dict
            with a ``history`` list.

    Returns:
        (records, run folder or None): each record holds epoch, train_loss, train_acc, val_loss,
        val_acc, lr, ...
    """
    if isinstance(source, dict):
        if "history" not in source:
            raise HarvitError("training history: the dict holds no 'history' list")
        return list(source["history"]), None
    path = Path(source)
    run = path if path.is_dir() else path.parent
    if path.is_file() and path.suffix == ".jsonl":
        records = _read_jsonl(path)
    elif path.is_file() and path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise HarvitError(f"{path}: not readable JSON ({e})") from None
        if isinstance(data, dict) and isinstance(data.get("history"), list):
            records = data["history"]
        elif (run / "metrics.jsonl").is_file():
            records = _read_jsonl(run / "metrics.jsonl")
        else:
            raise HarvitError(f"{path}: holds no history and there is no metrics.jsonl beside it")
    elif path.is_dir():
        if not (path / "metrics.jsonl").is_file():
            raise HarvitError(f"{path}: no metrics.jsonl in this run folder (has it trained an epoch?)")
        records = _read_jsonl(path / "metrics.jsonl")
    else:
        raise HarvitError(f"{path}: no such run folder, metrics.jsonl or training_results.json")
    if not records:
        raise HarvitError(f"{path}: the training history is empty")
    return records, run


def _default_out(run: Path | None, out: str | Path | None, name: str) -> Path:
    if out is not None:
        return Path(out)
    if run is None:
        raise HarvitError(f"{name}: no output path given and no run folder to write into")
    return run / "plots" / name


# ---------------------------------------------------------------------------------------------
# Training curves and LR
# ---------------------------------------------------------------------------------------------
def plot_training_history(results_json_or_run_dir: str | Path | dict[str, Any], out: str | Path | None = None
                          ) -> Path:
    """Loss and accuracy per epoch, train vs validation (best validation epoch marked).

    Args:
        results_json_or_run_dir: see :func:`load_history`.
        out: PNG path (default ``<run>/plots/training_history.png``).
    """
    records, run = load_history(results_json_or_run_dir)
    ep = [r["epoch"] for r in records]
    fig = new_figure(10, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, title in ((ax_loss, "loss", "Loss"), (ax_acc, "acc", "Accuracy")):
        train_label = "train (label-smoothed)" if key == "loss" else "train"
        ax.plot(ep, [r[f"train_{key}"] for r in records], "o-", label=train_label, ms=3)
        ax.plot(ep, [r[f"val_{key}"] for r in records], "s-", label="validation", ms=3)
        ax.set(title=title, xlabel="epoch", ylabel=title.lower())
        ax.grid(alpha=0.3)
    best = max(records, key=lambda r: r["val_acc"])
    ax_acc.axvline(best["epoch"], color="grey", ls="--", lw=1)
    ax_acc.annotate(f"best val {best['val_acc']:.3f}", (best["epoch"], best["val_acc"]),
                    textcoords="offset points", xytext=(4, -14), fontsize=8)
    ax_acc.legend(loc="lower right")
    ax_loss.legend(loc="upper right")
    if len(ep) < 15:
        for ax in (ax_loss, ax_acc):
            ax.set_xticks(ep)
    return save_figure(fig, _default_out(run, out, "training_history.png"))


def steps_per_epoch(run: Path | None, records: list[dict[str, Any]], config: Config) -> int | None:
    """Optimiser steps per epoch of a run, or None when it cannot be told.

    From ``training_results.json`` (``steps_per_epoch``, or the training windows) and the first
    epoch's samples (``samples_per_s * train_time_s`` = windows x views), with the config's batch
    size and accumulation.
    """
    if run is None or not (run / TRAINING_RESULTS_FILE).is_file():
        return None
    try:
        results = TrainingResults.load(run / TRAINING_RESULTS_FILE)
        if results.steps_per_epoch:
            return int(results.steps_per_epoch)
        n_train = results.split["train"].windows
        samples = float(records[0]["samples_per_s"]) * float(records[0]["train_time_s"])
    except (HarvitError, KeyError, TypeError, ValueError, IndexError):
        return None
    if n_train <= 0 or samples <= 0:
        return None
    views = max(1, round(samples / n_train))
    return max(1, math.ceil(n_train * views / max(1, config.batch_size * config.accum_steps)))


def schedule_curve(cfg: Config, steps_per_epoch: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The LR schedule of a config, per optimiser step.

    Rebuilds the trainer's scheduler (:func:`harvit.training.optim.build_scheduler`) on a dummy optimiser.

    Returns:
        (epoch [P + 1], lr [P + 1]): the LR in effect after each of the P = epochs * steps_per_epoch
        steps (and before the first), against fractional epochs.
    """
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(cfg.epochs * steps_per_epoch):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return np.arange(len(lrs)) / steps_per_epoch, np.asarray(lrs)


def plot_lr_schedule(results_json_or_run_dir: str | Path | dict[str, Any], out: str | Path | None = None,
                     config: Config | dict[str, Any] | None = None) -> Path:
    """The learning rate: the configured schedule per step (rebuilt from the config) and the LR
    recorded at the end of every epoch.

    Args:
        results_json_or_run_dir: see :func:`load_history`.
        out: PNG path (default ``<run>/plots/lr_schedule.png``).
        config: the run's settings, or a saved ``config.json`` as a dict (default: the run's ``config.json``
            when there is one).
    """
    records, run = load_history(results_json_or_run_dir)
    if isinstance(config, dict):
        config = saved_config(config)
    if config is None and run is not None and (run / "config.json").is_file():
        config = saved_config(json.loads((run / "config.json").read_text(encoding="utf-8")), str(run / "config.json"))
    fig = new_figure(6.5, 3.5)
    ax = fig.subplots()
    if config is not None:
        spe = steps_per_epoch(run, records, config)
        x, lr = schedule_curve(config, spe or 50)
        ax.plot(x, lr, "-", lw=1.5, label=f"schedule ({spe} steps/epoch)" if spe else "schedule")
    ax.plot([r["epoch"] for r in records], [r["lr"] for r in records], "o", ms=4, label="recorded, end of epoch")
    ax.set(title="Learning rate", xlabel="epoch", ylabel="learning rate")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save_figure(fig, _default_out(run, out, "lr_schedule.png"))


# ---------------------------------------------------------------------------------------------
# Confusion matrices and per-class accuracy
# ---------------------------------------------------------------------------------------------
TEXT_CELLS_UP_TO = 30
"""Confusion matrices of more classes show colours only (numbers would not fit a readable figure)."""


def _draw_confusion(ax: Any, cm: np.ndarray, classes: list[str], normalize: bool, title: str) -> None:
    values = cm.astype(float)
    k = len(classes)
    if normalize:
        rows = values.sum(axis=1, keepdims=True)
        values = np.divide(values, rows, out=np.zeros_like(values), where=rows > 0)
    disp = ConfusionMatrixDisplay(values, display_labels=short_labels(classes))
    disp.plot(ax=ax, cmap="Blues", colorbar=False, xticks_rotation=90 if k > 12 else 45,
              include_values=k <= TEXT_CELLS_UP_TO, values_format=".2f" if normalize else ".0f",
              im_kw={"vmin": 0.0, "vmax": 1.0} if normalize else None)
    ax.set_title(title)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if disp.text_ is not None:
        size = max(5, 11 - k // 2)
        for t in disp.text_.ravel():
            t.set_fontsize(size)
    if k > TEXT_CELLS_UP_TO:  # no numbers in the cells: a colour scale instead
        ax.figure.colorbar(disp.im_, ax=ax, shrink=0.5, fraction=0.04)
    side_in = ax.figure.get_size_inches()[1]
    tick = min(8.0, max(4.0, 0.7 * 72 * 0.7 * side_in / k))  # ~70% of a row's height, in points
    for label in ax.get_xticklabels():
        label.set_ha("right" if k <= 12 else "center")
        label.set_fontsize(tick)
    for label in ax.get_yticklabels():
        label.set_fontsize(tick)


def plot_confusion_matrices(cm: np.ndarray | list[list[int]], classes: list[str], out: str | Path,
                            which: tuple[str, ...] = ("counts", "normalized")) -> Path:
    """Confusion matrix panels side by side: ``counts`` and/or row-``normalized`` (recall per row).

    Readable for 2-100 classes: long names are shortened on the axes (:func:`short_label`), a panel
    is at most 18 inches, and above :data:`TEXT_CELLS_UP_TO` classes the cells show colours only.

    Args:
        cm: int [K, K] (rows: true class, columns: predicted).
        classes: K class names (axis labels).
        out: PNG path.
    """
    cm = np.asarray(cm)
    k = len(classes)
    if cm.shape != (k, k):
        raise HarvitError(f"confusion matrix: shape {list(cm.shape)} for {k} classes")
    longest = max((len(c) for c in short_labels(classes)), default=1)
    side = min(18.0, 2.2 + 0.55 * k if k <= TEXT_CELLS_UP_TO else 6.0 + 0.12 * k) + 0.07 * longest
    fig = new_figure(side * len(which), side)
    axes = np.atleast_1d(fig.subplots(1, len(which)))
    for ax, kind in zip(axes, which, strict=True):
        norm = kind == "normalized"
        _draw_confusion(ax, cm, classes, norm, "Row-normalised (recall)" if norm else "Counts")
    return save_figure(fig, out)


def plot_confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], out: str | Path,
                          normalize: bool = False) -> Path:
    """The confusion matrix of labels (sklearn's ``confusion_matrix`` and ``ConfusionMatrixDisplay``).

    Args:
        y_true, y_pred: int [N] class indices.
        classes: K class names, index = label.
        out: PNG path.
        normalize: divide each row by its count (recall on the diagonal).
    """
    cm = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(range(len(classes))))
    return plot_confusion_matrices(cm, classes, out, ("normalized",) if normalize else ("counts",))


def plot_per_class_accuracy(per_class_accuracy: dict[str, float], out: str | Path,
                            reference: dict[str, dict[str, float]] | None = None) -> Path:
    """Horizontal bars of per-class accuracy (recall), optionally beside reference models'.

    Args:
        per_class_accuracy: class name -> accuracy in [0, 1] (the model's).
        out: PNG path.
        reference: label -> {class name -> accuracy}, e.g. the baselines.
    """
    classes = list(per_class_accuracy)
    series = {"ViT": per_class_accuracy, **(reference or {})}
    n = len(series)
    k = len(classes)
    height = 0.8 / n
    per_row = 0.45 * max(1, n * 0.6) if k <= 30 else 0.16 * max(1.0, n * 0.5)  # inches per class
    fig = new_figure(7 + 0.06 * LABEL_CHARS, min(30.0, 1.2 + per_row * k))
    ax = fig.subplots()
    y = np.arange(k)
    for i, (label, acc) in enumerate(series.items()):
        vals = [100 * acc.get(c, 0.0) for c in classes]
        bars = ax.barh(y - 0.4 + height * (i + 0.5), vals, height=height, label=label)
        if i == 0 and k <= 30:
            ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
    ax.set_yticks(y, short_labels(classes))
    if k > 30:
        ax.tick_params(axis="y", labelsize=min(8.0, max(4.0, 0.7 * 72 * per_row)))
    ax.set_ylim(k - 0.5, -0.5)  # first class on top
    ax.set(xlim=(0, 108), xlabel="accuracy (recall) %", title="Per-class accuracy (test)")
    ax.grid(axis="x", alpha=0.3)
    if n > 1:
        fig.legend(loc="outside lower center", ncols=n, fontsize=8)
    return save_figure(fig, out)


def plot_per_subject_accuracy(per_subject: dict[str, dict[str, Any]], out: str | Path,
                              reference: dict[str, dict[str, dict[str, Any]]] | None = None) -> Path:
    """Vertical bars of each test subject's accuracy, optionally beside reference models'.

    Args:
        per_subject: subject id -> {accuracy in [0, 1], windows, ...} (the model's, as
            :func:`harvit.evaluation.metrics.per_subject_metrics` gives under ``subjects``).
        out: PNG path.
        reference: label -> the same mapping for other models (e.g. the baselines).
    """
    if not per_subject:
        raise HarvitError("no per-subject results to plot")
    subjects = list(per_subject)
    series = {"ViT": per_subject, **(reference or {})}
    n = len(series)
    width = 0.8 / n
    fig = new_figure(max(6.0, 0.5 * len(subjects) * max(1, n * 0.6)), 4)
    ax = fig.subplots()
    x = np.arange(len(subjects))
    lowest = 100.0
    for i, (label, ps) in enumerate(series.items()):
        vals = [100 * ps.get(s, {}).get(HEADLINE, 0.0) for s in subjects]
        lowest = min(lowest, *vals)
        ax.bar(x - 0.4 + width * (i + 0.5), vals, width=width, label=label)
    mean = 100 * float(np.mean([per_subject[s][HEADLINE] for s in subjects]))
    ax.axhline(mean, color="k", lw=0.8, ls="--", label=f"ViT mean of subjects {mean:.1f}%")
    ax.set_xticks(x, subjects)
    ax.set(ylim=(max(0.0, lowest - 5), 100.5), xlabel="test subject", ylabel="accuracy %",
           title="Per-subject accuracy (test)")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=min(4, n + 1), fontsize=8)
    return save_figure(fig, out)


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------
def generate_classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str] | None = None
                                   ) -> str:
    """scikit-learn's ``classification_report`` (precision, recall, F1, support per class; 4 digits).

    Args:
        y_true, y_pred: int [N] class indices.
        classes: class names, index = label (default: the labels present, as numbers).
    """
    if classes is None:
        return classification_report(y_true, y_pred, digits=4, zero_division=0)
    return classification_report(y_true, y_pred, labels=list(range(len(classes))), target_names=list(classes),
                                 digits=4, zero_division=0)
