"""The points table as data: the one contract shared by training, scoring and every export.

A lead's score is a lookup and a sum. For each factor (one input column):

* categorical: the lead's value is looked up in ``levels`` (exact string match);
  a value listed in ``missing_values`` (or null / empty) gets ``missing_points``;
  any other value gets ``unseen_points``;
* numeric: the value falls in one bin of ``edges`` (right-closed:
  bin 0 is ``x <= edges[0]``, bin i is ``edges[i-1] < x <= edges[i]``, the last bin is
  ``x > edges[-1]``) and gets ``bin_points[i]``; a null value, a value listed in
  ``missing_values`` or NaN gets ``missing_points``.

``fit`` = sum of FIT factor points, ``pain`` = sum of PAIN factor points and
``points = fit + pain``, clipped to ``[score_min, score_max]`` when a cap is set.
``probability = 1 / (1 + exp(-(prob_intercept + prob_slope * points)))``.
``sdr_ready = points >= sdr_threshold``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = "1.0"
GROUPS = ("FIT", "PAIN")
KINDS = ("categorical", "numeric")


@dataclass(frozen=True)
class FactorRules:
    """Points for one input column."""

    name: str
    group: str
    kind: str
    levels: dict[str, int] = field(default_factory=dict)
    edges: list[float] = field(default_factory=list)
    bin_points: list[int] = field(default_factory=list)
    missing_points: int = 0
    unseen_points: int = 0

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(
                f"factor {self.name!r}: group must be one of {GROUPS}, got {self.group!r}")
        if self.kind not in KINDS:
            raise ValueError(
                f"factor {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "numeric":
            if len(self.bin_points) != len(self.edges) + 1:
                raise ValueError(
                    f"factor {self.name!r}: {len(self.edges)} edges need "
                    f"{len(self.edges) + 1} bin_points, got {len(self.bin_points)}"
                )
            if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
                raise ValueError(f"factor {self.name!r}: edges must increase strictly")

    @property
    def min_points(self) -> int:
        """The fewest points this factor can give."""
        return min(self._all_points())

    @property
    def max_points(self) -> int:
        """The most points this factor can give."""
        return max(self._all_points())

    def _all_points(self) -> list[int]:
        values = list(self.levels.values()) if self.kind == "categorical" else list(self.bin_points)
        return values + [self.missing_points, self.unseen_points]

    def bin_labels(self) -> list[str]:
        """Human-readable labels of the numeric bins, e.g. ``(3, 7]``."""
        if self.kind != "numeric":
            return []
        bounds = [-math.inf, *self.edges, math.inf]
        return [interval_label(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]


@dataclass(frozen=True)
class PointsRules:
    """A complete, self-contained points table: everything needed to score a lead."""

    factors: list[FactorRules]
    missing_values: list[str] = field(default_factory=list)
    id_column: str = "lead_id"
    sdr_threshold: int = 0
    prob_intercept: float = 0.0
    prob_slope: float = 0.0
    score_min: int | None = None
    score_max: int | None = None
    grades: list[dict[str, Any]] = field(default_factory=list)
    scaling: dict[str, Any] = field(default_factory=dict)
    decay_half_life_days: dict[str, float] = field(default_factory=dict)
    model_name: str = ""
    model_version: str = ""
    data_hash: str = ""
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; keys in a fixed order so the output is byte-stable."""
        return asdict(self)

    def to_json(self) -> str:
        """Deterministic JSON text (sorted keys, fixed float formatting)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PointsRules:
        """Inverse of :meth:`to_dict`."""
        payload = dict(data)
        payload["factors"] = [FactorRules(**f) for f in payload.get("factors", [])]
        return cls(**payload)

    @classmethod
    def from_json(cls, text: str) -> PointsRules:
        return cls.from_dict(json.loads(text))

    def factor_names(self, group: str | None = None) -> list[str]:
        return [f.name for f in self.factors if group is None or f.group == group]

    def probability(self, points: float) -> float:
        """Probability of conversion for a total score."""
        z = self.prob_intercept + self.prob_slope * points
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def grade(self, points: float) -> str:
        """Grade for a score; grades are sorted from best (highest ``min_points``) down."""
        for g in sorted(self.grades, key=lambda g: -g["min_points"]):
            if points >= g["min_points"]:
                return str(g["grade"])
        return str(self.grades[-1]["grade"]) if self.grades else ""


def interval_label(lo: float, hi: float) -> str:
    def fmt(x: float) -> str:
        return f"{x:g}"

    if math.isinf(lo):
        return f"<= {fmt(hi)}"
    if math.isinf(hi):
        return f"> {fmt(lo)}"
    return f"({fmt(lo)}, {fmt(hi)}]"


def is_missing(value: Any, missing_values: list[str] | tuple[str, ...]) -> bool:
    """The one definition of "missing" every scorer follows."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return value == "" or value in missing_values
    return False


def factor_points(factor: FactorRules, value: Any, missing_values: list[str]) -> tuple[int, str]:
    """Points of one factor for one raw value, and what matched (for reason codes).

    Reference implementation, one value at a time: slow and obviously right. The
    vectorised engines and every export are tested against it.
    """
    if is_missing(value, missing_values):
        return factor.missing_points, "(missing)"
    if factor.kind == "categorical":
        key = value if isinstance(value, str) else canonical_str(value)
        if key in factor.levels:
            return factor.levels[key], key
        return factor.unseen_points, "(unseen)"
    x = float(value)
    if math.isnan(x):
        return factor.missing_points, "(missing)"
    index = sum(1 for edge in factor.edges if edge < x)
    return factor.bin_points[index], factor.bin_labels()[index]


def canonical_str(value: Any) -> str:
    """How a non-string value is matched against categorical levels (``1.0`` -> ``"1"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def score_record(rules: PointsRules, lead: Mapping[str, Any]) -> dict[str, Any]:
    """Score one lead (a mapping of column -> raw value) with the reference scorer."""
    fit = pain = 0
    for factor in rules.factors:
        pts, _ = factor_points(factor, lead.get(factor.name), rules.missing_values)
        if factor.group == "FIT":
            fit += pts
        else:
            pain += pts
    total = fit + pain
    if rules.score_min is not None:
        total = max(total, rules.score_min)
    if rules.score_max is not None:
        total = min(total, rules.score_max)
    return {
        "points": total,
        "fit": fit,
        "pain": pain,
        "probability": rules.probability(total),
        "sdr_ready": total >= rules.sdr_threshold,
    }
