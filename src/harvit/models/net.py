"""The network of one view: the timm encoder, the MLP head, and the window statistics beside them.

Shapes: images [B, in_chans, S, S] -> pooled features [B, D] (+ statistics [B, F]) -> logits [B, K].
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from harvit.config import Config
from harvit.models.encoder import create_encoder


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

    With ``use_images`` False the encoder never runs and the head reads the statistics alone.
    With ``stats_dim`` > 0 the head reads ``concat(pooled image features [B, D], statistics [B, F])``.
    With ``image_dropout`` p > 0, in training each sample's image features are zeroed with chance p
    (modality dropout), so the head cannot lean on the images alone. With ``stats_linear`` (a module
    [B, F] -> [B, n_classes], :func:`build_net` makes a Linear) its map of the statistics is added to
    the head's logits.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, frozen: bool, stats_dim: int = 0,
                 image_dropout: float = 0.0, stats_linear: nn.Module | None = None, use_images: bool = True) -> None:
        super().__init__()
        self.use_images = use_images
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
        """Pooled encoder features [B, D] ([B, 0] without images: the encoder does not run)."""
        return self.encoder(images) if self.use_images else images.new_zeros(images.shape[0], 0)

    def drops_images(self) -> bool:
        """Whether this forward zeroes a random share of the samples' image features (training only)."""
        return self.training and self.image_dropout > 0 and self.stats_dim > 0

    def classify(self, feats: torch.Tensor, stats: torch.Tensor | None = None,
                 keep: torch.Tensor | None = None) -> torch.Tensor:
        """Head on pooled features [B, D] and, when used, window statistics [B, F].

        ``keep`` [B, 1] (bool) says whose image features survive the modality dropout; when None and
        :meth:`drops_images`, it is drawn here.
        """
        if self.stats_dim:
            if stats is None:
                raise ValueError("this model reads window statistics beside the images; pass stats [B, F]")
            if keep is None and self.drops_images():
                keep = torch.rand(feats.shape[0], 1, device=feats.device) >= self.image_dropout
            if keep is not None:
                feats = feats * keep
            stats = stats.to(feats.dtype)
            logits = self.head(torch.cat([feats, stats], dim=-1))
            return logits if self.stats_linear is None else logits + self.stats_linear(stats)
        return self.head(feats)

    def forward(self, images: torch.Tensor, stats: torch.Tensor | None = None, features_in: bool = False
                ) -> torch.Tensor:
        """Logits [B, n_classes] of images [B, in_chans, S, S]; with ``features_in`` the input is already the
        pooled encoder features [B, D] (the feature cache), so a wrapper such as DDP sees one forward.

        Under the modality dropout the encoder runs only on the samples whose image features survive
        (the others would be zeroed, with zero gradient): the same logits and gradients at about
        ``1 - image_dropout`` of the encoder's cost.
        """
        if features_in or not (self.use_images and self.drops_images()):
            return self.classify(images if features_in else self.features(images), stats)
        keep = torch.rand(images.shape[0], 1, device=images.device) >= self.image_dropout
        rows = keep[:, 0].nonzero()[:, 0]
        if len(rows) == 0:  # nobody keeps images: one sample still runs, zeroed, so every parameter has a
            rows = rows.new_zeros(1)  # gradient (DDP expects each parameter in every backward)
        kept = self.encoder(images[rows])
        feats = kept.new_zeros(images.shape[0], kept.shape[-1]).index_copy(0, rows, kept)
        return self.classify(feats, stats, keep=keep)


def build_net(cfg: Config, in_chans: int, n_classes: int, stats_dim: int = 0) -> HarNet:
    """Build encoder and head from ``cfg``; warns when a frozen encoder has random weights."""
    encoder = create_encoder(cfg, in_chans)
    dim = int(getattr(encoder, "num_features", 0) or 0)
    if dim <= 0:
        with torch.no_grad():
            dim = int(encoder(torch.zeros(1, in_chans, cfg.img_size, cfg.img_size)).shape[-1])
    head = build_head((dim if cfg.images else 0) + stats_dim, cfg.hidden_dim_list, n_classes, cfg.dropout)
    if cfg.freeze_encoder and not (cfg.pretrained or cfg.pretrained_path or cfg.init_from):
        warnings.warn(
            "the encoder is frozen but has no pretrained weights: its random features are nearly "
            "useless; pass --pretrained/--pretrained-path or --no-freeze-encoder",
            stacklevel=2,
        )
    if cfg.stats_linear and not stats_dim:
        raise ValueError("stats_linear needs window statistics or convolution features (stats_dim > 0)")
    linear = nn.Linear(stats_dim, n_classes) if cfg.stats_linear else None
    return HarNet(encoder, head, frozen=cfg.freeze_encoder, stats_dim=stats_dim, image_dropout=cfg.image_dropout,
                  stats_linear=linear, use_images=cfg.images)
