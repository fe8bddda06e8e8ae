"""Who is won, lost or still undecided: the label shapes of real CRM exports.

Three ways to say who is won, each giving one outcome per lead (1 won, 0 lost, NaN
undecided; undecided leads are left out of training and analysis, and scored):

* a label column whose values are won (``label.positive``), lost (``label.negative``) or
  undecided (``label.open``: open deals);
* a second file of closed deals (``label.won_in``): a lead is won when its key is in it;
* a conversion date and a window (``label.window_days``): won means converted within N days
  of creation, and leads younger than N days at the data's end are undecided.

:func:`censoring_warning` is a separate check: the newest leads converting far below the
rest because they have not had time to close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config_sections import LabelConfig
from pipeline.errors import UserError

CENSORING_SHARE = 0.10   # the newest share of leads compared with the rest
CENSORING_P = 0.01       # one-sided test level
CENSORING_RATIO = 0.5    # ... and the recent rate below this share of the earlier rate
CENSORING_MIN_LEADS = 30  # in each group


@dataclass(frozen=True)
class WonKeys:
    """The keys of the closed-deals file (``label.won_in``): only this column is ever read."""

    keys: frozenset[str]
    source: str
    column: str


@dataclass(frozen=True)
class Outcome:
    """Per-lead outcome: 1.0 won, 0.0 lost, NaN undecided; ``notes`` count them for the user."""

    label: pd.Series
    notes: list[str]

    @property
    def decided(self) -> pd.Series:
        return self.label.notna()


def _values(values: list) -> list[str]:
    return sorted({str(v) for v in values})


def _number_key(text: str | None) -> str | None:
    """A label value as it compares: a number by its value (``1.0``, ``1,0`` read with decimal
    commas, ``1`` and ``01`` all read ``1``), other text as it is."""
    if text is None or isinstance(text, bool):
        return text
    try:
        number = float(text)
    except (TypeError, ValueError):
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def _keys(series: pd.Series) -> pd.Series:
    """:func:`_number_key` of every cell (text first, each distinct value converted once)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    keyed = np.array([_number_key(u) for u in uniques] + [None], dtype=object)
    return pd.Series(keyed[codes], index=series.index, dtype=object)


def _as_text(series: pd.Series) -> pd.Series:
    """Cell values as text (None stays None), each distinct value converted once."""
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    as_text = np.array([str(u) for u in uniques] + [None], dtype=object)
    return pd.Series(as_text[codes], index=series.index, dtype=object)


def _open_note(count: int, label: LabelConfig) -> str:
    return (f"{count:,} open leads (label in {_values(label.open)}) left out of training; "
            "score scores them")


def outcome_from_label(series: pd.Series, label: LabelConfig, source: str) -> Outcome:
    """The label column read through positive/negative/open; any other value (blank too) is
    refused with the counts of each, as a typo in an export must not silently become 'lost'."""
    positive, negative, undecided = ({_number_key(v) for v in _values(values)}
                                     for values in (label.positive, label.negative, label.open))
    raw = _as_text(series)
    text = _keys(raw)  # 1.0 / 1,0 from a float or decimal-comma export is the label 1
    unexpected = raw[~text.isin(positive | negative | undecided)]
    if not unexpected.empty:
        counts = unexpected.fillna("(blank)").value_counts()
        listed = ", ".join(f"{k!r}: {v}" for k, v in counts.head(10).items())
        also = f" nor open {_values(label.open)}" if undecided else ""
        booleans = [f"label.{key}" for key in ("positive", "negative", "open")
                    if any(isinstance(v, bool) for v in getattr(label, key))]
        raise UserError(
            f"{source}: label column {label.column!r} has values that are neither won "
            f"{_values(label.positive)} nor lost {_values(label.negative)}{also}: {listed}",
            hint=(f"YAML reads unquoted Yes/No/On/Off/True/False as booleans ({', '.join(booleans)}"
                  " hold True/False): quote them, e.g. positive: ['Yes']") if booleans else
            "fix the rows or list the values under label.positive / label.negative "
            "(undecided ones, e.g. open deals: label.open)",
        )
    is_open = text.isin(undecided)
    values = np.where(is_open, np.nan, text.isin(positive).astype(float))
    notes = [_open_note(int(is_open.sum()), label)] if is_open.any() else []
    return Outcome(pd.Series(values, index=series.index), notes)


def _won_in_hint(keys: pd.Series, won: WonKeys) -> str:
    """What to check when no key matches: the keys written as floats (``12.0``, a spreadsheet
    or pandas export) or in another case would match."""
    leads = set(keys.dropna())
    floats = {k[:-2] for k in won.keys if k.endswith(".0")} & leads
    folded = {k.casefold() for k in won.keys} & {k.casefold() for k in leads}
    if floats:
        return (f"{len(floats):,} keys match once '.0' is dropped ({won.source} writes them as "
                f"floats, e.g. {next(iter(sorted(floats)))}.0): write them as whole numbers")
    if folded:
        return (f"{len(folded):,} keys match when upper and lower case are ignored: make the "
                f"case of {won.column!r} the same in both files")
    return "check label.won_in.on names the same key in both files"


def outcome_from_won_in(keys: pd.Series, won: WonKeys, label: LabelConfig, source: str,
                        label_text: pd.Series | None = None) -> Outcome:
    """Won when the lead's key is in the closed-deals file; else open when the label column
    exists and holds a ``label.open`` value; else lost. A lead with a blank key is lost
    (nothing can tie it to a deal) and counted."""
    text = _as_text(keys)
    is_won = text.isin(won.keys).to_numpy()
    is_open = np.zeros(len(text), dtype=bool)
    if label_text is not None and label.open:
        is_open = _as_text(label_text).isin(set(_values(label.open))).to_numpy() & ~is_won
    values = np.where(is_open, np.nan, is_won.astype(float))
    n_won, n_open = int(is_won.sum()), int(is_open.sum())
    notes = [f"{n_won:,} of {len(text):,} leads are won ({won.column!r} found in {won.source}); "
             f"{len(text) - n_won - n_open:,} lost"]
    blank = int(text.isna().sum())
    if blank:
        notes.append(f"{blank:,} leads have no {won.column!r}: counted as lost")
    if n_open:
        notes.append(_open_note(n_open, label))
    if n_won == 0:
        examples = ", ".join(repr(k) for k in sorted(won.keys)[:3])
        raise UserError(f"{source}: no lead's {won.column!r} is in {won.source} "
                        f"(it holds e.g. {examples})", hint=_won_in_hint(text, won))
    return Outcome(pd.Series(values, index=keys.index), notes)


def outcome_from_window(created: pd.Series, converted_at: pd.Series, label: LabelConfig
                        ) -> Outcome:
    """Won when converted within ``window_days`` of creation, lost otherwise (conversions
    after the window too); leads created less than ``window_days`` before the data's end
    (the newest creation or conversion time) are undecided, converted or not, so that only
    the young leads that close fast cannot inflate the rate."""
    days = label.window_days
    window = pd.Timedelta(days=days)
    end = max(created.max(), converted_at.max()) if converted_at.notna().any() else created.max()
    young = (created > end - window).to_numpy()
    delay = converted_at - created
    won = (delay <= window).fillna(False).to_numpy(dtype=bool)  # NaT: never converted
    late = (delay > window).fillna(False).to_numpy(dtype=bool)
    values = np.where(young, np.nan, won.astype(float))
    n_young = int(young.sum())
    notes = [f"{int((won & ~young).sum()):,} leads converted within {days} days "
             f"({label.converted_at_column!r}) are won; {int((late & ~young).sum()):,} "
             f"converted later count as lost"]
    if n_young:
        notes.append(f"{n_young:,} leads younger than {days} days at the data's end "
                     f"({end:%Y-%m-%d}) are undecided: left out of training; score scores them")
    return Outcome(pd.Series(values, index=created.index), notes)


def _one_sided_p(recent_won: int, recent_n: int, rest_won: int, rest_n: int) -> float:
    """P(the recent leads convert this rarely or more so | same rate as the rest): Fisher's
    exact test, one-sided."""
    from scipy.stats import fisher_exact

    table = [[recent_won, recent_n - recent_won], [rest_won, rest_n - rest_won]]
    return float(fisher_exact(table, alternative="less").pvalue)


def _recent_periods(created: pd.Series) -> list[tuple[str, np.ndarray]]:
    """Candidate 'recent' groups: the newest month (when it holds enough leads and not
    nearly all of them) and the newest 10% of leads."""
    values = created.to_numpy()
    periods = []
    month = created.dt.to_period("M")
    newest = month.max()
    in_month = (month == newest).to_numpy()
    if CENSORING_MIN_LEADS <= in_month.sum() <= len(values) / 2:
        periods.append((f"the newest month ({newest}, {int(in_month.sum()):,} leads)", in_month))
    cut = np.quantile(values.astype("datetime64[ns]").astype(np.int64), 1 - CENSORING_SHARE)
    newest_share = values.astype("datetime64[ns]").astype(np.int64) > cut
    if newest_share.any():
        first = pd.Timestamp(values[newest_share].min())
        last = pd.Timestamp(values[newest_share].max())
        periods.append((f"the newest {CENSORING_SHARE:.0%} of leads (created {first:%Y-%m-%d}"
                        f" to {last:%Y-%m-%d}, {int(newest_share.sum()):,} leads)",
                        newest_share))
    return periods


def censoring_warning(created: pd.Series, converted: pd.Series) -> str | None:
    """A warning when the newest leads convert far below the earlier ones (a one-sided
    Fisher test p < 0.01 and a rate below half of the rest): they have not had time to close,
    so training would read 'recent' as 'bad'. None when no recent period looks censored."""
    y = converted.to_numpy(dtype=float)
    for name, recent in _recent_periods(created):
        rest = ~recent
        if recent.sum() < CENSORING_MIN_LEADS or rest.sum() < CENSORING_MIN_LEADS:
            continue
        recent_won, rest_won = int(y[recent].sum()), int(y[rest].sum())
        recent_rate, rest_rate = recent_won / recent.sum(), rest_won / rest.sum()
        if recent_rate >= CENSORING_RATIO * rest_rate:
            continue
        p = _one_sided_p(recent_won, int(recent.sum()), rest_won, int(rest.sum()))
        if p < CENSORING_P:
            return (f"recent leads have not had time to close: {name} convert at "
                    f"{recent_rate:.1%} against {rest_rate:.1%} for the earlier leads "
                    f"(one-sided Fisher p = {p:.1g}); set label.window_days with "
                    "label.converted_at_column to leave leads too young to have closed out of "
                    "training")
    return None
