"""The one batched inference routine: windows (or their cached encoder features) -> view logits.

Validation, test, ``harvit evaluate``, predict, export checks and the profiler all go through
:func:`view_logits_batches`; :func:`evaluate_split` adds the window-level loss and accuracy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harvit.data import Windows
from harvit.features.rocket import SideRows
from harvit.models.classifier import WindowClassifier, aggregate_views
from harvit.models.loading import TrainedModel
from harvit.utils.errors import HarvitError
from harvit.utils.runtime import module_device


@dataclass
class Split:
    """One split on the device: x [N, C, T], y [N]; ``feats`` [N, V, D] when cached; ``stats``: the side features
    (indexing rows gives float32 [b, F]: a tensor, or :class:`~harvit.features.rocket.SideRows`)."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    subjects: list[int]
    feats: torch.Tensor | None = None
    stats: torch.Tensor | SideRows | None = None

    @classmethod
    def from_windows(cls, name: str, w: Windows, device: torch.device) -> Split:
        return cls(name, torch.from_numpy(w.x).to(device), torch.from_numpy(w.y).to(device), w.subjects())

    def __len__(self) -> int:
        return int(self.y.shape[0])


def run_batches(fn: Callable[[slice], torch.Tensor], n_rows: int, rows_per_batch: int,
                progress: Callable[[int], None] | None = None, first_row: int = 0
                ) -> Iterator[tuple[slice, torch.Tensor]]:
    """The one batched inference loop: ``fn(rows)`` under ``torch.no_grad`` for consecutive row slices.

    Args:
        fn: maps a slice of rows (windows) to a tensor whose first dimension is the slice's length.
        n_rows: rows in all (the end); rows_per_batch: rows per call (>= 1); first_row: where to start
            (a rank's share of the rows begins there).
        progress: called with the number of rows done after each batch (e.g. a progress bar's update).

    Yields:
        (rows, fn(rows)) in order.
    """
    for start in range(first_row, n_rows, max(1, rows_per_batch)):
        rows = slice(start, min(start + max(1, rows_per_batch), n_rows))
        with torch.no_grad():
            out = fn(rows)
        if progress is not None:
            progress(rows.stop - rows.start)
        yield rows, out


class Ranks(Protocol):
    """The processes an evaluation is shared by (:class:`harvit.training.distributed.Dist` is one)."""

    @property
    def enabled(self) -> bool: ...  # False: one process, nothing to share

    @property
    def rank(self) -> int: ...

    def batch_rows(self, n_rows: int, rows_per_batch: int) -> list[slice]: ...  # every rank's rows

    def gather_rows(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor: ...  # all ranks' rows


def view_logits_batches(model: WindowClassifier, split: Split, images_per_batch: int,
                        autocast: Callable[[], contextlib.AbstractContextManager], rows: slice | None = None
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (view logits [b, V, K] float32, labels [b]) over the split (or its ``rows``), in order.

    Reads the split's cached encoder features when present, else makes the images; the window
    statistics are the split's precomputed ones when present, else computed by the model.
    """
    n_views = model.n_views

    def logits_of(rows: slice) -> torch.Tensor:
        stats = split.stats[rows] if split.stats is not None else None
        with autocast():
            if split.feats is not None:
                f = split.feats[rows].to(split.y.device, non_blocking=True)
                s = stats.repeat_interleave(n_views, dim=0) if stats is not None else None
                return model.net.classify(f.view(-1, f.shape[-1]), s).view(f.shape[0], n_views, -1).float()
            return model.view_logits(split.x[rows], stats).float()

    rows = rows or slice(0, len(split))
    for batch, logits in run_batches(logits_of, rows.stop, images_per_batch // n_views, first_row=rows.start):
        yield logits, split.y[batch]


def evaluate_split(model: WindowClassifier, split: Split, images_per_batch: int,
                   autocast: Callable[[], contextlib.AbstractContextManager], ranks: Ranks | None = None
                   ) -> dict[str, Any]:
    """Window-level loss/accuracy plus predictions: keys loss, acc, view_acc, y_true, y_pred, log_probs.

    With ``ranks`` (several processes) each rank computes the view logits of its whole batches and the
    logits [N, V, K] are gathered, so every rank scores all N windows batch by batch exactly as one
    process does: the same numbers, no padded duplicates.
    """
    was_training = model.training
    model.eval()
    rows_per_batch = max(1, images_per_batch // model.n_views)
    shares = ranks.batch_rows(len(split), rows_per_batch) if ranks is not None and ranks.enabled else None
    mine = shares[ranks.rank] if shares else None
    parts = [logits for logits, _ in view_logits_batches(model, split, images_per_batch, autocast, mine)]
    model.train(was_training)
    all_logits = torch.cat(parts) if parts else torch.zeros(0, model.n_views, 0, device=split.y.device)
    if shares:
        all_logits = ranks.gather_rows(all_logits, [s.stop - s.start for s in shares])
    loss_sum, view_correct, n_view = 0.0, 0, 0
    ys, preds, logps = [], [], []
    for start in range(0, len(split), rows_per_batch):
        logits, y = all_logits[start:start + rows_per_batch], split.y[start:start + rows_per_batch]
        b, v, k = logits.shape
        yv = y.repeat_interleave(v)
        loss_sum += float(F.cross_entropy(logits.reshape(b * v, k), yv, reduction="sum"))
        view_correct += int((logits.argmax(-1).reshape(-1) == yv).sum())
        n_view += b * v
        lp = aggregate_views(logits)
        ys.append(y.cpu())
        preds.append(lp.argmax(-1).cpu())
        logps.append(lp.cpu())
    y_true = torch.cat(ys) if ys else torch.zeros(0, dtype=torch.long)
    y_pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    return {
        "loss": loss_sum / max(1, n_view),
        "acc": float((y_true == y_pred).float().mean()) if len(y_true) else 0.0,
        "view_acc": view_correct / max(1, n_view),
        "y_true": y_true,
        "y_pred": y_pred,
        "log_probs": torch.cat(logps) if logps else torch.zeros(0),
    }


# ---- Python API: any window model, any loader ----------------------------------------------
# ---------------------------------------------------------------------------------------------
# Python API: any model, any loader
# ---------------------------------------------------------------------------------------------
class WindowLoader:
    """Batches ``(x [b, C, T] float32, y [b] int64)`` of a :class:`~harvit.data.Windows`, in order.

    The whole window set is copied to ``device`` once; a batch is a slice, so iterating costs no
    host-to-device copies. Iterable any number of times; ``len()`` is the number of batches.
    """

    def __init__(self, windows: Windows, batch_size: int, device: str | torch.device = "cpu") -> None:
        if batch_size < 1:
            raise HarvitError(f"batch size: got {batch_size!r}, expected >= 1")
        self.batch_size = int(batch_size)
        self.x = torch.from_numpy(windows.x).to(device)
        self.y = torch.from_numpy(windows.y).to(device)

    def __len__(self) -> int:
        return -(-int(self.y.shape[0]) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, int(self.y.shape[0]), self.batch_size):
            yield self.x[start:start + self.batch_size], self.y[start:start + self.batch_size]


def window_loader(windows: Windows, batch_size: int, device: str | torch.device = "cpu") -> WindowLoader:
    """Batches ``(x [b, C, T], y [b])`` of ``windows`` on ``device`` (no DataLoader, no workers)."""
    return WindowLoader(windows, batch_size, device)


@torch.no_grad()
def evaluate_model(model: nn.Module, loader: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted labels of every window the loader yields.

    Args:
        model: maps windows x [B, C, T] to class scores [B, K] (logits or log-probabilities,
            e.g. a :class:`~harvit.models.classifier.WindowClassifier`). Run in eval mode; its mode is restored.
        loader: iterable of ``(x [B, C, T], y [B])`` tensors (or arrays), e.g. a
            ``torch.utils.data.DataLoader`` over a ``TensorDataset`` or :func:`window_loader`.
            Batches are moved to the model's device.

    Returns:
        ``(y_true, y_pred)``: int64 numpy arrays [N].
    """
    device = module_device(model)
    was_training = model.training
    model.eval()
    ys: list[np.ndarray] = []
    preds: list[np.ndarray] = []
    try:
        for batch in loader:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise HarvitError("evaluate_model: the loader must yield (x, y) pairs")
            x, y = torch.as_tensor(batch[0]), torch.as_tensor(batch[1])
            if device is not None:
                x = x.to(device, non_blocking=True)
            scores = model(x.float())
            if scores.ndim != 2 or scores.shape[0] != x.shape[0]:
                raise HarvitError(f"evaluate_model: the model returned shape {list(scores.shape)} for "
                                  f"{x.shape[0]} windows; expected scores [B, n_classes]")
            preds.append(scores.argmax(dim=-1).cpu().numpy().astype(np.int64))
            ys.append(y.cpu().numpy().astype(np.int64).reshape(-1))
    finally:
        model.train(was_training)
    if not ys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ys), np.concatenate(preds)


def window_log_probs(trained: TrainedModel, windows: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """Log-probabilities float32 [N, K] of windows [N, C, T] (NumPy, any float dtype) of a trained model,
    computed in batches of ``batch_size`` windows (default: ``--eval-batch-size`` images) on the model's device."""
    model = trained.model
    device = module_device(model)
    if batch_size is None:
        batch_size = max(1, int(trained.config.eval_batch_size) // max(1, model.n_views))

    def log_probs(rows: slice) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(windows[rows], dtype=np.float32)).to(device)
        return model(x).float().cpu()

    out = [lp.numpy() for _, lp in run_batches(log_probs, len(windows), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, len(trained.classes)), np.float32)
