"""Signal preprocessing shared by the HAPT loader and prediction on a user's raw recordings.

The recipe is UCI HAR's published one (see its ``README.txt``): a median filter and a
3rd-order Butterworth low-pass at 20 Hz against noise, then a 3rd-order Butterworth low-pass at
0.3 Hz that separates gravity from the body's own acceleration. Filters are zero-phase
(``scipy.signal.sosfiltfilt``) and are applied to a whole recording before it is cut into windows.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage, signal

from harvit.config import NAN_POLICIES
from harvit.utils.errors import HarvitError

log = logging.getLogger("harvit.data")

CHANNELS: list[str] = [
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "body_gyro_x",
    "body_gyro_y",
    "body_gyro_z",
    "total_acc_x",
    "total_acc_y",
    "total_acc_z",
]
"""Channel order of every 9-channel window (acc in g, gyro in rad/s)."""



@dataclass(frozen=True)
class Preprocessing:
    """Every parameter of the raw-signal -> window recipe (all of them go into the cache key).

    Attributes:
        window: window length in samples (128 = 2.56 s at 50 Hz).
        stride: step between window starts in samples (64 = 50% overlap).
        median_kernel: median filter length in samples (odd; 1 disables it).
        noise_cutoff_hz: noise low-pass cutoff in Hz (skipped when at or above Nyquist).
        noise_order: Butterworth order of the noise low-pass.
        gravity_cutoff_hz: gravity low-pass cutoff in Hz.
        gravity_order: Butterworth order of the gravity low-pass.
    """

    window: int = 128
    stride: int = 64
    median_kernel: int = 3
    noise_cutoff_hz: float = 20.0
    noise_order: int = 3
    gravity_cutoff_hz: float = 0.3
    gravity_order: int = 3

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_PREPROCESSING = Preprocessing()


def preprocess_inertial(
    acc: np.ndarray,
    gyro: np.ndarray,
    rate_hz: float = 50.0,
    params: Preprocessing = DEFAULT_PREPROCESSING,
) -> np.ndarray:
    """Turn one raw recording into UCI-HAR-style channels.

    Args:
        acc: [T, 3] total acceleration in g (x, y, z).
        gyro: [T, 3] angular velocity in rad/s (x, y, z).
        rate_hz: sampling rate of both sensors in Hz.
        params: filter settings (defaults: UCI HAR's).

    Returns:
        float32 [9, T] in :data:`CHANNELS` order: body_acc (g), body_gyro (rad/s), total_acc (g).
        body_acc = total_acc - gravity, gravity being the low-passed total acceleration
        (:func:`prepare_channels` with the noise cutoff of ``params`` and a gravity split of acc).
    """
    acc = _as_signal(acc, "acc")
    gyro = _as_signal(gyro, "gyro")
    if acc.shape[0] != gyro.shape[0]:
        raise HarvitError(f"acc has {acc.shape[0]} samples, gyro {gyro.shape[0]}; expected equal lengths")
    if not rate_hz > 0:
        raise HarvitError(f"rate_hz is {rate_hz}; expected a positive sampling rate in Hz")
    # the generic recipe (a user's own tables take the same path): acc, gyro -> body_acc, gyro, total_acc
    names = [f"{sensor}_{axis}" for sensor in ("acc", "gyro") for axis in "xyz"]
    x, _ = prepare_channels(np.concatenate([acc, gyro], axis=1), names, rate_hz, params.noise_cutoff_hz, "acc", params)
    return np.ascontiguousarray(x.T)


def denoise(x: np.ndarray, rate_hz: float, params: Preprocessing = DEFAULT_PREPROCESSING) -> np.ndarray:
    """Median filter then noise low-pass along time; ``x`` is [T, C], returns float64 [T, C]."""
    x = np.asarray(x, dtype=np.float64)
    if params.median_kernel > 1:
        x = ndimage.median_filter(x, size=(params.median_kernel, 1), mode="nearest")
    if params.noise_cutoff_hz < rate_hz / 2:
        x = lowpass(x, params.noise_cutoff_hz, params.noise_order, rate_hz)
    return x


def lowpass(x: np.ndarray, cutoff_hz: float, order: int, rate_hz: float) -> np.ndarray:
    """Zero-phase Butterworth low-pass of [T, C] along time (axis 0); returns float64 [T, C]."""
    if not 0 < cutoff_hz < rate_hz / 2:
        raise HarvitError(
            f"low-pass cutoff {cutoff_hz} Hz is outside (0, {rate_hz / 2}) Hz, the range allowed "
            f"at {rate_hz} Hz"
        )
    sos = signal.butter(order, cutoff_hz, btype="lowpass", fs=rate_hz, output="sos")
    n = x.shape[0]
    if n < 2:
        return np.asarray(x, dtype=np.float64).copy()
    padlen = min(3 * (2 * len(sos) + 1), n - 1)
    return signal.sosfiltfilt(sos, x, axis=0, padlen=padlen)


def window_starts(n: int, length: int = 128, stride: int = 64) -> np.ndarray:
    """Start indices of the windows lying wholly inside ``n`` samples: ``(n - length) // stride + 1``."""
    if length < 1 or stride < 1:
        raise HarvitError(f"window length {length} and stride {stride} must be positive sample counts")
    if n < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n - length + 1, stride, dtype=np.int64)


def sliding_windows(sig: np.ndarray, length: int = 128, stride: int = 64) -> np.ndarray:
    """Cut a [C, T] signal into windows.

    Returns:
        [N, C, length] copies (same dtype), N = ``(T - length) // stride + 1`` (0 when T < length).
    """
    sig = np.asarray(sig)
    if sig.ndim != 2:
        raise HarvitError(f"sliding_windows expects a [C, T] signal, got shape {list(sig.shape)}")
    starts = window_starts(sig.shape[1], length, stride)
    if len(starts) == 0:
        return np.zeros((0, sig.shape[0], length), dtype=sig.dtype)
    index = starts[:, None] + np.arange(length)[None, :]  # [N, length]
    return np.ascontiguousarray(sig[:, index].transpose(1, 0, 2))


def fill_nonfinite(x: np.ndarray) -> np.ndarray:
    """Linearly interpolate NaN/Inf along axis 0 of [T, C], per column (edges take the nearest value).

    Raises :class:`HarvitError` when a column has no finite value at all.
    """
    x = np.array(x, dtype=np.float64)
    t = np.arange(x.shape[0])
    for c in range(x.shape[1]):
        ok = np.isfinite(x[:, c])
        if ok.all():
            continue
        if not ok.any():
            raise HarvitError(f"column {c + 1} has no finite value to interpolate from")
        x[~ok, c] = np.interp(t[~ok], t[ok], x[ok, c])
    return x


def nonfinite_mask(x: np.ndarray, where: str, nan_policy: str, what: str = "NaN/Inf values") -> np.ndarray:
    """Where ``x`` holds NaN/Inf (bool, x's shape), with ``--nan-policy`` applied to the finding: under
    ``error`` any raises one :class:`HarvitError` naming ``where``; under ``drop``/``interpolate`` a warning
    says how many (the caller drops or fills them)."""
    nonfinite = ~np.isfinite(x)
    if nonfinite.any():
        count = int(nonfinite.sum())
        if nan_policy == "error":
            raise HarvitError(f"{where}: {count} {what}; expected finite numbers (--nan-policy drop drops the "
                              "windows holding them, --nan-policy interpolate fills them)")
        log.warning("%s: %d %s (%s)", where, count, what, nan_policy)
    return nonfinite


def apply_nan_policy(x: np.ndarray, where: str, nan_policy: str, what: str = "NaN/Inf values"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``--nan-policy`` to recorded samples.

    Args:
        x: [T, C] samples of one recording (a file, a table piece).
        where: the recording's name for messages.
        nan_policy: ``error``, ``drop`` or ``interpolate``.
        what: what the non-finite values are, for messages.

    Returns:
        (finite [T, C] (float64 where anything was filled, else ``x`` itself), bool [T] samples that held
        NaN/Inf under ``drop``: windows touching them are dropped; all False otherwise).
    """
    nonfinite = nonfinite_mask(x, where, nan_policy, what)
    bad = np.zeros(x.shape[0], dtype=bool)
    if not nonfinite.any():
        return x, bad
    if nan_policy == "drop":
        bad = nonfinite.any(axis=1)
    try:
        return fill_nonfinite(x), bad
    except HarvitError as e:
        raise HarvitError(f"{where}: {e}") from None


def parse_numeric_text(data: bytes, where: str, ncols: int | None = None, hint: str = "") -> np.ndarray:
    """Parse whitespace-separated numbers, one row per line (blank lines skipped).

    Args:
        data: the file's bytes (ASCII/UTF-8, LF or CRLF line ends).
        where: the file's name for error messages.
        ncols: required values per row (None: any, but the same on every row).
        hint: appended to a wrong-row-length message, e.g. ``"windows shorter than the window length"``.

    Returns:
        float64 [rows, cols]; ``nan``/``inf`` parse as such (the caller applies its NaN policy).

    Raises:
        HarvitError: naming ``where`` and the 1-based line of the first non-numeric or wrong-length row.
    """
    lines = data.decode("utf-8", errors="replace").splitlines()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = np.loadtxt(lines, dtype=np.float64, ndmin=2, comments=None)
    except ValueError as e:
        _raise_bad_line(lines, where, ncols, hint)
        raise HarvitError(f"{where}: cannot parse as numbers ({e})") from None
    if table.shape[0] == 0:
        raise HarvitError(f"{where} is empty; expected rows of numbers")
    if ncols is not None and table.shape[1] != ncols:
        _raise_bad_line(lines, where, ncols, hint)
    return table


def _raise_bad_line(lines: list[str], where: str, ncols: int | None, hint: str) -> None:
    """Find the first bad line and raise about it; return if none is found."""
    width = ncols
    suffix = f" ({hint})" if hint else ""
    for i, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        for p in parts:
            try:
                float(p)
            except ValueError:
                raise HarvitError(
                    f"{where} line {i}: found non-numeric value {p[:40]!r}; expected numbers"
                ) from None
        if width is None:
            width = len(parts)
        elif len(parts) != width:
            raise HarvitError(f"{where} line {i}: found {len(parts)} values, expected {width}{suffix}")


def check_nan_policy(nan_policy: str) -> str:
    """Validate ``nan_policy`` (one of :data:`NAN_POLICIES`)."""
    if nan_policy not in NAN_POLICIES:
        raise HarvitError(f"nan_policy is {nan_policy!r}; expected one of {', '.join(NAN_POLICIES)}")
    return nan_policy


def _as_signal(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise HarvitError(f"{name} has shape {list(x.shape)}; expected [T, 3] (x, y, z columns)")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise HarvitError(f"{name} has {bad} NaN/Inf values; expected finite samples (fill them first)")
    return x


def prepare_channels(
    x: np.ndarray,
    channels: list[str],
    rate_hz: float,
    lowpass_hz: float = 0.0,
    gravity_sensor: str | None = None,
    params: Preprocessing = DEFAULT_PREPROCESSING,
) -> tuple[np.ndarray, list[str]]:
    """UCI HAR's preprocessing for any channel set (a user's own recording).

    Args:
        x: [T, C] finite samples of one recording piece.
        channels: C names; ``<sensor>_x/_y/_z`` form a sensor triple.
        rate_hz: sampling rate in Hz.
        lowpass_hz: > 0: every channel gets :func:`denoise` (median filter of ``params.median_kernel``,
            then a Butterworth low-pass of ``params.noise_order`` at this cutoff); 0: untouched.
        gravity_sensor: a sensor prefix whose triple (total acceleration) is split at
            ``params.gravity_cutoff_hz``: its channels become ``body_<s>_x..z`` (total minus gravity) in
            place, and ``total_<s>_x..z`` are appended (downstream finds the gravity direction in triples
            whose prefix contains ``total``).

    Returns:
        (float32 [T, C'] channels, C' names), C' = C + 3 with a gravity split, else C.

    :func:`preprocess_inertial` (HAPT, ``predict``) is this with ``lowpass_hz=20`` and ``gravity_sensor="acc"``
    on acc + gyro (names ``body_acc_*``, ``gyro_*``, ``total_acc_*``, i.e. :data:`CHANNELS` order).
    """
    x = np.asarray(x, dtype=np.float64)
    names = list(channels)
    if lowpass_hz > 0:
        x = denoise(x, rate_hz, Preprocessing(**{**params.as_dict(), "noise_cutoff_hz": lowpass_hz}))
    if gravity_sensor:
        index = triple_index(names, gravity_sensor)
        total = x[:, index]
        gravity = lowpass(total, params.gravity_cutoff_hz, params.gravity_order, rate_hz)
        x = np.concatenate([x, total], axis=1)
        x[:, index] = total - gravity
        for k, axis in zip(index, "xyz", strict=True):
            names[k] = f"body_{gravity_sensor}_{axis}"
        names += [f"total_{gravity_sensor}_{axis}" for axis in "xyz"]
    return x.astype(np.float32), names


def triple_index(channels: list[str], sensor: str) -> list[int]:
    """Indices of ``<sensor>_x``, ``<sensor>_y``, ``<sensor>_z`` in ``channels``; a missing one raises
    :class:`HarvitError` naming ``--gravity-split`` and the triples present."""
    wanted = [f"{sensor}_{axis}" for axis in "xyz"]
    if all(w in channels for w in wanted):
        return [channels.index(w) for w in wanted]
    prefixes = sorted({c[:-2] for c in channels if c[-2:] in ("_x", "_y", "_z")})
    raise HarvitError(
        f"--gravity-split {sensor}: channels {', '.join(wanted)} not all found; sensor triples present: "
        f"{', '.join(prefixes) or 'none'}"
    )
