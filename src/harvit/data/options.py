"""The data layer's value of a user's own-data settings (tables, ``.npz`` window arrays, ``.ts`` files).

The settings are declared once, with their help texts and checks, in
:class:`harvit.config.own_data.OwnDataSettings` (a group of :class:`harvit.config.Config`, so a run's
``config.json`` alone rebuilds the same windows); :class:`OwnOptions` adds what loading needs. Every field
goes into the prepared-windows cache key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from harvit.config.own_data import OwnDataSettings
from harvit.utils.errors import HarvitError

TEST_SPLIT_SEED = 0
"""Seed of the ``--test-fraction`` subject draw: fixed, so every ``--seed`` of a study tests on the same people."""


@dataclass(frozen=True)
class OwnOptions(OwnDataSettings):
    """How a user's files become windows: the fields of :class:`OwnDataSettings` (see their help texts), e.g.
    ``window_s`` (window length in s), ``overlap`` (a fraction in [0, 1)), ``train_overlap`` (tables only,
    applied by :func:`harvit.data.registry.load_dataset`; the test windows keep ``overlap``)."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> OwnOptions:
        """The options held in a settings mapping (e.g. ``Config.to_dict()``); other keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names}).validate()

    def validate(self) -> OwnOptions:
        """The checks of :meth:`OwnDataSettings.validate`; returns self."""
        OwnDataSettings.validate(self)
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def changed(self) -> list[str]:
        """Names of the fields that differ from their defaults."""
        default = OwnOptions()
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(default, f.name)]

    def window_samples(self, rate_hz: float) -> tuple[int, int]:
        """(window length, stride) in samples at ``rate_hz``: ``round(window_s * rate)`` and
        ``max(1, round(length * (1 - overlap)))``."""
        length = int(round(self.window_s * rate_hz))
        if length < 2:
            raise HarvitError(
                f"--window-s {self.window_s} at {rate_hz:g} Hz gives {length} sample(s); expected >= 2"
            )
        return length, max(1, int(round(length * (1 - self.overlap))))
