"""Build a run from a config: resume checks, data, model, optimiser, schedule, EMA and loop state.

Everything the loop needs sits in one :class:`Run`. Building reads ``latest.pt`` first when
resuming (it decides what may be built) and refuses a run folder that already holds a run.

A run has two phases (``TrainState.phase``): ``select`` trains on the training split and validates
each epoch; ``refit`` (``--refit``, built with the selection's summary) trains a fresh model on
training + validation windows for the selected number of epochs, with no validation. ``latest.pt``
names its phase, so ``--resume`` rebuilds the phase it was written in.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils.model_ema import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from harvit.config import RESUME_KEYS, Config
from harvit.data import Dataset, Windows, load_run_dataset, train_val_split
from harvit.data.channels import gravity_triple, sensor_triples
from harvit.evaluation.inference import Split
from harvit.imaging.encodings import check_encodings
from harvit.imaging.scaling import Scaler
from harvit.models.checkpoint import (
    ENCODER_KEYS,
    checkpoint_file,
    config_differences,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from harvit.models.classifier import WindowClassifier, build_classifier
from harvit.models.encoder import attention_for, check_encoder_name
from harvit.training.distributed import Dist
from harvit.training.optim import build_optimizer, build_scheduler, class_weights, warmup_clamp_note
from harvit.training.state import TrainState, rng_state, set_rng_state
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log
from harvit.utils.runtime import AutocastFactory, autocast_factory, pick_device, setup_runtime


@dataclass
class Augmenter:
    """Signal augmentation of the run (``--augment``): its generator and the sensor triples it turns."""

    generator: torch.Generator
    triples: list[tuple[int, int, int]]
    gravity: tuple[int, int, int] | None


@dataclass
class Run:
    """One training run: settings, device, data splits on the device, model, optimisation and loop state.

    A training sample is one view of one window: sample id ``s`` is window ``s // V``, view ``s % V``.
    Under torchrun ``dist`` says which rank this is and ``ddp`` wraps ``model.net`` (set by ``fit``).
    ``epochs``: the epochs of this phase (``cfg.epochs``; in the refit, the selected epoch).
    ``class_weights`` [K] (``--class-balance weights``) weigh the loss; ``sample_weights`` [N * V]
    (``--class-balance sampler``) draw each epoch's samples.
    """

    cfg: Config
    device: torch.device
    autocast: AutocastFactory
    dataset: Dataset
    windows: dict[str, Windows]
    splits: dict[str, Split]
    classes: list[str]
    channels: list[str]
    model: WindowClassifier
    ema: ModelEmaV3 | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    grad_scaler: torch.amp.GradScaler
    augmenter: Augmenter | None
    use_feature_cache: bool
    samples_per_step: int
    steps_per_epoch: int
    state: TrainState
    t_start: float = field(default_factory=time.perf_counter)
    feature_batch: int = 0
    dist: Dist = field(default_factory=Dist)
    ddp: DistributedDataParallel | None = None
    epochs: int = 0
    class_weights: torch.Tensor | None = None
    sample_weights: torch.Tensor | None = None
    cache_s: float = 0.0

    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir

    @property
    def n_views(self) -> int:
        return self.model.n_views

    @property
    def net(self) -> nn.Module:
        """The trainable network as the step calls it: DDP around ``model.net`` under torchrun, else itself."""
        return self.ddp if self.ddp is not None else self.model.net

    @property
    def eval_model(self) -> WindowClassifier:
        """The weights that are validated, kept as best.pt and tested: the EMA when on, else the live model."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def validates(self) -> bool:
        """Whether this phase validates each epoch (selection) or trains on the validation windows (refit)."""
        return "val" in self.splits

    @property
    def global_step(self) -> int:
        return self.state.epoch * self.steps_per_epoch + self.state.step_in_epoch

    def distribute(self) -> None:
        """Under torchrun: every rank takes rank 0's model (and EMA) and ``model.net`` is wrapped in DDP.
        A no-op in a single process."""
        if self.dist.enabled and self.ddp is None:
            self.dist.broadcast_module(self.model)
            if self.ema is not None:
                self.dist.broadcast_module(self.ema.module)
            self.ddp = self.dist.wrap(self.model.net)

    def elapsed(self) -> float:
        return self.state.elapsed_before + (time.perf_counter() - self.t_start)

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the run is (under torchrun: every rank's random
        streams too; all ranks call it)."""
        rng = rng_state(self.augmenter.generator if self.augmenter else None)
        state = {
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.grad_scaler.state_dict(),
            **self.state.to_dict(),
            "rng": rng,
            "elapsed_s": self.elapsed(),
            "classes": self.classes,
            "channels": self.channels,
            "rate_hz": float(self.dataset.train.rate_hz),
            "window_length": int(self.dataset.train.length),
        }
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
        if self.dist.enabled:
            state["world_size"] = self.dist.world_size
            state["rng_ranks"] = self.dist.all_gather_object(rng)
        return state

    def save(self, name: str) -> None:
        """latest.pt holds the live weights (and the EMA); best.pt holds the weights that were validated.

        Every rank calls it; rank 0 writes."""
        state = self.checkpoint()
        if name == "best.pt" and self.ema is not None:
            state["model"] = state.pop("ema")
        self.dist.on_main(save_checkpoint, self.run_dir / name, state)


def read_resume_checkpoint(cfg: Config) -> dict[str, Any] | None:
    """``latest.pt`` when resuming (after checking its settings), None for a fresh run.

    Raises :class:`HarvitError` for a resume with other settings, or a fresh run into a folder that
    already holds one.
    """
    latest = cfg.run_dir / "latest.pt"
    if cfg.resume and not latest.is_file():  # stopped before its first checkpoint: nothing to lose
        log(f"resume: no checkpoint at {latest} yet; starting the run from the beginning")
        return None
    if cfg.resume:
        c = load_checkpoint(latest)
        saved = {**Config().to_dict(), **c["config"]}  # settings newer than the file: their defaults
        diffs = config_differences(saved, cfg.to_dict(), RESUME_KEYS)
        if diffs:
            raise HarvitError(f"--resume: {latest} was trained with other settings ({'; '.join(diffs)}); "
                              "use the same settings, or start a new --run-name with --init-from")
        return c
    if latest.is_file():
        raise HarvitError(f"{cfg.run_dir} already holds a run; pass --resume to continue it, or choose "
                          f"another --run-name / --output-dir (with --init-from {cfg.run_dir} to start from its "
                          "weights, e.g. a second fine-tuning stage)")
    return None


def build_run(cfg: Config, dataset: Dataset | None = None, dist: Dist | None = None,
              selection: dict[str, Any] | None = None) -> Run:
    """Build (or rebuild for ``--resume``) the run of ``cfg``; under torchrun, this rank's part of it.

    A given ``dataset`` is used as it is: ``cfg.dataset``, ``data_dir`` and ``train_stride`` then only
    label the run. Building holds no collective (torchrun's ranks agree on its errors afterwards).
    With ``selection`` (what the selection phase chose: ``best_epoch`` ...) it builds the refit phase:
    a fresh model (same seed) whose scaler and statistics are fitted on training + validation windows
    (with the feature cache the scaler stays the selection's, so the encoder features are reused), trained
    on those windows for ``best_epoch`` epochs. A resumed ``latest.pt`` of the refit phase rebuilds it.

    The steps, in order: the checks and the runtime (:func:`start_runtime`), ``latest.pt`` when resuming
    (:func:`read_resume_checkpoint`), the windows (:func:`phase_windows`), the model (:func:`build_model`), the
    augmentation (:func:`build_augmenter`), the splits on the device (:func:`device_splits`), the optimisation
    (:func:`build_optimisation`), and the loop state, fresh or restored (:func:`restore`).
    """
    cfg = cfg.validate()
    dist = dist or Dist()
    device = start_runtime(cfg, dist)
    t_start = time.perf_counter()
    resumed = read_resume_checkpoint(cfg) if selection is None else None
    if resumed is not None and resumed.get("phase", "select") == "refit":
        selection = dict(resumed["selection"])

    ds = dataset if dataset is not None else load_run_dataset(cfg)
    windows = phase_windows(cfg, ds, refit=selection is not None)
    epochs = int(selection["best_epoch"]) if selection is not None else cfg.epochs
    classes, channels = list(ds.train.classes), list(ds.train.channels)
    if resumed is not None and list(resumed["classes"]) != classes:
        raise HarvitError(f"--resume: {cfg.run_dir / 'latest.pt'} was trained on classes "
                          f"{', '.join(resumed['classes'])}; the data now has {', '.join(classes)}; use the same "
                          "data, or start a new --run-name with --init-from")
    use_cache = cfg.freeze_encoder and not cfg.augment and cfg.feature_cache
    model = build_model(cfg, windows, channels, len(classes), device, refit=selection is not None,
                        use_cache=use_cache, resumed=resumed)
    augmenter = build_augmenter(cfg, channels, device, dist.rank)
    splits = device_splits(cfg, model, windows, device, refit=selection is not None)
    if cfg.freeze_encoder and not use_cache:
        why = "--augment changes the images every epoch" if cfg.augment else "--no-feature-cache"
        log(f"feature cache: off ({why}); the frozen encoder runs on every batch")

    samples_per_step = cfg.batch_size * cfg.accum_steps
    steps_per_epoch = math.ceil(len(splits["train"]) * model.n_views / samples_per_step)
    opt = build_optimisation(cfg, model, device, epochs, steps_per_epoch)
    if dist.rank > 0:  # every rank starts from rank 0's weights (DDP broadcasts them); dropout differs per rank
        torch.manual_seed(cfg.seed + dist.rank)
    if resumed is not None:
        state = restore(cfg, resumed, opt, augmenter, dist, refit=selection is not None)
    elif selection is not None:
        state = TrainState(micro_batch=cfg.batch_size, phase="refit", selection=selection,
                           best_val_acc=float(selection["best_val_acc"]), best_epoch=epochs)
    else:
        state = TrainState(micro_batch=cfg.batch_size)
    weights = class_weights(windows["train"].y, len(classes))
    return Run(
        cfg=cfg, device=device, autocast=autocast_factory(device, cfg.amp, cfg.amp_dtype), dataset=ds,
        windows=windows, splits=splits, classes=classes, channels=channels, model=model, ema=opt.ema,
        optimizer=opt.optimizer, scheduler=opt.scheduler, grad_scaler=opt.grad_scaler, augmenter=augmenter,
        use_feature_cache=use_cache, samples_per_step=samples_per_step, steps_per_epoch=steps_per_epoch,
        state=state, t_start=t_start, dist=dist, epochs=epochs,
        class_weights=weights.to(device) if cfg.class_balance == "weights" else None,
        sample_weights=(weights[windows["train"].y].repeat_interleave(model.n_views)
                        if cfg.class_balance == "sampler" else None))


def start_runtime(cfg: Config, dist: Dist) -> torch.device:
    """Check the encoder and encodings by name (before any data loads), pick this rank's device and set the
    seeds, threads and determinism; returns the device."""
    check_encoder_name(cfg.encoder)
    check_encodings(cfg.encoding_list)
    device = dist.device or pick_device(cfg.device)
    setup_runtime(device, cfg.seed, cfg.threads, cfg.deterministic)
    return device


def phase_windows(cfg: Config, ds: Dataset, refit: bool) -> dict[str, Windows]:
    """The phase's ``train`` / ``val`` / ``test`` windows: validation holds out whole training subjects
    (:func:`harvit.data.train_val_split`); in the refit ``train`` is training + validation, and ``val`` stays
    for the record only."""
    train_w, val_w = train_val_split(ds.train, cfg.val_fraction, cfg.val_seed, cfg.val_subject_list)
    return {"train": joined(train_w, val_w) if refit else train_w, "val": val_w, "test": ds.test}


def build_model(cfg: Config, windows: dict[str, Windows], channels: list[str], n_classes: int,
                device: torch.device, refit: bool, use_cache: bool, resumed: dict[str, Any] | None
                ) -> WindowClassifier:
    """The classifier on ``device``, seeded by ``cfg.seed``: its scaler and statistics fitted on ``windows["train"]``
    (in a refit with the feature cache the scaler is the selection's, fitted on training windows alone, so the
    cached encoder features stay valid); then ``--init-from``'s weights for a fresh run, or ``latest.pt``'s."""
    torch.manual_seed(cfg.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_classifier(cfg, channels, n_classes, x_train=windows["train"].x)
    if refit and use_cache:
        train_only = windows["train"].x[:len(windows["train"]) - len(windows["val"])]
        model.imager.scaler.load_state_dict(Scaler.fit(train_only, mode=cfg.scaling, out_range=cfg.scale_range)
                                            .state_dict())
    for w in caught:
        log(f"warning: {w.message}")
    model.to(device)
    attention_for(model, device)
    if cfg.init_from and resumed is None:
        init_from(model, cfg, cfg.init_from)
    if resumed is not None:
        load_model_state(model, resumed["model"], str(cfg.run_dir / "latest.pt"))
    return model


def build_augmenter(cfg: Config, channels: list[str], device: torch.device, rank: int) -> Augmenter | None:
    """The signal augmentation of ``--augment`` (None without it): a generator seeded per rank, the sensor
    triples it turns, and the gravity triple ``--augment-axis lying`` needs."""
    if not cfg.augment:
        return None
    gravity = gravity_triple(channels)
    if cfg.augment_axis == "lying" and gravity is None:
        raise HarvitError("--augment-axis lying: needs total_acc_x/y/z channels (gravity); this data has "
                          + ", ".join(channels))
    return Augmenter(torch.Generator(device=device).manual_seed(cfg.seed + 1 + rank), sensor_triples(channels),
                     gravity)


def device_splits(cfg: Config, model: WindowClassifier, windows: dict[str, Windows], device: torch.device,
                  refit: bool) -> dict[str, Split]:
    """The phase's splits on the device (the refit has no ``val``), with the model's side features of each
    precomputed; the test split's are left to the refit when one follows (the selection never scores test)."""
    splits = {k: Split.from_windows(k, w, device) for k, w in windows.items() if not refit or k != "val"}
    if model.stats is not None:
        for k in splits:
            if k == "test" and not refit and cfg.refit:
                continue
            splits[k].stats = model.stats.precompute(windows[k].x, device)
    return splits


@dataclass
class Optimisation:
    """What updates the weights: the optimiser, its LR schedule, the fp16 loss scaler and the weight EMA."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    grad_scaler: torch.amp.GradScaler
    ema: ModelEmaV3 | None


def build_optimisation(cfg: Config, model: WindowClassifier, device: torch.device, epochs: int,
                       steps_per_epoch: int) -> Optimisation:
    """AdamW with warmup and a cosine over the phase's ``epochs`` (the refit: the selected epochs), the loss
    scaler (on for CUDA fp16 only), ``--compile``, and the weight EMA: a second copy of the model whose weights
    trail the live ones, validated, saved as best.pt and tested (its warmup averages early steps over fewer
    past steps)."""
    optimizer = build_optimizer(model.net, cfg.weight_decay, cfg.lr, device)
    phase_cfg = dataclasses.replace(cfg, epochs=epochs)
    scheduler = build_scheduler(optimizer, phase_cfg, steps_per_epoch)
    clamp = warmup_clamp_note(phase_cfg, steps_per_epoch)
    if clamp:
        log(clamp)
    fp16 = device.type == "cuda" and cfg.amp and cfg.amp_dtype == "fp16"
    grad_scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    if cfg.compile:
        model.net.compile()
    ema = (ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True, warmup_power=3 / 4)
           if cfg.ema_decay > 0 else None)
    return Optimisation(optimizer=optimizer, scheduler=scheduler, grad_scaler=grad_scaler, ema=ema)


def restore(cfg: Config, resumed: dict[str, Any], opt: Optimisation, augmenter: Augmenter | None, dist: Dist,
            refit: bool) -> TrainState:
    """Load ``latest.pt``'s optimiser, schedule, loss scaler, random streams and EMA into the built run;
    returns its loop state. A checkpoint without the EMA that ``--ema-decay`` asks for is refused."""
    latest = cfg.run_dir / "latest.pt"
    opt.optimizer.load_state_dict(resumed["optimizer"])
    opt.scheduler.load_state_dict(resumed["scheduler"])
    opt.grad_scaler.load_state_dict(resumed["grad_scaler"])
    state = TrainState.from_checkpoint(resumed, cfg.batch_size)
    rng = resume_rng(resumed, dist)
    if rng is not None:
        set_rng_state(rng, augmenter.generator if augmenter else None)
    if opt.ema is not None:
        if "ema" not in resumed:
            raise HarvitError(f"--resume: {latest} holds no weight EMA")
        load_model_state(opt.ema.module, resumed["ema"], str(latest))
    where = f"epoch {state.epoch + 1}" + (f", step {state.step_in_epoch}" if state.step_in_epoch else "")
    log(f"resume: {latest} -> continuing at {where} (the {'refit' if refit else 'selection'} phase)")
    saved_world = int(resumed.get("world_size", 1))
    if saved_world != dist.world_size:
        log(f"resume: {latest} was written by {saved_world} process(es); continuing with {dist.world_size}, "
            f"the same global batch of {cfg.batch_size * cfg.accum_steps} samples per step")
    return state


def joined(a: Windows, b: Windows) -> Windows:
    """The windows of ``a`` then those of ``b`` (the refit's training windows: training + validation)."""
    return Windows(np.concatenate([a.x, b.x]), np.concatenate([a.y, b.y]), np.concatenate([a.subject, b.subject]),
                   list(a.channels), list(a.classes), a.rate_hz, {**a.meta, "split": "train+val"})


def resume_rng(resumed: dict[str, Any], dist: Dist) -> dict[str, Any] | None:
    """This rank's saved random streams: its own when the world size is unchanged; else rank 0 takes the
    saved rank 0's and the other ranks keep their fresh seeds (None)."""
    per_rank = resumed.get("rng_ranks")
    if per_rank and len(per_rank) == dist.world_size:
        return per_rank[dist.rank]
    return resumed["rng"] if dist.rank == 0 else None


def init_from(model: WindowClassifier, cfg: Config, path: str) -> None:
    """Start from another run's weights (two-stage fine-tuning): ``path`` is a run folder (its best.pt,
    else latest.pt) or a checkpoint file. The encoder must match; a head of another shape is re-initialised."""
    src = load_checkpoint(path)
    file = checkpoint_file(path)
    diffs = config_differences(src["config"], cfg.to_dict(), ENCODER_KEYS)
    if diffs:
        raise HarvitError(f"--init-from {path}: the encoder differs ({'; '.join(diffs)})")
    state = {k: v for k, v in src["model"].items() if not k.startswith("imager.")}
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing_enc = [k for k in own if k.startswith("net.encoder.") and k not in take]
    if missing_enc:
        raise HarvitError(f"--init-from {path}: encoder weights do not fit ({missing_enc[0]} ...)")
    model.load_state_dict(take, strict=False)
    skipped = len(state) - len(take)
    log(f"init-from: {len(take)} tensors from {file}" + (f" ({skipped} head tensors re-initialised)"
                                                          if skipped else ""))
