"""One optimiser step: sample ids -> (augmented) windows -> images -> logits -> loss -> update.

A step covers ``batch_size * accum_steps`` samples (the global batch) in micro-batches of
``state.micro_batch``; on out-of-memory the micro-batch halves and the step is redone (same effective
batch). Under torchrun each rank takes its share of the step's ids; each rank's loss is weighted by its
share times the world size, so DDP's mean of the ranks' gradients is the gradient of the mean loss over
the whole global batch, as in one process. The ranks agree on out-of-memory before DDP exchanges the
gradients, so all halve together.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harvit.imaging.augment import augment_batch
from harvit.training.run import Run
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log


def batch_logits(run: Run, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [b, K] and labels [b] of training sample ids ``idx`` [b] (window = id // V, view = id % V)."""
    cfg, split, model = run.cfg, run.splits["train"], run.model
    win = torch.div(idx, run.n_views, rounding_mode="floor")
    view = idx % run.n_views
    y = split.y[win]
    stats = split.stats[win] if split.stats is not None else None
    with run.autocast():
        if split.feats is not None:  # frozen encoder: its cached features of these views
            feats = split.feats[win.to(split.feats.device), view.to(split.feats.device)].to(run.device)
            return run.net(feats, stats, features_in=True), y
        x = split.x[win]
        with torch.no_grad():
            if run.augmenter is not None:
                aug, rot = run.augmenter, cfg.augment_rotation
                x = augment_batch(x, aug.triples, aug.generator, jitter_std=cfg.augment_jitter,
                                  scale_std=cfg.augment_scale, max_shift=cfg.augment_shift, rotate=rot > 0,
                                  max_angle=rot, axis=cfg.augment_axis, gravity=aug.gravity)
                if stats is not None:  # the statistics of the window the images show
                    stats = model.stats(x)
            images = model.imager(x, view)
        return run.net(images, stats), y


def optimizer_step(run: Run, idx: torch.Tensor) -> tuple[float, int]:
    """Forward and backward over this rank's share of the global step's ids ``idx`` in micro-batches, then
    (under torchrun) the gradient exchange, clip, step, schedule and average.

    Returns (sum of losses, number correct) over the whole global step (summed over the ranks).
    Raises ``torch.OutOfMemoryError`` on every rank when any rank ran out of memory.
    """
    cfg, dist = run.cfg, run.dist
    run.optimizer.zero_grad(set_to_none=True)
    loss_sum, correct, out_of_memory = 0.0, 0, False
    # the loss of the global step is the mean over its samples, weighted by class with --class-balance weights:
    # each micro-batch adds its (weighted) sum over this normaliser, whatever the micro-batches and ranks
    w = run.class_weights
    norm = len(idx) if w is None else float(w[run.splits["train"].y[torch.div(idx, run.n_views,
                                                                                rounding_mode="floor")]].sum())
    try:
        for chunk in dist.share(idx).split(run.state.micro_batch):
            with dist.no_sync(run.net):  # under torchrun the gradients stay local until all ranks are done
                logits, y = batch_logits(run, chunk)
                loss = F.cross_entropy(logits.float(), y, weight=w, label_smoothing=cfg.label_smoothing,
                                       reduction="mean" if w is None else "sum")
                part = len(chunk) / norm if w is None else 1.0 / max(norm, 1e-12)  # its share of the step's mean
                run.grad_scaler.scale(loss * (part * dist.world_size)).backward()
            loss_sum += float(loss.detach()) * part * len(idx)
            correct += int((logits.argmax(-1) == y).sum())
    except torch.OutOfMemoryError:
        out_of_memory = True
    if dist.any(out_of_memory):  # agreed before the gradient exchange: every rank halves together
        raise torch.OutOfMemoryError("out of memory on a rank")
    if run.ddp is not None:
        all_reduce_gradients(run, idx[:1])
    if cfg.grad_clip > 0:
        run.grad_scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.net.parameters(), cfg.grad_clip)
    run.grad_scaler.step(run.optimizer)
    run.grad_scaler.update()
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update(run.model, step=run.global_step + 1)
    loss_sum, correct = dist.sum(loss_sum, correct)
    return loss_sum, int(correct)


def all_reduce_gradients(run: Run, sample_id: torch.Tensor) -> None:
    """DDP's all-reduce of the gradients the step accumulated locally: one synchronised forward and
    backward of a single sample (``sample_id`` int64 [1]) with weight 0, so DDP averages the ranks' gradients.

    It runs after the ranks agreed that none ran out of memory: a rank that fails inside DDP's own
    exchange could not be waited for. (DDP's overlap of the exchange with the backward pass is the
    price of that agreement.)
    """
    try:
        logits, y = batch_logits(run, sample_id)
        (F.cross_entropy(logits.float(), y) * 0.0).backward()
    except torch.OutOfMemoryError:
        raise HarvitError(f"out of memory on rank {run.dist.rank} while the ranks exchange gradients; lower "
                          "--batch-size (the micro-batch) or --img-size") from None


def train_step(run: Run, idx: torch.Tensor) -> tuple[float, int]:
    """:func:`optimizer_step`, redone at half the micro-batch after an out-of-memory error."""
    while True:
        try:
            return optimizer_step(run, idx)
        except torch.OutOfMemoryError:
            run.optimizer.zero_grad(set_to_none=True)
            if run.device.type == "cuda":
                torch.cuda.empty_cache()
            if run.state.micro_batch <= 1:
                raise HarvitError("out of memory even at micro-batch 1; lower --img-size or use a smaller "
                                  "--encoder") from None
            run.state.micro_batch = max(1, run.state.micro_batch // 2)
            accum = math.ceil(len(run.dist.share(idx)) / run.state.micro_batch)  # this rank's micro-batches
            msg = (f"out of memory: retrying the step at micro-batch {run.state.micro_batch} "
                   f"(x{accum} accumulation, same effective batch)")
            run.state.events.append(msg)
            log(msg)
