"""--baseline-set (issue 20): the cost tiers of the registered baselines, what auto fits, and the report
saying which baselines were fitted, which were left out and the command that adds them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_runs import synthetic_dataset, train_tiny_run

import harvit.data
import harvit.evaluation.baseline as bl
from harvit.cli import main
from harvit.evaluation.baseline import choose_baselines, run_baseline
from harvit.evaluation.baseline_registry import BASELINES
from harvit.reporting.report import create_training_report
from harvit.utils.errors import HarvitError


@pytest.fixture(autouse=True)
def no_aeon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test here: a fresh baseline cache, and the scikit-learn baselines only (seconds)."""
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(bl, "load_aeon", lambda: None)


def test_every_baseline_has_a_tier_and_auto_follows_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = [k for k in BASELINES if BASELINES.get(k).tier == "fast"]
    assert {"logreg", "minirocket"} <= set(fast) and "gbt" not in fast and "quant" not in fast
    assert choose_baselines("all", 10**9)[0] == choose_baselines("auto", 1000)[0] and not choose_baselines("all", 1)[1]
    keys, left = choose_baselines("auto", bl.AUTO_ALL_MAX_SAMPLES + 1)
    assert set(keys) == set(fast) and set(left) == set(BASELINES.names()) - set(fast)
    assert "full tier" in left["gbt"] and "training samples" in left["gbt"]
    assert choose_baselines("auto", bl.AUTO_ALL_MAX_SAMPLES)[0] == choose_baselines("all", 0)[0]  # at most: all
    assert set(choose_baselines("fast", 10)[0]) == set(fast)
    with pytest.raises(HarvitError, match="--baseline-set: got 'most'"):
        choose_baselines("most", 10)


def test_auto_counts_the_training_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = synthetic_dataset(120, 40)  # 120 training windows x 9 channels x 128 samples
    monkeypatch.setattr(bl, "AUTO_ALL_MAX_SAMPLES", ds.train.x.size)
    assert set(run_baseline("synthetic", windows=ds, baseline_set="auto", use_cache=False)["models"]) == {
        "logreg", "gbt", "minirocket"}  # MiniRocket is harvit's own transform: no aeon needed
    monkeypatch.setattr(bl, "AUTO_ALL_MAX_SAMPLES", ds.train.x.size - 1)
    res = run_baseline("synthetic", windows=ds, baseline_set="auto", use_cache=False)
    assert set(res["models"]) == {"logreg", "minirocket"} and set(res["left_out"]) == {"gbt", "mrhydra", "quant"}
    assert "--baseline-set all fits them" in bl.format_baseline(res)


def test_the_report_names_what_was_left_out_and_picks_up_a_larger_set(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ds = synthetic_dataset()
    run = train_tiny_run(tmp_path / "runs", dataset=ds, epochs=1)
    monkeypatch.setattr(harvit.data.registry, "load_dataset", lambda *a, **k: ds)  # the run's data set, by its name
    monkeypatch.setattr(bl, "AUTO_ALL_MAX_SAMPLES", 1000)  # the tiny run's windows count as a large set
    text = create_training_report(run).read_text()
    base = json.loads((run / "baseline.json").read_text())
    assert set(base["models"]) == {"logreg", "minirocket"} and base["baseline_set"] == "auto"
    assert "the strongest baseline fitted, MiniRocket (the best validation accuracy of 2 baselines fitted" in text
    assert "gradient-boosted trees, MultiRocket-Hydra, QUANT not fitted" in text
    assert "**Left out:** gradient-boosted trees: full tier" in text
    assert "`harvit baseline --run RUN --baseline-set all` fits them (cached)" in text
    # the larger set, fitted by harvit baseline on the run (written to its baseline.json), then the report
    assert main(["baseline", "--run", str(run), "--baseline-set", "all"]) == 0
    assert f"written: {run / 'baseline.json'}" in capsys.readouterr().out
    assert set(json.loads((run / "baseline.json").read_text())["models"]) == {"logreg", "gbt", "minirocket"}
    text = create_training_report(run).read_text()
    assert "cached in `baseline.json`" in text and "| gradient-boosted trees" in text
    assert "**Left out:**" not in text and "baseline fitted," not in text
    # a smaller set later does not replace it
    assert main(["baseline", "--run", str(run), "--baseline-set", "fast"]) == 0
    assert "kept" in capsys.readouterr().out
    assert set(json.loads((run / "baseline.json").read_text())["models"]) == {"logreg", "gbt", "minirocket"}


def test_run_baseline_reads_a_cached_larger_set() -> None:
    ds = synthetic_dataset(120, 40)
    every = run_baseline("synthetic", windows=ds, baseline_set="all")
    assert not every["cached"]
    fast = run_baseline("synthetic", windows=ds, baseline_set="fast")
    assert fast["cached"] and set(fast["models"]) == {"logreg", "gbt", "minirocket"}  # no aeon here
    assert not set(fast["left_out"]) & set(fast["models"])
    assert fast["models"]["gbt"]["test_pred"] == every["models"]["gbt"]["test_pred"]
