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
from harvit.models import checkpoint as ck
from harvit.models.encoder import describe_encoder
from harvit.training.feature_cache import build_feature_cache
from harvit.training.interrupts import Interrupted, StopFlag
from harvit.training.optim import epoch_order
from harvit.training.run import Run, build_run
from harvit.training.step import train_step
from harvit.training.tracking import Tracker, resume_hint
from harvit.utils.atomic import write_bytes, write_json
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log, progress_bar
from harvit.utils.runtime import count_parameters


def train(cfg: Config, dataset: Dataset | None = None) -> dict[str, Any]:
    """Train a model with ``cfg`` (or continue it with ``cfg.resume``); returns ``training_results``.

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


def fit(run: Run) -> dict[str, Any]:
    """Train (or continue) the run, refit it on training + validation windows (``--refit``), then test the
    final model once. Returns the results dict.

    The selection phase and the refit are two calls of :func:`run_epochs`, the same loop on other splits.
    """
    run_epochs(run)
    if run.state.phase == "select" and run.cfg.refit:
        run = refit_run(run)
        run_epochs(run)
    return test_best(run)


def run_epochs(run: Run) -> None:
    """The loop: the phase's epochs, each validated (selection) or not (refit), checkpointed and logged."""
    cfg, st, model, dist = run.cfg, run.state, run.model, run.dist
    run.distribute()  # under torchrun: rank 0's weights on every rank, model.net in DDP
    dist.on_main(prepare_run_dir, run)
    if run.use_feature_cache and not st.finished:
        log("feature cache: on (frozen encoder, no augmentation): the encoder runs once per view")
        run.cache_s += build_feature_cache(run, only_missing=True)
    tracker, stop = Tracker(cfg, run.run_dir, st.epoch, writes=dist.is_main, phase=st.phase), StopFlag()
    stop.install()
    try:
        while not st.finished and st.epoch < run.epochs:
            # ---- one epoch: the seeded order, one optimiser step per slice of it -------------------
            model.train()
            order = epoch_order(len(run.splits["train"]) * run.n_views, cfg.seed, st.epoch,
                                run.sample_weights).to(run.device)
            p = st.partial or {"loss_sum": 0.0, "correct": 0, "seen": 0, "time_s": 0.0}
            bar = progress_bar(cfg.progress and dist.is_main, run.steps_per_epoch,
                               f"{'refit ' if not run.validates else ''}epoch {st.epoch + 1}/{run.epochs}",
                               initial=st.step_in_epoch)
            t0 = time.perf_counter()
            for step in range(st.step_in_epoch, run.steps_per_epoch):
                idx = order[step * run.samples_per_step:(step + 1) * run.samples_per_step]
                loss_sum, correct = train_step(run, idx)
                p["loss_sum"] += loss_sum
                p["correct"] += correct
                p["seen"] += len(idx)
                st.step_in_epoch = step + 1
                if bar is not None:
                    bar.set_postfix(loss=f"{p['loss_sum'] / p['seen']:.4f}", acc=f"{p['correct'] / p['seen']:.3f}",
                                    refresh=False)
                    bar.update(1)
                signum = dist.agreed_signal(stop.signum)  # all ranks stop after the same step
                if signum is not None and st.step_in_epoch < run.steps_per_epoch:
                    break  # interrupted mid-epoch: saved below, the epoch continues on --resume
            if bar is not None:
                bar.close()
            p["time_s"] += time.perf_counter() - t0
            if st.step_in_epoch < run.steps_per_epoch:
                st.partial = p
                run.save("latest.pt")
                raise Interrupted(130 if signum == signal.SIGINT else 143,
                                  resume_hint(run.run_dir, st.epoch, st.step_in_epoch))

            # ---- validation, early stopping, checkpoints, logging -----------------------------------
            t_val = time.perf_counter()
            val = validate(run) if run.validates else None
            st.epoch, st.step_in_epoch, st.partial = st.epoch + 1, 0, {}
            # best: the highest validation accuracy; a tie goes to the lower validation loss (on a small or
            # easy validation split accuracy saturates, and the refit's length should not stop at the first 100%)
            improved = val is not None and (val["val_acc"] > st.best_val_acc or (
                val["val_acc"] == st.best_val_acc and val["val_loss"] < st.best_val_loss))
            if improved:
                st.best_val_acc, st.best_val_loss, st.best_epoch, st.bad_epochs = (val["val_acc"], val["val_loss"],
                                                                                   st.epoch, 0)
            elif val is not None:
                st.bad_epochs += 1
            st.history.append({
                "epoch": st.epoch,
                "train_loss": p["loss_sum"] / max(1, p["seen"]),
                "train_acc": p["correct"] / max(1, p["seen"]),
                **(val or {}),
                "lr": run.optimizer.param_groups[0]["lr"],
                "epoch_time_s": round(p["time_s"] + time.perf_counter() - t_val, 3),
                "train_time_s": round(p["time_s"], 3),
                "samples_per_s": round(p["seen"] / max(1e-9, p["time_s"]), 1),
                "micro_batch": st.micro_batch,
                **({"best_val_acc": st.best_val_acc} if val is not None else {}),
                **({"feature_cache_s": round(run.cache_s, 3)} if st.epoch == 1 and run.cache_s else {}),
            })
            patience = cfg.early_stopping_patience if run.validates else 0
            if patience and st.bad_epochs >= patience and st.epoch < run.epochs:
                log(f"early stopping: no validation gain for {patience} epochs (best {st.best_val_acc:.4f} "
                    f"at epoch {st.best_epoch})")
            st.finished = st.epoch >= run.epochs or bool(patience and st.bad_epochs >= patience)
            if improved or (st.finished and not run.validates):  # the refit's best.pt: its last epoch
                run.save("best.pt")  # first: a kill between the two never leaves latest.pt naming a missing best.pt
            run.save("latest.pt")
            dist.on_main(tracker.epoch, st.history, run.epochs, improved)
            signum = dist.agreed_signal(stop.signum)
            if signum is not None and not st.finished:
                raise Interrupted(130 if signum == signal.SIGINT else 143,
                                  resume_hint(run.run_dir, st.epoch, st.step_in_epoch))
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
    st = run.state
    best = next((h for h in st.history if h["epoch"] == st.best_epoch), {})
    return {"best_epoch": st.best_epoch, "best_val_acc": st.best_val_acc, "epochs_run": st.epoch,
            **{f"val_{m}": best.get(f"val_{m}") for m in METRICS}, "val_loss": best.get("val_loss"),
            "train_windows": len(run.windows["train"]),
            "val_windows": len(run.windows["val"]), "steps_per_epoch": run.steps_per_epoch,
            "train_time_s": round(sum(h["train_time_s"] for h in st.history), 3),
            "images_trained": round(sum(h["samples_per_s"] * h["train_time_s"] for h in st.history)),
            "events": list(st.events), "elapsed_s": run.elapsed(), "cache_s": run.cache_s}


def refit_run(sel: Run) -> Run:
    """The refit phase after the selection ``sel``: best.pt is kept as selected.pt, and a fresh run (same
    seed) trains on training + validation windows for the selected epochs; under torchrun on every rank.
    With the feature cache the encoder features of the selection's splits are reused."""
    summary = selection_summary(sel)
    sel.dist.on_main(copy_file, sel.run_dir / "best.pt", sel.run_dir / "selected.pt")
    for split in sel.splits.values():  # the refit computes its own side features: free the selection's first
        split.stats = None  # counts held in memory: [N, F] per split
    with sel.dist.agreed():
        run = build_run(sel.cfg, sel.dataset, sel.dist, selection=summary)
    if sel.use_feature_cache and run.use_feature_cache and sel.splits["train"].feats is not None:
        run.splits["train"].feats = torch.cat([sel.splits["train"].feats, sel.splits["val"].feats])
        run.splits["test"].feats = sel.splits["test"].feats
    run.state.elapsed_before = sel.elapsed()
    run.state.micro_batch = min(run.state.micro_batch, sel.state.micro_batch)  # what fit in memory stays
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
    best = ck.load_checkpoint(run.run_dir / "best.pt", map_location=run.device)
    ck.load_model_state(run.model, best["model"], str(run.run_dir / "best.pt"))


def test_best(run: Run) -> dict[str, Any]:
    """Evaluate ``best.pt`` (the refit model, or the selection's best with ``--no-refit``) on the test split
    (the only time test is looked at) and write the results."""
    st, dist = run.state, run.dist
    dist.on_main(load_best, run)
    dist.broadcast_module(run.model)  # rank 0's best.pt on every rank
    if run.use_feature_cache and run.splits["test"].feats is None:
        run.cache_s += build_feature_cache(run, only_missing=True)
    if run.model.stats is not None and run.splits["test"].stats is None:  # left out while a refit was to follow
        run.splits["test"].stats = run.model.stats.precompute(run.windows["test"].x, run.device)
    test = evaluate_split(run.model, run.splits["test"], run.cfg.eval_batch_size, run.autocast, dist)
    metrics = classification_metrics(test["y_true"].numpy(), test["y_pred"].numpy(), run.classes)
    total, trainable = count_parameters(run.model)
    sel = st.selection if st.phase == "refit" else selection_summary(run)
    train_time = sum(h["train_time_s"] for h in st.history) + (sel["train_time_s"] if st.phase == "refit" else 0)
    samples = (sum(h["samples_per_s"] * h["train_time_s"] for h in st.history)
               + (sel["images_trained"] if st.phase == "refit" else 0))
    refit = st.phase == "refit"
    windows = selection_windows(run)  # the split of model selection, as metrics.jsonl saw it
    results = {
        **{f"test_{m}": metrics[m] for m in METRICS},
        "test_loss": test["loss"],
        "test_view_accuracy": test["view_acc"],
        "per_class_accuracy": metrics["per_class_accuracy"],
        "per_class": metrics["per_class"],
        "confusion_matrix": metrics["confusion_matrix"],
        "test_per_subject": per_subject_metrics(test["y_true"].numpy(), test["y_pred"].numpy(),
                                                run.windows["test"].subject, run.classes),
        "classes": run.classes,
        "dataset": run.dataset.name,
        "dataset_notes": list(run.dataset.notes),
        "steps_per_epoch": sel.get("steps_per_epoch", run.steps_per_epoch),  # of the selection: metrics.jsonl's
        # model selection on the validation split (its best epoch is the refit's number of epochs)
        "best_epoch": sel["best_epoch"],
        "best_val_acc": sel["best_val_acc"],
        **{f"best_val_{m}": sel.get(f"val_{m}") for m in METRICS},  # that epoch's validation scores
        "epochs_run": sel["epochs_run"],
        "refit": ({"windows": len(run.windows["train"]), "epochs": st.epoch, "steps_per_epoch": run.steps_per_epoch}
                  if refit else None),
        "test_model": (f"refit on training + validation windows for {st.epoch} epochs (the selected epoch)" if refit
                       else f"best.pt of the selection (epoch {sel['best_epoch']}), trained on training windows only"),
        "total_time_s": round(run.elapsed(), 3),
        "train_time_s": round(train_time, 3),
        "feature_cache_s": round(run.cache_s + (sel["cache_s"] if refit else 0.0), 3),
        "samples_per_s": round(samples / max(1e-9, train_time), 1),
        "params_total": total,
        "params_trainable": trainable,
        "device": str(run.device),
        "world_size": dist.world_size,
        "device_name": torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "cpu",
        "split": {k: {"windows": len(w), "subjects": w.subjects(), "class_counts": w.class_counts()}
                  for k, w in windows.items()},
        "val_choice": windows["val"].meta.get("val_choice"),  # subjects by name, windows, share
        "events": (list(sel["events"]) if refit else []) + list(st.events),
        "config": run.cfg.to_dict(),
        # per test window, in the data set's order: the report's paired test against the baseline reads them
        "test_y_true": [int(v) for v in test["y_true"].tolist()],
        "test_y_pred": [int(v) for v in test["y_pred"].tolist()],
    }
    dist.on_main(write_json, run.run_dir / "training_results.json", results)
    scores = ", ".join(f"{m.display} {results[f'test_{m.name}']:.4f}" for m in METRICS.values())
    log(f"test: {scores} ({results['test_model']}); run "
        f"{results['total_time_s']:.0f}s (data, training, test) -> {run.run_dir / 'training_results.json'}")
    return results


def selection_windows(run: Run) -> dict[str, Windows]:
    """The split of model selection: training (without the validation windows), validation, test."""
    w = run.windows
    if run.validates:
        return w
    return {"train": w["train"].subset(np.arange(len(w["train"]) - len(w["val"]))), "val": w["val"], "test": w["test"]}
