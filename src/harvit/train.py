"""The training loop, top to bottom: build, loop over epochs, step, evaluate, save.

Data stays on the device: windows [N, C, T], labels [N]. A training sample is one view of
one window; sample id ``s`` is window ``s // V``, view ``s % V``. A batch is an index gather;
images are made per batch by the :class:`~harvit.encode.SignalImager` and never stored.
With a frozen encoder and no augmentation the encoder's features are computed once
(:mod:`harvit.features`) and the head trains on them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from timm.utils.model_ema import ModelEmaV3
from torch import nn

from harvit import checkpoint as ck
from harvit.atomic import write_json, write_text
from harvit.augment import augment_batch
from harvit.config import Config
from harvit.data import Dataset, OwnOptions, Windows, cache_dir, load_dataset, train_val_split
from harvit.errors import HarvitError
from harvit.evaluate import classification_metrics
from harvit.features import cache_key, compute_with_backoff, load_cached, module_digest, save_cached, tensor_digest
from harvit.model import WindowClassifier, aggregate_views, build_classifier, check_encoder_name, count_parameters
from harvit.views import gravity_triple, sensor_triples

#: Settings a resumed run must share with its checkpoint: the architecture, the data split and the averaging.
RESUME_KEYS = (*ck.ARCH_KEYS, "seed", "split_seed", "val_fraction", "train_stride", "ema_decay", "augment",
               "augment_rotation", "augment_axis", "augment_jitter", "augment_scale", "augment_shift")


class Interrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised after SIGINT/SIGTERM once latest.pt is saved; ``code`` is 130 or 143."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# Small pieces
# ---------------------------------------------------------------------------------------------
def log(msg: str) -> None:
    """Print a progress line (stdout, flushed)."""
    print(msg, flush=True)


def pick_device(requested: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU (said aloud); ``cuda`` without CUDA is an error."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise HarvitError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        log("device: no CUDA device found, running on CPU")
        return torch.device("cpu")
    return torch.device(requested)


def setup_runtime(cfg: Config, device: torch.device) -> None:
    """Seeds, threads, determinism, TF32 and cuDNN settings."""
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cudnn.deterministic = cfg.deterministic


def autocast_factory(cfg: Config, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A context-manager factory: CUDA autocast in the chosen dtype, or a no-op."""
    if device.type != "cuda" or not cfg.amp:
        return contextlib.nullcontext
    dtype = torch.bfloat16 if cfg.amp_dtype == "bf16" else torch.float16
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        dtype = torch.float16
    return lambda: torch.autocast("cuda", dtype=dtype)


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on weight matrices, none on biases, norms and embeddings' 1-D params."""
    decay, no_decay = [], []
    for _, p in module.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_scheduler(opt: torch.optim.Optimizer, cfg: Config, steps_per_epoch: int
                    ) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warmup over ``warmup_epochs`` then cosine to ``min_lr``, stepped per optimiser step."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = min(int(round(cfg.warmup_epochs * steps_per_epoch)), total - 1)
    eta_min = min(cfg.min_lr, cfg.lr)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warm), eta_min=eta_min)
    if warm <= 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / (warm + 1), total_iters=warm)
    return torch.optim.lr_scheduler.SequentialLR(opt, [linear, cosine], milestones=[warm])


def epoch_order(n_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of an epoch, a pure function of (seed, epoch): [n_samples] int64."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n_samples, generator=g)


def rng_state(aug_gen: torch.Generator | None) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if aug_gen is not None:
        state["augment"] = aug_gen.get_state()
    return state


def set_rng_state(state: dict[str, Any], aug_gen: torch.Generator | None) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if aug_gen is not None and "augment" in state:
        aug_gen.set_state(state["augment"].to(aug_gen.get_state().device))


@dataclass
class Split:
    """One split on the device: x [N, C, T], y [N]; ``feats`` [N, V, D] when cached; ``stats`` [N, F]."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    subjects: list[int]
    feats: torch.Tensor | None = None
    stats: torch.Tensor | None = None

    @classmethod
    def from_windows(cls, name: str, w: Windows, device: torch.device) -> Split:
        return cls(name, torch.from_numpy(w.x).to(device), torch.from_numpy(w.y).to(device), w.subjects())

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class StopFlag:
    """Set by SIGINT/SIGTERM; the loop saves at the next step boundary."""

    signum: int | None = None
    previous: dict[int, Any] = field(default_factory=dict)

    def install(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            if self.signum is not None:  # a second signal: leave at once
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            self.signum = signum

        for s in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                self.previous[s] = signal.signal(s, handler)

    def restore(self) -> None:
        for s, h in self.previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(s, h)


# ---------------------------------------------------------------------------------------------
# Evaluation (window level: mean of the views' log-probabilities)
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def view_logits_batches(model: WindowClassifier, split: Split, images_per_batch: int,
                        autocast: Callable[[], contextlib.AbstractContextManager]
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (view logits [b, V, K] float32, labels [b]) over the split, in order."""
    n_views = model.n_views
    per = max(1, images_per_batch // n_views)
    for start in range(0, len(split), per):
        sl = slice(start, start + per)
        stats = split.stats[sl] if split.stats is not None else None
        with autocast():
            if split.feats is not None:
                f = split.feats[sl].to(split.y.device, non_blocking=True)
                s = stats.repeat_interleave(n_views, dim=0) if stats is not None else None
                logits = model.net.classify(f.view(-1, f.shape[-1]), s).view(f.shape[0], n_views, -1)
            else:
                logits = model.view_logits(split.x[sl], stats)
        yield logits.float(), split.y[sl]


def evaluate_split(model: WindowClassifier, split: Split, images_per_batch: int,
                   autocast: Callable[[], contextlib.AbstractContextManager]) -> dict[str, Any]:
    """Window-level loss/accuracy plus predictions: keys loss, acc, view_acc, y_true, y_pred, log_probs."""
    was_training = model.training
    model.eval()
    loss_sum, view_correct, n_view = 0.0, 0, 0
    ys, preds, logps = [], [], []
    for logits, y in view_logits_batches(model, split, images_per_batch, autocast):
        b, v, k = logits.shape
        yv = y.repeat_interleave(v)
        loss_sum += float(F.cross_entropy(logits.reshape(b * v, k), yv, reduction="sum"))
        view_correct += int((logits.argmax(-1).reshape(-1) == yv).sum())
        n_view += b * v
        lp = aggregate_views(logits)
        ys.append(y.cpu())
        preds.append(lp.argmax(-1).cpu())
        logps.append(lp.cpu())
    model.train(was_training)
    y_true = torch.cat(ys) if ys else torch.zeros(0, dtype=torch.long)
    y_pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    return {
        "loss": loss_sum / max(1, n_view),
        "acc": float((y_true == y_pred).float().mean()) if len(y_true) else 0.0,
        "view_acc": view_correct / max(1, n_view),
        "y_true": y_true,
        "y_pred": y_pred,
        "log_probs": torch.cat(logps) if logps else torch.zeros(0),
    }


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------
class Trainer:
    """Holds the run's state; :meth:`fit` is the loop. Use :func:`train` from code or the CLI."""

    def __init__(self, cfg: Config, dataset: Dataset | None = None) -> None:
        self.cfg = cfg.validate()
        check_encoder_name(cfg.encoder)  # fail fast, before the data loads
        self.run_dir = cfg.run_dir
        self.device = pick_device(cfg.device)
        setup_runtime(cfg, self.device)
        self.autocast = autocast_factory(cfg, self.device)
        self.t_start = time.perf_counter()

        # ---- resume: read the checkpoint first, it decides what is built -------------------
        self.resume_ckpt: dict[str, Any] | None = None
        latest = self.run_dir / "latest.pt"
        if cfg.resume and not latest.is_file():  # stopped before its first checkpoint: nothing to lose
            log(f"resume: no checkpoint at {latest} yet; starting the run from the beginning")
        elif cfg.resume:
            self.resume_ckpt = ck.load_checkpoint(latest)
            saved = {**Config().to_dict(), **self.resume_ckpt["config"]}  # settings newer than the file: defaults
            diffs = ck.config_differences(saved, cfg.to_dict(), RESUME_KEYS)
            if diffs:
                raise HarvitError(f"--resume: {latest} was trained with other settings ({'; '.join(diffs)}); "
                                  "use the same settings, or start a new --run-name with --init-from")
        elif latest.is_file():
            raise HarvitError(f"{self.run_dir} already holds a run; pass --resume to continue it, or choose "
                              "another --run-name / --output-dir")

        # ---- data ---------------------------------------------------------------------------
        ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir, cfg.nan_policy,
                                                                     train_stride=cfg.train_stride_or_none,
                                                                     options=OwnOptions.from_settings(cfg.to_dict()))
        self.dataset = ds
        train_w, val_w = train_val_split(ds.train, cfg.val_fraction, cfg.val_seed)
        self.windows = {"train": train_w, "val": val_w, "test": ds.test}
        self.classes = list(ds.train.classes)
        self.channels = list(ds.train.channels)
        saved_classes = list(self.resume_ckpt["classes"]) if self.resume_ckpt is not None else self.classes
        if saved_classes != self.classes:
            raise HarvitError(f"--resume: {latest} was trained on classes {', '.join(saved_classes)}; the data now "
                              f"has {', '.join(self.classes)}; use the same data, or start a new --run-name with "
                              "--init-from")

        # ---- images and model ---------------------------------------------------------------
        torch.manual_seed(cfg.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.model = build_classifier(cfg, self.channels, len(self.classes), x_train=train_w.x)
        for w in caught:
            log(f"warning: {w.message}")
        self.model.to(self.device)
        if cfg.init_from and self.resume_ckpt is None:
            self._init_from(cfg.init_from)
        if self.resume_ckpt is not None:
            ck.load_model_state(self.model, self.resume_ckpt["model"], str(latest))
        self.n_views = self.model.n_views
        self.triples = sensor_triples(self.channels) if cfg.augment else []
        self.gravity = gravity_triple(self.channels)
        if cfg.augment and cfg.augment_axis == "lying" and self.gravity is None:
            raise HarvitError("--augment-axis lying: needs total_acc_x/y/z channels (gravity); this data has "
                              + ", ".join(self.channels))
        self.aug_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1) if cfg.augment else None

        self.splits = {k: Split.from_windows(k, w, self.device) for k, w in self.windows.items()}
        if self.model.stats is not None:
            for k, w in self.windows.items():
                self.splits[k].stats = self.model.stats.precompute(w.x, self.device)
        self.use_cache = cfg.freeze_encoder and not cfg.augment and cfg.feature_cache
        if cfg.freeze_encoder and not self.use_cache:
            why = "--augment changes the images every epoch" if cfg.augment else "--no-feature-cache"
            log(f"feature cache: off ({why}); the frozen encoder runs on every batch")

        # ---- optimisation -------------------------------------------------------------------
        n_samples = len(self.splits["train"]) * self.n_views
        self.samples_per_step = cfg.batch_size * cfg.accum_steps
        self.steps_per_epoch = math.ceil(n_samples / self.samples_per_step)
        self.micro_batch = cfg.batch_size
        self.optimizer = torch.optim.AdamW(param_groups(self.model.net, cfg.weight_decay), lr=cfg.lr)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        fp16 = self.device.type == "cuda" and cfg.amp and cfg.amp_dtype == "fp16"
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        if cfg.compile:
            self.model.net.compile()
        # Weight EMA: a second copy of the model whose weights trail the live ones; it is what is validated,
        # saved as best.pt and tested. The warmup makes early steps average over fewer past steps.
        self.ema = (ModelEmaV3(self.model, decay=cfg.ema_decay, use_warmup=True, warmup_power=3 / 4)
                    if cfg.ema_decay > 0 else None)

        # ---- loop state ---------------------------------------------------------------------
        self.epoch = 0
        self.step_in_epoch = 0
        self.partial: dict[str, float] = {}
        self.best_val_acc = -1.0
        self.best_epoch = 0
        self.bad_epochs = 0
        self.history: list[dict[str, Any]] = []
        self.elapsed_before = 0.0
        self.finished = False
        self.events: list[str] = []
        if self.resume_ckpt is not None:
            self._restore(self.resume_ckpt)

    @property
    def eval_model(self) -> WindowClassifier:
        """The weights that are validated, kept as best.pt and tested: the EMA when on, else the live model."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def global_step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.step_in_epoch

    # ---- construction helpers -------------------------------------------------------------
    def _init_from(self, path: str) -> None:
        src = ck.load_checkpoint(path)
        diffs = ck.config_differences(src["config"], self.cfg.to_dict(),
                                      ("mode", "encodings", "img_size", "encoder", "patch_size", "embed_dim",
                                       "depth", "num_heads"))
        if diffs:
            raise HarvitError(f"--init-from {path}: the encoder differs ({'; '.join(diffs)})")
        state = {k: v for k, v in src["model"].items() if not k.startswith("imager.")}
        own = self.model.state_dict()
        take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        missing_enc = [k for k in own if k.startswith("net.encoder.") and k not in take]
        if missing_enc:
            raise HarvitError(f"--init-from {path}: encoder weights do not fit ({missing_enc[0]} ...)")
        self.model.load_state_dict(take, strict=False)
        skipped = len(state) - len(take)
        log(f"init-from: {len(take)} tensors from {path}" + (f" ({skipped} head tensors re-initialised)"
                                                              if skipped else ""))

    def _restore(self, c: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(c["optimizer"])
        self.scheduler.load_state_dict(c["scheduler"])
        self.grad_scaler.load_state_dict(c["grad_scaler"])
        self.epoch = int(c["epoch"])
        self.step_in_epoch = int(c.get("step_in_epoch", 0))
        self.partial = dict(c.get("partial", {}))
        self.best_val_acc = float(c["best_val_acc"])
        self.best_epoch = int(c["best_epoch"])
        self.bad_epochs = int(c["bad_epochs"])
        self.history = list(c["history"])
        self.elapsed_before = float(c.get("elapsed_s", 0.0))
        self.finished = bool(c.get("finished", False))
        self.micro_batch = int(c.get("micro_batch", self.cfg.batch_size))
        set_rng_state(c["rng"], self.aug_gen)
        if self.ema is not None:
            if "ema" not in c:
                raise HarvitError(f"--resume: {self.run_dir / 'latest.pt'} holds no weight EMA")
            ck.load_model_state(self.ema.module, c["ema"], str(self.run_dir / "latest.pt"))
        where = f"epoch {self.epoch + 1}" + (f", step {self.step_in_epoch}" if self.step_in_epoch else "")
        log(f"resume: {self.run_dir / 'latest.pt'} -> continuing at {where}")

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the run is."""
        state = {
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.grad_scaler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "partial": dict(self.partial),
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": list(self.history),
            "rng": rng_state(self.aug_gen),
            "elapsed_s": self.elapsed(),
            "finished": self.finished,
            "micro_batch": self.micro_batch,
            "classes": self.classes,
            "channels": self.channels,
            "rate_hz": float(self.dataset.train.rate_hz),
            "window_length": int(self.dataset.train.length),
        }
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
        return state

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.t_start)

    # ---- feature cache ----------------------------------------------------------------------
    def build_feature_cache(self) -> float:
        """Encoder features of every view of every split, from disk when the key matches. Returns seconds."""
        t0 = time.perf_counter()
        cfg = self.cfg
        base = {
            "encoder": cfg.encoder, "weights": module_digest(self.model.net.encoder), "encodings": cfg.encodings,
            "img_size": cfg.img_size, "mode": cfg.mode, "scaler": module_digest(self.model.imager),
            "mtf_bins": cfg.mtf_bins, "amp": self.device.type == "cuda" and cfg.amp, "amp_dtype": cfg.amp_dtype,
        }
        folder = cache_dir() / "features"
        self.model.eval()
        # The frozen pass has no gradients: on CUDA start large and let out-of-memory find the size.
        if not hasattr(self, "feature_batch"):
            self.feature_batch = max(cfg.eval_batch_size, 4096) if self.device.type == "cuda" else cfg.eval_batch_size
        for name, split in self.splits.items():
            key = cache_key({**base, "data": tensor_digest(split.x), "split": name})
            path = folder / f"{key}.npy"
            feats = load_cached(path)
            source = "loaded"
            if feats is None or feats.shape[:2] != (len(split), self.n_views):
                bar = _bar(self.cfg, len(split), f"features {name}")
                feats, self.feature_batch = compute_with_backoff(
                    self.model.net.encoder, self.model.imager, split.x, self.feature_batch, self.autocast,
                    bar.update if bar else None, bar.reset if bar else None, log)
                if bar:
                    bar.close()
                try:
                    save_cached(path, feats)
                except HarvitError as e:
                    log(f"feature cache: not saved ({e})")
                source = "computed"
            split.feats = self._place(feats)
            log(f"feature cache: {name} {tuple(split.feats.shape)} {source} ({path.name})")
        return time.perf_counter() - t0

    def _place(self, feats: torch.Tensor) -> torch.Tensor:
        """Features on the device when they fit (half the free CUDA memory), else on the host."""
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            if feats.numel() * 4 > free // 2:
                log("feature cache: kept on the host (too large for the device)")
                return feats.pin_memory() if not feats.is_pinned() else feats
        return feats.to(self.device)

    # ---- one optimiser step -----------------------------------------------------------------
    def _logits(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [b, K] and labels [b] of sample ids ``idx`` [b] (window = id // V, view = id % V)."""
        split = self.splits["train"]
        win = torch.div(idx, self.n_views, rounding_mode="floor")
        view = idx % self.n_views
        y = split.y[win]
        stats = split.stats[win] if split.stats is not None else None
        with self.autocast():
            if split.feats is not None:
                feats = split.feats[win.to(split.feats.device), view.to(split.feats.device)].to(self.device)
                return self.model.net.classify(feats, stats), y
            x = split.x[win]
            with torch.no_grad():
                if self.aug_gen is not None:
                    rot = self.cfg.augment_rotation
                    x = augment_batch(x, self.triples, self.aug_gen, jitter_std=self.cfg.augment_jitter,
                                      scale_std=self.cfg.augment_scale, max_shift=self.cfg.augment_shift,
                                      rotate=rot > 0, max_angle=rot, axis=self.cfg.augment_axis,
                                      gravity=self.gravity)
                    if stats is not None:  # the statistics of the window the images show
                        stats = self.model.stats(x)
                images = self.model.imager(x, view)
            return self.model.net(images, stats), y

    def train_step(self, idx: torch.Tensor) -> tuple[float, int]:
        """One optimiser step over sample ids ``idx``, in micro-batches; halves the micro-batch on OOM.

        Returns (sum of losses, number correct) over the step's samples.
        """
        while True:
            try:
                return self._train_step(idx)
            except torch.OutOfMemoryError:
                self.optimizer.zero_grad(set_to_none=True)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.micro_batch <= 1:
                    raise HarvitError("out of memory even at micro-batch 1; lower --img-size or use a smaller "
                                      "--encoder") from None
                self.micro_batch = max(1, self.micro_batch // 2)
                msg = (f"out of memory: retrying the step at micro-batch {self.micro_batch} "
                       f"(x{math.ceil(len(idx) / self.micro_batch)} accumulation, same effective batch)")
                self.events.append(msg)
                log(msg)

    def _train_step(self, idx: torch.Tensor) -> tuple[float, int]:
        self.optimizer.zero_grad(set_to_none=True)
        total = len(idx)
        loss_sum, correct = 0.0, 0
        for chunk in idx.split(self.micro_batch):
            logits, y = self._logits(chunk)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.label_smoothing)
            self.grad_scaler.scale(loss * (len(chunk) / total)).backward()
            loss_sum += float(loss.detach()) * len(chunk)
            correct += int((logits.argmax(-1) == y).sum())
        if self.cfg.grad_clip > 0:
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.net.parameters(), self.cfg.grad_clip)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step + 1)
        return loss_sum, correct

    # ---- saving -----------------------------------------------------------------------------
    def save(self, name: str) -> None:
        """latest.pt holds the live weights (and the EMA); best.pt holds the weights that were validated."""
        state = self.state()
        if name == "best.pt" and self.ema is not None:
            state["model"] = state.pop("ema")
        ck.save_checkpoint(self.run_dir / name, state)

    def write_metrics(self) -> None:
        write_text(self.run_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in self.history))

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train (or continue), then evaluate ``best.pt`` on the test split. Returns the results dict."""
        cfg = self.cfg
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HarvitError(f"--output-dir: cannot create the run folder {self.run_dir}: {e.strerror or e}") from None
        for torn in self.run_dir.glob(".*.tmp"):  # temporary files of writes cut short by a kill
            with contextlib.suppress(OSError):
                torn.unlink()
        cfg.save(self.run_dir / "config.json")
        total, trainable = count_parameters(self.model)
        tw = self.windows
        log(f"run: {self.run_dir} | preset {cfg.preset} | device {self.device} | {self.dataset.name}: "
            f"train {len(tw['train'])} / val {len(tw['val'])} / test {len(tw['test'])} windows, "
            f"{self.n_views} views of {self.model.imager.in_chans}x{cfg.img_size}x{cfg.img_size}")
        log(f"model: {cfg.encoder} ({total / 1e6:.2f}M params, {trainable / 1e6:.3f}M trainable"
            f"{', frozen encoder' if cfg.freeze_encoder else ''})")
        cache_s = 0.0
        if self.use_cache and not self.finished:
            log("feature cache: on (frozen encoder, no augmentation): the encoder runs once per view")
            cache_s = self.build_feature_cache()
        writer = _summary_writer(cfg, self.run_dir, self.epoch)
        stop = StopFlag()
        stop.install()
        try:
            while not self.finished and self.epoch < cfg.epochs:
                record = self._run_epoch(stop)
                if record is None:  # interrupted: saved
                    code = 130 if stop.signum == signal.SIGINT else 143
                    raise Interrupted(code, self.resume_hint())
                if record.get("epoch") == 1 and cache_s:
                    record["feature_cache_s"] = round(cache_s, 3)
                if writer is not None:
                    for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "samples_per_s"):
                        writer.add_scalar(k.replace("_", "/", 1) if "_" in k else k, record[k], record["epoch"])
                    writer.flush()
        finally:
            stop.restore()
            if writer is not None:
                writer.close()
        return self.finish(cache_s)

    def _run_epoch(self, stop: StopFlag) -> dict[str, Any] | None:
        cfg = self.cfg
        self.model.train()
        n_samples = len(self.splits["train"]) * self.n_views
        order = epoch_order(n_samples, cfg.seed, self.epoch).to(self.device)
        t0 = time.perf_counter()
        p = self.partial or {"loss_sum": 0.0, "correct": 0, "seen": 0, "time_s": 0.0}
        bar = _bar(cfg, self.steps_per_epoch, f"epoch {self.epoch + 1}/{cfg.epochs}", initial=self.step_in_epoch)
        try:
            for step in range(self.step_in_epoch, self.steps_per_epoch):
                idx = order[step * self.samples_per_step:(step + 1) * self.samples_per_step]
                loss_sum, correct = self.train_step(idx)
                p["loss_sum"] += loss_sum
                p["correct"] += correct
                p["seen"] += len(idx)
                self.step_in_epoch = step + 1
                if bar is not None:
                    rate = p["seen"] / max(1e-9, p["time_s"] + time.perf_counter() - t0)
                    bar.set_postfix(loss=f"{p['loss_sum'] / p['seen']:.4f}", acc=f"{p['correct'] / p['seen']:.3f}",
                                    sps=f"{rate:.0f}", refresh=False)
                    bar.update(1)
                if stop.signum is not None and self.step_in_epoch < self.steps_per_epoch:
                    p["time_s"] += time.perf_counter() - t0
                    self.partial = p
                    self.save("latest.pt")
                    return None
        finally:
            if bar is not None:
                bar.close()
        train_time = p["time_s"] + time.perf_counter() - t0
        val = evaluate_split(self.eval_model, self.splits["val"], cfg.eval_batch_size, self.autocast)
        self.epoch += 1
        self.step_in_epoch = 0
        self.partial = {}
        record = {
            "epoch": self.epoch,
            "train_loss": p["loss_sum"] / max(1, p["seen"]),
            "train_acc": p["correct"] / max(1, p["seen"]),
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            "val_view_acc": val["view_acc"],
            "lr": self.optimizer.param_groups[0]["lr"],
            "epoch_time_s": round(time.perf_counter() - t0 + p["time_s"], 3),
            "train_time_s": round(train_time, 3),
            "samples_per_s": round(p["seen"] / max(1e-9, train_time), 1),
            "micro_batch": self.micro_batch,
        }
        improved = val["acc"] > self.best_val_acc
        if improved:
            self.best_val_acc, self.best_epoch, self.bad_epochs = val["acc"], self.epoch, 0
        else:
            self.bad_epochs += 1
        record["best_val_acc"] = self.best_val_acc
        self.history.append(record)
        patience = cfg.early_stopping_patience
        if patience and self.bad_epochs >= patience and self.epoch < cfg.epochs:
            self.finished = True
            log(f"early stopping: no validation gain for {patience} epochs (best {self.best_val_acc:.4f} "
                f"at epoch {self.best_epoch})")
        if self.epoch >= cfg.epochs:
            self.finished = True
        if improved:  # best.pt first: a kill between the two never leaves latest.pt claiming a best.pt not on disk
            self.save("best.pt")
        self.save("latest.pt")
        self.write_metrics()
        log(f"epoch {self.epoch}/{cfg.epochs}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f} | "
            f"val loss {record['val_loss']:.4f} acc {record['val_acc']:.4f}{' *' if improved else ''} | "
            f"lr {record['lr']:.2e} | {record['epoch_time_s']:.1f}s, {record['samples_per_s']:.0f} samples/s")
        if stop.signum is not None and not self.finished:
            return None
        return record

    def resume_hint(self) -> str:
        args = " ".join(a for a in sys.argv[1:] if a != "--resume")
        prog = ("python -m harvit" if sys.argv[0].endswith("__main__.py")
                else "python main.py" if sys.argv[0].endswith("main.py") else "harvit")
        return (f"interrupted: saved {self.run_dir / 'latest.pt'} (epoch {self.epoch + 1}, step "
                f"{self.step_in_epoch}); resume with: {prog} {args} --resume".replace("  ", " "))

    # ---- the end ----------------------------------------------------------------------------
    def finish(self, cache_s: float) -> dict[str, Any]:
        """Evaluate ``best.pt`` on the test split (the only time test is looked at) and write results."""
        best = ck.load_checkpoint(self.run_dir / "best.pt", map_location=self.device)
        ck.load_model_state(self.model, best["model"], str(self.run_dir / "best.pt"))
        if self.use_cache and self.splits["test"].feats is None:
            cache_s += self.build_feature_cache()
        test = evaluate_split(self.model, self.splits["test"], self.cfg.eval_batch_size, self.autocast)
        metrics = classification_metrics(test["y_true"].numpy(), test["y_pred"].numpy(), self.classes)
        total, trainable = count_parameters(self.model)
        train_time = sum(h["train_time_s"] for h in self.history)
        samples = sum(h["samples_per_s"] * h["train_time_s"] for h in self.history)
        results = {
            "test_accuracy": metrics["accuracy"],
            "test_macro_f1": metrics["macro_f1"],
            "test_loss": test["loss"],
            "test_view_accuracy": test["view_acc"],
            "per_class_accuracy": metrics["per_class_accuracy"],
            "per_class": metrics["per_class"],
            "confusion_matrix": metrics["confusion_matrix"],
            "classes": self.classes,
            "dataset": self.dataset.name,
            "steps_per_epoch": self.steps_per_epoch,
            "best_epoch": self.best_epoch,
            "best_val_acc": self.best_val_acc,
            "epochs_run": self.epoch,
            "total_time_s": round(self.elapsed(), 3),
            "train_time_s": round(train_time, 3),
            "feature_cache_s": round(cache_s, 3),
            "samples_per_s": round(samples / max(1e-9, train_time), 1),
            "params_total": total,
            "params_trainable": trainable,
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "split": {k: {"windows": len(w), "subjects": w.subjects(), "class_counts": w.class_counts()}
                      for k, w in self.windows.items()},
            "events": self.events,
            "config": self.cfg.to_dict(),
        }
        write_json(self.run_dir / "training_results.json", results)
        log(f"test: accuracy {results['test_accuracy']:.4f}, macro-F1 {results['test_macro_f1']:.4f} "
            f"(best.pt, epoch {self.best_epoch}); {results['total_time_s']:.0f}s in all -> "
            f"{self.run_dir / 'training_results.json'}")
        return results


def _bar(cfg: Config, total: int, desc: str, initial: int = 0) -> Any:
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, initial=initial, leave=False, dynamic_ncols=True, unit="step")


def _summary_writer(cfg: Config, run_dir: Path, start_epoch: int) -> Any:
    if not cfg.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log("tensorboard: not installed; scalars are in metrics.jsonl only")
        return None
    return SummaryWriter(log_dir=str(run_dir / "logs"), purge_step=start_epoch + 1 if start_epoch else None)


def train(cfg: Config, dataset: Dataset | None = None) -> dict[str, Any]:
    """Train a model with ``cfg``; returns ``training_results``.

    A given ``dataset`` is used as it is: ``cfg.dataset``, ``data_dir`` and ``train_stride`` then only
    label the run (load it with :func:`harvit.data.load_dataset` and the same ``train_stride``).
    """
    return Trainer(cfg, dataset).fit()
