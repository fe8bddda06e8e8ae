"""Reason codes: per lead, the factors that added most points and the ones that took most away.

Each text piece ``factor = level: +points`` exists once per (factor, outcome slot). A lead's
reason codes are found without per-row Python and without sorting rows:

1. every piece with positive points gets a *rank* (most points first, ties in factor order),
   every negative piece one too (most negative first, ties in reverse factor order); a
   lead's best positives are then its ``top`` smallest positive ranks;
2. per factor, one ``take`` gives each lead the rank of its piece (a sentinel when the
   piece is not positive / negative), and a small insertion network of ``minimum`` /
   ``maximum`` over whole columns keeps the ``top`` smallest ranks seen so far;
3. the rank tuples are factorised: the joined text is built once per distinct tuple (by
   Arrow) and the column is a categorical, i.e. dictionary-encoded, as Parquet stores it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.model.rules import FactorRules, PointsRules

SEPARATOR = "; "


def _ranked_pieces(rules: PointsRules, outcome_points: list[np.ndarray],
                   labels: list[list[str]], sign: int
                   ) -> tuple[list[np.ndarray], list[str]]:
    """Rank per (factor, slot) of the pieces whose points have ``sign`` (others: the sentinel
    ``len(texts)``), and the piece texts in rank order."""
    k = len(rules.factors)
    entries = []
    for j, points in enumerate(outcome_points):
        for slot, p in enumerate(points.tolist()):
            if p * sign > 0:
                # positives: most points first, then factor order; negatives: most negative
                # first, then reverse factor order
                entries.append((-p * sign, j if sign > 0 else k - 1 - j, slot, j))
    entries.sort()
    sentinel = len(entries)
    dtype = np.int16 if sentinel < np.iinfo(np.int16).max else np.int32
    ranks = [np.full(len(points), sentinel, dtype=dtype) for points in outcome_points]
    texts = []
    for rank, (_, _, slot, j) in enumerate(entries):
        ranks[j][slot] = rank
        factor: FactorRules = rules.factors[j]
        texts.append(f"{factor.name} = {labels[j][slot]}: {int(outcome_points[j][slot]):+d}")
    return ranks, texts


def _smallest(columns: list[np.ndarray], sentinel: int, top: int, n: int) -> list[np.ndarray]:
    """Per row, the ``top`` smallest values over ``columns`` (distinct within a row, apart
    from the sentinel), ascending: an insertion network over whole columns."""
    dtype = columns[0].dtype if columns else np.int16
    best = [np.full(n, sentinel, dtype=dtype) for _ in range(top)]
    low = np.empty(n, dtype=dtype)
    for column in columns:
        value = column.copy()
        for i in range(top - 1):
            np.minimum(best[i], value, out=low)
            np.maximum(best[i], value, out=value)
            best[i], low = low, best[i]
        np.minimum(best[top - 1], value, out=best[top - 1])
    return best


def _tuple_codes(parts: list[np.ndarray], base: int) -> tuple[np.ndarray, int]:
    """One integer code per row for the tuple of ``parts`` (values in ``[0, base)``)."""
    key = parts[0].astype(np.int64)
    distinct = base
    for part in parts[1:]:
        if distinct * base >= 1 << 62:  # compress before the key could overflow
            key, uniques = pd.factorize(key)
            distinct = max(len(uniques), 1)
        key = key * base + part
        distinct *= base
    codes, uniques = pd.factorize(key)
    return codes, len(uniques)


def _picks(rules: PointsRules, slots: list[np.ndarray], outcome_points: list[np.ndarray],
           labels: list[list[str]], top: int) -> tuple[np.ndarray, list[str]]:
    """(piece id per row and position, -1 where a row has fewer reasons; the piece texts).

    Positions: the ``top`` best positives, then the ``top`` worst negatives. Piece ids index
    the texts: positives in rank order, then negatives in rank order.
    """
    n = len(slots[0])
    width = min(top, len(rules.factors))
    picked = np.full((n, 2 * width), -1, dtype=np.int32)
    texts: list[str] = []
    for s, sign in enumerate((1, -1)):
        ranks, sign_texts = _ranked_pieces(rules, outcome_points, labels, sign)
        columns = [r.take(slot) for r, slot in zip(ranks, slots, strict=True)]
        sentinel = len(sign_texts)
        for i, best in enumerate(_smallest(columns, sentinel, width, n)):
            picked[:, s * width + i] = np.where(best == sentinel, -1, best + len(texts))
        texts += sign_texts
    return picked, texts


def reason_pieces(rules: PointsRules, slots: list[np.ndarray], outcome_points: list[np.ndarray],
                  labels: list[list[str]], *, top: int = 3, n_rows: int | None = None
                  ) -> pa.ListArray:
    """The reason codes of every row as a list of pieces, each piece dictionary-encoded: the
    text of a piece exists once per (factor, level), a row holds up to ``2 * top`` small
    integers. Parquet stores it as ``list<dictionary<string>>``; joined by ``"; "`` it reads
    as :func:`reason_texts`. ``n_rows``: the row count when there are no slots (an empty
    table, no signal: every row gets no reason)."""
    n = len(slots[0]) if slots else (n_rows or 0)
    if not rules.factors or n == 0:
        empty = pa.DictionaryArray.from_arrays(pa.array([], pa.int16()), pa.array([], pa.string()))
        return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), empty)
    picked, texts = _picks(rules, slots, outcome_points, labels, top)
    valid = picked >= 0
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    index_type = np.int16 if len(texts) < np.iinfo(np.int16).max else np.int32
    values = pa.DictionaryArray.from_arrays(pa.array(picked[valid].astype(index_type)),
                                            pa.array(texts, type=pa.string()))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def reason_texts(rules: PointsRules, slots: list[np.ndarray], outcome_points: list[np.ndarray],
                 labels: list[list[str]], *, top: int = 3, n_rows: int | None = None
                 ) -> pd.api.extensions.ExtensionArray:
    """The reason-code text of every row (pandas ``str``).

    ``slots`` holds the outcome slot of each row per factor, ``outcome_points`` /
    ``labels`` the points and words of each slot, as
    :func:`pipeline.scoring.factor_lookup.factor_outcome_points` / ``factor_outcome_labels`` give
    them. Positives come first (most points first, ties in factor order), then negatives
    (most negative first, ties in reverse factor order), joined by ``"; "``. The text is
    joined by Arrow once per distinct combination of pieces, then taken per row. ``n_rows``:
    the row count when there are no slots (an empty table, no signal: every row reads "").
    """
    n = len(slots[0]) if slots else (n_rows or 0)
    if not rules.factors or n == 0 or top < 1:
        return pd.array([""] * n, dtype="str")
    picked, texts = _picks(rules, slots, outcome_points, labels, top)
    pieces = pa.array([*texts, None], type=pa.string())  # -1 takes the null: no piece
    codes, n_distinct = _tuple_codes([picked[:, j] + 1 for j in range(picked.shape[1])],
                                     len(texts) + 1)
    example = np.empty(n_distinct, dtype=np.int64)
    example[codes] = np.arange(n)  # any row of each combination: they all read the same
    columns = [pieces.take(pa.array(np.where(c < 0, len(texts), c)))
               for c in picked[example].T]
    lead = pa.array([""] * n_distinct, type=pa.string())  # keeps rows without any reason
    joined = pc.binary_join_element_wise(lead, *columns, SEPARATOR, null_handling="skip")
    distinct = pc.utf8_slice_codeunits(joined, len(SEPARATOR))
    return pd.array(distinct.take(pa.array(codes)), dtype="str")
