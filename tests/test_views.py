"""Views: channel grouping per mode, sensor triples, window-major bookkeeping."""

from __future__ import annotations

import pytest
import torch

from harvit.data.channels import sensor_triples
from harvit.imaging.views import expand_views, view_groups
from harvit.utils.errors import HarvitError

CHANNELS = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]


def test_flatten_one_view_per_channel() -> None:
    assert view_groups(CHANNELS, "flatten") == [[i] for i in range(9)]


def test_stack_one_view_of_all_channels() -> None:
    assert view_groups(CHANNELS, "stack") == [list(range(9))]


def test_sensor_groups_xyz_in_order() -> None:
    assert view_groups(CHANNELS, "sensor") == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_sensor_orders_axes_even_when_channels_are_shuffled() -> None:
    channels = ["gyro_z", "acc_y", "gyro_x", "acc_x", "acc_z", "gyro_y"]
    assert view_groups(channels, "sensor") == [[2, 5, 0], [3, 1, 4]]
    assert sensor_triples(channels) == [(2, 5, 0), (3, 1, 4)]


def test_sensor_mode_rejects_channels_outside_triples() -> None:
    with pytest.raises(HarvitError, match="--mode sensor.*temperature"):
        view_groups([*CHANNELS, "temperature"], "sensor")
    with pytest.raises(HarvitError, match="--mode sensor.*mag"):
        view_groups([*CHANNELS, "mag_x", "mag_y"], "sensor")


def test_unknown_mode_and_empty_channels() -> None:
    with pytest.raises(HarvitError, match="--mode: unknown value 'pixels'"):
        view_groups(CHANNELS, "pixels")
    with pytest.raises(HarvitError, match="no channels"):
        view_groups([], "flatten")


def test_repeated_axis_is_an_error() -> None:
    with pytest.raises(HarvitError, match="repeats axis x"):
        sensor_triples(["acc_x", "acc_x", "acc_y", "acc_z"])


def test_sensor_triples_skip_incomplete_sensors() -> None:
    assert sensor_triples([*CHANNELS, "mag_x", "temperature"]) == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]


def test_expand_views_is_window_major() -> None:
    window, view = expand_views(3, 2)
    assert window.tolist() == [0, 0, 1, 1, 2, 2]
    assert view.tolist() == [0, 1, 0, 1, 0, 1]
    assert window.dtype == view.dtype == torch.int64
