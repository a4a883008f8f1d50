"""Classification metrics of window predictions (scikit-learn), and their registry.

A scalar metric is ONE function ``(y_true int [N], y_pred int [N], labels list[int]) -> float`` and ONE
registration, :func:`register_metric` (its key is the function's name; a display name, how it is
formatted, whether higher is better). Every record (training results, ``harvit evaluate``, the
baselines, cross-validation, ensembles) is assembled by :func:`metric_record`, and every table reads
:data:`METRICS`; nothing else names a metric's key. Per-class figures, per-subject figures and the
confusion matrix are not scalar metrics: :func:`classification_metrics` and :func:`per_subject_metrics`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from harvit.utils.registry import Registry

MetricFn = Callable[[np.ndarray, np.ndarray, list[int]], float]
STYLES = ("percent", "fraction")


@dataclass(frozen=True)
class Metric:
    """A registered scalar metric.

    Attributes:
        name: its key in every record (``test_<name>``, ``val_<name>``, ``<name>``).
        display: how tables and printouts call it (``"macro-F1"``).
        compute: ``(y_true int [N], y_pred int [N], labels) -> float``; ``labels``: the class indices
            that count (all classes of the data set; a subject's own classes for per-subject figures).
        style: ``percent`` (``93.1%``) or ``fraction`` (``0.931``).
        higher_is_better: False for an error or a loss.
    """

    name: str
    display: str
    compute: MetricFn
    style: str = "percent"
    higher_is_better: bool = True

    def format(self, value: float | None) -> str:
        """``93.1%`` or ``0.931`` (``-`` for a missing value)."""
        if value is None:
            return "-"
        return f"{100 * value:.1f}%" if self.style == "percent" else f"{value:.3f}"


#: The scalar metrics: key -> :class:`Metric`, in registration order (the first is the headline: the
#: verdict's paired test and the selection of epochs and baselines are on it).
METRICS: Registry[Metric] = Registry("metric", "metric")


def register_metric(display: str, *, style: str = "percent", higher_is_better: bool = True
                    ) -> Callable[[MetricFn], MetricFn]:
    """Decorator: register a metric under its function's name. It then appears in every record and table."""
    if style not in STYLES:
        raise ValueError(f"metric style {style!r}: expected one of {', '.join(STYLES)}")

    def add(fn: MetricFn) -> MetricFn:
        METRICS.add(Metric(fn.__name__, display, fn, style, higher_is_better))
        return fn

    return add


@register_metric("accuracy")
def accuracy(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> float:
    """The share of windows predicted right."""
    return float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0


@register_metric("macro-F1", style="fraction")
def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> float:
    """The mean of the classes' F1 (over ``labels``; a class with no window and no prediction scores 0)."""
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


@register_metric("balanced accuracy")
def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> float:
    """The mean of the recalls of the classes present in ``y_true``: every class counts alike however rare."""
    if not len(y_true):
        return 0.0
    with warnings.catch_warnings():  # sklearn warns when a predicted class has no true window: not an error here
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(y_true, y_pred))


HEADLINE: str = accuracy.__name__
"""The headline metric's key: epochs and baselines are selected on it, the verdict's paired test (McNemar's)
and Wilson intervals are about it, the per-subject plot draws it."""


def metric_record(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_classes: int,
                  prefix: str = "", labels: list[int] | None = None) -> dict[str, float]:
    """Every registered metric of one prediction set: ``{prefix + key: value}``, in registration order.

    Args:
        y_true, y_pred: int [N] class indices.
        n_classes: the number of classes (labels ``0..n_classes-1``), unless ``labels`` is given.
        prefix: ``"test_"``, ``"val_"`` or ``""``.
        labels: the class indices that count (default: all ``n_classes``).
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(n_classes)) if labels is None else labels
    return {f"{prefix}{m.name}": float(m.compute(t, p, labels)) for m in METRICS.values()}


def metric_value(record: Mapping[str, Any], metric: Metric, prefix: str = "",
                 y_true: Sequence[int] | None = None, y_pred: Sequence[int] | None = None,
                 n_classes: int | None = None) -> float | None:
    """``record[prefix + key]``, else computed from the record's per-window predictions when given (a record
    written before the metric was registered), else None."""
    value = record.get(f"{prefix}{metric.name}")
    if value is not None:
        return float(value)
    if y_true is None or y_pred is None or len(y_true) != len(y_pred) or not len(y_true):
        return None
    k = n_classes if n_classes is not None else int(max(max(y_true), max(y_pred))) + 1
    return float(metric.compute(np.asarray(y_true), np.asarray(y_pred), list(range(k))))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Window-level metrics.

    Args:
        y_true, y_pred: int [N] class indices.
        classes: class names, index = label.

    Returns:
        every registered metric (:func:`metric_record`: accuracy, macro_f1, balanced_accuracy, ...),
        per_class_accuracy (name -> recall), per_class (name -> precision, recall, f1, support),
        confusion_matrix (rows: true, columns: predicted; list of lists).
    """
    labels = list(range(len(classes)))
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    prec, rec, f1, sup = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        **metric_record(y_true, y_pred, len(classes)),
        "per_class_accuracy": {c: float(rec[i]) for i, c in enumerate(classes)},
        "per_class": {
            c: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                "support": int(sup[i])}
            for i, c in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
    }


def per_subject_metrics(y_true: np.ndarray, y_pred: np.ndarray, subject: np.ndarray, classes: list[str]
                        ) -> dict[str, Any]:
    """Every registered metric of each subject's windows, and their means (the convention of HAR papers).

    Args:
        y_true, y_pred: int [N] class indices.
        subject: int [N] subject id of each window.
        classes: class names, index = label.

    Returns:
        subjects: {subject id (str): {windows, correct, accuracy, macro_f1, ...}} (each metric over the
        classes the subject has windows of, or predicted); mean_<key> of each metric over subjects,
        std_accuracy (population std of the headline metric); and pooled accuracy, windows, correct over
        all windows (the subjects' windows and correct counts sum to these).
    """
    y_true, y_pred, subject = np.asarray(y_true), np.asarray(y_pred), np.asarray(subject)
    out: dict[str, Any] = {}
    for s in sorted(int(v) for v in np.unique(subject)):
        m = subject == s
        t, p = y_true[m], y_pred[m]
        present = sorted(set(t.tolist()) | set(p.tolist()))
        out[str(s)] = {"windows": int(m.sum()), "correct": int((t == p).sum()),
                       **metric_record(t, p, len(classes), labels=present)}
    means = {f"mean_{k}": float(np.mean([v[k] for v in out.values()])) if out else 0.0 for k in METRICS}
    return {
        "subjects": out,
        **means,
        f"std_{HEADLINE}": float(np.std([v[HEADLINE] for v in out.values()])) if out else 0.0,
        f"pooled_{HEADLINE}": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "windows": int(len(y_true)),
        "correct": int((y_true == y_pred).sum()),
    }
