"""Configuration: one YAML file per dataset, merged over the shipped defaults, validated once.

Every default lives in ``pipeline/resources/defaults.yaml``; the models below carry none,
so the YAML is the single source of truth. Unknown keys, wrong types and contradictory
settings fail up front with a message naming the file and the key.
"""

from __future__ import annotations

import codecs
import copy
import hashlib
import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from pipeline.errors import UserError

Scalar = str | int | float | bool
MAX_YAML_NODES = 20_000  # values a config may expand to (aliases counted where used)
VALUE_CHARS = 80  # characters of a value a message shows
# model and config names become registry names, lock files and output folders
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+-]{0,99}")
ROW_ID_COLUMN = "row_id"  # the ids the reader adds when data.id_column is null
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t"}  # YAML-friendly spellings of a tab


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileKeyConfig(_Strict):
    """A second file joined to the leads by a key column (``{path, on}``)."""

    path: Path
    on: str

    @field_validator("on")
    @classmethod
    def _named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("needs the name of the key column")
        return v


class DataConfig(_Strict):
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


class LabelConfig(_Strict):
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


class ColumnsConfig(_Strict):
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


class DerivedConfig(_Strict):
    email_column: str | None
    name_columns: list[str]
    title_column: str | None
    extra_free_domains: list[str]
    extra_disposable_domains: list[str]
    spam_gate: bool


class EventsConfig(_Strict):
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


class AnalysisConfig(_Strict):
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


class ModelConfig(_Strict):
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


class PointsConfig(_Strict):
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


class ThresholdConfig(_Strict):
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


class RegistryConfig(_Strict):
    tracking_uri: str
    artifact_location: str
    experiment: str | None
    promotion_margin: float


class Config(_Strict):
    """A validated dataset configuration (paths already resolved)."""

    name: str | None
    root: Path
    model_name: str
    seed: int
    data: DataConfig
    label: LabelConfig
    targets: dict[str, LabelConfig] | None
    columns: ColumnsConfig
    derived: DerivedConfig
    events: EventsConfig
    analysis: AnalysisConfig
    model: ModelConfig
    points: PointsConfig
    threshold: ThresholdConfig
    registry: RegistryConfig

    @field_validator("name")
    @classmethod
    def _folder_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or v.startswith(".") or any(c in v for c in "/\\\0")):
            raise ValueError("names the output folder: no '/', '\\' and no leading '.'")
        return v

    @field_validator("model_name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if SAFE_NAME.fullmatch(v) is None or ".." in v:
            raise ValueError("must be 1-100 letters, digits, spaces or . _ + - (starting with "
                             "a letter or digit; no '/', '\\' or '..'): it names the registered "
                             "model, its lock file and its output folder")
        return v

    @field_validator("targets")
    @classmethod
    def _safe_targets(cls, v: dict[str, LabelConfig] | None) -> dict[str, LabelConfig] | None:
        for name in v or {}:
            if SAFE_NAME.fullmatch(name) is None or ".." in name:
                raise ValueError(f"target name {shorten(name)} must be letters, digits, spaces "
                                 "or . _ + - (it becomes part of the model name)")
        return v

    def for_targets(self) -> list[Config]:
        """One config per target (``targets`` in the YAML), each with its own label and model
        name ``<model_name>-<target>``; a single-target config returns itself."""
        if not self.targets:
            return [self]
        return [self.model_copy(update={"label": label, "targets": None,
                                        "model_name": f"{self.model_name}-{name}",
                                        "name": f"{self.name}-{name}"})
                for name, label in self.targets.items()]

    @model_validator(mode="after")
    def _window_needs_created_at(self) -> Config:
        targets = self.targets or {}
        labels = {"label": self.label, **{f"targets.{k}": v for k, v in targets.items()}}
        for key, label in labels.items():
            if label.window_days is not None and not self.data.created_at_column:
                raise ValueError(f"{key}.window_days needs data.created_at_column (the window "
                                 "runs from each lead's creation date)")
        return self

    @model_validator(mode="after")
    def _roles(self) -> Config:
        used = {"columns.fit": self.columns.fit, "columns.pain": self.columns.pain}
        for role, column in (("label.column", self.label.column),
                             ("data.id_column", self.data.id_name)):
            for key, columns in used.items():
                if column in columns:
                    raise ValueError(f"column {column!r} is the {role} and also listed in "
                                     f"{key}: a factor cannot be the {role.split('.')[-1]}")
        return self

    @property
    def experiment_name(self) -> str:
        return self.registry.experiment or self.model_name

    def digest(self) -> str:
        """Hash of the effective configuration (for lineage tags)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_settings() -> dict[str, Any]:
    """The shipped defaults as a plain dict."""
    text = resources.files("pipeline").joinpath("resources/defaults.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _merge(base: dict[str, Any], override: dict[str, Any], path: str = "") -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        where = f"{path}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise UserError(f"unknown key '{shorten(where, quote=False)}'",
                            hint=f"known keys here: {known}")
        if isinstance(base[key], dict) and base[key] and isinstance(value, dict):
            merged[key] = _merge(base[key], value, f"{where}.")
        else:
            merged[key] = value
    return merged


def load_config(
    path: str | Path, *, data: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Config:
    """Read, merge over defaults, resolve paths and validate a YAML config.

    ``data`` overrides ``data.leads`` (the ``--data`` option); ``overrides`` is a nested
    dict merged last (tests, experiments).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} not found", hint="pass --config configs/demo.yaml")
    try:
        raw = bounded_yaml(path.read_text(encoding="utf-8"), path) or {}
    except yaml.constructor.ConstructorError as exc:
        mark = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        raise UserError(f"{path}: refused a YAML tag{mark}: {exc.problem}",
                        hint="configs are plain data (loaded with yaml.safe_load): remove tags "
                        "like !!python/object") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of keys at the top level")
    try:
        settings = _merge(default_settings(), raw)
        if overrides:
            settings = _merge(settings, overrides)
    except UserError as exc:
        raise UserError(f"{path}: {exc.message}", hint=exc.hint) from None
    settings["name"] = settings["name"] or path.stem
    root = (path.parent / (settings["root"] or ".")).resolve()
    settings["root"] = str(root)
    data_section = settings["data"]
    if data is not None:
        data_section["leads"] = str(Path(data).resolve())
    if data_section["leads"] is None:
        raise UserError(f"{path}: key 'data.leads' is required (the leads file)")
    for key in ("leads", "events"):
        if data_section[key] is not None:
            data_section[key] = str((root / data_section[key]).resolve())
    if isinstance(data_section["lookups"], list):
        data_section["lookups"] = [_resolve_file_key(entry, root)
                                   for entry in data_section["lookups"]]
    settings["label"]["won_in"] = _resolve_file_key(settings["label"]["won_in"], root)
    if isinstance(settings["targets"], dict):
        settings["targets"] = {name: _target_label(label, root)
                               for name, label in settings["targets"].items()}
    registry = settings["registry"]
    registry["tracking_uri"] = resolve_tracking_uri(registry["tracking_uri"], root)
    registry["artifact_location"] = str((root / registry["artifact_location"]).resolve())
    try:
        return Config.model_validate(settings)
    except ValidationError as exc:
        raise UserError(f"{path}: invalid config:\n{_format_validation(exc)}") from None


LABEL_OUTCOME_KEYS = ("open", "won_in", "window_days", "converted_at_column")


def _resolve_file_key(entry: Any, root: Path) -> Any:
    """``{path, on}`` with the path made absolute against the config root (other shapes are
    left for the validation to name)."""
    if isinstance(entry, dict) and isinstance(entry.get("path"), str):
        return {**entry, "path": str((root / entry["path"]).resolve())}
    return entry


def _target_label(label: Any, root: Path) -> Any:
    """A ``targets`` entry: the outcome keys it omits (open, won_in, window_days,
    converted_at_column) take the shipped label defaults; column/positive/negative stay
    required, as before."""
    if not isinstance(label, dict):
        return label
    defaults = default_settings()["label"]
    filled = {**{k: defaults[k] for k in LABEL_OUTCOME_KEYS}, **label}
    filled["won_in"] = _resolve_file_key(filled["won_in"], root)
    return filled


def with_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored config (a registered version's ``config.json``) with the keys added to the
    defaults since it was written filled in, so older versions still load."""
    def fill(base: Any, value: Any) -> Any:
        if not (isinstance(base, dict) and isinstance(value, dict)):
            return value
        return {**{k: v for k, v in base.items() if k not in value},
                **{k: fill(base.get(k), v) for k, v in value.items()}}

    filled = fill(default_settings(), stored)
    if isinstance(filled.get("targets"), dict):
        defaults = default_settings()["label"]
        filled["targets"] = {n: {**{k: defaults[k] for k in LABEL_OUTCOME_KEYS}, **t}
                             for n, t in filled["targets"].items()}
    return filled


def resolve_tracking_uri(uri: str, root: Path) -> str:
    """Make a relative ``sqlite:///`` URI absolute against the config root."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


def _format_validation(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:10]:
        where = shorten(".".join(str(p) for p in err["loc"]) or "(top level)", 80, quote=False)
        got = err.get("input")
        got_text = "" if isinstance(got, dict) else f" (got {shorten(got)})"
        lines.append(f"  key '{where}': {shorten(err['msg'], 200, quote=False)}{got_text}")
    return "\n".join(lines)


def shorten(value: Any, limit: int = VALUE_CHARS, *, quote: bool = True) -> str:
    """``repr(value)`` (or the text itself, ``quote=False``) cut to about ``limit``
    characters: a message never echoes a huge value."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def bounded_yaml(text: str, path: Path) -> Any:
    """``yaml.safe_load`` with bounds: a document whose aliases expand past
    :data:`MAX_YAML_NODES` values (an anchor bomb) or whose mapping repeats a key is refused
    before anything is built from it."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, path, {})
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_nodes(node: yaml.Node, path: Path, sizes: dict[int, int]) -> int:
    """The number of values ``node`` expands to (aliases counted each time they are used);
    refuses duplicate keys and an expansion past :data:`MAX_YAML_NODES`."""
    if id(node) in sizes:
        return sizes[id(node)]
    size = 1
    if isinstance(node, yaml.MappingNode):
        seen: set[tuple[str, str]] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if (key.tag, key.value) in seen:
                    raise UserError(f"{path}: key {shorten(key.value)} appears twice in one "
                                    f"mapping (line {key.start_mark.line + 1})",
                                    hint="keep one: YAML would silently use the last")
                seen.add((key.tag, key.value))
            size += _check_nodes(key, path, sizes) + _check_nodes(value, path, sizes)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_check_nodes(item, path, sizes) for item in node.value)
    if size > MAX_YAML_NODES:
        raise UserError(f"{path}: the YAML expands to more than {MAX_YAML_NODES:,} values "
                        f"(aliases near line {node.start_mark.line + 1})",
                        hint="configs are small: write the values out instead of nesting "
                        "aliases (&anchor / *alias)")
    sizes[id(node)] = size
    return size


def logged_config(settings: dict[str, Any]) -> Config:
    """The config a model version was trained with (its logged ``config.json``).

    Keys added to the defaults since that version was trained (``data.delimiter``, say) take
    their default value, so older versions keep scoring."""
    return Config.model_validate(with_defaults(settings))
