"""Classification metrics of window predictions (scikit-learn)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Window-level metrics.

    Args:
        y_true, y_pred: int [N] class indices.
        classes: class names, index = label.

    Returns:
        accuracy, macro_f1, balanced_accuracy (the mean of the recalls of the classes present in
        ``y_true``: every class counts alike however rare), per_class_accuracy (name -> recall),
        per_class (name -> precision, recall, f1, support), confusion_matrix (rows: true, columns: predicted;
        list of lists).
    """
    labels = list(range(len(classes)))
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    prec, rec, f1, sup = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    with warnings.catch_warnings():  # sklearn warns when a predicted class has no true window: not an error here
        warnings.simplefilter("ignore")
        balanced = float(balanced_accuracy_score(y_true, y_pred)) if len(y_true) else 0.0
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "balanced_accuracy": balanced,
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
    """Accuracy and macro-F1 of each subject's windows, and their mean (the convention of HAR papers).

    Args:
        y_true, y_pred: int [N] class indices.
        subject: int [N] subject id of each window.
        classes: class names, index = label.

    Returns:
        subjects: {subject id (str): {windows, correct, accuracy, macro_f1}} (macro-F1 over the
        classes the subject has windows of, or predicted); mean_accuracy and std_accuracy over
        subjects (population std); mean_macro_f1; and pooled accuracy, windows, correct over all
        windows (the subjects' windows and correct counts sum to these).
    """
    y_true, y_pred, subject = np.asarray(y_true), np.asarray(y_pred), np.asarray(subject)
    out: dict[str, Any] = {}
    for s in sorted(int(v) for v in np.unique(subject)):
        m = subject == s
        t, p = y_true[m], y_pred[m]
        present = sorted(set(t.tolist()) | set(p.tolist()))
        out[str(s)] = {
            "windows": int(m.sum()),
            "correct": int((t == p).sum()),
            "accuracy": float((t == p).mean()),
            "macro_f1": float(f1_score(t, p, labels=present, average="macro", zero_division=0)),
        }
    accs = [v["accuracy"] for v in out.values()]
    f1s = [v["macro_f1"] for v in out.values()]
    return {
        "subjects": out,
        "mean_accuracy": float(np.mean(accs)) if accs else 0.0,
        "std_accuracy": float(np.std(accs)) if accs else 0.0,
        "mean_macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "pooled_accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "windows": int(len(y_true)),
        "correct": int((y_true == y_pred).sum()),
    }
