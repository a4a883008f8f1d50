"""Side features computed once (harvit.features.store) and the fast convolution counts give the same numbers."""

import numpy as np
import pytest
import torch

import harvit.features.rocket as rk
import harvit.features.store as store
from harvit.features.rocket import RocketFeatures, SideFeatures
from harvit.features.statistics import WindowStats

CHANNELS = ["body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z",
            "total_acc_x", "total_acc_y", "total_acc_z"]


def _windows(n: int, seed: int = 0, t: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.normal(size=(n, 9, t)).cumsum(-1) + rng.normal(size=(n, 9, 1))).astype(np.float32)


def _sorted_shares(conv: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The former way: sort each output, search each bias."""
    ordered = conv.sort(dim=-1).values.contiguous()
    below = torch.searchsorted(ordered, bias.expand(conv.shape[0], -1, -1).contiguous(), right=True)
    return (conv.shape[-1] - below).to(conv.dtype) / conv.shape[-1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_counted_shares_equal_sorted_ones_ties_included(dtype):
    conv = torch.randn(7, 42, 57, dtype=dtype).round(decimals=1)  # many steps equal to a bias
    bias = torch.randn(42, 5, dtype=dtype).round(decimals=1)
    assert torch.equal(rk._share_above(conv, bias), _sorted_shares(conv, bias))
    assert torch.equal(rk._share_above(conv[:, :, 3:-3], bias), _sorted_shares(conv[:, :, 3:-3], bias))


def test_features_do_not_depend_on_the_batch_and_counts_rebuild_them(monkeypatch):
    x = torch.from_numpy(_windows(150))
    rocket = RocketFeatures.fit(x.numpy(), 840, seed=1)
    whole = rocket.ppv(x)
    monkeypatch.setattr(rk, "BLOCK", 16)
    assert torch.equal(whole, rocket.ppv(x))
    assert torch.equal(whole, torch.cat([rocket.ppv(x[i:i + 1]) for i in range(0, 150, 37)]
                                        + [rocket.ppv(x[j:j + 1]) for j in range(150) if j % 37])[
        np.argsort([*range(0, 150, 37), *[j for j in range(150) if j % 37]])])
    assert torch.equal(whole, rocket.counts(x) / rocket.count_lengths(x.shape[-1]))
    xd = x.double()
    assert torch.equal(rocket.ppv(xd), (rocket.counts(xd) / rocket.count_lengths(64).double()).float())


def test_rocket_features_are_stored_once_and_read_back_equal(tmp_path, monkeypatch):
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(store, "MIN_WINDOWS", 10)
    x = _windows(40)
    rocket = RocketFeatures.fit(x, 840, seed=2)  # the fit stores the training windows' counts
    files = sorted((tmp_path / "side_features").glob("rocket-*.npy"))
    assert len(files) == 1 and np.load(files[0]).dtype == np.uint8
    monkeypatch.setattr(rocket, "counts", lambda _: pytest.fail("recomputed stored features"))
    assert torch.equal(store.rocket_raw(rocket, x), rocket.ppv(torch.from_numpy(x)))
    monkeypatch.undo()
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(store, "MIN_WINDOWS", 10)
    other = _windows(40, seed=9)  # other windows: another file
    assert torch.equal(store.rocket_raw(rocket, other), rocket.ppv(torch.from_numpy(other)))
    assert len(list((tmp_path / "side_features").glob("rocket-*.npy"))) == 2
    files[0].write_bytes(b"not an npy file")  # unreadable: recomputed, same numbers
    assert torch.equal(store.rocket_raw(rocket, x), rocket.ppv(torch.from_numpy(x)))
    refit = RocketFeatures.fit(x, 840, seed=3)  # other kernels: not the stored counts of seed 2
    assert torch.equal(store.rocket_raw(refit, x), refit.ppv(torch.from_numpy(x)))


def test_precomputed_side_features_equal_the_modules_own(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(store, "MIN_WINDOWS", 10)
    monkeypatch.setattr(store, "SLOW_WINDOWS", 10)
    x_train, x_test = _windows(60, t=128), _windows(30, seed=4, t=128)
    side = SideFeatures(WindowStats.fit(x_train, CHANNELS), RocketFeatures.fit(x_train, 840, seed=0))
    said = capsys.readouterr().out  # what starts and how long it took
    assert "features: window statistics of 60 windows ...\n" in said
    assert "features: convolution features (840 per window) of 60 windows in" in said
    for x in (x_train, x_test, x_test):  # the second test call reads the stored files
        with torch.no_grad():
            rows, want = side.precompute(x, "cpu"), side(torch.from_numpy(x))
            assert len(rows) == len(x) and rows.counts.dtype == torch.uint8  # kept as counts, not floats
            assert torch.equal(rows[:], want)
            pick = torch.tensor([5, 0, 17, 5])  # rows by index, as a training batch takes them
            assert torch.equal(rows[pick], want[pick]) and torch.equal(rows[3:9], want[3:9])
            assert torch.equal(side.stats.precompute(x, "cpu"), side.stats(torch.from_numpy(x)))
    assert len(list((tmp_path / "side_features").glob("stats-*.npy"))) == 2


def test_small_sets_and_unwritable_folders_are_computed_not_stored(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(blocker))  # a file where the folder should be
    monkeypatch.setattr(store, "MIN_WINDOWS", 10)
    x = _windows(20)
    rocket = RocketFeatures.fit(x, 840, seed=0)  # logs that it could not store, does not fail
    assert torch.equal(store.rocket_raw(rocket, x), rocket.ppv(torch.from_numpy(x)))
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setattr(store, "MIN_WINDOWS", 256)
    store.rocket_raw(rocket, x)
    assert not (tmp_path / "c").exists()
