"""Validate a raw lead table against the config: ids, label, columns, types.

Input is text (see :mod:`pipeline.io`); output is a typed frame in which configured
missing tokens are ``None``/NaN, numeric columns are floats and the label is 0/1.
Everything wrong is reported with the file, column and rows, and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.errors import UserError

MAX_LISTED = 5
MOSTLY_NUMERIC = 0.9  # a column whose present values are at least this share numbers is numeric


@dataclass(frozen=True)
class ValidatedLeads:
    """Leads ready for feature building.

    ``frame`` holds the id column (str), the label column ``converted`` (0/1, training only),
    ``created_at`` (datetime, when configured) and the candidate factor columns.
    """

    frame: pd.DataFrame
    fit_columns: list[str]
    pain_columns: list[str]
    numeric_columns: list[str]
    dropped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # for the CLI to print (dropped columns)


def _listing(values: pd.Series | list, limit: int = MAX_LISTED) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" ... ({len(values)} in all)" if len(values) > limit else "")


def expected_columns_diff(expected: list[str], found: list[str],
                          also_known: set[str] | frozenset[str] = frozenset()) -> str:
    """A diff of expected vs found columns, for the error message.

    ``- missing`` lines for expected columns not found (with the closest found name, e.g. a
    case or whitespace difference), ``+ found, not expected`` for found columns the config
    does not mention (``also_known``: columns it mentions in other roles, left out as noise).
    """
    import difflib

    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected and c not in also_known]
    folded = {c.strip().casefold(): c for c in found}
    lines = []
    for column in missing:
        near = folded.get(column.strip().casefold()) or next(
            iter(difflib.get_close_matches(column, found, n=1, cutoff=0.8)), None)
        lines.append(f"  - missing: {column!r}" + (f" (did you mean {near!r}?)" if near else ""))
    lines += [f"  + found, not expected: {c!r}" for c in extra]
    return "\n".join(lines[:40]) + (f"\n  ... ({len(lines) - 40} more)" if len(lines) > 40 else "")


def _mentioned(config: Config) -> set[str]:
    """Every column name the config gives a role to."""
    cols, derived = config.columns, config.derived
    named = {config.data.id_column, config.label.column, config.data.created_at_column,
             config.data.account_column, derived.email_column, derived.title_column,
             *derived.name_columns, *cols.fit, *cols.pain, *cols.numeric, *cols.exclude,
             *cols.declared_leaky}
    return {c for c in named if c}


def normalise_missing(frame: pd.DataFrame, missing_values: list[str]) -> pd.DataFrame:
    """Strip whitespace; configured missing tokens and blanks become None."""
    tokens = set(missing_values) | {""}

    def clean(value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            return None if value in tokens else value
        return None if value is None or pd.isna(value) else value

    out = {}
    for column in frame.columns:
        # clean each distinct value once (ids are unique, but most columns have few values)
        codes, uniques = pd.factorize(frame[column].astype(object), use_na_sentinel=True)
        cleaned = np.array([clean(u) for u in uniques] + [None], dtype=object)
        out[column] = pd.Series(cleaned[codes], index=frame.index, dtype=object)
    return pd.DataFrame(out, index=frame.index)


def parse_numeric(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Floats, and a mask of values that are present but are not numbers."""
    numbers = pd.to_numeric(series, errors="coerce").astype(float)
    bad = series.notna() & numbers.isna()
    return numbers, bad


def infer_numeric(series: pd.Series) -> bool:
    """A column is numeric when every present value parses as a number."""
    present = series.dropna()
    if present.empty:
        return False
    _, bad = parse_numeric(present)
    return not bad.any()


def mostly_numeric(series: pd.Series) -> bool:
    """Numbers with a little text in them (``"12 visits"``, ``"n/a"``): most present values
    parse as numbers but not all. Such a column is numeric with dirty cells, not a category
    with hundreds of levels; it is reported instead of being silently treated as text."""
    present = series.dropna()
    if present.empty:
        return False
    _, bad = parse_numeric(present)
    return bool(bad.any()) and float(1 - bad.mean()) >= MOSTLY_NUMERIC


def candidate_columns(config: Config, columns: list[str]) -> tuple[list[str], list[str]]:
    """FIT and PAIN columns from the config; with neither listed, every usable column is FIT."""
    cols = config.columns
    if cols.fit or cols.pain:
        return list(cols.fit), list(cols.pain)
    reserved = {config.data.id_column, config.label.column, config.data.created_at_column,
                config.data.account_column, config.derived.email_column,
                config.derived.title_column,
                *config.derived.name_columns, *cols.exclude, *cols.declared_leaky}
    return [c for c in columns if c not in reserved], []


def validate_leads(raw: pd.DataFrame, config: Config, *, source: str, training: bool = True
                   ) -> ValidatedLeads:
    """Check and type a raw (all-text) lead table; raises :class:`UserError` on bad input."""
    id_col, label_col = config.data.id_column, config.label.column
    columns = list(raw.columns)
    fit_cols, pain_cols = candidate_columns(config, columns)
    required = [id_col, *fit_cols, *pain_cols]
    # declared leaks are analysed (so the selection report lists them as leaks), never fitted
    fit_cols = fit_cols + [c for c in config.columns.declared_leaky
                           if c in columns and c not in fit_cols]
    if training:
        required.append(label_col)
    for optional in (config.data.created_at_column, config.derived.email_column,
                     config.derived.title_column, *config.derived.name_columns):
        if optional:
            required.append(optional)
    absent = [c for c in required if c not in columns]
    if absent:
        what = "label column" if absent == [label_col] else "columns"
        raise UserError(
            f"{source}: {what} {_listing(absent)} not found\n"
            f"{expected_columns_diff(list(dict.fromkeys(required)), columns, _mentioned(config))}",
            hint="fix the column names in the file or in the config (columns.fit / columns.pain)",
        )
    frame = normalise_missing(raw, config.data.missing_values)
    ids = frame[id_col]
    blank = ids.isna()
    if blank.any():
        rows = (np.flatnonzero(blank.to_numpy()) + 2).tolist()
        raise UserError(f"{source}: id column {id_col!r} is blank on rows {_listing(rows)}",
                        hint="every lead needs an id (row numbers count the header as row 1)")
    dup = ids[ids.duplicated(keep=False)]
    if not dup.empty:
        raise UserError(f"{source}: id column {id_col!r} has duplicates: {_listing(dup.unique())}",
                        hint="ids must be unique: de-duplicate the export")
    out = pd.DataFrame({id_col: ids.astype(str)}, index=frame.index)
    if training:
        out["converted"] = _label(frame[label_col], config, source)
    if config.data.created_at_column:
        out["created_at"] = _timestamps(frame[config.data.created_at_column],
                                        config.data.created_at_column, source)
    extra_sources = [c for c in (config.derived.email_column, config.derived.title_column,
                                 *config.derived.name_columns, config.data.account_column) if c]
    for c in extra_sources:
        if c in frame.columns:
            out[c] = frame[c]
    numeric, dropped, notes = [], {}, []
    for column in [*fit_cols, *pain_cols]:
        series = frame[column]
        forced = column in config.columns.numeric or mostly_numeric(series)
        if forced or infer_numeric(series):
            values, bad = parse_numeric(series)
            if bad.any():
                rows = (np.flatnonzero(bad.to_numpy()) + 2).tolist()
                raise UserError(
                    f"{source}: column {column!r} is numeric but rows {_listing(rows)} hold text: "
                    f"{_listing(series[bad].unique())}",
                    hint="clean the values (or add the text to data.missing_values if it means "
                    "'unknown')",
                )
            if column in pain_cols and (values < 0).any():
                rows = (np.flatnonzero((values < 0).to_numpy()) + 2).tolist()
                raise UserError(f"{source}: column {column!r} is a behaviour count but has "
                                f"negative values on rows {_listing(rows)}",
                                hint="counts cannot be negative")
            series = values
            numeric.append(column)
        if series.isna().all():
            dropped[column] = "all missing"
        elif series.nunique(dropna=False) <= 1:
            dropped[column] = "constant"
        else:
            out[column] = series
    for column, reason in dropped.items():
        notes.append(f"{source}: column {column!r} is {reason}: dropped (it cannot earn points)")
    keep = set(out.columns)
    return ValidatedLeads(
        frame=out,
        fit_columns=[c for c in fit_cols if c in keep],
        pain_columns=[c for c in pain_cols if c in keep],
        numeric_columns=[c for c in numeric if c in keep],
        dropped=dropped,
        warnings=notes,
    )


def _label(series: pd.Series, config: Config, source: str) -> pd.Series:
    positive = {str(v) for v in config.label.positive}
    negative = {str(v) for v in config.label.negative}
    text = pd.Series(np.array([None if v is None or pd.isna(v) else str(v) for v in series],
                              dtype=object), index=series.index, dtype=object)
    unexpected = text[~text.isin(positive | negative)]
    if not unexpected.empty:
        counts = unexpected.fillna("(blank)").value_counts()
        listed = ", ".join(f"{k!r}: {v}" for k, v in counts.head(10).items())
        raise UserError(
            f"{source}: label column {config.label.column!r} has values that are neither won "
            f"{sorted(positive)} nor lost {sorted(negative)}: {listed}",
            hint="fix the rows or list the values under label.positive / label.negative",
        )
    label = text.isin(positive).astype(int)
    if label.nunique() < 2:
        only = "won" if label.iloc[0] == 1 else "lost"
        raise UserError(f"{source}: only one class present (every lead is {only})",
                        hint="training needs both won and lost leads")
    return label


def _timestamps(series: pd.Series, column: str, source: str) -> pd.Series:
    parsed = pd.to_datetime(series, errors="coerce", utc=True, format="mixed").dt.tz_localize(None)
    bad = series.notna() & parsed.isna()
    if bad.any():
        rows = (np.flatnonzero(bad.to_numpy()) + 2).tolist()
        raise UserError(f"{source}: column {column!r} has unparseable timestamps on rows "
                        f"{_listing(rows)}: {_listing(series[bad].unique())}",
                        hint="use ISO 8601, e.g. 2025-03-01T09:30:00")
    future = parsed > pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(days=1)
    if future.any():
        rows = (np.flatnonzero(future.to_numpy()) + 2).tolist()
        raise UserError(f"{source}: column {column!r} has timestamps in the future on rows "
                        f"{_listing(rows)}", hint="check the export's time zone and clock")
    if parsed.isna().any():
        rows = (np.flatnonzero(parsed.isna().to_numpy()) + 2).tolist()
        raise UserError(f"{source}: column {column!r} is blank on rows {_listing(rows)}",
                        hint="every lead needs its creation time")
    return parsed.astype("datetime64[ns]")


EVENT_WARNINGS = {
    "unparseable_timestamps": "events with an unparseable timestamp were ignored",
    "events_unknown_lead": "events for leads that are not in the leads file were ignored",
    "events_before_creation": "events dated before their lead was created were ignored",
}


def event_warnings(diagnostics: Mapping[str, int], source: str) -> list[str]:
    """Warning lines for the event-log problems that ``aggregate_events`` counted.

    ``diagnostics`` is :attr:`pipeline.features.FeatureSet.event_diagnostics`; one line per
    non-zero problem, with the count and the share of all events, naming the file.
    """
    total = int(diagnostics.get("events_total", 0))
    lines = []
    for key, what in EVENT_WARNINGS.items():
        count = int(diagnostics.get(key, 0))
        if count:
            share = f" ({count / total:.1%} of {total:,})" if total else ""
            lines.append(f"{source}: {count:,} {what}{share}")
    return lines
