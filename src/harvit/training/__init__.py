"""Training: build a run from a config (:mod:`.run`), the loop (:mod:`.loop`), the step (:mod:`.step`),
state and checkpoints, optimiser and schedule, the feature cache, interrupts and tracking."""

from harvit.training.interrupts import Interrupted
from harvit.training.loop import fit, train
from harvit.training.results import TrainingResults
from harvit.training.run import Run, build_run

__all__ = ["Interrupted", "Run", "TrainingResults", "build_run", "fit", "train"]
