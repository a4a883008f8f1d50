"""TrainingResults: the typed training_results.json; flat keys kept, older files read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harvit.config import Config
from harvit.training.results import RefitPhase, SplitCounts, TrainingResults, saved_config
from harvit.utils.errors import HarvitError


def sample() -> TrainingResults:
    return TrainingResults(
        test={"accuracy": 0.75, "macro_f1": 0.7, "balanced_accuracy": 0.72},
        best_val={"accuracy": 0.8, "macro_f1": 0.78, "balanced_accuracy": None},
        best_val_acc=0.8, best_epoch=3, epochs_run=5, test_loss=0.61, classes=["sit", "walk"],
        confusion_matrix=[[2, 1], [0, 1]], refit=RefitPhase(windows=40, epochs=3, steps_per_epoch=2),
        split={"train": SplitCounts(30, [1, 2], [15, 15]), "val": SplitCounts(10, [3], [5, 5]),
               "test": SplitCounts(4, [4], [3, 1])},
        events=["out of memory: retrying"], config=Config(seed=7, lr=1e-3),
        test_y_true=[0, 0, 0, 1], test_y_pred=[0, 0, 1, 1])


def test_json_is_flat_and_round_trips(tmp_path: Path) -> None:
    res = sample()
    res.save(tmp_path / "training_results.json")
    raw = json.loads((tmp_path / "training_results.json").read_text())
    # the file keeps the keys older readers (examples, scripts) use
    assert raw["test_accuracy"] == 0.75 and raw["best_val_macro_f1"] == 0.78 and raw["best_val_acc"] == 0.8
    assert raw["refit"] == {"windows": 40, "epochs": 3, "steps_per_epoch": 2}
    assert raw["split"]["test"] == {"windows": 4, "subjects": [4], "class_counts": [3, 1]}
    assert raw["config"]["seed"] == 7 and "test" not in raw and "best_val" not in raw
    assert TrainingResults.load(tmp_path / "training_results.json") == res


def test_an_older_file_reads_back_with_defaults_and_computed_metrics() -> None:
    # written before balanced accuracy was registered, without refit, events or a setting that exists now,
    # and with one this version no longer has
    old = {"test_accuracy": 0.5, "best_val_acc": 0.6, "best_epoch": 2, "classes": ["a", "b"],
           "test_y_true": [0, 0, 1, 1], "test_y_pred": [0, 1, 1, 1],
           "config": {"seed": 3, "val_subjects": None, "a_retired_setting": 1}, "an_unknown_key": True}
    res = TrainingResults.from_json(old)
    assert res.refit is None and res.events == [] and res.split == {} and res.config.seed == 3
    assert res.config.val_subjects == Config().val_subjects and res.config.lr == Config().lr
    assert res.metric("accuracy") == 0.5
    assert res.metric("balanced_accuracy") == pytest.approx((0.5 + 1.0) / 2)  # from the per-window predictions
    assert res.metric("macro_f1", "val") is None  # validation kept no predictions
    assert res.test_windows == 4


@pytest.mark.parametrize(("bad", "words"), [
    ([1, 2], "expected a JSON object"),
    ({"refit": {"windows": 1}}, "steps_per_epoch"),
    ({"split": {"test": {"rows": 3}}}, "rows"),
    ({"config": {"seed": "seven"}}, "setting seed"),
])
def test_a_malformed_file_is_one_clear_error(bad: object, words: str) -> None:
    with pytest.raises(HarvitError, match=words):
        TrainingResults.from_json(bad)  # type: ignore[arg-type]


def test_unreadable_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "training_results.json"
    path.write_text("{not json")
    with pytest.raises(HarvitError, match="not readable JSON"):
        TrainingResults.load(path)
    with pytest.raises(HarvitError, match="not found"):
        TrainingResults.load(tmp_path / "missing.json")


def test_saved_config_refuses_a_wrong_type_but_not_an_old_key() -> None:
    assert saved_config({"epochs": 4, "gone": "x"}).epochs == 4
    with pytest.raises(HarvitError, match="epochs"):
        saved_config({"epochs": "four"})
