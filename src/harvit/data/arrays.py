"""Window arrays in one ``.npz`` file.

Keys (read with ``allow_pickle=False``, so object arrays are refused):

- ``x``: float [N, C, T] windows (required);
- ``y``: int [N] class indices, or str [N] class names (required);
- ``subject``: int [N] subject ids (optional; without it windows are split stratified by class);
- ``channels``: str [C] names (optional; default ``ch0..``); ``<sensor>_x/_y/_z`` form triples;
- ``classes``: str [K] class names, index = ``y`` (optional; default the sorted distinct ``y``);
- ``rate_hz``: scalar sampling rate in Hz (optional; default ``--rate``, else 50);
- ``split``: str [N] ``train``/``test`` per window (optional; kept as the test split when present).
"""

from __future__ import annotations

import logging
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

REQUIRED = ("x", "y")
OPTIONAL = ("subject", "channels", "classes", "rate_hz", "split")
DEFAULT_RATE_HZ = 50.0


@dataclass
class WindowArrays:
    """Windows read from a file, before the test split.

    Attributes:
        x: float32 [N, C, T]; y: int64 [N] into ``classes``; subject: int64 [N] or None;
        is_test: bool [N] the file's own split, or None.
    """

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray | None
    channels: list[str]
    classes: list[str]
    rate_hz: float
    is_test: np.ndarray | None


def read_npz(path: Path, rate: float = 0.0) -> WindowArrays:
    """Read and check an ``.npz`` of windows (keys in the module docstring).

    Args:
        rate: the rate in Hz when the file has no ``rate_hz`` (0: :data:`DEFAULT_RATE_HZ`).

    Raises:
        HarvitError: unreadable file, missing keys, wrong shapes or values, naming the file and key.
    """
    if path.is_file() and not zipfile.is_zipfile(path):  # np.load would take other bytes for a pickle or .npy
        raise HarvitError(f"{path}: not a .npz archive (no zip structure); expected numpy.savez output")
    try:
        with np.load(path, allow_pickle=False) as z:
            found = list(z.files)
            missing = [k for k in REQUIRED if k not in found]
            if missing:
                raise HarvitError(f"{path}: missing key(s) {', '.join(missing)}; found {', '.join(found) or 'none'}; "
                                  "expected x [N, C, T] and y [N]")
            arrays = {k: z[k] for k in (*REQUIRED, *OPTIONAL) if k in found}
    except HarvitError:
        raise
    except ValueError as e:
        if "pickle" in str(e):  # object arrays need pickle: refused
            raise HarvitError(f"{path}: {e}; expected plain numeric or string arrays") from None
        raise HarvitError(f"{path}: not a readable .npz ({str(e).splitlines()[0][:200]})") from None
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error, SyntaxError, tokenize.TokenError) as e:
        # SyntaxError, TokenError: a member's .npy header (a Python literal) is damaged
        raise HarvitError(f"{path}: not a readable .npz ({e})") from None
    x = arrays["x"]
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.number):
        raise HarvitError(f"{path}: x has shape {list(x.shape)} and dtype {x.dtype}; expected numbers [N, C, T]")
    n, c, t = x.shape
    y_raw = _vector(arrays["y"], "y", n, path)
    channels = _names(arrays.get("channels"), "channels", c, path) or [f"ch{k}" for k in range(c)]
    classes_given = _names(arrays.get("classes"), "classes", None, path)
    if np.issubdtype(y_raw.dtype, np.integer):
        classes = classes_given or [str(v) for v in np.unique(y_raw)]
        if classes_given:
            if y_raw.min() < 0 or y_raw.max() >= len(classes):
                raise HarvitError(f"{path}: y spans {y_raw.min()}..{y_raw.max()} but classes has {len(classes)} names")
            y = y_raw.astype(np.int64)
        else:
            y = np.searchsorted(np.unique(y_raw), y_raw).astype(np.int64)
    elif y_raw.dtype.kind == "U":
        names = [str(v) for v in y_raw]
        classes = classes_given or sorted(set(names))
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise HarvitError(f"{path}: y holds {', '.join(unknown[:5])}, not in classes")
        index = {name: k for k, name in enumerate(classes)}
        y = np.array([index[v] for v in names], dtype=np.int64)
    else:
        raise HarvitError(f"{path}: y has dtype {y_raw.dtype}; expected integers or strings")
    subject = None
    if "subject" in arrays:
        s = _vector(arrays["subject"], "subject", n, path)
        if not np.issubdtype(s.dtype, np.integer):
            raise HarvitError(f"{path}: subject has dtype {s.dtype}; expected integer ids")
        subject = s.astype(np.int64)
    is_test = None
    if "split" in arrays:
        split = _vector(arrays["split"], "split", n, path).astype(str)
        odd = sorted(set(split) - {"train", "test"})
        if odd:
            raise HarvitError(f"{path}: split holds {', '.join(odd[:5])}; expected 'train' or 'test' per window")
        is_test = split == "test"
    rate_hz = float(arrays["rate_hz"]) if "rate_hz" in arrays else (rate or DEFAULT_RATE_HZ)
    if "rate_hz" in arrays and (np.asarray(arrays["rate_hz"]).size != 1 or not rate_hz > 0):
        raise HarvitError(f"{path}: rate_hz is {arrays['rate_hz']!r}; expected one positive rate in Hz")
    if "rate_hz" not in arrays:
        log.info("%s: no rate_hz; taking %g Hz%s", path, rate_hz, "" if rate else " (pass --rate to state it)")
    if not np.isfinite(x).all():
        raise HarvitError(f"{path}: x holds {int((~np.isfinite(x)).sum())} NaN/Inf values; expected finite numbers")
    if t < 2:
        raise HarvitError(f"{path}: windows of {t} sample(s); expected at least 2")
    return WindowArrays(x.astype(np.float32, copy=False), y, subject, channels, classes, rate_hz, is_test)


def _vector(a: np.ndarray, key: str, n: int, path: Path) -> np.ndarray:
    if a.shape != (n,):
        raise HarvitError(f"{path}: {key} has shape {list(a.shape)}; expected [{n}] (one per window of x)")
    return a


def _names(a: np.ndarray | None, key: str, n: int | None, path: Path) -> list[str] | None:
    if a is None:
        return None
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        want = f"[{n}]" if n is not None else "[K]"
        raise HarvitError(f"{path}: {key} has shape {list(a.shape)}; expected {want} names")
    names = [str(v) for v in a]
    if len(set(names)) != len(names):
        raise HarvitError(f"{path}: {key} repeats a name")
    return names
