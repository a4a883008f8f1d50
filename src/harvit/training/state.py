"""The loop state and the random-number state a checkpoint carries, so a resumed run continues exactly."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch


def rng_state(aug_gen: torch.Generator | None) -> dict[str, Any]:
    """torch's CPU and CUDA generator states, and the augmentation generator's."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if aug_gen is not None:
        state["augment"] = aug_gen.get_state()
    return state


def set_rng_state(state: dict[str, Any], aug_gen: torch.Generator | None) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if aug_gen is not None and "augment" in state:
        aug_gen.set_state(state["augment"].to(aug_gen.get_state().device))


@dataclass
class TrainState:
    """Where a run stands: what ``latest.pt`` carries beside the weights and optimiser.

    ``epoch`` counts completed epochs; ``step_in_epoch`` the optimiser steps done in the current one;
    ``partial`` the running sums of an epoch cut short (loss_sum, correct, seen, time_s).
    ``phase``: ``select`` (training on the training split, validated each epoch: model selection) or
    ``refit`` (training again on training + validation windows for the selected number of epochs);
    ``selection`` (refit only): what the selection phase chose (:func:`harvit.training.loop.selection_summary`).
    """

    epoch: int = 0
    step_in_epoch: int = 0
    partial: dict[str, float] = field(default_factory=dict)
    best_val_acc: float = -1.0
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_before: float = 0.0
    finished: bool = False
    micro_batch: int = 1
    events: list[str] = field(default_factory=list)
    phase: str = "select"
    selection: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's loop fields (events stay in the results, as before)."""
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "partial": dict(self.partial),
                "best_val_acc": self.best_val_acc, "best_epoch": self.best_epoch,
                "best_val_loss": self.best_val_loss, "bad_epochs": self.bad_epochs,
                "history": list(self.history), "finished": self.finished, "micro_batch": self.micro_batch,
                "phase": self.phase, "selection": dict(self.selection)}

    @classmethod
    def from_checkpoint(cls, c: dict[str, Any], default_micro_batch: int) -> TrainState:
        return cls(epoch=int(c["epoch"]), step_in_epoch=int(c.get("step_in_epoch", 0)),
                   partial=dict(c.get("partial", {})), best_val_acc=float(c["best_val_acc"]),
                   best_epoch=int(c["best_epoch"]),
                   best_val_loss=float(c.get("best_val_loss", float("inf"))), bad_epochs=int(c["bad_epochs"]),
                   history=list(c["history"]),
                   elapsed_before=float(c.get("elapsed_s", 0.0)), finished=bool(c.get("finished", False)),
                   micro_batch=int(c.get("micro_batch", default_micro_batch)), phase=str(c.get("phase", "select")),
                   selection=dict(c.get("selection", {})))
