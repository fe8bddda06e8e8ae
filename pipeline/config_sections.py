"""The configuration's sections: one frozen, strict pydantic model per YAML section
(``data``, ``label``, ``columns``, ``events``, ``analysis``, ``model``, ``points``,
``threshold``, ``registry``), assembled and loaded by :mod:`pipeline.config`."""

from __future__ import annotations

import codecs
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

Scalar = str | int | float | bool
ROW_ID_COLUMN = "row_id"  # the ids the reader adds when data.id_column is null
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t"}  # YAML-friendly spellings of a tab


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileKeyConfig(Strict):
    """A second file joined to the leads by a key column (``{path, on}``)."""

    path: Path
    on: str

    @field_validator("on")
    @classmethod
    def _named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("needs the name of the key column")
        return v


class DataConfig(Strict):
    leads: Path
    events: Path | None
    id_column: str | None
    created_at_column: str | None
    account_column: str | None
    missing_values: list[str]
    lookups: list[FileKeyConfig]
    delimiter: str
    encoding: str
    decimal: Literal["auto", ".", ","]

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, v: str) -> str:
        """``auto`` or one character (``tab`` / ``\\t`` spell a tab): a longer text would be
        taken for a field separator nobody meant."""
        v = DELIMITER_NAMES.get(v, v)
        if v != "auto" and (len(v) != 1 or v in "\"\r\n"):
            raise ValueError(f"must be 'auto' or one character such as ',', ';', 'tab' or '|', "
                             f"got {v!r}")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, v: str) -> str:
        """``auto`` or a text encoding Python knows (``latin-1``, ``cp1252``, ``utf-8``...)."""
        if v == "auto":
            return v
        try:
            info = codecs.lookup(v)
        except LookupError:
            raise ValueError(f"must be 'auto' or a text encoding such as utf-8, cp1252 or "
                             f"latin-1, got {v!r}") from None
        if not _is_text_codec(info):
            raise ValueError(f"{v!r} is not a text encoding") from None
        return v

    @property
    def id_name(self) -> str:
        """The id column the pipeline uses: ``id_column``, or the row numbers the reader adds
        (``row_id``) when it is null."""
        return self.id_column or ROW_ID_COLUMN


def _is_text_codec(info: codecs.CodecInfo) -> bool:
    """Whether a codec turns bytes into text (``rot13``, ``base64`` and the like do not)."""
    try:
        return isinstance(info.decode(b"a")[0], str)
    except Exception:  # noqa: BLE001 - a codec that cannot decode b"a" is no text codec here
        return False


class LabelConfig(Strict):
    column: str
    positive: list[Scalar]
    negative: list[Scalar]
    open: list[Scalar]
    won_in: FileKeyConfig | None
    window_days: int | None
    converted_at_column: str | None

    @model_validator(mode="after")
    def _disjoint(self) -> LabelConfig:
        positive, negative = {str(v) for v in self.positive}, {str(v) for v in self.negative}
        both = positive & negative
        if both:
            raise ValueError(f"values {sorted(both)} are both positive and negative")
        if not self.positive:
            raise ValueError("positive needs at least one value meaning 'won'")
        decided = sorted({str(v) for v in self.open} & (positive | negative))
        if decided:
            raise ValueError(f"open values {decided} are also positive or negative: an open "
                             "lead is undecided, pick one")
        return self

    @model_validator(mode="after")
    def _window(self) -> LabelConfig:
        if self.window_days is not None and self.window_days < 1:
            raise ValueError(f"window_days must be >= 1, got {self.window_days}")
        if (self.window_days is None) != (self.converted_at_column is None):
            raise ValueError("window_days and converted_at_column go together: won means "
                             "converted_at_column within window_days of the creation date")
        if self.window_days is not None and self.won_in is not None:
            raise ValueError("won_in and window_days are two ways to say who is won: pick one")
        if self.window_days is not None and self.open:
            raise ValueError("open is read from the label column, which window_days replaces "
                             "(leads younger than window_days are the undecided ones): "
                             "leave open empty")
        return self


class ColumnsConfig(Strict):
    fit: list[str]
    pain: list[str]
    numeric: list[str]
    exclude: list[str]
    declared_leaky: list[str]
    special_values: dict[str, list[float]]
    trend: dict[str, Literal["ascending", "descending", "peak", "valley", "auto", "free"]]

    @field_validator("special_values")
    @classmethod
    def _finite_specials(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for column, values in v.items():
            if not values:
                raise ValueError(f"column {column!r}: list at least one value, or leave it out")
            bad = [x for x in values if not math.isfinite(x)]
            if bad:
                raise ValueError(f"column {column!r}: special values must be finite numbers, "
                                 f"got {bad}")
        return v

    @model_validator(mode="after")
    def _no_contradiction(self) -> ColumnsConfig:
        used = set(self.fit) | set(self.pain)
        for name, other in (("exclude", self.exclude), ("declared_leaky", self.declared_leaky)):
            clash = sorted(used & set(other))
            if clash:
                raise ValueError(f"columns {clash} are both FIT/PAIN and in {name}: pick one")
        clash = sorted(set(self.fit) & set(self.pain))
        if clash:
            raise ValueError(f"columns {clash} are both FIT and PAIN: pick one")
        return self


class DerivedConfig(Strict):
    email_column: str | None
    name_columns: list[str]
    title_column: str | None
    extra_free_domains: list[str]
    extra_disposable_domains: list[str]
    spam_gate: bool


class EventsConfig(Strict):
    groups: dict[str, list[str]]
    snapshot_horizon_days: float
    windows: list[int]
    key_group: str
    half_life_grid: list[float]
    engine: Literal["duckdb", "spark"] = "duckdb"
    master: str | None = None
    representation: Literal["crm", "decayed"]
    crm_window_grid: list[int]
    crm_cap_grid: list[int]
    velocity_days_grid: list[int]

    @field_validator("crm_window_grid", "crm_cap_grid", "velocity_days_grid")
    @classmethod
    def _whole_days(cls, v: list[int]) -> list[int]:
        if not v or any(int(x) != x or x < 1 for x in v):
            raise ValueError(f"needs positive whole numbers, got {v}")
        return sorted(set(int(x) for x in v))

    @field_validator("snapshot_horizon_days")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError(f"must be > 0, got {v}")
        return v

    @field_validator("half_life_grid")
    @classmethod
    def _grid_positive(cls, v: list[float]) -> list[float]:
        if not v or any(h <= 0 for h in v):
            raise ValueError(f"needs positive half-lives in days, got {v}")
        return sorted(v)

    @property
    def event_to_group(self) -> dict[str, str]:
        return {event: group for group, events in self.groups.items() for event in events}


class AnalysisConfig(Strict):
    min_leads: int
    n_bins: int
    max_factors: int
    min_lift_pp: float
    max_association: float
    leakage_auc: float
    min_cv_auc_gain: float
    significance: float

    @model_validator(mode="after")
    def _ranges(self) -> AnalysisConfig:
        if self.min_leads < 1:
            raise ValueError(f"min_leads must be >= 1, got {self.min_leads}")
        if not 2 <= self.n_bins <= 50:
            raise ValueError(f"n_bins must be between 2 and 50, got {self.n_bins}")
        if self.max_factors < 1:
            raise ValueError(f"max_factors must be >= 1, got {self.max_factors}")
        if not 0 < self.max_association <= 1:
            raise ValueError(f"max_association must be in (0, 1], got {self.max_association}")
        if not 0.5 < self.leakage_auc <= 1:
            raise ValueError(f"leakage_auc must be in (0.5, 1], got {self.leakage_auc}")
        if not 0 <= self.min_cv_auc_gain < 0.5:
            raise ValueError(f"min_cv_auc_gain must be in [0, 0.5), got {self.min_cv_auc_gain}")
        if not 0 < self.significance <= 1:
            raise ValueError(f"significance must be in (0, 1], got {self.significance}")
        return self


class ModelConfig(Strict):
    holdout_share: float
    cv_folds: int
    c_grid: list[float]
    max_iter: int
    max_cv_rows: int
    max_inference_rows: int
    refit_on_all: bool

    @model_validator(mode="after")
    def _ranges(self) -> ModelConfig:
        if not 0 < self.holdout_share < 0.9:
            raise ValueError(f"holdout_share must be in (0, 0.9), got {self.holdout_share}")
        if self.cv_folds < 2:
            raise ValueError(f"cv_folds must be >= 2, got {self.cv_folds}")
        for name in ("max_cv_rows", "max_inference_rows"):
            if getattr(self, name) < 1000:
                raise ValueError(f"{name} must be >= 1000, got {getattr(self, name)}")
        if not self.c_grid or any(c <= 0 for c in self.c_grid):
            raise ValueError(f"c_grid needs positive values, got {self.c_grid}")
        return self


class PointsConfig(Strict):
    scaling: Literal["pdo", "minmax"]
    pdo: float
    base_score: float | None
    base_odds: float | None
    range: tuple[int, int]
    cap: tuple[int, int] | None
    unseen_points: int
    max_rounding_auc_loss: float
    sign_consistent: bool
    locked: dict[str, int]

    @model_validator(mode="after")
    def _ranges(self) -> PointsConfig:
        if self.pdo <= 0:
            raise ValueError(f"pdo must be > 0, got {self.pdo}")
        if (self.base_score is None) != (self.base_odds is None):
            raise ValueError("base_score and base_odds go together: set both or neither")
        if self.base_odds is not None and self.base_odds <= 0:
            raise ValueError(f"base_odds must be > 0, got {self.base_odds}")
        if self.range[0] >= self.range[1]:
            raise ValueError(f"range must be [low, high] with low < high, got {list(self.range)}")
        if self.cap is not None and self.cap[0] >= self.cap[1]:
            raise ValueError(f"cap must be [min, max] with min < max, got {list(self.cap)}")
        bad = [key for key in self.locked if " = " not in key]
        if bad:
            raise ValueError(f"locked keys are 'factor = level', got {bad}")
        if self.locked and self.scaling != "pdo":
            raise ValueError("locked points need scaling: pdo (they are relative to the "
                             "factor's reference level)")
        return self


class ThresholdConfig(Strict):
    target_rate: tuple[float, float]
    capacity_per_week: float | None
    min_lift: float
    fit_quantile: float
    pain_quantile: float
    grades: dict[str, float] | None

    @model_validator(mode="after")
    def _ranges(self) -> ThresholdConfig:
        low, high = self.target_rate
        if not 0 <= low <= high <= 1:
            raise ValueError(f"target_rate must be [low, high] within 0..1, got {[low, high]}")
        if self.capacity_per_week is not None and self.capacity_per_week <= 0:
            raise ValueError(f"capacity_per_week must be > 0, got {self.capacity_per_week}")
        if self.min_lift <= 1:
            raise ValueError(f"min_lift must be > 1 (a multiple of the base rate), "
                             f"got {self.min_lift}")
        for name in ("fit_quantile", "pain_quantile"):
            q = getattr(self, name)
            if not 0 < q < 1:
                raise ValueError(f"{name} must be in (0, 1), got {q}")
        if self.grades is not None:
            shares = list(self.grades.values())
            if any(s <= 0 for s in shares) or abs(sum(shares) - 1) > 1e-6:
                raise ValueError(f"grades shares must be positive and sum to 1, got {self.grades}")
        return self


class RegistryConfig(Strict):
    tracking_uri: str
    artifact_location: str
    experiment: str | None
    promotion_margin: float
