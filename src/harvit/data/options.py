"""Settings of a user's own data set (tables, ``.npz`` window arrays, ``.ts`` files).

:class:`OwnOptions` mirrors the data fields of :class:`harvit.config.Config` of the same names, so
a run's ``config.json`` alone rebuilds the same windows (:meth:`OwnOptions.from_settings`). Every
field goes into the prepared-windows cache key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from harvit.config import SUBJECT_SOURCES, TIME_UNITS
from harvit.utils.errors import HarvitError

DEFAULT_TEST_FRACTION = 0.3
TEST_SPLIT_SEED = 0
"""Seed of the ``--test-fraction`` subject draw: fixed, so every ``--seed`` of a study tests on the same people."""


@dataclass(frozen=True)
class OwnOptions:
    """How a user's files become windows (all optional; see the ``Config`` help texts).

    Attributes:
        label_column, subject_column, recording_column, time_column: column names (None: the
            first default name present, see :mod:`harvit.data.tables`).
        time_unit: unit of a numeric time column (``auto``: detected, see :mod:`harvit.data.timebase`).
        subject_from: ``auto`` (the subject column, else the first folder level of files in subfolders, else
            none), ``column``, ``folder``, ``file`` (each file's name) or ``none``.
        channels: comma-separated channel columns (None: every other numeric column).
        columns: comma-separated names of a header-less table's columns (None: the file has a header).
        rate: target sampling rate in Hz (0: the data's own rate; required for tables without time).
        window_s: window length in seconds.
        overlap: overlap of consecutive windows, a fraction in [0, 1).
        train_overlap: overlap of consecutive *training* windows (0: ``overlap``); tables only,
            applied by :func:`harvit.data.registry.load_dataset` (the test windows keep ``overlap``).
        lowpass: noise low-pass cutoff in Hz, with UCI HAR's 3-sample median filter (0: off).
        gravity_split: sensor prefix whose x/y/z triple is split into ``body_<s>`` + ``total_<s>`` (None: off).
        test_subjects: comma-separated subject ids of the test split (None: ``test_fraction``).
        test_fraction: fraction of subjects drawn (seeded) for test when ``test_subjects`` is None.
    """

    label_column: str | None = None
    subject_column: str | None = None
    recording_column: str | None = None
    time_column: str | None = None
    time_unit: str = "auto"
    subject_from: str = "auto"
    channels: str | None = None
    columns: str | None = None
    rate: float = 0.0
    window_s: float = 2.56
    overlap: float = 0.5
    train_overlap: float = 0.0
    lowpass: float = 0.0
    gravity_split: str | None = None
    test_subjects: str | None = None
    test_fraction: float = DEFAULT_TEST_FRACTION

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> OwnOptions:
        """The options held in a settings mapping (e.g. ``Config.to_dict()``); other keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names}).validate()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def changed(self) -> list[str]:
        """Names of the fields that differ from their defaults."""
        default = OwnOptions()
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(default, f.name)]

    def validate(self) -> OwnOptions:
        """Check the values; raise :class:`HarvitError` naming the first bad flag."""
        _check(self.rate >= 0, "rate", self.rate, "a rate in Hz >= 0 (0: the data's own)")
        _check(self.window_s > 0, "window-s", self.window_s, "a window length in seconds > 0")
        _check(0 <= self.overlap < 1, "overlap", self.overlap, "a fraction in [0, 1)")
        _check(0 <= self.train_overlap < 1, "train-overlap", self.train_overlap, "a fraction in [0, 1)")
        _check(self.lowpass >= 0, "lowpass", self.lowpass, "a cutoff in Hz >= 0 (0: off)")
        _check(0 < self.test_fraction < 1, "test-fraction", self.test_fraction, "a fraction of subjects in (0, 1)")
        _check(self.time_unit in TIME_UNITS, "time-unit", self.time_unit, "one of " + ", ".join(TIME_UNITS))
        _check(self.subject_from in SUBJECT_SOURCES, "subject-from", self.subject_from,
               "one of " + ", ".join(SUBJECT_SOURCES))
        for name in ("channels", "columns", "test_subjects"):
            value = getattr(self, name)
            if value is not None and not split_list(value):
                raise HarvitError(f"--{name.replace('_', '-')}: got {value!r}, expected comma-separated names")
        if self.columns is not None and len(set(split_list(self.columns))) != len(split_list(self.columns)):
            raise HarvitError(f"--columns: repeated name in {self.columns!r}")
        return self

    def window_samples(self, rate_hz: float) -> tuple[int, int]:
        """(window length, stride) in samples at ``rate_hz``: ``round(window_s * rate)`` and
        ``max(1, round(length * (1 - overlap)))``."""
        length = int(round(self.window_s * rate_hz))
        if length < 2:
            raise HarvitError(
                f"--window-s {self.window_s} at {rate_hz:g} Hz gives {length} sample(s); expected >= 2"
            )
        return length, max(1, int(round(length * (1 - self.overlap))))


def split_list(text: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; None -> ``[]``."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _check(ok: bool, flag: str, value: Any, expected: str) -> None:
    if not ok:
        raise HarvitError(f"--{flag}: got {value!r}, expected {expected}")
