"""Progress of a long step made of blocks: a bar on a terminal, log lines with an ETA in a piped log.

A step that runs past :data:`AFTER_S` seconds says how far it is: on a terminal a tqdm bar (drawn from
then on), in a piped or redirected log one line every :data:`EVERY_S` seconds,
``"ridge Gram: 3/12 blocks, 31 s, about 75 s left"``. A step that finishes sooner prints nothing.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from harvit.utils.logging import is_terminal, log, progress_bar

AFTER_S = 10.0
"""Seconds a step runs silently before it shows progress."""
EVERY_S = 10.0
"""Seconds between two progress lines in a piped log."""


class Progress:
    """Blocks done of one step, with an ETA from the work done so far.

    Args:
        desc: the step as the log names it (``"ridge Gram"``).
        total: blocks in the step (an upper bound is fine: a search that may stop early).
        unit: what a block is called in the log (``"blocks"``, ``"penalties"``, ``"windows"``).
        work: the step's total work in any unit, where blocks differ in cost (default: ``total``); each
            :meth:`update` then says how much of it the block did, and the ETA follows the work.
        after_s, every_s: override :data:`AFTER_S` and :data:`EVERY_S`.
        at_most: ``total`` is an upper bound (the step may stop early): the ETA reads "at most".
    """

    def __init__(self, desc: str, total: int, unit: str = "blocks", work: float | None = None,
                 after_s: float | None = None, every_s: float | None = None, at_most: bool = False) -> None:
        self.desc, self.total, self.unit, self.at_most = desc, int(total), unit, at_most
        self.work = float(work if work is not None else total)
        self.after_s = AFTER_S if after_s is None else after_s
        self.every_s = EVERY_S if every_s is None else every_s
        self.done, self.work_done = 0, 0.0
        self.t0 = time.perf_counter()
        self.last_line = self.t0
        self.lines = 0
        self.bar: Any = progress_bar(True, self.total, desc, unit=unit.rstrip("s") or unit, delay=self.after_s)
        self.piped = self.bar is None and not is_terminal()

    def eta(self) -> float | None:
        """Seconds left, from the time per unit of work so far (None before any work is done)."""
        if self.work_done <= 0:
            return None
        elapsed = time.perf_counter() - self.t0
        return max(0.0, elapsed * (self.work - self.work_done) / self.work_done)

    def update(self, n: int = 1, work: float | None = None) -> None:
        """``n`` more blocks done, ``work`` of the step's work (default: ``n``)."""
        self.done += n
        self.work_done += n if work is None else work
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if self.piped and now - self.t0 >= self.after_s and now - self.last_line >= self.every_s:
            self.last_line = now
            self.lines += 1
            eta = self.eta()
            about = "at most" if self.at_most else "about"
            left = f", {about} {eta:.0f} s left" if eta is not None and self.done < self.total else ""
            log(f"{self.desc}: {self.done}/{self.total} {self.unit}, {now - self.t0:.0f} s{left}")

    def close(self) -> None:
        """End the bar (a terminal's); a piped log got its lines already."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
