"""What a run leaves for people to read while it trains: metrics.jsonl, TensorBoard scalars, log lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harvit.config import Config
from harvit.evaluation.metrics import METRICS
from harvit.utils.atomic import write_text
from harvit.utils.logging import log

#: The per-epoch values written as TensorBoard scalars (``train_loss`` -> ``train/loss``).
SCALARS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "samples_per_s")


class Tracker:
    """metrics.jsonl (rewritten atomically each epoch) and, with ``--tensorboard``, a SummaryWriter.

    ``writes=False`` (ranks other than 0 under torchrun): no SummaryWriter, no files. The refit phase
    writes refit_metrics.jsonl and logs/refit/ (it has no validation values)."""

    def __init__(self, cfg: Config, run_dir: Path, start_epoch: int, writes: bool = True, phase: str = "select"
                 ) -> None:
        refit = phase == "refit"
        self.path = run_dir / ("refit_metrics.jsonl" if refit else "metrics.jsonl")
        self.writer = None
        if cfg.tensorboard and writes:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log("tensorboard: not installed; scalars are in metrics.jsonl only")
            else:
                self.writer = SummaryWriter(log_dir=str(run_dir / "logs" / ("refit" if refit else "")),
                                            purge_step=start_epoch + 1 if start_epoch else None)

    def epoch(self, history: list[dict[str, Any]], epochs: int, improved: bool) -> None:
        """Record the last epoch of ``history``: metrics.jsonl, TensorBoard, one log line."""
        r = history[-1]
        write_text(self.path, "".join(json.dumps(h) + "\n" for h in history))
        scores = " ".join(f"{m.display} {r[f'val_{m.name}']:.4f}" for m in METRICS.values() if f"val_{m.name}" in r)
        val = (f"val loss {r['val_loss']:.4f} {scores}{' *' if improved else ''}" if "val_acc" in r
               else "refit (no validation)")
        log(f"{'refit ' if 'val_acc' not in r else ''}epoch {r['epoch']}/{epochs}: train loss {r['train_loss']:.4f} "
            f"acc {r['train_acc']:.4f} | {val} | lr {r['lr']:.2e} | {r['epoch_time_s']:.1f}s, "
            f"{r['samples_per_s']:.0f} samples/s")
        if self.writer is not None:
            for k in (k for k in (*SCALARS, *(f"val_{m}" for m in METRICS)) if k in r):
                self.writer.add_scalar(k.replace("_", "/", 1) if "_" in k else k, r[k], r["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def resume_hint(run_dir: Path, epoch: int, step_in_epoch: int) -> str:
    """The line an interrupted run ends with: what was saved and the command that continues it."""
    args = " ".join(a for a in sys.argv[1:] if a != "--resume")
    prog = ("python -m harvit" if sys.argv[0].endswith("__main__.py")
            else "python main.py" if sys.argv[0].endswith("main.py") else "harvit")
    return (f"interrupted: saved {run_dir / 'latest.pt'} (epoch {epoch + 1}, step {step_in_epoch}); "
            f"resume with: {prog} {args} --resume".replace("  ", " "))
