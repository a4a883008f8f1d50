"""Is one classifier ahead of another on the same test windows, or level within noise?

* :func:`mcnemar_exact`: McNemar's exact test on paired predictions. Only the discordant windows
  count: ``b`` (A right, B wrong) and ``c`` (A wrong, B right); under "equally accurate" each
  discordant window is a fair coin, so the two-sided p-value is a binomial test of ``b`` out of
  ``b + c`` at 1/2 (:func:`scipy.stats.binomtest`).
* :func:`wilson_interval`: the Wilson score interval of an accuracy (``correct`` of ``n``).
* :func:`verdict`: ``"ahead"``, ``"level"`` or ``"behind"`` for A against B at level ``alpha``.

Windows of one subject are correlated, so these tests are, if anything, optimistic: a "level"
verdict is safe, an "ahead" one is the least the data must show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest

from harvit.utils.errors import HarvitError

#: Significance level of :func:`verdict`.
ALPHA = 0.05
VERDICTS = ("ahead", "level", "behind")


def _paired(y_true: Sequence[int] | np.ndarray, pred_a: Sequence[int] | np.ndarray,
            pred_b: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, a, b = (np.asarray(v).reshape(-1) for v in (y_true, pred_a, pred_b))
    if not len(y) == len(a) == len(b):
        raise HarvitError(f"paired test: {len(y)} labels, {len(a)} and {len(b)} predictions; expected the same "
                          "windows for both classifiers")
    if len(y) == 0:
        raise HarvitError("paired test: no windows")
    return y, a, b


def mcnemar_exact(y_true: Sequence[int] | np.ndarray, pred_a: Sequence[int] | np.ndarray,
                  pred_b: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """McNemar's exact test of classifiers A and B on the same windows.

    Args:
        y_true: true class per window [N].
        pred_a, pred_b: each classifier's predicted class per window [N], in the same order.

    Returns:
        dict: ``b`` (windows A gets right and B wrong), ``c`` (A wrong, B right), ``p_value`` (two-sided;
        1.0 when no window is discordant), ``n`` (windows).
    """
    y, a, b_pred = _paired(y_true, pred_a, pred_b)
    a_ok, b_ok = a == y, b_pred == y
    b = int(np.sum(a_ok & ~b_ok))
    c = int(np.sum(~a_ok & b_ok))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return {"b": b, "c": c, "p_value": min(1.0, p), "n": len(y)}


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``correct / n`` (z = 1.96: 95%).

    Returns:
        (low, high), within [0, 1]; (0.0, 1.0) for ``n == 0``.
    """
    if n < 0 or not 0 <= correct <= max(n, 0):
        raise HarvitError(f"wilson_interval: {correct} correct of {n}; expected 0 <= correct <= n")
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def verdict(y_true: Sequence[int] | np.ndarray, pred_a: Sequence[int] | np.ndarray,
            pred_b: Sequence[int] | np.ndarray, alpha: float = ALPHA) -> str:
    """``"ahead"`` / ``"behind"`` when McNemar's exact test finds A and B differ (p < ``alpha``) and A has
    more / fewer windows right; else ``"level"``."""
    t = mcnemar_exact(y_true, pred_a, pred_b)
    if t["p_value"] >= alpha or t["b"] == t["c"]:
        return "level"
    return "ahead" if t["b"] > t["c"] else "behind"


def compare(y_true: Sequence[int] | np.ndarray, pred_a: Sequence[int] | np.ndarray,
            pred_b: Sequence[int] | np.ndarray, alpha: float = ALPHA, z: float = 1.96) -> dict[str, Any]:
    """Everything a report says about A against B: each accuracy with its Wilson interval, McNemar's
    ``b``, ``c`` and ``p_value``, and the :func:`verdict`."""
    y, a, b = _paired(y_true, pred_a, pred_b)
    n = len(y)
    ka, kb = int(np.sum(a == y)), int(np.sum(b == y))
    return {
        **mcnemar_exact(y, a, b),
        "acc_a": ka / n, "acc_b": kb / n,
        "ci_a": wilson_interval(ka, n, z), "ci_b": wilson_interval(kb, n, z),
        "verdict": verdict(y, a, b, alpha), "alpha": alpha,
    }
