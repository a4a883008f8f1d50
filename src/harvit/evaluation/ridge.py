"""A fast ridge classifier whose penalty is chosen on the validation subjects.

The head of the MiniRocket / MultiRocket-Hydra baselines. aeon's classifiers pick the ridge penalty
with scikit-learn's ``RidgeClassifierCV`` (leave-one-out over the training windows): on hapt6's
11435 x 9996 MiniRocket features that search took about 12 CPU minutes. Here the penalty is chosen
the project's way instead, on the validation subjects (no validation window is used to fit the
candidates, only to score them), and the work is one Gram matrix in torch:

1. Standardise the features on the training windows (mean and std, as ``StandardScaler``), encode
   the labels as +-1 columns (``RidgeClassifier``'s coding) and centre them (the intercept). The
   standardised features are never formed: the Gram matrix is scaled, and ``X^T t`` and the scores are
   taken on the raw features in row blocks (:data:`ROWS`), so memory beyond the input is the Gram.
2. Gram matrix of the smaller side: ``X^T X`` [p, p] when there are more windows than features
   (primal), else ``X X^T`` [n, n] (dual). float32 when its side is over :data:`FLOAT64_MAX`
   (forming it is the dominant cost, O(n p min(n, p))), else float64. Features given as ``uint8``
   (MiniRocket's counts: the ridge is the same on counts as on their proportions, since each feature
   is standardised) form a primal Gram exactly in 8-bit integers (``torch._int_mm``, int32 sums:
   5.7x faster than float32 on 2 cores), centred and scaled afterwards in float64; their mean and
   std come from the same integer sums.
3. Each penalty: a small side (<= :data:`EIGH_MAX`) is decomposed once (``eigh``) and every alpha is a
   rescaling of the eigenvalues; a large one gets a Cholesky factorisation per alpha (LAPACK's
   ``potrf``/``potrs`` through scipy on the matrix's column-major view, no copy: 1.7 s for 9996 x 9996
   float32 on 2 cores, against 2.7 s for ``torch.linalg.cholesky``, and 0.07 s per solve against
   0.22 s for ``torch.cholesky_solve``), walking the
   grid from the largest penalty down and stopping once validation accuracy has fallen below its
   best for :data:`PATIENCE` alpha(s) in a row (or a factorisation fails: too little penalty for float32).
   Ties go to the larger penalty.
4. ``refit=True``: the chosen alpha is fitted again on training + validation windows (standardised on
   both), the way harvit's model is refitted on all its training data after model selection; the
   primal Gram is updated with the validation windows rather than recomputed.

Measured on hapt6 (11633 training windows, 2902 validation windows, 9996 MiniRocket features, 2 quiet
cores, 2026-12-05; docs/BENCHMARKS.md §10c): the 8-bit Gram 2.75 s, one factorisation and solve 2.0 s,
the whole fit with its refit 10.9 s (a full ``eigh`` took 154 CPU s). Validation accuracy by alpha 1000 /
215: 93.80 / 93.42 -> 1000. On an earlier split of the same data (11435 windows) the walk 1000 / 215 /
46.4 / 10 / 2.15 scored 96.97 / 97.00 / 97.03 / 96.65 / 95.58: 46.4, the alpha that
``RidgeClassifierCV``'s leave-one-out search chose on the same windows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.linalg import get_lapack_funcs

from harvit.utils.errors import HarvitError
from harvit.utils.logging import log
from harvit.utils.runtime import compute_threads

RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 10))
"""The penalties MiniRocket's authors search (their ``RidgeClassifierCV`` grid)."""
EIGH_MAX = 3000
"""Largest Gram side decomposed once with ``eigh`` for all alphas; above it, one Cholesky per alpha."""
FLOAT64_MAX = 4096
"""Largest Gram side computed in float64; above it float32 (half the time and memory)."""
PATIENCE = 1
"""Alphas in a row with validation accuracy below the best before the descending search stops (each is a
factorisation of the Gram: 1.9 s for MiniRocket's 9996 features on 2 cores)."""
INT_ROWS = 1 << 17
"""Rows per 8-bit product (int32 sums of 128 x 128 products stay exact up to 2^17 rows)."""
INT_BLOCKS = 4
"""Column blocks of the 8-bit Gram (only the upper block triangle is multiplied: 2.0 s against 2.8 s for
hapt6's 11633 x 9996 counts on 2 cores)."""
ROWS = 2048
"""Rows per block where the raw features are multiplied in float (``X^T t``, the scores)."""


def _int_products(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(``Q^T Q`` [p, p], ``sum_i Q_i`` [p]), float64 and exact, of Q = ``counts`` - 128 for uint8 ``counts`` [n, p];
    None where this torch has no 8-bit product.

    Q is formed a part of :data:`INT_ROWS` rows at a time, already transposed ([p, rows] int8: the only copy
    of the counts), and its sums a block of :data:`ROWS` rows at a time (an int64 sum of the whole [n, p]
    would first widen it eightfold: 10 GB for 127k windows). The product is the upper block triangle only
    (:data:`INT_BLOCKS` column blocks: 10 of 16 block products), mirrored.
    """
    p = counts.shape[1]
    edges = np.linspace(0, p, INT_BLOCKS + 1).astype(int)
    blocks = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    total, sums = None, torch.zeros(p, dtype=torch.int64)
    try:
        for part in counts.split(INT_ROWS):
            qt = torch.empty(p, len(part), dtype=torch.uint8)
            torch.bitwise_xor(part.T, 128, out=qt)  # counts - 128 as int8 bits, a block's rows contiguous
            qt = qt.view(torch.int8)
            for a in range(0, qt.shape[1], ROWS):
                sums += qt[:, a:a + ROWS].sum(1, dtype=torch.int64)
            prod = torch.empty(p, p, dtype=torch.int32)
            for a, b in blocks:
                prod[a:b, a:] = torch._int_mm(qt[a:b], qt[a:].T)
            for a, b in blocks:
                prod[b:, a:b] = prod[a:b, b:].T
            total = prod.double() if total is None else total.add_(prod)
            del qt
    except (RuntimeError, AttributeError, NotImplementedError):
        return None
    return total, sums.double()


def _int_scatter(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(mean [p], ``sum_i (x_i - mean)(x_i - mean)^T`` [p, p], variance [p]), float64, of uint8 counts [n, p]
    formed in 8-bit integers; None where this torch has no 8-bit product.

    With Q = counts - 128 and s = sum_i Q_i: mean = 128 + s / n and the scatter is ``Q^T Q - s s^T / n``. Its
    diagonal, ``(n sum_i Q_ij^2 - s_j^2) / n``, is computed from integers (exact below 2^53: up to ~700,000
    windows), so a constant feature has a variance of exactly 0, not a rounding error that standardising
    would blow up. Memory beyond the counts: one int8 copy of :data:`INT_ROWS` rows and three [p, p] matrices.
    """
    products = _int_products(counts)
    if products is None:
        return None
    prod, s = products
    n = len(counts)
    dev = n * prod.diagonal() - s * s  # n^2 x variance, an integer
    prod.addr_(s, s, alpha=-1.0 / n)
    prod.diagonal().copy_(dev / n)
    return s / n + 128.0, prod, dev / (n * n)


def _moments(x: np.ndarray, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean [p] float64, ``sum_i (x_i - mean)(x_i - mean)^T`` [p, p] in ``dtype``, variance [p] float64) of raw
    features ``x`` [n, p]: exact, in 8-bit integers, for uint8 counts; else in row blocks (no centred copy of
    all the features), the mean and variance in float64."""
    if x.dtype == np.uint8 and len(x):
        exact = _int_scatter(torch.from_numpy(x))
        if exact is not None:
            mean, c, var = exact
            return mean, c.to(dtype), var
    n = max(len(x), 1)
    mean = _cross(x, torch.ones(len(x), 1, dtype=torch.float64))[:, 0] / n
    c = torch.zeros(x.shape[1], x.shape[1], dtype=dtype)
    var = torch.zeros(x.shape[1], dtype=torch.float64)
    for a in range(0, len(x), ROWS):
        xc = torch.as_tensor(x[a:a + ROWS], dtype=torch.float64) - mean
        var += xc.square().sum(0)
        xc = xc.to(dtype)
        c.addmm_(xc.T, xc)
    return mean, c, var / n


def _cross(x: np.ndarray, t: torch.Tensor) -> torch.Tensor:
    """``x^T t`` [p, k] in t's dtype, of raw features ``x`` [n, p] (float or uint8) and ``t`` [n, k], in row blocks."""
    out = torch.zeros(x.shape[1], t.shape[1], dtype=t.dtype)
    for a in range(0, len(x), ROWS):
        out.addmm_(torch.as_tensor(x[a:a + ROWS], dtype=t.dtype).T, t[a:a + ROWS])
    return out


def _scores(x: np.ndarray, mean: torch.Tensor, scale: torch.Tensor, coef: torch.Tensor,
            intercept: torch.Tensor) -> torch.Tensor:
    """``((x - mean) / scale) @ coef + intercept`` [n, k] float64 of raw features ``x`` [n, p], in row blocks
    (the standardised features are not formed)."""
    w = coef.double() / scale.double()[:, None]
    b = intercept.double() - mean.double() @ w
    parts = [torch.as_tensor(x[a:a + ROWS], dtype=torch.float64) @ w + b for a in range(0, len(x), ROWS)]
    return torch.cat(parts) if parts else torch.zeros(0, coef.shape[1], dtype=torch.float64)


def _cholesky_solve(a: torch.Tensor, alpha: float, rhs: torch.Tensor, overwrite: bool = False) -> torch.Tensor | None:
    """``(a + alpha I)^-1 rhs`` [p, k] of a symmetric positive semi-definite ``a`` [p, p] (C-contiguous); None
    when the factorisation fails (too little penalty for the precision).

    LAPACK's ``potrf``/``potrs`` through scipy, on ``a``'s transpose: the same symmetric matrix, column-major,
    so nothing is copied (``overwrite``: ``a`` is factorised in place, else a copy is).
    """
    m = (a if overwrite else a.clone()).numpy()
    m.flat[:: m.shape[0] + 1] += alpha
    potrf, potrs = get_lapack_funcs(("potrf", "potrs"), (m,))
    chol, info = potrf(m.T, lower=True, overwrite_a=True, clean=False)
    if info != 0:
        return None
    sol, info = potrs(chol, np.asfortranarray(rhs.numpy()), lower=True)
    return torch.from_numpy(np.ascontiguousarray(sol)) if info == 0 else None


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
        """Class scores float64 [N, k] of raw features ``x`` [N, p] (float or uint8 counts)."""
        return _scores(np.asarray(x), self.mean, self.scale, self.coef, self.intercept).numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class index [N] of features ``x`` [N, p]."""
        return self.decision_function(x).argmax(axis=1)


def _targets(y: np.ndarray, k: int, dtype: torch.dtype) -> torch.Tensor:
    """+-1 coding [N, k] of labels ``y`` [N] (``RidgeClassifier``'s)."""
    t = -torch.ones(len(y), k, dtype=dtype)
    t[torch.arange(len(y)), torch.as_tensor(y, dtype=torch.long)] = 1.0
    return t


def _safe_scale(var: torch.Tensor, mean: torch.Tensor, n: int) -> torch.Tensor:
    """Standard deviations float64 [p] of variances ``var`` [p] (float64) of ``n`` windows, 1 where a feature is
    indistinguishable from a constant: scikit-learn's bound on the rounding of a two-pass variance,
    ``var <= n eps var + (n |mean| eps)^2`` (``StandardScaler``). Without it a constant feature's variance
    of ~1e-15 scales its row of the Gram by ~1e7 and no penalty is solvable."""
    eps = torch.finfo(torch.float64).eps
    constant = var <= n * eps * var + (n * mean.abs() * eps) ** 2
    return torch.where(constant, torch.ones_like(var), var.clamp_min(0).sqrt())


def _rescale(a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``diag(d) a diag(d)`` in place, in a's dtype (``d`` [p] cast first: an in-place product with a float64
    vector costs ~1 s on a 9996 x 9996 float32 matrix, 30x the float32 one); returns ``a``."""
    d = d.to(a.dtype)
    return a.mul_(d[:, None]).mul_(d[None, :])


class _Problem:
    """A standardised, centred ridge problem with its Gram matrix (primal or dual), solvable per alpha.

    Args:
        x: raw features [n, p] (float, or uint8 counts: the primal Gram and the mean in 8-bit integers).
        t: +-1 targets [n, k] in the Gram's dtype.
    """

    def __init__(self, x: np.ndarray, t: torch.Tensor) -> None:
        dtype = t.dtype
        self.t_mean = t.mean(0)
        self.tc = t - self.t_mean  # [n, k]
        self.primal = x.shape[0] >= x.shape[1]
        if self.primal:
            self.mean, c, self.var = _moments(x, dtype)
            self.scale = _safe_scale(self.var, self.mean, len(x))
            self.gram = _rescale(c, 1.0 / self.scale)
        else:
            xf = torch.as_tensor(x, dtype=torch.float64)
            self.mean, self.var = xf.mean(0), xf.var(0, unbiased=False)
            self.scale = _safe_scale(self.var, self.mean, len(x))
            self.xs = ((xf - self.mean) / self.scale).to(dtype)  # [n, p]
            self.gram = self.xs @ self.xs.T
        # sum (x - m) t_c = sum x t_c
        self.rhs = (_cross(x, self.tc) / self.scale[:, None]).to(dtype) if self.primal else self.tc
        self._eig: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def coef(self, alpha: float) -> torch.Tensor | None:
        """Weights [p, k] for ``alpha`` (None when the Cholesky factorisation fails)."""
        if self.gram.shape[0] <= EIGH_MAX:
            if self._eig is None:
                lam, vec = torch.linalg.eigh(self.gram)
                self._eig = lam.clamp_min(0), vec, vec.T @ self.rhs
            lam, vec, proj = self._eig
            sol = vec @ (proj / (lam + alpha)[:, None])
        else:
            sol = _cholesky_solve(self.gram, alpha, self.rhs)
            if sol is None:
                return None
        return sol if self.primal else self.xs.T @ sol

    def model(self, coef: torch.Tensor, alpha: float, val_acc: float) -> RidgeModel:
        return RidgeModel(self.mean, self.scale, coef, self.t_mean, alpha, val_acc)


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
        threads: torch's and the BLAS's threads for the Gram matrix and the factorisations (None: torch's
            as set); restored after.

    Returns:
        :class:`RidgeModel`.
    """
    with compute_threads(threads):
        return _fit(x_train, y_train, x_val, y_val, n_classes, alphas, refit, name)


def _fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_classes: int | None,
         alphas: tuple[float, ...], refit: bool, name: str) -> RidgeModel:
    x_train, x_val = np.asarray(x_train), np.asarray(x_val)
    if x_train.ndim != 2 or x_val.ndim != 2 or x_train.shape[1] != x_val.shape[1]:
        raise HarvitError(f"{name}: features must be [N, p] with the same p; got {x_train.shape} and {x_val.shape}")
    if len(x_train) == 0 or len(x_val) == 0:
        raise HarvitError(f"{name}: no training or no validation windows")
    if x_train.dtype != x_val.dtype:
        x_train, x_val = x_train.astype(np.float32), x_val.astype(np.float32)
    k = int(n_classes or max(int(np.max(y_train)), int(np.max(y_val))) + 1)
    n, p = x_train.shape
    dtype = _gram_dtype(n + len(x_val), p)
    timings: dict[str, float] = {}
    t0 = time.process_time()
    prob = _Problem(x_train, _targets(y_train, k, dtype))
    timings["gram_cpu_s"] = time.process_time() - t0
    yv = torch.as_tensor(np.asarray(y_val), dtype=torch.long)
    t0 = time.process_time()
    best: tuple[float, float, torch.Tensor] | None = None
    searched: dict[float, float] = {}
    worse = 0
    for alpha in sorted(alphas, reverse=True):
        coef = prob.coef(alpha)
        if coef is None:
            break
        pred = _scores(x_val, prob.mean, prob.scale, coef, prob.t_mean).argmax(1)
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
        model = _refit(prob, x_train, x_val, _targets(y_train, k, dtype), _targets(y_val, k, dtype), alpha, val_acc)
        timings["refit_cpu_s"] = time.process_time() - t0
    model.searched, model.refit, model.val_pred = searched, refit, val_pred
    model.timings = {k: round(v, 3) for k, v in timings.items()}
    return model


def _refit(prob: _Problem, x_train: np.ndarray, x_val: np.ndarray, t_train: torch.Tensor, t_val: torch.Tensor,
           alpha: float, val_acc: float) -> RidgeModel:
    """The ridge of ``alpha`` on training + validation windows [n_t + n_v, p], standardised on both.

    With a primal Gram, reuses the training windows' centred Gram C_t (unscaled: ``prob.gram`` is
    D_t C_t D_t with D_t = 1 / scale): around the joint mean m, C = C_t + n_t d d^T + C_v + n_v e e^T with
    d = m_t - m, C_v the validation windows' scatter around their mean m_v and e = m_v - m; then rescaled
    by the joint scale. The training Gram is consumed.
    """
    if not prob.primal:
        joint = _Problem(np.concatenate([x_train, x_val]), torch.cat([t_train, t_val]))
        coef = joint.coef(alpha)
        if coef is None:
            raise HarvitError(f"ridge refit: alpha {alpha:g} is not solvable on training + validation windows")
        return joint.model(coef, alpha, val_acc)
    n_t, n_v = len(x_train), len(x_val)
    mean_v, c_v, var_v = _moments(x_val, prob.gram.dtype)
    mean = (n_t * prob.mean + n_v * mean_v) / (n_t + n_v)
    d, e = prob.mean - mean, mean_v - mean
    var = (n_t * (prob.var + d * d) + n_v * (var_v + e * e)) / (n_t + n_v)
    c = _rescale(prob.gram, prob.scale)  # C_t, centred on the training mean
    d, e = d.to(c.dtype), e.to(c.dtype)
    c.addr_(d, d, alpha=n_t).addr_(e, e, alpha=n_v).add_(c_v)
    del c_v
    scale = _safe_scale(var, mean, n_t + n_v)
    gram = _rescale(c, 1.0 / scale)
    t_mean = (t_train.sum(0) + t_val.sum(0)) / (n_t + n_v)
    rhs = ((_cross(x_train, t_train - t_mean) + _cross(x_val, t_val - t_mean)) / scale[:, None]).to(gram.dtype)
    coef = _cholesky_solve(gram, alpha, rhs, overwrite=True)
    if coef is None:
        raise HarvitError(f"ridge refit: alpha {alpha:g} is not solvable on training + validation windows")
    return RidgeModel(mean, scale, coef, t_mean, alpha, val_acc)


def describe(model: RidgeModel) -> dict[str, Any]:
    """The JSON-able summary of a fit: alpha, the searched grid, refit, CPU seconds by step."""
    return {"alpha": model.alpha, "alpha_val_accuracy": {f"{a:.4g}": v for a, v in model.searched.items()},
            "refit_on_train_val": model.refit, "ridge_cpu_s": model.timings}


def log_fit(name: str, model: RidgeModel) -> None:
    """One log line: the penalty chosen on validation and what the search cost."""
    grid = ", ".join(f"{a:.3g}: {100 * v:.2f}%" for a, v in model.searched.items())
    log(f"baseline: {name} ridge alpha {model.alpha:.3g} chosen on validation ({grid})"
        + ("; refitted on training + validation windows" if model.refit else ""))
