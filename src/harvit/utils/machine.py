"""What machine a figure was measured on: CPU model, its vector flags, cores, library versions, BLAS.

Benchmarks record :func:`machine_info` beside each figure and print :func:`describe_machine`; the kernel
probes (:mod:`harvit.utils.kernels`) key their cached choices by :func:`fingerprint`, so a choice made on one
CPU, library build or instruction-set cap is never reused on another.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import torch
from threadpoolctl import threadpool_info

FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni",
         "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "asimddp", "sve")
"""The CPU flags that decide which kernels are fast (x86 vector widths, int8 dot products, AMX; ARM's)."""
CAP_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                 "OPENBLAS_CORETYPE", "MKL_DEBUG_CPU_TYPE")
"""Environment variables that cap the instruction set torch, oneDNN, MKL or OpenBLAS use."""

_CHOSEN: dict[str, str] = {}


def record_kernel(task: str, choice: str) -> None:
    """Note that ``task`` (e.g. ``ridge Gram``) runs on kernel ``choice`` in this process (for :func:`chosen`)."""
    _CHOSEN[task] = choice


def chosen() -> dict[str, str]:
    """The kernel each task chose so far in this process, by task."""
    return dict(_CHOSEN)


KERNEL_LINE = re.compile(r"^(?P<task>[A-Za-z][\w ]*?): (?P<choice>[\w.]+)\b.*\((?:forced|.*probed (?:now|earlier on "
                         r"this machine))\)$")
"""A line that :func:`harvit.utils.kernels.choose` logs: ``ridge Gram: float32 syrk (int8 ... slower here; probed
now)``."""


def kernels_from_log(lines: Iterable[str]) -> dict[str, str]:
    """The kernel each task chose, read from a harvit log's lines (for a benchmark that ran harvit in a child
    process), by task."""
    found = {}
    for line in lines:
        m = KERNEL_LINE.match(line.strip())
        if m:
            found[m.group("task")] = m.group("choice")
    return found


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """(CPU model name, all flags) from ``/proc/cpuinfo`` where there is one, else from :mod:`platform`."""
    model, flags = "", set()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model or platform.processor() or platform.machine(), frozenset(flags)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s, else the platform's)."""
    return _cpuinfo()[0]


def cpu_flags() -> list[str]:
    """The :data:`FLAGS` this CPU has, in that order (empty where the OS does not list flags)."""
    have = _cpuinfo()[1]
    return [f for f in FLAGS if f in have]


def instruction_caps() -> dict[str, str]:
    """The instruction-set caps set in the environment (:data:`CAP_VARIABLES`), by variable."""
    return {v: os.environ[v] for v in CAP_VARIABLES if os.environ.get(v)}


def blas_info() -> list[dict[str, Any]]:
    """Each BLAS/OpenMP library loaded in this process: its API, implementation, version, threads and the
    architecture it dispatched to (threadpoolctl's view)."""
    keep = ("user_api", "internal_api", "version", "num_threads", "architecture", "threading_layer")
    return [{k: info[k] for k in keep if info.get(k) is not None} for info in threadpool_info()]


def torch_capability() -> str:
    """The vector ISA torch's own kernels dispatch to (``AVX2``, ``AVX512``, ...; ``ATEN_CPU_CAPABILITY``
    lowers it)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def cores() -> dict[str, int]:
    """Logical CPUs of the machine, those this process may run on, and torch's threads."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {"logical": os.cpu_count() or 1, "usable": usable, "torch_threads": torch.get_num_threads()}


def fingerprint() -> str:
    """A short hash of what decides a kernel's speed: CPU model and flags, the instruction-set caps, torch's
    capability and whether oneDNN is on, threads, and the torch / numpy / scipy versions."""
    parts = {"cpu": cpu_model(), "flags": cpu_flags(), "caps": instruction_caps(), "isa": torch_capability(),
             "mkldnn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
             "threads": torch.get_num_threads(), "torch": torch.__version__, "numpy": np.__version__,
             "scipy": scipy.__version__, "machine": platform.machine()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def machine_info(kernels: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-able record of the machine and the software: CPU model, :data:`FLAGS` present, cores,
    instruction-set caps, torch's capability, library versions, BLAS libraries, and ``kernels`` (the kernel
    each probe chose; default: those chosen so far in this process, :func:`chosen`)."""
    if kernels is None:
        kernels = chosen()
    return {"cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "cores": cores(), "caps": instruction_caps(),
            "torch_capability": torch_capability(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "blas": blas_info(), "kernels": dict(kernels)}


def describe_machine(info: dict[str, Any] | None = None) -> str:
    """One line naming the CPU, its flags, cores, caps, library versions, BLAS and the chosen kernels."""
    info = info or machine_info()
    blas = ", ".join(f"{b.get('internal_api', '?')} {b.get('version', '')} ({b.get('architecture', '?')})".strip()
                     for b in info["blas"] if b.get("user_api") == "blas")
    caps = " ".join(f"{k}={v}" for k, v in info["caps"].items())
    kernels = ", ".join(f"{k}: {v}" for k, v in info["kernels"].items())
    return (f"{info['cpu_model']} [{' '.join(info['cpu_flags']) or 'no flags listed'}], "
            f"{info['cores']['usable']}/{info['cores']['logical']} cores, torch {info['torch']} "
            f"({info['torch_capability']}), numpy {info['numpy']}, scipy {info['scipy']}, BLAS {blas or '?'}"
            + (f", caps {caps}" if caps else "") + (f", kernels {kernels}" if kernels else ""))
