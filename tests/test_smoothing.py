"""The hidden Markov smoother: fitted from label sequences and validation errors, applied by Viterbi at any
stride, kept as smoother.json beside the checkpoint, and used by ``harvit predict --smooth hmm|none``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_runs import tiny_config

from harvit.deploy.smoothing import (
    NO_SMOOTHER,
    HmmSmoother,
    fit_smoother,
    load_smoother,
    resolve_smoother,
    save_smoother,
    smooth_log_probs,
    smoothing_line,
    transition_at,
)
from harvit.utils.errors import HarvitError

CLASSES = ["walk", "sit", "stand", "lie"]


def long_runs(n_runs: int, run_len: int, seed: int) -> np.ndarray:
    """int [n_runs * run_len]: runs of one class each, the class changing at every run."""
    rng = np.random.default_rng(seed)
    labels = [int(rng.integers(len(CLASSES)))]
    for _ in range(n_runs - 1):
        labels.append(int((labels[-1] + rng.integers(1, len(CLASSES))) % len(CLASSES)))
    return np.repeat(labels, run_len)


def isolated_flips(truth: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """``truth`` with a share ``rate`` of single, isolated windows flipped to another class."""
    rng = np.random.default_rng(seed)
    pred = truth.copy()
    at = np.flatnonzero(rng.random(len(truth)) < rate)
    at = at[np.diff(np.r_[-10, at]) > 2]  # isolated: no two flips side by side
    pred[at] = (truth[at] + rng.integers(1, len(CLASSES), len(at))) % len(CLASSES)
    return pred


def one_hot_log(pred: np.ndarray, k: int = len(CLASSES)) -> np.ndarray:
    return np.log(np.full((len(pred), k), 0.1 / (k - 1)) + np.eye(k)[pred] * (0.9 - 0.1 / (k - 1)))


@pytest.fixture(scope="module")
def smoother() -> HmmSmoother:
    train = [long_runs(30, 60, seed) for seed in range(4)]
    val_true = long_runs(20, 60, 10)
    return fit_smoother(train, 1.0, val_true, isolated_flips(val_true, 0.1, 11), CLASSES)


def test_fit_counts_what_it_is_given(smoother: HmmSmoother):
    assert smoother.classes == CLASSES and smoother.step_s == 1.0
    # 4 x 30 runs of 60 windows: 4 x 29 changes in 4 x 1799 steps; the rest stays
    assert smoother.info["changes"] == 4 * 29 and smoother.info["windows"] == 4 * 30 * 60
    assert np.diag(smoother.transition).min() > 0.95
    assert 0.85 < np.diag(smoother.emission).mean() < 0.95  # 10% of validation windows were flipped
    np.testing.assert_allclose(smoother.transition.sum(axis=1), 1.0)
    with pytest.raises(HarvitError, match="validation labels span"):
        fit_smoother([np.zeros(3, int)], 1.0, np.array([5]), np.array([0]), CLASSES)


def test_smoothing_removes_isolated_flips(smoother: HmmSmoother):
    truth = long_runs(40, 50, 20)
    pred = isolated_flips(truth, 0.15, 21)
    raw_acc = float((pred == truth).mean())
    out = smooth_log_probs(one_hot_log(pred), smoother, 1.0)
    assert out.dtype == np.int64 and out.shape == truth.shape
    assert raw_acc < 0.9 and float((out == truth).mean()) > 0.98


def test_transitions_rescale_with_the_stride(smoother: HmmSmoother):
    t = smoother.transition
    np.testing.assert_allclose(transition_at(smoother, 2.0), t @ t)
    np.testing.assert_allclose(transition_at(smoother, 1.0), t)
    half = transition_at(smoother, 0.5)  # a fractional power: its square is the step's matrix again
    np.testing.assert_allclose(half.sum(axis=1), 1.0)
    np.testing.assert_allclose(half @ half, t, atol=1e-6)
    # smoothing at twice the step == a smoother counted at that step with the squared matrix
    squared = HmmSmoother(CLASSES, smoother.start, t @ t, 2.0, smoother.emission)
    truth = long_runs(30, 20, 30)
    lp = one_hot_log(isolated_flips(truth, 0.2, 31))
    np.testing.assert_array_equal(smooth_log_probs(lp, smoother, 2.0), smooth_log_probs(lp, squared, 2.0))
    # a much longer stride makes changes cheaper: fewer windows are overruled
    coarse = smooth_log_probs(lp, smoother, 60.0)
    assert (coarse != lp.argmax(1)).sum() <= (smooth_log_probs(lp, smoother, 1.0) != lp.argmax(1)).sum()


def test_breaks_start_new_sequences(smoother: HmmSmoother):
    a = isolated_flips(long_runs(10, 30, 40), 0.15, 41)
    b = isolated_flips(long_runs(10, 30, 42), 0.15, 43)
    lp = one_hot_log(np.concatenate([a, b]))
    breaks = np.zeros(len(lp), dtype=bool)
    breaks[len(a)] = True
    joined = smooth_log_probs(lp, smoother, 1.0, breaks)
    alone = np.concatenate([smooth_log_probs(one_hot_log(a), smoother, 1.0),
                            smooth_log_probs(one_hot_log(b), smoother, 1.0)])
    np.testing.assert_array_equal(joined, alone)
    # a break before a single window of another class keeps it: no run carries over the break
    seq = np.array([0] * 20 + [1] + [0] * 20)
    assert smooth_log_probs(one_hot_log(seq), smoother, 1.0)[20] == 0
    cut = np.zeros(len(seq), dtype=bool)
    cut[[20, 21]] = True
    assert smooth_log_probs(one_hot_log(seq), smoother, 1.0, cut)[20] == 1
    with pytest.raises(HarvitError, match="breaks of shape"):
        smooth_log_probs(lp, smoother, 1.0, breaks[:-1])
    with pytest.raises(HarvitError, match=r"expected \[N, 4\]"):
        smooth_log_probs(lp[:, :3], smoother, 1.0)


def test_save_load_round_trip(smoother: HmmSmoother, tmp_path: Path):
    assert load_smoother(tmp_path) is None
    path = save_smoother(smoother, tmp_path)
    assert path == tmp_path / "smoother.json" and not list(tmp_path.glob(".*.tmp"))
    back = load_smoother(tmp_path / "best.pt")  # a checkpoint's folder works too
    assert back is not None and back.classes == smoother.classes and back.step_s == smoother.step_s
    for name in ("start", "transition", "emission"):
        np.testing.assert_array_equal(getattr(back, name), getattr(smoother, name))
    assert back.info == smoother.info


@pytest.mark.parametrize("content, words", [
    ("{not json", "not a readable smoother file"),
    ('{"format": "other"}', "not a harvit smoother file"),
    ("transition-shape", "transition has shape [3, 4]"),
    ("emission-rows", "emission rows do not sum to 1"),
    ("no-step", "without a valid 'step_s' entry"),
])
def test_bad_smoother_file_is_one_line(smoother: HmmSmoother, tmp_path: Path, content: str, words: str):
    data = smoother.to_dict()
    if content == "transition-shape":
        data["transition"] = data["transition"][:3]
    elif content == "emission-rows":
        data["emission"][0][0] -= 0.05
    elif content == "no-step":
        del data["step_s"]
    text = json.dumps(data) if content in ("transition-shape", "emission-rows", "no-step") else content
    (tmp_path / "smoother.json").write_text(text)
    with pytest.raises(HarvitError) as e:
        load_smoother(tmp_path)
    msg = str(e.value)
    assert words in msg and str(tmp_path / "smoother.json") in msg and "\n" not in msg


def test_resolve_smoother(smoother: HmmSmoother, tmp_path: Path):
    assert resolve_smoother(tmp_path, CLASSES, "hmm") is None
    assert smoothing_line("hmm", None) == NO_SMOOTHER and "--smooth none" in smoothing_line("none", None)
    save_smoother(smoother, tmp_path)
    assert resolve_smoother(tmp_path, CLASSES, "none") is None
    assert resolve_smoother(tmp_path, CLASSES, "hmm").classes == CLASSES  # type: ignore[union-attr]
    with pytest.raises(HarvitError, match="the model's are"):
        resolve_smoother(tmp_path, CLASSES[::-1], "hmm")
    with pytest.raises(HarvitError, match="--smooth"):
        resolve_smoother(tmp_path, CLASSES, "median")


# ---- training writes smoother.json; predict --table --smooth hmm|none -----------------------------
def still_walk_table(path: Path, rate: float = 20.0) -> Path:
    """A 3-axis accelerometer table at ``rate`` Hz: 4 subjects, runs of 300 samples of still / walk."""
    rng = np.random.default_rng(0)
    frames = []
    for subject in (1, 2, 3, 4):
        names = ["still", "walk", "still", "walk", "still"]
        n = 300
        t = np.arange(n * len(names)) / rate
        walk = np.repeat([name == "walk" for name in names], n)
        x = rng.normal(0, 0.05, (len(t), 3)) + np.array([0.0, 0.0, 1.0])
        x[walk] += 0.6 * np.sin(2 * np.pi * 2.0 * t[walk])[:, None]
        frame = pd.DataFrame({"subject": subject, "time": t, "activity": np.repeat(names, n)})
        for k, axis in enumerate("xyz"):
            frame[f"acc_{axis}"] = x[:, k]
        frames.append(frame)
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def test_training_writes_the_smoother_and_predict_uses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]):
    from harvit.cli import main
    from harvit.training import train

    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    table = still_walk_table(tmp_path / "acc.csv")
    cfg = tiny_config(tmp_path / "runs", dataset=str(table), epochs=1, window_s=2.0, test_subjects="4")
    train(cfg.validate())
    s = load_smoother(cfg.run_dir)
    assert s is not None and s.classes == ["still", "walk"]
    # windows of 40 samples at stride 20 (--overlap 0.5) at 20 Hz: 1 s apart; 3 training subjects
    assert s.step_s == pytest.approx(1.0) and s.info["sequences"] == 3
    assert s.info["changes"] == 3 * 4  # 4 changes per subject's recording
    assert s.info["val_windows"] > 0

    outs = {}
    for smooth in ("hmm", "none"):
        out = tmp_path / f"pred_{smooth}.csv"
        assert main(["predict", str(cfg.run_dir), "--table", str(table), "--out", str(out), "--device", "cpu",
                     "--threads", "1", "--smooth", smooth]) == 0
        text = capsys.readouterr().out
        assert ("smoothing: the run's hidden Markov model" in text) == (smooth == "hmm")
        assert NO_SMOOTHER not in text
        outs[smooth] = pd.read_csv(out)
    probs = outs["none"][["p_still", "p_walk"]].to_numpy()
    classes = np.array(["still", "walk"])
    np.testing.assert_array_equal(outs["none"]["activity"], classes[probs.argmax(1)])
    piece = outs["hmm"]["piece"].to_numpy()
    expected = smooth_log_probs(probs, s, 1.0, np.r_[True, piece[1:] != piece[:-1]])
    np.testing.assert_array_equal(outs["hmm"]["activity"], classes[expected])

    (cfg.run_dir / "smoother.json").unlink()
    assert main(["predict", str(cfg.run_dir), "--table", str(table), "--out", str(tmp_path / "p.csv"),
                 "--device", "cpu", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert NO_SMOOTHER in captured.out.splitlines() and not captured.err
