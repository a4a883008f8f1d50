"""Gravity auto-calibration of an accelerometer from its stationary periods.

van Hees VT, Fang Z, Langford J, et al. *Autocalibration of accelerometer data for free-living physical
activity assessment using local gravity and temperature: an evaluation on four continents.* J Appl Physiol
117:738-744, 2014 (doi:10.1152/japplphysiol.00421.2014), as GGIR (``g.calibrate``) and actipy
(``calibrate_gravity``) implement it: while the device lies still, it measures gravity alone, so the means of
still epochs should lie on the unit sphere (1 g). An offset and a scale per axis, ``calibrated = (raw + offset)
* scale``, are fitted by iteratively reweighted least squares: each iteration projects the calibrated points
onto the sphere, fits a weighted line per axis from the calibrated to the projected values, folds it into the
offset and scale, and reweights each point by the inverse of its distance to the sphere (capped at 100, as
GGIR). The fit stops when the mean distance improves by less than :data:`IMPROVEMENT_TOL` (relative).

It is applied (``ok``) only when it can be trusted, as GGIR and actipy decide: at least
:data:`MIN_POINTS` still epochs, still points beyond +-:data:`SPHERE_CRITERION` g on both sides of every axis
(the points cover the sphere), and a mean distance to the sphere after the fit below :data:`ERROR_OK_MG` mg.
Otherwise the calibration is the identity, with ``ok`` False and the reason in ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harvit.data.epochs import EpochStats

SD_THRESHOLD_G = 0.013
"""An epoch is still when every axis' SD is below this (GGIR's 13 mg)."""
SPHERE_CRITERION = 0.3
"""Still points must reach beyond +-this many g on every axis (GGIR's ``spherecrit``, actipy's cube)."""
MIN_POINTS = 50
"""Fewest still epochs a calibration is fitted from (actipy's ``calib_min_samples``)."""
ERROR_OK_MG = 10.0
"""Largest mean distance to the unit sphere after the fit, in mg, for the calibration to be applied (GGIR,
actipy: 0.01 g)."""
MAX_ITER = 1000
IMPROVEMENT_TOL = 1e-4
MAX_WEIGHT = 100.0
"""Cap of a point's weight, the inverse of its distance to the sphere in g (GGIR: 1 / 0.01)."""
MAX_ABS_G = 2.0
"""Still epochs with an axis mean beyond this many g are left out (GGIR)."""


@dataclass
class Calibration:
    """Per-axis offset and scale: ``calibrated = (acc + offset) * scale`` (g).

    Attributes:
        offset: float64 [3] in g.
        scale: float64 [3].
        error_before_mg: mean distance of the still points to the unit sphere before, in mg (NaN: no points).
        error_after_mg: the same after the fit (equal to before when nothing was fitted).
        n_stationary: still epochs used.
        ok: whether the calibration is applied (else offset 0, scale 1).
        note: why it is not applied (empty when ``ok``).
    """

    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scale: np.ndarray = field(default_factory=lambda: np.ones(3))
    error_before_mg: float = float("nan")
    error_after_mg: float = float("nan")
    n_stationary: int = 0
    ok: bool = False
    note: str = ""

    def apply(self, acc: np.ndarray) -> np.ndarray:
        """``(acc + offset) * scale`` of acc [..., 3] in g, in acc's float dtype (float32 stays float32)."""
        dtype = acc.dtype if np.issubdtype(acc.dtype, np.floating) else np.float64
        return ((acc + self.offset.astype(dtype)) * self.scale.astype(dtype)).astype(dtype, copy=False)

    def as_dict(self) -> dict:
        return {"offset_g": [float(v) for v in self.offset], "scale": [float(v) for v in self.scale],
                "error_before_mg": _num(self.error_before_mg), "error_after_mg": _num(self.error_after_mg),
                "n_stationary": self.n_stationary, "ok": self.ok, "note": self.note}


def _num(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 3)


def stationary_points(stats: EpochStats, sd_threshold_g: float = SD_THRESHOLD_G) -> np.ndarray:
    """float64 [P, 3] mean acceleration (g) of the still epochs: every axis' SD below ``sd_threshold_g``, every
    axis' mean within +-:data:`MAX_ABS_G` g, not all zero."""
    still = np.all(stats.sd < sd_threshold_g, axis=1) & np.all(np.abs(stats.mean) < MAX_ABS_G, axis=1)
    points = stats.mean[still]
    return points[np.linalg.norm(points, axis=1) > 1e-8]


def _sphere_error(points: np.ndarray) -> np.ndarray:
    """Distance in g of each point [P, 3] to the unit sphere."""
    return np.abs(np.linalg.norm(points, axis=1) - 1.0)


def calibrate(stats: EpochStats, sd_threshold_g: float = SD_THRESHOLD_G, min_points: int = MIN_POINTS,
              sphere_criterion: float = SPHERE_CRITERION, error_ok_mg: float = ERROR_OK_MG) -> Calibration:
    """Fit the gravity calibration of van Hees et al. 2014 to a recording's still epochs (module docstring).

    Args:
        stats: per-epoch statistics (:func:`harvit.data.epochs.epoch_stats`; 10 s epochs as GGIR and actipy).
        sd_threshold_g: an epoch is still when every axis' SD is below this.
        min_points, sphere_criterion, error_ok_mg: when the fit is applied (module docstring).

    Returns:
        The :class:`Calibration`: fitted and ``ok``, or the identity with the reason in ``note``.
    """
    points = stationary_points(stats, sd_threshold_g)
    n = len(points)
    if n < min_points:
        return Calibration(n_stationary=n, note=f"{n} still epochs; at least {min_points} are needed")
    before = float(np.mean(_sphere_error(points))) * 1000
    uncovered = [axis for k, axis in enumerate("xyz")
                 if points[:, k].max() < sphere_criterion or points[:, k].min() > -sphere_criterion]
    if uncovered:
        return Calibration(error_before_mg=before, error_after_mg=before, n_stationary=n,
                           note=f"the still periods do not cover the sphere (axis {', '.join(uncovered)} never "
                                f"beyond +-{sphere_criterion:g} g on both sides)")
    offset, scale, after = _fit(points)
    if not after * 1000 < error_ok_mg:
        return Calibration(error_before_mg=before, error_after_mg=after * 1000, n_stationary=n,
                           note=f"error after fitting {after * 1000:.1f} mg; at most {error_ok_mg:g} mg is trusted")
    return Calibration(offset, scale, before, after * 1000, n, True, "")


def _fit(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(offset [3], scale [3], mean distance to the sphere in g) by iteratively reweighted least squares."""
    offset, scale = np.zeros(3), np.ones(3)
    best = (offset.copy(), scale.copy(), float(np.mean(_sphere_error(points))))
    weights = np.ones(len(points))
    previous = best[2]
    for _ in range(MAX_ITER):
        current = (points + offset) * scale
        target = current / np.linalg.norm(current, axis=1, keepdims=True)
        root = np.sqrt(weights)
        for k in range(3):
            design = np.column_stack([np.ones(len(points)), current[:, k]]) * root[:, None]
            (a, b), *_ = np.linalg.lstsq(design, target[:, k] * root, rcond=None)
            # a + b * ((raw + offset) * scale) = (raw + offset + a / (b * scale)) * (scale * b)
            offset[k] = offset[k] + a / (b * scale[k])
            scale[k] = scale[k] * b
        error = _sphere_error((points + offset) * scale)
        mean_error = float(np.mean(error))
        if mean_error < best[2]:
            best = (offset.copy(), scale.copy(), mean_error)
        weights = np.minimum(1.0 / np.maximum(error, 1e-12), MAX_WEIGHT)
        if (previous - mean_error) < IMPROVEMENT_TOL * previous:
            break
        previous = mean_error
    return best
