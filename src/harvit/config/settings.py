"""The one :class:`Config`: every setting of a run, its groups, the lists of settings that must match, and
:func:`resolve` (defaults < preset < explicit settings)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harvit.config.fields import tagged
from harvit.config.groups import (
    DataSettings,
    ImageSettings,
    ModelSettings,
    OptimSettings,
    RunSettings,
    stride_for_windowing,
)
from harvit.config.own_data import OwnDataSettings
from harvit.config.presets import PRESETS, device_preset, preset_name
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError

#: The groups of settings, in the order of ``--help`` and ``config.json``: group name -> its dataclass.
GROUPS: dict[str, type] = {"data": DataSettings, "own data": OwnDataSettings, "images": ImageSettings,
                           "model": ModelSettings, "optimisation": OptimSettings, "run": RunSettings}

OWN_DATA_FIELDS = tuple(f.name for f in dataclasses.fields(OwnDataSettings))
"""Settings of the user's own data (``--dataset PATH``): :class:`harvit.data.options.OwnOptions`."""


@dataclass(frozen=True)
class Config(RunSettings, OptimSettings, ModelSettings, ImageSettings, OwnDataSettings, DataSettings):
    """Every setting of a harvit run, flat (``cfg.lr``, one flag and one ``config.json`` key each), declared by
    group in :mod:`harvit.config.groups` and :mod:`harvit.config.own_data` (the group is in each field's
    metadata, with its help text). The fields come in the order of :data:`GROUPS`: a dataclass lists its
    bases' fields from the last base to the first."""

    def validate(self) -> Config:
        """Check every group's values; raise :class:`HarvitError` naming the first bad flag."""
        for group in GROUPS.values():
            group.validate(self)
        return self

    # ---- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> Config:
        """Build from a dict (e.g. a saved ``config.json``); unknown keys are an error."""
        if not isinstance(d, dict):
            raise HarvitError(f"{source}: expected a JSON object of settings, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise HarvitError(f"{source}: unknown setting(s) {', '.join(unknown)}")
        for f in dataclasses.fields(cls):
            if f.name in d and not _type_ok(d[f.name], str(f.type)):
                raise HarvitError(f"{source}: setting {f.name} is {d[f.name]!r}; expected {f.type}")
        try:
            return cls(**d)
        except TypeError as e:
            raise HarvitError(f"{source}: {e}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Config:
        """Read a ``config.json``; a missing or unreadable file is a :class:`HarvitError`."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HarvitError(f"config file {path} not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise HarvitError(f"config file {path} is not readable JSON: {e}") from None
        return cls.from_dict(d, source=str(path))


#: The lists of settings that must match, derived from each setting's tags (:data:`harvit.config.fields.TAGS`):
#: a setting joins them where it is declared (``setting(..., tags={"arch"})``).
#: Settings of the encoder and its images: ``--init-from`` takes weights only from a run that shares them.
ENCODER_KEYS = tagged(Config, "encoder")
#: Settings that change the network's shape or meaning: a checkpoint with other values is refused.
ARCH_KEYS = tagged(Config, "arch")
#: Settings a resumed run must share with its checkpoint: the architecture, the data split and the averaging.
RESUME_KEYS = tagged(Config, "resume")
#: Settings ``harvit profile`` reads (the model, its images, the batch, the runtime); its help lists only these.
PROFILE_KEYS = tagged(Config, "profile")


def _type_ok(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field annotated with ``int``, ``float``, ``bool``, ``str``, ``... | None``."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None or isinstance(value, bool):
        return ("None" if value is None else "bool") in kinds
    return any(isinstance(value, {"int": int, "float": (int, float), "str": str}.get(k, ())) for k in kinds)


#: How a data set comes, as the data layer tells :func:`resolve` (``harvit.data.windowing``): cut from raw
#: recordings by the built-in recipe (a training stride applies), in fixed windows (no stride applies: UCI HAR,
#: .npz, .ts), or a table of recordings with its own window length (a stride becomes an overlap).
WINDOWINGS = ("recordings", "windows", "table")


def resolve(explicit: dict[str, Any], cuda_available: bool, windowing: Callable[[str], str]) -> tuple[Config, str]:
    """Defaults < preset < explicit settings. Returns the config and the preset used (by its name, also when
    ``explicit`` gives a former one: :data:`harvit.config.presets.PRESET_ALIASES`).

    Args:
        explicit: the settings given (flags, a config file).
        cuda_available: picks the preset when none is given (:func:`harvit.config.presets.device_preset`).
        windowing: data set name or path -> one of :data:`WINDOWINGS` (``harvit.data.windowing``: the data
            sets are known above this layer), which decides what a preset's ``train_stride`` becomes.
    """
    preset = preset_name(explicit.get("preset") or device_preset(cuda_available))  # a former name: its preset
    values = {**PRESETS[preset], **explicit, "preset": preset}
    values = stride_for_windowing(values, explicit, windowing(values.get("dataset", Config.dataset)))
    return Config.from_dict(values, source="settings").validate(), preset
