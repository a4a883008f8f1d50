"""What reading each file of a folder found, said once for the folder.

A data set of 46 files, each with its time in nanoseconds and its activities appended one after another,
once logged three lines a file ("time column 'time' is in ns", "time steps back 8 time(s)", "split into 18
pieces") on every load. :class:`FileNotes` gathers such notes while the files are read and logs each once:
as before for a single file, else with the number of files and the counts summed.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class FileNotes:
    """Notes per file, gathered by text; :meth:`log` says each once."""

    def __init__(self) -> None:
        self._notes: dict[str, tuple[list[str], list[int]]] = {}

    def add(self, where: str, text: str, *counts: int) -> None:
        """Note ``text`` for the file ``where``; ``counts`` fill its ``{}`` fields, summed over the files."""
        files, sums = self._notes.setdefault(text, ([], [0] * len(counts)))
        files.append(where)
        for i, c in enumerate(counts):
            sums[i] += int(c)

    def log(self) -> None:
        """Log every note once (``path: note`` for one file, ``N files (first, ...): note`` for more); forget them."""
        for text, (files, sums) in self._notes.items():
            said = text.format(*sums) if sums else text
            if len(files) == 1:
                log.info("%s: %s", files[0], said)
            else:
                log.info("%d files (%s, ...): %s", len(files), files[0], said)
        self._notes.clear()
