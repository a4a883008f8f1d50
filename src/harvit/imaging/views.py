"""Views: which channels of a window form one image.

A window has C channels (``body_acc_x``, ..., ``total_acc_z``). A *mode* groups them into V views
of K channels each; every view becomes one image of ``K * E`` input channels (E encodings):

* ``flatten``: one view per channel, V = C, K = 1.
* ``sensor``: one view per sensor (the x, y, z channels of one prefix), V = C / 3, K = 3.
* ``stack``: one view of all channels, V = 1, K = C.

Views are ordered *window-major* wherever many windows are expanded (window 0's V views, then
window 1's, ...); :func:`expand_views` gives the matching index pairs.
"""

from __future__ import annotations

import torch

from harvit.config import MODES
from harvit.data.channels import axis_table
from harvit.utils.errors import HarvitError


def view_groups(channels: list[str], mode: str) -> list[list[int]]:
    """Group channel indices into views.

    Args:
        channels: C channel names.
        mode: ``flatten`` | ``sensor`` | ``stack``.

    Returns:
        V lists of K channel indices each (all the same K).

    Raises:
        HarvitError: unknown mode, no channels, or (sensor mode) a channel outside an x/y/z triple.
    """
    if not channels:
        raise HarvitError("channels: no channels given; expected at least one signal channel")
    if mode == "flatten":
        return [[i] for i in range(len(channels))]
    if mode == "stack":
        return [list(range(len(channels)))]
    if mode == "sensor":
        table, loose = axis_table(channels)
        partial = [p for p, a in table.items() if len(a) != 3]
        if loose or partial:
            bad = loose + [f"{p}_{{{','.join(sorted(table[p]))}}}" for p in partial]
            raise HarvitError(
                f"--mode sensor: channels {', '.join(bad)} are not part of an x/y/z triple; "
                "expected every channel to be <sensor>_x, <sensor>_y, <sensor>_z "
                "(or use --mode flatten or stack)"
            )
        return [[a["x"], a["y"], a["z"]] for a in table.values()]
    raise HarvitError(f"--mode: unknown value {mode!r}; expected one of {', '.join(MODES)}")


def expand_views(n_windows: int, n_views: int, device: torch.device | str | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Window-major (window, view) index pairs of ``n_windows * n_views`` images.

    Row ``r`` is window ``r // n_views``, view ``r % n_views``: the order of
    :meth:`harvit.imaging.imager.SignalImager.all_views`.

    Returns:
        ``window`` int64 [n_windows * n_views] and ``view`` int64 [n_windows * n_views].
    """
    rows = torch.arange(n_windows * n_views, device=device)
    return rows // n_views, rows % n_views
