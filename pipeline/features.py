"""Build the per-lead feature table: profile columns, derived FIT signals, event (PAIN) features."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.validate import ValidatedLeads

EMAIL_TYPE = "email_domain_type"
NAME_SPAM = "name_spam"
SENIORITY = "seniority"


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

    @property
    def factors(self) -> list[str]:
        return list(self.groups)


def derive_profile_signals(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Free-mail/disposable email, spam-like names and seniority as FIT columns."""
    from pipeline import signals

    derived = config.derived
    out = {}
    if derived.email_column and derived.email_column in frame.columns:
        lists = signals.load_domain_lists(extra_free=tuple(derived.extra_free_domains),
                                          extra_disposable=tuple(derived.extra_disposable_domains))
        out[EMAIL_TYPE] = signals.email_domain_types(frame[derived.email_column], lists)
    names = [c for c in derived.name_columns if c in frame.columns]
    if names:
        first = frame[names[0]]
        last = frame[names[1]] if len(names) > 1 else pd.Series([None] * len(frame),
                                                                  index=frame.index, dtype=object)
        flags = signals.spam_flags(first, last)
        out[NAME_SPAM] = pd.Series(np.where(flags.to_numpy(dtype=bool), "yes", "no"),
                                   index=frame.index, dtype=object)
    if derived.title_column and derived.title_column in frame.columns:
        out[SENIORITY] = signals.seniorities(frame[derived.title_column])
    return pd.DataFrame(out, index=frame.index).astype(object)


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
                   half_lives: dict[str, float] | None = None, as_of: pd.Timestamp | None = None,
                   training: bool = True) -> FeatureSet:
    """Join profile columns, derived signals and event features into one per-lead table.

    In training (``half_lives`` None) the half-lives are chosen from the data by
    cross-validated log loss; in scoring the model's half-lives are applied at ``as_of``.
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
    if events is not None and config.events.groups:
        if "created_at" not in frame.columns:
            raise ValueError("event features need data.created_at_column in the config")
        from pipeline import decay
        from pipeline import events as event_features

        snapshots = snapshot_times(frame, config, as_of=as_of)
        everyone = snapshots  # undecided leads too: their events are theirs, not "unknown"
        if leads.undecided is not None and len(leads.undecided):
            everyone = pd.concat([snapshots, snapshot_times(leads.undecided, config, as_of=as_of)],
                                 ignore_index=True)
        grid = {g: list(config.events.half_life_grid) for g in config.events.groups}
        start = {g: float(np.median(config.events.half_life_grid)) for g in config.events.groups}
        result = event_features.aggregate_events(
            events, everyone, event_groups=config.events.event_to_group,
            half_lives=chosen or start, windows=tuple(config.events.windows),
            key_group=config.events.key_group,
            extra_half_life_grid=grid if training and not half_lives else None)
        ev = result.features.set_index("lead_id")
        diagnostics = dict(result.diagnostics)
        if training and not half_lives:
            candidates = ev.reindex(snapshots["lead_id"]).reset_index(drop=True)
            y = frame["converted"].reset_index(drop=True)
            profile = _profile_offset(pd.concat([frame, derived], axis=1).reset_index(drop=True),
                                      groups, numeric, y, folds=config.model.cv_folds,
                                      seed=config.seed,
                                      exclude=list(config.columns.declared_leaky),
                                      min_leads=config.analysis.min_leads)
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
        for column in wanted:
            groups[column] = "PAIN"
            numeric.append(column)
        parts.append(ev_part)
    combined = pd.concat(parts, axis=1)
    dropped = dict(leads.dropped)
    dropped.update({c: "excluded by the config (columns.exclude)" for c in config.columns.exclude})
    return FeatureSet(combined, groups, numeric, chosen, table, diagnostics, dropped)
