"""``harvit profile``: a config's model with random weights, profiled on random windows (no data needed).

The model is built as training builds it (never fetching pretrained weights), with the head sized for
the data set's classes (a built-in data set's registered ``n_classes``; 6 for your own data), and
profiled on random windows of the built-in shape [B, 9, 128].
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harvit.data import CHANNELS, Windows, get_spec, is_builtin
from harvit.evaluation.inference import window_loader
from harvit.models.classifier import build_classifier
from harvit.models.encoder import attention_for
from harvit.reporting.profile_format import format_profile
from harvit.reporting.profiler import PerformanceProfiler
from harvit.utils.atomic import write_json
from harvit.utils.runtime import pick_device, setup_runtime

WINDOW_LENGTH = 128
#: Classes of the head for your own data (only the head's last layer depends on it).
OWN_DATA_CLASSES = 6


def n_classes(dataset: str) -> int:
    """Classes of ``dataset`` without loading it: a built-in one's registered count, else :data:`OWN_DATA_CLASSES`."""
    return get_spec(dataset).n_classes if is_builtin(dataset) else OWN_DATA_CLASSES


def random_windows(n: int, channels: list[str], length: int = WINDOW_LENGTH, seed: int = 0) -> np.ndarray:
    """Plausible random windows float32 [n, C, length]: body signals ~ N(0, 0.3), gravity of 1 g on
    ``total_acc`` channels in a random direction per window."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, len(channels), length))
    total = [i for i, c in enumerate(channels) if c.startswith("total_acc")]
    if len(total) == 3:
        g = rng.normal(size=(n, 3))
        x[:, total] += (g / np.linalg.norm(g, axis=1, keepdims=True))[:, :, None]
    return x.astype(np.float32)


def build_random_model(cfg: Any, device: torch.device, n_windows: int = 512) -> nn.Module:
    """The config's :class:`~harvit.models.classifier.WindowClassifier` with random weights (no weights are fetched)
    and a scaler fitted on random windows of shape [n, 9, 128]."""
    cfg = dataclasses.replace(cfg, pretrained=False, pretrained_path=None, init_from=None)
    channels = list(CHANNELS)
    x = random_windows(n_windows, channels)
    torch.manual_seed(cfg.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "frozen encoder without pretrained weights": expected here
        model = build_classifier(cfg, channels, n_classes(cfg.dataset), x_train=x)
    model.to(device)
    attention_for(model, device)  # the kernel training and inference use on this device
    return model


def profile_command(cfg: Any, out: str | Path | None = "profile.json",
                    batch_sizes: Iterable[int] | None = None, trace_dir: str | Path | None = None,
                    steps: int = 5) -> str:
    """``harvit profile``: profile the config's model on random windows; write JSON; return a summary."""
    cfg = cfg.validate()
    device = pick_device(cfg.device)
    setup_runtime(device, cfg.seed, cfg.threads)
    model = build_random_model(cfg, device)
    n = cfg.batch_size * (steps + 1)
    x = random_windows(n, list(CHANNELS), seed=1)
    y = np.arange(n) % n_classes(cfg.dataset)
    w = Windows(x, y, np.zeros(n, dtype=np.int64), list(CHANNELS),
                [f"class{i}" for i in range(n_classes(cfg.dataset))], 50.0)
    budget = 5.0 if device.type == "cuda" else 1.0  # seconds per measurement: the CPU default stays quick
    loader = window_loader(w, cfg.batch_size, device)
    prof = PerformanceProfiler(model, loader, steps=steps, max_seconds=budget)
    result = prof.run_full_profile(None, batch_sizes=batch_sizes, amp=True, trace_dir=trace_dir)
    keys = ("preset", "encoder", "img_size", "patch_size", "embed_dim", "depth", "num_heads", "mode",
            "encodings", "freeze_encoder", "batch_size", "amp", "amp_dtype")
    result["config"] = {k: getattr(cfg, k) for k in keys}
    if out is not None:
        write_json(out, result)
        result["json_path"] = str(out)
    return format_profile(result)
