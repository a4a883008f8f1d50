"""Validation splits hold out whole training subjects."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_runs import synthetic_windows

from harvit.data import CHANNELS, Windows, train_val_split
from harvit.data.splits import n_val_subjects
from harvit.utils.errors import HarvitError


def _windows(subjects: list[int], per_subject: int = 4) -> Windows:
    subject = np.repeat(subjects, per_subject)
    n = len(subject)
    x = np.random.default_rng(0).normal(size=(n, 9, 16)).astype(np.float32)
    return Windows(x, np.arange(n) % 3, subject, list(CHANNELS), ["A", "B", "C"], 50.0)


def test_subject_disjoint_and_complete():
    w = _windows(list(range(1, 11)))
    train, val = train_val_split(w, 0.3, seed=0)
    assert not set(train.subjects()) & set(val.subjects())
    assert sorted(train.subjects() + val.subjects()) == w.subjects()
    assert len(train) + len(val) == len(w)
    assert len(val.subjects()) == 3 and val.meta["val_subjects"] == val.subjects()
    np.testing.assert_array_equal(val.x, w.x[np.isin(w.subject, val.subjects())])


def test_deterministic_per_seed():
    w = _windows(list(range(1, 22)))
    a = train_val_split(w, 0.2, seed=7)[1].subjects()
    assert a == train_val_split(w, 0.2, seed=7)[1].subjects()
    others = {tuple(train_val_split(w, 0.2, seed=s)[1].subjects()) for s in range(8)}
    assert len(others) > 1


@pytest.mark.parametrize(
    ("n", "fraction", "expected"),
    [(21, 0.2, 4), (10, 0.25, 3), (10, 0.01, 1), (10, 0.99, 9), (2, 0.5, 1), (3, 0.9, 2)],
)
def test_test_fraction_counts_subjects(n, fraction, expected):
    assert n_val_subjects(n, fraction) == expected


@pytest.mark.parametrize(
    ("n", "fraction", "expected"),
    [(21, 0.2, 4), (10, 0.3, 3), (10, 0.01, 1), (10, 0.99, 9), (2, 0.5, 1), (3, 0.9, 2)],
)
def test_val_fraction_is_a_share_of_windows(n, fraction, expected):
    # equal subjects: the share of windows is the share of subjects, at least one held out and one kept
    _, val = train_val_split(_windows(list(range(1, n + 1))), fraction, seed=1)
    assert len(val.subjects()) == expected
    assert val.meta["val_choice"]["windows"] == len(val) and val.meta["val_choice"]["how"] == "window share"


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_fraction_names_the_flag(fraction):
    with pytest.raises(HarvitError, match="--val-fraction"):
        train_val_split(_windows([1, 2, 3]), fraction, seed=0)


def test_one_subject_cannot_be_split():
    with pytest.raises(HarvitError, match=r"--val-fraction .* 1 subject\(s\) \(5\).*--subject-from none"):
        train_val_split(_windows([5]), 0.2, seed=0)


def test_real_hapt6_split(hapt6_real):
    train, val = train_val_split(hapt6_real.train, 0.2, seed=0)
    assert 3 <= len(val.subjects()) <= 5 and len(train.subjects()) + len(val.subjects()) == 21
    assert abs(len(val) / len(hapt6_real.train) - 0.2) < 0.02
    assert not set(val.subjects()) & set(hapt6_real.test.subjects())


def test_explicit_val_subjects_override_the_fraction():
    w = synthetic_windows(60, [1, 3, 5, 6, 7])
    train, val = train_val_split(w, 0.2, 0, val_subjects=[6, 3])
    assert val.subjects() == [3, 6] and train.subjects() == [1, 5, 7]
    assert len(train) + len(val) == len(w) and val.meta["val_subjects"] == [3, 6]
    with pytest.raises(HarvitError, match="--val-subjects: no training subject 2 in the data; training subjects: 1, 3"):
        train_val_split(w, 0.2, 0, val_subjects=[2])
    with pytest.raises(HarvitError, match="every training subject"):
        train_val_split(w, 0.2, 0, val_subjects=[1, 3, 5, 6, 7])
