"""One batch of raw leads checked row by row, then scored: each row scored or rejected with
a reason (missing or repeated id, a value that is not a number, an infinite value, a negative
count), never dropped. :mod:`pipeline.scoring.batch` streams a whole file through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import UserError
from pipeline.inputs.clean_columns import out_of_range, parse_numeric
from pipeline.inputs.features import FeatureSettings, scoring_features
from pipeline.inputs.records import shorten
from pipeline.model.rules import PointsRules
from pipeline.scoring.frame import reason_pieces, score_frame, unseen_counts
from pipeline.scoring.ids import SeenIds


@dataclass(frozen=True)
class BatchResult:
    """Scored rows and rejected rows of one batch (their counts add up to the batch size)."""

    scored: pd.DataFrame
    rejects: pd.DataFrame
    unseen: dict[str, int] = field(default_factory=dict)  # scored leads per unseen factor
    pieces: pa.Array | None = None  # reason codes as pieces, one per scored row (Parquet)



def default_settings(rules: PointsRules, id_column: str) -> FeatureSettings:
    """Feature settings when none are given: the id column and the table's missing tokens
    (derived signals from the table's own settings; no event log)."""
    return FeatureSettings(id_column=id_column, missing_values=list(rules.missing_values))


def score_batch(raw: pd.DataFrame, rules: PointsRules, *, id_column: str, first_row: int,
                settings: FeatureSettings | None = None, event_table: pd.DataFrame | None = None,
                seen_ids: SeenIds | None = None, reasons: bool = True,
                row_numbers: np.ndarray | None = None, pieces: bool = False) -> BatchResult:
    """Validate and score one batch of raw leads.

    The features come from :func:`pipeline.inputs.features.scoring_features` (``settings``, and the
    per-lead ``event_table`` of the whole file when the table has event factors). Row numbers
    are 1-based data rows (header excluded): ``row_numbers`` when given (one per row of
    ``raw``), else consecutive from ``first_row``. With ``pieces`` the reason codes come as
    ``BatchResult.pieces``, lists of dictionary-encoded pieces
    (:func:`pipeline.scoring.frame.reason_pieces`, what Parquet output holds), not as text.
    """
    if id_column not in raw.columns:
        raise UserError(f"id column {id_column!r} not found in the input",
                        hint=f"columns found: {', '.join(map(str, raw.columns[:20]))}")
    frame = scoring_features(raw, rules, settings or default_settings(rules, id_column),
                             event_table=event_table)
    rows = (np.asarray(row_numbers, dtype=np.int64) if row_numbers is not None
            else np.arange(first_row, first_row + len(frame)))
    ids = id_text(frame[id_column])
    reason = pa.nulls(len(frame), pa.string())  # null: no reason to reject (yet)
    present = pc.is_valid(ids)
    reason = pc.if_else(present, reason, pa.scalar("missing id"))
    if seen_ids is not None:
        fresh = np.ones(len(frame), dtype=bool)
        candidates = np.flatnonzero(present.to_numpy(zero_copy_only=False))
        fresh[candidates] = seen_ids.first_seen(ids.take(pa.array(candidates)))
        if not fresh.all():
            reason = pc.if_else(pa.array(~fresh), pc.binary_join_element_wise(
                "duplicate id: ", quoted(ids), " already appeared earlier in the input", ""),
                reason)
    absent = [name for name in rules.input_columns() if name not in frame.columns]
    if absent:
        raise UserError(f"the input lacks columns the points table needs: {absent}",
                        hint="score a file with the same columns as the training data")
    for factor in rules.factors:
        if factor.kind != "numeric" or pd.api.types.is_numeric_dtype(frame[factor.name].dtype):
            continue
        values = frame[factor.name]
        if pd.api.types.is_numeric_dtype(values.dtype):
            numbers = values.astype(float)
        else:
            numbers, bad = _numbers(values)
            reason = _with_reason(reason, bad.to_numpy(), values,
                                  f"unparseable value: column {factor.name!r} holds ",
                                  ", not a number")
            frame[factor.name] = numbers
        faults = out_of_range(numbers, count=factor.group == "PAIN")  # as training checks
        reason = _with_reason(reason, faults.infinite, values,
                              f"infinite value: column {factor.name!r} holds ",
                              ", not a finite number")
        reason = _with_reason(reason, faults.negative, values,
                              f"negative count: column {factor.name!r} holds ",
                              "; counts cannot be negative")
    ok = pc.is_null(reason).to_numpy(zero_copy_only=False)
    good = frame.loc[ok] if not ok.all() else frame
    scores = score_frame(rules, good, reasons=reasons and not pieces)  # the table's spam gate
    listed = reason_pieces(rules, good) if reasons and pieces else None
    ok_rows = pa.array(ok)
    scores.insert(0, id_column, ids.filter(ok_rows).to_pandas().array if len(scores) else
                  pd.array([], dtype="str"))
    rejects = pd.DataFrame({"row": rows[~ok], "lead_id": ids.filter(pc.invert(ok_rows)).to_pandas(),
                            "reason": reason.filter(pc.invert(ok_rows)).to_pandas()})
    # counted on the features (derived and event factors included), scored leads only
    unseen = unseen_counts(rules, good) if len(good) else {}
    return BatchResult(scores.reset_index(drop=True), rejects, unseen, listed)


def _with_reason(reason: pa.Array, mask: np.ndarray, values: pd.Series, prefix: str,
                 suffix: str) -> pa.Array:
    """``reason`` with ``prefix + repr(value) + suffix`` where ``mask`` holds and no reason
    was given yet (one text per rejected row only)."""
    if not mask.any():
        return reason
    shown = values.astype(object).where(mask, None).map(lambda v: shorten(repr(v)),
                                                        na_action="ignore")
    text = pa.array(shown.to_numpy(), type=pa.string(), from_pandas=True)
    return pc.coalesce(reason, pc.binary_join_element_wise(prefix, text, suffix, ""))


def _numbers(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """:func:`pipeline.inputs.clean_columns.parse_numeric` (floats, and which values are present
    but not numbers), with Arrow text cast by Arrow when it takes every value."""
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        try:
            values = pc.cast(pa.array(series.array), pa.float64())
        except (pa.ArrowException, TypeError, ValueError):
            values = None
        if values is not None:
            numbers = pd.Series(values.to_numpy(zero_copy_only=False), index=series.index,
                                dtype=float)
            return numbers, series.notna() & numbers.isna()  # e.g. "nan": not a number
        series = series.astype(object).where(series.notna(), None)
    return parse_numeric(series)


def id_text(series: pd.Series) -> pa.Array:
    """Lead ids as Arrow text (null when missing), as ``str(id)`` reads them."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if pd.api.types.is_integer_dtype(series.dtype):
        return pc.cast(pa.array(series.to_numpy(dtype=object, na_value=None)
                                if series.hasnans else series.to_numpy()), pa.string())
    text = series.astype("str") if series.dtype == object or \
        pd.api.types.is_string_dtype(series.dtype) else series.map(str, na_action="ignore")
    array = pa.array(pd.array(text, dtype="str"))
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def quoted(text: pa.Array) -> pa.Array:
    """``repr`` of each string (``'id'``); Python's own ``repr`` only where it quotes
    otherwise (quotes, backslashes, unprintable characters)."""
    text = text.cast(pa.string())
    plain = pc.binary_join_element_wise("'", text, "'", "")
    odd = pc.or_(pc.or_(pc.match_substring(text, "'"), pc.match_substring(text, "\\")),
                 pc.invert(pc.utf8_is_printable(text)))
    odd_rows = np.flatnonzero(odd.to_numpy(zero_copy_only=False))
    if not len(odd_rows):
        return plain
    texts = plain.to_pylist()
    for i in odd_rows:  # rare rows only
        texts[i] = repr(text[int(i)].as_py())
    return pa.array(texts, type=pa.string())
