"""The unit of data: a set of fixed-length multichannel windows with labels and subjects."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harvit.utils.errors import HarvitError

NO_SUBJECT = -1
"""Subject id of windows whose data names no subject (e.g. ``.ts`` files, tables without a subject column)."""


@dataclass
class Windows:
    """Windows of inertial signals.

    Attributes:
        x: float32 [N, C, T] signals (acc in g, gyro in rad/s).
        y: int64 [N] class index in ``0..len(classes)-1``.
        subject: int64 [N] subject id (:data:`NO_SUBJECT` where the data names none).
        channels: C channel names, e.g. ``body_acc_x``.
        classes: class names, index = label.
        rate_hz: sampling rate in Hz.
    """

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    channels: list[str]
    classes: list[str]
    rate_hz: float
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int64)
        self.subject = np.asarray(self.subject, dtype=np.int64)
        if self.x.ndim != 3:
            raise HarvitError(f"windows must have shape [N, C, T], got {list(self.x.shape)}")
        n, c, _ = self.x.shape
        if self.y.shape != (n,) or self.subject.shape != (n,):
            raise HarvitError(
                f"windows: x has {n} rows but y has {self.y.shape} and subject has {self.subject.shape}"
            )
        if c != len(self.channels):
            raise HarvitError(f"windows: x has {c} channels but {len(self.channels)} channel names")
        if n and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise HarvitError(
                f"windows: labels span {self.y.min()}..{self.y.max()}, expected 0..{len(self.classes) - 1}"
            )
        if not np.isfinite(self.x).all():
            bad = int((~np.isfinite(self.x)).sum())
            raise HarvitError(f"windows: {bad} NaN/Inf values in signals")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def length(self) -> int:
        return int(self.x.shape[2])

    def subset(self, mask_or_index: np.ndarray) -> Windows:
        """The windows selected by a boolean mask or an index array."""
        return Windows(
            self.x[mask_or_index],
            self.y[mask_or_index],
            self.subject[mask_or_index],
            list(self.channels),
            list(self.classes),
            self.rate_hz,
            dict(self.meta),
        )

    @property
    def has_subjects(self) -> bool:
        """Whether the windows carry subject ids (False when every id is :data:`NO_SUBJECT`)."""
        return bool(len(self)) and bool((self.subject != NO_SUBJECT).any())

    def subjects(self) -> list[int]:
        return sorted(int(s) for s in np.unique(self.subject))

    def class_counts(self) -> list[int]:
        return np.bincount(self.y, minlength=len(self.classes)).tolist()


@dataclass
class Dataset:
    """A dataset's train and test splits (test = the dataset's test subjects, or its own split).

    Attributes:
        notes: caveats a report should repeat, e.g. that windows were split without subjects.
    """

    name: str
    train: Windows
    test: Windows
    notes: list[str] = field(default_factory=list)
