"""The training loop, top to bottom in :func:`fit`; :func:`train` builds a run and fits it.

Data stays on the device: windows [N, C, T], labels [N]. A training sample is one view of one window
(sample id ``s`` is window ``s // V``, view ``s % V``); a batch is an index gather, and its images are
made by the model's imager per batch, never stored. With a frozen encoder and no augmentation the
encoder's features are computed once (:mod:`harvit.training.feature_cache`) and the head trains on them.

Under torchrun every rank runs :func:`fit` on the same epoch order: each takes its share of every global
step (:mod:`harvit.training.step`), validation and test are shared and gathered, the ranks agree each step
on a stop signal, and rank 0 alone writes files (:mod:`harvit.training.distributed`).

With ``--refit`` (the default) the loop runs twice: model selection (training split, validated each
epoch, best.pt = the best validation epoch), then a refit of a fresh model on training + validation
windows for the selected number of epochs (:func:`refit_run`); the refit's last epoch becomes best.pt,
the selection's is kept as selected.pt, and the test split is scored once, with best.pt.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import harvit.training.distributed as distributed
from harvit.config import Config
from harvit.data import Dataset, Windows
from harvit.evaluation.inference import evaluate_split
from harvit.evaluation.metrics import METRICS, classification_metrics, metric_record, per_subject_metrics
from harvit.models.checkpoint import load_checkpoint, load_model_state
from harvit.models.encoder import describe_encoder
from harvit.training.feature_cache import build_feature_cache
from harvit.training.interrupts import Interrupted, StopFlag
from harvit.training.optim import epoch_order
from harvit.training.results import TRAINING_RESULTS_FILE, RefitPhase, SplitCounts, TrainingResults
from harvit.training.run import Run, build_run
from harvit.training.smoother import fit_run_smoother
from harvit.training.step import train_step
from harvit.training.tracking import Tracker, resume_hint
from harvit.utils.atomic import write_bytes
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log, progress_bar
from harvit.utils.runtime import count_parameters


def train(cfg: Config, dataset: Dataset | None = None) -> TrainingResults:
    """Train a model with ``cfg`` (or continue it with ``cfg.resume``); returns its :class:`TrainingResults`.

    A given ``dataset`` is used as it is: ``cfg.dataset``, ``data_dir`` and ``train_stride`` then only
    label the run (load it with :func:`harvit.data.load_dataset` and the same ``train_stride``).
    Under torchrun each process is one rank of the run (:func:`harvit.training.distributed.start`).
    """
    dist = distributed.start(cfg.device)
    try:
        with dist.agreed():  # an error of any rank stops all, before the first collective
            run = build_run(cfg, dataset, dist)
        return fit(run)
    finally:
        dist.close()


def fit(run: Run) -> TrainingResults:
    """Train (or continue) the run, refit it on training + validation windows (``--refit``), then test the
    final model once. Returns its results (also written to ``training_results.json``).

    The selection phase and the refit are two calls of :func:`run_epochs`, the same loop on other splits.
    """
    run_epochs(run)
    if run.state.phase == "select":  # smoother.json: the selected model's validation errors + training transitions
        fit_run_smoother(run)
    if run.state.phase == "select" and run.cfg.refit:
        run = refit_run(run)
        run_epochs(run)
    return test_best(run)


def run_epochs(run: Run) -> None:
    """The loop: the phase's epochs, each validated (selection) or not (refit), checkpointed and logged."""
    cfg, state, model, dist = run.cfg, run.state, run.model, run.dist
    run.distribute()  # under torchrun: rank 0's weights on every rank, model.net in DDP
    dist.on_main(prepare_run_dir, run)
    if run.use_feature_cache and not state.finished:
        log("feature cache: on (frozen encoder, no augmentation): the encoder runs once per view")
        run.cache_s += build_feature_cache(run, only_missing=True)
    tracker, stop = Tracker(cfg, run.run_dir, state.epoch, writes=dist.is_main, phase=state.phase), StopFlag()
    stop.install()
    try:
        while not state.finished and state.epoch < run.epochs:
            # ---- one epoch: the seeded order, one optimiser step per slice of it -------------------
            model.train()
            order = epoch_order(len(run.splits["train"]) * run.n_views, cfg.seed, state.epoch,
                                run.sample_weights).to(run.device)
            tally = state.partial or {"loss_sum": 0.0, "correct": 0, "seen": 0, "time_s": 0.0}
            bar = progress_bar(cfg.progress and dist.is_main, run.steps_per_epoch,
                               f"{'refit ' if not run.validates else ''}epoch {state.epoch + 1}/{run.epochs}",
                               initial=state.step_in_epoch)
            t0 = time.perf_counter()
            for step in range(state.step_in_epoch, run.steps_per_epoch):
                idx = order[step * run.samples_per_step:(step + 1) * run.samples_per_step]
                loss_sum, correct = train_step(run, idx)
                tally["loss_sum"] += loss_sum
                tally["correct"] += correct
                tally["seen"] += len(idx)
                state.step_in_epoch = step + 1
                if bar is not None:
                    bar.set_postfix(loss=f"{tally['loss_sum'] / tally['seen']:.4f}",
                                    acc=f"{tally['correct'] / tally['seen']:.3f}", refresh=False)
                    bar.update(1)
                signum = dist.agreed_signal(stop.signum)  # all ranks stop after the same step
                if signum is not None and state.step_in_epoch < run.steps_per_epoch:
                    break  # interrupted mid-epoch: saved below, the epoch continues on --resume
            if bar is not None:
                bar.close()
            tally["time_s"] += time.perf_counter() - t0
            if state.step_in_epoch < run.steps_per_epoch:
                state.partial = tally
                run.save("latest.pt")
                raise Interrupted(130 if signum == signal.SIGINT else 143,
                                  resume_hint(run.run_dir, state.epoch, state.step_in_epoch))

            # ---- validation, early stopping, checkpoints, logging -----------------------------------
            t_val = time.perf_counter()
            val = validate(run) if run.validates else None
            state.epoch, state.step_in_epoch, state.partial = state.epoch + 1, 0, {}
            # best: the highest validation accuracy; a tie goes to the lower validation loss (on a small or
            # easy validation split accuracy saturates, and the refit's length should not stop at the first 100%)
            improved = val is not None and (val["val_acc"] > state.best_val_acc or (
                val["val_acc"] == state.best_val_acc and val["val_loss"] < state.best_val_loss))
            if improved:
                state.best_val_acc, state.best_val_loss = val["val_acc"], val["val_loss"]
                state.best_epoch, state.bad_epochs = state.epoch, 0
            elif val is not None:
                state.bad_epochs += 1
            state.history.append({
                "epoch": state.epoch,
                "train_loss": tally["loss_sum"] / max(1, tally["seen"]),
                "train_acc": tally["correct"] / max(1, tally["seen"]),
                **(val or {}),
                "lr": run.optimizer.param_groups[0]["lr"],
                "epoch_time_s": round(tally["time_s"] + time.perf_counter() - t_val, 3),
                "train_time_s": round(tally["time_s"], 3),
                "samples_per_s": round(tally["seen"] / max(1e-9, tally["time_s"]), 1),
                "micro_batch": state.micro_batch,
                **({"best_val_acc": state.best_val_acc} if val is not None else {}),
                **({"feature_cache_s": round(run.cache_s, 3)} if state.epoch == 1 and run.cache_s else {}),
            })
            patience = cfg.early_stopping_patience if run.validates else 0
            if patience and state.bad_epochs >= patience and state.epoch < run.epochs:
                log(f"early stopping: no validation gain for {patience} epochs (best {state.best_val_acc:.4f} "
                    f"at epoch {state.best_epoch})")
            state.finished = state.epoch >= run.epochs or bool(patience and state.bad_epochs >= patience)
            if improved or (state.finished and not run.validates):  # the refit's best.pt: its last epoch
                run.save("best.pt")  # first: a kill between the two never leaves latest.pt naming a missing best.pt
            run.save("latest.pt")
            dist.on_main(tracker.epoch, state.history, run.epochs, improved)
            signum = dist.agreed_signal(stop.signum)
            if signum is not None and not state.finished:
                raise Interrupted(130 if signum == signal.SIGINT else 143,
                                  resume_hint(run.run_dir, state.epoch, state.step_in_epoch))
    finally:
        stop.restore()
        tracker.close()


def validate(run: Run) -> dict[str, float]:
    """The validation split through the weights that are kept (EMA when on): the history's val_* values."""
    val = evaluate_split(run.eval_model, run.splits["val"], run.cfg.eval_batch_size, run.autocast, run.dist)
    return {"val_loss": val["loss"], "val_acc": val["acc"], "val_view_acc": val["view_acc"],
            **metric_record(val["y_true"].numpy(), val["y_pred"].numpy(), len(run.classes), prefix="val_")}


def selection_summary(run: Run) -> dict[str, Any]:
    """What the selection phase chose: the epoch, its validation scores, the phase's length and time."""
    state = run.state
    best = next((h for h in state.history if h["epoch"] == state.best_epoch), {})
    return {"best_epoch": state.best_epoch, "best_val_acc": state.best_val_acc, "epochs_run": state.epoch,
            **{f"val_{m}": best.get(f"val_{m}") for m in METRICS}, "val_loss": best.get("val_loss"),
            "train_windows": len(run.windows["train"]),
            "val_windows": len(run.windows["val"]), "steps_per_epoch": run.steps_per_epoch,
            "train_time_s": round(sum(h["train_time_s"] for h in state.history), 3),
            "images_trained": round(sum(h["samples_per_s"] * h["train_time_s"] for h in state.history)),
            "events": list(state.events), "elapsed_s": run.elapsed(), "cache_s": run.cache_s}


def refit_run(selection: Run) -> Run:
    """The refit phase after the selection ``selection``: best.pt is kept as selected.pt, and a fresh run (same
    seed) trains on training + validation windows for the selected epochs; under torchrun on every rank.
    With the feature cache the encoder features of the selection's splits are reused."""
    summary = selection_summary(selection)
    selection.dist.on_main(copy_file, selection.run_dir / "best.pt", selection.run_dir / "selected.pt")
    for split in selection.splits.values():  # the refit computes its own side features: free the selection's first
        split.stats = None  # counts held in memory: [N, F] per split
    with selection.dist.agreed():
        run = build_run(selection.cfg, selection.dataset, selection.dist, selection=summary)
    if selection.use_feature_cache and run.use_feature_cache and selection.splits["train"].feats is not None:
        run.splits["train"].feats = torch.cat([selection.splits["train"].feats, selection.splits["val"].feats])
        run.splits["test"].feats = selection.splits["test"].feats
    run.state.elapsed_before = selection.elapsed()
    run.state.micro_batch = min(run.state.micro_batch, selection.state.micro_batch)  # what fit in memory stays
    log(f"refit: a fresh model (seed {run.cfg.seed}) on training + validation windows "
        f"({len(run.windows['train'])}), {run.epochs} epochs (the epoch selected on validation, "
        f"{100 * summary['best_val_acc']:.2f}%); best.pt of the selection is kept as selected.pt")
    return run


def copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically."""
    write_bytes(dst, src.read_bytes())


def prepare_run_dir(run: Run) -> None:
    """Create the run folder, drop temporary files of writes cut short by a kill, save config.json, log
    what will run."""
    cfg = run.cfg
    try:
        run.run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HarvitError(f"--output-dir: cannot create the run folder {run.run_dir}: {e.strerror or e}") from None
    for torn in run.run_dir.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            torn.unlink()
    cfg.save(run.run_dir / "config.json")
    total, trainable = count_parameters(run.model)
    tw = run.windows
    train = (f"train {len(tw['train'])} / val {len(tw['val'])}" if run.validates
             else f"refit on train + val {len(tw['train'])}")
    log(f"run: {run.run_dir} | preset {cfg.preset} | device {run.device} | {run.dataset.name}: "
        f"{train} / test {len(tw['test'])} windows, "
        f"{run.n_views} views of {run.model.imager.in_chans}x{cfg.img_size}x{cfg.img_size}")
    log(f"model: {describe_encoder(run.model.net.encoder, cfg)} | {total / 1e6:.2f}M params, "
        f"{trainable / 1e6:.3f}M trainable{', frozen encoder' if cfg.freeze_encoder else ''}")


def load_best(run: Run) -> None:
    """The weights of ``best.pt`` into ``run.model``."""
    best = load_checkpoint(run.run_dir / "best.pt", map_location=run.device)
    load_model_state(run.model, best["model"], str(run.run_dir / "best.pt"))


def test_best(run: Run) -> TrainingResults:
    """Evaluate ``best.pt`` (the refit model, or the selection's best with ``--no-refit``) on the test split
    (the only time test is looked at), write ``training_results.json`` (rank 0) and return the results."""
    state, dist = run.state, run.dist
    dist.on_main(load_best, run)
    dist.broadcast_module(run.model)  # rank 0's best.pt on every rank
    if run.use_feature_cache and run.splits["test"].feats is None:
        run.cache_s += build_feature_cache(run, only_missing=True)
    if run.model.stats is not None and run.splits["test"].stats is None:  # left out while a refit was to follow
        run.splits["test"].stats = run.model.stats.precompute(run.windows["test"].x, run.device)
    test = evaluate_split(run.model, run.splits["test"], run.cfg.eval_batch_size, run.autocast, dist)
    metrics = classification_metrics(test["y_true"].numpy(), test["y_pred"].numpy(), run.classes)
    total, trainable = count_parameters(run.model)
    refit = state.phase == "refit"
    selection = state.selection if refit else selection_summary(run)
    train_time = sum(h["train_time_s"] for h in state.history) + (selection["train_time_s"] if refit else 0)
    samples = (sum(h["samples_per_s"] * h["train_time_s"] for h in state.history)
               + (selection["images_trained"] if refit else 0))
    windows = selection_windows(run)  # the split of model selection, as metrics.jsonl saw it
    results = TrainingResults(
        test={m: metrics[m] for m in METRICS},
        best_val={m: selection.get(f"val_{m}") for m in METRICS},  # the selected epoch's validation scores
        # model selection on the validation split (its best epoch is the refit's number of epochs)
        best_val_acc=selection["best_val_acc"],
        best_epoch=selection["best_epoch"],
        epochs_run=selection["epochs_run"],
        test_loss=test["loss"],
        test_view_accuracy=test["view_acc"],
        per_class_accuracy=metrics["per_class_accuracy"],
        per_class=metrics["per_class"],
        confusion_matrix=metrics["confusion_matrix"],
        test_per_subject=per_subject_metrics(test["y_true"].numpy(), test["y_pred"].numpy(),
                                             run.windows["test"].subject, run.classes),
        classes=list(run.classes),
        dataset=run.dataset.name,
        dataset_notes=list(run.dataset.notes),
        steps_per_epoch=selection.get("steps_per_epoch", run.steps_per_epoch),  # of the selection: metrics.jsonl's
        refit=(RefitPhase(windows=len(run.windows["train"]), epochs=state.epoch,
                          steps_per_epoch=run.steps_per_epoch) if refit else None),
        test_model=(f"refit on training + validation windows for {state.epoch} epochs (the selected epoch)"
                    if refit else f"best.pt of the selection (epoch {selection['best_epoch']}), trained on "
                                  "training windows only"),
        total_time_s=round(run.elapsed(), 3),
        train_time_s=round(train_time, 3),
        feature_cache_s=round(run.cache_s + (selection["cache_s"] if refit else 0.0), 3),
        samples_per_s=round(samples / max(1e-9, train_time), 1),
        params_total=total,
        params_trainable=trainable,
        device=str(run.device),
        world_size=dist.world_size,
        device_name=torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "cpu",
        split={k: SplitCounts(windows=len(w), subjects=w.subjects(), class_counts=w.class_counts())
               for k, w in windows.items()},
        val_choice=windows["val"].meta.get("val_choice"),  # subjects by name, windows, share
        events=(list(selection["events"]) if refit else []) + list(state.events),
        config=run.cfg,
        # per test window, in the data set's order: the report's paired test against the baseline reads them
        test_y_true=[int(v) for v in test["y_true"].tolist()],
        test_y_pred=[int(v) for v in test["y_pred"].tolist()],
    )
    dist.on_main(results.save, run.run_dir / TRAINING_RESULTS_FILE)
    scores = ", ".join(f"{m.display} {results.test[m.name]:.4f}" for m in METRICS.values())
    log(f"test: {scores} ({results.test_model}); run "
        f"{results.total_time_s:.0f}s (data, training, test) -> {run.run_dir / TRAINING_RESULTS_FILE}")
    return results


def selection_windows(run: Run) -> dict[str, Windows]:
    """The split of model selection: training (without the validation windows), validation, test."""
    w = run.windows
    if run.validates:
        return w
    return {"train": w["train"].subset(np.arange(len(w["train"]) - len(w["val"]))), "val": w["val"], "test": w["test"]}
