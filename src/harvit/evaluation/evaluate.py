"""Metrics and evaluation of trained models (scikit-learn does the counting).

* :func:`classification_metrics`: window-level accuracy, macro-F1, per-class precision/recall/F1
  and the confusion matrix from label arrays.
* :func:`evaluate_model` and :func:`window_loader`: the plain Python API, ``(y_true, y_pred)``
  of any module mapping windows [B, C, T] to class scores [B, K] over any iterable of batches.
* :func:`evaluate_checkpoint` and :func:`format_evaluation`: ``harvit evaluate RUN|CKPT``.

A window's prediction is the mean of its views' log-probabilities
(:func:`harvit.models.classifier.aggregate_views`); view accuracy scores every view image on its own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import harvit.data
from harvit.data import train_val_split
from harvit.evaluation.inference import Split, evaluate_split
from harvit.evaluation.metrics import (
    HEADLINE,
    METRICS,
    Metric,
    classification_metrics,
    metric_value,
    per_subject_metrics,
)
from harvit.models.loading import TrainedModel, load_trained
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError
from harvit.utils.runtime import autocast_factory, pick_device

if TYPE_CHECKING:
    from harvit.data import Dataset, Windows

SPLITS = ("test", "val")












# ---------------------------------------------------------------------------------------------
# harvit evaluate
# ---------------------------------------------------------------------------------------------
def _run_dir_of(target: Path) -> Path:
    return target if target.is_dir() else target.parent


def select_split(ds: Dataset, split: str, val_fraction: float, seed: int,
                 val_subjects: list[int] | None = None) -> Windows:
    """The windows of ``split``: ``test`` (the data set's test subjects) or ``val`` (the seeded
    subject hold-out of training, or the run's explicit ``val_subjects``, exactly as
    :func:`harvit.training.train` made it)."""
    if split == "test":
        return ds.test
    if split == "val":
        return train_val_split(ds.train, val_fraction, seed, val_subjects)[1]
    raise HarvitError(f"--split: unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def check_compatible(windows: Windows, classes: list[str], channels: list[str], window_length: int,
                     dataset: str) -> None:
    """Refuse windows whose classes, channels or length differ from the model's."""
    if list(windows.classes) != list(classes):
        raise HarvitError(f"--dataset {dataset}: its classes ({', '.join(windows.classes)}) differ from the "
                          f"model's ({', '.join(classes)}); expected the same class names in the same order")
    if list(windows.channels) != list(channels):
        raise HarvitError(f"--dataset {dataset}: its channels ({', '.join(windows.channels)}) differ from "
                          f"the model's ({', '.join(channels)})")
    if windows.length != window_length:
        raise HarvitError(f"--dataset {dataset}: windows of {windows.length} samples; the model was trained "
                          f"on {window_length}")


def evaluation_windows(tm: TrainedModel, split: str, dataset: str | Dataset | None = None,
                       data_dir: str | None = None) -> tuple[Windows, str]:
    """The windows of ``split`` a trained model is scored on, and the data set's name: the run's data set
    (own-data settings included) unless another name or a loaded :class:`~harvit.data.Dataset` is given;
    validation windows as in training (the run's ``--train-stride``, subjects and seed)."""
    cfg = tm.config
    if dataset is None or isinstance(dataset, str):
        name = dataset or cfg.dataset
        ds = harvit.data.load_run_dataset(cfg, dataset=name, data_dir=data_dir, dense_train=split == "val")
    else:
        ds, name = dataset, dataset.name
    windows = select_split(ds, split, cfg.val_fraction, cfg.val_seed, cfg.val_subject_list)
    check_compatible(windows, tm.classes, tm.channels, tm.window_length, name)
    if len(windows) == 0:
        raise HarvitError(f"--split {split}: the {name} {split} split holds no windows")
    return windows, name


def metrics_record(y_true: np.ndarray, y_pred: np.ndarray, windows: Windows, classes: list[str], name: str,
                   split: str) -> dict[str, Any]:
    """The metrics part of an evaluation result: data set, split, windows, subjects, every registered metric
    (:data:`harvit.evaluation.metrics.METRICS`), per-class and per-subject figures, confusion matrix, classes
    (``y_*``: int [N] class indices)."""
    metrics = classification_metrics(y_true, y_pred, classes)
    return {
        "dataset": name,
        "split": split,
        "windows": len(windows),
        "subjects": windows.subjects(),
        **metrics,  # every registered metric, per_class_accuracy, per_class, confusion_matrix
        "per_subject": per_subject_metrics(y_true, y_pred, windows.subject, classes),
        "classes": list(classes),
    }


def evaluate_checkpoint(target: str | Path, split: str = "test", dataset: str | Dataset | None = None,
                        data_dir: str | None = None, device: str = "auto",
                        json_path: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a trained run (folder: its ``best.pt``) or checkpoint file on a split.

    Args:
        target: run folder or checkpoint file.
        split: ``test`` or ``val`` (val = the run's seeded subject hold-out of the training subjects).
        dataset: another data set name with the same class names (default: the run's), or a
            loaded :class:`~harvit.data.Dataset`.
        data_dir: data folder (default: the run's, then ``$HARVIT_DATA_DIR``).
        device: ``auto`` | ``cpu`` | ``cuda``.
        json_path: where to write the result (default ``<run>/evaluation_<split>.json``).

    Returns:
        dict: every registered metric (accuracy, macro_f1, balanced_accuracy, ...), loss, view_accuracy,
        per_class_accuracy, per_class,
        confusion_matrix, classes, split, dataset, windows, subjects, checkpoint, epoch, device,
        time_s, json_path, y_true and y_pred (class indices per window, in the split's order).
    """
    if split not in SPLITS:
        raise HarvitError(f"--split: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    target = Path(target)
    if not target.exists():
        raise HarvitError(f"{target}: no such run folder or checkpoint file")
    t0 = time.perf_counter()
    dev = pick_device(device)
    tm = load_trained(target, dev)
    cfg = tm.config
    windows, name = evaluation_windows(tm, split, dataset, data_dir)
    out = evaluate_split(tm.model, Split.from_windows(split, windows, dev), cfg.eval_batch_size,
                         autocast_factory(dev, cfg.amp, cfg.amp_dtype))
    json_path = Path(json_path) if json_path else _run_dir_of(target) / f"evaluation_{split}.json"
    refit = tm.checkpoint.get("phase") == "refit"
    result: dict[str, Any] = {
        "checkpoint": str(tm.path),
        "epoch": int(tm.checkpoint.get("epoch", 0)),
        **metrics_record(out["y_true"].numpy(), out["y_pred"].numpy(), windows, tm.classes, name, split),
        "loss": float(out["loss"]),
        "view_accuracy": float(out["view_acc"]),
        "n_views": int(tm.model.n_views),
        "device": str(dev),
        "time_s": round(time.perf_counter() - t0, 3),
        "json_path": str(json_path),
        "y_true": [int(v) for v in out["y_true"].tolist()],  # per window, in the split's order
        "y_pred": [int(v) for v in out["y_pred"].tolist()],
    }
    if refit and split == "val":
        result["note"] = (f"{tm.path.name} was refit on training + validation windows: these validation scores are "
                          "of windows it trained on; the selection's model is selected.pt")
    write_json(json_path, result)
    return result


def format_confusion(cm: list[list[int]], classes: list[str]) -> str:
    """A fixed-width confusion matrix (rows: true class, columns: predicted, numbered as the rows)."""
    width = max(5, *(len(str(v)) + 1 for row in cm for v in row))
    name_w = max(len(c) for c in classes) + 4
    head = " " * name_w + "".join(f"{f'({j})':>{width}}" for j in range(len(classes)))
    lines = [head]
    for i, (c, row) in enumerate(zip(classes, cm, strict=True)):
        lines.append(f"{f'({i}) {c}':<{name_w}}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def _width(metric: Metric) -> int:
    """A printout column's width for ``metric``: its display name, at least 8."""
    return max(8, len(metric.display))


def format_evaluation(result: dict[str, Any]) -> str:
    """The ``harvit evaluate`` printout: headline metrics, per-class table, confusion matrix."""
    classes = result["classes"]
    name_w = max(10, *(len(c) for c in classes))
    lines = [
        f"{result['dataset']} {result['split']}: {result['windows']} windows, "
        f"{len(result['subjects'])} subjects | {result['checkpoint']} (epoch {result['epoch']})",
        *(f"{m.display:<18} {v:.4f}" for m in METRICS.values()
          if (v := metric_value(result, m, "", result.get("y_true"), result.get("y_pred"), len(classes))) is not None),
        f"{'view accuracy':<18} {result['view_accuracy']:.4f} ({result['n_views']} views per window)",
        f"{'loss':<18} {result['loss']:.4f}",
        "",
        f"{'class':<{name_w}}  precision  recall      f1  support",
    ]
    for c in classes:
        m = result["per_class"][c]
        lines.append(f"{c:<{name_w}}  {m['precision']:>9.4f}  {m['recall']:>6.4f}  {m['f1']:>6.4f}  "
                     f"{m['support']:>7d}")
    ps = result.get("per_subject")
    if ps:
        head = METRICS.get(HEADLINE)
        shown = [m for m in METRICS.values() if all(m.name in v for v in ps["subjects"].values())]
        lines += ["", f"per subject (mean of subject {head.display} {ps[f'mean_{HEADLINE}']:.4f} +- "
                  f"{ps[f'std_{HEADLINE}']:.4f}; pooled {ps[f'pooled_{HEADLINE}']:.4f})",
                  f"{'subject':>7}  {'windows':>7}" + "".join(f"  {m.display:>{_width(m)}}" for m in shown)]
        lines += [f"{s:>7}  {v['windows']:>7}" + "".join(f"  {v[m.name]:>{_width(m)}.4f}" for m in shown)
                  for s, v in ps["subjects"].items()]
    if result.get("note"):
        lines += ["", f"note: {result['note']}"]
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              format_confusion(result["confusion_matrix"], classes), "",
              f"written: {result['json_path']}"]
    return "\n".join(lines)
