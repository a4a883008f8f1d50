"""The encoded-images figure: a grid of the images the model sees, example windows of each class
by every image channel of every view.

Drawn with matplotlib's object API on the Agg canvas and written as PNG atomically
(:func:`harvit.utils.figures.save_figure`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib import colormaps

from harvit.utils.errors import HarvitError
from harvit.utils.figures import LABEL_CHARS, new_figure, save_figure, short_labels

if TYPE_CHECKING:
    from torch import nn

    from harvit.data import Windows

__all__ = ["MAX_EXAMPLE_ROWS", "channel_titles", "image_mosaic", "pick_examples", "plot_encoded_images"]


def pick_examples(y: np.ndarray, n_classes: int, per_class: int, seed: int = 0) -> list[list[int]]:
    """Up to ``per_class`` window indices of every class (seeded choice, sorted)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_classes):
        idx = np.flatnonzero(y == k)
        take = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else idx
        out.append(sorted(int(i) for i in take))
    return out


def channel_titles(imager: nn.Module) -> list[str]:
    """Title of every image channel of every view: ``<signal> <encoding>``, view-major ([V * in_chans])."""
    names = []
    channels, encodings = list(imager.channels), list(imager.encodings)
    for group in imager.groups:
        for k in group:
            for e in encodings:
                names.append(f"{channels[k]}\n{e}")
    return names


def image_mosaic(tiles: np.ndarray, gap: int) -> np.ndarray:
    """Tiles [R, C, S, S] -> one image [R*S + (R-1)*gap, C*S + (C-1)*gap] with NaN gaps.

    Each column (one image channel across the example rows) is scaled to [0, 1] by its own min and
    max, so rows (classes) compare directly.
    """
    r, c, s, _ = tiles.shape
    lo = tiles.min(axis=(0, 2, 3), keepdims=True)
    span = tiles.max(axis=(0, 2, 3), keepdims=True) - lo
    tiles = (tiles - lo) / np.where(span > 0, span, 1.0)
    out = np.full((r * s + (r - 1) * gap, c * s + (c - 1) * gap), np.nan, dtype=np.float32)
    for i in range(r):
        for j in range(c):
            out[i * (s + gap):i * (s + gap) + s, j * (s + gap):j * (s + gap) + s] = tiles[i, j]
    return out


MAX_EXAMPLE_ROWS = 40
"""Rows (example windows) of the encoded-images figure at most."""


def plot_encoded_images(model_or_imager: nn.Module, windows: Windows, out: str | Path, per_class: int = 2,
                        max_columns: int = 27, seed: int = 0) -> Path:
    """A grid of the images the model sees: rows = example windows of each class, columns = every
    image channel of every view (signal x encoding), each column on its own colour scale.

    Args:
        model_or_imager: a :class:`~harvit.models.classifier.WindowClassifier` (its ``imager`` is used) or a
            :class:`~harvit.imaging.imager.SignalImager`.
        windows: windows to draw from (e.g. the test split); classes name the rows.
        out: PNG path.
        per_class: example windows per class.
        max_columns: at most this many image channels per row (the first ones).
    """
    imager = getattr(model_or_imager, "imager", model_or_imager)
    n_classes = len(windows.classes)
    if n_classes * per_class > MAX_EXAMPLE_ROWS:  # many classes: one example each, the first ones only
        per_class = 1
    picks = pick_examples(windows.y, n_classes, per_class, seed)
    rows = [(k, i) for k, idx in enumerate(picks) for i in idx][:MAX_EXAMPLE_ROWS]
    names = short_labels(list(windows.classes))
    if not rows:
        raise HarvitError("encoded images: the windows hold no examples")
    device = next(iter(imager.buffers()), torch.zeros(0)).device
    x = torch.from_numpy(windows.x[[i for _, i in rows]]).to(device)
    with torch.no_grad():
        images = imager.all_views(x).float().cpu().numpy()  # [R*V, in_chans, S, S]
    v = int(imager.n_views)
    images = images.reshape(len(rows), v * images.shape[1], *images.shape[2:])  # [R, V*in_chans, S, S]
    titles = channel_titles(imager)
    cols = min(max_columns, images.shape[1])
    side = images.shape[-1]
    gap = max(1, side // 6)
    mosaic = image_mosaic(images[:, :cols], gap)
    cell = 0.75
    fig = new_figure(max(6.0, 1.6 + 0.07 * LABEL_CHARS + cell * cols), 1.0 + cell * len(rows))
    ax = fig.subplots()
    cmap = colormaps["viridis"].with_extremes(bad="white")
    ax.imshow(mosaic, cmap=cmap, interpolation="nearest", vmin=0.0, vmax=1.0)
    ax.set_axis_off()
    step = side + gap
    for c in range(cols):
        ax.text(c * step + side / 2, -gap, titles[c], ha="center", va="bottom", fontsize=6)
    for r, (k, i) in enumerate(rows):
        ax.text(-gap, r * step + side / 2, f"{names[k]} #{i}", ha="right", va="center", fontsize=7)
    shown = "" if cols == images.shape[1] else f" (first {cols} of {images.shape[1]} image channels)"
    if len({k for k, _ in rows}) < n_classes:
        shown += f"; {len(rows)} of {n_classes} classes"
    fig.suptitle(f"Encoded images: {v} view(s) x {images.shape[1] // v} channel(s) of {side} px{shown};\n"
                 "each column scaled to its own range", fontsize=9)
    return save_figure(fig, out)
