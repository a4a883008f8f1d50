"""The defaults that name registered things, and the presets: overrides of the defaults.

The data set and encodings named here are registered above this layer (``harvit.data``,
``harvit.imaging.encodings``); a test checks that they are.
"""

from __future__ import annotations

from typing import Any

DEFAULT_DATASET = "hapt6"
DEFAULT_ENCODINGS = "gasf,gadf,mtf"

#: Presets: overrides of the defaults. Explicit flags override a preset.
PRESETS: dict[str, dict[str, Any]] = {
    # The reference design: frozen ViT-B/8 at 224 px, flatten mode, 768 -> 512 -> classes head.
    "pix2seq": dict(
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
    # A small ViT trained from scratch, sized by measurement to train on 2 CPU cores in minutes.
    "cpu": dict(
        encoder="vit_tiny_patch16_224",
        img_size=24,
        patch_size=4,
        embed_dim=96,
        depth=3,
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
        ema_decay=0.998,  # a smooth validation curve: selection picks less noise (docs/ACCURACY.md)
        image_dropout=0.5,  # the head also learns to decide from the statistics alone
        rocket_features=9996,  # MiniRocket-style convolution features in the model: +2 points (docs/ACCURACY.md)
    ),
}
