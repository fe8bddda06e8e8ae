"""Bring the leads in: the leads file, its attribute tables (``data.lookups``) and the
closed-deals file (``label.won_in``), read at the edge and joined before validation.

A lookup adds columns (account size, product line, owner team) to each lead by a key
column present in both files; the joined columns are then ordinary candidate columns. The
join is a left join (every lead is kept); a key that is not unique in the lookup would
duplicate leads, so it is an error, and lead keys with no match are counted per value, with
the closest key of the lookup (``GTXPro`` vs ``GTX Pro``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.config_sections import FileKeyConfig
from pipeline.errors import UserError
from pipeline.inputs.labels import WonKeys
from pipeline.inputs.validate import ValidatedLeads, validate_leads

MAX_UNMATCHED_LISTED = 5


@dataclass(frozen=True)
class Lookup:
    """An attribute table: its key column ``on`` (stripped text) and the columns it adds."""

    name: str          # the file name, for messages
    on: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class Joined:
    """The leads with the lookup columns added, and the unmatched-key warnings."""

    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def _text(series: pd.Series) -> pd.Series:
    """Stripped text keys, blanks as None (each distinct value converted once)."""
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    stripped = [str(u).strip() for u in uniques]
    table = np.array([s if s else None for s in stripped] + [None], dtype=object)
    return pd.Series(table[codes], index=series.index, dtype=object)


def make_lookup(frame: pd.DataFrame, on: str, name: str) -> Lookup:
    """Check an attribute table read as text: the key column exists and is unique (a
    duplicated key would copy every lead it matches). Rows with a blank key match nothing
    and are left out."""
    if on not in frame.columns:
        near = difflib.get_close_matches(on, [str(c) for c in frame.columns], n=1)
        raise UserError(f"{name}: lookup key column {on!r} not found"
                        + (f" (did you mean {near[0]!r}?)" if near else ""),
                        hint=f"data.lookups: 'on' must name a column of both {name} and the "
                        "leads file")
    keys = _text(frame[on])
    frame = frame.assign(**{on: keys}).loc[keys.notna().to_numpy()]
    duplicated = frame[on][frame[on].duplicated(keep=False)]
    if not duplicated.empty:
        counts = duplicated.value_counts()
        shown = counts.head(MAX_UNMATCHED_LISTED)
        listed = ", ".join(f"{k!r} ({v} rows)" for k, v in shown.items())
        more = f" ... ({len(counts)} keys in all)" if len(counts) > MAX_UNMATCHED_LISTED else ""
        raise UserError(f"{name}: lookup key column {on!r} is not unique: {listed}{more}",
                        hint="a lookup needs one row per key (each lead gets that row's "
                        "columns): de-duplicate the file or join on another column")
    return Lookup(name, on, frame.reset_index(drop=True))


def _folded(value: str) -> str:
    return re.sub(r"[\W_]+", "", value).casefold()


def closest_key(value: str, keys: list[str], folded: dict[str, str]) -> str | None:
    """The lookup key a lead value most likely meant: the same letters and digits ignoring
    case, spaces and punctuation (``GTXPro`` -> ``GTX Pro``), else difflib's closest match."""
    same = folded.get(_folded(value))
    if same is not None:
        return same
    near = difflib.get_close_matches(value, keys, n=1, cutoff=0.75)
    return near[0] if near else None


def unmatched_warnings(lead_keys: pd.Series, matched: np.ndarray, lookup: Lookup) -> list[str]:
    """One line per unmatched lead value (most leads first, at most five), with its count and
    the closest key of the lookup: ``GTXPro: 1,480 leads not in products.csv; did you mean
    'GTX Pro'? (key column 'product')``. Blank lead keys are not mismatches."""
    missing = lead_keys[~matched & lead_keys.notna().to_numpy()]
    if missing.empty:
        return []
    counts = missing.value_counts()
    keys = [str(k) for k in lookup.frame[lookup.on]]
    folded = {_folded(k): k for k in keys}
    lines = []
    for value, count in counts.head(MAX_UNMATCHED_LISTED).items():
        near = closest_key(str(value), keys, folded)
        suggestion = f"; did you mean {near!r}?" if near else ""
        lines.append(f"{value}: {count:,} leads not in {lookup.name}{suggestion} "
                     f"(key column {lookup.on!r})")
    if len(counts) > MAX_UNMATCHED_LISTED:
        rest = counts.iloc[MAX_UNMATCHED_LISTED:]
        lines.append(f"{lookup.name}: {len(rest):,} more {lookup.on!r} values "
                     f"({int(rest.sum()):,} leads) not in the lookup")
    return lines


def join_lookups(leads: pd.DataFrame, lookups: list[Lookup], *, source: str) -> Joined:
    """Left-join each lookup's columns onto the leads by its key column.

    A lookup column that the leads (or an earlier lookup) already have is an error: which
    one to keep is a choice only the user can make. Lead keys are compared stripped; the
    added columns are text, with None where a lead has no match.
    """
    frame, warnings = leads, []
    for lookup in lookups:
        if lookup.on not in frame.columns:
            raise UserError(f"{source}: column {lookup.on!r} (the key of lookup {lookup.name}) "
                            "not found in the leads",
                            hint="data.lookups: 'on' must name a column of both files")
        added = [c for c in lookup.frame.columns if c != lookup.on]
        clash = [c for c in added if c in frame.columns]
        if clash:
            raise UserError(f"{lookup.name}: lookup columns {clash} are already columns of "
                            f"{source}",
                            hint="a lookup only adds columns: drop or rename them in one of "
                            "the files")
        lead_keys = _text(frame[lookup.on])
        at = pd.Index(lookup.frame[lookup.on]).get_indexer(lead_keys)
        matched = at >= 0
        warnings += unmatched_warnings(lead_keys, matched, lookup)
        columns = {}
        for column in added:
            values = np.append(lookup.frame[column].to_numpy(dtype=object), None)
            columns[column] = pd.Series(values[np.where(matched, at, -1)], index=frame.index,
                                        dtype=object)
        frame = pd.concat([frame, pd.DataFrame(columns, index=frame.index)], axis=1)
    return Joined(frame, warnings)


def lookup_adder(lookups: list[Lookup], missing_values: list[str], *, source: str):
    """For scoring: a function adding the lookup columns to each (cleaned) batch, cleaned the
    way the batch was (stripped, missing tokens as None). No warnings: the training run
    reported the unmatched keys."""
    from pipeline.inputs.clean_columns import normalise_missing

    cleaned = [Lookup(lk.name, lk.on, normalise_missing(lk.frame, missing_values).assign(
        **{lk.on: lk.frame[lk.on]})) for lk in lookups]

    def add(frame: pd.DataFrame) -> pd.DataFrame:
        return join_lookups(frame, cleaned, source=source).frame

    return add


def read_lookups(entries: list[FileKeyConfig]) -> list[Lookup]:
    """Read and check every ``data.lookups`` file (CSV or Parquet, as text)."""
    from pipeline.inputs.reader import read_table

    return [make_lookup(read_table(entry.path, strict=True).frame, entry.on,
                        Path(entry.path).name) for entry in entries]


def won_keys(frame: pd.DataFrame, on: str, name: str) -> WonKeys:
    """The distinct keys of the closed-deals file. Only the key column is kept: every other
    column of a deals export exists only for won leads, so joining it would leak the label."""
    if on not in frame.columns:
        near = difflib.get_close_matches(on, [str(c) for c in frame.columns], n=1)
        raise UserError(f"{name}: key column {on!r} not found"
                        + (f" (did you mean {near[0]!r}?)" if near else ""),
                        hint="label.won_in.on must name a column of both the deals file and "
                        "the leads file")
    keys = frozenset(k for k in _text(frame[on]) if k is not None)
    if not keys:
        raise UserError(f"{name}: key column {on!r} is empty: no lead would be won")
    return WonKeys(keys, name, on)


def read_won_keys(config: Config) -> WonKeys | None:
    """The ``label.won_in`` keys, or None when the label comes from the leads themselves."""
    from pipeline.inputs.reader import read_table

    won_in = config.label.won_in
    if won_in is None:
        return None
    return won_keys(read_table(won_in.path, strict=True).frame, won_in.on,
                    Path(won_in.path).name)


def read_leads(config: Config, *, training: bool) -> ValidatedLeads:
    """The leads file with its lookups joined, validated (and labelled, in training)."""
    from pipeline.inputs.reader import read_options, read_table

    source = str(config.data.leads)
    raw = read_table(config.data.leads, strict=True, options=read_options(config)).frame
    joined = join_lookups(raw, read_lookups(config.data.lookups), source=source)
    won = read_won_keys(config) if training else None
    leads = validate_leads(joined.frame, config, source=source, training=training, won=won)
    return replace(leads, warnings=[*joined.warnings, *leads.warnings])
