"""Ensembles of trained runs as one model: the mean of the members' window log-probabilities.

:class:`EnsembleClassifier` maps windows [B, C, T] to ``log_softmax(mean over members of their window
log-probabilities)`` [B, K] (the geometric mean of their probabilities, renormalised), so
``harvit predict`` and ``harvit export`` (one ONNX graph holding every member) treat it like a
single :class:`~harvit.models.classifier.WindowClassifier`. :func:`ensemble_members` resolves the
runs: run folders, checkpoint files, or a cross-validation parent folder (its ``fold_*`` runs).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from harvit.models.classifier import WindowClassifier
from harvit.models.loading import TrainedModel, load_trained
from harvit.utils.errors import HarvitError

FOLD_PREFIX = "fold_"


class EnsembleClassifier(nn.Module):
    """Windows [B, C, T] -> ensemble log-probabilities [B, K] of M member :class:`WindowClassifier` s.

    ``imager``, ``stats`` and ``n_views`` are the first member's (what an export sidecar describes);
    each member keeps its own fitted scaler and statistics inside.
    """

    def __init__(self, members: list[WindowClassifier]) -> None:
        super().__init__()
        if not members:
            raise HarvitError("--ensemble: no members given")
        self.members = nn.ModuleList(members)

    @property
    def n_views(self) -> int:
        return int(self.members[0].n_views)

    @property
    def imager(self) -> nn.Module:
        return self.members[0].imager

    @property
    def stats(self) -> nn.Module | None:
        return self.members[0].stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mean_log_probs([m(x) for m in self.members])


def mean_log_probs(log_probs: list[torch.Tensor]) -> torch.Tensor:
    """Members' window log-probabilities M x [N, K] -> the ensemble's [N, K]: log_softmax of their mean."""
    return torch.log_softmax(torch.stack([lp.float() for lp in log_probs]).mean(0), dim=-1)


def fold_runs(parent: Path) -> list[Path]:
    """The finished fold runs (``fold_<k>/best.pt``) of a cross-validation parent folder, by fold number."""
    runs = [p for p in parent.glob(f"{FOLD_PREFIX}*") if p.is_dir() and p.name[len(FOLD_PREFIX):].isdigit()]
    return sorted((p for p in runs if (p / "best.pt").is_file()), key=lambda p: int(p.name[len(FOLD_PREFIX):]))


def ensemble_members(targets: list[str | Path]) -> list[Path]:
    """Run folders or checkpoint files of an ensemble; a cross-validation parent folder stands for its folds.

    Raises:
        HarvitError: a target that does not exist, or holds neither a run nor fold runs.
    """
    members: list[Path] = []
    for t in targets:
        p = Path(t)
        if not p.exists():
            raise HarvitError(f"--ensemble: {p}: no such run folder or checkpoint file")
        if p.is_dir() and not (p / "best.pt").is_file() and not (p / "latest.pt").is_file():
            folds = fold_runs(p)
            if not folds:
                raise HarvitError(f"--ensemble: {p} holds neither a run (best.pt) nor finished fold runs (fold_*/)")
            members += folds
        else:
            members.append(p)
    if not members:
        raise HarvitError("--ensemble: no members given")
    return members


def load_members(targets: list[str | Path], device: str | torch.device = "cpu") -> list[TrainedModel]:
    """Load every member (:func:`ensemble_members`) and check they classify the same windows alike."""
    members = [load_trained(p, device) for p in ensemble_members(targets)]
    first = members[0]
    for m in members[1:]:
        if (m.classes, m.channels, m.window_length) != (first.classes, first.channels, first.window_length):
            raise HarvitError(f"--ensemble: {m.path} differs from {first.path} in classes, channels or window "
                              "length; members must classify the same windows")
    return members


def load_ensemble(targets: list[str | Path], device: str | torch.device = "cpu") -> TrainedModel:
    """The ensemble of ``targets`` as one :class:`TrainedModel` (config, rate, classes of the first member)."""
    members = load_members(targets, device)
    model = EnsembleClassifier([m.model for m in members]).to(device).eval()
    return dataclasses.replace(members[0], model=model)  # type: ignore[arg-type]
