"""The encoder: a timm model without classifier, built from the config (images -> pooled features)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from harvit.config import Config
from harvit.utils.errors import HarvitError


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


def describe_encoder(encoder: nn.Module, cfg: Config) -> str:
    """The encoder that runs, in words: the timm name, or for a ViT whose shape was overridden
    (``--patch-size --embed-dim --depth --num-heads``) the shape itself, e.g.
    ``ViT patch 4, width 96, depth 3, heads 4 (timm vit_tiny_patch16_224 overridden)``."""
    overridden = any((cfg.patch_size, cfg.embed_dim, cfg.depth, cfg.num_heads))
    blocks = getattr(encoder, "blocks", None)
    patch = getattr(getattr(encoder, "patch_embed", None), "patch_size", None)
    width = getattr(encoder, "embed_dim", None)
    if not overridden or blocks is None or patch is None or width is None:
        return cfg.encoder
    patch = patch[0] if isinstance(patch, (tuple, list)) and len(set(patch)) == 1 else patch
    heads = getattr(getattr(blocks[0], "attn", None), "num_heads", None) if len(blocks) else None
    shape = f"ViT patch {patch}, width {width}, depth {len(blocks)}" + (f", heads {heads}" if heads else "")
    return f"{shape} (timm {cfg.encoder} overridden)"


def attention_for(module: nn.Module, device: torch.device | str) -> int:
    """Pick the attention kernel of the timm attention layers in ``module`` for ``device``; returns how many.

    On CUDA, PyTorch's fused ``scaled_dot_product_attention``; on the CPU, timm's explicit
    ``softmax(q k^T / sqrt(d)) v`` (the same function): with the short token sequences of signal
    images (tens of tokens) the CPU's fused kernel is the slower of the two, forward and backward
    (docs/benchmarks.md).
    """
    fused = torch.device(device).type != "cpu"
    layers = [m for m in module.modules() if isinstance(getattr(m, "fused_attn", None), bool)]
    for m in layers:
        m.fused_attn = fused
    return len(layers)
