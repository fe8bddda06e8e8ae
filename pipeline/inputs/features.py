"""Build the per-lead feature table: profile columns, derived FIT signals, event (PAIN) features.

Two entry points, one set of definitions: :func:`build_features` for training (validated
leads, half-lives learned) and :func:`scoring_features` for everything that scores raw leads
with a points table (``score``, the pyfunc model, ``drift``, ``verify-export``). Both derive
the profile signals with :func:`derive_signals` and the event features with
:func:`pipeline.inputs.events.aggregate_events`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.config_sections import ROW_ID_COLUMN
from pipeline.errors import UserError
from pipeline.inputs.text_cleaning import clean_text
from pipeline.inputs.validate import ValidatedLeads
from pipeline.model.rules import DerivedSignals, EventRule, PointsRules

EMAIL_TYPE = "email_domain_type"
NAME_SPAM = "name_spam"
SENIORITY = "seniority"
DERIVED_SIGNALS = (EMAIL_TYPE, NAME_SPAM, SENIORITY)


@dataclass(frozen=True)
class FeatureSet:
    """Per-lead factors with their FIT/PAIN group.

    ``frame`` has the id column, ``converted`` (training), optional ``created_at`` and one
    column per candidate factor; ``groups`` maps factor -> "FIT" | "PAIN".
    """

    frame: pd.DataFrame
    groups: dict[str, str]
    numeric: list[str]
    half_lives: dict[str, float] = field(default_factory=dict)
    half_life_table: pd.DataFrame | None = None
    event_diagnostics: dict = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why it is not a factor
    # CRM representation: how each behaviour factor is counted, and the CV evidence
    event_rules: list[EventRule] = field(default_factory=list)
    representation_metrics: dict[str, float] = field(default_factory=dict)
    crm_table: pd.DataFrame | None = None

    @property
    def factors(self) -> list[str]:
        return list(self.groups)


def derived_from_config(config: Config) -> DerivedSignals:
    """The config's derived-signal settings as the points table records them (with the digest
    of the shipped domain lists these settings are used with)."""
    from pipeline.inputs.email_domains import domain_lists_digest

    d = config.derived
    return DerivedSignals(email_column=d.email_column, name_columns=list(d.name_columns),
                          title_column=d.title_column,
                          extra_free_domains=list(d.extra_free_domains),
                          extra_disposable_domains=list(d.extra_disposable_domains),
                          domain_lists_sha256=domain_lists_digest())


def derive_signals(frame: pd.DataFrame, derived: DerivedSignals,
                   wanted: Iterable[str] | None = None) -> pd.DataFrame:
    """Free-mail/disposable email, spam-like names and seniority as FIT columns (object dtype).

    The one implementation of the derived signals, for training and scoring alike. Only the
    signals in ``wanted`` (default: all) whose raw columns are in ``frame`` are computed.
    """
    from pipeline.inputs.email_domains import email_domain_types, load_domain_lists
    from pipeline.inputs.job_titles import seniorities
    from pipeline.inputs.spam_names import spam_flags

    wanted = set(DERIVED_SIGNALS if wanted is None else wanted)
    out = {}
    if EMAIL_TYPE in wanted and derived.email_column and derived.email_column in frame.columns:
        lists = load_domain_lists(extra_free=tuple(derived.extra_free_domains),
                                  extra_disposable=tuple(derived.extra_disposable_domains))
        out[EMAIL_TYPE] = email_domain_types(frame[derived.email_column], lists)
    names = [c for c in derived.name_columns if c in frame.columns]
    if NAME_SPAM in wanted and names:
        first = frame[names[0]]
        last = frame[names[1]] if len(names) > 1 else pd.Series([None] * len(frame),
                                                                  index=frame.index, dtype=object)
        flags = spam_flags(first, last)
        out[NAME_SPAM] = pd.Series(np.where(flags.to_numpy(dtype=bool), "yes", "no"),
                                   index=frame.index, dtype=object)
    if SENIORITY in wanted and derived.title_column and derived.title_column in frame.columns:
        out[SENIORITY] = seniorities(frame[derived.title_column])
    return pd.DataFrame(out, index=frame.index).astype(object)


def contract_settings(config: Config, features: FeatureSet) -> dict[str, Any]:
    """The points table's settings beyond the factor points that training decides: how the
    derived signals are computed, and the spam gate (on only when the config asks for it and
    the ``name_spam`` signal exists, so every scorer can apply it)."""
    return {"derived": derived_from_config(config),
            "spam_gate": bool(config.derived.spam_gate) and NAME_SPAM in features.frame.columns,
            "event_rules": list(features.event_rules)}


def derive_profile_signals(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """:func:`derive_signals` with the config's settings (training)."""
    return derive_signals(frame, derived_from_config(config))


def event_feature_columns(config: Config) -> list[str]:
    """The event features offered to selection as PAIN factors."""
    key = config.events.key_group
    groups = sorted(config.events.groups)
    return [*(f"decayed_{g}" for g in groups), f"velocity_{key}", f"days_to_first_{key}",
            "days_since_last_event", "days_active"]


def snapshot_times(leads: pd.DataFrame, config: Config, *, as_of: pd.Timestamp | None
                   ) -> pd.DataFrame:
    """Training: created_at + horizon (capped at ``as_of``); scoring: ``as_of`` for every lead."""
    created = leads["created_at"]
    if as_of is None:
        snap = created + pd.Timedelta(days=config.events.snapshot_horizon_days)
    else:
        snap = pd.Series(as_of, index=leads.index)
    return pd.DataFrame({"lead_id": leads[config.data.id_name].astype(str),
                         "created_at": created, "snapshot_at": snap})


def _profile_offset(frame: pd.DataFrame, groups: dict[str, str], numeric: list[str],
                    y: pd.Series, *, folds: int, seed: int, exclude: list[str],
                    min_leads: int) -> pd.DataFrame:
    """Out-of-fold profile log-odds, held fixed while half-lives are searched: without it a
    long half-life (a plain count) wins by standing in for the profile it correlates with.
    Declared leaks are left out; levels rarer than ``min_leads`` pool into one."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    columns = [c for c, g in groups.items()
               if g == "FIT" and c not in numeric and c not in exclude and c in frame]
    if not columns:
        return pd.DataFrame(index=range(len(frame)))
    text = frame[columns].astype(object).where(frame[columns].notna(), "(missing)").astype(str)
    for column in columns:
        counts = text[column].value_counts()
        rare = counts.index[counts < min_leads]
        text[column] = text[column].where(~text[column].isin(rare), "(other)")
    dummies = pd.get_dummies(text, prefix=columns, prefix_sep="=", drop_first=True, dtype=float)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200)
    logit = cross_val_predict(model, dummies.to_numpy(),
                              y.to_numpy(), cv=cv, method="decision_function")
    return pd.DataFrame({"__profile_logit": logit})


def build_features(leads: ValidatedLeads, config: Config, *, events: pd.DataFrame | Path | None,
                   half_lives: dict[str, float] | None = None,
                   crm_rules: list[EventRule] | None = None) -> FeatureSet:
    """Training: join profile columns, derived signals and event features into one per-lead
    table, each lead's events counted up to its snapshot (creation + horizon).

    The event features are those of ``events.representation``: ``crm`` (capped occurrence
    counts in a window, :mod:`pipeline.inputs.crm_events`; window, cap and velocity span
    chosen by CV unless ``crm_rules`` fixes them) or ``decayed`` (half-life decayed counts;
    the half-lives chosen by cross-validated log loss). ``half_lives`` fixes the half-lives
    and means the decayed representation. Both representations are compared by CV (the
    ``representation_metrics`` ``cv_auc_crm`` / ``cv_auc_decayed``) unless one is fixed.
    Scoring makes its table with :func:`scoring_features` (the same signals and event
    aggregation, at one as-of time with the model's half-lives or event rules).
    """
    frame = leads.frame
    groups = {c: "FIT" for c in leads.fit_columns}
    groups.update({c: "PAIN" for c in leads.pain_columns})
    numeric = list(leads.numeric_columns)
    derived = derive_profile_signals(frame, config)
    for column in derived.columns:
        groups.setdefault(column, "FIT")
    parts = [frame, derived]
    chosen: dict[str, float] = dict(half_lives or {})
    table = None
    diagnostics: dict = {}
    crm = crm_rules is not None or (not half_lives and config.events.representation == "crm")
    event_rules: list[EventRule] = []
    metrics: dict[str, float] = {}
    crm_table = None
    if events is not None and config.events.groups:
        if "created_at" not in frame.columns:
            raise ValueError("event features need data.created_at_column in the config")
        from pipeline.inputs import decay
        from pipeline.inputs import events as event_features

        snapshots = snapshot_times(frame, config, as_of=None)
        everyone = snapshots  # undecided leads too: their events are theirs, not "unknown"
        if leads.undecided is not None and len(leads.undecided):
            everyone = pd.concat([snapshots, snapshot_times(leads.undecided, config, as_of=None)],
                                 ignore_index=True)
        grid = {g: list(config.events.half_life_grid) for g in config.events.groups}
        start = {g: float(np.median(config.events.half_life_grid)) for g in config.events.groups}
        result = event_features.aggregate_events(
            events, everyone, event_groups=config.events.event_to_group,
            half_lives=chosen or start, windows=tuple(config.events.windows),
            key_group=config.events.key_group,
            extra_half_life_grid=grid if not half_lives else None,
            engine=config.events.engine, master=config.events.master)
        ev = result.features.set_index("lead_id")
        diagnostics = dict(result.diagnostics)
        y = frame["converted"].reset_index(drop=True)
        profile = None
        if not half_lives or (crm and crm_rules is None):
            profile = _profile_offset(pd.concat([frame, derived], axis=1).reset_index(drop=True),
                                      groups, numeric, y, folds=config.model.cv_folds,
                                      seed=config.seed,
                                      exclude=list(config.columns.declared_leaky),
                                      min_leads=config.analysis.min_leads)
        if not half_lives:
            candidates = ev.reindex(snapshots["lead_id"]).reset_index(drop=True)
            key = f"velocity_{config.events.key_group}"
            base = [*profile.columns, *([key] if key in candidates.columns else [])]
            choice = decay.choose_half_lives(
                pd.concat([candidates, profile], axis=1), y, groups=sorted(config.events.groups),
                grid=list(config.events.half_life_grid), base_columns=base,
                folds=config.model.cv_folds, seed=config.seed)
            chosen = {g: float(h) for g, h in choice.half_life_days.items()}
            table = choice.cv_log_loss
            for g, h in chosen.items():
                ev[f"decayed_{g}"] = ev[f"decayed_{g}__hl{h:g}"]
        wanted = [c for c in event_feature_columns(config) if c in ev.columns]
        ev_part = ev[wanted].reindex(snapshots["lead_id"]).set_axis(frame.index)
        if crm:
            from pipeline.inputs.crm_events import crm_training_features

            ev_part, event_rules, metrics, crm_table = crm_training_features(
                events, everyone, snapshots, ev_part, y, profile, config, rules=crm_rules)
            ev_part = ev_part.set_axis(frame.index)
            wanted = list(ev_part.columns)
            chosen = {}
        elif not half_lives:  # decayed, learned: still report what the CRM form would reach
            from pipeline.inputs.crm_events import crm_training_features

            metrics = crm_training_features(events, everyone, snapshots, ev_part, y, profile,
                                            config)[2]
        for column in wanted:
            groups[column] = "PAIN"
            numeric.append(column)
        parts.append(ev_part)
    combined = pd.concat(parts, axis=1)
    dropped = dict(leads.dropped)
    dropped.update({c: "excluded by the config (columns.exclude)" for c in config.columns.exclude})
    return FeatureSet(combined, groups, numeric, chosen, table, diagnostics, dropped,
                      event_rules, metrics, crm_table)


# --------------------------------------------------------------------------- scoring


class MissingEventsError(UserError, ValueError):
    """A points table with event factors was given leads without their event log."""


@dataclass(frozen=True)
class FeatureSettings:
    """What the scoring feature builder needs beyond the points table: where the id and the
    creation time are, and how raw events map to groups (``derived`` is used only when the
    points table records no derived-signal settings: tables of schema 1.0)."""

    id_column: str = "lead_id"
    created_at_column: str | None = None
    missing_values: list[str] = field(default_factory=list)
    event_to_group: dict[str, str] = field(default_factory=dict)
    windows: list[int] = field(default_factory=lambda: [7, 30, 90])
    key_group: str = "product"
    derived: DerivedSignals = field(default_factory=DerivedSignals)

    @classmethod
    def from_config(cls, config: Config) -> FeatureSettings:
        return cls(id_column=config.data.id_name,
                   created_at_column=config.data.created_at_column,
                   missing_values=list(config.data.missing_values),
                   event_to_group=dict(config.events.event_to_group) if config.events.groups
                   else {},
                   windows=list(config.events.windows), key_group=config.events.key_group,
                   derived=derived_from_config(config))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSettings:
        payload = dict(data)
        payload["derived"] = DerivedSignals(**(payload.get("derived") or {}))
        return cls(**payload)

    def event_columns(self) -> list[str]:
        """Every event feature column the builder can make (``decayed_<group>``, ...)."""
        key = self.key_group
        groups = sorted(set(self.event_to_group.values()))
        return [*(f"decayed_{g}" for g in groups), f"velocity_{key}", f"days_to_first_{key}",
                "days_since_last_event", "days_active"]


def signal_settings(rules: PointsRules, settings: FeatureSettings) -> DerivedSignals:
    """The derived-signal settings that apply: the points table's (the contract), else, for a
    table that records none (schema 1.0), the settings it is scored with."""
    return rules.derived if rules.derived != DerivedSignals() else settings.derived


def domain_lists_note(rules: PointsRules) -> str | None:
    """A warning when the table scores ``email_domain_type`` and was trained with other shipped
    domain lists than these (the digest it records differs): some domains may change type."""
    from pipeline.inputs.email_domains import domain_lists_digest

    recorded = rules.derived.domain_lists_sha256
    if EMAIL_TYPE not in rules.factor_names() or not recorded or \
            recorded == domain_lists_digest():
        return None
    return (f"the points table's {EMAIL_TYPE} was learned with other free-mail / disposable "
            f"domain lists (sha256 {recorded[:12]}..., shipped now "
            f"{domain_lists_digest()[:12]}...): a domain on one list only changes type")


def event_factors(rules: PointsRules, settings: FeatureSettings) -> list[str]:
    """The factors (and gate columns) of ``rules`` that are event features."""
    made = set(settings.event_columns()) | {r.factor for r in rules.event_rules}
    return [c for c in rules.input_columns() if c in made]


def scoring_features(raw: pd.DataFrame, rules: PointsRules, settings: FeatureSettings, *,
                     events: pd.DataFrame | Path | None = None,
                     as_of: pd.Timestamp | None = None,
                     event_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Raw leads (+ events) -> the per-lead table ``rules`` reads: the one scoring builder.

    Text is cleaned as in training; derived signals the table needs and the input lacks are
    computed from the raw email / name / title columns (the table's ``derived`` settings);
    event features are computed from ``events`` at ``as_of`` (default: the newest event) with
    the table's half-lives, or taken from ``event_table`` (per-lead features indexed by lead
    id, made once for a file scored in batches by :func:`scoring_event_table`), and replace
    any input column of the same name. A lead without a creation time gets no event features
    (missing). Without events, event factors must be in the input, else
    :class:`MissingEventsError` names what to pass.
    """
    numeric = tuple(f.name for f in rules.factors if f.kind == "numeric")
    frame = clean_text(raw, rules.missing_values, keep_arrow=(settings.id_column, *numeric),
                       blank_only=ROW_ID_COLUMN)  # a generated id is never a missing token
    wanted = [c for c in DERIVED_SIGNALS if c in rules.input_columns() and c not in frame.columns]
    if wanted:
        derived = derive_signals(frame, signal_settings(rules, settings), wanted)
        frame = pd.concat([frame, derived], axis=1) if len(derived.columns) else frame
    needed = event_factors(rules, settings)
    if not needed:
        return frame
    if event_table is None and events is None:
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            raise MissingEventsError(
                f"the points table scores event features {absent}: pass the event log "
                "(columns lead_id, event, timestamp) with the leads",
                hint="pyfunc: model.predict({'leads': leads, 'events': events_df}) or "
                     "model.predict(leads, params={'events': 'events.csv'}); "
                     "CLI: data.events in the config")
        return frame
    if event_table is None:
        from pipeline.inputs.event_features import scoring_event_table

        event_table = scoring_event_table(frame, events, rules, settings, as_of=as_of)
    if settings.id_column not in frame.columns:
        raise UserError(f"id column {settings.id_column!r} not found in the leads: event "
                        "features are joined on it")
    ids = frame[settings.id_column].astype(object).map(
        lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    joined = event_table.reindex(columns=needed).reindex(ids.to_numpy())
    joined.index = frame.index
    return pd.concat([frame.drop(columns=[c for c in needed if c in frame.columns]), joined],
                     axis=1)
