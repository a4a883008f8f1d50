"""Everything downstream of the data works for any channel set, window length and class list.

Tiny end-to-end runs (train, evaluate, report, export) on (a) a 3-channel accelerometer table at
20 Hz with 40-sample windows and 2 classes, (b) a 6-channel acc + gyro ``.npz`` with 4 string
classes, (c) a 1-channel ``.ts`` pair, (d) 12 classes with long names; and unit checks of views,
window statistics, encodings and the augmentation on channels that do not form triples.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers_runs import is_png, tiny_config

from harvit.config import resolve
from harvit.data import windowing
from harvit.features.statistics import n_statistics, window_statistics
from harvit.imaging.augment import augment_batch
from harvit.imaging.encodings import encode
from harvit.imaging.views import view_groups
from harvit.utils.errors import HarvitError

ACC = ["acc_x", "acc_y", "acc_z"]
ACC_GYRO = [*ACC, "gyro_x", "gyro_y", "gyro_z"]
LONG_NAMES = [f"activity number {k:02d} with a rather long descriptive name" for k in range(12)]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))


# ---- small files ---------------------------------------------------------------------------------
def signal(label: int, n: int, c: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """[n, c] samples: class ``label`` sets a frequency and an offset (so a tiny model can tell them apart)."""
    t = np.arange(n) / rate
    base = np.sin(2 * np.pi * (0.5 + 0.5 * label) * t + rng.uniform(0, 6.3))
    return (base[:, None] * (1 + 0.2 * np.arange(c)) + 0.3 * label + rng.normal(0, 0.1, (n, c))).astype(np.float64)


def acc_table(path: Path, rate: float = 20.0) -> Path:
    """(a) A 3-channel accelerometer table at ``rate`` Hz: 4 subjects, 2 classes, runs of 200 samples."""
    rng = np.random.default_rng(0)
    frames = []
    for subject in (1, 2, 3, 4):
        runs = [("still", 200), ("walk", 200), ("still", 200), ("walk", 200)]
        x = np.concatenate([signal(int(name == "walk"), n, 3, rate, rng) for name, n in runs])
        labels = np.concatenate([np.full(n, name, dtype=object) for name, n in runs])
        frame = pd.DataFrame({"subject": subject, "time": np.arange(len(x)) / rate, "activity": labels})
        for k, name in enumerate(ACC):
            frame[name] = x[:, k]
        frames.append(frame)
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def window_npz(path: Path, classes: list[str], c: int, t: int, per_class: int, channels: list[str] | None,
               subjects: int = 4) -> Path:
    """(b), (d) Windows [N, c, t] with string labels and subjects."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(len(classes)), per_class)
    x = np.stack([signal(int(k), t, c, 50.0, rng).T for k in y]).astype(np.float32)
    arrays = {"x": x, "y": np.array(classes)[y], "subject": 1 + np.arange(len(y)) % subjects}
    if channels is not None:
        arrays["channels"] = np.array(channels)
    np.savez(path, **arrays)
    return path


def ts_pair(folder: Path, t: int = 32) -> Path:
    """(c) A univariate ``.ts`` pair (UEA/UCR format), classes ``a`` and ``b``."""
    rng = np.random.default_rng(2)
    for split, n in (("TRAIN", 40), ("TEST", 16)):
        lines = ["@problemName Toy", "@timeStamps false", "@missing false", "@univariate true",
                 "@equalLength true", f"@seriesLength {t}", "@classLabel true a b", "@data"]
        for i in range(n):
            label = i % 2
            values = signal(label, t, 1, 10.0, rng)[:, 0]
            lines.append(",".join(f"{v:.5f}" for v in values) + f":{'ab'[label]}")
        (folder / f"Toy_{split}.ts").write_text("\n".join(lines) + "\n")
    return folder / "Toy_TRAIN.ts"


# ---- end to end ------------------------------------------------------------------------------------
CASES = {
    "acc_table_20hz": dict(extra={"window_s": 2.0, "test_subjects": "4"}, classes=2, channels=3, length=40),
    "acc_gyro_npz": dict(extra={}, classes=4, channels=6, length=48),
    "one_channel_ts": dict(extra={"rate": 10.0}, classes=2, channels=1, length=32),
    "twelve_long_classes": dict(extra={"mode": "flatten"}, classes=12, channels=2, length=16),
}


def make_case(case: str, folder: Path) -> Path:
    if case == "acc_table_20hz":
        return acc_table(folder / "acc.csv")
    if case == "acc_gyro_npz":
        return window_npz(folder / "w.npz", ["lie", "sit", "stand", "walk"], 6, 48, 24, ACC_GYRO)
    if case == "one_channel_ts":
        return ts_pair(folder)
    return window_npz(folder / "long.npz", LONG_NAMES, 2, 16, 8, ["left", "right"])


@pytest.mark.filterwarnings("error:constrained_layout not applied")  # a plot squeezed by long class names
@pytest.mark.parametrize("case", list(CASES))
def test_train_evaluate_report_export(tmp_path: Path, case: str):
    from harvit.deploy.export import export_onnx
    from harvit.evaluation.evaluate import evaluate_checkpoint
    from harvit.models.loading import load_trained
    from harvit.reporting.report import create_training_report
    from harvit.training import train

    spec = CASES[case]
    path = make_case(case, tmp_path)
    cfg = tiny_config(tmp_path / "runs", dataset=str(path), epochs=1, **spec["extra"]).validate()
    results = train(cfg)
    run = cfg.run_dir
    assert len(results.classes) == spec["classes"]
    y_true, y_pred = np.asarray(results.test_y_true), np.asarray(results.test_y_pred)
    assert len(y_true) == len(y_pred) == results.test_windows > 0 and set(y_pred) <= set(range(spec["classes"]))
    assert results.test["accuracy"] == pytest.approx(float(np.mean(y_true == y_pred)))
    saved = json.loads((run / "training_results.json").read_text())
    assert isinstance(saved["dataset_notes"], list)

    ev = evaluate_checkpoint(str(run), split="test", device="cpu")
    assert ev["accuracy"] == pytest.approx(results.test["accuracy"])

    report = create_training_report(run).read_text()
    assert "## Test results" in report
    if case == "one_channel_ts":  # its own test split, but no subjects: validation is split by window
        assert "**The data name no subjects**" in report
    for name in ("confusion_matrix", "per_class_accuracy"):
        pngs = list((run / "plots").glob(f"{name}*.png"))
        assert pngs and all(is_png(p) for p in pngs), name

    trained = load_trained(run, "cpu")
    assert len(trained.channels) == spec["channels"] and trained.window_length == spec["length"]
    pytest.importorskip("onnxruntime")
    info = export_onnx(trained, tmp_path / "m.onnx", "window")
    assert info["verified"]["max_abs_diff"] < 1e-3
    assert info["preprocessing"]["window"] == spec["length"] and "own_data" in info["preprocessing"]


def test_notes_reach_the_report(tmp_path: Path):
    from harvit.reporting.report import create_training_report
    from harvit.training import train

    path = window_npz(tmp_path / "nosub.npz", ["a", "b"], 3, 24, 30, ACC, subjects=1)
    data = dict(np.load(path))
    del data["subject"]
    np.savez(path, **data)
    cfg = tiny_config(tmp_path / "runs", dataset=str(path), epochs=1).validate()
    results = train(cfg)
    assert any("no subjects" in n for n in results.dataset_notes)
    report = create_training_report(cfg.run_dir, baseline=False).read_text()
    assert "> **Note:** the data name no subjects" in report
    assert "No subject is in two splits" not in report


# ---- pieces -----------------------------------------------------------------------------------------
def test_views_on_loose_channels():
    loose = ["acc_x", "acc_y", "acc_z", "heart_rate"]
    assert view_groups(loose, "flatten") == [[0], [1], [2], [3]]
    assert view_groups(loose, "stack") == [[0, 1, 2, 3]]
    with pytest.raises(HarvitError, match=r"--mode sensor: channels heart_rate are not part of an x/y/z triple"):
        view_groups(loose, "sensor")
    with pytest.raises(HarvitError, match=r"acc_\{x,y\}"):
        view_groups(["acc_x", "acc_y"], "sensor")
    assert view_groups(ACC_GYRO, "sensor") == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("channels", [["ecg"], ACC, ACC_GYRO, [f"c{k}" for k in range(64)],
                                      ["total_acc_x", "total_acc_y", "total_acc_z", "gyro_x"]])
@pytest.mark.parametrize("t", [16, 40])
def test_window_statistics_any_channels(channels: list[str], t: int):
    x = torch.randn(3, len(channels), t, dtype=torch.float64)
    stats = window_statistics(x, channels)
    assert stats.shape == (3, n_statistics(channels, t)) and torch.isfinite(stats).all()
    has_total = any(c.startswith("total") for c in channels)
    triples = 1 if channels == ACC else 2 if channels == ACC_GYRO else int(has_total)
    assert stats.shape[1] == 24 * (len(channels) + triples) + 3 * triples + 3 * int(has_total)


@pytest.mark.parametrize("t", [16, 17, 40, 500])
@pytest.mark.parametrize("enc", ["gasf", "gadf", "mtf", "rp", "spec"])
def test_encodings_any_length(enc: str, t: int):
    x = torch.rand(2, 3, t)
    img = encode(x, [enc], 24)
    assert img.shape == (2, 3, 24, 24) and torch.isfinite(img).all()


def test_augment_without_triples_and_lying_needs_total():
    x = torch.randn(4, 2, 20)
    out = augment_batch(x, [], torch.Generator().manual_seed(0))  # no triple: no rotation, the rest applies
    assert out.shape == x.shape and not torch.equal(out, x)
    with pytest.raises(HarvitError, match="lying"):
        augment_batch(torch.randn(4, 3, 20), [(0, 1, 2)], None, axis="lying", gravity=None)


def test_lying_axis_needs_total_triple_at_build(tmp_path: Path):
    from harvit.training.run import build_run

    path = acc_table(tmp_path / "acc.csv")
    cfg = tiny_config(tmp_path / "runs", dataset=str(path), augment=True, augment_axis="lying",
                      window_s=2.0).validate()
    with pytest.raises(HarvitError, match=r"--augment-axis lying: .*total"):
        build_run(cfg)


def test_cpu_preset_train_stride_on_tables(tmp_path: Path):
    from harvit.data import OwnOptions, load_dataset

    path = acc_table(tmp_path / "acc.csv")
    cfg, _ = resolve({"preset": "cpu", "dataset": str(path), "window_s": 2.0}, False, windowing)
    ds = load_dataset(cfg.dataset, train_stride=cfg.train_stride_or_none, options=OwnOptions.from_settings(
        cfg.to_dict()))
    # 40-sample windows at 20 Hz: the preset's denser training windows are a quarter window apart
    assert ds.train.meta["stride"] == 10 and ds.test.meta["stride"] == 20
    assert (cfg.train_overlap, cfg.train_stride) == (0.75, 0)
    explicit, _ = resolve({"preset": "cpu", "dataset": str(path), "train_stride": 5}, False, windowing)
    assert (explicit.train_overlap, explicit.train_stride) == (0.0, 5)  # a given stride is kept, in samples
    builtin, _ = resolve({"preset": "cpu", "dataset": "hapt6"}, False, windowing)
    assert (builtin.train_overlap, builtin.train_stride) == (0.0, 32)
    with pytest.raises(HarvitError, match="--train-stride 5 and --train-overlap 0.5: expected one of them"):
        load_dataset(str(path), train_stride=5, options=OwnOptions(window_s=2.0, train_overlap=0.5))


@pytest.mark.parametrize("k", [2, 12, 100])
def test_plots_readable_for_many_long_classes(tmp_path: Path, k: int):
    import matplotlib.image as mpimg

    from harvit.reporting.plots import plot_confusion_matrices, plot_per_class_accuracy
    from harvit.utils.figures import short_labels

    classes = [f"activity number {i:03d} with a rather long descriptive name" for i in range(k)]
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 20, (k, k)) + np.diag(rng.integers(50, 100, k))
    labels = short_labels(classes)
    assert len(set(labels)) == k and max(len(s) for s in labels) <= 22
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. matplotlib's "constrained_layout not applied"
        a = plot_confusion_matrices(cm, classes, tmp_path / "cm.png")
        b = plot_per_class_accuracy({c: float(rng.uniform()) for c in classes}, tmp_path / "pc.png",
                                    reference={"LR": {c: 0.5 for c in classes}})
    for path in (a, b):
        assert is_png(path)
        h, w = mpimg.imread(str(path)).shape[:2]
        assert max(h, w) <= 4500, (path.name, h, w)  # bounded, whatever k is



# ---- harvit predict --table ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A TINY run trained on the 20 Hz accelerometer table with --lowpass 5 --gravity-split acc; (run, table)."""
    from harvit.training import train

    folder = tmp_path_factory.mktemp("table_run")
    path = acc_table(folder / "acc.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARVIT_CACHE_DIR", str(folder / "cache"))
        cfg = tiny_config(folder / "runs", dataset=str(path), epochs=1, window_s=2.0, test_subjects="4",
                          lowpass=5.0, gravity_split="acc").validate()
        train(cfg)
    return cfg.run_dir, path


def test_predict_table_csv_and_timeline(table_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from harvit.cli import main

    run, path = table_run
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--table", str(path), "--out", str(out), "--device", "cpu",
                 "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "agreement with the table's labels" in text and "timeline:" in text
    frame = pd.read_csv(out)
    assert list(frame.columns[:7]) == ["piece", "subject", "start_s", "end_s", "activity", "confidence",
                                       "true_label"]
    # 4 subjects x 800 samples, 40-sample windows, stride 20 (--overlap 0.5), over every sample
    assert len(frame) == 4 * ((800 - 40) // 20 + 1)
    assert set(frame["activity"]) <= {"still", "walk"} and set(frame["true_label"]) == {"still", "walk"}
    np.testing.assert_allclose(frame["end_s"] - frame["start_s"], 2.0)
    assert is_png(tmp_path / "pred_timeline.png")


def test_predict_table_without_labels_streams_in_chunks(table_run, tmp_path: Path):
    from harvit.deploy.table import predict_table
    from harvit.deploy.timeline import plot_timeline
    from harvit.models.loading import load_trained

    run, path = table_run
    frame = pd.read_csv(path)
    frame = frame[frame["subject"] == 2].drop(columns=["activity", "subject"])
    frame["time"] = (frame["time"] * 1000).round().astype(np.int64)  # milliseconds, detected
    unlabelled = tmp_path / "day.parquet"
    frame.to_parquet(unlabelled)
    trained = load_trained(run, "cpu")
    whole = predict_table(trained, unlabelled)
    chunked = predict_table(trained, unlabelled, chunk_windows=7)
    assert whole.true is None and len(whole) == (800 - 40) // 20 + 1
    np.testing.assert_allclose(chunked.probs, whole.probs, atol=1e-4)  # margins hide the chunk edges
    np.testing.assert_array_equal(chunked.start_s, whole.start_s)
    assert is_png(plot_timeline(whole, tmp_path / "t.png"))


def test_predict_table_refuses_other_columns_and_runs(table_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from harvit.cli import main

    run, path = table_run
    frame = pd.read_csv(path).rename(columns={"acc_z": "accel_z"})
    other = tmp_path / "other.csv"
    frame.to_csv(other, index=False)
    assert main(["predict", str(run), "--table", str(other), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the model was trained on" in err[0]
    assert main(["predict", str(run), "--table", str(path), "--acc", "a.txt"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["predict", str(run)]) == 2
    assert "expected --table" in capsys.readouterr().err


def test_baseline_cli_takes_own_data_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from harvit.cli import main

    path = acc_table(tmp_path / "acc.csv")
    out = tmp_path / "b.json"
    assert main(["baseline", "--dataset", str(path), "--window-s", "2", "--gravity-split", "acc",
                 "--test-subjects", "4", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    # 3 body + 3 total channels, 2 triples, 1 of them total: 24 * (6 + 2) + 3 * 2 + 3
    assert result["n_features"] == 201 and result["split"]["test"]["subjects"] == [4]
    assert main(["baseline", "--dataset", str(path), "--window-s", "2", "--mode", "flatten"]) == 2


def test_predict_table_needs_a_run_trained_on_a_table(tmp_path: Path):
    from harvit.deploy.table import table_options
    from harvit.models.loading import TrainedModel

    def fake(dataset: str) -> TrainedModel:  # table_options reads the config and the path only
        return TrainedModel(None, tiny_config(tmp_path, dataset=dataset), [], [], 50.0, 128, {},  # type: ignore[arg-type]
                            tmp_path / "best.pt")

    with pytest.raises(HarvitError, match="trained on hapt6, not on a table; predict on its recordings with --acc"):
        table_options(fake("hapt6"))
    npz = window_npz(tmp_path / "w.npz", ["a", "b"], 3, 16, 4, ACC)
    with pytest.raises(HarvitError, match=r"ready windows \(w\.npz\)"):
        table_options(fake(str(npz)))
    assert table_options(fake(str(acc_table(tmp_path / "a.csv")))).window_s == 2.56
