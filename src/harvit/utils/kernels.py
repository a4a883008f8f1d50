"""Kernels chosen by what this machine does, measured: a short probe at first use, cached per machine.

Where a computation has alternative kernels whose speed depends on the CPU (an int8 product that is fast
only with VNNI instructions, a float32 one that is fast everywhere), :func:`choose` times each on a small
problem the first time it is needed, keeps the fastest, logs the choice once with the ratio it measured,
and stores it in ``$HARVIT_CACHE_DIR/kernels.json`` under the machine's
:func:`~harvit.utils.machine.fingerprint` (CPU model and flags, instruction-set caps, threads, library
versions), so later runs on the same machine skip the probe.

A choice can be forced: by the caller's ``forced`` argument, else by the task's environment variable
(e.g. ``HARVIT_GRAM_KERNEL=int8|float32``; ``auto`` or unset: probe).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log
from harvit.utils.machine import fingerprint, record_kernel
from harvit.utils.paths import cache_dir

CACHE_FILE = "kernels.json"
"""The file, under the cache folder, that keeps each machine's probed choices."""
DECISIVE = 4.0
"""A ratio of timings this lopsided settles a probe on its first, smallest problem."""
MIN_S = 0.05
"""Seconds of timed runs per candidate in a probe (:func:`time_cases`)."""

_DECIDED: dict[tuple[str, str], str] = {}


def cache_path() -> Path:
    """``kernels.json`` in harvit's cache folder (:func:`harvit.utils.paths.cache_dir`)."""
    return cache_dir() / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(key: str, task: str, record: dict[str, Any]) -> None:
    data = _read_cache()
    entry = data.get(key) if isinstance(data.get(key), dict) else {}
    entry[task] = record
    data[key] = entry
    try:
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        write_json(cache_path(), data)
    except (HarvitError, OSError) as e:
        log(f"{task}: kernel choice not stored ({e})")


def time_cases(cases: Mapping[str, Callable[[], Any]], min_s: float = MIN_S, min_runs: int = 5,
               max_runs: int = 50) -> dict[str, float]:
    """Best wall seconds of each callable over at least ``min_runs`` timed runs, repeated until its runs add up
    to ``min_s`` (at most ``max_runs``), after one untimed warm-up call (thread pools, JIT kernels). The best
    of many short runs is what a busy machine's scheduler disturbs least (a BLAS thread that waits for a
    descheduled sibling can make one run a hundred times slower). A case that raises is left out."""
    best: dict[str, float] = {}
    for name, fn in cases.items():
        try:
            fn()
        except (RuntimeError, AttributeError, NotImplementedError, TypeError, ValueError):
            continue
        spent, runs, fastest = 0.0, 0, float("inf")
        while runs < min_runs or (spent < min_s and runs < max_runs):
            t0 = time.perf_counter()
            fn()
            took = time.perf_counter() - t0
            spent, runs, fastest = spent + took, runs + 1, min(fastest, took)
        best[name] = fastest
    return best


def ratio_text(choice: str, seconds: Mapping[str, float | str], labels: Mapping[str, str]) -> str:
    """``"<kernel> measured <ratio>x slower here"``: how much slower the other candidates were than ``choice`` (or why
    one was unusable, where the probe gave a reason instead of a time)."""
    others = [f"{labels.get(k, k)} measured {s / max(float(seconds[choice]), 1e-12):.1f}x slower here"
              if not isinstance(s, str) else f"{labels.get(k, k)}: {s}"
              for k, s in seconds.items() if k != choice]
    return "; ".join(others) or "the only one available"


def choose(task: str, candidates: tuple[str, ...], probe: Callable[[], Mapping[str, float | str]], env: str,
           forced: str | None = None, labels: Mapping[str, str] | None = None) -> str:
    """The kernel ``task`` should run on this machine, one of ``candidates``.

    Args:
        task: what it is for, as the log says it (``"ridge Gram"``); also the cache entry's name.
        candidates: the kernel names, the last the default where nothing can be measured.
        probe: times every candidate on a small problem: seconds by name, or a string saying why a candidate
            is unusable here (a missing name: unavailable); called only when neither ``forced`` nor ``env``
            decides and the machine has no cached choice.
        env: the environment variable that forces a choice (``auto`` or unset: probe).
        forced: a choice that overrides ``env``, or None / ``"auto"``.
        labels: how the log names each kernel (default: its name).

    Returns:
        The chosen name. The choice is logged once per process and recorded for
        :func:`harvit.utils.machine.chosen`.

    Raises:
        HarvitError: ``forced`` or ``env`` names no candidate.
    """
    labels = labels or {}
    want = forced if forced not in (None, "", "auto") else os.environ.get(env, "").strip().lower() or "auto"
    if want != "auto":
        if want not in candidates:
            source = "the gram_kernel argument" if forced not in (None, "", "auto") else env
            raise HarvitError(f"{source}: unknown kernel {want!r} for {task}; expected auto, "
                              + ", ".join(candidates))
        _announce(task, want, f"{labels.get(want, want)} (forced)")
        return want
    key = fingerprint()
    if (key, task) in _DECIDED:
        return _DECIDED[(key, task)]
    cached = _read_cache().get(key, {}).get(task) if isinstance(_read_cache().get(key), dict) else None
    if isinstance(cached, dict) and cached.get("choice") in candidates:
        choice, seconds, how = cached["choice"], cached.get("seconds", {}), "probed earlier on this machine"
    else:
        seconds = {k: v if isinstance(v, str) else float(v) for k, v in probe().items() if k in candidates}
        timed = {k: v for k, v in seconds.items() if not isinstance(v, str)}
        choice = min(timed, key=timed.__getitem__) if timed else candidates[-1]
        how = "probed now"
        _store(key, task, {"choice": choice, "seconds": seconds, "measured_at": time.time()})
    _DECIDED[(key, task)] = choice
    why = ratio_text(choice, seconds, labels) if choice in seconds else "nothing measured"
    _announce(task, choice, f"{labels.get(choice, choice)} ({why}; {how})")
    return choice


_ANNOUNCED: set[tuple[str, str]] = set()


def _announce(task: str, choice: str, text: str) -> None:
    record_kernel(task, choice)
    if (task, text) not in _ANNOUNCED:
        _ANNOUNCED.add((task, text))
        log(f"{task}: {text}")


def forget() -> None:
    """Forget this process's decisions (the cache file is kept): the next :func:`choose` reads it or probes."""
    _DECIDED.clear()
    _ANNOUNCED.clear()
