"""An encoding declares the run settings it reads in its registry entry; the imager passes their values."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harvit.config import ARCH_KEYS, Config
from harvit.imaging.encodings import ENCODINGS, encode, encoding_settings, mtf, register_encoding
from harvit.imaging.imager import SignalImager
from harvit.imaging.scaling import Scaler

CHANNELS = ["a_x", "a_y", "a_z"]


def test_every_declared_setting_is_an_architecture_setting_of_the_config():
    """A setting an encoding reads changes the images, so it is a flag, a config.json key and a setting a
    checkpoint must share (ARCH_KEYS)."""
    fields = {f.name for f in dataclasses.fields(Config)}
    declared = {name for e in ENCODINGS.values() for name in e.settings.values()}
    assert "mtf_bins" in declared
    assert declared <= fields and declared <= set(ARCH_KEYS)
    assert ENCODINGS.get("mtf").settings == {"n_bins": "mtf_bins"} and ENCODINGS.get("gasf").settings == {}


def test_the_imager_passes_the_declared_settings_and_only_those_of_its_encodings():
    x = torch.randn(4, 3, 32).cumsum(-1)
    scaler = Scaler.fit(x)
    cfg = Config(mtf_bins=3)
    assert encoding_settings(["gasf", "mtf"], cfg) == {"mtf_bins": 3} == encoding_settings(["mtf"], cfg.to_dict())
    assert encoding_settings(["gasf", "rp"], cfg) == {}
    imager = SignalImager(CHANNELS, "flatten", ["mtf"], 16, scaler, cfg.to_dict())
    assert imager.settings == {"mtf_bins": 3}
    scaled = scaler(x)[:, :1]
    torch.testing.assert_close(imager(x, torch.zeros(4, dtype=torch.int64)), mtf(scaled, n_bins=3, image_size=16))
    assert not torch.allclose(encode(scaled, ["mtf"], 16, {"mtf_bins": 3}), encode(scaled, ["mtf"], 16))
    assert SignalImager(CHANNELS, "flatten", ["gasf"], 16, scaler, cfg.to_dict()).settings == {}


def test_a_new_encoding_reads_the_settings_it_declares():
    seen = []

    @register_encoding("toy: a constant image of one setting's value", settings={"level": "img_size"})
    def toy_level(x: torch.Tensor, level: int = 0) -> torch.Tensor:
        seen.append(level)
        b, k, t = x.shape
        return torch.full((b, k, t, t), float(level), dtype=x.dtype)

    try:
        x = torch.rand(2, 3, 16)
        imager = SignalImager(CHANNELS, "stack", ["toy_level"], 8, Scaler.fit(x), Config(img_size=8).to_dict())
        assert imager.settings == {"img_size": 8}
        images = imager(x, torch.zeros(2, dtype=torch.int64))
        assert seen == [8] and torch.all(images == 8.0)
        encode(x, ["toy_level"], 8)
        assert seen[-1] == 0  # not given: the function's own default
    finally:
        ENCODINGS.remove("toy_level")
    with pytest.raises(Exception, match="toy_level"):
        ENCODINGS.get("toy_level")
