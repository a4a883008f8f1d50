"""The network: a timm encoder, an MLP head, and the window classifier that averages views.

Shapes: images [B, in_chans, S, S] -> features [B, D] -> logits [B, n_classes].
A window's prediction is the mean of its V views' log-probabilities.
"""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from torch import nn

from harvit.config import Config
from harvit.errors import HarvitError


def _accepts(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def check_encoder_name(name: str) -> None:
    """Raise :class:`HarvitError` naming ``--encoder`` (and similar names) unless timm knows ``name``."""
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:5]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise HarvitError(f"--encoder: unknown timm model {name!r}{hint}")


def create_encoder(cfg: Config, in_chans: int) -> nn.Module:
    """A timm model without classifier (``num_classes=0``): images -> pooled features [B, D].

    ``in_chans`` comes from the view (signals x encodings); ``img_size`` and the ViT shape
    overrides (patch size, width, depth, heads) are passed when the model takes them.
    Pretrained weights come from timm's own source (``--pretrained``) or a local file
    (``--pretrained-path``) through ``pretrained_cfg_overlay`` so that timm adapts the input
    channels and position embeddings.
    """
    name = cfg.encoder
    check_encoder_name(name)
    kwargs: dict[str, Any] = dict(num_classes=0, in_chans=in_chans)
    extra = dict(img_size=cfg.img_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
                 depth=cfg.depth, num_heads=cfg.num_heads)
    entry = timm.models.model_entrypoint(name)
    # Only ViT-style models take these; pass the non-zero ones and img_size when accepted.
    is_vit_like = any(k in name for k in ("vit", "deit", "beit", "eva", "swin"))
    for k, v in extra.items():
        if v and (is_vit_like or _accepts(entry, k)):
            kwargs[k] = v
    if cfg.drop_path:
        kwargs["drop_path_rate"] = cfg.drop_path
    pretrained = bool(cfg.pretrained or cfg.pretrained_path)
    if cfg.pretrained and not cfg.pretrained_path and os.environ.get("HARVIT_OFFLINE") == "1":
        raise HarvitError(f"--pretrained: HARVIT_OFFLINE=1, so timm's weights for {name} are not fetched; "
                          "pass --pretrained-path FILE (.safetensors/.pth) or --no-pretrained")
    if cfg.pretrained_path:
        path = Path(cfg.pretrained_path)
        if not path.is_file():
            raise HarvitError(f"--pretrained-path: file {path} not found")
        kwargs["pretrained_cfg_overlay"] = dict(file=str(path))
    try:
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    except HarvitError:
        raise
    except TypeError as e:
        raise HarvitError(f"--encoder {name}: does not take these settings ({e})") from None
    except (OSError, RuntimeError, ValueError) as e:
        if pretrained and not cfg.pretrained_path:
            raise HarvitError(
                f"--pretrained: could not fetch timm weights for {name} ({type(e).__name__}); offline? "
                "pass --pretrained-path FILE (.safetensors/.pth) or --no-pretrained"
            ) from None
        if cfg.pretrained_path:
            raise HarvitError(f"--pretrained-path {cfg.pretrained_path}: cannot load as {name} weights: "
                              f"{str(e).splitlines()[0][:300]}") from None
        raise HarvitError(f"--encoder {name}: cannot build with these settings: "
                          f"{str(e).splitlines()[0][:300]}") from None


def build_head(in_dim: int, hidden: list[int], n_classes: int, dropout: float) -> nn.Sequential:
    """For each hidden width: Linear -> LayerNorm -> GELU -> Dropout; then Linear to classes."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(dropout)]
        d = h
    layers.append(nn.Linear(d, n_classes))
    return nn.Sequential(*layers)


class HarNet(nn.Module):
    """Encoder + head: images [B, in_chans, S, S] (+ window statistics [B, F]) -> logits [B, n_classes].

    With ``stats_dim`` > 0 the head reads ``concat(pooled image features [B, D], statistics [B, F])``.
    With ``image_dropout`` p > 0, in training each sample's image features are zeroed with chance p
    (modality dropout), so the head cannot lean on the images alone. With ``stats_linear`` (a module
    [B, F] -> [B, n_classes], :func:`build_net` makes a Linear) its map of the statistics is added to
    the head's logits.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, frozen: bool, stats_dim: int = 0,
                 image_dropout: float = 0.0, stats_linear: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.stats_linear = stats_linear
        self.frozen = frozen
        self.stats_dim = stats_dim
        self.image_dropout = image_dropout
        if frozen:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    def train(self, mode: bool = True) -> HarNet:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()  # a frozen encoder never uses dropout / drop-path / BN updates
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features [B, D]."""
        return self.encoder(images)

    def classify(self, feats: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        """Head on pooled features [B, D] and, when used, window statistics [B, F]."""
        if self.stats_dim:
            if stats is None:
                raise ValueError("this model reads window statistics beside the images; pass stats [B, F]")
            if self.training and self.image_dropout > 0:
                keep = torch.rand(feats.shape[0], 1, device=feats.device) >= self.image_dropout
                feats = feats * keep
            stats = stats.to(feats.dtype)
            logits = self.head(torch.cat([feats, stats], dim=-1))
            return logits if self.stats_linear is None else logits + self.stats_linear(stats)
        return self.head(feats)

    def forward(self, images: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        return self.classify(self.encoder(images), stats)


def build_net(cfg: Config, in_chans: int, n_classes: int, stats_dim: int = 0) -> HarNet:
    """Build encoder and head from ``cfg``; warns when a frozen encoder has random weights."""
    encoder = create_encoder(cfg, in_chans)
    dim = int(getattr(encoder, "num_features", 0) or 0)
    if dim <= 0:
        with torch.no_grad():
            dim = int(encoder(torch.zeros(1, in_chans, cfg.img_size, cfg.img_size)).shape[-1])
    head = build_head(dim + stats_dim, cfg.hidden_dim_list, n_classes, cfg.dropout)
    if cfg.freeze_encoder and not (cfg.pretrained or cfg.pretrained_path or cfg.init_from):
        warnings.warn(
            "the encoder is frozen but has no pretrained weights: its random features are nearly "
            "useless; pass --pretrained/--pretrained-path or --no-freeze-encoder",
            stacklevel=2,
        )
    if cfg.stats_linear and not stats_dim:
        raise ValueError("stats_linear needs window statistics (stats_dim > 0)")
    linear = nn.Linear(stats_dim, n_classes) if cfg.stats_linear else None
    return HarNet(encoder, head, frozen=cfg.freeze_encoder, stats_dim=stats_dim, image_dropout=cfg.image_dropout,
                  stats_linear=linear)


class WindowClassifier(nn.Module):
    """Signal windows [B, C, T] -> window log-probabilities [B, n_classes].

    ``imager`` (a :class:`harvit.encode.SignalImager`) makes the V view images of each window on
    the device; ``stats`` (a :class:`harvit.stats.WindowStats`, optional) gives each window's
    standardised statistics; ``net`` classifies each view; the window's log-probabilities are
    the mean over its views of the views' log-softmax.
    """

    def __init__(self, imager: nn.Module, net: HarNet, stats: nn.Module | None = None) -> None:
        super().__init__()
        self.imager = imager
        self.net = net
        self.stats = stats

    @property
    def n_views(self) -> int:
        return int(self.imager.n_views)

    def view_logits(self, x: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        """Per-view logits [B, V, n_classes] for windows x [B, C, T].

        ``stats`` [B, F]: the windows' standardised statistics when already computed (the trainer
        precomputes them per split); else they are computed here from x.
        """
        with torch.no_grad():
            images = self.imager.all_views(x)
            if stats is None and self.stats is not None:
                stats = self.stats(x)
            if stats is not None:
                stats = stats.repeat_interleave(self.n_views, dim=0)
        logits = self.net(images, stats)
        return logits.view(x.shape[0], self.n_views, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return aggregate_views(self.view_logits(x))


def build_classifier(cfg: Config, channels: list[str], n_classes: int, x_train: np.ndarray | None = None,
                     window_length: int = 128) -> WindowClassifier:
    """The whole model of ``cfg``: imager (scaler + encodings), window statistics, encoder and head.

    With training windows ``x_train`` [N, C, T] the scaler and the statistics' standardisation
    are fitted on them (training subjects only); without, they are left unfitted, to be loaded
    from a checkpoint. Emits the :func:`build_net` warning for a frozen random encoder.
    """
    from harvit.encode import SignalImager
    from harvit.scaling import Scaler
    from harvit.stats import WindowStats

    if x_train is not None:
        scaler = Scaler.fit(x_train, mode=cfg.scaling, out_range=cfg.scale_range)
        stats = WindowStats.fit(x_train, channels) if cfg.window_stats else None
    else:
        n = len(channels)
        scaler = Scaler(torch.zeros(n), torch.ones(n), mode=cfg.scaling, out_range=cfg.scale_range)
        stats = WindowStats.empty(channels, window_length) if cfg.window_stats else None
    imager = SignalImager(channels, cfg.mode, cfg.encoding_list, cfg.img_size, scaler, cfg.mtf_bins)
    net = build_net(cfg, imager.in_chans, n_classes, stats.n_features if stats else 0)
    return WindowClassifier(imager, net, stats)


def aggregate_views(view_logits: torch.Tensor) -> torch.Tensor:
    """Mean over views of log-softmax: [B, V, K] logits -> [B, K] window log-probabilities."""
    return torch.log_softmax(view_logits.float(), dim=-1).mean(dim=1)


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable
