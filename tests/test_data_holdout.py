"""Validation holds out whole subjects by their share of the windows, not by their number."""

from __future__ import annotations

import numpy as np
import pytest

from harvit.config import Config
from harvit.data import Windows, train_val_split
from harvit.data.holdout import choose_holdout
from harvit.utils.errors import HarvitError


def _windows(sizes: dict[str, int], classes: int = 4, special: dict[str, list[tuple[str, int]]] | None = None,
             seed: int = 0) -> Windows:
    """Windows of named subjects (ids 1..S in name order) with ``sizes[name]`` windows of random classes 0..3;
    ``special[name]`` adds (class name, count) windows of extra classes."""
    names = sorted(sizes)
    extra = sorted({c for rows in (special or {}).values() for c, _ in rows})
    class_names = [f"c{k}" for k in range(classes)] + extra
    rng = np.random.default_rng(seed)
    subject, y = [], []
    for i, name in enumerate(names, start=1):
        subject += [i] * sizes[name]
        y += rng.integers(0, classes, sizes[name]).tolist()
        for c, n in (special or {}).get(name, []):
            subject += [i] * n
            y += [class_names.index(c)] * n
    x = np.zeros((len(y), 3, 8), np.float32)
    meta = {"subject_names": {str(i): name for i, name in enumerate(names, start=1)}}
    return Windows(x, np.array(y), np.array(subject), ["a", "b", "c"], class_names, 20.0, meta)


def _dominant() -> Windows:
    """One subject ('big') holds 64% of the windows, the other 11 share the rest unevenly."""
    sizes = {"big": 6400} | {f"p{k:02d}": n for k, n in enumerate([150, 200, 250, 300, 300, 350, 350, 400, 400,
                                                                      450, 450])}
    return _windows(sizes)


def test_one_subject_over_half_of_the_windows_keeps_validation_near_the_fraction(caplog: pytest.LogCaptureFixture):
    w = _dominant()
    caplog.set_level("INFO", logger="harvit.data")
    for seed in range(6):
        train, val = train_val_split(w, 0.2, seed)
        share = len(val) / len(w)
        assert 0.1 <= share <= 0.3, (seed, share)
        assert "big" not in val.meta["val_choice"]["subjects"]
        assert set(train.y.tolist()) == set(val.y.tolist()) == set(range(4))
        assert not set(train.subjects()) & set(val.subjects()) and len(train) + len(val) == len(w)
    choice = val.meta["val_choice"]
    assert choice["windows"] == len(val) and choice["share"] == pytest.approx(len(val) / len(w), abs=1e-4)
    assert choice["subjects"] == [w.meta["subject_names"][str(s)] for s in val.subjects()]
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("validation: subjects")][-1]
    assert ", ".join(choice["subjects"]) in line and f"{len(val)} windows" in line and "% of the training" in line
    assert choose_holdout(w.subject, w.y, 4, 0.2, 0).share == pytest.approx(0.2, abs=0.01)


def test_same_seed_same_subjects_and_seeds_differ():
    w = _dominant()
    first = train_val_split(w, 0.2, 7)[1].subjects()
    assert train_val_split(w, 0.2, 7)[1].subjects() == first
    assert len({tuple(train_val_split(w, 0.2, s)[1].subjects()) for s in range(10)}) > 1


def test_a_class_of_one_subject_stays_in_training_and_rare_classes_reach_validation():
    special = {"p01": [("only", 30)], "p03": [("rare", 5)], "p07": [("rare", 4)]}
    w = _windows({f"p{k:02d}": 100 for k in range(10)}, special=special)
    only, rare = w.classes.index("only"), w.classes.index("rare")
    for seed in range(8):
        train, val = train_val_split(w, 0.2, seed)
        assert "p01" not in val.meta["val_choice"]["subjects"]  # the only subject with 'only'
        assert only in train.y and rare in train.y and rare in val.y
        assert 0.1 <= len(val) / len(w) <= 0.3


def test_val_subjects_take_names_and_ids():
    w = _windows({"f1": 50, "f2": 60, "m3": 70, "m4": 80})
    train, val = train_val_split(w, 0.2, 0, val_subjects=["m3", "f1"])
    assert val.subjects() == [1, 3] and train.subjects() == [2, 4]
    assert val.meta["val_choice"]["subjects"] == ["f1", "m3"] and val.meta["val_choice"]["how"] == "--val-subjects"
    assert train_val_split(w, 0.2, 0, val_subjects=[2])[1].subjects() == [2]
    with pytest.raises(HarvitError, match="--val-subjects: no training subject x9 in the data; training subjects: "
                                          "f1, f2, m3, m4"):
        train_val_split(w, 0.2, 0, val_subjects=["f1", "x9"])
    cfg = Config(val_subjects="f1, 3")
    assert cfg.val_subject_list == ["f1", 3]
    assert train_val_split(w, 0.2, 0, val_subjects=cfg.val_subject_list)[1].subjects() == [1, 3]


def test_a_split_that_must_leave_a_class_untrained_is_an_error():
    # each subject alone holds a class: any subject held out takes a class out of training
    w = _windows({"a": 40, "b": 40}, special={"a": [("x", 10)], "b": [("z", 10)]})
    with pytest.raises(HarvitError, match=r"--val-fraction 0.2: every choice .* leaves class\(es\) (x|z) with no "
                                          "training window"):
        train_val_split(w, 0.2, 0)


def test_explicit_subjects_that_leave_a_class_untrained_warn(caplog: pytest.LogCaptureFixture):
    w = _windows({"a": 40, "b": 40, "c": 40}, special={"a": [("x", 10)]})
    caplog.set_level("WARNING")
    train, val = train_val_split(w, 0.2, 0, val_subjects=["a"])  # a cross-validation fold may do this
    assert w.classes.index("x") not in train.y
    assert "class(es) x have no training window" in caplog.text


def test_without_subjects_windows_are_stratified():
    w = _windows({"a": 200})
    w.subject[:] = -1
    train, val = train_val_split(w, 0.25, 0)
    assert abs(len(val) - 50) <= 4 and set(val.y.tolist()) == set(range(4))
    assert val.meta["val_choice"]["how"] == "stratified windows"
