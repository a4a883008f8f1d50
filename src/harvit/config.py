"""One source of truth for settings.

:class:`Config` holds every setting with its default and help text. The CLI flags
(:mod:`harvit.cli`), the presets, the saved ``config.json`` and the Python API all come from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError

HAPT_WINDOW = 128
"""Samples per window of the built-in data sets (2.56 s at 50 Hz): the presets' ``train_stride`` is in these."""
MODES = ("flatten", "sensor", "stack")
SCALINGS = ("global", "window")
SCALE_RANGES = ("unit", "symmetric")
AUGMENT_AXES = ("any", "x", "y", "z", "lying")
AMP_DTYPES = ("bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
NAN_POLICIES = ("error", "drop", "interpolate")
CLASS_BALANCES = ("none", "weights", "sampler")
TIME_UNITS = ("auto", "s", "ms", "us", "ns")
SUBJECT_SOURCES = ("auto", "column", "folder", "file", "none")
BASELINE_SETS = ("auto", "fast", "all")
OWN_DATA_FIELDS = ("label_column", "subject_column", "recording_column", "time_column", "time_unit", "subject_from",
                   "channels", "columns", "rate", "window_s", "overlap", "train_overlap", "lowpass", "gravity_split",
                   "test_subjects", "test_fraction")
"""Settings of the user's own data (``--dataset PATH``): :class:`harvit.data.options.OwnOptions`."""

#: The settings that must match, defined once each.
#: Settings of the encoder and its images: ``--init-from`` takes weights only from a run that shares them.
ENCODER_KEYS = ("mode", "encodings", "img_size", "encoder", "patch_size", "embed_dim", "depth", "num_heads")
#: Settings that change the network's shape or meaning: a checkpoint with other values is refused.
ARCH_KEYS = ("dataset", *ENCODER_KEYS, "hidden_dims", "window_stats", "stats_linear", "rocket_features", "images",
             "scaling", "scale_range", "mtf_bins", "freeze_encoder")
#: Settings a resumed run must share with its checkpoint: the architecture, the data split and the averaging.
RESUME_KEYS = (*ARCH_KEYS, "seed", "split_seed", "val_fraction", "val_subjects", "train_stride", "train_overlap",
               "ema_decay", "refit", "class_balance", "augment", "augment_rotation", "augment_axis", "augment_jitter",
               "augment_scale", "augment_shift")
#: Settings ``harvit profile`` reads (the model, its images, the batch, the runtime); its help lists only these.
PROFILE_KEYS = ("dataset", *ENCODER_KEYS, "scaling", "scale_range", "mtf_bins", "freeze_encoder", "drop_path",
                "window_stats", "image_dropout", "stats_linear", "hidden_dims", "dropout", "batch_size", "amp",
                "amp_dtype", "seed", "device", "threads", "preset", "rocket_features", "images")


def _f(default: Any, help: str, group: str = "train", choices: tuple[str, ...] | None = None, **kw: Any) -> Any:
    meta = {"help": help, "group": group}
    if choices is not None:
        meta["choices"] = choices
    meta.update(kw)
    return field(default=default, metadata=meta)


@dataclass
class Config:
    """Every setting of a harvit run. Field metadata holds the help text and CLI group."""

    # data
    dataset: str = _f("hapt6", "a built-in data set (%(registered)s) or a path to your own: a table of "
                      "recordings (.csv, .csv.gz, .parquet or a folder of them), an .npz of windows, or NAME_TRAIN.ts",
                      "data", registry="datasets")
    data_dir: str | None = _f(None, "data folder (default: $HARVIT_DATA_DIR, then a per-user cache)", "data")
    val_fraction: float = _f(0.2, "share of the training windows held out for validation: whole subjects whose "
                             "windows come closest to it, every class kept in training (without subjects: "
                             "windows, stratified by class)", "data")
    val_subjects: str = _f("", "comma-separated subjects held out for validation, by the data's own names (e.g. "
                           "f1,m3) or ids (overrides --val-fraction); harvit cv sets it per fold", "data")
    train_stride: int = _f(0, "step between training-window starts in samples (0: the data set's own, 64 for "
                           "HAPT); test windows keep the standard stride. hapt6/hapt12 and tables", "data")
    nan_policy: str = _f("error", "what to do with NaN/Inf in recordings", "data", NAN_POLICIES)
    # your own data (--dataset PATH); every one of these goes into the prepared-windows cache key
    label_column: str | None = _f(None, "table column of the activity labels; unset: the first of label, activity, "
                                  "class. An empty cell is an unlabelled sample", "data")
    subject_column: str | None = _f(None, "table column of the subject ids; unset: the first of subject, user, "
                                    "participant (none: windows are split stratified by class, with a warning)", "data")
    recording_column: str | None = _f(None, "table column of the recording ids; a window never crosses recordings "
                                      "(unset: the first of recording, session, experiment, else each file and "
                                      "subject)", "data")
    time_column: str | None = _f(None, "table column of the sample times in s, ms, us, ns or ISO datetimes, detected "
                                 "(unset: the first of time, timestamp, time_s, t; none: --rate is required)", "data")
    time_unit: str = _f("auto", "unit of a numeric time column; auto: a name suffix (_s, _ms, _us, _ns), else the "
                        "unit whose median step gives 1-1000 Hz, else an epoch magnitude", "data", TIME_UNITS)
    subject_from: str = _f("auto", "where a table's subjects come from; auto: the subject column, else (files in "
                           "subfolders) the first folder level under the data set's folder, else none; file: each "
                           "file's name; none: no subjects (windows split stratified by class)", "data",
                           SUBJECT_SOURCES)
    channels: str | None = _f(None, "comma-separated table columns used as channels (unset: every other numeric "
                              "column); <sensor>_x/_y/_z names form sensor triples", "data")
    columns: str | None = _f(None, "comma-separated column names of header-less CSV files (unset: a first line "
                             "holding a number is data, and the columns are named by what they hold)", "data")
    rate: float = _f(0.0, "sampling rate in Hz: tables are resampled to it (anti-aliased; 0: the data's own rate, "
                     "required for tables without a time column); .npz/.ts without a stated rate: their rate",
                     "data")
    window_s: float = _f(2.56, "table windows: length in seconds", "data")
    overlap: float = _f(0.5, "table windows: overlap of consecutive windows, a fraction in [0, 1)", "data")
    train_overlap: float = _f(0.0, "table windows: overlap of consecutive *training* windows, a fraction in [0, 1) "
                              "(0: --overlap; the cpu preset's 0.75 on tables is its --train-stride 32 of 128); "
                              "test windows keep --overlap", "data")
    lowpass: float = _f(0.0, "table preprocessing: 3-sample median filter and a 3rd-order Butterworth low-pass at "
                        "this cutoff in Hz on every channel (UCI HAR: 20; 0: off)", "data")
    gravity_split: str | None = _f(None, "table preprocessing: split the total-acceleration triple SENSOR_x/_y/_z at "
                                   "0.3 Hz into body_SENSOR_* (in place) and total_SENSOR_* (appended), as UCI HAR",
                                   "data")
    test_subjects: str | None = _f(None, "own data: comma-separated subjects (names or ids) held out for test "
                                   "(unset: a seeded draw of --test-fraction of the subjects; files with their own "
                                   "split keep it)", "data")
    test_fraction: float = _f(0.3, "own data without --test-subjects or a split of its own: fraction of the subjects "
                              "(or, without subjects, of each class's windows) held out for test", "data")
    # views and images
    mode: str = _f("flatten", "channels -> images: flatten (1 per channel), sensor (xyz), stack (all)",
                   "images", MODES)
    encodings: str = _f("gasf,gadf,mtf", "comma-separated image encodings from %(registered)s", "images",
                        registry="encodings")
    img_size: int = _f(224, "image side in pixels", "images")
    scaling: str = _f("global", "global: per-channel range fitted on training subjects; window: per-window "
                      "min-max", "images", SCALINGS)
    scale_range: str = _f("unit", "signals are mapped to [0, 1] (unit) or [-1, 1] (symmetric) before encoding",
                          "images", SCALE_RANGES)
    mtf_bins: int = _f(8, "quantile bins of the Markov transition field", "images")
    augment: bool = _f(False, "signal augmentation on the device (jitter, scale, shift, 3-D rotation)", "images")
    augment_rotation: float = _f(15.0, "largest random rotation of the sensor axes in degrees with --augment "
                                 "(0: none; 180: uniform, which also scrambles the gravity direction)", "images")
    augment_axis: str = _f("any", "rotation axis with --augment: any (a random axis per window), one sensor axis "
                           "x, y or z, or lying (about x, the body axis of a waist-worn phone, only for "
                           "windows whose gravity lies >= 45 degrees off x, fully from 75: lying on any "
                           "side; needs total_acc channels)", "images", AUGMENT_AXES)
    augment_jitter: float = _f(0.01, "--augment: Gaussian noise std as a fraction of each channel's std (0: off)",
                               "images")
    augment_scale: float = _f(0.1, "--augment: std of the random magnitude factor around 1 per sensor (0: off)",
                              "images")
    augment_shift: float = _f(0.1, "--augment: largest circular time shift as a fraction of the window (0: off)",
                              "images")
    # model
    encoder: str = _f("vit_base_patch8_224", "any timm model name", "model")
    pretrained: bool = _f(False, "load timm's pretrained weights (needs network)", "model")
    pretrained_path: str | None = _f(None, "local .safetensors/.pth weights for the encoder", "model")
    freeze_encoder: bool = _f(True, "freeze the encoder and train only the head", "model")
    init_from: str | None = _f(None, "start from another run's weights: its run folder (best.pt) or a .pt file "
                               "(two-stage fine-tuning; use a new --run-name)", "model")
    patch_size: int = _f(0, "ViT patch size (0: the encoder's default)", "model")
    embed_dim: int = _f(0, "ViT width (0: the encoder's default)", "model")
    depth: int = _f(0, "ViT depth (0: the encoder's default)", "model")
    num_heads: int = _f(0, "ViT attention heads (0: the encoder's default)", "model")
    drop_path: float = _f(0.0, "stochastic depth rate of the encoder", "model")
    window_stats: bool = _f(True, "feed the head per-window statistics (levels, spectra, axis correlations, "
                            "gravity direction) beside the pooled image features", "model")
    image_dropout: float = _f(0.0, "with --window-stats: chance that a training sample's image features are "
                              "hidden from the head, so it also learns to decide from the statistics alone", "model")
    stats_linear: bool = _f(False, "with --window-stats and/or --rocket-features: also map those features linearly "
                            "straight to the logits (a linear classifier inside the model, trained with it)", "model")
    rocket_features: int = _f(0, "random-convolution features computed inside the model beside the images "
                              "(MiniRocket-style: 84 kernels x dilations x biases fitted on training windows; "
                              "rounded down to a multiple of 84; 0: off; e.g. 9996)", "model")
    images: bool = _f(True, "feed the head the pooled image features (--no-images: the head reads only the "
                      "window statistics and/or the convolution features; for ablations)", "model")
    hidden_dims: str = _f("512", "comma-separated hidden widths of the MLP head ('' for a linear head)", "model")
    dropout: float = _f(0.1, "dropout in the head", "model")
    # optimisation
    epochs: int = _f(20, "training epochs")
    batch_size: int = _f(32, "images per optimiser micro-batch")
    eval_batch_size: int = _f(256, "images per batch at evaluation and feature caching")
    lr: float = _f(1e-3, "peak learning rate (AdamW)")
    min_lr: float = _f(1e-6, "final learning rate of the cosine schedule")
    weight_decay: float = _f(1e-4, "AdamW weight decay")
    warmup_epochs: float = _f(2.0, "linear warmup epochs")
    label_smoothing: float = _f(0.1, "label smoothing of the cross-entropy")
    grad_clip: float = _f(1.0, "max gradient norm (0: off)")
    accum_steps: int = _f(1, "gradient accumulation steps")
    ema_decay: float = _f(0.0, "exponential moving average of the weights (timm ModelEmaV3, with warmup): validation, "
                          "best.pt and the test use the averaged weights (0: off; e.g. 0.998)")
    early_stopping_patience: int = _f(7, "epochs without validation gain before stopping (0: off)")
    refit: bool = _f(True, "after model selection on the validation split, train again from the start on training "
                     "+ validation windows for the selected number of epochs (same seed and schedule shape) and "
                     "test that model (best.pt; the selection's best is kept as selected.pt); --no-refit: test the "
                     "selection's best.pt")
    class_balance: str = _f("weights", "rare classes in training: weights (class-weighted loss, weight "
                            "N / (K * n_class)), sampler (each epoch draws windows with probability 1 / n_class) "
                            "or none (docs/ACCURACY.md: chosen on validation)",
                            choices=CLASS_BALANCES)
    amp: bool = _f(True, "automatic mixed precision on CUDA")
    amp_dtype: str = _f("bf16", "AMP dtype", choices=AMP_DTYPES)
    compile: bool = _f(False, "torch.compile the model")
    feature_cache: bool = _f(True, "frozen encoder and no augmentation: cache encoder features once")
    # runtime
    seed: int = _f(42, "random seed", "runtime")
    split_seed: int | None = _f(None, "seed of the validation-subject draw (default: --seed); runs with one "
                                "--split-seed and several --seed differ only in initialisation and order", "runtime")
    deterministic: bool = _f(False, "deterministic algorithms (bit-exact resume)", "runtime")
    device: str = _f("auto", "auto picks CUDA when present, else CPU", "runtime", DEVICES)
    threads: int = _f(0, "CPU threads for torch (0: torch's default)", "runtime")
    output_dir: str = _f("checkpoints", "folder of run folders", "runtime")
    run_name: str = _f("optimized", "run folder name under --output-dir", "runtime")
    resume: bool = _f(False, "continue from the run's latest.pt", "runtime")
    progress: bool = _f(True, "tqdm progress bars", "runtime")
    tensorboard: bool = _f(True, "write TensorBoard scalars under the run's logs/", "runtime")
    report: bool = _f(True, "write report.md and plots/ after training (--no-report: for quick experiments)",
                      "report")
    baselines: bool = _f(True, "fit the baselines (logistic regression, boosted trees; MiniRocket, "
                         "MultiRocket-Hydra, QUANT with aeon) for the report's verdict (--no-baselines: the report "
                         "without them; cached per windows and split)", "report")
    baseline_set: str = _f("auto", "which baselines to fit: all, fast (those of the fast cost tier) or auto (all when "
                           "the training windows hold few samples, windows x channels x length, else fast); "
                           "`harvit baseline --run RUN --baseline-set all` adds the rest to the run's report later",
                           "report", BASELINE_SETS)
    preset: str | None = _f(None, "preset: pix2seq (GPU reference design) or cpu; default by device", "runtime")

    # ---- derived values -------------------------------------------------------------------
    @property
    def encoding_list(self) -> list[str]:
        return [e.strip() for e in self.encodings.split(",") if e.strip()]

    @property
    def hidden_dim_list(self) -> list[int]:
        return [int(h) for h in self.hidden_dims.split(",") if h.strip()]

    @property
    def train_stride_or_none(self) -> int | None:
        """``train_stride``, or None for the data set's own stride."""
        return self.train_stride or None

    @property
    def val_subject_list(self) -> list[int | str] | None:
        """``val_subjects`` as ints where they are integers, else the names as given; None when the seeded
        fraction chooses them."""
        tokens = [s.strip() for s in self.val_subjects.split(",") if s.strip()]
        return [int(t) if t.lstrip("-").isdigit() else t for t in tokens] or None

    @property
    def val_seed(self) -> int:
        """The seed that draws the validation subjects: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.run_name

    def validate(self) -> Config:
        """Check every value; raise :class:`HarvitError` naming the first bad flag."""
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            v = getattr(self, f.name)
            if choices and v is not None and v not in choices:
                raise HarvitError(f"--{_flag(f.name)}: unknown value {v!r}; expected one of {', '.join(choices)}")
        # The names of data sets and encodings live in their registries (harvit.data, harvit.imaging), which
        # sit above this layer: harvit.data.check_dataset and harvit.imaging.encodings.check_encodings check them.
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise HarvitError("--dataset: expected a built-in data set or a path to your own data")
        _check(self.rate >= 0, "rate", self.rate, "a rate in Hz >= 0 (0: the data's own)")
        _check(self.window_s > 0, "window-s", self.window_s, "a window length in seconds > 0")
        _check(0 <= self.overlap < 1, "overlap", self.overlap, "a fraction in [0, 1)")
        _check(0 <= self.train_overlap < 1, "train-overlap", self.train_overlap, "a fraction in [0, 1)")
        _check(self.lowpass >= 0, "lowpass", self.lowpass, "a cutoff in Hz >= 0 (0: off)")
        _check(0 < self.test_fraction < 1, "test-fraction", self.test_fraction, "a fraction in (0, 1)")
        encs = self.encoding_list
        if not encs:
            raise HarvitError("--encodings: no encoding given (see harvit train --help for the list)")
        if len(set(encs)) != len(encs):
            raise HarvitError(f"--encodings: repeated encoding in {self.encodings!r}")
        try:
            hidden = self.hidden_dim_list
        except ValueError:
            raise HarvitError(f"--hidden-dims: expected comma-separated integers, got {self.hidden_dims!r}") from None
        _check(all(h > 0 for h in hidden), "hidden-dims", self.hidden_dims, "positive widths")
        _check(0 < self.val_fraction < 1, "val-fraction", self.val_fraction, "a value in (0, 1)")
        if self.val_subjects.strip() and not self.val_subject_list:
            raise HarvitError(f"--val-subjects: expected comma-separated subject names or ids, got "
                              f"{self.val_subjects!r}")
        _check(self.img_size >= 8, "img-size", self.img_size, ">= 8")
        _check(self.mtf_bins >= 2, "mtf-bins", self.mtf_bins, ">= 2")
        _check(self.epochs >= 1, "epochs", self.epochs, ">= 1")
        _check(self.batch_size >= 1, "batch-size", self.batch_size, ">= 1")
        _check(self.eval_batch_size >= 1, "eval-batch-size", self.eval_batch_size, ">= 1")
        _check(self.lr > 0, "lr", self.lr, "> 0")
        _check(self.min_lr >= 0, "min-lr", self.min_lr, ">= 0")
        _check(self.weight_decay >= 0, "weight-decay", self.weight_decay, ">= 0")
        _check(self.warmup_epochs >= 0, "warmup-epochs", self.warmup_epochs, ">= 0")
        _check(0 <= self.label_smoothing < 1, "label-smoothing", self.label_smoothing, "a value in [0, 1)")
        _check(self.grad_clip >= 0, "grad-clip", self.grad_clip, ">= 0")
        _check(self.accum_steps >= 1, "accum-steps", self.accum_steps, ">= 1")
        _check(self.early_stopping_patience >= 0, "early-stopping-patience", self.early_stopping_patience, ">= 0")
        _check(0 <= self.ema_decay < 1, "ema-decay", self.ema_decay, "a value in [0, 1)")
        _check(0 <= self.dropout < 1, "dropout", self.dropout, "a value in [0, 1)")
        _check(0 <= self.image_dropout < 1, "image-dropout", self.image_dropout, "a value in [0, 1)")
        _check(self.window_stats or self.rocket_features > 0 or not self.stats_linear, "stats-linear",
               self.stats_linear, "--window-stats or --rocket-features with it (it maps those features to the logits)")
        _check(self.rocket_features == 0 or self.rocket_features >= 84, "rocket-features", self.rocket_features,
               "0 (off) or >= 84")
        _check(self.images or self.window_stats or self.rocket_features > 0, "no-images", self.images,
               "--window-stats or --rocket-features with it (the head needs something to read)")
        _check(0 <= self.drop_path < 1, "drop-path", self.drop_path, "a value in [0, 1)")
        _check(0 <= self.augment_rotation <= 180, "augment-rotation", self.augment_rotation, "degrees in [0, 180]")
        _check(self.augment_jitter >= 0, "augment-jitter", self.augment_jitter, ">= 0")
        _check(self.augment_scale >= 0, "augment-scale", self.augment_scale, ">= 0")
        _check(0 <= self.augment_shift < 1, "augment-shift", self.augment_shift, "a fraction in [0, 1)")
        for name in ("patch_size", "embed_dim", "depth", "num_heads", "threads", "train_stride"):
            _check(getattr(self, name) >= 0, _flag(name), getattr(self, name), ">= 0")
        if self.preset is not None and self.preset not in PRESETS:
            raise HarvitError(f"--preset: unknown preset {self.preset!r}; expected one of {', '.join(PRESETS)}")
        if not self.run_name or "/" in self.run_name or self.run_name in (".", ".."):
            raise HarvitError(f"--run-name: {self.run_name!r} is not a plain folder name")
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


def _type_ok(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field annotated with ``int``, ``float``, ``bool``, ``str``, ``... | None``."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None or isinstance(value, bool):
        return ("None" if value is None else "bool") in kinds
    return any(isinstance(value, {"int": int, "float": (int, float), "str": str}.get(k, ())) for k in kinds)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _check(ok: bool, flag: str, value: Any, expected: str) -> None:
    if not ok:
        raise HarvitError(f"--{flag}: got {value!r}, expected {expected}")


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


#: How a data set comes, as the data layer tells :func:`resolve` (``harvit.data.windowing``): cut from raw
#: recordings by the built-in recipe (a training stride applies), in fixed windows (no stride applies: UCI HAR,
#: .npz, .ts), or a table of recordings with its own window length (a stride becomes an overlap).
WINDOWINGS = ("recordings", "windows", "table")


def resolve(explicit: dict[str, Any], cuda_available: bool, windowing: Callable[[str], str]) -> tuple[Config, str]:
    """Defaults < preset < explicit settings. Returns the config and the preset used.

    Args:
        explicit: the settings given (flags, a config file).
        cuda_available: picks the preset when none is given (pix2seq with CUDA, else cpu).
        windowing: data set name or path -> one of :data:`WINDOWINGS` (``harvit.data.windowing``: the data
            sets are known above this layer), which decides what a preset's ``train_stride`` becomes.
    """
    preset = explicit.get("preset") or ("pix2seq" if cuda_available else "cpu")
    if preset not in PRESETS:
        raise HarvitError(f"--preset: unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **explicit, "preset": preset}
    kind = windowing(values.get("dataset", Config.dataset))
    if kind == "windows" and "train_stride" not in explicit:
        values["train_stride"] = 0  # a preset's denser windows need raw recordings; these ship fixed windows
    elif (kind == "table" and values.get("train_stride") and "train_stride" not in explicit
          and "train_overlap" not in explicit):
        # a table's windows have their own length: the preset's stride (in samples of HAPT's 128-sample
        # windows) becomes the same overlap, so training windows stay denser than the test windows
        values["train_overlap"] = max(1 - values["train_stride"] / HAPT_WINDOW, values.get("overlap", Config.overlap))
        values["train_stride"] = 0
    return Config.from_dict(values, source="settings").validate(), preset
