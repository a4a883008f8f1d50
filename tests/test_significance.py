"""McNemar's exact test, Wilson intervals and the verdict, against textbook values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harvit.evaluation.significance import compare, mcnemar_exact, verdict, wilson_interval
from harvit.utils.errors import HarvitError


def pair(b: int, c: int, both_right: int = 0, both_wrong: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two prediction vectors with ``b`` windows only A gets right and ``c`` only B gets right."""
    n = b + c + both_right + both_wrong
    y = np.zeros(n, dtype=int)
    a_ok = np.array([1] * b + [0] * c + [1] * both_right + [0] * both_wrong, bool)
    b_ok = np.array([0] * b + [1] * c + [1] * both_right + [0] * both_wrong, bool)
    return y, np.where(a_ok, 0, 1), np.where(b_ok, 0, 2)


def test_mcnemar_exact_textbook_values():
    # b=1, c=9: two-sided exact p = 2 * (C(10,0) + C(10,1)) / 2^10 = 22/1024
    r = mcnemar_exact(*pair(1, 9, both_right=50, both_wrong=3))
    assert (r["b"], r["c"], r["n"]) == (1, 9, 63)
    assert r["p_value"] == pytest.approx(22 / 1024) == pytest.approx(0.021484375)
    # b=c: p = 1; no discordant window: p = 1
    assert mcnemar_exact(*pair(5, 5))["p_value"] == pytest.approx(1.0)
    assert mcnemar_exact(*pair(0, 0, both_right=10))["p_value"] == 1.0
    # b=2, c=8: 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(*pair(2, 8))["p_value"] == pytest.approx(112 / 1024)
    # symmetric in A and B
    y, a, b = pair(3, 12)
    assert mcnemar_exact(y, a, b)["p_value"] == pytest.approx(mcnemar_exact(y, b, a)["p_value"])


def test_wilson_interval_textbook_values():
    lo, hi = wilson_interval(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(3.8416 / 23.8416)  # z^2 / (n + z^2)
    assert wilson_interval(20, 20)[1] == 1.0 and wilson_interval(0, 0) == (0.0, 1.0)
    # the interval is the score test inverted: at each end |p_hat - p| = z * sqrt(p (1 - p) / n)
    for k, n in ((37, 50), (2871, 2996)):
        for p in wilson_interval(k, n):
            assert abs(k / n - p) == pytest.approx(1.96 * math.sqrt(p * (1 - p) / n), rel=1e-9)
    with pytest.raises(HarvitError):
        wilson_interval(11, 10)


def test_verdict_needs_a_significant_paired_difference():
    assert verdict(*pair(1, 9)) == "behind"
    assert verdict(*pair(9, 1)) == "ahead"
    assert verdict(*pair(2, 8)) == "level"  # p = 0.11
    # a 0.1-point lead on ~3000 windows (b=13, c=10): level
    y, a, b = pair(13, 10, both_right=2850, both_wrong=123)
    r = compare(y, a, b)
    assert r["acc_a"] - r["acc_b"] == pytest.approx(3 / 2996)
    assert r["verdict"] == "level" and r["p_value"] > 0.5
    assert r["ci_a"][0] < r["acc_b"] < r["ci_a"][1]


def test_paired_test_refuses_unpaired_inputs():
    with pytest.raises(HarvitError, match="same windows"):
        mcnemar_exact([0, 1, 2], [0, 1, 2], [0, 1])
    with pytest.raises(HarvitError, match="no windows"):
        mcnemar_exact([], [], [])
