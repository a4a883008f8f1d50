"""Metrics against scikit-learn, evaluate_model / window_loader, and `harvit evaluate` on a tiny run."""

import json

import numpy as np
import pytest
import torch
from helpers_runs import CLASSES, synthetic_dataset, synthetic_windows, train_tiny_run
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import harvit.data
from harvit.cli import main
from harvit.evaluation.evaluate import evaluate_checkpoint, format_evaluation
from harvit.evaluation.inference import evaluate_model, window_loader
from harvit.evaluation.metrics import classification_metrics
from harvit.models.loading import load_trained
from harvit.utils.errors import HarvitError

# Hand-made labels with a known confusion matrix (rows: true, columns: predicted).
KNOWN_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
KNOWN_PRED = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 0, 2]
KNOWN_CM = [[3, 1, 0], [0, 2, 1], [1, 0, 4]]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    ds = synthetic_dataset()
    run = train_tiny_run(tmp_path_factory.mktemp("runs"), dataset=ds)
    return run, ds


def test_metrics_match_known_confusion_and_sklearn():
    m = classification_metrics(np.array(KNOWN_TRUE), np.array(KNOWN_PRED), ["a", "b", "c"])
    assert m["confusion_matrix"] == KNOWN_CM
    assert m["accuracy"] == pytest.approx(9 / 12)
    assert m["macro_f1"] == pytest.approx(f1_score(KNOWN_TRUE, KNOWN_PRED, average="macro"))
    p, r, f, s = precision_recall_fscore_support(KNOWN_TRUE, KNOWN_PRED)
    for i, c in enumerate("abc"):
        assert m["per_class"][c] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
        assert m["per_class_accuracy"][c] == pytest.approx(KNOWN_CM[i][i] / sum(KNOWN_CM[i]))
    assert m["per_class"]["a"]["precision"] == pytest.approx(3 / 4)  # column a: 3 right, 1 from c


def test_metrics_with_an_absent_class():
    m = classification_metrics(np.array([0, 0, 1]), np.array([0, 1, 1]), ["a", "b", "never"])
    assert m["confusion_matrix"] == confusion_matrix([0, 0, 1], [0, 1, 1], labels=[0, 1, 2]).tolist()
    assert m["per_class"]["never"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_window_loader_covers_every_window_in_order_and_is_reusable():
    w = synthetic_windows(70, [1, 2])
    loader = window_loader(w, 32)
    assert len(loader) == 3
    for _ in range(2):
        batches = list(loader)
        assert [b[0].shape[0] for b in batches] == [32, 32, 6]
        assert batches[0][0].shape[1:] == (9, 128) and batches[0][0].dtype == torch.float32
        assert np.array_equal(torch.cat([b[1] for b in batches]).numpy(), w.y)


class MeanRule(nn.Module):
    """Scores [B, 3] = per-window mean of channels 0..2 (a known, parameter-free rule)."""

    def forward(self, x):
        return x[:, :3].mean(-1)


def test_evaluate_model_over_a_dataloader_gives_known_predictions():
    x = torch.zeros(10, 9, 16)
    want = torch.tensor([0, 1, 2, 2, 1, 0, 0, 1, 2, 1])
    x[torch.arange(10), want] = 1.0
    y = torch.tensor([0, 1, 2, 0, 1, 0, 0, 1, 2, 2])
    y_true, y_pred = evaluate_model(MeanRule(), DataLoader(TensorDataset(x, y), batch_size=4))
    assert y_true.dtype == np.int64 and y_pred.dtype == np.int64
    assert y_true.tolist() == y.tolist()
    assert y_pred.tolist() == want.tolist()


def test_evaluate_model_on_tiny_trained_model(tiny_run):
    run, ds = tiny_run
    tm = load_trained(run, "cpu")
    tm.model.train()
    y_true, y_pred = evaluate_model(tm.model, window_loader(ds.test, 16))
    assert tm.model.training  # mode restored
    assert np.array_equal(y_true, ds.test.y)
    saved = json.loads((run / "training_results.json").read_text())
    assert np.mean(y_true == y_pred) == pytest.approx(saved["test_accuracy"], abs=1.5 / len(y_true))
    assert classification_metrics(y_true, y_pred, CLASSES)["confusion_matrix"] == saved["confusion_matrix"]


def test_evaluate_checkpoint_test_and_val(tiny_run, tmp_path):
    run, ds = tiny_run
    res = evaluate_checkpoint(run, dataset=ds, device="cpu")
    saved = json.loads((run / "training_results.json").read_text())
    assert res["accuracy"] == pytest.approx(saved["test_accuracy"])
    assert res["confusion_matrix"] == saved["confusion_matrix"]
    assert res["subjects"] == [2, 4] and res["windows"] == len(ds.test)
    assert json.loads((run / "evaluation_test.json").read_text())["accuracy"] == res["accuracy"]
    # the per-window labels and predictions, in order, kept by both (the report's paired test reads them)
    assert res["y_true"] == saved["test_y_true"] == [int(v) for v in ds.test.y]
    assert res["y_pred"] == saved["test_y_pred"]
    assert sum(a == b for a, b in zip(res["y_true"], res["y_pred"], strict=True)) / len(ds.test) == pytest.approx(
        saved["test_accuracy"])
    val = evaluate_checkpoint(run / "best.pt", split="val", dataset=ds, device="cpu",
                              json_path=tmp_path / "v.json")
    assert val["subjects"] == saved["split"]["val"]["subjects"]
    assert val["accuracy"] == pytest.approx(saved["best_val_acc"])
    assert (tmp_path / "v.json").is_file()
    text = format_evaluation(val)
    assert "macro-F1" in text and all(c in text for c in CLASSES)


def test_evaluate_cli_prints_a_table_and_writes_json(tiny_run, monkeypatch, capsys, tmp_path):
    run, ds = tiny_run
    monkeypatch.setattr(harvit.data.registry, "load_dataset", lambda *a, **k: ds)
    out = tmp_path / "e.json"
    assert main(["evaluate", str(run), "--device", "cpu", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "confusion matrix" in printed
    for c in CLASSES:
        assert c in printed
    saved = json.loads(out.read_text())
    assert saved["split"] == "test" and len(saved["confusion_matrix"]) == len(CLASSES)


def test_other_classes_are_refused(tiny_run, monkeypatch, capsys):
    run, ds = tiny_run
    other = synthetic_dataset(40, 20)
    for w in (other.train, other.test):
        w.classes = ["A", "B", "C", "D"]
    with pytest.raises(HarvitError, match="classes"):
        evaluate_checkpoint(run, dataset=other, device="cpu")
    monkeypatch.setattr(harvit.data.registry, "load_dataset", lambda *a, **k: other)
    assert main(["evaluate", str(run), "--dataset", "uci_har", "--device", "cpu"]) == 2
    assert "classes" in capsys.readouterr().err


def test_missing_target_is_a_clear_error(tmp_path):
    with pytest.raises(HarvitError, match="no such run"):
        evaluate_checkpoint(tmp_path / "nope")
