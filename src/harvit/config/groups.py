"""The settings of a run, grouped by their job: the data, the images, the model, the optimisation, the run.

Each group is a frozen dataclass of settings (:func:`harvit.config.fields.setting`: default, help text,
choices) with the checks of its own values (``validate``). :class:`harvit.config.Config` is their union, flat:
one flag and one ``config.json`` key per setting. The user's own data has its group in
:mod:`harvit.config.own_data`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
)
from harvit.config.fields import check, check_at_least_zero, check_choices, in_group, setting, split_list, subject_list
from harvit.config.own_data import OwnDataSettings
from harvit.config.presets import (
    DEFAULT_DATASET,
    DEFAULT_ENCODINGS,
    GPU_PRESET,
    PRESET_NOTE,
    PRESETS,
    preset_name,
)
from harvit.utils.errors import HarvitError


def training_stride(settings: Mapping[str, Any]) -> int | None:
    """The step between training-window starts that a run's settings ask for, in samples, or None for the data
    set's own stride (``train_stride`` 0, or absent from an older ``config.json``). The one reading of the
    setting: the data layer loads with it, the baselines record it."""
    return int(settings.get("train_stride") or 0) or None


def stride_for_windowing(values: dict[str, Any], explicit: Mapping[str, Any], windowing: str) -> dict[str, Any]:
    """What a preset's ``train_stride`` (in samples of the built-in :data:`HAPT_WINDOW`-sample windows) becomes
    for a data set that comes as ``windowing`` (:data:`harvit.config.settings.WINDOWINGS`); an explicit
    ``--train-stride`` or ``--train-overlap`` is kept as given.

    Returns ``values`` changed: fixed windows take no stride (0); a table, whose windows have their own length,
    takes no stride either, and its ``train_overlap``, unless given, becomes the same share of a window (never
    below its ``overlap``); raw recordings keep the stride.
    """
    values = dict(values)
    if "train_stride" in explicit or windowing == "recordings":
        return values
    if windowing == "windows":
        values["train_stride"] = 0  # a preset's denser windows need raw recordings; these ship fixed windows
    elif values.get("train_stride"):
        if "train_overlap" not in explicit:  # the training windows stay denser than the test windows
            overlap = values.get("overlap", OwnDataSettings.overlap)
            values["train_overlap"] = max(1 - values["train_stride"] / HAPT_WINDOW, overlap)
        values["train_stride"] = 0
    return values


@dataclass(frozen=True)
@in_group("data")
class DataSettings:
    """Which data set, where it lies, and how its training windows are held out for validation."""

    dataset: str = setting(DEFAULT_DATASET, "a built-in data set (%(registered)s) or a path to your own: a table "
                           "of recordings (.csv, .csv.gz, .parquet or a folder of them), an .npz of windows, or "
                           "NAME_TRAIN.ts", registry="datasets", tags={"arch"})
    data_dir: str | None = setting(None, "data folder (default: $HARVIT_DATA_DIR, then a per-user cache)")
    val_fraction: float = setting(0.2, "share of the training windows held out for validation: whole subjects whose "
                                  "windows come closest to it, every class kept in training (without subjects: "
                                  "windows, stratified by class)", tags={"resume"})
    val_subjects: str = setting("", "comma-separated subjects held out for validation, by the data's own names (e.g. "
                                "f1,m3) or ids (overrides --val-fraction); harvit cv sets it per fold", tags={"resume"})
    train_stride: int = setting(0, "step between training-window starts in samples (0: the data set's own, 64 for "
                                "HAPT); test windows keep the standard stride. hapt6/hapt12 and tables",
                                tags={"resume"})
    nan_policy: str = setting("error", "what to do with NaN/Inf in recordings", NAN_POLICIES)

    @property
    def train_stride_or_none(self) -> int | None:
        """``train_stride``, or None for the data set's own stride (:func:`training_stride`)."""
        return training_stride({"train_stride": self.train_stride})

    @property
    def val_subject_list(self) -> list[int | str] | None:
        """``val_subjects`` as ints where they are integers, else the names as given; None when the seeded
        fraction chooses them."""
        return subject_list(self.val_subjects)

    def validate(self) -> DataSettings:
        """Check the values; raise :class:`HarvitError` naming the first bad flag. The data set's name is checked
        against the registry above this layer (:func:`harvit.data.check_dataset`)."""
        check_choices(self, DataSettings)
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise HarvitError("--dataset: expected a built-in data set or a path to your own data")
        check(0 < self.val_fraction < 1, "val_fraction", self.val_fraction, "a value in (0, 1)")
        if self.val_subjects.strip() and not self.val_subject_list:
            raise HarvitError(f"--val-subjects: expected comma-separated subject names or ids, got "
                              f"{self.val_subjects!r}")
        check_at_least_zero(self, ("train_stride",))
        return self


@dataclass(frozen=True)
@in_group("images")
class ImageSettings:
    """How windows become view images on the device: the views, the encodings, the scaling, the augmentation."""

    mode: str = setting("flatten", "channels -> images: flatten (1 per channel), sensor (xyz), stack (all)", MODES,
                        tags={"encoder"})
    encodings: str = setting(DEFAULT_ENCODINGS, "comma-separated image encodings from %(registered)s",
                             registry="encodings", tags={"encoder"})
    img_size: int = setting(224, "image side in pixels", tags={"encoder"})
    scaling: str = setting("global", "global: per-channel range fitted on training subjects; window: per-window "
                           "min-max", SCALINGS, tags={"arch"})
    scale_range: str = setting("unit", "signals are mapped to [0, 1] (unit) or [-1, 1] (symmetric) before "
                               "encoding", SCALE_RANGES, tags={"arch"})
    mtf_bins: int = setting(8, "quantile bins of the Markov transition field", tags={"arch"})
    augment: bool = setting(False, "signal augmentation on the device (jitter, scale, shift, 3-D rotation)",
                            tags={"resume"})
    augment_rotation: float = setting(15.0, "largest random rotation of the sensor axes in degrees with --augment "
                                      "(0: none; 180: uniform, which also scrambles the gravity direction)",
                                      tags={"resume"})
    augment_axis: str = setting("any", "rotation axis with --augment: any (a random axis per window), one sensor axis "
                                "x, y or z, or lying (about x, the body axis of a waist-worn phone, only for "
                                "windows whose gravity lies >= 45 degrees off x, fully from 75: lying on any "
                                "side; needs total_acc channels)", AUGMENT_AXES, tags={"resume"})
    augment_jitter: float = setting(0.01, "--augment: Gaussian noise std as a fraction of each channel's std (0: off)",
                                    tags={"resume"})
    augment_scale: float = setting(0.1, "--augment: std of the random magnitude factor around 1 per sensor (0: off)",
                                   tags={"resume"})
    augment_shift: float = setting(0.1, "--augment: largest circular time shift as a fraction of the window (0: off)",
                                   tags={"resume"})

    @property
    def encoding_list(self) -> list[str]:
        return split_list(self.encodings)

    def validate(self) -> ImageSettings:
        """Check the values; raise :class:`HarvitError` naming the first bad flag. The encodings' names are
        checked against their registry above this layer (:func:`harvit.imaging.encodings.check_encodings`)."""
        check_choices(self, ImageSettings)
        encs = self.encoding_list
        if not encs:
            raise HarvitError("--encodings: no encoding given (see harvit train --help for the list)")
        if len(set(encs)) != len(encs):
            raise HarvitError(f"--encodings: repeated encoding in {self.encodings!r}")
        check(self.img_size >= 8, "img_size", self.img_size, ">= 8")
        check(self.mtf_bins >= 2, "mtf_bins", self.mtf_bins, ">= 2")
        check(0 <= self.augment_rotation <= 180, "augment_rotation", self.augment_rotation, "degrees in [0, 180]")
        check(self.augment_jitter >= 0, "augment_jitter", self.augment_jitter, ">= 0")
        check(self.augment_scale >= 0, "augment_scale", self.augment_scale, ">= 0")
        check(0 <= self.augment_shift < 1, "augment_shift", self.augment_shift, "a fraction in [0, 1)")
        return self


@dataclass(frozen=True)
@in_group("model")
class ModelSettings:
    """The network: the timm encoder, what the head reads beside the images, and the head."""

    encoder: str = setting("vit_base_patch8_224", "any timm model name", tags={"encoder"})
    pretrained: bool = setting(False, "load timm's pretrained weights (needs network)")
    pretrained_path: str | None = setting(None, "local .safetensors/.pth weights for the encoder")
    freeze_encoder: bool = setting(True, "freeze the encoder and train only the head", tags={"arch"})
    init_from: str | None = setting(None, "start from another run's weights: its run folder (best.pt) or a .pt file "
                                    "(two-stage fine-tuning; use a new --run-name)")
    patch_size: int = setting(0, "ViT patch size (0: the encoder's default)", tags={"encoder"})
    embed_dim: int = setting(0, "ViT width (0: the encoder's default)", tags={"encoder"})
    depth: int = setting(0, "ViT depth (0: the encoder's default)", tags={"encoder"})
    num_heads: int = setting(0, "ViT attention heads (0: the encoder's default)", tags={"encoder"})
    drop_path: float = setting(0.0, "stochastic depth rate of the encoder", tags={"profile"})
    window_stats: bool = setting(True, "feed the head per-window statistics (levels, spectra, axis correlations, "
                                 "gravity direction) beside the pooled image features", tags={"arch"})
    image_dropout: float = setting(0.0, "with --window-stats: chance that a training sample's image features are "
                                   "hidden from the head, so it also learns to decide from the statistics alone",
                                   tags={"profile"})
    stats_linear: bool = setting(False, "with --window-stats and/or --rocket-features: also map those features "
                                 "linearly straight to the logits (a linear classifier inside the model, trained "
                                 "with it)", tags={"arch"})
    rocket_features: int = setting(0, "random-convolution features computed inside the model beside the images "
                                   "(MiniRocket-style: 84 kernels x dilations x biases fitted on training windows; "
                                   "rounded down to a multiple of 84; 0: off; e.g. 9996)", tags={"arch"})
    images: bool = setting(True, "feed the head the pooled image features (--no-images: the head reads only the "
                           "window statistics and/or the convolution features; for ablations)", tags={"arch"})
    hidden_dims: str = setting("512", "comma-separated hidden widths of the MLP head ('' for a linear head)",
                               tags={"arch"})
    dropout: float = setting(0.1, "dropout in the head", tags={"profile"})

    @property
    def hidden_dim_list(self) -> list[int]:
        return [int(h) for h in split_list(self.hidden_dims)]

    def validate(self) -> ModelSettings:
        """Check the values; raise :class:`HarvitError` naming the first bad flag."""
        check_choices(self, ModelSettings)
        try:
            hidden = self.hidden_dim_list
        except ValueError:
            raise HarvitError(f"--hidden-dims: expected comma-separated integers, got {self.hidden_dims!r}") from None
        check(all(h > 0 for h in hidden), "hidden_dims", self.hidden_dims, "positive widths")
        check(0 <= self.dropout < 1, "dropout", self.dropout, "a value in [0, 1)")
        check(0 <= self.image_dropout < 1, "image_dropout", self.image_dropout, "a value in [0, 1)")
        check(self.window_stats or self.rocket_features > 0 or not self.stats_linear, "stats_linear",
              self.stats_linear, "--window-stats or --rocket-features with it (it maps those features to the logits)")
        check(self.rocket_features == 0 or self.rocket_features >= 84, "rocket_features", self.rocket_features,
              "0 (off) or >= 84")
        check(self.images or self.window_stats or self.rocket_features > 0, "no_images", self.images,
              "--window-stats or --rocket-features with it (the head needs something to read)")
        check(0 <= self.drop_path < 1, "drop_path", self.drop_path, "a value in [0, 1)")
        check_at_least_zero(self, ("patch_size", "embed_dim", "depth", "num_heads"))
        return self


@dataclass(frozen=True)
@in_group("optimisation")
class OptimSettings:
    """How the model is trained: epochs, batches, the AdamW schedule, averaging, selection and refit."""

    epochs: int = setting(20, "training epochs")
    batch_size: int = setting(32, "images per optimiser micro-batch", tags={"profile"})
    eval_batch_size: int = setting(256, "images per batch at evaluation and feature caching")
    lr: float = setting(1e-3, "peak learning rate (AdamW)")
    min_lr: float = setting(1e-6, "final learning rate of the cosine schedule")
    weight_decay: float = setting(1e-4, "AdamW weight decay")
    warmup_epochs: float = setting(2.0, "linear warmup epochs")
    label_smoothing: float = setting(0.1, "label smoothing of the cross-entropy")
    grad_clip: float = setting(1.0, "max gradient norm (0: off)")
    accum_steps: int = setting(1, "gradient accumulation steps")
    ema_decay: float = setting(0.0, "exponential moving average of the weights (timm ModelEmaV3, with warmup): "
                               "validation, best.pt and the test use the averaged weights (0: off; e.g. 0.998)",
                               tags={"resume"})
    early_stopping_patience: int = setting(7, "epochs without validation gain before stopping (0: off)")
    refit: bool = setting(True, "after model selection on the validation split, train again from the start on "
                          "training + validation windows for the selected number of epochs (same seed and schedule "
                          "shape) and test that model (best.pt; the selection's best is kept as selected.pt); "
                          "--no-refit: test the selection's best.pt", tags={"resume"})
    class_balance: str = setting("none", "rare classes in training: none (plain loss; the default: class weights "
                                 "collapsed hapt12, docs/results.md), weights (class-weighted loss, weight "
                                 "N / (K * n_class)) or sampler (each epoch draws windows with probability "
                                 "1 / n_class)",
                                 choices=CLASS_BALANCES, tags={"resume"})

    def validate(self) -> OptimSettings:
        """Check the values; raise :class:`HarvitError` naming the first bad flag."""
        check_choices(self, OptimSettings)
        check(self.epochs >= 1, "epochs", self.epochs, ">= 1")
        check(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        check(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, ">= 1")
        check(self.lr > 0, "lr", self.lr, "> 0")
        check(self.min_lr >= 0, "min_lr", self.min_lr, ">= 0")
        check(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        check(self.warmup_epochs >= 0, "warmup_epochs", self.warmup_epochs, ">= 0")
        check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "a value in [0, 1)")
        check(self.grad_clip >= 0, "grad_clip", self.grad_clip, ">= 0")
        check(self.accum_steps >= 1, "accum_steps", self.accum_steps, ">= 1")
        check(self.early_stopping_patience >= 0, "early_stopping_patience", self.early_stopping_patience, ">= 0")
        check(0 <= self.ema_decay < 1, "ema_decay", self.ema_decay, "a value in [0, 1)")
        return self


@dataclass(frozen=True)
@in_group("run")
class RunSettings:
    """Where and how the run runs: seeds, device, precision, threads, its folder, resuming, logging, the preset."""

    seed: int = setting(42, "random seed", tags={"resume", "profile"})
    split_seed: int | None = setting(None, "seed of the validation-subject draw (default: --seed); runs with one "
                                     "--split-seed and several --seed differ only in initialisation and order",
                                     tags={"resume"})
    deterministic: bool = setting(False, "deterministic algorithms (bit-exact resume)")
    device: str = setting("auto", "auto picks CUDA when present, else CPU", DEVICES, tags={"profile"})
    threads: int = setting(0, "CPU threads for torch (0: torch's default)", tags={"profile"})
    amp: bool = setting(True, "automatic mixed precision on CUDA", tags={"profile"})
    amp_dtype: str = setting("bf16", "AMP dtype", choices=AMP_DTYPES, tags={"profile"})
    compile: bool = setting(False, "torch.compile the model")
    feature_cache: bool = setting(True, "frozen encoder and no augmentation: cache encoder features once")
    output_dir: str = setting("checkpoints", "folder of run folders")
    run_name: str = setting("optimized", "run folder name under --output-dir")
    resume: bool = setting(False, "continue from the run's latest.pt")
    progress: bool = setting(True, "tqdm progress bars")
    tensorboard: bool = setting(True, "write TensorBoard scalars under the run's logs/")
    report: bool = setting(True, "write report.md and plots/ after training (--no-report: for quick experiments)")
    baselines: bool = setting(True, "fit the baselines (logistic regression, boosted trees; MiniRocket, "
                              "MultiRocket-Hydra, QUANT with aeon) for the report's verdict (--no-baselines: the "
                              "report without them; cached per windows and split)")
    baseline_set: str = setting("auto", "which baselines to fit: all, fast (those of the fast cost tier) or auto (all "
                                "when the training windows hold few samples, windows x channels x length, else "
                                "fast); `harvit baseline --run RUN --baseline-set all` adds the rest to the run's "
                                "report later", BASELINE_SETS)
    preset: str | None = setting(None, f"the settings to start from, flags override them: {', '.join(PRESETS)} "
                                 f"({PRESET_NOTE}); default by device: {GPU_PRESET} with CUDA, else cpu",
                                 tags={"profile"})

    @property
    def val_seed(self) -> int:
        """The seed that draws the validation subjects: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.run_name

    def validate(self) -> RunSettings:
        """Check the values; raise :class:`HarvitError` naming the first bad flag."""
        check_choices(self, RunSettings)
        check_at_least_zero(self, ("threads",))
        if self.preset is not None:
            preset_name(self.preset)  # a preset or a former name of one (a saved config.json); else one error
        if not self.run_name or "/" in self.run_name or self.run_name in (".", ".."):
            raise HarvitError(f"--run-name: {self.run_name!r} is not a plain folder name")
        return self
