"""What the event aggregation computes: the checked parameters and the feature names.

:class:`EventSpec` holds the groups, half-lives, windows, key group and extra half-life grid
of one :func:`pipeline.inputs.events.aggregate_events` call, each checked once here (a
one-line :class:`~pipeline.errors.UserError` naming the key otherwise); the column names the
features get are spelled here too (:func:`slugify`, :func:`window_column`,
:func:`decay_column`, :func:`half_life_column`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import UserError

OTHER_GROUP = "other"


def slugify(name: str) -> str:
    """Column-safe name: lower case, runs of anything but ``[a-z0-9]`` become one ``_``."""
    slug = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    return slug or "unnamed"


def half_life_column(group: str, half_life_days: float) -> str:
    """Column of ``group``'s decayed count at one candidate half-life: ``decayed_product__hl14``."""
    return f"decayed_{slugify(group)}__hl{float(half_life_days):g}"


def window_column(group: str, w: int) -> str:
    """Column of ``group``'s events in the last ``w`` days: ``n_product_30d``."""
    return f"n_{slugify(group)}_{w}d"


def decay_column(group: str) -> str:
    """Column of ``group``'s decayed count at its configured half-life: ``decayed_product``."""
    return f"decayed_{slugify(group)}"


@dataclass(frozen=True)
class EventSpec:
    """The checked parameters of one aggregation; ``full`` False: the decay family only."""

    event_groups: dict[str, str]
    groups: list[str]
    half_lives: dict[str, float]
    windows: tuple[int, ...]
    key_group: str
    grid: dict[str, tuple[float, ...]]
    full: bool


def full_spec(event_groups: Mapping[str, str], half_lives: Mapping[str, float],
              windows: Sequence[int], key_group: str,
              extra_half_life_grid: Mapping[str, Sequence[float]] | None) -> EventSpec:
    """Every feature family (:func:`pipeline.inputs.events.aggregate_events`)."""
    groups = check_groups(event_groups)
    return EventSpec(
        event_groups=dict(event_groups),
        groups=groups,
        half_lives=check_half_lives(half_lives, groups, "half_lives"),
        windows=check_windows(windows),
        key_group=check_key_group(key_group, groups),
        grid=check_grid(extra_half_life_grid, groups),
        full=True,
    )


def decay_spec(event_groups: Mapping[str, str], half_lives: Mapping[str, float]) -> EventSpec:
    """The decayed counts only (:func:`pipeline.inputs.events.decayed_counts_as_of`)."""
    groups = check_groups(event_groups)
    return EventSpec(
        event_groups=dict(event_groups),
        groups=groups,
        half_lives=check_half_lives(half_lives, groups, "half_lives"),
        windows=(),
        key_group="",
        grid={},
        full=False,
    )


def check_groups(event_groups: Mapping[str, str]) -> list[str]:
    """The sorted group names (``other`` included), distinct after :func:`slugify`."""
    groups = sorted({str(g) for g in event_groups.values()} | {OTHER_GROUP})
    slugs: dict[str, str] = {}
    for g in groups:
        other = slugs.setdefault(slugify(g), g)
        if other != g:
            raise UserError(
                f"event_groups: group names must stay distinct after slugify, "
                f"{other!r} and {g!r} both become {slugify(g)!r}"
            )
    return groups


def positive_float(value: Any, where: str) -> float:
    message = f"{where}: half-life must be a positive number of days, got {value!r}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(message) from None
    if not (math.isfinite(x) and x > 0):
        raise UserError(message)
    return x


def check_half_lives(half_lives: Mapping[str, float], groups: list[str], name: str) -> dict:
    unknown = sorted(set(half_lives) - set(groups))
    if unknown:
        raise UserError(
            f"{name}: unknown group(s) {unknown}; groups are the values of event_groups "
            f"plus {OTHER_GROUP!r}: {groups}"
        )
    return {g: positive_float(h, f"{name}[{g!r}]") for g, h in sorted(half_lives.items())}


def check_windows(windows: Sequence[int]) -> tuple[int, ...]:
    out = []
    for w in windows:
        whole = isinstance(w, int | float | np.integer) and not isinstance(w, bool)
        if not (whole and math.isfinite(w) and float(w).is_integer() and w > 0):
            raise UserError(f"windows: each must be a positive whole number of days, got {w!r}")
        out.append(int(w))
    if len(set(out)) != len(out):
        raise UserError(f"windows: must not repeat, got {list(windows)}")
    return tuple(sorted(out))


def check_key_group(key_group: str, groups: list[str]) -> str:
    if key_group not in groups:
        raise UserError(f"key_group: must be one of the groups {groups}, got {key_group!r}")
    return key_group


def check_grid(
    grid: Mapping[str, Sequence[float]] | None, groups: list[str]
) -> dict[str, tuple[float, ...]]:
    if not grid:
        return {}
    unknown = sorted(set(grid) - set(groups))
    if unknown:
        raise UserError(f"extra_half_life_grid: unknown group(s) {unknown}; groups are {groups}")
    out = {}
    for g in sorted(grid):
        values = {
            f"{positive_float(h, f'extra_half_life_grid[{g!r}]'):g}": float(h) for h in grid[g]
        }
        out[g] = tuple(sorted(values.values()))
    return out
