"""Configuration: one YAML file per dataset, merged over the shipped defaults, validated once.

Every default lives in ``pipeline/resources/defaults.yaml``; the models below carry none,
so the YAML is the single source of truth. Unknown keys, wrong types and contradictory
settings fail up front with a message naming the file and the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, field_validator, model_validator

from pipeline.config_sections import (
    AnalysisConfig,
    ColumnsConfig,
    DataConfig,
    DerivedConfig,
    EventsConfig,
    LabelConfig,
    ModelConfig,
    PointsConfig,
    RegistryConfig,
    Strict,
    ThresholdConfig,
)
from pipeline.errors import UserError

MAX_YAML_NODES = 20_000  # values a config may expand to (aliases counted where used)
VALUE_CHARS = 80  # characters of a value a message shows
# model and config names become registry names, lock files and output folders
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+-]{0,99}")


class Config(Strict):
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
