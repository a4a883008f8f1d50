"""A fast ridge classifier whose penalty is chosen on the validation subjects.

The head of the MiniRocket / MultiRocket-Hydra baselines. aeon's classifiers pick the ridge penalty
with scikit-learn's ``RidgeClassifierCV`` (leave-one-out over the training windows): on hapt6's
11435 x 9996 MiniRocket features that search took about 12 CPU minutes. Here the penalty is chosen
the project's way instead, on the validation subjects (no validation window is used to fit the
candidates, only to score them), and the work is one Gram matrix in torch:

1. Standardise the features on the training windows (mean and std, as ``StandardScaler``), encode
   the labels as +-1 columns (``RidgeClassifier``'s coding) and centre them (the intercept).
2. Gram matrix of the smaller side: ``X^T X`` [p, p] when there are more windows than features
   (primal), else ``X X^T`` [n, n] (dual). float32 when its side is over :data:`FLOAT64_MAX`
   (forming it is the dominant cost, O(n p min(n, p))), else float64. Features given as ``uint8``
   (MiniRocket's counts: the ridge is the same on counts as on their proportions, since each feature
   is standardised) form a primal Gram exactly in 8-bit integers (``torch._int_mm``, int32 sums:
   5.7x faster than float32 on 2 cores), centred and scaled afterwards in float64.
3. Each penalty: a small side (<= :data:`EIGH_MAX`) is decomposed once (``eigh``) and every alpha is a
   rescaling of the eigenvalues; a large one gets a Cholesky factorisation per alpha, walking the
   grid from the largest penalty down and stopping once validation accuracy has fallen below its
   best for :data:`PATIENCE` alphas in a row (or a factorisation fails: too little penalty for float32).
   Ties go to the larger penalty.
4. ``refit=True``: the chosen alpha is fitted again on training + validation windows (standardised on
   both), the way harvit's model is refitted on all its training data after model selection; the
   primal Gram is updated with the validation windows rather than recomputed.

Measured on hapt6 (11435 training windows, 9996 MiniRocket features, 1 thread, machine under load
6-9 on 2 cores, 2026-12): Gram 34 CPU s, eigh 154 s, one Cholesky 7 s; val accuracy by alpha
1000 / 215 / 46.4 / 10 / 2.15: 96.97 / 97.00 / 97.03 / 96.65 / 95.58 -> 46.4, the alpha that
``RidgeClassifierCV``'s leave-one-out search chose on the same windows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harvit.utils.errors import HarvitError
from harvit.utils.logging import log

RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 10))
"""The penalties MiniRocket's authors search (their ``RidgeClassifierCV`` grid)."""
EIGH_MAX = 3000
"""Largest Gram side decomposed once with ``eigh`` for all alphas; above it, one Cholesky per alpha."""
FLOAT64_MAX = 4096
"""Largest Gram side computed in float64; above it float32 (half the time and memory)."""
PATIENCE = 2
"""Alphas in a row with validation accuracy below the best before the descending search stops."""
INT_ROWS = 1 << 17
"""Rows per 8-bit product (int32 sums of 128 x 128 products stay exact up to 2^17 rows)."""


def _int_products(q: torch.Tensor) -> torch.Tensor | None:
    """``Q^T Q`` [p, p] float64 (exact) of int8 ``q`` [n, p]; None where this torch has no 8-bit product."""
    total = None
    try:
        for part in q.split(INT_ROWS):
            prod = torch._int_mm(part.T.contiguous(), part)
            total = prod.double() if total is None else total.add_(prod)
    except (RuntimeError, AttributeError, NotImplementedError):
        return None
    return total


def scatter(x: torch.Tensor, around: torch.Tensor, counts: torch.Tensor | None = None) -> torch.Tensor:
    """``sum_i (x_i - around)(x_i - around)^T`` [p, p] in x's dtype, of features ``x`` [n, p] float.

    With ``counts`` (``x`` as uint8 [n, p]) it is formed exactly in 8-bit integers: with Q = counts - 128,
    a = around - 128 and s = sum_i Q_i, it is ``Q^T Q - s a^T - a s^T + n a a^T``.
    """
    if counts is not None and counts.dtype == torch.uint8 and len(counts):
        q = (counts.to(torch.int16) - 128).to(torch.int8)
        prod = _int_products(q)
        if prod is not None:
            s = q.sum(0, dtype=torch.int64).double()
            a = around.double() - 128.0
            prod.addr_(s, a, alpha=-1.0).addr_(a, s - len(q) * a, alpha=-1.0)  # - s a^T - a (s - n a)^T
            return prod.to(x.dtype)
    xc = x - around
    return xc.T @ xc


@dataclass
class RidgeModel:
    """A fitted ridge classifier: ``scores = ((x - mean) / scale) @ coef + intercept``.

    Attributes:
        mean, scale: float [p] standardisation of the features.
        coef: float [p, k] weights; intercept: float [k].
        alpha: the chosen penalty; val_accuracy: its accuracy on the validation windows.
        searched: {alpha: validation accuracy} of every penalty tried (train-only fits).
        refit: whether ``coef`` was fitted on training + validation windows.
        val_pred: int [M] the training-only fit's predictions of the validation windows at ``alpha``.
        timings: CPU seconds by step (gram, search, refit).
    """

    mean: torch.Tensor
    scale: torch.Tensor
    coef: torch.Tensor
    intercept: torch.Tensor
    alpha: float
    val_accuracy: float
    searched: dict[float, float] = field(default_factory=dict)
    refit: bool = False
    val_pred: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Class scores [N, k] of features ``x`` [N, p]."""
        xs = (torch.as_tensor(np.asarray(x), dtype=self.coef.dtype) - self.mean) / self.scale
        return (xs @ self.coef + self.intercept).numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class index [N] of features ``x`` [N, p]."""
        return self.decision_function(x).argmax(axis=1)


def _targets(y: np.ndarray, k: int, dtype: torch.dtype) -> torch.Tensor:
    """+-1 coding [N, k] of labels ``y`` [N] (``RidgeClassifier``'s)."""
    t = -torch.ones(len(y), k, dtype=dtype)
    t[torch.arange(len(y)), torch.as_tensor(y, dtype=torch.long)] = 1.0
    return t


def _standardise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = x.mean(0)
    scale = x.std(0, unbiased=False)
    return mean, torch.where(scale > 1e-12, scale, torch.ones_like(scale))


class _Problem:
    """A standardised, centred ridge problem with its Gram matrix (primal or dual), solvable per alpha."""

    def __init__(self, x: torch.Tensor, t: torch.Tensor, counts: torch.Tensor | None = None) -> None:
        self.mean, self.scale = _standardise(x)
        self.xs = (x - self.mean) / self.scale  # [n, p]
        self.t_mean = t.mean(0)
        self.tc = t - self.t_mean  # [n, k]
        self.primal = x.shape[0] >= x.shape[1]
        if self.primal:
            self.gram = scatter(x, self.mean, counts).div_(self.scale[:, None]).div_(self.scale[None, :])
        else:
            self.gram = self.xs @ self.xs.T
        self.rhs = self.xs.T @ self.tc if self.primal else self.tc
        self._eig: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def coef(self, alpha: float) -> torch.Tensor | None:
        """Weights [p, k] for ``alpha`` (None when the Cholesky factorisation fails)."""
        n = self.gram.shape[0]
        if n <= EIGH_MAX:
            if self._eig is None:
                lam, vec = torch.linalg.eigh(self.gram)
                self._eig = lam.clamp_min(0), vec, vec.T @ self.rhs
            lam, vec, proj = self._eig
            sol = vec @ (proj / (lam + alpha)[:, None])
        else:
            chol, info = torch.linalg.cholesky_ex(_plus_diagonal(self.gram.clone(), alpha))
            if int(info) != 0:
                return None
            sol = torch.cholesky_solve(self.rhs, chol)
        return sol if self.primal else self.xs.T @ sol

    def model(self, coef: torch.Tensor, alpha: float, val_acc: float) -> RidgeModel:
        return RidgeModel(self.mean, self.scale, coef, self.t_mean, alpha, val_acc)


def _plus_diagonal(a: torch.Tensor, alpha: float) -> torch.Tensor:
    """``a + alpha * I`` in place (no identity matrix formed); returns ``a``."""
    a.diagonal().add_(alpha)
    return a


def _gram_dtype(n: int, p: int) -> torch.dtype:
    return torch.float64 if min(n, p) <= FLOAT64_MAX else torch.float32


def fit_ridge(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
              n_classes: int | None = None, alphas: tuple[float, ...] = RIDGE_ALPHAS, refit: bool = True,
              name: str = "ridge", threads: int | None = None) -> RidgeModel:
    """Fit ridge classifiers on the training windows, choose the penalty on the validation windows.

    Args:
        x_train: float [N, p] features of the training windows (or uint8 counts: the Gram in 8-bit
            integers); y_train: int [N] labels.
        x_val: float (or uint8) [M, p] features of the validation windows; y_val: int [M] labels.
        n_classes: number of classes k (default: the largest label + 1).
        alphas: the penalty grid (searched from the largest down).
        refit: fit the chosen penalty again on training + validation windows (the returned model's
            ``val_accuracy`` stays that of the training-only fit, the one that chose it).
        name: how log lines call this fit.
        threads: torch's threads for the Gram matrix and the factorisations (None: as set); restored after.

    Returns:
        :class:`RidgeModel`.
    """
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _fit(x_train, y_train, x_val, y_val, n_classes, alphas, refit, name)
    finally:
        torch.set_num_threads(before)


def _fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_classes: int | None,
         alphas: tuple[float, ...], refit: bool, name: str) -> RidgeModel:
    x_train, x_val = np.asarray(x_train), np.asarray(x_val)
    if x_train.ndim != 2 or x_val.ndim != 2 or x_train.shape[1] != x_val.shape[1]:
        raise HarvitError(f"{name}: features must be [N, p] with the same p; got {x_train.shape} and {x_val.shape}")
    if len(x_train) == 0 or len(x_val) == 0:
        raise HarvitError(f"{name}: no training or no validation windows")
    k = int(n_classes or max(int(np.max(y_train)), int(np.max(y_val))) + 1)
    n, p = x_train.shape
    dtype = _gram_dtype(n + len(x_val), p)
    timings: dict[str, float] = {}
    t0 = time.process_time()
    counts = {"train": _counts(x_train), "val": _counts(x_val)}
    prob = _Problem(torch.as_tensor(x_train, dtype=dtype), _targets(y_train, k, dtype), counts["train"])
    timings["gram_cpu_s"] = time.process_time() - t0
    xv = (torch.as_tensor(x_val, dtype=dtype) - prob.mean) / prob.scale
    yv = torch.as_tensor(np.asarray(y_val), dtype=torch.long)
    t0 = time.process_time()
    best: tuple[float, float, torch.Tensor] | None = None
    searched: dict[float, float] = {}
    worse = 0
    for alpha in sorted(alphas, reverse=True):
        coef = prob.coef(alpha)
        if coef is None:
            break
        pred = (xv @ coef + prob.t_mean).argmax(1)
        acc = float((pred == yv).double().mean())
        searched[alpha] = acc
        if best is None or acc > best[0]:
            best, worse, val_pred = (acc, alpha, coef), 0, pred.numpy()
        else:
            worse += 1
            if worse >= PATIENCE and prob.gram.shape[0] > EIGH_MAX:
                break
    timings["search_cpu_s"] = time.process_time() - t0
    if best is None:
        raise HarvitError(f"{name}: no penalty of {sorted(alphas)} gave a solvable ridge problem")
    val_acc, alpha, coef = best
    model = prob.model(coef, alpha, val_acc)
    if refit:
        t0 = time.process_time()
        model = _refit(prob, torch.as_tensor(x_train, dtype=dtype), torch.as_tensor(x_val, dtype=dtype),
                       _targets(y_train, k, dtype), _targets(y_val, k, dtype), alpha, val_acc, counts["val"])
        timings["refit_cpu_s"] = time.process_time() - t0
    model.searched, model.refit, model.val_pred = searched, refit, val_pred
    model.timings = {k: round(v, 3) for k, v in timings.items()}
    return model


def _counts(x: np.ndarray) -> torch.Tensor | None:
    """``x`` as a uint8 tensor when it holds counts (uint8), else None."""
    return torch.from_numpy(np.ascontiguousarray(x)) if x.dtype == np.uint8 else None


def _refit(prob: _Problem, x_train: torch.Tensor, x_val: torch.Tensor, t_train: torch.Tensor, t_val: torch.Tensor,
           alpha: float, val_acc: float, val_counts: torch.Tensor | None = None) -> RidgeModel:
    """The ridge of ``alpha`` on training + validation windows, standardised on both.

    With a primal Gram, reuses the training windows' centred Gram C_t (unscaled: ``prob.gram`` is
    D_t C_t D_t with D_t = 1 / scale): around the joint mean m, C = C_t + n_t d d^T + V^T V with
    d = m_t - m and V the validation windows minus m; then rescaled by the joint scale.
    """
    if not prob.primal:
        joint = _Problem(torch.cat([x_train, x_val]), torch.cat([t_train, t_val]))
        coef = joint.coef(alpha)
        if coef is None:
            raise HarvitError(f"ridge refit: alpha {alpha:g} is not solvable on training + validation windows")
        return joint.model(coef, alpha, val_acc)
    n_t, n_v = x_train.shape[0], x_val.shape[0]
    mean = (n_t * prob.mean + n_v * x_val.mean(0)) / (n_t + n_v)
    d = prob.mean - mean
    c = prob.gram.mul(prob.scale[:, None]).mul_(prob.scale[None, :])  # C_t, centred on the training mean
    c.addr_(d, d, alpha=n_t)
    c += scatter(x_val, mean, val_counts)
    var = torch.diagonal(c) / (n_t + n_v)
    scale = torch.where(var > 1e-24, var.sqrt(), torch.ones_like(var))
    gram = c.div_(scale[:, None]).div_(scale[None, :])
    t_mean = (t_train.sum(0) + t_val.sum(0)) / (n_t + n_v)
    rhs = (x_train.T @ (t_train - t_mean) + x_val.T @ (t_val - t_mean)) / scale[:, None]  # sum (x - m) t_c = sum x t_c
    chol, info = torch.linalg.cholesky_ex(_plus_diagonal(gram, alpha))
    if int(info) != 0:
        raise HarvitError(f"ridge refit: alpha {alpha:g} is not solvable on training + validation windows")
    return RidgeModel(mean, scale, torch.cholesky_solve(rhs, chol), t_mean, alpha, val_acc)


def describe(model: RidgeModel) -> dict[str, Any]:
    """The JSON-able summary of a fit: alpha, the searched grid, refit, CPU seconds by step."""
    return {"alpha": model.alpha, "alpha_val_accuracy": {f"{a:.4g}": v for a, v in model.searched.items()},
            "refit_on_train_val": model.refit, "ridge_cpu_s": model.timings}


def log_fit(name: str, model: RidgeModel) -> None:
    """One log line: the penalty chosen on validation and what the search cost."""
    grid = ", ".join(f"{a:.3g}: {100 * v:.2f}%" for a, v in model.searched.items())
    log(f"baseline: {name} ridge alpha {model.alpha:.3g} chosen on validation ({grid})"
        + ("; refitted on training + validation windows" if model.refit else ""))
