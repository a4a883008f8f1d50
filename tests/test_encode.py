"""Encoders against float64 NumPy references of their formulas and against pyts; sizes; imager."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harvit.imaging.encodings import ENCODINGS, encode, gadf, gasf, log_spectrogram, mtf, paa, paa_matrix, rp, spec
from harvit.imaging.imager import SignalImager
from harvit.imaging.scaling import Scaler
from harvit.utils.errors import HarvitError

CHANNELS = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]


def _walks(n: int, t: int, seed: int = 0) -> np.ndarray:
    """Random walks [n, t] min-max scaled to [-1, 1] (float64)."""
    x = np.cumsum(np.random.default_rng(seed).normal(size=(n, t)), axis=1)
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    return (x - lo) / (hi - lo) * 2 - 1


def _t(x: np.ndarray) -> torch.Tensor:
    """[n, t] float64 -> [n, 1, t] float32."""
    return torch.tensor(x, dtype=torch.float32).unsqueeze(1)


# ---- float64 references, written from the definitions ---------------------------------------
def gasf_ref(x: np.ndarray) -> np.ndarray:
    phi = np.arccos(np.clip(x, -1, 1))
    return np.cos(phi[:, :, None] + phi[:, None, :])


def gadf_ref(x: np.ndarray) -> np.ndarray:
    phi = np.arccos(np.clip(x, -1, 1))
    return np.sin(phi[:, :, None] - phi[:, None, :])


def rp_ref(x: np.ndarray) -> np.ndarray:
    return np.abs(x[:, :, None] - x[:, None, :])


def mtf_ref(x: np.ndarray, n_bins: int, size: int | None = None) -> np.ndarray:
    """Plain loops: quantile bins, transition counts, row normalisation, field, block means."""
    n, t = x.shape
    size = size or t
    out = np.zeros((n, size, size))
    for s in range(n):
        edges = np.percentile(x[s], np.linspace(0, 100, n_bins + 1)[1:-1])
        bins = np.searchsorted(edges, x[s], side="left")
        w = np.zeros((n_bins, n_bins))
        for a, b in zip(bins[:-1], bins[1:], strict=True):
            w[a, b] += 1
        w /= np.maximum(w.sum(axis=1, keepdims=True), 1)
        field = w[bins[:, None], bins[None, :]]
        block = t // size
        out[s] = field.reshape(size, block, size, block).mean(axis=(1, 3))
    return out


def log_spectrogram_ref(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    padded = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    starts = range(0, padded.shape[1] - n_fft + 1, hop)
    frames = np.stack([padded[:, s:s + n_fft] * window for s in starts], axis=-1)  # [n, n_fft, frames]
    return np.log1p(np.abs(np.fft.rfft(frames, axis=1)))


# ---- encoders vs references -------------------------------------------------------------------
@pytest.mark.parametrize(("fn", "ref"), [(gasf, gasf_ref), (gadf, gadf_ref), (rp, rp_ref)])
def test_pointwise_encoders_match_reference(fn, ref) -> None:
    x = _walks(6, 40)
    x[0, :5] = [-1.0, 1.0, 0.0, -1.0, 1.0]  # range ends
    out = fn(_t(x))
    assert out.shape == (6, 1, 40, 40) and out.dtype == torch.float32
    np.testing.assert_allclose(out[:, 0].numpy(), ref(x), atol=2e-6)


def test_gasf_clamps_out_of_range_input() -> None:
    out = gasf(torch.tensor([[[1.5, -2.0, 0.3]]]))
    np.testing.assert_allclose(out[0, 0].numpy(), gasf_ref(np.array([[1.0, -1.0, 0.3]]))[0], atol=1e-6)


@pytest.mark.parametrize("n_bins", [2, 4, 8])
def test_mtf_matches_reference(n_bins: int) -> None:
    x = _walks(5, 48, seed=n_bins)
    out = mtf(_t(x), n_bins=n_bins)
    assert out.shape == (5, 1, 48, 48)
    np.testing.assert_allclose(out[:, 0].numpy(), mtf_ref(x, n_bins), atol=1e-6)


def test_mtf_block_average_matches_reference() -> None:
    x = _walks(4, 64, seed=3)
    out = mtf(_t(x), n_bins=8, image_size=16)
    assert out.shape == (4, 1, 16, 16)
    np.testing.assert_allclose(out[:, 0].numpy(), mtf_ref(x, 8, size=16), atol=1e-6)


@pytest.mark.parametrize(("t", "size"), [(64, 16), (100, 32), (50, 7)])
def test_mtf_small_is_the_block_average_of_the_full_field(t: int, size: int) -> None:
    x = _t(_walks(3, t, seed=t))
    p = paa_matrix(t, size)  # [T, S] block averaging
    torch.testing.assert_close(mtf(x, image_size=size), p.T @ mtf(x) @ p, atol=1e-6, rtol=1e-5)


def test_mtf_with_tied_values_bins_like_numpy() -> None:
    x = np.round(_walks(4, 64, seed=5) * 3) / 3  # 7 distinct levels: many equal quantiles
    np.testing.assert_allclose(mtf(_t(x), n_bins=8)[:, 0].numpy(), mtf_ref(x, 8), atol=1e-6)


def test_mtf_rows_are_transition_probabilities() -> None:
    out = mtf(_t(_walks(3, 32)), n_bins=4)
    assert out.min() >= 0 and out.max() <= 1


def test_log_spectrogram_matches_numpy_stft() -> None:
    x = _walks(3, 128, seed=7)
    out = log_spectrogram(_t(x), n_fft=32, hop=4)
    ref = log_spectrogram_ref(x, 32, 4)
    assert out.shape == (3, 1, 17, 33)
    np.testing.assert_allclose(out[:, 0].numpy(), ref, atol=1e-4)


def test_log_spectrogram_matches_torch_stft() -> None:
    x = torch.randn(2, 3, 100)
    z = torch.stft(x.reshape(6, 100), n_fft=16, hop_length=3, window=torch.hann_window(16), center=True,
                   pad_mode="reflect", return_complex=True)
    torch.testing.assert_close(log_spectrogram(x, 16, 3), torch.log1p(z.abs()).reshape(2, 3, 9, -1),
                               atol=1e-5, rtol=1e-5)


def test_spec_image_is_normalised() -> None:
    out = spec(_t(_walks(3, 128)), image_size=24)
    assert out.shape == (3, 1, 24, 24)
    assert out.min() >= 0
    torch.testing.assert_close(out.amax(dim=(-2, -1)), torch.ones(3, 1))


# ---- against pyts itself ------------------------------------------------------------------------
def test_against_pyts() -> None:
    image = pytest.importorskip("pyts.image")
    x = _walks(8, 128, seed=11)
    xt = _t(x)
    for size in (128, 32):
        for method, name in (("summation", "gasf"), ("difference", "gadf")):
            ref = image.GramianAngularField(image_size=size, sample_range=None, method=method).transform(x)
            np.testing.assert_allclose(encode(xt, [name], size)[:, 0].numpy(), ref, atol=2e-5)
        ref = image.MarkovTransitionField(image_size=size, n_bins=8, strategy="quantile").transform(x)
        np.testing.assert_allclose(encode(xt, ["mtf"], size)[:, 0].numpy(), ref, atol=1e-5)
    ref = image.RecurrencePlot(threshold=None).transform(x)
    np.testing.assert_allclose(encode(xt, ["rp"], 128)[:, 0].numpy(), ref, atol=2e-5)


# ---- encode(): sizes, channel order, bounds -----------------------------------------------------
@pytest.mark.parametrize(("t", "size"), [(128, 32), (100, 32), (50, 7), (9, 9)])
def test_paa_equals_adaptive_average_pooling(t: int, size: int) -> None:
    x = torch.randn(3, 2, t)
    out = paa(x, size)
    assert out.shape == (3, 2, size)
    torch.testing.assert_close(out, F.adaptive_avg_pool1d(x, size))


def test_encode_shrinks_with_paa_when_smaller() -> None:
    x = torch.tensor(_walks(4, 128), dtype=torch.float32).view(2, 2, 128)
    out = encode(x, ["gasf", "rp"], 32)
    assert out.shape == (2, 4, 32, 32)
    short = F.adaptive_avg_pool1d(x, 32)
    torch.testing.assert_close(out[:, 0::2], gasf(short))
    torch.testing.assert_close(out[:, 1::2], rp(short))


def test_encode_resizes_bilinearly_when_larger() -> None:
    x = torch.tensor(_walks(2, 64), dtype=torch.float32).view(1, 2, 64)
    out = encode(x, ["gadf", "mtf"], 96)
    assert out.shape == (1, 4, 96, 96)
    up = F.interpolate(gadf(x), size=(96, 96), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out[:, 0::2], up)
    torch.testing.assert_close(out[:, 1::2], F.interpolate(mtf(x), size=(96, 96), mode="bilinear",
                                                           align_corners=False))


def test_encode_length_not_a_multiple_of_size() -> None:
    x = torch.tensor(_walks(3, 100), dtype=torch.float32).view(1, 3, 100)
    out = encode(x, ["gasf", "gadf", "mtf", "rp", "spec"], 32)
    assert out.shape == (1, 15, 32, 32) and torch.isfinite(out).all()


def test_encode_channel_order_is_signal_major() -> None:
    x = torch.tensor(_walks(3, 32), dtype=torch.float32).view(1, 3, 32)
    names = ["rp", "gasf", "mtf"]
    out = encode(x, names, 32)
    for k in range(3):
        for e, name in enumerate(names):
            torch.testing.assert_close(out[:, k * 3 + e], ENCODINGS.get(name).fn(x[:, k:k + 1])[:, 0])


def test_encoder_value_bounds() -> None:
    x = torch.rand(4, 3, 64) * 2 - 1
    out = encode(x, ["gasf", "gadf", "mtf", "rp", "spec"], 48).view(4, 3, 5, 48, 48)
    lo = torch.tensor([-1, -1, 0, 0, 0], dtype=torch.float32)
    hi = torch.tensor([1, 1, 1, 2, 1], dtype=torch.float32)
    eps = 1e-5
    assert (out.amin(dim=(0, 1, 3, 4)) >= lo - eps).all()
    assert (out.amax(dim=(0, 1, 3, 4)) <= hi + eps).all()


def test_gasf_sign_symmetry_on_symmetric_range_only() -> None:
    """GASF cannot tell x from -x on [-1, 1] (cos(2pi - a - b) = cos(a + b) after phi -> pi - phi);
    on [0, 1] the mirrored window maps to 1 - u, a different image. This is why the default range
    is ``unit``."""
    x = torch.tensor(_walks(1, 64, seed=2), dtype=torch.float32).view(1, 1, 64)
    pair = torch.cat([x, -x])
    sym = Scaler(lo=[-1.0], hi=[1.0], mode="window", out_range="symmetric")(pair)
    unit = Scaler(lo=[-1.0], hi=[1.0], mode="window", out_range="unit")(pair)
    g_sym, g_unit = gasf(sym), gasf(unit)
    torch.testing.assert_close(g_sym[0], g_sym[1], atol=1e-5, rtol=0)
    assert (g_unit[0] - g_unit[1]).abs().max() > 0.1


def test_float64_input_keeps_dtype() -> None:
    x = torch.rand(2, 1, 32, dtype=torch.float64)
    assert encode(x, ["gasf", "gadf", "mtf", "rp", "spec"], 16).dtype == torch.float64


# ---- SignalImager -------------------------------------------------------------------------------
def _imager(mode: str, encodings: list[str], size: int = 16, scaling: str = "global") -> SignalImager:
    x = np.random.default_rng(0).normal(size=(20, 9, 32)).astype(np.float32)
    return SignalImager(CHANNELS, mode, encodings, size, Scaler.fit(x, mode=scaling), {"mtf_bins": 4})


@pytest.mark.parametrize(("mode", "views", "k"), [("flatten", 9, 1), ("sensor", 3, 3), ("stack", 1, 9)])
def test_imager_shapes(mode: str, views: int, k: int) -> None:
    imager = _imager(mode, ["gasf", "gadf", "mtf"])
    assert (imager.n_views, imager.in_chans) == (views, k * 3)
    x = torch.randn(5, 9, 32)
    view = torch.arange(5) % views
    assert imager(x, view).shape == (5, k * 3, 16, 16)
    assert imager.all_views(x).shape == (5 * views, k * 3, 16, 16)


@pytest.mark.parametrize("mode", ["flatten", "sensor", "stack"])
def test_all_views_is_window_major_and_matches_forward(mode: str) -> None:
    imager = _imager(mode, ["gasf", "rp"], scaling="window")
    x = torch.randn(4, 9, 32)
    every = imager.all_views(x).view(4, imager.n_views, imager.in_chans, 16, 16)
    for v in range(imager.n_views):
        one = imager(x, torch.full((4,), v, dtype=torch.int64))
        torch.testing.assert_close(every[:, v], one)


def test_forward_picks_each_samples_view_channels() -> None:
    imager = _imager("sensor", ["rp"], size=32)
    x = torch.randn(3, 9, 32)
    view = torch.tensor([2, 0, 1])
    out = imager(x, view)
    scaled = imager.scaler(x)
    for i, v in enumerate(view.tolist()):
        torch.testing.assert_close(out[i], encode(scaled[i:i + 1, 3 * v:3 * v + 3], ["rp"], 32)[0])


def test_imager_state_dict_holds_the_scaler_only() -> None:
    imager = _imager("flatten", ["gasf"])
    assert set(imager.state_dict()) == {"scaler.lo", "scaler.hi", "scaler.per_window", "scaler.symmetric"}


def test_imager_rejects_bad_settings() -> None:
    scaler = Scaler(lo=np.zeros(9), hi=np.ones(9))
    with pytest.raises(HarvitError, match="--encodings: unknown encoding 'wavelet'"):
        SignalImager(CHANNELS, "flatten", ["gasf", "wavelet"], 16, scaler)
    with pytest.raises(HarvitError, match="--encodings: no encoding"):
        SignalImager(CHANNELS, "flatten", [], 16, scaler)
    with pytest.raises(HarvitError, match="--mode"):
        SignalImager(CHANNELS, "grid", ["gasf"], 16, scaler)
    with pytest.raises(HarvitError, match="scaler"):
        SignalImager(CHANNELS[:6], "flatten", ["gasf"], 16, scaler)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning",
                            "ignore:Constant folding:UserWarning")
def test_imager_exports_to_onnx_with_dynamic_batch(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    imager = _imager("sensor", ["gasf", "gadf", "mtf", "rp", "spec"], size=16).eval()
    x = torch.randn(2, 9, 32)
    path = tmp_path / "imager.onnx"
    torch.onnx.export(imager, (x, torch.tensor([0, 2])), str(path), dynamo=False, opset_version=18,
                      input_names=["x", "view"], dynamic_axes={"x": {0: "b"}, "view": {0: "b"}})
    x5, view5 = torch.randn(5, 9, 32), torch.tensor([2, 1, 0, 1, 2])
    out = ort.InferenceSession(str(path)).run(None, {"x": x5.numpy(), "view": view5.numpy()})[0]
    np.testing.assert_allclose(out, imager(x5, view5).numpy(), atol=1e-4)
