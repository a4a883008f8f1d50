"""The real-data benchmark's summaries and table (benchmarks/real_datasets.py) on made-up result dicts.

The benchmark itself trains for hours; these check, in milliseconds, the part that turns a run's
``training_results.json`` and ``baseline.json`` into a row: the strongest baseline (by validation, else
test), scores from per-window predictions, McNemar's verdict, and "-" for whatever a result lacks.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "real_datasets.py"


@pytest.fixture(scope="module")
def rd() -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_datasets", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["real_datasets"] = module
    spec.loader.exec_module(module)
    return module


# 40 test windows of 2 classes, 30 of class 0 and 10 of class 1.
Y = [0] * 30 + [1] * 10
HARVIT = [0] * 30 + [1] * 10  # all right
WEAK = [0] * 30 + [0] * 10  # every class-1 window wrong: accuracy 0.75, balanced accuracy 0.5


def results(pred: list[int] = HARVIT, **extra) -> dict:
    return {"test_accuracy": 0.0, "test_macro_f1": 0.0, "test_y_true": Y, "test_y_pred": pred,
            "split": {"train": {"windows": 100}, "val": {"windows": 20}, "test": {"windows": 40}},
            "dataset_notes": [], **extra}


def baseline(models: dict) -> dict:
    return {"test_y_true": Y, "models": models, "best": next(iter(models))}


def model(name: str, val: float | None, test: float, pred: list[int] | None) -> dict:
    m = {"name": name, "test_accuracy": test, "test_macro_f1": test, "test_pred": pred}
    if val is not None:
        m["val_accuracy"] = val
    return m


def test_strongest_is_chosen_by_validation_and_tolerates_new_model_keys(rd: ModuleType) -> None:
    b = baseline({"logreg": model("logistic-regression", 0.80, 0.99, WEAK),
                  "quant": model("QUANT", 0.95, 0.90, WEAK),  # a model this script has never heard of
                  "multirocket_hydra": model("MultiRocket-Hydra", 0.90, 0.95, WEAK)})
    assert rd.strongest(b) == ("quant", "validation")  # not logreg, the best on test


def test_strongest_falls_back_to_test_without_validation(rd: ModuleType) -> None:
    b = baseline({"logreg": model("logistic-regression", 0.80, 0.70, WEAK), "quant": model("QUANT", None, 0.90, WEAK)})
    assert rd.strongest(b) == ("quant", "test")
    assert rd.strongest(None) == (None, "")
    assert rd.strongest({"models": {}}) == (None, "")


def test_row_scores_from_predictions_and_mcnemar_against_the_strongest(rd: ModuleType) -> None:
    spec = rd.SPECS[0]
    b = baseline({"minirocket": model("MiniRocket", 0.9, 0.75, WEAK)})
    row = rd.summarize(spec, {"results": results(), "baseline": b, "ablation": results(WEAK), "flags": []})
    assert row["harvit"] == {"accuracy": 1.0, "macro_f1": 1.0, "balanced_accuracy": 1.0}
    assert row["baseline"]["name"] == "MiniRocket" and row["baseline"]["chosen_by"] == "validation"
    assert row["baseline"]["accuracy"] == pytest.approx(0.75)
    assert row["baseline"]["balanced_accuracy"] == pytest.approx(0.5)  # computed: the stored keys lack it
    # harvit alone right on the 10 class-1 windows, the baseline alone right on none: p = 2 / 2**10
    assert row["paired"]["b"] == 10 and row["paired"]["c"] == 0
    assert row["paired"]["p_value"] == pytest.approx(2 / 1024)
    assert row["paired"]["verdict"] == "ahead"
    assert row["images_paired"]["verdict"] == "ahead"
    assert row["windows"] == {"train": 100, "val": 20, "test": 40}
    text = rd.table([row])
    assert "| 100.0 | 100.0 | 100.0 | MiniRocket (validation) | 75.0 | " in text
    assert "ahead (p=0.002, 10/0)" in text
    assert "| mean of 1 |" in text


def test_missing_fields_print_a_dash_and_failures_keep_their_row(rd: ModuleType) -> None:
    spec = rd.SPECS[0]
    old = results(pred=None, test_accuracy=0.9, test_macro_f1=0.8)  # a run that kept no predictions
    old.pop("test_y_true")
    old.pop("split")
    b = {"models": {"gbt": {"name": "boosted-trees", "test_accuracy": 0.85, "test_macro_f1": 0.7}}}
    row = rd.summarize(spec, {"results": old, "baseline": b, "ablation": None,
                              "errors": {"ablation": "--no-images: unknown flag"}})
    assert row["harvit"] == {"accuracy": 0.9, "macro_f1": 0.8, "balanced_accuracy": None}
    assert row["baseline"]["chosen_by"] == "test" and row["paired"] is None
    failed = rd.summarize(rd.SPECS[-1], {"results": None, "errors": {"train": "time goes backwards"}})
    absent = rd.summarize(rd.SPECS[-2], {"note": "not at hand: no --extra DIR"})
    text = rd.table([row, failed, absent])
    lines = text.splitlines()
    assert lines[2].startswith("| hapt6 | -/-/- |") and "| 90.0 | 80.0 | - | boosted-trees (test) | 85.0 | 70.0 | - |" \
        in lines[2]
    assert "fails: --no-images: unknown flag" in lines[2]
    assert "fails: train: time goes backwards" in lines[3]
    assert "not at hand: no --extra DIR" in lines[4] and "fails" not in lines[4]
    assert all(line.count("|") == lines[0].count("|") for line in lines[:5])  # every row has every column


def test_each_extra_data_set_states_why_it_needs_each_flag(rd: ModuleType) -> None:
    for spec in rd.SPECS:
        assert spec.windowing and spec.source
        for flag, _, why in spec.flags + spec.optional:
            assert flag.startswith("--") and len(why) > 10
    wisdm = next(s for s in rd.SPECS if s.name.startswith("wisdm")).flags  # issue 19: it loads with no flag;
    assert {flag for flag, _, _ in wisdm} <= {"--window-s", "--overlap"}  # the benchmark only chooses its windows
