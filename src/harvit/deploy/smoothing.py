"""``--smooth hmm|none``: window predictions smoothed by the run's hidden Markov model (Viterbi, hmmlearn).

The model (:mod:`harvit.models.smoother`, fitted at the end of training and kept as ``smoother.json``)
is the one of stepcount and the Capture-24 benchmark: an ``hmmlearn.hmm.CategoricalHMM`` whose hidden
states are the true classes and whose observations are the predicted classes (each window's arg-max),
with the start, transition and emission probabilities fixed to the counted ones; the smoothed classes
are its Viterbi path. Observing the predicted class through the validation confusion matrix, rather
than the network's probabilities, is deliberate: the confusion matrix is measured on subjects the
network never trained on, while the network's own probabilities are confident on its mistakes too.

The transitions were counted between training windows ``step_s`` apart; predictions ``stride_s``
apart use the transition matrix to the power ``stride_s / step_s`` (an integer power exactly, a
fractional one with :func:`scipy.linalg.fractional_matrix_power`), so a stride twice the training step
smooths with the squared matrix. A break (a gap, a new recording, non-wear) starts a new sequence:
no transition is assumed across it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hmmlearn.hmm import CategoricalHMM
from scipy.linalg import fractional_matrix_power

from harvit.models.smoother import (
    SMOOTHER_FILE,
    HmmSmoother,
    fit_smoother,
    load_smoother,
    save_smoother,
    smoother_path,
)
from harvit.utils.errors import HarvitError

SMOOTH_CHOICES = ("hmm", "none")
"""``--smooth`` values: the run's hidden Markov model, or each window's own prediction."""
NO_SMOOTHER = "no smoothing parameters in this run; --smooth none"
"""The one line said when ``--smooth hmm`` meets a run without ``smoother.json``."""

__all__ = ["NO_SMOOTHER", "SMOOTH_CHOICES", "SMOOTHER_FILE", "HmmSmoother", "fit_smoother", "load_smoother",
           "resolve_smoother", "save_smoother", "smooth_log_probs", "smoother_path", "smoothing_line", "transition_at"]


def transition_at(smoother: HmmSmoother, stride_s: float) -> np.ndarray:
    """The transition matrix float64 [K, K] between predictions ``stride_s`` seconds apart.

    ``T ** (stride_s / step_s)``: :func:`numpy.linalg.matrix_power` when the ratio is a whole number,
    else the real part of :func:`scipy.linalg.fractional_matrix_power` with negative round-off clipped
    and rows renormalised.
    """
    if not (np.isfinite(stride_s) and stride_s > 0):
        raise HarvitError(f"smoothing: the prediction stride is {stride_s!r} s; expected a positive number")
    ratio = float(stride_s) / smoother.step_s
    whole = round(ratio)
    if whole >= 1 and abs(ratio - whole) < 1e-9:
        return np.linalg.matrix_power(smoother.transition, whole)
    p = np.real(fractional_matrix_power(smoother.transition, ratio))
    p = np.clip(p, 1e-12, None)
    return p / p.sum(axis=1, keepdims=True)


def smooth_log_probs(log_probs: np.ndarray, smoother: HmmSmoother, step_s: float,
                     breaks: np.ndarray | None = None) -> np.ndarray:
    """The Viterbi path of the windows' predicted classes.

    Args:
        log_probs: float [N, K] window log-probabilities (or probabilities: only each row's arg-max is read),
            in time order, consecutive windows ``step_s`` seconds apart.
        smoother: the run's :class:`HmmSmoother` (K classes, in the model's order).
        step_s: the prediction stride in seconds.
        breaks: bool [N], True where a window starts a new sequence (after a gap or non-wear);
            the first window always does. None: one sequence.

    Returns:
        int64 [N] smoothed class index per window.

    Raises:
        HarvitError: shapes that disagree with the smoother's classes or each other, NaN scores.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    k = smoother.n_classes
    if lp.ndim != 2 or lp.shape[1] != k:
        raise HarvitError(f"smoothing: scores of shape {list(lp.shape)}; expected [N, {k}] for the smoother's "
                          f"{k} classes")
    n = len(lp)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if np.isnan(lp).any():
        raise HarvitError(f"smoothing: {int(np.isnan(lp).any(axis=1).sum())} windows with NaN scores")
    starts = np.zeros(n, dtype=bool)
    if breaks is not None:
        b = np.asarray(breaks, dtype=bool)
        if b.shape != (n,):
            raise HarvitError(f"smoothing: breaks of shape {list(b.shape)}; expected [{n}] (one per window)")
        starts |= b
    starts[0] = True
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, n))
    hmm = CategoricalHMM(n_components=k, n_features=k, init_params="", params="")
    hmm.startprob_ = smoother.start
    hmm.transmat_ = transition_at(smoother, step_s)
    hmm.emissionprob_ = smoother.emission
    observed = lp.argmax(axis=1).reshape(-1, 1)
    return np.asarray(hmm.predict(observed, lengths=lengths), dtype=np.int64)


def resolve_smoother(run: str | Path, classes: list[str], smooth: str = "hmm") -> HmmSmoother | None:
    """The smoother ``--smooth`` asks for: None for ``none``; for ``hmm`` the run's ``smoother.json``, or None
    when the run has none (:func:`smoothing_line` says so).

    Args:
        run: the run folder or its checkpoint file.
        classes: the model's classes; the smoother's must be the same.

    Raises:
        HarvitError: an unknown ``smooth`` value, a bad smoother file, or classes that differ from the model's.
    """
    if smooth not in SMOOTH_CHOICES:
        raise HarvitError(f"--smooth: got {smooth!r}, expected one of {', '.join(SMOOTH_CHOICES)}")
    if smooth == "none":
        return None
    smoother = load_smoother(run)
    if smoother is None:
        return None
    if list(smoother.classes) != list(classes):
        raise HarvitError(f"{smoother_path(run)}: classes {', '.join(smoother.classes)}; the model's are "
                          f"{', '.join(classes)}; predict with --smooth none")
    return smoother


def smoothing_line(smooth: str, smoother: HmmSmoother | None) -> str:
    """The one line a prediction's summary says about smoothing: the run's HMM, :data:`NO_SMOOTHER` when
    ``--smooth hmm`` found no ``smoother.json``, or that ``--smooth none`` was asked for."""
    if smoother is not None:
        return (f"smoothing: the run's hidden Markov model ({SMOOTHER_FILE}, transitions counted "
                f"{smoother.step_s:g} s apart)")
    return NO_SMOOTHER if smooth == "hmm" else "smoothing: none (--smooth none)"
