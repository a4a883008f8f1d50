"""Test-only entry point: ``harvit`` under torchrun where rank 1 alone runs out of memory in training forwards
of more than ``HARVIT_TEST_OOM_ABOVE`` images (a real ``torch.OutOfMemoryError`` from inside the forward)."""

from __future__ import annotations

import os
import sys

import torch

import harvit.training.loop as loop
from harvit.cli import main

LIMIT = int(os.environ.get("HARVIT_TEST_OOM_ABOVE", "8"))
real_build_run = loop.build_run


def hook(module: torch.nn.Module, args: tuple) -> None:
    if module.training and args[0].shape[0] > LIMIT:
        raise torch.OutOfMemoryError(f"test: rank 1 holds at most {LIMIT} images")


def build_run(cfg, dataset=None, dist=None):  # noqa: ANN001, ANN201 - the real signature's stand-in
    run = real_build_run(cfg, dataset, dist)
    if run.dist.rank == 1:
        run.model.net.register_forward_pre_hook(hook)
    return run


if __name__ == "__main__":
    loop.build_run = build_run
    sys.exit(main(sys.argv[1:]))
