"""Runtime set-up shared by every command: device choice, seeds and threads, autocast, parameter counts."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import torch
from threadpoolctl import threadpool_limits
from torch import nn

from harvit.utils.errors import HarvitError
from harvit.utils.logging import log

AutocastFactory = Callable[[], contextlib.AbstractContextManager]


def pick_device(requested: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU (said aloud); ``cuda`` without CUDA is an error."""
    if requested not in ("auto", "cpu", "cuda"):
        raise HarvitError(f"--device: unknown value {requested!r}; expected auto, cpu or cuda")
    if requested == "cuda" and not torch.cuda.is_available():
        raise HarvitError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        log("device: no CUDA device found, running on CPU")
        return torch.device("cpu")
    return torch.device(requested)


def setup_runtime(device: torch.device, seed: int, threads: int = 0, deterministic: bool = False) -> None:
    """Seeds, threads (0: torch's default), determinism, TF32 and cuDNN settings."""
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic


@contextlib.contextmanager
def compute_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads and as many BLAS threads (None or 0: torch's as set),
    restoring both after. Undoes an outer ``threadpool_limits(1)`` (the baselines' default for scikit-learn),
    which also holds torch's OpenMP pool to one thread."""
    before = torch.get_num_threads()
    n = threads or before
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def autocast_factory(device: torch.device, amp: bool = True, amp_dtype: str = "bf16") -> AutocastFactory:
    """A context-manager factory: CUDA autocast in ``amp_dtype`` (bf16 or fp16), or a no-op.

    bf16 falls back to fp16 on GPUs without bf16; CPU and ``amp=False`` (or ``amp_dtype`` fp32) run
    in float32.
    """
    if device.type != "cuda" or not amp or amp_dtype == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if amp_dtype == "bf16" else torch.float16
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        dtype = torch.float16
    return lambda: torch.autocast("cuda", dtype=dtype)


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module without tensors)."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable
