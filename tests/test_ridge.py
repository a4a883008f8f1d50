"""The fast ridge: sklearn's ridge at a fixed penalty, the penalty chosen on validation only, the refit."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import harvit.evaluation.ridge as ridge
from harvit.evaluation.ridge import fit_ridge
from harvit.utils.errors import HarvitError


def _data(n: int, p: int, k: int = 3, seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(p, k))
    x = rng.normal(size=(n, p)) * rng.uniform(0.1, 3.0, p) + rng.normal(size=p)
    y = np.argmax(x @ w + noise * rng.normal(size=(n, k)), axis=1)
    return x.astype(np.float64), y


@pytest.mark.parametrize("n, p", [(200, 30), (40, 120)])  # primal and dual Gram
@pytest.mark.parametrize("alpha", [0.1, 10.0])
def test_matches_sklearn_ridge_at_a_fixed_alpha(n, p, alpha):
    x, y = _data(n, p)
    xv, yv = _data(50, p, seed=1)
    ours = fit_ridge(x, y, xv, yv, n_classes=3, alphas=(alpha,), refit=False)
    ref = make_pipeline(StandardScaler(), RidgeClassifier(alpha=alpha)).fit(x, y)
    assert ours.alpha == alpha and not ours.refit
    np.testing.assert_allclose(ours.decision_function(xv), ref.decision_function(xv), atol=1e-4)


def test_refit_matches_sklearn_on_train_plus_val():
    x, y = _data(300, 40)
    xv, yv = _data(120, 40, seed=1)
    ours = fit_ridge(x, y, xv, yv, n_classes=3, alphas=(3.0,), refit=True)
    ref = make_pipeline(StandardScaler(), RidgeClassifier(alpha=3.0)).fit(np.vstack([x, xv]), np.r_[y, yv])
    xt, _ = _data(60, 40, seed=2)
    assert ours.refit and ours.val_accuracy == pytest.approx(np.mean(
        make_pipeline(StandardScaler(), RidgeClassifier(alpha=3.0)).fit(x, y).predict(xv) == yv))
    np.testing.assert_allclose(ours.decision_function(xt), ref.decision_function(xt), atol=1e-4)


def test_refit_with_the_cholesky_path_matches_sklearn(monkeypatch):
    monkeypatch.setattr(ridge, "EIGH_MAX", 10)  # the large-problem path on a small problem
    x, y = _data(300, 40)
    xv, yv = _data(120, 40, seed=1)
    ours = fit_ridge(x, y, xv, yv, n_classes=3, alphas=(3.0,), refit=True)
    ref = make_pipeline(StandardScaler(), RidgeClassifier(alpha=3.0)).fit(np.vstack([x, xv]), np.r_[y, yv])
    np.testing.assert_allclose(ours.decision_function(xv), ref.decision_function(xv), atol=1e-4)


def test_alpha_is_chosen_on_validation_accuracy_alone():
    x, y = _data(120, 100, noise=3.0)
    xv, yv = _data(400, 100, seed=1, noise=3.0)
    alphas = (0.01, 1.0, 100.0, 10000.0)
    fit = fit_ridge(x, y, xv, yv, n_classes=3, alphas=alphas, refit=False)
    accs = {a: np.mean(make_pipeline(StandardScaler(), RidgeClassifier(alpha=a)).fit(x, y).predict(xv) == yv)
            for a in alphas}
    assert fit.searched == pytest.approx(accs)
    best = max(accs.values())
    assert fit.alpha == max(a for a, v in accs.items() if v == best)  # ties: the larger penalty
    assert fit.val_accuracy == pytest.approx(best)
    # the validation labels choose: flipping them changes the choice, the training fit is the same
    flipped = fit_ridge(x, y, xv, (yv + 1) % 3, n_classes=3, alphas=alphas, refit=False)
    assert flipped.searched != fit.searched


def test_descending_search_stops_after_patience(monkeypatch):
    monkeypatch.setattr(ridge, "EIGH_MAX", 10)
    x, y = _data(300, 40, noise=0.1)
    xv, yv = _data(100, 40, seed=1, noise=0.1)
    alphas = tuple(np.logspace(6, -2, 9))  # huge penalties first: accuracy rises, then stays
    fit = fit_ridge(x, y, xv, yv, n_classes=3, alphas=alphas, refit=False)
    tried = list(fit.searched)
    assert tried == sorted(tried, reverse=True)
    after_best = [a for a in tried if a < fit.alpha]
    assert len(after_best) <= ridge.PATIENCE


def test_bad_shapes_are_one_clear_error():
    with pytest.raises(HarvitError, match="same p"):
        fit_ridge(np.zeros((5, 3)), np.zeros(5, int), np.zeros((5, 4)), np.zeros(5, int))
    with pytest.raises(HarvitError, match="no training or no validation"):
        fit_ridge(np.zeros((0, 3)), np.zeros(0, int), np.zeros((5, 3)), np.zeros(5, int))


def test_counts_form_the_gram_exactly_in_8_bit_integers():
    """uint8 counts: the Gram matrix in 8-bit integer products equals the float64 one, and the ridge fitted
    on counts predicts as the ridge on their float values (standardisation makes scale irrelevant)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    centre = rng.normal(0, 1, (3, 40))
    x = np.clip(rng.normal(60, 25, (300, 40)) + 20 * centre[y], 0, 128).astype(np.uint8)
    yv = rng.integers(0, 3, 90)
    xv = np.clip(rng.normal(60, 25, (90, 40)) + 20 * centre[yv], 0, 128).astype(np.uint8)
    xf = torch.from_numpy(x).double()
    around = xf.mean(0)
    exact = (xf - around).T @ (xf - around)
    mean, gram, var = ridge._int_scatter(torch.from_numpy(x))
    assert torch.allclose(mean, around, rtol=1e-12) and torch.allclose(gram, exact, rtol=1e-12, atol=1e-6)
    assert torch.allclose(var, xf.var(0, unbiased=False), rtol=1e-12)
    on_counts = fit_ridge(x, y, xv, yv, 3)
    on_floats = fit_ridge(x.astype(np.float32) / 128, y, xv.astype(np.float32) / 128, yv, 3)
    assert on_counts.alpha == on_floats.alpha and on_counts.searched == on_floats.searched
    assert np.array_equal(on_counts.predict(xv), on_floats.predict(xv.astype(np.float32) / 128))


@pytest.mark.parametrize("rows, blocks", [(64, 3), (1 << 17, 1), (1 << 17, 7)])
def test_the_8_bit_gram_is_exact_over_row_parts_and_column_blocks(monkeypatch, rows, blocks):
    """The upper block triangle mirrored, and int32 sums per part of rows added in float64: Q^T Q exactly, and
    Q's column sums, for Q = counts - 128 (the sums in blocks of ROWS rows)."""
    monkeypatch.setattr(ridge, "INT_ROWS", rows)
    monkeypatch.setattr(ridge, "INT_BLOCKS", blocks)
    monkeypatch.setattr(ridge, "ROWS", 16)
    counts = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (200, 41), dtype=np.uint8))
    q = counts.double() - 128
    got = ridge._int_products(counts)
    assert got is not None and got[0].dtype == torch.float64
    assert torch.equal(got[0], q.T @ q) and torch.equal(got[1], q.sum(0))


@pytest.mark.parametrize("counts, kernel", [(True, "int8"), (True, "float32"), (False, "auto")])
def test_constant_features_are_not_blown_up_by_standardising(monkeypatch, counts, kernel):
    """A feature that never changes (a count always 0, always the window length, or a float like 0.1 whose
    mean rounds) keeps a scale of 1, as in StandardScaler: the ridge stays solvable at every penalty and
    predicts as scikit-learn's. (A variance of ~1e-15 from rounding once scaled such a row by ~1e7 and no
    penalty of the grid was solvable, on a real chest-accelerometer data set.)"""
    monkeypatch.setattr(ridge, "EIGH_MAX", 10)  # the Cholesky path, as for MiniRocket's 9996 features
    monkeypatch.setenv(ridge.GRAM_ENV, kernel)  # counts: each Gram kernel (int8, float32 syrk)
    rng = np.random.default_rng(5)
    y, yv = rng.integers(0, 3, 31725), rng.integers(0, 3, 2000)  # the chest set's size: s^2 / n rounds there
    centre = rng.normal(0, 1, (3, 30))

    def feats(labels):
        x = np.clip(rng.normal(60, 25, (len(labels), 30)) + 20 * centre[labels], 0, 133)
        x[:, 20:] = (0, 1, 7, 57, 64, 99, 127, 128, 131, 133)  # constant columns
        return x.astype(np.uint8) if counts else x.astype(np.float32) / 1000 + np.float32(0.1)

    x, xv = feats(y), feats(yv)
    gram = ridge._Problem(x, ridge._targets(y, 3, torch.float32), "float32" if kernel == "float32" else "int8").gram
    assert gram.abs().max() <= len(x) * (1 + 1e-5)  # standardised: |G_ij| <= n (Cauchy-Schwarz)
    alphas = (1000.0, 10.0, 0.1)
    fit = fit_ridge(x, y, xv, yv, 3, alphas=alphas, refit=True)
    assert set(fit.searched) <= set(alphas) and len(fit.searched) >= 1
    ref = make_pipeline(StandardScaler(), RidgeClassifier(alpha=fit.alpha)).fit(
        np.vstack([x, xv]).astype(np.float64), np.r_[y, yv])
    np.testing.assert_allclose(fit.decision_function(xv), ref.decision_function(xv.astype(np.float64)),
                               rtol=1e-4, atol=1e-3)
