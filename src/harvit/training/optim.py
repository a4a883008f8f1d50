"""Optimiser parameter groups, the learning-rate schedule, and the seeded order of each epoch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from harvit.config import Config


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on weight matrices, none on biases, norms and embeddings' 1-D params."""
    decay, no_decay = [], []
    for _, p in module.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(module: nn.Module, weight_decay: float, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, fused (one kernel per step for all parameters) on the CPU and CUDA,
    the per-tensor loop elsewhere; same update either way."""
    return torch.optim.AdamW(param_groups(module, weight_decay), lr=lr, fused=device.type in ("cpu", "cuda"))


def warmup_steps(cfg: Config, steps_per_epoch: int) -> tuple[int, int]:
    """(total optimiser steps, warmup steps): ``--warmup-epochs`` in steps, at most all steps but the last."""
    total = max(1, cfg.epochs * steps_per_epoch)
    return total, min(int(round(cfg.warmup_epochs * steps_per_epoch)), total - 1)


def warmup_clamp_note(cfg: Config, steps_per_epoch: int) -> str | None:
    """The log line saying that ``--warmup-epochs`` was cut to fit the run, or None when it fits."""
    total, warm = warmup_steps(cfg, steps_per_epoch)
    if int(round(cfg.warmup_epochs * steps_per_epoch)) <= warm:
        return None
    return (f"warmup: --warmup-epochs {cfg.warmup_epochs:g} is not shorter than --epochs {cfg.epochs}; clamped to "
            f"{warm} of the {total} steps ({warm / steps_per_epoch:.2f} epochs): the learning rate rises until "
            "the last step and the cosine decay takes only that step")


def build_scheduler(opt: torch.optim.Optimizer, cfg: Config, steps_per_epoch: int
                    ) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warmup over ``warmup_epochs`` then cosine to ``min_lr``, stepped per optimiser step."""
    total, warm = warmup_steps(cfg, steps_per_epoch)
    eta_min = min(cfg.min_lr, cfg.lr)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warm), eta_min=eta_min)
    if warm <= 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / (warm + 1), total_iters=warm)
    return torch.optim.lr_scheduler.SequentialLR(opt, [linear, cosine], milestones=[warm])


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """``balanced`` class weights of training labels y int [N]: N / (K * n_k) for the K classes present, 0 for
    a class with no training window. Returns float32 [n_classes]; their mean over the windows is 1."""
    present = np.unique(y)
    w = np.zeros(n_classes, dtype=np.float32)
    if len(present):
        w[present] = compute_class_weight("balanced", classes=present, y=y)
    return torch.from_numpy(w)


def epoch_order(n_samples: int, seed: int, epoch: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The sample order of an epoch, a pure function of (seed, epoch): [n_samples] int64.

    Without ``weights`` a shuffle (every sample once); with ``weights`` [n_samples] (>= 0, e.g. 1 / the
    sample's class count) ``n_samples`` ids drawn with replacement in proportion to them (balanced sampling).
    """
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if weights is None:
        return torch.randperm(n_samples, generator=g)
    return torch.multinomial(weights.double().cpu(), n_samples, replacement=True, generator=g)
