"""Baselines on the window statistics (scikit-learn only: always available).

* ``logreg``: StandardScaler + logistic regression (fast tier);
* ``gbt``: gradient-boosted trees, scikit-learn's ``HistGradientBoostingClassifier`` (full tier: an
  order of magnitude slower than logistic regression; timings in docs/benchmarks.md).

Both read :meth:`~harvit.evaluation.baseline_registry.BaselineInputs.statistics` ([N, F] per split,
computed once), are fitted on the training windows, predict the validation windows, and with ``refit``
are fitted again (a fresh estimator) on training + validation windows for the test predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from harvit.evaluation.baseline_registry import BaselineInputs, Fitted, register_baseline


def fit_estimator(make: Callable[[], Any], data: BaselineInputs, warm: bool = False) -> Fitted:
    """Fit ``make()`` on the training statistics, predict validation; refit on training + validation
    statistics when ``data.refit`` (a fresh estimator, or with ``warm`` the same one where the classes are the
    same: a ``warm_start`` estimator then starts from the training-only solution); predict test."""
    f = data.statistics()
    est = make().fit(f["train"], data.ys["train"])
    val_pred = est.predict(f["val"])
    if data.refit:
        # warm only over the same classes (a class that only validation subjects hold changes the weights' shape)
        same = warm and np.array_equal(np.unique(data.ys["train"]), np.unique(data.y_train_val()))
        est = (est if same else make()).fit(np.vstack([f["train"], f["val"]]), data.y_train_val())
    return Fitted(val_pred, est.predict(f["test"]), {"refit_on_train_val": data.refit,
                                                     "n_features": int(f["train"].shape[1])})


@register_baseline("logistic-regression", reads="statistics", tier="fast")
def logreg(data: BaselineInputs) -> Fitted:
    """Standardised window statistics, then logistic regression (lbfgs, up to 2000 iterations; the refit starts
    from the training-only weights: the same convex optimum in about half the iterations)."""
    return fit_estimator(lambda: make_pipeline(StandardScaler(), LogisticRegression(
        max_iter=2000, random_state=data.seed, warm_start=True)), data, warm=True)


@register_baseline("gradient-boosted trees", reads="statistics", tier="full")
def gbt(data: BaselineInputs) -> Fitted:
    """200 boosted trees of up to 31 leaves, learning rate 0.1, no early stopping."""
    return fit_estimator(lambda: HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=31,
                                                                early_stopping=False, random_state=data.seed), data)
