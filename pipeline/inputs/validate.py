"""Validate a raw lead table against the config: ids, label, columns, types.

Input is text (see :mod:`pipeline.inputs.reader`); output is a typed frame in which configured
missing tokens are ``None``/NaN, numeric columns are floats and the label is 0/1.
Everything wrong is reported with the file, column and rows, and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.inputs.labels import (
    Outcome,
    WonKeys,
    censoring_warning,
    outcome_from_label,
    outcome_from_window,
    outcome_from_won_in,
)

MAX_LISTED = 5
# what Python's str.strip() removes (every c with c.isspace(); a test checks the list)
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003"
                 "\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
MOSTLY_NUMERIC = 0.9  # a column whose present values are at least this share numbers is numeric
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


def normalise_missing(frame: pd.DataFrame, missing_values: list[str]) -> pd.DataFrame:
    """Strip whitespace; configured missing tokens and blanks become None (object columns)."""
    columns = CleanColumns(frame, missing_values)
    return pd.DataFrame({column: columns[column] for column in frame.columns}, index=frame.index)


class CleanColumns(Mapping[str, pd.Series]):
    """The columns of a raw table cleaned as :func:`normalise_missing` does, each on first use.

    A column the file gave as Arrow text is cleaned by Arrow's kernels, and :meth:`arrow`
    gives that cleaned text: numbers are then cast from it without ever making Python strings,
    and only the columns read as objects pay for the conversion.
    """

    def __init__(self, raw: pd.DataFrame, missing_values: list[str]) -> None:
        self.raw = raw
        self.tokens = [*dict.fromkeys([*missing_values, ""])]
        self._objects: dict[str, pd.Series] = {}
        self._arrow: dict[str, pa.ChunkedArray | None] = {}
        self._numbers: dict[str, np.ndarray | None] = {}
        self._distinct: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def prepare(self, columns: list[str]) -> None:
        """Clean ``columns`` (and cast them to numbers) on two threads at once: Arrow's
        kernels release the GIL, so the cleaning runs on both cores."""
        todo = [c for c in dict.fromkeys(columns) if c not in self._arrow]
        texts = [_arrow_text(self.raw[c]) for c in todo]
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = list(pool.map(self._clean_and_cast, texts))
        for column, (cleaned, numbers) in zip(todo, done, strict=True):
            self._arrow[column], self._numbers[column] = cleaned, numbers

    def _clean_and_cast(self, text: pa.ChunkedArray | None
                        ) -> tuple[pa.ChunkedArray | None, np.ndarray | None]:
        if text is None:
            return None, None
        cleaned = _clean_arrow(text, self.tokens)
        return cleaned, _arrow_numbers(cleaned)

    def arrow(self, column: str) -> pa.ChunkedArray | None:
        """The cleaned Arrow text of ``column`` (missing tokens are null), or None."""
        if column not in self._arrow:
            text = _arrow_text(self.raw[column])
            self._arrow[column] = None if text is None else _clean_arrow(text, self.tokens)
        return self._arrow[column]

    def numbers(self, column: str) -> np.ndarray | None:
        """Floats cast by Arrow from the cleaned text, or None (no Arrow text, or a value
        Arrow will not cast)."""
        if column not in self._numbers:
            text = self.arrow(column)
            self._numbers[column] = None if text is None else _arrow_numbers(text)
        return self._numbers[column]

    def distinct(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(code per row, distinct values as objects) of a column with Arrow text."""
        if column not in self._distinct:
            encoded = pc.dictionary_encode(self.arrow(column), null_encoding="encode")
            encoded = encoded.combine_chunks()
            self._distinct[column] = (encoded.indices.to_numpy(zero_copy_only=False),
                                      encoded.dictionary.to_numpy(zero_copy_only=False))
        return self._distinct[column]

    def __getitem__(self, column: str) -> pd.Series:
        if column not in self._objects:
            if self.arrow(column) is None:
                self._objects[column] = _clean_objects(self.raw[column], set(self.tokens))
            else:
                codes, uniques = self.distinct(column)  # one Python string per distinct value
                self._objects[column] = pd.Series(uniques.take(codes), index=self.raw.index,
                                                  dtype=object)
        return self._objects[column]

    def __iter__(self):  # noqa: ANN204 - Mapping protocol
        return iter(self.raw.columns)

    def __len__(self) -> int:
        return len(self.raw.columns)


def _arrow_text(series: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow string data behind a pandas ``str`` column (zero copy), else None."""
    if not pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        return None
    try:
        data = pa.chunked_array(pa.array(series.array))
    except (TypeError, pa.ArrowException):
        return None
    return data if pa.types.is_string(data.type) or pa.types.is_large_string(data.type) else None


def _clean_arrow(text: pa.ChunkedArray, tokens: list[str]) -> pa.ChunkedArray:
    """Arrow text stripped (Python's whitespace set), with every token as null."""
    stripped = pc.utf8_trim(text, PY_WHITESPACE)
    is_token = pc.is_in(stripped, value_set=pa.array(tokens, type=text.type))
    return pc.if_else(is_token, pa.scalar(None, text.type), stripped)


def _arrow_numbers(text: pa.ChunkedArray) -> np.ndarray | None:
    """Floats cast by Arrow from text (null -> NaN), or None when Arrow refuses a value."""
    try:
        pc.cast(text.slice(0, 1000), pa.float64())  # text columns fail here, cheaply
        return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None


def _clean_objects(series: pd.Series, tokens: set[str]) -> pd.Series:
    """The same cleaning for any other column, once per distinct value."""
    def clean(value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            return None if value in tokens else value
        return None if value is None or pd.isna(value) else value

    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    cleaned = np.array([clean(u) for u in uniques] + [None], dtype=object)
    return pd.Series(cleaned[codes], index=series.index, dtype=object)


def parse_numeric(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Floats, and a mask of values that are present but are not numbers.

    Text is cast by Arrow (fast); when Arrow refuses a value, pandas parses the column, so
    which values count as numbers is pandas' rule either way.
    """
    if series.dtype == object:
        try:
            text = pa.array(series.to_numpy(), type=pa.string(), from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            text = None
        values = None if text is None else _arrow_numbers(pa.chunked_array([text]))
        if values is not None:
            numbers = pd.Series(values, index=series.index, dtype=float)
            return numbers, series.notna() & numbers.isna()
    codes, uniques = pd.factorize(series, use_na_sentinel=True)  # parse each value once
    parsed = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce")
    table = np.append(parsed.to_numpy(dtype=float, na_value=np.nan), np.nan)
    numbers = pd.Series(table.take(codes), index=series.index, dtype=float)
    bad = series.notna() & numbers.isna()
    return numbers, bad


def _numeric_kind(series: pd.Series) -> tuple[pd.Series, pd.Series, bool, bool]:
    """(values, bad, every present value is a number, most are): one parse per column."""
    values, bad = parse_numeric(series)
    return values, bad, *_kind(int(series.notna().sum()), int(bad.sum()))


def _numeric_kind_of(columns: CleanColumns, name: str, *, values_needed: bool = False
                     ) -> tuple[pd.Series | None, pd.Series | None, bool, bool]:
    """:func:`_numeric_kind` of a cleaned column, cast straight from its Arrow text if it has
    one (no Python objects for a column of numbers). A text column's values and bad mask are
    None unless ``values_needed`` (nothing reads them)."""
    text = columns.arrow(name)
    if text is None:
        return _numeric_kind(columns[name])
    index = columns.raw.index
    values = columns.numbers(name)
    if values is None:  # Arrow refused a value: pandas parses each distinct value once
        codes, uniques = columns.distinct(name)
        parsed = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce")
        parsed = parsed.to_numpy(dtype=float, na_value=np.nan)
        leads = np.bincount(codes, minlength=len(uniques))
        present_once = pd.notna(uniques)
        kind = _kind(int(leads[present_once].sum()),
                     int(leads[present_once & np.isnan(parsed)].sum()))
        if not (values_needed or any(kind)):
            return None, None, *kind
        values = parsed.take(codes)
        bad = pd.Series(present_once.take(codes) & np.isnan(values), index=index)
        return pd.Series(values, index=index, dtype=float), bad, *kind
    present = text.is_valid().to_numpy(zero_copy_only=False)
    bad = pd.Series(present & np.isnan(values), index=index)
    numbers = pd.Series(values, index=index, dtype=float)
    return numbers, bad, *_kind(int(present.sum()), int(bad.sum()))


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


def _kind(n_present: int, n_bad: int) -> tuple[bool, bool]:
    """(every present value is a number, most are)."""
    numeric = n_present > 0 and n_bad == 0
    mostly = n_bad > 0 and 1 - n_bad / n_present >= MOSTLY_NUMERIC
    return numeric, mostly


def infer_numeric(series: pd.Series) -> bool:
    """A column is numeric when every present value parses as a number."""
    return _numeric_kind(series)[2]


def mostly_numeric(series: pd.Series) -> bool:
    """Numbers with a little text in them (``"12 visits"``, ``"n/a"``): most present values
    parse as numbers but not all. Such a column is numeric with dirty cells, not a category
    with hundreds of levels; it is reported instead of being silently treated as text."""
    return _numeric_kind(series)[3]


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
    cleaned.prepare([id_col, *fit_cols, *pain_cols])
    id_text = cleaned.arrow(id_col)
    ids = (pd.Series(id_text.to_pandas().array, index=raw.index) if id_text is not None
           else cleaned[id_col])
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
        values, bad, numeric_text, mostly = _numeric_kind_of(cleaned, column,
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
            infinite = np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
            if infinite.any():
                rows = (np.flatnonzero(infinite) + 2).tolist()
                raise UserError(f"{source}: column {column!r} is numeric but rows "
                                f"{_listing(rows)} hold infinite values (inf, or a number past "
                                "1e308)", hint="fix the values, or blank them if unknown")
            if column in pain_cols and (values < 0).any():
                rows = (np.flatnonzero((values < 0).to_numpy()) + 2).tolist()
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


EVENT_WARNINGS = {
    "unparseable_timestamps": "events with an unparseable timestamp were ignored",
    "events_unknown_lead": "events for leads that are not in the leads file were ignored",
    "events_before_creation": "events dated before their lead was created were ignored",
}


def event_warnings(diagnostics: Mapping[str, int], source: str) -> list[str]:
    """Warning lines for the event-log problems that ``aggregate_events`` counted.

    ``diagnostics`` is :attr:`pipeline.inputs.features.FeatureSet.event_diagnostics`; one line per
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
