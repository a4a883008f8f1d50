"""One source of truth for settings.

:class:`Config` holds every setting with its default and help text, grouped by job (:mod:`.groups`: data,
images, model, optimisation, run; :mod:`.own_data`: the user's own data). The CLI flags (:mod:`harvit.cli`),
the presets (:mod:`.presets`), the saved ``config.json`` and the Python API all come from it; flags and
``config.json`` stay flat.
"""

from harvit.config.choices import (
    AMP_DTYPES,
    AUGMENT_AXES,
    BASELINE_SETS,
    CLASS_BALANCES,
    DEVICES,
    HAPT_WINDOW,
    MODES,
    NAN_POLICIES,
    SCALE_RANGES,
    SCALINGS,
    SUBJECT_SOURCES,
    TIME_UNITS,
)
from harvit.config.groups import training_stride
from harvit.config.own_data import OwnDataSettings
from harvit.config.presets import GPU_PRESET, PRESET_ALIASES, PRESET_DESCRIPTIONS, PRESETS, preset_name
from harvit.config.settings import (
    ARCH_KEYS,
    ENCODER_KEYS,
    GROUPS,
    OWN_DATA_FIELDS,
    PROFILE_KEYS,
    RESUME_KEYS,
    WINDOWINGS,
    Config,
    resolve,
)

__all__ = [
    "AMP_DTYPES",
    "ARCH_KEYS",
    "AUGMENT_AXES",
    "CLASS_BALANCES",
    "DEVICES",
    "ENCODER_KEYS",
    "GROUPS",
    "HAPT_WINDOW",
    "MODES",
    "NAN_POLICIES",
    "OWN_DATA_FIELDS",
    "PRESETS",
    "PRESET_ALIASES",
    "PRESET_DESCRIPTIONS",
    "GPU_PRESET",
    "preset_name",
    "PROFILE_KEYS",
    "RESUME_KEYS",
    "SCALE_RANGES",
    "SCALINGS",
    "SUBJECT_SOURCES",
    "BASELINE_SETS",
    "TIME_UNITS",
    "WINDOWINGS",
    "Config",
    "OwnDataSettings",
    "resolve",
    "training_stride",
]
