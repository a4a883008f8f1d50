"""The defaults that name registered things, and the presets: overrides of the defaults, and their former names.

The data set and encodings named here are registered above this layer (``harvit.data``,
``harvit.imaging.encodings``); a test checks that they are.
"""

from __future__ import annotations

from typing import Any

from harvit.utils.errors import HarvitError

DEFAULT_DATASET = "hapt6"
DEFAULT_ENCODINGS = "gasf,gadf,mtf"

#: The preset a machine with CUDA runs when none is given (the one without CUDA runs ``cpu``).
GPU_PRESET = "vit-b8-frozen"

#: Presets: overrides of the defaults, by name. Explicit flags override a preset.
PRESETS: dict[str, dict[str, Any]] = {
    # The GPU design: a frozen ImageNet ViT-B/8 at 224 px, flatten mode (one view per channel: 9 views of a
    # HAPT window, each its channel's GASF, GADF and MTF images), its pooled 768 features -> 512 -> classes head.
    GPU_PRESET: dict(
        encoder="vit_base_patch8_224",
        img_size=224,
        mode="flatten",
        encodings="gasf,gadf,mtf",
        freeze_encoder=True,
        pretrained=True,
        batch_size=32,
        epochs=20,
        lr=1e-3,
        warmup_epochs=2,
        hidden_dims="512",
        window_stats=False,  # exactly the reference head 768 -> 512 -> classes; --window-stats adds them
    ),
    # A small ViT trained from scratch, sized to train on a few CPU cores in minutes.
    "cpu": dict(
        encoder="vit_tiny_patch16_224",
        img_size=24,
        patch_size=6,  # 4 x 4 tokens of a 24 px image
        embed_dim=80,
        depth=1,
        num_heads=4,
        mode="stack",
        encodings="gasf",
        freeze_encoder=False,
        pretrained=False,
        batch_size=64,
        epochs=8,
        lr=1e-3,
        warmup_epochs=1,
        weight_decay=0.05,
        hidden_dims="128",
        eval_batch_size=512,
        train_stride=32,  # twice the training windows (75% overlap); test windows keep stride 64 (tables: 0.75 overlap)
        ema_decay=0.998,  # a smooth validation curve: selection picks less noise (docs/results.md)
        image_dropout=0.5,  # the head also learns to decide from the statistics alone
        rocket_features=9996,  # MiniRocket-style convolution features in the model: +2 points (docs/results.md)
    ),
}

#: Former names of presets, still accepted by ``--preset`` and in a saved ``config.json``: alias -> preset.
PRESET_ALIASES: dict[str, str] = {"pix2seq": GPU_PRESET}
#: What each preset is, one line each, for ``--help`` and the docs (the former names last).
PRESET_DESCRIPTIONS: dict[str, str] = {
    GPU_PRESET: "the GPU design: a frozen ImageNet ViT-B/8 at 224 px, one view per channel (flatten: "
                "9 views of a HAPT window), GASF+GADF+MTF images, head 768 -> 512 -> classes",
    "cpu": "a small ViT trained from scratch on small images of all channels stacked, with window statistics and "
           "MiniRocket-style convolution features beside the images; sized for a few CPU cores",
    **{alias: f"the former name of {name}, still accepted" for alias, name in PRESET_ALIASES.items()},
}
#: The former names in a few words, for the help of ``--preset``.
PRESET_NOTE = "; ".join(f"{alias}: the former name of {name}" for alias, name in PRESET_ALIASES.items())


def device_preset(cuda_available: bool) -> str:
    """The preset run when none is given: :data:`GPU_PRESET` with CUDA, else ``cpu``."""
    return GPU_PRESET if cuda_available else "cpu"


def preset_name(name: str) -> str:
    """A preset's name, or the preset an alias names (:data:`PRESET_ALIASES`); an unknown name raises
    :class:`HarvitError` naming ``--preset`` and the choices."""
    name = PRESET_ALIASES.get(name, name)
    if name not in PRESETS:
        raise HarvitError(f"--preset: unknown preset {name!r}; expected one of {', '.join(PRESETS)} "
                          f"({', '.join(f'{a}: {p}' for a, p in PRESET_ALIASES.items())})")
    return name
