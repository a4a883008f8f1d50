"""A fast ridge classifier whose penalty is chosen on the validation subjects.

The head of the MiniRocket / MultiRocket-Hydra baselines. aeon's classifiers pick the ridge penalty
with scikit-learn's ``RidgeClassifierCV`` (leave-one-out over the training windows, minutes on MiniRocket's
9996 features). Here the penalty is chosen the project's way instead, on the validation subjects (no
validation window is used to fit the candidates, only to score them), and the work is one Gram matrix:

1. Standardise the features on the training windows (mean and std, as ``StandardScaler``), encode
   the labels as +-1 columns (``RidgeClassifier``'s coding) and centre them (the intercept). The
   standardised features are never formed: the Gram matrix is scaled, and ``X^T t`` and the scores are
   taken on the raw features in row blocks (:data:`ROWS`), so memory beyond the input is the Gram.
2. Gram matrix of the smaller side: ``X^T X`` [p, p] when there are more windows than features
   (primal), else ``X X^T`` [n, n] (dual). float32 when its side is over :data:`FLOAT64_MAX`
   (forming it is the dominant cost, O(n p min(n, p))), else float64. Features given as ``uint8``
   (MiniRocket's counts: the ridge is the same on counts as on their proportions, since each feature
   is standardised) form a primal Gram on one of two kernels, chosen per machine by a short probe
   (:func:`gram_kernel`; ``HARVIT_GRAM_KERNEL=int8|float32`` or ``gram_kernel=`` forces one):

   * ``int8``: exactly, in 8-bit integers (``torch._int_mm``, int32 sums; fast where the CPU has int8
     dot-product instructions such as AVX-512 VNNI, slow elsewhere), centred and scaled afterwards in
     float64;
   * ``float32``: a symmetric rank-k update (BLAS ``syrk``, half the products of a full multiply) of the
     counts minus their integer-rounded means, in the Gram's dtype, row part by row part. In float64 it is
     exact; in float32 its off-diagonal sums carry float32 rounding (the standardised Gram is float32
     anyway). The means and the diagonal (the variances) come from exact integer sums in both kernels,
     so a constant feature has a variance of exactly 0.

3. Each penalty: a small side (<= :data:`EIGH_MAX`) is decomposed once (``eigh``) and every alpha is a
   rescaling of the eigenvalues; a large one gets a Cholesky factorisation per alpha (LAPACK's
   ``potrf``/``potrs`` through scipy on the matrix's column-major view, no copy; faster than
   ``torch.linalg.cholesky`` and ``torch.cholesky_solve`` on CPUs), walking the grid from the largest
   penalty down and stopping once validation accuracy has fallen below its best for :data:`PATIENCE`
   alpha(s) in a row (or a factorisation fails: too little penalty for float32). Ties go to the larger
   penalty.
4. ``refit=True``: the chosen alpha is fitted again on training + validation windows (standardised on
   both), the way harvit's model is refitted on all its training data after model selection; the
   primal Gram is updated with the validation windows rather than recomputed.

The Gram's blocks and each penalty's factorisation report progress (:class:`~harvit.utils.progress.Progress`)
once the step runs long. Measured costs and the penalties chosen on the project's data sets are in
docs/benchmarks.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.linalg import blas, get_lapack_funcs

from harvit.utils.errors import HarvitError
from harvit.utils.kernels import DECISIVE, choose, time_cases
from harvit.utils.logging import log
from harvit.utils.progress import Progress
from harvit.utils.runtime import compute_threads

RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 10))
"""The penalties MiniRocket's authors search (their ``RidgeClassifierCV`` grid)."""
EIGH_MAX = 3000
"""Largest Gram side decomposed once with ``eigh`` for all alphas; above it, one Cholesky per alpha."""
FLOAT64_MAX = 4096
"""Largest Gram side computed in float64; above it float32 (half the time and memory)."""
PATIENCE = 1
"""Alphas in a row with validation accuracy below the best before the descending search stops (each is a
factorisation of the Gram)."""
INT_ROWS = 1 << 17
"""Rows per 8-bit product (int32 sums of 128 x 128 products stay exact up to 2^17 rows)."""
INT_BLOCKS = 4
"""Column blocks of the 8-bit Gram (only the upper block triangle is multiplied: 10 of 16 block products)."""
ROWS = 2048
"""Rows per block where the raw features are multiplied in float (``X^T t``, the scores)."""
FLOAT_ROWS = 2048
"""Rows per symmetric rank-k update of the float Gram of counts (bounds the float copy of the counts)."""
GRAM_KERNELS = ("int8", "float32")
"""The kernels that can form the Gram of uint8 counts (:func:`gram_kernel`)."""
GRAM_ENV = "HARVIT_GRAM_KERNEL"
"""Environment variable forcing the Gram kernel of counts: ``auto`` (probe), ``int8`` or ``float32``."""
GRAM_LABELS = {"int8": "int8 (torch._int_mm)", "float32": "float32 syrk"}
PROBE_SHAPES = ((1024, 256), (2048, 768))
"""Counts [rows, features] the probe times both kernels on: the first settles a lopsided race in a fraction
of a second; a close one is timed again on the second."""


def _int_products(counts: torch.Tensor, label: str = "ridge Gram") -> tuple[torch.Tensor, torch.Tensor] | None:
    """(``Q^T Q`` [p, p], ``sum_i Q_i`` [p]), float64 and exact, of Q = ``counts`` - 128 for uint8 ``counts`` [n, p];
    None where this torch has no 8-bit product.

    Q is formed a part of :data:`INT_ROWS` rows at a time, already transposed ([p, rows] int8: the only copy
    of the counts), and its sums a block of :data:`ROWS` rows at a time (an int64 sum of the whole [n, p]
    would first widen it eightfold: 10 GB for 127k windows). The product is the upper block triangle only
    (:data:`INT_BLOCKS` column blocks: 10 of 16 block products), mirrored. ``label`` names the step's
    progress lines.
    """
    n, p = counts.shape
    edges = np.linspace(0, p, INT_BLOCKS + 1).astype(int)
    blocks = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    parts = -(-n // INT_ROWS)
    total, sums = None, torch.zeros(p, dtype=torch.int64)
    work = float(sum((b - a) * (p - a) for a, b in blocks))
    with Progress(f"{label} (int8)", parts * len(blocks), work=n * work) as bar:
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
                    bar.update(work=float(len(part)) * (b - a) * (p - a))
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


def _mirror_lower(g: torch.Tensor) -> torch.Tensor:
    """Fill the strict upper triangle of a square ``g`` [p, p] from its lower one, in place, a column block of
    :data:`ROWS` at a time (no [p, p] temporary); returns ``g``."""
    p = g.shape[0]
    for a in range(0, p, ROWS):
        b = min(a + ROWS, p)
        diag = g[a:b, a:b]
        diag.copy_(diag.tril() + diag.tril(-1).T)
        g[a:b, b:] = g[b:, a:b].T
    return g


def _float_scatter(counts: torch.Tensor, dtype: torch.dtype, label: str = "ridge Gram"
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean [p] float64, ``sum_i (x_i - mean)(x_i - mean)^T`` [p, p] in ``dtype``, variance [p] float64) of
    uint8 counts [n, p], in floating point: the same values as :func:`_int_scatter` up to ``dtype``'s rounding.

    Column sums and sums of squares are exact (float64 sums of integers, below 2^53); the counts minus their
    integer-rounded means m0 (still integers) go through BLAS's symmetric rank-k update (``ssyrk`` /
    ``dsyrk``) :data:`FLOAT_ROWS` rows at a time into one column-major [p, p] (its upper triangle only),
    mirrored, shifted to the exact mean (``- n d d^T``, d = mean - m0, |d| <= 1/2) and given the exact
    diagonal. Memory beyond the counts: the [p, p] Gram and a float copy of :data:`FLOAT_ROWS` rows.
    """
    x = counts.numpy()
    n, p = x.shape
    s = torch.zeros(p, dtype=torch.float64)
    sq = torch.zeros(p, dtype=torch.float64)
    for a in range(0, n, ROWS):
        part = torch.from_numpy(x[a:a + ROWS]).double()
        s += part.sum(0)
        sq += part.square().sum(0)
    m0 = torch.round(s / n)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    syrk = blas.ssyrk if dtype == torch.float32 else blas.dsyrk
    m0n = m0.numpy().astype(np_dtype)
    c = np.zeros((p, p), dtype=np_dtype, order="F")
    kind = "float32" if dtype == torch.float32 else "float64"
    with Progress(f"{label} ({kind} syrk)", -(-n // FLOAT_ROWS)) as bar:
        for a in range(0, n, FLOAT_ROWS):
            v = x[a:a + FLOAT_ROWS].astype(np_dtype)
            v -= m0n
            c = syrk(1.0, v.T, beta=1.0, c=c, trans=0, lower=0, overwrite_c=1)  # += v^T v, upper triangle
            bar.update()
    g = torch.from_numpy(c.T)  # C-contiguous; column-major upper = row-major lower
    d = s / n - m0
    g.addr_(d.to(dtype), d.to(dtype), alpha=-float(n))
    _mirror_lower(g)  # after the shift, so that the matrix is exactly symmetric
    dev = n * sq - s * s  # n^2 x variance, an integer
    g.diagonal().copy_(dev / n)
    return s / n, g, dev / (n * n)


def gram_kernel(forced: str | None = None) -> str:
    """The kernel that forms the Gram of uint8 counts here: ``int8`` or ``float32``.

    ``forced`` (``int8``, ``float32``; None or ``auto``: not forced) wins, then the environment variable
    :data:`GRAM_ENV`, then the machine's cached probe, else a probe now (:func:`_probe_gram`, a fraction of a
    second); the choice is logged once with the ratio measured. ``int8`` falls back to ``float32`` where this
    torch has no 8-bit product.

    Raises:
        HarvitError: ``forced`` or :data:`GRAM_ENV` names another kernel.
    """
    return choose("ridge Gram", GRAM_KERNELS, _probe_gram, GRAM_ENV, forced, GRAM_LABELS)


def _probe_gram() -> dict[str, float | str]:
    """Best wall seconds of each Gram kernel's product on random counts of :data:`PROBE_SHAPES`: int8's upper
    block triangle (``torch._int_mm``) against float32's ``ssyrk``, inputs prepared outside the timing; the
    second shape only where the first is a close race. int8 is left out where this torch has no 8-bit
    product, and is reported unusable where its sums are not exact (oneDNN's int8 products without VNNI
    instructions add pairs of products in saturating 16-bit integers). Timed on one thread (torch's and the
    BLAS's): both kernels scale alike with threads, and one thread is what a busy machine disturbs least."""
    with compute_threads(1):
        return _probe_gram_1()


def _probe_gram_1() -> dict[str, float | str]:
    rng = np.random.default_rng(0)
    counts = torch.from_numpy(rng.integers(0, 256, (512, 96), dtype=np.uint8))
    q = counts.double() - 128
    try:
        products = _int_products(counts)
    except Exception:  # noqa: BLE001 - any failure of a private function means: not usable
        products = None
    exact = products is not None and torch.equal(products[0], q.T @ q)
    seconds: dict[str, float | str] = {}
    for rows, cols in PROBE_SHAPES:
        x = rng.integers(0, 256, (rows, cols), dtype=np.uint8)
        qt = torch.from_numpy((x.T ^ 128).view(np.int8).copy())  # [cols, rows] int8, as _int_products forms it
        v = x.astype(np.float32) - 128
        edges = np.linspace(0, cols, INT_BLOCKS + 1).astype(int)
        blocks = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
        cases = {"float32": lambda v=v: blas.ssyrk(1.0, v.T, trans=0, lower=0)}
        if exact:
            cases["int8"] = lambda qt=qt, blocks=blocks: [torch._int_mm(qt[a:b], qt[a:].T) for a, b in blocks]
        seconds = dict(time_cases(cases))
        if len(seconds) < 2 or max(seconds.values()) >= DECISIVE * min(seconds.values()):
            break
    if products is not None and not exact:
        seconds["int8"] = "inexact sums here"
    return seconds


def _moments(x: np.ndarray, dtype: torch.dtype, kernel: str = "int8"
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean [p] float64, ``sum_i (x_i - mean)(x_i - mean)^T`` [p, p] in ``dtype``, variance [p] float64) of raw
    features ``x`` [n, p]. uint8 counts: on ``kernel`` (``int8``: exact in 8-bit integers, falling back to
    ``float32`` where torch has no 8-bit product; ``float32``: :func:`_float_scatter`). Other features: in row
    blocks (no centred copy of all the features), the mean and variance in float64."""
    if x.dtype == np.uint8 and len(x):
        counts = torch.from_numpy(np.ascontiguousarray(x))
        exact = _int_scatter(counts) if kernel == "int8" else None
        if exact is not None:
            mean, c, var = exact
            return mean, c.to(dtype), var
        return _float_scatter(counts, dtype)
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
        gram_kernel: the kernel that formed the Gram of uint8 counts (None for float features or a dual Gram).
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
    gram_kernel: str | None = None

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
    """``diag(d) a diag(d)`` in place, in a's dtype (``d`` [p] cast first: an in-place product of a float32
    matrix with a float64 vector is many times slower than with a float32 one); returns ``a``."""
    d = d.to(a.dtype)
    return a.mul_(d[:, None]).mul_(d[None, :])


class _Problem:
    """A standardised, centred ridge problem with its Gram matrix (primal or dual), solvable per alpha.

    Args:
        x: raw features [n, p] (float, or uint8 counts: the primal Gram on ``kernel``, :func:`_moments`).
        t: +-1 targets [n, k] in the Gram's dtype.
        kernel: the Gram kernel of uint8 counts (:data:`GRAM_KERNELS`).
    """

    def __init__(self, x: np.ndarray, t: torch.Tensor, kernel: str = "int8") -> None:
        dtype = t.dtype
        self.t_mean = t.mean(0)
        self.tc = t - self.t_mean  # [n, k]
        self.primal = x.shape[0] >= x.shape[1]
        if self.primal:
            self.mean, c, self.var = _moments(x, dtype, kernel)
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
              name: str = "ridge", threads: int | None = None, gram_kernel: str | None = None) -> RidgeModel:
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
        gram_kernel: the Gram kernel of uint8 counts, ``int8`` or ``float32`` (None or ``auto``: the
            environment variable :data:`GRAM_ENV`, else the machine's probe; :func:`gram_kernel`).

    Returns:
        :class:`RidgeModel`.
    """
    with compute_threads(threads):
        return _fit(x_train, y_train, x_val, y_val, n_classes, alphas, refit, name, gram_kernel)


def _fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_classes: int | None,
         alphas: tuple[float, ...], refit: bool, name: str, forced: str | None = None) -> RidgeModel:
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
    counts = x_train.dtype == np.uint8 and n >= p
    kernel = gram_kernel(forced) if counts else "float32"
    prob = _Problem(x_train, _targets(y_train, k, dtype), kernel)
    timings["gram_cpu_s"] = time.process_time() - t0
    yv = torch.as_tensor(np.asarray(y_val), dtype=torch.long)
    t0 = time.process_time()
    best: tuple[float, float, torch.Tensor] | None = None
    searched: dict[float, float] = {}
    worse = 0
    bar = Progress(f"{name} ridge penalties", len(alphas), unit="penalties", at_most=True)
    for alpha in sorted(alphas, reverse=True):
        coef = prob.coef(alpha)
        bar.update()
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
    bar.close()
    timings["search_cpu_s"] = time.process_time() - t0
    if best is None:
        raise HarvitError(f"{name}: no penalty of {sorted(alphas)} gave a solvable ridge problem")
    val_acc, alpha, coef = best
    model = prob.model(coef, alpha, val_acc)
    if refit:
        t0 = time.process_time()
        model = _refit(prob, x_train, x_val, _targets(y_train, k, dtype), _targets(y_val, k, dtype), alpha, val_acc,
                       kernel)
        timings["refit_cpu_s"] = time.process_time() - t0
    model.searched, model.refit, model.val_pred = searched, refit, val_pred
    model.timings = {k: round(v, 3) for k, v in timings.items()}
    model.gram_kernel = kernel if counts else None
    return model


def _refit(prob: _Problem, x_train: np.ndarray, x_val: np.ndarray, t_train: torch.Tensor, t_val: torch.Tensor,
           alpha: float, val_acc: float, kernel: str = "int8") -> RidgeModel:
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
    mean_v, c_v, var_v = _moments(x_val, prob.gram.dtype, kernel)
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
    """The JSON-able summary of a fit: alpha, the searched grid, refit, CPU seconds by step, the Gram kernel."""
    return {"alpha": model.alpha, "alpha_val_accuracy": {f"{a:.4g}": v for a, v in model.searched.items()},
            "refit_on_train_val": model.refit, "ridge_cpu_s": model.timings, "gram_kernel": model.gram_kernel}


def log_fit(name: str, model: RidgeModel) -> None:
    """One log line: the penalty chosen on validation and what the search cost."""
    grid = ", ".join(f"{a:.3g}: {100 * v:.2f}%" for a, v in model.searched.items())
    log(f"baseline: {name} ridge alpha {model.alpha:.3g} chosen on validation ({grid})"
        + ("; refitted on training + validation windows" if model.refit else ""))
