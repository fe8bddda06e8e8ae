"""What the profile-signal detectors share (:mod:`pipeline.inputs.email_domains`,
:mod:`pipeline.inputs.spam_names`, :mod:`pipeline.inputs.job_titles`): what a detector treats
as missing (also how :mod:`pipeline.exports.verify` tells a null cell), and running a
scalar detector once per distinct value of a column.

Each detector is a plain scalar function (the reference) with a vectorised twin that computes
on the distinct values of a column and maps the answers back, so a 1M-row column costs about
as much as its distinct values. Only the standard library and pandas are used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd


def is_missing_value(value: Any) -> bool:
    """None, NaN and pandas' NA are missing (empty text is judged by each detector)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def map_distinct(
    values: pd.Series, func: Callable[[Any], Any], *, dtype: str, name: str
) -> pd.Series:
    """Apply ``func`` once per distinct value of ``values`` and broadcast back (same index)."""
    if not isinstance(values, pd.Series):
        raise TypeError(f"{name}: expected a pandas Series, got {type(values).__name__}")
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    answers = pd.Series([func(u) for u in uniques.to_numpy().tolist()], dtype=dtype)
    return pd.Series(answers.take(codes).array, index=values.index, name=name, dtype=dtype)
