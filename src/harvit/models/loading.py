"""Rebuild a trained :class:`~harvit.models.classifier.WindowClassifier` from a checkpoint, ready for inference."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harvit.config import Config
from harvit.models.checkpoint import load_checkpoint, load_model_state
from harvit.models.classifier import WindowClassifier, build_classifier
from harvit.models.encoder import attention_for
from harvit.utils.errors import HarvitError


@dataclass
class TrainedModel:
    """A model in eval mode with what it was trained on.

    ``model`` maps windows [B, C, T] (signal units: g, rad/s) to log-probabilities [B, K].
    """

    model: WindowClassifier
    config: Config
    classes: list[str]
    channels: list[str]
    rate_hz: float
    window_length: int
    checkpoint: dict[str, Any]
    path: Path


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load ``best.pt`` of a run folder (or a given checkpoint file) onto ``device``."""
    path = Path(path)
    ckpt = load_checkpoint(path, map_location="cpu")
    if path.is_dir():
        path = path / ("best.pt" if (path / "best.pt").is_file() else "latest.pt")
    cfg = Config.from_dict(ckpt["config"], source=f"{path} config")
    # The weights come from the checkpoint: build without fetching or loading anything else.
    build_cfg = dataclasses.replace(cfg, pretrained=False, pretrained_path=None, init_from=None)
    channels = list(ckpt["channels"])
    if not any(k.startswith("imager.scaler.") for k in ckpt["model"]):
        raise HarvitError(f"{path}: the checkpoint holds no fitted scaler")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_classifier(build_cfg, channels, len(ckpt["classes"]), window_length=int(ckpt["window_length"]))
    load_model_state(model, ckpt["model"], str(path))
    model.to(device).eval()
    attention_for(model, device)
    return TrainedModel(model, cfg, list(ckpt["classes"]), channels, float(ckpt["rate_hz"]),
                        int(ckpt["window_length"]), ckpt, path)
