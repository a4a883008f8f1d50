"""What the profiler measures with: clocks, precision contexts, and peak memory (CUDA allocations, or the
process's resident set on the CPU).

On CUDA the peak of ``torch.cuda.max_memory_allocated`` per measurement; on the CPU the process's
peak resident set (``VmHWM`` from ``/proc/self/status``, reset per measurement through
``/proc/self/clear_refs`` where Linux allows, else ``resource.getrusage``'s lifetime peak).
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import sys

import torch

from harvit.utils.runtime import AutocastFactory


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> str:
    """Start a new peak-memory measurement; returns what :func:`peak_memory_mb` will measure."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return "cuda_max_allocated"
    try:
        with open("/proc/self/clear_refs", "w") as f:  # "5" resets VmHWM to the current RSS
            f.write("5")
        return "process_peak_rss"
    except OSError:
        return "process_lifetime_peak_rss"


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB since :func:`reset_peak_memory` (CUDA allocations, or process RSS on CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux


def median_ms(xs: list[float]) -> float:
    """The median of durations in seconds, in ms (NaN for none)."""
    return 1000.0 * statistics.median(xs) if xs else float("nan")


def autocast_for(device: torch.device, precision: str) -> AutocastFactory:
    """Context factory for ``fp32`` (no autocast), ``bf16`` or ``fp16`` on ``device``."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return lambda: torch.autocast(device.type, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# The profiler
# ---------------------------------------------------------------------------------------------
