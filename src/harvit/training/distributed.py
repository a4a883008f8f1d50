"""Many processes, many machines: torchrun's environment -> a process group, and the few collectives the
loop needs.

Under torchrun (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the environment) :func:`start` joins the
process group: NCCL when the run's device is CUDA (one GPU per local rank, ``cuda:LOCAL_RANK``), gloo on
the CPU. Outside torchrun it returns a :class:`Dist` of one process whose helpers return their input
without communicating, so a single-process run does exactly what it did before.

Two rules keep the ranks in step:

* every rank reaches every collective: no collective sits behind a rank-local ``if``;
* a block that may raise :class:`HarvitError` on some ranks only (a write on rank 0, a file a rank cannot
  read, out of memory) runs inside :meth:`Dist.agreed` or :meth:`Dist.on_main`: at its end the ranks
  exchange their errors and all raise the first, so no rank waits at a collective for one that left.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as tdist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from harvit.utils.errors import HarvitError
from harvit.utils.logging import set_log_prefix
from harvit.utils.runtime import pick_device

#: Seconds a collective may wait for the other ranks before it fails (``HARVIT_DIST_TIMEOUT_S``).
DEFAULT_TIMEOUT_S = 600
T = TypeVar("T")


def under_torchrun() -> bool:
    """Whether torchrun (or another launcher that sets ``RANK`` and ``WORLD_SIZE``) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


@dataclass(frozen=True)
class Dist:
    """This process's place among the ranks, and the collectives the loop uses.

    ``enabled`` is False for a plain single-process run: then every helper returns its input.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None
    enabled: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the one rank that writes files and logs progress."""
        return self.rank == 0

    # ---- sharding -----------------------------------------------------------------------------------
    def share(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of one global step's sample ids: [n] -> [n_r].

        Shares differ by at most one id and never repeat one, so the last, partial step is split
        without duplicates (a rank may get none).
        """
        return idx if self.world_size == 1 else idx.tensor_split(self.world_size)[self.rank]

    def batch_rows(self, n_rows: int, rows_per_batch: int) -> list[slice]:
        """Every rank's rows of an inference pass over ``n_rows``: whole batches of ``rows_per_batch``, in
        contiguous runs per rank, so each row is computed in the same batch as in a single process."""
        n_batches = -(-n_rows // max(1, rows_per_batch))
        cuts = [n_batches * r // self.world_size for r in range(self.world_size + 1)]
        return [slice(min(n_rows, a * rows_per_batch), min(n_rows, b * rows_per_batch))
                for a, b in zip(cuts, cuts[1:], strict=False)]

    # ---- collectives --------------------------------------------------------------------------------
    def sum(self, *values: float) -> tuple[float, ...]:
        """Sum each value over the ranks (float64)."""
        if not self.enabled:
            return tuple(values)
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        tdist.all_reduce(t)
        return tuple(t.tolist())

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        return flag if not self.enabled else self.sum(float(flag))[0] > 0

    def all_true(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on every rank."""
        return flag if not self.enabled else self.sum(float(not flag))[0] == 0

    def agreed_signal(self, signum: int | None) -> int | None:
        """The stop signal the ranks agree on (SIGINT before SIGTERM), so all stop at the same step."""
        if not self.enabled:
            return signum
        n_int, n_term = self.sum(signum == signal.SIGINT, signum == signal.SIGTERM)
        return signal.SIGINT if n_int else signal.SIGTERM if n_term else None

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        tdist.all_gather_object(out, obj)
        return out

    def gather_rows(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """Every rank's rows [counts[r], ...] concatenated in rank order: [sum(counts), ...] on every rank.

        Shares are padded to the longest for the exchange and trimmed after: no row is duplicated.
        """
        if not self.enabled:
            return rows
        shapes = self.all_gather_object(tuple(rows.shape[1:]) if len(rows) else None)
        shape = next((s for s in shapes if s is not None), tuple(rows.shape[1:]))
        padded = torch.zeros((max(counts), *shape), dtype=rows.dtype, device=self.device)
        if len(rows):
            padded[:len(rows)] = rows.to(self.device)
        parts = [torch.empty_like(padded) for _ in counts]
        tdist.all_gather(parts, padded)
        return torch.cat([p[:n] for p, n in zip(parts, counts, strict=True)]).to(rows.device)

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's weights and buffers into ``module`` on every rank (in place)."""
        if self.enabled:
            for t in module.state_dict().values():
                tdist.broadcast(t, 0)

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()

    # ---- errors -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def agreed(self) -> Iterator[None]:
        """Run a block that may raise :class:`HarvitError` on some ranks; at its end, if any rank failed,
        every rank raises the first rank's error. The block must hold no collective."""
        if not self.enabled:
            yield
            return
        error = None
        try:
            yield
        except HarvitError as e:
            error = str(e)
        first = next((m for m in self.all_gather_object(error) if m is not None), None)
        if first is not None:
            raise HarvitError(first) from None

    def on_main(self, fn: Callable[..., T], *args: Any) -> T | None:
        """``fn(*args)`` on rank 0 only (a write); its :class:`HarvitError` stops every rank. Returns fn's
        result on rank 0, None on the others."""
        result = None
        with self.agreed():
            if self.is_main:
                result = fn(*args)
        return result

    # ---- the model ----------------------------------------------------------------------------------
    def wrap(self, net: nn.Module) -> DistributedDataParallel | None:
        """``net`` in DistributedDataParallel (its weights broadcast from rank 0), or None in a single process."""
        if not self.enabled:
            return None
        ids = [self.device] if self.device is not None and self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    @staticmethod
    def no_sync(net: nn.Module) -> contextlib.AbstractContextManager:
        """DDP's ``no_sync`` (gradients stay local while a step accumulates), or nothing."""
        return net.no_sync() if isinstance(net, DistributedDataParallel) else contextlib.nullcontext()

    def close(self) -> None:
        """Leave the process group (a no-op in a single process)."""
        if self.enabled and tdist.is_initialized():
            tdist.destroy_process_group()


def start(device_request: str) -> Dist:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU), or a single-process :class:`Dist`.

    Logging is prefixed ``[rank r/W]``; ranks other than 0 log warnings only. A collective waits at most
    ``HARVIT_DIST_TIMEOUT_S`` seconds (default 600) for the other ranks.
    """
    if not under_torchrun():
        return Dist()
    env = os.environ
    try:
        rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0"))
        timeout = float(env.get("HARVIT_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    except ValueError as e:
        raise HarvitError(f"torchrun environment: {e}; expected integer RANK, WORLD_SIZE, LOCAL_RANK and "
                          "seconds in HARVIT_DIST_TIMEOUT_S") from None
    set_log_prefix(f"[rank {rank}/{world}] ", quiet=rank != 0)
    device = pick_device(device_request)
    if device.type == "cuda":
        n_gpus = torch.cuda.device_count()
        if local >= n_gpus:
            raise HarvitError(f"torchrun: local rank {local} has no GPU of its own ({n_gpus} visible); use "
                              f"--nproc_per_node <= {n_gpus}, or --device cpu")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    tdist.init_process_group(backend, timeout=timedelta(seconds=timeout),
                             device_id=device if device.type == "cuda" else None)
    return Dist(rank, world, local, device, enabled=True)
