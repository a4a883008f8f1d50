"""Where a table's subjects come from: its subject column, the first folder level, the file name, or nowhere.

``--subject-from auto`` takes the subject column; without one, files that all lie in subfolders of the
data set's folder (``s01/s01_03.csv``, ``P007/day2.parquet``: how many public data sets ship) take
the first folder level under it as their subject; else the windows carry no subject. The log says
which was used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)


def subject_source(flag: str, column: str | None, files: list[Path], root: Path | None) -> str:
    """Where subjects come from: ``column``, ``folder``, ``file`` or ``none`` (``--subject-from``; ``auto``: the
    subject column, else the first folder level when every file lies in a subfolder of ``root``, else none)."""
    base = root if root is not None and root.is_dir() else _common_folder(files)
    nested = all(len(f.relative_to(base).parts) > 1 for f in files)
    if flag == "auto":
        flag = "column" if column else ("folder" if nested else "none")
        if flag == "folder":
            log.info("subjects: the first folder level under %s (no subject column; --subject-from overrides)", base)
    elif flag == "column" and not column:
        raise HarvitError("--subject-from column: no subject column (looked for subject, user, participant; name it "
                          "with --subject-column)")
    elif flag == "folder" and not nested:
        loose = next(f for f in files if len(f.relative_to(base).parts) == 1)
        raise HarvitError(f"--subject-from folder: {loose} lies directly in {base}, not in a subject's folder")
    if flag in ("file", "folder") or (flag == "none" and column):
        log.info("subjects: %s (--subject-from %s)%s", {"file": "each file's name", "folder": "the first folder "
                 "level", "none": "none"}[flag], flag, f"; column {column!r} is not used" if column else "")
    return flag


def file_subject(path: Path, source: str, files: list[Path], root: Path | None) -> str:
    """A file's subject name: its first folder under the data set's folder, or its name without the suffix."""
    base = root if root is not None and root.is_dir() else _common_folder(files)
    if source == "folder":
        return path.relative_to(base).parts[0]
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet"):
        name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
    return name


def _common_folder(files: list[Path]) -> Path:
    """The deepest folder holding every file."""
    return Path(os.path.commonpath([str(f.parent) for f in files]))
