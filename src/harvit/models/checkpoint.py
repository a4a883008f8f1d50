"""Checkpoints: atomic save, safe load (``weights_only=True``), and config compatibility.

A checkpoint is a dict of tensors and plain data only::

    format, version, config (dict), model (state_dict of WindowClassifier: scaler + net),
    optimizer, scheduler, grad_scaler, epoch (epochs completed), step_in_epoch, partial (dict),
    best_val_acc, best_epoch, bad_epochs, history (list of per-epoch dicts), rng (dict),
    classes, channels, rate_hz, window_length
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from harvit.config import ARCH_KEYS, ENCODER_KEYS
from harvit.utils.atomic import write_bytes
from harvit.utils.errors import HarvitError

__all__ = ["ARCH_KEYS", "ENCODER_KEYS", "FORMAT", "VERSION", "checkpoint_file", "config_differences", "load_checkpoint",
           "load_model_state", "save_checkpoint"]

FORMAT = "harvit-checkpoint"
VERSION = 1

def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    write_bytes(path, buf.getvalue())


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file of ``path``: a run folder gives its ``best.pt`` (else ``latest.pt``); a file is
    itself. A folder without either is a :class:`HarvitError`."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "latest.pt"):
            if (path / name).is_file():
                return path / name
        raise HarvitError(f"{path}: no best.pt or latest.pt in this folder")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a harvit checkpoint with ``torch.load(weights_only=True)``.

    Raises :class:`HarvitError` for a missing file, a file that is not a checkpoint, or a
    checkpoint from another program.
    """
    path = checkpoint_file(path)
    if not path.is_file():
        raise HarvitError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # malformed bytes make the weights-only unpickler raise almost anything (IndexError...)
        raise HarvitError(f"{path} is not a readable harvit checkpoint ({_load_error_cause(e)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise HarvitError(f"{path} is not a harvit checkpoint (no '{FORMAT}' marker)")
    if int(ckpt.get("version", 0)) > VERSION:
        raise HarvitError(f"{path} was written by a newer harvit (checkpoint version {ckpt['version']})")
    return ckpt


def config_differences(saved: dict[str, Any], current: dict[str, Any], keys: tuple[str, ...] = ARCH_KEYS
                       ) -> list[str]:
    """Settings among ``keys`` whose values differ, as ``name: saved -> current`` strings."""
    return [f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)]


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str,
                     strict: bool = True) -> None:
    """Load weights, turning shape/key mismatches into one clear :class:`HarvitError`."""
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:3])[:300] if len(lines) > 1 else lines[0][:300]
        raise HarvitError(f"{source}: weights do not fit this model (another architecture or class count?): "
                          f"{detail}") from None


def _load_error_cause(e: Exception) -> str:
    """The cause of a failed ``torch.load`` in a few words, without torch's advice to retry with
    ``weights_only=False`` (which would run whatever code the file carries)."""
    text = str(e).split("WeightsUnpickler error:", 1)[-1]
    skip = ("Weights only load failed", "Check the documentation", "Please file an issue")
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and "weights_only" not in ln and not ln.strip().startswith(skip)]
    return lines[0].split(". Please use")[0][:200] if lines else type(e).__name__
