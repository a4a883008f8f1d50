"""One optimiser step: sample ids -> (augmented) windows -> images -> logits -> loss -> update.

A step covers ``batch_size * accum_steps`` samples in micro-batches of ``state.micro_batch``; on
out-of-memory the micro-batch halves and the step is redone (same effective batch).
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
            return model.net.classify(feats, stats), y
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
        return model.net(images, stats), y


def optimizer_step(run: Run, idx: torch.Tensor) -> tuple[float, int]:
    """Forward and backward over ``idx`` in micro-batches, then clip, step, schedule and average.

    Returns (sum of losses, number correct) over the step's samples.
    """
    cfg = run.cfg
    run.optimizer.zero_grad(set_to_none=True)
    loss_sum, correct = 0.0, 0
    for chunk in idx.split(run.state.micro_batch):
        logits, y = batch_logits(run, chunk)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        run.grad_scaler.scale(loss * (len(chunk) / len(idx))).backward()
        loss_sum += float(loss.detach()) * len(chunk)
        correct += int((logits.argmax(-1) == y).sum())
    if cfg.grad_clip > 0:
        run.grad_scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.net.parameters(), cfg.grad_clip)
    run.grad_scaler.step(run.optimizer)
    run.grad_scaler.update()
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update(run.model, step=run.global_step + 1)
    return loss_sum, correct


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
            msg = (f"out of memory: retrying the step at micro-batch {run.state.micro_batch} "
                   f"(x{math.ceil(len(idx) / run.state.micro_batch)} accumulation, same effective batch)")
            run.state.events.append(msg)
            log(msg)
