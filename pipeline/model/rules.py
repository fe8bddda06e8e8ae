"""The points table as data: the one contract shared by training, scoring and every export.

A lead's score is a lookup and a sum. For each factor (one input column):

* categorical: the lead's value is looked up in ``levels`` (exact string match);
  a value listed in ``missing_values`` (or null / empty) gets ``missing_points``;
  any other value gets ``unseen_points``;
* numeric: a null value, a value listed in ``missing_values`` or NaN gets
  ``missing_points``; a value equal to a key of ``special_points`` (a sentinel such as
  ``999`` = "never contacted"; keys are the numbers as text, ``"999"``, ``"-1"``, ``"0.5"``)
  gets that key's points, checked before the bins; any other value falls in one bin of
  ``edges`` (right-closed: bin 0 is ``x <= edges[0]``, bin i is ``edges[i-1] < x <=
  edges[i]``, the last bin is ``x > edges[-1]``) and gets ``bin_points[i]``.

``fit`` = sum of FIT factor points, ``pain`` = sum of PAIN factor points and
``points = fit + pain``, clipped to ``[score_min, score_max]`` when a cap is set.
``probability = 1 / (1 + exp(-(prob_intercept + prob_slope * points)))``.
``sdr_ready = points >= sdr_threshold``, and, when ``spam_gate`` is on, never for a lead
whose ``name_spam`` is ``"yes"`` (a present, non-missing value equal to ``"yes"``).

``event_rules`` say how a behaviour factor's column is counted from the raw event log
(``lead_id, event, timestamp``) as of a date (the CRM representation): the lead's events named
in ``events``, at or after its creation and before the as-of date, that fall in the last
``window_days`` days before the as-of date (``anchor = "as_of"``: the events of
``as_of - window_days <= timestamp``) or in the first ``window_days`` days after creation
(``anchor = "created"``: the velocity rule "N key events within D days of creation",
``timestamp < created_at + window_days``), counted up to ``cap`` occurrences. The factor's
bins give the points of each count; written out (``to_dict``) as ``base_points`` (no
occurrence) and ``points_per_occurrence`` (what the 1st, 2nd, ... K-th occurrence adds).

``derived`` records how the derived profile signals (``email_domain_type``, ``name_spam``,
``seniority``) are computed from the raw lead columns, with a digest of the shipped domain
lists, so the table says everything that decides a lead's output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

SCHEMA_VERSION = "1.2"
SPAM_COLUMN = "name_spam"
SPAM_VALUE = "yes"
GROUPS = ("FIT", "PAIN")
KINDS = ("categorical", "numeric")
ANCHORS = ("as_of", "created")


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
    special_points: dict[str, int] = field(default_factory=dict)

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
            for key in self.special_points:
                if special_key(_special_number(self.name, key)) != key:
                    raise ValueError(
                        f"factor {self.name!r}: special_points key {key!r} is not a number "
                        f"written as {special_key(_special_number(self.name, key))!r}")
        elif self.special_points:
            raise ValueError(f"factor {self.name!r}: special_points are for numeric factors")

    @property
    def min_points(self) -> int:
        """The fewest points this factor can give."""
        return min(self._all_points())

    @property
    def max_points(self) -> int:
        """The most points this factor can give."""
        return max(self._all_points())

    def _all_points(self) -> list[int]:
        if self.kind == "categorical":
            values = list(self.levels.values())
        else:
            values = list(self.bin_points) + list(self.special_points.values())
        return values + [self.missing_points, self.unseen_points]

    def special_values(self) -> list[tuple[float, int, str]]:
        """``(value, points, label)`` of each special value, ascending by value; the label
        reads like ``= 999``."""
        pairs = sorted((float(k), int(p)) for k, p in self.special_points.items())
        return [(v, p, special_label(v)) for v, p in pairs]

    def bin_labels(self) -> list[str]:
        """Human-readable labels of the numeric bins, e.g. ``(3, 7]``."""
        if self.kind != "numeric":
            return []
        return interval_labels(self.edges)


@dataclass(frozen=True)
class EventRule:
    """How one behaviour factor is counted from raw events (see the module docstring)."""

    factor: str
    events: list[str]
    window_days: int
    cap: int
    anchor: str = "as_of"

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise ValueError(f"event rule {self.factor!r}: anchor must be one of {ANCHORS}, "
                             f"got {self.anchor!r}")
        for name in ("window_days", "cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"event rule {self.factor!r}: {name} must be a whole number "
                                 f">= 1, got {value!r}")
        if not self.events:
            raise ValueError(f"event rule {self.factor!r}: needs at least one event name")

    @property
    def is_velocity(self) -> bool:
        return self.anchor == "created"

    def describe(self) -> str:
        """The rule in words, e.g. ``product events (login, ...) in the last 30 days, at most
        3 counted``."""
        names = ", ".join(self.events)
        when = (f"within {self.window_days} days of creation" if self.is_velocity
                else f"in the last {self.window_days} days")
        return f"occurrences of {names} {when}, at most {self.cap} counted"


@dataclass(frozen=True)
class DerivedSignals:
    """How the derived FIT signals are computed from raw lead columns
    (:mod:`pipeline.inputs.signals`).

    ``domain_lists_sha256`` is the digest of the shipped free-mail and disposable domain lists
    the table was trained with (empty when unknown): scorers can tell when their lists differ.
    """

    email_column: str | None = None
    name_columns: list[str] = field(default_factory=list)
    title_column: str | None = None
    extra_free_domains: list[str] = field(default_factory=list)
    extra_disposable_domains: list[str] = field(default_factory=list)
    domain_lists_sha256: str = ""

    def raw_columns(self) -> list[str]:
        """The raw columns the signals are computed from (email, names, title)."""
        return [c for c in (self.email_column, *self.name_columns, self.title_column) if c]


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
    derived: DerivedSignals = field(default_factory=DerivedSignals)
    spam_gate: bool = False
    event_rules: list[EventRule] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        # event rules describe factors: those of factors not in the table (not selected) go
        names = set(self.factor_names())
        kept = [r for r in self.event_rules if r.factor in names]
        if len(kept) != len(self.event_rules):
            object.__setattr__(self, "event_rules", kept)
        for rule in kept:
            if self.factor(rule.factor).kind != "numeric":
                raise ValueError(f"event rule {rule.factor!r}: its factor must be numeric")

    def factor(self, name: str) -> FactorRules:
        """The factor named ``name`` (``KeyError`` when absent)."""
        for f in self.factors:
            if f.name == name:
                return f
        raise KeyError(name)

    def event_rule(self, factor: str) -> EventRule | None:
        """The event rule that counts ``factor``'s column, if any."""
        return next((r for r in self.event_rules if r.factor == factor), None)

    def count_points(self, rule: EventRule) -> list[int]:
        """Points of ``rule``'s factor for 0, 1, ..., ``cap`` counted occurrences."""
        from pipeline.model.reference import factor_points

        factor = self.factor(rule.factor)
        return [factor_points(factor, k, self.missing_values)[0] for k in range(rule.cap + 1)]

    def occurrence_points(self, rule: EventRule) -> tuple[int, list[int]]:
        """``(base_points, points_per_occurrence)``: the points of no occurrence and what the
        1st, 2nd, ..., ``cap``-th occurrence adds (all the same for a linear rule)."""
        points = self.count_points(rule)
        return points[0], [b - a for a, b in zip(points, points[1:], strict=False)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; keys in a fixed order so the output is byte-stable. A factor's
        ``special_points`` appear only when it has some (tables without sentinels read as
        they always did); ``event_rules`` only when there are some, each with its
        ``base_points`` and ``points_per_occurrence`` (read off the factor's bins)."""
        data = asdict(self)
        for factor in data["factors"]:
            if not factor["special_points"]:
                del factor["special_points"]
        if not self.event_rules:
            del data["event_rules"]
        else:
            for rule, out in zip(self.event_rules, data["event_rules"], strict=True):
                out["base_points"], out["points_per_occurrence"] = self.occurrence_points(rule)
        return data

    def to_json(self) -> str:
        """Deterministic JSON text (sorted keys, fixed float formatting)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PointsRules:
        """Inverse of :meth:`to_dict`."""
        payload = dict(data)
        payload["factors"] = [FactorRules(**{**f, "special_points": dict(f.get("special_points")
                                                                          or {})})
                              for f in payload.get("factors", [])]
        payload["derived"] = DerivedSignals(**(payload.get("derived") or {}))
        payload["event_rules"] = [
            EventRule(**{k: v for k, v in r.items()
                         if k not in ("base_points", "points_per_occurrence")})
            for r in payload.get("event_rules") or []]
        return cls(**payload)

    @classmethod
    def from_json(cls, text: str) -> PointsRules:
        return cls.from_dict(json.loads(text))

    def factor_names(self, group: str | None = None) -> list[str]:
        return [f.name for f in self.factors if group is None or f.group == group]

    def gate_columns(self) -> list[str]:
        """Columns read beyond the factors: ``name_spam`` when the spam gate is on."""
        return [SPAM_COLUMN] if self.spam_gate and SPAM_COLUMN not in self.factor_names() else []

    def input_columns(self) -> list[str]:
        """Every column a scorer reads: the factors, then the gate columns."""
        return [*dict.fromkeys(self.factor_names()), *self.gate_columns()]

    def is_spam(self, value: Any) -> bool:
        """Whether a ``name_spam`` value marks a spam lead (present, not missing, ``"yes"``)."""
        from pipeline.model.reference import is_missing

        return (not is_missing(value, self.missing_values) and isinstance(value, str)
                and value == SPAM_VALUE)

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


def interval_label(lo: float, hi: float, *, full: bool = False) -> str:
    def fmt(x: float) -> str:
        return repr(float(x)) if full else f"{x:g}"

    if math.isinf(lo):
        return f"<= {fmt(hi)}"
    if math.isinf(hi):
        return f"> {fmt(lo)}"
    return f"({fmt(lo)}, {fmt(hi)}]"


def interval_labels(edges: list[float]) -> list[str]:
    """Labels of the right-closed bins of ``edges``, e.g. ``<= 3``, ``(3, 7]``, ``> 7``;
    edges too close for ``%g`` to tell apart are written in full precision."""
    bounds = [-math.inf, *edges, math.inf]
    pairs = list(zip(bounds, bounds[1:], strict=False))
    labels = [interval_label(lo, hi) for lo, hi in pairs]
    if len(set(labels)) < len(labels):
        labels = [interval_label(lo, hi, full=True) for lo, hi in pairs]
    return labels


def special_key(value: float) -> str:
    """The text a special value is keyed by in ``special_points``: ``999`` for 999.0, else
    the shortest text that reads back as the same float (``0.5``, ``-1e-07``)."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def special_label(value: float) -> str:
    """The level label of a special value, e.g. ``= 999``."""
    return f"= {special_key(value)}"


def _special_number(name: str, key: str) -> float:
    try:
        value = float(key)
    except (TypeError, ValueError):
        raise ValueError(f"factor {name!r}: special_points key {key!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"factor {name!r}: special_points key {key!r} must be finite")
    return value


def merge_equal_bins(factor: FactorRules) -> FactorRules:
    """``factor`` with each run of adjacent numeric bins worth the same points made one bin
    (the edges between them dropped). Every value scores exactly as before: a value of a
    merged bin got those points from whichever bin of the run held it, and special values,
    missing and unseen points are untouched. A categorical factor is returned as it is."""
    if factor.kind != "numeric" or not factor.edges:
        return factor
    edges: list[float] = []
    points = [factor.bin_points[0]]
    for edge, pts in zip(factor.edges, factor.bin_points[1:], strict=True):
        if pts != points[-1]:
            edges.append(edge)
            points.append(pts)
    if len(edges) == len(factor.edges):
        return factor
    return replace(factor, edges=edges, bin_points=points)
