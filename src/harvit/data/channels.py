"""Channel names: sensor triples (``<sensor>_x/_y/_z``) and the total-acceleration (gravity) triple."""

from __future__ import annotations

from harvit.utils.errors import HarvitError

_AXES = ("x", "y", "z")


def _split_axis(name: str) -> tuple[str, str] | None:
    """``"body_acc_x"`` -> ``("body_acc", "x")``; None when the name has no ``_x/_y/_z`` suffix."""
    prefix, sep, axis = name.rpartition("_")
    if sep and prefix and axis.lower() in _AXES:
        return prefix, axis.lower()
    return None


def axis_table(channels: list[str]) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Sensor prefix -> {axis: channel index} in order of first appearance, and the leftover names."""
    table: dict[str, dict[str, int]] = {}
    loose: list[str] = []
    for i, name in enumerate(channels):
        split = _split_axis(name)
        if split is None:
            loose.append(name)
            continue
        prefix, axis = split
        axes = table.setdefault(prefix, {})
        if axis in axes:
            raise HarvitError(f"channels: {name!r} repeats axis {axis} of sensor {prefix!r}")
        axes[axis] = i
    return table, loose


def sensor_triples(channels: list[str]) -> list[tuple[int, int, int]]:
    """Index triples ``(x, y, z)`` of every sensor whose three axes are all present.

    Channels outside a complete triple are skipped (they are not rotated by augmentation).

    Args:
        channels: C channel names such as ``body_acc_x``.

    Returns:
        One ``(ix, iy, iz)`` per sensor prefix, in order of the prefix's first channel.
    """
    table, _ = axis_table(channels)
    return [(a["x"], a["y"], a["z"]) for a in table.values() if len(a) == 3]


def gravity_triple(channels: list[str]) -> tuple[int, int, int] | None:
    """Index triple ``(x, y, z)`` of the first complete sensor whose prefix names the total
    acceleration (contains ``total``: gravity plus body motion), or None when there is none."""
    table, _ = axis_table(channels)
    for prefix, axes in table.items():
        if "total" in prefix and len(axes) == 3:
            return axes["x"], axes["y"], axes["z"]
    return None
