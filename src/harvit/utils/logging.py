"""One logger for the package, and progress bars only where a person watches.

Every module logs through :func:`log` (or ``logging.getLogger("harvit...")``); the CLI calls
:func:`setup_logging` once. Code that calls harvit from Python without the CLI still sees the lines
on stdout, unless the application gave the ``harvit`` logger handlers of its own.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from tqdm.auto import tqdm

LOGGER_NAME = "harvit"


class _StreamHandler(logging.StreamHandler):
    """A handler that writes to the *current* ``sys.stdout`` or ``sys.stderr`` (so redirection and capture
    work); progress lines (below WARNING) go to stdout, warnings and errors to stderr."""

    def __init__(self, to_stderr: bool) -> None:
        super().__init__()
        self.to_stderr = to_stderr
        self.addFilter(lambda r: (r.levelno >= logging.WARNING) == to_stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr if self.to_stderr else sys.stdout
        super().emit(record)


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    """Send harvit's log records (data download and preparation included) to the terminal: one plain line
    each, progress on stdout, warnings (``warning: ...``) on stderr."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not any(isinstance(h, _StreamHandler) for h in logger.handlers):
        for to_stderr, fmt in ((False, "%(message)s"), (True, "warning: %(message)s")):
            handler = _StreamHandler(to_stderr)
            handler.setFormatter(logging.Formatter(fmt))
            logger.addHandler(handler)
    logger.propagate = False
    return logger


def set_log_prefix(prefix: str, quiet: bool = False) -> None:
    """Start every line with ``prefix`` (e.g. which rank speaks); ``quiet`` keeps warnings only."""
    logger = setup_logging(logging.WARNING if quiet else logging.INFO)
    for h in logger.handlers:
        if isinstance(h, _StreamHandler):
            kind = "warning: " if h.to_stderr else ""
            h.setFormatter(logging.Formatter(prefix.replace("%", "%%") + kind + "%(message)s"))


def log(msg: str) -> None:
    """Log a progress line at INFO on the ``harvit`` logger (stdout by default)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:  # not set up by the CLI or the application: plain lines on stdout
        setup_logging()
    logger.info(msg)


def is_terminal() -> bool:
    """Whether stderr (where progress bars draw) is a terminal."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(enabled: bool, total: int | None, desc: str, initial: int = 0, unit: str = "step",
                 **kwargs: Any) -> Any:
    """A tqdm bar on a terminal when ``enabled``; else None (callers then log plain lines instead).

    A piped or redirected run gets no bar frames in its log file. ``kwargs`` go to tqdm (e.g.
    ``unit_scale=True`` for bytes).
    """
    if not enabled or not is_terminal():
        return None
    return tqdm(total=total, desc=desc, initial=initial, leave=False, dynamic_ncols=True, unit=unit, **kwargs)
