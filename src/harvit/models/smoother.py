"""A run's hidden Markov model over window predictions: its parameters, how they are fitted, its file.

The model is the one stepcount and the Capture-24 benchmark (Chan et al. 2024, "CAPTURE-24: a large
dataset of wrist-worn activity tracker data collected in the wild for human activity recognition")
smooth window predictions with: hidden states are the true classes, observations the predicted
classes. Its parameters are counted, not trained:

- ``start``: the class shares of the training windows;
- ``transition``: how often a training window of class i is followed by one of class j, over the
  windows of each recording in time order, at the training windows' step ``step_s``;
- ``emission``: how often the model predicts class j for a validation window of true class i
  (the validation subjects were not trained on, so this is the model's error rate on new people).

Every count gets one pseudo-count (Laplace), so no transition or confusion is impossible. Applying the
model (Viterbi, the transitions rescaled to the prediction stride) is :mod:`harvit.deploy.smoothing`.
The parameters are kept beside the checkpoint as ``smoother.json`` (:func:`save_smoother`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError

SMOOTHER_FILE = "smoother.json"
"""The smoother's file in a run folder."""
FORMAT = "harvit-hmm-smoother/1"
"""The ``format`` key of :data:`SMOOTHER_FILE`."""
PSEUDO_COUNT = 1.0
"""Added to every start, transition and emission count before normalising (Laplace smoothing)."""


@dataclass
class HmmSmoother:
    """A categorical hidden Markov model over K classes.

    Attributes:
        classes: the K class names, index = class.
        start: float64 [K] initial class probabilities (sum 1).
        transition: float64 [K, K] P(class j at the next step | class i), rows sum to 1, at ``step_s``.
        step_s: the step in seconds (window stride) the transitions were counted at.
        emission: float64 [K, K] P(predicted j | true i), rows sum to 1.
        info: what it was fitted on (counts of sequences, windows, validation windows).
    """

    classes: list[str]
    start: np.ndarray
    transition: np.ndarray
    step_s: float
    emission: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.classes = [str(c) for c in self.classes]
        self.start = np.asarray(self.start, dtype=np.float64)
        self.transition = np.asarray(self.transition, dtype=np.float64)
        self.emission = np.asarray(self.emission, dtype=np.float64)
        self.step_s = float(self.step_s)
        check_smoother(self, "smoother")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of :data:`SMOOTHER_FILE`."""
        return {"format": FORMAT, "classes": list(self.classes), "step_s": self.step_s,
                "start": self.start.tolist(), "transition": self.transition.tolist(),
                "emission": self.emission.tolist(), "info": dict(self.info)}


def check_smoother(s: HmmSmoother, where: str) -> None:
    """Raise :class:`HarvitError` naming ``where`` unless the shapes agree with the K classes, every value is
    a finite probability, every row sums to 1 and ``step_s`` is positive."""
    k = len(s.classes)
    if k < 1:
        raise HarvitError(f"{where}: no classes")
    for name, arr, shape in (("start", s.start, (k,)), ("transition", s.transition, (k, k)),
                             ("emission", s.emission, (k, k))):
        if arr.shape != shape:
            raise HarvitError(f"{where}: {name} has shape {list(arr.shape)}; expected {list(shape)} for {k} classes")
        if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1 + 1e-9).any():
            raise HarvitError(f"{where}: {name} holds values outside [0, 1]; expected probabilities")
        if not np.allclose(arr.sum(axis=-1), 1.0, atol=1e-6):
            raise HarvitError(f"{where}: {name} rows do not sum to 1; expected probabilities")
    if not (np.isfinite(s.step_s) and s.step_s > 0):
        raise HarvitError(f"{where}: step_s is {s.step_s!r}; expected a positive step in seconds")


def _normalise(counts: np.ndarray) -> np.ndarray:
    counts = counts + PSEUDO_COUNT
    return counts / counts.sum(axis=-1, keepdims=True)


def fit_smoother(label_sequences: list[np.ndarray], step_s: float, val_true: np.ndarray, val_pred: np.ndarray,
                 classes: list[str]) -> HmmSmoother:
    """Count the model's parameters.

    Args:
        label_sequences: int [n_i] class index per training window, one array per recording, in time
            order, windows ``step_s`` apart.
        step_s: the windows' step (stride) in seconds.
        val_true, val_pred: int [M] true and predicted class of each validation window.
        classes: the K class names.

    Returns:
        :class:`HmmSmoother` with ``start`` the class shares, ``transition`` the next-window counts and
        ``emission`` the validation confusion matrix, each row normalised after one pseudo-count.

    Raises:
        HarvitError: a label outside ``0..K-1``, no training windows, unequal validation arrays, or a
            non-positive step.
    """
    k = len(classes)
    if not (np.isfinite(step_s) and step_s > 0):
        raise HarvitError(f"smoother: step_s is {step_s!r}; expected the windows' positive step in seconds")
    seqs = [np.asarray(s, dtype=np.int64).ravel() for s in label_sequences]
    seqs = [s for s in seqs if len(s)]
    if not seqs:
        raise HarvitError("smoother: no training windows to count transitions on")
    val_true = np.asarray(val_true, dtype=np.int64).ravel()
    val_pred = np.asarray(val_pred, dtype=np.int64).ravel()
    if val_true.shape != val_pred.shape:
        raise HarvitError(f"smoother: {len(val_true)} validation labels but {len(val_pred)} predictions")
    for name, arr in (("training labels", np.concatenate(seqs)), ("validation labels", val_true),
                      ("validation predictions", val_pred)):
        if len(arr) and (arr.min() < 0 or arr.max() >= k):
            raise HarvitError(f"smoother: {name} span {arr.min()}..{arr.max()}; expected 0..{k - 1}")
    start = np.bincount(np.concatenate(seqs), minlength=k).astype(np.float64)
    trans = np.zeros((k, k))
    for s in seqs:
        np.add.at(trans, (s[:-1], s[1:]), 1.0)
    emis = np.zeros((k, k))
    np.add.at(emis, (val_true, val_pred), 1.0)
    info = {"sequences": len(seqs), "windows": int(sum(len(s) for s in seqs)),
            "changes": int(sum(int((s[1:] != s[:-1]).sum()) for s in seqs)), "val_windows": int(len(val_true)),
            "val_accuracy": float((val_true == val_pred).mean()) if len(val_true) else None,
            "pseudo_count": PSEUDO_COUNT}
    return HmmSmoother(list(classes), _normalise(start), _normalise(trans), float(step_s), _normalise(emis), info)


def smoother_path(run: str | Path) -> Path:
    """``smoother.json`` of a run folder, or of the folder of a checkpoint file."""
    run = Path(run)
    return (run.parent if run.suffix == ".pt" or run.is_file() else run) / SMOOTHER_FILE


def save_smoother(smoother: HmmSmoother, run_dir: str | Path) -> Path:
    """Write ``run_dir/smoother.json`` atomically; returns its path."""
    path = smoother_path(run_dir)
    write_json(path, smoother.to_dict())
    return path


def load_smoother(run_dir: str | Path) -> HmmSmoother | None:
    """The smoother of a run folder (or of a checkpoint file's folder); None when it has no ``smoother.json``.

    Raises:
        HarvitError: one line naming the file when it is unreadable, not JSON, or not a valid smoother.
    """
    path = smoother_path(run_dir)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HarvitError(f"{path}: not a readable smoother file ({type(e).__name__}: {e}); delete it or "
                          "predict with --smooth none") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise HarvitError(f"{path}: not a harvit smoother file (expected format {FORMAT!r}); delete it or "
                          "predict with --smooth none")
    try:
        return HmmSmoother(classes=list(data["classes"]), start=np.asarray(data["start"], dtype=np.float64),
                           transition=np.asarray(data["transition"], dtype=np.float64), step_s=data["step_s"],
                           emission=np.asarray(data["emission"], dtype=np.float64), info=dict(data.get("info") or {}))
    except HarvitError as e:
        raise HarvitError(f"{path}: {str(e).removeprefix('smoother: ')}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise HarvitError(f"{path}: a smoother file without a valid {e} entry; delete it or predict with "
                          "--smooth none") from None
