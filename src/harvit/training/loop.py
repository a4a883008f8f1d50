"""The training loop, top to bottom in :func:`fit`; :func:`train` builds a run and fits it.

Data stays on the device: windows [N, C, T], labels [N]. A training sample is one view of one window
(sample id ``s`` is window ``s // V``, view ``s % V``); a batch is an index gather, and its images are
made by the model's imager per batch, never stored. With a frozen encoder and no augmentation the
encoder's features are computed once (:mod:`harvit.training.feature_cache`) and the head trains on them.

Under torchrun every rank runs :func:`fit` on the same epoch order: each takes its share of every global
step (:mod:`harvit.training.step`), validation and test are shared and gathered, the ranks agree each step
on a stop signal, and rank 0 alone writes files (:mod:`harvit.training.distributed`).
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any

import torch

import harvit.training.distributed as distributed
from harvit.config import Config
from harvit.data import Dataset
from harvit.evaluation.inference import evaluate_split
from harvit.evaluation.metrics import classification_metrics, per_subject_metrics
from harvit.models import checkpoint as ck
from harvit.models.encoder import describe_encoder
from harvit.training.feature_cache import build_feature_cache
from harvit.training.interrupts import Interrupted, StopFlag
from harvit.training.optim import epoch_order
from harvit.training.run import Run, build_run
from harvit.training.step import train_step
from harvit.training.tracking import Tracker, resume_hint
from harvit.utils.atomic import write_json
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
    """Train (or continue) the run, then evaluate ``best.pt`` on the test split. Returns the results dict."""
    cfg, st, model, dist = run.cfg, run.state, run.model, run.dist
    run.distribute()  # under torchrun: rank 0's weights on every rank, model.net in DDP
    dist.on_main(prepare_run_dir, run)
    cache_s = 0.0
    if run.use_feature_cache and not st.finished:
        log("feature cache: on (frozen encoder, no augmentation): the encoder runs once per view")
        cache_s = build_feature_cache(run)
    tracker, stop = Tracker(cfg, run.run_dir, st.epoch, writes=dist.is_main), StopFlag()
    stop.install()
    try:
        while not st.finished and st.epoch < cfg.epochs:
            # ---- one epoch: the seeded order, one optimiser step per slice of it -------------------
            model.train()
            order = epoch_order(len(run.splits["train"]) * run.n_views, cfg.seed, st.epoch).to(run.device)
            p = st.partial or {"loss_sum": 0.0, "correct": 0, "seen": 0, "time_s": 0.0}
            bar = progress_bar(cfg.progress and dist.is_main, run.steps_per_epoch,
                               f"epoch {st.epoch + 1}/{cfg.epochs}", initial=st.step_in_epoch)
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
            val = evaluate_split(run.eval_model, run.splits["val"], cfg.eval_batch_size, run.autocast, dist)
            st.epoch, st.step_in_epoch, st.partial = st.epoch + 1, 0, {}
            improved = val["acc"] > st.best_val_acc
            if improved:
                st.best_val_acc, st.best_epoch, st.bad_epochs = val["acc"], st.epoch, 0
            else:
                st.bad_epochs += 1
            st.history.append({
                "epoch": st.epoch,
                "train_loss": p["loss_sum"] / max(1, p["seen"]),
                "train_acc": p["correct"] / max(1, p["seen"]),
                "val_loss": val["loss"],
                "val_acc": val["acc"],
                "val_view_acc": val["view_acc"],
                "lr": run.optimizer.param_groups[0]["lr"],
                "epoch_time_s": round(p["time_s"] + time.perf_counter() - t_val, 3),
                "train_time_s": round(p["time_s"], 3),
                "samples_per_s": round(p["seen"] / max(1e-9, p["time_s"]), 1),
                "micro_batch": st.micro_batch,
                "best_val_acc": st.best_val_acc,
                **({"feature_cache_s": round(cache_s, 3)} if st.epoch == 1 and cache_s else {}),
            })
            patience = cfg.early_stopping_patience
            if patience and st.bad_epochs >= patience and st.epoch < cfg.epochs:
                log(f"early stopping: no validation gain for {patience} epochs (best {st.best_val_acc:.4f} "
                    f"at epoch {st.best_epoch})")
            st.finished = st.epoch >= cfg.epochs or bool(patience and st.bad_epochs >= patience)
            if improved:  # best.pt first: a kill between the two never leaves latest.pt naming a missing best.pt
                run.save("best.pt")
            run.save("latest.pt")
            dist.on_main(tracker.epoch, st.history, cfg.epochs, improved)
            signum = dist.agreed_signal(stop.signum)
            if signum is not None and not st.finished:
                raise Interrupted(130 if signum == signal.SIGINT else 143,
                                  resume_hint(run.run_dir, st.epoch, st.step_in_epoch))
    finally:
        stop.restore()
        tracker.close()
    return test_best(run, cache_s)


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
    log(f"run: {run.run_dir} | preset {cfg.preset} | device {run.device} | {run.dataset.name}: "
        f"train {len(tw['train'])} / val {len(tw['val'])} / test {len(tw['test'])} windows, "
        f"{run.n_views} views of {run.model.imager.in_chans}x{cfg.img_size}x{cfg.img_size}")
    log(f"model: {describe_encoder(run.model.net.encoder, cfg)} | {total / 1e6:.2f}M params, "
        f"{trainable / 1e6:.3f}M trainable{', frozen encoder' if cfg.freeze_encoder else ''}")


def load_best(run: Run) -> None:
    """The weights of ``best.pt`` into ``run.model``."""
    best = ck.load_checkpoint(run.run_dir / "best.pt", map_location=run.device)
    ck.load_model_state(run.model, best["model"], str(run.run_dir / "best.pt"))


def test_best(run: Run, cache_s: float) -> dict[str, Any]:
    """Evaluate ``best.pt`` on the test split (the only time test is looked at) and write the results."""
    st, dist = run.state, run.dist
    dist.on_main(load_best, run)
    dist.broadcast_module(run.model)  # rank 0's best.pt on every rank
    if run.use_feature_cache and run.splits["test"].feats is None:
        cache_s += build_feature_cache(run)
    test = evaluate_split(run.model, run.splits["test"], run.cfg.eval_batch_size, run.autocast, dist)
    metrics = classification_metrics(test["y_true"].numpy(), test["y_pred"].numpy(), run.classes)
    total, trainable = count_parameters(run.model)
    train_time = sum(h["train_time_s"] for h in st.history)
    samples = sum(h["samples_per_s"] * h["train_time_s"] for h in st.history)
    results = {
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
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
        "steps_per_epoch": run.steps_per_epoch,
        "best_epoch": st.best_epoch,
        "best_val_acc": st.best_val_acc,
        "epochs_run": st.epoch,
        "total_time_s": round(run.elapsed(), 3),
        "train_time_s": round(train_time, 3),
        "feature_cache_s": round(cache_s, 3),
        "samples_per_s": round(samples / max(1e-9, train_time), 1),
        "params_total": total,
        "params_trainable": trainable,
        "device": str(run.device),
        "world_size": dist.world_size,
        "device_name": torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "cpu",
        "split": {k: {"windows": len(w), "subjects": w.subjects(), "class_counts": w.class_counts()}
                  for k, w in run.windows.items()},
        "val_choice": run.windows["val"].meta.get("val_choice"),  # subjects by name, windows, share
        "events": st.events,
        "config": run.cfg.to_dict(),
        # per test window, in the data set's order: the report's paired test against the baseline reads them
        "test_y_true": [int(v) for v in test["y_true"].tolist()],
        "test_y_pred": [int(v) for v in test["y_pred"].tolist()],
    }
    dist.on_main(write_json, run.run_dir / "training_results.json", results)
    log(f"test: accuracy {results['test_accuracy']:.4f}, macro-F1 {results['test_macro_f1']:.4f} "
        f"(best.pt, epoch {st.best_epoch}); run {results['total_time_s']:.0f}s (data, training, test) -> "
        f"{run.run_dir / 'training_results.json'}")
    return results
