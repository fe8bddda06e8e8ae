"""Clean text columns: configured missing tokens to ``None``/NaN, numbers parsed (Arrow
where it can), and whether a column is numeric or mostly numeric; what validation
(:mod:`pipeline.inputs.validate`) and scoring read columns with."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# what Python's str.strip() removes (every c with c.isspace(); a test checks the list)
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003"
                 "\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
MOSTLY_NUMERIC = 0.9  # a column whose present values are at least this share numbers is numeric


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


@dataclass(frozen=True)
class OutOfRange:
    """Rows of a numeric column that neither training nor scoring takes: ``infinite`` values
    (inf, or a number past 1e308) and, in a behaviour count, ``negative`` ones."""

    infinite: np.ndarray
    negative: np.ndarray


def out_of_range(values: pd.Series | np.ndarray, *, count: bool) -> OutOfRange:
    """:class:`OutOfRange` masks of parsed numbers (NaN: missing, in neither); ``count``: the
    column is a behaviour count (PAIN), where negative values are refused too. Training
    refuses the file on such rows (:func:`pipeline.inputs.validate.validate_leads`), scoring
    rejects them one by one (:func:`pipeline.scoring.batch_scoring.score_batch`)."""
    as_float = (values.to_numpy(dtype=float, na_value=np.nan) if isinstance(values, pd.Series)
                else np.asarray(values, dtype=float))
    negative = as_float < 0 if count else np.zeros(len(as_float), dtype=bool)
    return OutOfRange(np.isinf(as_float), negative)


def _numeric_kind(series: pd.Series) -> tuple[pd.Series, pd.Series, bool, bool]:
    """(values, bad, every present value is a number, most are): one parse per column."""
    values, bad = parse_numeric(series)
    return values, bad, *_kind(int(series.notna().sum()), int(bad.sum()))


def numeric_kind_of(columns: CleanColumns, name: str, *, values_needed: bool = False
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
