"""UEA/UCR ``.ts`` files: ``NAME_TRAIN.ts`` with ``NAME_TEST.ts`` beside it (the official split is kept).

Reader choice: aeon's :func:`aeon.datasets.load_from_ts_file` when aeon imports (an optional extra:
it is the maintained reference reader of the archive's format, and it copes with the variants found
in the wild, e.g. missing values as ``?``), else :func:`parse_ts`, a small parser of the format's
spec, so harvit reads ``.ts`` without aeon's heavy dependencies (numba). The tests run both readers
on the same files and require the same arrays.

The spec subset read: ``#`` comment lines; header lines ``@problemName``, ``@timeStamps false``,
``@missing``, ``@univariate`` / ``@dimensions D``, ``@equalLength``, ``@seriesLength``,
``@classLabel true <labels...>``; then ``@data`` and one case per line: D dimensions separated by
``:``, values by ``,``, the class label last. Timestamped series (``@timeStamps true``) are refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)


@dataclass
class TsSplit:
    """One ``.ts`` file: x float32 [N, D, T], labels str [N], class_values from ``@classLabel``."""

    x: np.ndarray
    labels: list[str]
    class_values: list[str]


def ts_pair(path: Path) -> tuple[Path, Path]:
    """(TRAIN, TEST) files for a ``NAME_TRAIN.ts``/``NAME_TEST.ts`` path or a folder holding one pair."""
    if path.is_dir():
        trains = sorted(path.glob("*_TRAIN.ts"))
        if len(trains) != 1:
            raise HarvitError(f"--dataset {path}: expected one NAME_TRAIN.ts in the folder, found {len(trains)}")
        path = trains[0]
    name = path.name
    for own, other in (("_TRAIN.ts", "_TEST.ts"), ("_TEST.ts", "_TRAIN.ts")):
        if name.upper().endswith(own.upper()):
            partner = path.with_name(name[: -len(own)] + other)
            train, test = (path, partner) if own == "_TRAIN.ts" else (partner, path)
            if not partner.is_file():
                raise HarvitError(f"{path}: its partner {partner.name} is missing; expected NAME_TRAIN.ts and "
                                  "NAME_TEST.ts side by side (the archive's official split)")
            return train, test
    raise HarvitError(f"{path}: expected a file named NAME_TRAIN.ts (with NAME_TEST.ts beside it)")


def read_ts(path: Path) -> TsSplit:
    """Read one ``.ts`` file with aeon if it imports, else with :func:`parse_ts`."""
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError:
        return parse_ts(path)
    try:
        x, y, meta = load_from_ts_file(str(path), return_meta_data=True)
    except (OSError, ValueError, IndexError, TypeError) as e:
        raise HarvitError(f"{path}: not a readable .ts file ({str(e).splitlines()[0][:200]})") from None
    if isinstance(x, list) or not meta.get("equallength", True):
        lengths = sorted({int(np.asarray(a).shape[-1]) for a in x})
        raise HarvitError(f"{path}: series of unequal lengths ({lengths[0]}..{lengths[-1]}); expected one length")
    if not meta.get("classlabel", False):
        raise HarvitError(f"{path}: @classLabel is not true; expected class labels")
    x = np.asarray(x, dtype=np.float32)
    return TsSplit(x, [str(v) for v in y], [str(v) for v in meta.get("class_values", [])])


def parse_ts(path: Path) -> TsSplit:
    """Parse a ``.ts`` file by the spec subset in the module docstring (no aeon).

    Raises:
        HarvitError: naming the file and line of the first problem (unequal lengths, unknown label,
            non-numeric value, dimensions not as declared).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise HarvitError(f"{path}: cannot read ({e})") from None
    header: dict[str, list[str]] = {}
    cases: list[list[np.ndarray]] = []
    labels: list[str] = []
    in_data = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise HarvitError(f"{path} line {number}: found {line[:40]!r} before @data; expected @-headers")
            key, *values = line.split()
            key = key[1:].lower()
            if key == "data":
                in_data = True
                _check_header(header, path)
            else:
                header[key] = values
            continue
        *dims, label = line.split(":")
        if label.strip() not in header["classlabel"][1:]:
            raise HarvitError(f"{path} line {number}: label {label.strip()!r} is not declared in @classLabel")
        try:
            series = [np.array(d.split(","), dtype=np.float64) for d in dims]
        except ValueError:
            raise HarvitError(f"{path} line {number}: non-numeric value; expected numbers separated by ','") from None
        cases.append(series)
        labels.append(label.strip())
    if not in_data or not cases:
        raise HarvitError(f"{path}: no @data cases")
    n_dims = {len(c) for c in cases}
    declared = int(header.get("dimensions", ["1"])[0]) if "dimensions" in header else None
    if len(n_dims) != 1 or (declared is not None and n_dims != {declared}):
        raise HarvitError(f"{path}: cases have {sorted(n_dims)} dimensions; expected {declared or 'one number'}")
    lengths = sorted({len(s) for c in cases for s in c})
    if len(lengths) != 1:
        raise HarvitError(f"{path}: series of unequal lengths ({lengths[0]}..{lengths[-1]}); expected one length")
    x = np.array(cases, dtype=np.float32)  # [N, D, T]
    return TsSplit(x, labels, header["classlabel"][1:])


def _check_header(header: dict[str, list[str]], path: Path) -> None:
    if header.get("timestamps", ["false"])[0].lower() == "true":
        raise HarvitError(f"{path}: @timeStamps true is not supported; expected plain value lists")
    label = header.get("classlabel", ["false"])
    if label[0].lower() != "true" or len(label) < 2:
        raise HarvitError(f"{path}: @classLabel must be 'true' followed by the class labels")
    header["classlabel"] = ["true", *label[1:]]
