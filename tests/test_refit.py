"""The refit on training + validation windows (issue 19), class balance, and balanced accuracy."""

import json
import os
import signal

import numpy as np
import pytest
import torch
from helpers_runs import tiny_config
from synth import make_dataset, make_windows

from harvit.data import Dataset, train_val_split
from harvit.evaluation.evaluate import evaluate_checkpoint
from harvit.evaluation.metrics import classification_metrics
from harvit.imaging.scaling import Scaler
from harvit.models import checkpoint as ck
from harvit.training import build_run, fit, loop, train
from harvit.training.interrupts import Interrupted
from harvit.training.optim import class_weights, epoch_order
from harvit.training.results import RefitPhase
from harvit.training.step import train_step


def test_refit_is_the_default_and_trains_on_the_validation_windows_too(tmp_path):
    ds = make_dataset()
    cfg = tiny_config(tmp_path, epochs=3)
    res = train(cfg, dataset=ds)
    train_w, val_w = train_val_split(ds.train, cfg.val_fraction, cfg.val_seed)
    run = cfg.run_dir
    assert (run / "selected.pt").is_file() and (run / "refit_metrics.jsonl").is_file()
    # the tested model is the refit: all training windows, for the selected number of epochs
    assert res.refit == RefitPhase(windows=len(ds.train), epochs=res.best_epoch,
                                   steps_per_epoch=-(-len(ds.train) // cfg.batch_size))
    best, selected = ck.load_checkpoint(run / "best.pt"), ck.load_checkpoint(run / "selected.pt")
    assert (best["phase"], selected["phase"]) == ("refit", "select")
    assert best["epoch"] == res.best_epoch == selected["best_epoch"]
    # the scaler of the refit is fitted on training + validation windows, the selection's on training only
    both = np.concatenate([train_w.x, val_w.x])
    for state, x in ((best["model"], both), (selected["model"], train_w.x)):
        want = Scaler.fit(x, mode=cfg.scaling, out_range=cfg.scale_range).state_dict()
        assert all(torch.allclose(state[f"imager.scaler.{k}"], v) for k, v in want.items())
    # the record keeps the selection's split and scores, and says the test model was refit
    assert res.split["train"].windows == len(train_w) and res.split["val"].windows == len(val_w)
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert res.best_val["balanced_accuracy"] == pytest.approx(logged[res.best_epoch - 1]["val_balanced_accuracy"])
    assert res.test_model.startswith("refit")
    # evaluate --split val of the refit model says it trained on those windows
    assert "note" in evaluate_checkpoint(run, split="val", dataset=ds, device="cpu")
    assert "note" not in evaluate_checkpoint(run / "selected.pt", split="val", dataset=ds, device="cpu")


def test_no_refit_tests_the_selection_best(tmp_path):
    ds = make_dataset()
    res = train(tiny_config(tmp_path, epochs=2, refit=False), dataset=ds)
    run = tmp_path / "tiny"
    assert res.refit is None and not (run / "selected.pt").exists()
    assert ck.load_checkpoint(run / "best.pt")["phase"] == "select"
    again = evaluate_checkpoint(run, split="test", dataset=ds, device="cpu")
    assert again["accuracy"] == res.test["accuracy"]


def test_selection_tie_goes_to_the_lower_validation_loss(tmp_path):
    """An easy validation split saturates: the selected epoch is not simply the first at the top accuracy."""
    res = train(tiny_config(tmp_path, epochs=4, refit=False, lr=1e-2), dataset=make_dataset())
    hist = [h for h in (ck.load_checkpoint(tmp_path / "tiny" / "latest.pt")["history"])]
    top = max(h["val_acc"] for h in hist)
    at_top = [h for h in hist if h["val_acc"] == top]
    assert res.best_epoch == min(at_top, key=lambda h: h["val_loss"])["epoch"]
    assert all("val_balanced_accuracy" in h and "val_macro_f1" in h for h in hist)


def test_resume_inside_the_refit_continues_the_refit_exactly(tmp_path, monkeypatch):
    """SIGINT in the refit's second epoch: latest.pt says refit; resuming ends as an uninterrupted run."""
    ds = make_dataset()
    full = train(tiny_config(tmp_path, run_name="full", epochs=2, deterministic=True), dataset=ds)
    real_step = loop.train_step
    seen = {"n": 0}

    def step_then_interrupt(run, idx):
        out = real_step(run, idx)
        if run.state.phase == "refit":
            seen["n"] += 1
            if seen["n"] == run.steps_per_epoch + 1:  # first step of the refit's epoch 2
                os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(loop, "train_step", step_then_interrupt)
    cfg = tiny_config(tmp_path, run_name="cut", epochs=2, deterministic=True)
    with pytest.raises(Interrupted):
        train(cfg, dataset=ds)
    monkeypatch.setattr(loop, "train_step", real_step)
    cut = ck.load_checkpoint(tmp_path / "cut" / "latest.pt")
    assert (cut["phase"], cut["epoch"], cut["step_in_epoch"]) == ("refit", 1, 1)
    assert cut["selection"]["best_epoch"] == full.best_epoch
    resumed_run = build_run(tiny_config(tmp_path, run_name="cut", epochs=2, deterministic=True, resume=True),
                            dataset=ds)
    assert resumed_run.state.phase == "refit" and not resumed_run.validates
    assert len(resumed_run.splits["train"]) == len(ds.train)
    resumed = fit(resumed_run)
    for key in ("test", "test_loss", "best_epoch", "best_val_acc", "confusion_matrix", "refit"):
        assert getattr(resumed, key) == getattr(full, key), key
    a = ck.load_checkpoint(tmp_path / "full" / "best.pt")["model"]
    b = ck.load_checkpoint(tmp_path / "cut" / "best.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_the_selection_finished_starts_the_refit(tmp_path, monkeypatch):
    """Killed between the phases: latest.pt is the finished selection; --resume runs the refit, not the selection."""
    ds = make_dataset()

    def stop(sel):
        raise Interrupted(143, "stopped between the phases")

    monkeypatch.setattr(loop, "refit_run", stop)
    with pytest.raises(Interrupted):
        train(tiny_config(tmp_path, epochs=2), dataset=ds)
    monkeypatch.undo()
    latest = ck.load_checkpoint(tmp_path / "tiny" / "latest.pt")
    assert (latest["phase"], latest["finished"]) == ("select", True)
    res = train(tiny_config(tmp_path, epochs=2, resume=True), dataset=ds)
    assert res.refit.windows == len(ds.train) and res.epochs_run == 2
    assert ck.load_checkpoint(tmp_path / "tiny" / "latest.pt")["phase"] == "refit"


def test_balanced_accuracy_of_a_toy_confusion():
    # recalls: class 0 3/4, class 1 1/1, class 2 0/1 -> balanced accuracy (0.75 + 1 + 0) / 3
    m = classification_metrics(np.array([0, 0, 0, 0, 1, 2]), np.array([0, 0, 0, 1, 1, 0]), ["a", "b", "c"])
    assert m["balanced_accuracy"] == pytest.approx(0.75 / 3 + 1 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)


def _imbalanced(n_train: int = 240) -> Dataset:
    """Class 2 holds about 5% of the training windows."""
    w = make_windows(n_train * 2, [1, 3, 5, 6, 7], seed=3)
    rare = np.flatnonzero(w.y == 2)[: n_train // 20]
    keep = np.sort(np.concatenate([np.flatnonzero(w.y != 2)[: n_train - len(rare)], rare]))
    return Dataset("imbalanced", w.subset(keep), make_windows(90, [2, 4], seed=4))


def test_class_weights_are_balanced_and_change_the_loss(tmp_path):
    y = np.array([0] * 90 + [1] * 9 + [2])
    w = class_weights(y, 4)
    assert w.tolist() == pytest.approx([100 / (3 * 90), 100 / (3 * 9), 100 / 3, 0.0])
    ds = _imbalanced()
    losses = {}
    for balance in ("none", "weights"):
        run = build_run(tiny_config(tmp_path, run_name=balance, class_balance=balance), dataset=ds)
        assert (run.class_weights is None) == (balance == "none")
        losses[balance] = train_step(run, torch.arange(64))[0]
    assert losses["weights"] != pytest.approx(losses["none"], rel=1e-3)


def test_balanced_sampler_draws_rare_classes_as_often_as_common_ones(tmp_path):
    run = build_run(tiny_config(tmp_path, class_balance="sampler"), dataset=_imbalanced())
    y = run.windows["train"].y
    order = epoch_order(len(y), 42, 0, run.sample_weights)
    share = np.bincount(y[order.numpy()], minlength=3) / len(order)
    assert np.bincount(y, minlength=3)[2] / len(y) < 0.1 and share[2] > 0.2
    assert torch.equal(order, epoch_order(len(y), 42, 0, run.sample_weights))  # seeded: resumable
