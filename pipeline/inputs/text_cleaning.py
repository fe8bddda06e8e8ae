"""Cleaning the text columns of a raw frame for scoring, as training cleans them: stripped,
blanks and missing tokens as missing, categorical and Arrow columns kept as they are."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def clean_text(frame: pd.DataFrame, missing_values: list[str], *,
               keep_arrow: tuple[str, ...] = (), blank_only: str | None = None) -> pd.DataFrame:
    """Text columns stripped, with blanks and missing tokens as missing (the cleaning of
    training, :func:`pipeline.inputs.clean_columns.normalise_missing`); other columns pass through.

    A categorical column (e.g. dictionary-encoded Parquet) is cleaned once per category and
    stays categorical; the Arrow text of the ``keep_arrow`` columns (the lead id, numeric
    factors: their numbers are cast from it) stays Arrow text (cleaned by Arrow's kernels,
    missing as NaN): neither is turned into one Python string per row. Other text columns
    become objects, missing as ``None``. ``blank_only``: a column missing only when blank,
    never for a token (the generated ``row_id``: lead 999's is ``"999"``).
    """
    from pipeline.inputs.clean_columns import CleanColumns, normalise_missing

    text = [c for c in frame.columns
            if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    if not text:
        return frame
    columns = CleanColumns(frame, missing_values)
    ids = CleanColumns(frame[[blank_only]], []) if blank_only in text else None
    out = {}
    for c in frame.columns:
        series = frame[c]
        tokens, cleaner = (([], ids) if ids is not None and c == blank_only
                           else (missing_values, columns))
        if c not in text:
            out[c] = series
        elif isinstance(series.dtype, pd.CategoricalDtype):
            out[c] = _clean_categorical(series, tokens, normalise_missing)
        elif (c in keep_arrow or c == blank_only) and (arrow := cleaner.arrow(c)) is not None:
            out[c] = pd.Series(arrow.to_pandas().array, index=frame.index, name=c)
        else:
            out[c] = cleaner[c]
    return pd.DataFrame(out, index=frame.index)


def _clean_categorical(series: pd.Series, missing_values: list[str], clean: Any) -> pd.Series:
    """A categorical column cleaned through its categories (stripped; tokens missing)."""
    categories = pd.DataFrame({"c": np.asarray(series.cat.categories, dtype=object)})
    cleaned = clean(categories, missing_values)["c"]
    if cleaned.notna().all() and cleaned.tolist() == categories["c"].tolist():
        return series
    new_codes, uniques = pd.factorize(cleaned, use_na_sentinel=True)
    table = np.append(new_codes, -1)  # code -1 (missing) stays missing
    codes = table.take(series.cat.codes.to_numpy())
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(uniques)),
                     index=series.index, name=series.name)
