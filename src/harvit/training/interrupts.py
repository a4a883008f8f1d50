"""Interrupts: SIGINT/SIGTERM set a flag; the loop saves ``latest.pt`` at the next step boundary and stops."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from typing import Any


class Interrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised after SIGINT/SIGTERM once latest.pt is saved; ``code`` is 130 or 143."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StopFlag:
    """Set by SIGINT/SIGTERM; the loop saves at the next step boundary."""

    signum: int | None = None
    previous: dict[int, Any] = field(default_factory=dict)

    def install(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            if self.signum is not None:  # a second signal: leave at once
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            self.signum = signum

        for s in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                self.previous[s] = signal.signal(s, handler)

    def restore(self) -> None:
        for s, h in self.previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(s, h)
