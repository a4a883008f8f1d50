"""Signal preprocessing and windowing (also used on a user's own raw recordings)."""

from __future__ import annotations

import numpy as np
import pytest

from harvit.data import CHANNELS, preprocess_inertial, sliding_windows
from harvit.data.signals import Preprocessing, fill_nonfinite, parse_numeric_text, window_starts
from harvit.utils.errors import HarvitError


def _recording(n: int = 1000, rate: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n) / rate
    gravity = np.array([0.0, 0.6, 0.8])  # 1 g, fixed direction
    body = 0.3 * np.sin(2 * np.pi * 2.0 * t)[:, None] * np.array([1.0, 0.5, 0.0])
    gyro = 0.5 * np.cos(2 * np.pi * 1.0 * t)[:, None] * np.ones(3)
    return gravity + body, gyro


def test_channels_and_shape():
    acc, gyro = _recording()
    out = preprocess_inertial(acc, gyro)
    assert out.shape == (9, 1000) and out.dtype == np.float32
    assert CHANNELS == [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]


def test_gravity_and_body_separate():
    acc, gyro = _recording(3000)
    out = preprocess_inertial(acc, gyro)
    mid = slice(500, 2500)  # away from the edges
    body, gyro_f, total = out[0:3, mid], out[3:6, mid], out[6:9, mid]
    np.testing.assert_allclose(total, acc.T[:, mid], atol=0.02)  # 2 Hz passes the 20 Hz low-pass
    np.testing.assert_allclose(body + (total - body), total, atol=1e-6)
    np.testing.assert_allclose((total - body).mean(axis=1), [0.0, 0.6, 0.8], atol=0.01)  # gravity
    assert np.abs(body.mean(axis=1)).max() < 0.01
    np.testing.assert_allclose(
        body[0], 0.3 * np.sin(2 * np.pi * 2.0 * np.arange(500, 2500) / 50.0), atol=0.03
    )
    np.testing.assert_allclose(gyro_f, gyro.T[:, mid], atol=0.02)


def test_noise_lowpass_removes_high_frequency():
    n = 2000
    t = np.arange(n) / 50.0
    acc = np.column_stack([np.zeros(n), np.zeros(n), 1 + 0.2 * np.sin(2 * np.pi * 23.0 * t)])
    out = preprocess_inertial(acc, np.zeros((n, 3)))
    assert out[8, 200:-200].std() < 0.25 * acc[200:-200, 2].std()  # 23 Hz is above the 20 Hz cutoff


def test_short_and_bad_inputs():
    out = preprocess_inertial(np.ones((10, 3)), np.zeros((10, 3)))
    assert out.shape == (9, 10)
    with pytest.raises(HarvitError, match="expected equal lengths"):
        preprocess_inertial(np.ones((10, 3)), np.zeros((9, 3)))
    with pytest.raises(HarvitError, match=r"expected \[T, 3\]"):
        preprocess_inertial(np.ones((10, 2)), np.zeros((10, 2)))
    with pytest.raises(HarvitError, match="NaN/Inf"):
        preprocess_inertial(np.full((10, 3), np.nan), np.zeros((10, 3)))
    with pytest.raises(HarvitError, match="cutoff"):
        preprocess_inertial(np.ones((10, 3)), np.zeros((10, 3)), params=Preprocessing(gravity_cutoff_hz=30.0))


def test_low_rate_skips_the_noise_filter():
    acc, gyro = _recording(600, rate=30.0)
    out = preprocess_inertial(acc, gyro, rate_hz=30.0)
    assert out.shape == (9, 600) and np.isfinite(out).all()


@pytest.mark.parametrize(("t", "n"), [(127, 0), (128, 1), (191, 1), (192, 2), (300, 3), (1000, 14)])
def test_sliding_windows_count(t, n):
    sig = np.arange(2 * t, dtype=np.float32).reshape(2, t)
    w = sliding_windows(sig, 128, 64)
    assert w.shape == (n, 2, 128) and len(window_starts(t)) == n
    for i in range(n):
        np.testing.assert_array_equal(w[i], sig[:, 64 * i : 64 * i + 128])


def test_sliding_windows_rejects_bad_shape():
    with pytest.raises(HarvitError, match=r"\[C, T\]"):
        sliding_windows(np.zeros(10))


def test_fill_nonfinite():
    x = np.array([[np.nan, 1.0], [2.0, np.inf], [4.0, 3.0], [np.nan, 5.0]])
    np.testing.assert_allclose(fill_nonfinite(x), [[2.0, 1.0], [2.0, 2.0], [4.0, 3.0], [4.0, 5.0]])
    with pytest.raises(HarvitError, match="no finite value"):
        fill_nonfinite(np.full((3, 1), np.nan))


def test_parse_numeric_text():
    table = parse_numeric_text(b"1 2 3\r\n\r\n4 5 6\r\n", "f.txt", ncols=3)
    np.testing.assert_array_equal(table, [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(HarvitError, match="f.txt line 3: found non-numeric value 'x'"):
        parse_numeric_text(b"1 2 3\n\n4 x 6\n", "f.txt", ncols=3)
    with pytest.raises(HarvitError, match=r"f.txt line 2: found 4 values, expected 3 \(hint\)"):
        parse_numeric_text(b"1 2 3\n4 5 6 7\n", "f.txt", ncols=3, hint="hint")
    with pytest.raises(HarvitError, match=r"f.txt line 1: found 2 values, expected 3"):
        parse_numeric_text(b"1 2\n4 5\n", "f.txt", ncols=3)
    with pytest.raises(HarvitError, match="f.txt is empty"):
        parse_numeric_text(b"\n", "f.txt")
