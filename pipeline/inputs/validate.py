"""Validate a raw lead table against the config: ids, label, columns, types.

Input is text (see :mod:`pipeline.inputs.reader`); output is a typed frame in which configured
missing tokens are ``None``/NaN, numeric columns are floats and the label is 0/1.
Everything wrong is reported with the file, column and rows, and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.inputs.clean_columns import (
    CleanColumns,
    numeric_kind_of,
    out_of_range,
)
from pipeline.inputs.labels import (
    Outcome,
    WonKeys,
    censoring_warning,
    outcome_from_label,
    outcome_from_window,
    outcome_from_won_in,
)

MAX_LISTED = 5
MOSTLY_DATES = 0.9  # a text column whose present values are at least this share dates is a date
DATE_SAMPLE = 1000  # distinct values looked at first: mostly not date-shaped means not dates
DATE_DROPPED = "date: not a factor (derive one, e.g. days since, to use it)"
# what a date looks like before it is parsed: a year first (2024-03-01, 2024/3/1 10:00) or
# last (01/03/2024, 1.3.24); month names alone ("March") are categories, not dates
DATE_SHAPE = (r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
              r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2}|UTC)?$")


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
    notes: list[str] = field(default_factory=list)  # label counts (won, open, undecided) to print
    # training: the id (and created_at) of leads whose outcome is undecided (label.open, young
    # under label.window_days): left out of ``frame``, kept so their events are not "unknown"
    undecided: pd.DataFrame | None = None


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
    named = {config.data.id_name, config.label.column, config.data.created_at_column,
             config.data.account_column, derived.email_column, derived.title_column,
             *outcome_columns(config),
             *derived.name_columns, *cols.fit, *cols.pain, *cols.numeric, *cols.exclude,
             *cols.declared_leaky}
    return {c for c in named if c}


def _emptiness(series: pd.Series, text: pa.ChunkedArray | None) -> str | None:
    """"all missing", "constant" (one distinct value, missing counting as one) or None,
    without hashing every value of a float or Arrow-text column."""
    if series.dtype.kind == "f":
        values = series.to_numpy()
        missing = np.isnan(values)
        if missing.all():
            return "all missing"
        return "constant" if not missing.any() and values.min() == values.max() else None
    if text is not None:
        if text.null_count == len(text):
            return "all missing"
        return "constant" if pc.count_distinct(text, mode="all").as_py() <= 1 else None
    if series.isna().all():
        return "all missing"
    return "constant" if series.nunique(dropna=False) <= 1 else None




def outcome_columns(config: Config) -> list[str]:
    """Columns that say who is won besides label.column: the conversion date and the key
    of the closed-deals file. Never factors (the conversion date is the label itself)."""
    label = config.label
    return [c for c in (label.converted_at_column, label.won_in and label.won_in.on) if c]


def looks_like_dates(values: np.ndarray, counts: np.ndarray) -> bool:
    """Whether at least 90% of the present leads (``counts`` per distinct ``values``) hold a
    date: ISO dates, ``2024-03-01 10:00``, ``01/03/2024``... A date is never a factor (its
    levels never recur in scoring); numbers (already read as numbers) and month names are
    not dates."""
    present = np.array([isinstance(v, str) for v in values], dtype=bool)
    total = int(counts[present].sum())
    if total == 0:
        return False
    text = pd.Series(values[present], dtype=object)
    weights = counts[present]
    sample = text.head(DATE_SAMPLE).str.match(DATE_SHAPE).to_numpy(dtype=bool)
    if weights[:DATE_SAMPLE][sample].sum() < weights[:DATE_SAMPLE].sum() / 2:
        return False  # a text column: no need to match its other distinct values
    shaped = text.str.match(DATE_SHAPE).to_numpy(dtype=bool)
    if weights[shaped].sum() < MOSTLY_DATES * total:
        return False
    parsed = pd.to_datetime(text[shaped], errors="coerce", format="mixed", utc=True)
    return weights[shaped][parsed.notna().to_numpy()].sum() >= MOSTLY_DATES * total


def _is_date_column(columns: CleanColumns, name: str) -> bool:
    """:func:`looks_like_dates` on a cleaned text column, one parse per distinct value."""
    if columns.arrow(name) is not None:
        codes, uniques = columns.distinct(name)
        counts = np.bincount(codes, minlength=len(uniques))
    else:
        codes, uniques = pd.factorize(columns[name], use_na_sentinel=True)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        uniques = np.asarray(uniques, dtype=object)
    return looks_like_dates(np.asarray(uniques, dtype=object), counts)


def candidate_columns(config: Config, columns: list[str]) -> tuple[list[str], list[str]]:
    """FIT and PAIN columns from the config; with neither listed, every usable column is FIT."""
    cols = config.columns
    if cols.fit or cols.pain:
        return list(cols.fit), list(cols.pain)
    reserved = {config.data.id_name, config.label.column, config.data.created_at_column,
                config.data.account_column, config.derived.email_column,
                config.derived.title_column, *outcome_columns(config),
                *config.derived.name_columns, *cols.exclude, *cols.declared_leaky}
    return [c for c in columns if c not in reserved], []


def absent_column_keys(config: Config, columns: list[str], source: str) -> list[str]:
    """Warnings for ``columns.special_values`` / ``trend`` / ``numeric`` keys that name no
    column of the leads (after the lookups): a typo there (``pday`` for ``pdays``) silently
    left the 999 sentinel inside a bin. Derived signals and names of an event group (the
    event features are made later) are not checked."""
    import difflib

    from pipeline.inputs.features import DERIVED_SIGNALS

    groups = list(config.events.groups)
    lines = []
    for key, names in (("columns.special_values", list(config.columns.special_values)),
                       ("columns.trend", list(config.columns.trend)),
                       ("columns.numeric", list(config.columns.numeric))):
        for name in names:
            if name in columns or name in DERIVED_SIGNALS or any(g in name for g in groups):
                continue
            close = difflib.get_close_matches(name, columns, n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"{source}: {key} names {name!r}, which is not a column of the "
                         f"leads: ignored{hint}")
    return lines


def validate_leads(raw: pd.DataFrame, config: Config, *, source: str, training: bool = True,
                   won: WonKeys | None = None) -> ValidatedLeads:
    """Check and type a raw (all-text) lead table; raises :class:`UserError` on bad input.

    In training the outcome comes from the label column, from ``won`` (the keys of the
    ``label.won_in`` file, read by the caller) or from the conversion window; leads whose
    outcome is undecided are left out of ``frame`` (listed in ``undecided``, counted in
    ``notes``).
    """
    id_col = config.data.id_name
    columns = list(raw.columns)
    fit_cols, pain_cols = candidate_columns(config, columns)
    required = [id_col, *fit_cols, *pain_cols]
    # declared leaks are analysed (so the selection report lists them as leaks), never fitted
    fit_cols = fit_cols + [c for c in config.columns.declared_leaky
                           if c in columns and c not in fit_cols]
    if training:
        required += outcome_required(config)
    for optional in (config.data.created_at_column, config.derived.email_column,
                     config.derived.title_column, *config.derived.name_columns):
        if optional:
            required.append(optional)
    absent = [c for c in required if c not in columns]
    if absent:
        what = "label column" if absent == [config.label.column] else "columns"
        raise UserError(
            f"{source}: {what} {_listing(absent)} not found\n"
            f"{expected_columns_diff(list(dict.fromkeys(required)), columns, _mentioned(config))}",
            hint="fix the column names in the file or in the config (columns.fit / columns.pain)",
        )
    cleaned = CleanColumns(raw, config.data.missing_values)
    cleaned.prepare([*([id_col] if config.data.id_column else []), *fit_cols, *pain_cols])
    # a generated row_id is never a missing token: lead 999's is "999", which may well be
    # an attribute code listed in data.missing_values
    id_clean = (CleanColumns(raw[[id_col]], []) if config.data.id_column is None
                else cleaned)
    id_text = id_clean.arrow(id_col)
    ids = (pd.Series(id_text.to_pandas().array, index=raw.index) if id_text is not None
           else id_clean[id_col])
    blank = ids.isna()
    if blank.any():
        rows = (np.flatnonzero(blank.to_numpy()) + 2).tolist()
        raise UserError(f"{source}: id column {id_col!r} is blank on rows {_listing(rows)}",
                        hint="every lead needs an id (row numbers count the header as row 1)")
    # Arrow's unique is 2-3x faster than pandas' duplicated: ask pandas only to list them
    unique = id_text is not None and len(pc.unique(id_text)) == len(id_text)
    dup = ids[:0] if unique else ids[ids.duplicated(keep=False)]
    if not dup.empty:
        raise UserError(f"{source}: id column {id_col!r} has duplicates: {_listing(dup.unique())}",
                        hint="ids must be unique: de-duplicate the export")
    out = pd.DataFrame({id_col: ids.astype(str)}, index=raw.index)
    if config.data.created_at_column:
        out["created_at"] = _timestamps(cleaned[config.data.created_at_column],
                                        config.data.created_at_column, source)
    outcome = _outcome(cleaned, out, config, source, won) if training else None
    extra_sources = [c for c in (config.derived.email_column, config.derived.title_column,
                                 *config.derived.name_columns, config.data.account_column) if c]
    for c in extra_sources:
        if c in raw.columns:
            out[c] = cleaned[c]
    numeric, dropped, notes = [], {}, []
    for column in [*fit_cols, *pain_cols]:
        declared = column in config.columns.numeric
        values, bad, numeric_text, mostly = numeric_kind_of(cleaned, column,
                                                             values_needed=declared)
        if declared or mostly or numeric_text:
            if bad.any():
                rows = (np.flatnonzero(bad.to_numpy()) + 2).tolist()
                raise UserError(
                    f"{source}: column {column!r} is numeric but rows {_listing(rows)} hold text: "
                    f"{_listing(cleaned[column][bad].unique())}",
                    hint="clean the values (or add the text to data.missing_values if it means "
                    "'unknown')",
                )
            faults = out_of_range(values, count=column in pain_cols)
            if faults.infinite.any():
                rows = (np.flatnonzero(faults.infinite) + 2).tolist()
                raise UserError(f"{source}: column {column!r} is numeric but rows "
                                f"{_listing(rows)} hold infinite values (inf, or a number past "
                                "1e308)", hint="fix the values, or blank them if unknown")
            if faults.negative.any():
                rows = (np.flatnonzero(faults.negative) + 2).tolist()
                raise UserError(f"{source}: column {column!r} is a behaviour count but has "
                                f"negative values on rows {_listing(rows)}",
                                hint="counts cannot be negative")
            series = values
            numeric.append(column)
        elif column not in config.columns.declared_leaky and _is_date_column(cleaned, column):
            dropped[column] = DATE_DROPPED
            continue
        else:
            series = cleaned[column]
        emptiness = _emptiness(series, None if series is values else cleaned.arrow(column))
        if emptiness:
            dropped[column] = emptiness
        else:
            out[column] = series
    for column, reason in dropped.items():
        if reason == DATE_DROPPED:
            notes.append(f"{source}: column {column!r} holds dates: dropped (a date is not a "
                         "factor; derive one, e.g. days since, to use it)")
        else:
            notes.append(f"{source}: column {column!r} is {reason}: dropped (it cannot earn "
                         "points)")
    if training:
        notes += absent_column_keys(config, columns, source)
    undecided, counts = None, []
    if outcome is not None:
        out, undecided, counts, warning = _decided(out, outcome, id_col, source)
        notes += [warning] if warning else []
    keep = set(out.columns)
    return ValidatedLeads(
        frame=out,
        fit_columns=[c for c in fit_cols if c in keep],
        pain_columns=[c for c in pain_cols if c in keep],
        numeric_columns=[c for c in numeric if c in keep],
        dropped=dropped,
        warnings=notes,
        notes=counts,
        undecided=undecided,
    )


def outcome_required(config: Config) -> list[str]:
    """The columns training needs to know who is won: the label column, or the key of the
    closed-deals file (``label.won_in``), or the conversion date (``label.window_days``)."""
    label = config.label
    if label.won_in is not None:
        return [label.won_in.on]
    if label.window_days is not None:
        return [label.converted_at_column]
    return [label.column]


def _outcome(cleaned: CleanColumns, out: pd.DataFrame, config: Config, source: str,
             won: WonKeys | None) -> Outcome:
    """Who is won (1), lost (0) or undecided (NaN), by the configured label shape."""
    label = config.label
    if label.won_in is not None:
        if won is None:
            raise ValueError("label.won_in is set: pass the keys of its file (won=...)")
        label_text = cleaned[label.column] if label.column in cleaned.raw.columns else None
        return outcome_from_won_in(cleaned[label.won_in.on], won, label, source, label_text)
    if label.window_days is not None:
        converted_at = _timestamps(cleaned[label.converted_at_column], label.converted_at_column,
                                   source, blank_allowed=True)
        return outcome_from_window(out["created_at"], converted_at, label)
    return outcome_from_label(cleaned[label.column], label, source)


def _decided(out: pd.DataFrame, outcome: Outcome, id_col: str, source: str
             ) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str], str | None]:
    """The decided leads with their 0/1 ``converted`` (a fresh index), the undecided leads'
    ids, the outcome counts, and the right-censoring warning if the newest leads convert far
    below the rest."""
    decided = outcome.decided.to_numpy()
    undecided = None
    if not decided.all():
        undecided = out.loc[~decided, [c for c in (id_col, "created_at") if c in out.columns]]
        undecided = undecided.reset_index(drop=True)
    out = out.loc[decided].assign(converted=outcome.label[decided].astype(int).to_numpy())
    out = out.reset_index(drop=True)
    label = out["converted"]
    if len(label) == 0:
        raise UserError(f"{source}: no lead has a decided outcome (every lead is undecided)",
                        hint="training needs won and lost leads: check label.open / "
                        "label.window_days")
    if label.nunique() < 2:
        only = "won" if label.iloc[0] == 1 else "lost"
        raise UserError(f"{source}: only one class present (every lead is {only})",
                        hint="training needs both won and lost leads")
    warning = None
    if "created_at" in out.columns:
        warning = censoring_warning(out["created_at"], label)
    return out, undecided, outcome.notes, warning


def _timestamps(series: pd.Series, column: str, source: str, *, blank_allowed: bool = False
                ) -> pd.Series:
    """Parsed timestamps (naive UTC); unparseable, future and (unless ``blank_allowed``: a
    conversion date, blank for leads that never converted) blank values are refused."""
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
    if parsed.isna().any() and not blank_allowed:
        rows = (np.flatnonzero(parsed.isna().to_numpy()) + 2).tolist()
        raise UserError(f"{source}: column {column!r} is blank on rows {_listing(rows)}",
                        hint="every lead needs its creation time")
    return parsed.astype("datetime64[ns]")
