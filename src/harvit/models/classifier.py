"""The network: a timm encoder, an MLP head, and the window classifier that averages views.

Shapes: images [B, in_chans, S, S] -> features [B, D] -> logits [B, n_classes].
A window's prediction is the mean of its V views' log-probabilities.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harvit.config import Config
from harvit.features.rocket import RocketFeatures, SideFeatures
from harvit.features.statistics import WindowStats
from harvit.imaging.imager import SignalImager
from harvit.imaging.scaling import Scaler
from harvit.models.net import HarNet, build_net


class WindowClassifier(nn.Module):
    """Signal windows [B, C, T] -> window log-probabilities [B, n_classes].

    ``imager`` (a :class:`harvit.imaging.imager.SignalImager`) makes the V view images of each window on
    the device; ``stats`` (a :class:`harvit.features.statistics.WindowStats`, optional) gives each window's
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
    are fitted on them (training subjects only), and with ``cfg.rocket_features`` the random-convolution
    features' biases and standardisation too (:class:`~harvit.features.rocket.RocketFeatures`);
    without, they are left unfitted, to be loaded from a checkpoint. Emits the :func:`build_net` warning
    for a frozen random encoder.
    """
    rocket: RocketFeatures | None = None
    if x_train is not None:
        scaler = Scaler.fit(x_train, mode=cfg.scaling, out_range=cfg.scale_range)
        stats = WindowStats.fit(x_train, channels) if cfg.window_stats else None
        if cfg.rocket_features:
            rocket = RocketFeatures.fit(x_train, cfg.rocket_features, seed=cfg.seed)
    else:
        n = len(channels)
        scaler = Scaler(torch.zeros(n), torch.ones(n), mode=cfg.scaling, out_range=cfg.scale_range)
        stats = WindowStats.empty(channels, window_length) if cfg.window_stats else None
        if cfg.rocket_features:
            rocket = RocketFeatures(len(channels), window_length, cfg.rocket_features)
    if rocket is not None:  # the head reads concat(statistics, convolution features)
        stats = SideFeatures(stats, rocket)
    imager = SignalImager(channels, cfg.mode, cfg.encoding_list, cfg.img_size, scaler, cfg.to_dict())
    net = build_net(cfg, imager.in_chans, n_classes, stats.n_features if stats else 0)
    return WindowClassifier(imager, net, stats)


def aggregate_views(view_logits: torch.Tensor) -> torch.Tensor:
    """Mean over views of log-softmax: [B, V, K] logits -> [B, K] window log-probabilities."""
    return torch.log_softmax(view_logits.float(), dim=-1).mean(dim=1)


