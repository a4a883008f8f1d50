"""Plots are valid PNGs; the report names every class, links its plots and states the baseline comparison."""

import dataclasses
import json
import re

import numpy as np
import pytest
from helpers_runs import CLASSES, is_png, synthetic_dataset, train_tiny_run
from sklearn.metrics import classification_report

import harvit.data
from harvit.cli import main
from harvit.config import Config
from harvit.models.loading import load_trained
from harvit.reporting import plots as viz
from harvit.reporting.report import create_training_report, verdict
from harvit.training.results import TrainingResults, saved_config
from harvit.utils.errors import HarvitError


@pytest.fixture(scope="module", autouse=True)
def toy_baselines(tmp_path_factory):
    """aeon's baselines at toy sizes (full sizes take minutes) and a baseline cache of this module's own."""
    import harvit.evaluation.series_models as sm

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARVIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        for name, value in (("MINIROCKET_FEATURES", 168), ("MULTIROCKET_KERNELS", 84), ("HYDRA_GROUPS", 4),
                            ("QUANT_TREES", 20)):
            mp.setattr(sm, name, value)
        yield


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    ds = synthetic_dataset()
    run = train_tiny_run(tmp_path_factory.mktemp("runs"), dataset=ds, epochs=3)
    return run, ds


@pytest.fixture(scope="module")
def report(tiny_run):
    run, ds = tiny_run
    return create_training_report(run, dataset=ds)


def test_history_and_lr_plots(tiny_run, tmp_path):
    run, _ = tiny_run
    assert is_png(viz.plot_training_history(run))  # default: <run>/plots/
    assert (run / "plots" / "training_history.png").is_file()
    assert is_png(viz.plot_training_history(run / "training_results.json", tmp_path / "h.png"))
    assert is_png(viz.plot_lr_schedule(run / "metrics.jsonl", tmp_path / "lr.png"))
    with pytest.raises(HarvitError, match="metrics.jsonl"):
        viz.plot_training_history(tmp_path)


def test_lr_curve_matches_recorded_lr(tiny_run):
    run, _ = tiny_run
    records, _ = viz.load_history(run)
    config = Config.load(run / "config.json")
    spe = viz.steps_per_epoch(run, records, config)
    assert spe == -(-160 // config.batch_size)  # 160 training windows, one view each
    x, lr = viz.schedule_curve(config, spe)
    for r in records:
        assert lr[r["epoch"] * spe] == pytest.approx(r["lr"], rel=1e-6)


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_matrix_plot(tmp_path, normalize):
    y_true = np.array([0, 0, 1, 1, 2, 3, 3, 3])
    y_pred = np.array([0, 1, 1, 1, 2, 3, 0, 3])
    assert is_png(viz.plot_confusion_matrix(y_true, y_pred, CLASSES, tmp_path / "cm.png", normalize=normalize))


def test_confusion_pair_and_per_class_plots(tmp_path):
    cm = [[5, 1, 0, 0], [0, 6, 0, 0], [0, 0, 4, 2], [0, 0, 0, 0]]  # an empty row must not break
    assert is_png(viz.plot_confusion_matrices(cm, CLASSES, tmp_path / "both.png"))
    acc = dict(zip(CLASSES, [0.9, 1.0, 0.5, 0.0], strict=True))
    assert is_png(viz.plot_per_class_accuracy(acc, tmp_path / "pc.png"))
    assert is_png(viz.plot_per_class_accuracy(acc, tmp_path / "pc2.png", {"baseline": acc}))
    with pytest.raises(HarvitError, match="shape"):
        viz.plot_confusion_matrices([[1, 2]], CLASSES, tmp_path / "bad.png")


@pytest.mark.parametrize("mode,encodings", [("stack", "gasf"), ("sensor", "gasf,mtf")])
def test_encoded_images_grid(tiny_run, tmp_path, mode, encodings):
    run, ds = tiny_run
    tm = load_trained(run, "cpu")
    if mode == "stack":
        imager = tm.model
        n_cols = 9
    else:
        from harvit.imaging.imager import SignalImager

        imager = SignalImager(tm.channels, mode, encodings.split(","), 16, tm.model.imager.scaler)
        n_cols = 3 * 3 * 2
    assert len(viz.channel_titles(getattr(imager, "imager", imager))) == n_cols
    assert is_png(viz.plot_encoded_images(imager, ds.test, tmp_path / "enc.png", per_class=2))


def test_classification_report_is_sklearns():
    y_true, y_pred = [0, 1, 2, 2, 1], [0, 2, 2, 2, 1]
    text = viz.generate_classification_report(y_true, y_pred, ["a", "b", "c"])
    assert text == classification_report(y_true, y_pred, target_names=["a", "b", "c"], digits=4, zero_division=0)
    assert "macro avg" in viz.generate_classification_report(y_true, y_pred)


def test_report_plots_are_valid_pngs(tiny_run, report):
    run, _ = tiny_run
    names = {p.name for p in (run / "plots").iterdir()}
    assert {"training_history.png", "lr_schedule.png", "confusion_matrix.png", "per_class_accuracy.png",
            "encoded_images.png"} <= names
    for p in (run / "plots").glob("*.png"):
        assert is_png(p), p


def test_report_content(tiny_run, report):
    run, _ = tiny_run
    assert report == run / "report.md"
    text = report.read_text()
    for c in CLASSES:
        assert text.count(c) >= 3, c  # split table, per-class table, confusion matrix
    assert re.search(r"\*\*Harvit's model \(image encoder( \+ window statistics)?\) (is ahead of|is behind|and) "
                     r"the strongest baseline, [^(]+ \(the best validation", text)
    assert "test balanced accuracy" in text
    assert "McNemar's exact test on the same 80 test windows" in text and "95% CI" in text
    assert " beat" not in text
    assert "## Per-subject results (test)" in text and "mean of subjects" in text
    assert (run / "plots" / "per_subject_accuracy.png").is_file()
    assert "logistic-regression" in text and "gradient-boosted trees" in text
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert not link.startswith("/") and (run / link).is_file(), link
    assert "| true \\ predicted |" in text
    results = json.loads((run / "training_results.json").read_text())
    for s in results["split"]["val"]["subjects"] + results["split"]["test"]["subjects"]:
        assert str(s) in text
    assert f"{100 * results['test_accuracy']:.1f}%" in text


def test_baseline_is_cached(tiny_run, report):
    run, ds = tiny_run
    cached = json.loads((run / "baseline.json").read_text())
    assert cached["seed"] == 42 and cached["val_fraction"] == 0.2
    stamp = (run / "baseline.json").stat().st_mtime_ns
    create_training_report(run, out="again.md", dataset=ds)
    assert (run / "baseline.json").stat().st_mtime_ns == stamp
    assert "cached in `baseline.json`" in (run / "again.md").read_text()


def _verdict_inputs(vit_right: int, logreg_right: int, gbt_right: int, n: int = 3000):
    """A run's results and a baseline whose per-window predictions get the first k windows right;
    logistic regression is the best on validation."""
    y = [0] * n

    def preds(k: int) -> list[int]:
        return [0] * k + [1] * (n - k)

    results = TrainingResults.from_json({"test_accuracy": vit_right / n, "split": {"test": {"windows": n}},
                                         "test_y_true": y, "test_y_pred": preds(vit_right),
                                         "config": {"images": True, "window_stats": True, "rocket_features": 9996}})
    base = {"best": "logreg", "test_y_true": y, "models": {
        "logreg": {"name": "logistic-regression", "test_accuracy": logreg_right / n, "test_pred": preds(logreg_right),
                   "val_accuracy": 0.95},
        "gbt": {"name": "gradient-boosted trees", "test_accuracy": gbt_right / n, "test_pred": preds(gbt_right),
                "val_accuracy": 0.94}}}
    return results, base


def test_verdict_wording():
    # a 0.1-point lead (3 windows of 3000) is level, not a win
    results, base = _verdict_inputs(2877, 2874, 2850)
    text = verdict(results, base)
    assert text.startswith("**Harvit's model (image encoder + window statistics + convolution features) and the "
                           "strongest baseline, logistic-regression (the best validation accuracy of 2 baselines, "
                           "95.0%) are level within noise: 95.9% (95% CI 95.1-96.6%) against 95.8% (95% CI "
                           "95.0-96.5%), a difference of 0.1 points")
    assert ("McNemar's exact test on the same 3000 test windows: p = 0.250; harvit's model alone right on 3"
            in text)
    assert "beat" not in text and "ViT" not in text
    assert "Against gradient-boosted trees, 95.0% (95% CI 94.2-95.7%), harvit's model is ahead (" in text
    results, base = _verdict_inputs(2793, 2856, 2850)
    assert verdict(results, base).startswith("**Harvit's model (image encoder + window statistics + convolution "
                                             "features) is behind the strongest baseline, logistic-regression")
    results, base = _verdict_inputs(2910, 2856, 2850)
    assert " is ahead of the strongest baseline, logistic-regression " in verdict(results, base)
    # the strongest is chosen on validation, not test: boosted trees lead on test here but not on validation
    results, base = _verdict_inputs(2910, 2800, 2900)
    assert "the strongest baseline, logistic-regression" in verdict(results, base)
    base["models"]["gbt"]["val_accuracy"] = 0.96
    assert "the strongest baseline, gradient-boosted trees" in verdict(results, base)
    # only the branches the run has
    results.config = Config(images=False, window_stats=True, rocket_features=0)
    assert verdict(results, base).startswith("**Harvit's model (window statistics) is ")
    # without per-window predictions (an older run): the intervals alone, and it says so
    results, base = _verdict_inputs(2877, 2874, 2850)
    results.test_y_pred = None
    text = verdict(results, base)
    assert "are level within noise" in text and "intervals only" in text


def _ablation_pair(tmp_path, without_images_right: int, n: int = 400):
    """Two sibling run folders of the same data and split: ``full`` (all branches, 390 of n right) and
    ``noimg`` (no images, ``without_images_right`` of n right)."""
    import json as _json

    y = [0] * n
    same = {"dataset": "hapt6", "seed": 42, "split_seed": None, "val_fraction": 0.2, "val_subjects": None,
            "train_stride": 32, "window_stats": True, "rocket_features": 9996}
    out = {}
    for name, images, right in (("full", True, 390), ("noimg", False, without_images_right)):
        d = tmp_path / name
        d.mkdir()
        res = {"config": {**same, "images": images}, "test_y_true": y, "test_y_pred": [0] * right + [1] * (n - right),
               "test_accuracy": right / n}
        (d / "training_results.json").write_text(_json.dumps(res))
        out[name] = (d, TrainingResults.from_json(res))
    return out


def test_ablation_says_which_branch_carried_the_result(tmp_path):
    from harvit.reporting.verdict import ablation_sentence

    runs = _ablation_pair(tmp_path, 389)
    run, res = runs["full"]
    text = ablation_sentence(run, res)
    assert text.startswith("Ablation: run `noimg` (same data, split and seed, without the image encoder) scores 97.2%")
    assert "the image encoder adds nothing measurable here; the window statistics + convolution features carry" in text


def test_ablation_names_a_branch_that_carries_part_of_it(tmp_path):
    from harvit.reporting.verdict import ablation_sentence

    runs = _ablation_pair(tmp_path, 340)
    run, res = runs["full"]
    assert "the image encoder carries part of the result" in ablation_sentence(run, res)
    # a sibling with other test windows, another split or more branches is no ablation
    res_other = dataclasses.replace(res, config=dataclasses.replace(res.config, seed=7))
    assert ablation_sentence(run, res_other) is None
    nrun, nres = runs["noimg"]
    assert ablation_sentence(nrun, nres) is None


def test_report_without_baselines_says_so(tiny_run, tmp_path):
    import shutil

    run, ds = tiny_run
    copy = tmp_path / "nob"
    shutil.copytree(run, copy)
    (copy / "baseline.json").unlink()
    text = create_training_report(copy, dataset=ds, baseline=False).read_text()
    assert "No baseline comparison: the baseline is turned off (--no-baselines)" in text
    assert not (copy / "baseline.json").exists()


def test_report_cli_and_unfinished_run(tiny_run, monkeypatch, capsys, tmp_path):
    run, ds = tiny_run
    monkeypatch.setattr(harvit.data.registry, "load_dataset", lambda *a, **k: ds)
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip().endswith("report.md")
    (tmp_path / "half").mkdir()
    assert main(["report", str(tmp_path / "half")]) == 2
    assert "training_results.json" in capsys.readouterr().err


def test_report_without_data_still_writes(tiny_run, monkeypatch, tmp_path):
    import shutil

    run, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "baseline.json").unlink()

    def no_data(*a, **k):
        raise HarvitError("no data here")

    monkeypatch.setattr(harvit.data.registry, "load_dataset", no_data)
    text = create_training_report(copy).read_text()
    assert "No baseline comparison" in text and "no data here" in text


def test_report_names_the_augmentation_that_ran():
    from harvit.reporting.sections import augmentation as _augmentation

    assert _augmentation(Config(augment=False)) == "off"
    line = _augmentation(Config(augment=True, augment_axis="lying", augment_rotation=180.0, augment_shift=0.0))
    assert "+-180 deg about x for lying windows" in line and "shift up to 0 of" in line
    assert "random axis" in _augmentation(saved_config({"augment": True}))  # an older run's config: the defaults
