"""Baseline features and models on small synthetic windows."""

import dataclasses
import json

import numpy as np
import pytest
from helpers_runs import CHANNELS, synthetic_dataset

import harvit.data
from harvit.cli import main
from harvit.evaluation.baseline import format_baseline, run_baseline
from harvit.features.statistics import window_statistics_array
from harvit.utils.errors import HarvitError


def test_window_features_shape_and_finite():
    x = np.random.default_rng(0).normal(size=(7, 9, 128)).astype(np.float32)
    f = window_statistics_array(x, CHANNELS)
    assert f.shape == (7, 300) and f.dtype == np.float32
    assert np.isfinite(f).all()
    assert np.array_equal(window_statistics_array(x), f)  # 9 unnamed channels = the standard HAR order
    # unnamed channels: per-signal statistics only (24 each), no sensor features
    assert window_statistics_array(x[:, :4]).shape == (7, 4 * 24)


@pytest.mark.parametrize("value", [0.0, 1.0, -3.5])
def test_window_features_constant_windows_have_no_nan(value):
    f = window_statistics_array(np.full((3, 9, 128), value, np.float32), CHANNELS)
    assert np.isfinite(f).all()
    assert np.isfinite(window_statistics_array(np.zeros((2, 9, 1), np.float32))).all()  # one sample


def test_window_features_gravity_direction():
    x = np.zeros((1, 9, 64), np.float32)
    x[0, 6:] = np.array([0.0, 0.0, -2.0])[:, None]  # total_acc along -z
    assert np.allclose(window_statistics_array(x, CHANNELS)[0, -3:], [0.0, 0.0, -1.0])


def test_window_features_rejects_bad_shapes():
    with pytest.raises(HarvitError, match="N, C, T"):
        window_statistics_array(np.zeros((9, 128)))
    with pytest.raises(HarvitError, match="channel names"):
        window_statistics_array(np.zeros((2, 3, 16)), CHANNELS)


def test_baseline_learns_synthetic_classes(tmp_path):
    res = run_baseline("synthetic", windows=synthetic_dataset(), json_path=tmp_path / "b.json", minirocket=False)
    assert set(res["models"]) == {"logreg", "gbt"}
    for m in res["models"].values():
        assert m["test_accuracy"] >= 0.9 and m["val_accuracy"] >= 0.9
        assert 0 < m["fit_time_s"] < 600 and m["test_macro_f1"] >= 0.85  # separable classes: every class found
    assert res["n_features"] == 300
    sp = res["split"]
    assert not set(sp["val"]["subjects"]) & set(sp["train"]["subjects"])
    assert sp["test"]["subjects"] == [2, 4]
    assert json.loads((tmp_path / "b.json").read_text())["best"] == res["best"]
    text = format_baseline(res)
    assert "logistic-regression" in text and "gradient-boosted trees" in text and "<- strongest on validation" in text
    assert res["best_by"] == "validation accuracy" and res["refit"]
    assert res["models"][res["best"]]["val_accuracy"] == max(m["val_accuracy"] for m in res["models"].values())
    for m in res["models"].values():
        assert m["test_balanced_accuracy"] >= 0.85 and m["val_balanced_accuracy"] >= 0.85


def test_baseline_split_matches_training_split():
    from harvit.data import train_val_split

    ds = synthetic_dataset()
    res = run_baseline("synthetic", windows=ds, seed=7, val_fraction=0.4)
    _, val = train_val_split(ds.train, 0.4, 7)
    assert res["split"]["val"]["subjects"] == val.subjects()


def test_baseline_cli(monkeypatch, capsys, tmp_path):
    ds = synthetic_dataset(120, 40)
    monkeypatch.setattr(harvit.data.registry, "load_dataset", lambda *a, **k: ds)
    assert main(["baseline", "--dataset", "hapt6", "--json", str(tmp_path / "b.json")]) == 0
    assert "logistic-regression" in capsys.readouterr().out
    assert (tmp_path / "b.json").is_file()


def test_baseline_keeps_each_models_test_predictions():
    ds = synthetic_dataset(120, 40)
    res = run_baseline("synthetic", windows=ds)
    assert res["test_y_true"] == [int(v) for v in ds.test.y]
    for m in res["models"].values():
        assert len(m["test_pred"]) == 40 and all(isinstance(v, int) for v in m["test_pred"])
        assert np.mean(np.asarray(m["test_pred"]) == ds.test.y) == pytest.approx(m["test_accuracy"])


@pytest.mark.parametrize("argv, stride, seed, said", [
    (["--preset", "cpu"], 32, 42, "the cpu preset"),  # the cpu preset's dense windows, as its run's report
    (["--preset", "vit-b8-frozen"], None, 42, "the vit-b8-frozen preset"),
    (["--preset", "pix2seq"], None, 42, "the vit-b8-frozen preset"),  # its former name still runs it
    (["--preset", "cpu", "--train-stride", "0", "--seed", "7"], None, 7, "the cpu preset"),
    (["--preset", "cpu", "--dataset", "uci_har"], None, 42, "the cpu preset"),  # uci_har: fixed windows
])
def test_baseline_follows_a_presets_windows(monkeypatch, capsys, argv, stride, seed, said):
    calls = []
    ds = synthetic_dataset(120, 40)
    monkeypatch.setattr(harvit.data.registry, "load_dataset", lambda *a, **k: calls.append((a, k)) or ds)
    assert main(["baseline", *argv]) == 0
    assert calls[0][1]["train_stride"] == stride
    out = capsys.readouterr().out
    assert out.startswith(f"settings: {said}")
    assert f"val seed {seed}," in out
    assert ("training windows: every 32 samples" if stride else "training windows: the data set's own stride") in out


def test_baseline_follows_a_run_folder(monkeypatch, capsys, tmp_path):
    from harvit.config import Config

    run = tmp_path / "run"
    Config(dataset="hapt12", train_stride=16, seed=3, split_seed=5, val_fraction=0.25, nan_policy="drop").save(
        run / "config.json")
    calls = []
    ds = synthetic_dataset(120, 40)
    monkeypatch.setattr(harvit.data.registry, "load_dataset", lambda *a, **k: calls.append((a, k)) or ds)
    assert main(["baseline", "--run", str(run)]) == 0
    (args, kw), = calls
    assert args[0] == "hapt12" and args[2] == "drop" and kw["train_stride"] == 16
    out = capsys.readouterr().out
    assert f"settings: the settings of run {run}" in out and "val seed 5, fraction 0.25" in out
    assert "every 16 samples" in out
    assert main(["baseline", "--run", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["baseline", "--run", str(run), "--preset", "cpu"]) == 2


@pytest.fixture(autouse=True)
def toy_sizes(monkeypatch, tmp_path):
    """Every test here: aeon's models at toy sizes (full sizes take minutes), and a fresh baseline cache."""
    import harvit.evaluation.series_models as sm

    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sm, "MINIROCKET_FEATURES", 168)  # 2 features per kernel
    monkeypatch.setattr(sm, "MULTIROCKET_KERNELS", 84)
    monkeypatch.setattr(sm, "HYDRA_GROUPS", 4)
    monkeypatch.setattr(sm, "QUANT_TREES", 20)


@pytest.fixture
def tiny_series_models():
    """The tests that need aeon itself."""
    pytest.importorskip("aeon")


def test_baseline_fits_the_series_models_and_caches_predictions(tiny_series_models, monkeypatch):

    ds = synthetic_dataset(120, 40)
    res = run_baseline("synthetic", windows=ds)
    assert set(res["models"]) == {"logreg", "gbt", "minirocket", "mrhydra", "quant"} and not res["cached"]
    mr = res["models"]["minirocket"]
    assert mr["name"] == "MiniRocket" and mr["n_features"] == 168 and mr["test_accuracy"] >= 0.8
    assert mr["alpha"] in [float(a) for a in np.logspace(-3, 3, 10)] and mr["refit_on_train_val"]
    assert res["models"]["mrhydra"]["name"] == "MultiRocket-Hydra" and res["models"]["quant"]["name"] == "QUANT"
    for m in res["models"].values():
        assert len(m["test_pred"]) == len(ds.test) and m["test_accuracy"] >= 0.7, m["name"]
    assert res["best"] in res["models"]
    top = max(m["val_accuracy"] for m in res["models"].values())
    level = [k for k in ("minirocket", "mrhydra", "quant", "logreg", "gbt") if res["models"][k]["val_accuracy"] == top]
    assert res["best"] == level[0]  # ties: the time-series classifiers first
    text = format_baseline(res)
    assert "MiniRocket" in text and "MultiRocket-Hydra" in text and "QUANT" in text
    # the second call reads the cache (same windows, split and seed): no refit, the same predictions
    from harvit.evaluation.baseline_registry import BASELINES

    for key in (k for k in BASELINES if BASELINES.get(k).needs):  # a second fit of an aeon model fails the test
        failing = dataclasses.replace(BASELINES.get(key), fit=lambda *a: pytest.fail())
        monkeypatch.setitem(BASELINES._entries, key, failing)
    again = run_baseline("synthetic", windows=ds)
    assert again["cached"] and again["models"]["minirocket"]["test_pred"] == mr["test_pred"]
    # other validation subjects are another key
    other = run_baseline("synthetic", windows=ds, minirocket=False, val_subjects=[1, 3])
    assert not other["cached"] and other["split"]["val"]["subjects"] == [1, 3]


def test_baseline_without_refit_tests_the_training_only_fit(tiny_series_models):
    ds = synthetic_dataset(120, 40)
    res = run_baseline("synthetic", windows=ds, refit=False, models=("logreg", "minirocket"))
    assert set(res["models"]) == {"logreg", "minirocket"} and not res["refit"]
    assert not res["models"]["minirocket"]["refit_on_train_val"]
    with pytest.raises(HarvitError, match="unknown model 'rocket'"):
        run_baseline("synthetic", windows=ds, models=("rocket",))


def test_baseline_logs_what_it_starts_and_how_long_it_took(tiny_series_models, capsys):
    run_baseline("synthetic", windows=synthetic_dataset(120, 40), models=("logreg", "minirocket"))
    out = capsys.readouterr().out
    assert "baseline: MiniRocket features of" in out and "windows x 9 channels x 128 samples" in out
    assert "baseline: MiniRocket ridge on 96 windows" in out and "done in" in out and "CPU s" in out
    assert "alpha" in out and "chosen on validation" in out


def test_baseline_without_aeon_skips_the_series_models_in_one_line(monkeypatch, capsys):
    import harvit.evaluation.baseline as bl

    monkeypatch.setattr(bl, "load_aeon", lambda: None)
    res = run_baseline("synthetic", windows=synthetic_dataset(120, 40), use_cache=False)
    assert set(res["models"]) == {"logreg", "gbt", "minirocket"} and "aeon" in res["skipped"]["quant"]
    assert set(res["skipped"]) == {"mrhydra", "quant"}  # MiniRocket's transform is harvit's own
    text = format_baseline(res)
    assert "MultiRocket-Hydra: skipped" in text and "QUANT: skipped" in text and "MiniRocket: skipped" not in text


def test_per_subject_counts_sum_to_pooled():
    from harvit.evaluation.metrics import classification_metrics, per_subject_metrics

    rng = np.random.default_rng(0)
    y, p, s = rng.integers(0, 4, 300), rng.integers(0, 4, 300), rng.choice([2, 4, 9, 10], 300)
    ps = per_subject_metrics(y, p, s, ["a", "b", "c", "d"])
    assert sum(v["windows"] for v in ps["subjects"].values()) == ps["windows"] == 300
    assert sum(v["correct"] for v in ps["subjects"].values()) == ps["correct"] == int((y == p).sum())
    assert ps["pooled_accuracy"] == pytest.approx(classification_metrics(y, p, list("abcd"))["accuracy"])
    assert ps["mean_accuracy"] == pytest.approx(np.mean([v["accuracy"] for v in ps["subjects"].values()]))
    assert list(ps["subjects"]) == ["2", "4", "9", "10"]


def test_minirocket_reads_the_counts_the_models_convolution_branch_stored(monkeypatch):
    """MiniRocket's draws are those of harvit's convolution branch of the same seed: on a run's windows the
    baseline reads the stored counts and computes no convolution."""
    import harvit.features.store as store
    from harvit.data import train_val_split
    from harvit.features.rocket import RocketFeatures

    monkeypatch.setattr(store, "MIN_WINDOWS", 1)  # store every window set, however small
    ds = synthetic_dataset(120, 40)
    train_w, val_w = train_val_split(ds.train, 0.2, 42)
    rocket = RocketFeatures.fit(train_w.x, 168, seed=42)  # what a model of seed 42 fits (--rocket-features 168)
    for x in (train_w.x, val_w.x, ds.test.x):
        store.rocket_counts(rocket, x)
    monkeypatch.setattr(RocketFeatures, "counts", lambda *a: pytest.fail("a stored count was computed again"))
    res = run_baseline("synthetic", windows=ds, seed=42, val_fraction=0.2, models=("minirocket",), use_cache=False)
    assert res["models"]["minirocket"]["n_features"] == 168 and res["models"]["minirocket"]["test_accuracy"] >= 0.8


def test_the_baselines_read_the_window_statistics_the_model_stored(monkeypatch):
    """The statistics baselines read what the model's WindowStats stored for the same windows: none is computed
    again (the report after a run)."""
    import harvit.features.statistics as statistics
    import harvit.features.store as store
    from harvit.data import train_val_split

    monkeypatch.setattr(store, "MIN_WINDOWS", 1)
    ds = synthetic_dataset(120, 40)
    train_w, val_w = train_val_split(ds.train, 0.2, 42)
    stats = statistics.WindowStats.fit(train_w.x, list(CHANNELS))
    for x in (val_w.x, ds.test.x):
        stats.precompute(x, "cpu")
    monkeypatch.setattr(statistics, "window_statistics", lambda *a: pytest.fail("stored statistics computed again"))
    res = run_baseline("synthetic", windows=ds, seed=42, val_fraction=0.2, models=("logreg",), use_cache=False)
    assert res["models"]["logreg"]["test_accuracy"] >= 0.8


def test_compute_threads_lifts_the_one_thread_limit_of_the_baselines_and_restores_it():
    import torch
    from threadpoolctl import threadpool_limits

    from harvit.utils.runtime import compute_threads

    with threadpool_limits(limits=1):  # what run_baseline sets around scikit-learn's fits
        assert torch.get_num_threads() == 1
        with compute_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1


def test_aeon_transforms_run_in_chunks_and_hydra_scaling_keeps_aeons_formula(monkeypatch):
    """aeon's transforms see at most TRANSFORM_ROWS windows a call (Hydra holds a call's convolutions at once),
    and the in-place Hydra scaling equals aeon's ``((sqrt(c) - mu) * (c != 0) + mu * share) / sigma``."""
    import harvit.evaluation.series_models as sm

    monkeypatch.setattr(sm, "TRANSFORM_ROWS", 7)
    x = np.random.default_rng(0).normal(size=(30, 2, 16)).astype(np.float32)
    seen = []

    def transform(chunk):
        seen.append(len(chunk))
        return chunk.sum(axis=(1, 2))[:, None] * np.arange(3)

    assert np.array_equal(sm._in_chunks(transform, x), transform(x)) and max(seen[:-1]) == 7
    rng = np.random.default_rng(1)
    train, test = (np.where(rng.random((50, 12)) < 0.4, 0, rng.integers(1, 9, (50, 12))).astype(np.float32)
                   for _ in range(2))
    sq = np.sqrt(np.clip(train, 0, None))
    mu, sigma, share = sq.mean(0) + 1e-8, sq.std(0) + 1e-8, (sq != 0).mean(0)
    for got, a in zip(sm._hydra_scale(train, test), (train, test), strict=True):
        want = ((np.sqrt(a) - mu) * (np.sqrt(a) != 0) + mu * share) / sigma
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
