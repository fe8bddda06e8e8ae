"""Batch prediction: every input lead comes out exactly once, scored or rejected with a reason.

Files are streamed in batches (pyarrow), so a file larger than memory is fine; outputs
are written to a temporary file and renamed at the end, so a killed run leaves nothing
that looks complete.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import NothingScoredError, UserError
from pipeline.inputs.clean_columns import parse_numeric
from pipeline.inputs.features import FeatureSettings, scoring_features, signal_settings
from pipeline.inputs.reader import ReadOptions, atomic_path, table_format
from pipeline.inputs.records import shorten, wrong_delimiter
from pipeline.inputs.text_format import (
    AUTO,
    finish_text,
    is_utf8_codec,
    resolve_delimiter,
    sniff_decimal,
    with_row_ids,
)
from pipeline.model.rules import PointsRules
from pipeline.scoring.arrow_csv import CarefulReadNeeded, arrow_csv_frames, csv_header
from pipeline.scoring.frame import reason_pieces, score_frame, unseen_counts
from pipeline.scoring.ids import SeenIds
from pipeline.scoring.output import ScoresWriter

REJECT_COLUMNS = ["row", "lead_id", "reason"]


@dataclass(frozen=True)
class BatchResult:
    """Scored rows and rejected rows of one batch (their counts add up to the batch size)."""

    scored: pd.DataFrame
    rejects: pd.DataFrame
    unseen: dict[str, int] = field(default_factory=dict)  # scored leads per unseen factor
    pieces: pa.Array | None = None  # reason codes as pieces, one per scored row (Parquet)


@dataclass
class ScoringSummary:
    """Counts for the whole input: rows = scored + rejected (``skipped``: rows a filter left
    out on purpose, e.g. ``--since``; not part of ``rows``)."""

    rows: int = 0
    scored: int = 0
    rejected: int = 0
    skipped: int = 0
    sdr_ready: int = 0
    unseen: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, batch: BatchResult, n_rows: int, unseen: dict[str, int]) -> None:
        self.rows += n_rows
        self.scored += len(batch.scored)
        self.rejected += len(batch.rejects)
        if "sdr_ready" in batch.scored:
            self.sdr_ready += int(batch.scored["sdr_ready"].sum())
        for k, v in unseen.items():
            self.unseen[k] = self.unseen.get(k, 0) + v
        if len(batch.rejects):
            kinds = batch.rejects["reason"].astype("str").str.split(":").str[0]
            for key, count in kinds.value_counts(sort=False).items():
                self.reasons[key] = self.reasons.get(key, 0) + int(count)


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
        as_float = numbers.to_numpy(dtype=float, na_value=np.nan)
        reason = _with_reason(reason, np.isinf(as_float), values,
                              f"infinite value: column {factor.name!r} holds ",
                              ", not a finite number")
        if factor.group == "PAIN":  # behaviour counts (training refuses negative ones)
            reason = _with_reason(reason, as_float < 0, values,
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


@dataclass(frozen=True)
class RawBatch:
    """A batch of input rows read as text.

    ``rows`` holds the 1-based data-row number (header excluded, blank lines not counted) of
    each row of ``frame``; ``bad`` lists the malformed rows of this stretch of the file as
    (data-row number, lead id if recognisable, reason): they are rejects, never dropped.
    """

    frame: pd.DataFrame
    rows: np.ndarray
    bad: list[tuple[int, str | None, str]]
    skipped: int = 0  # rows left out by ``only_ids`` (see iter_batches)


def iter_batches(path: Path, *, batch_size: int, id_column: str | None = None,
                 options: ReadOptions | None = None, columns: list[str] | None = None,
                 fast: bool = False, only_ids: pa.Array | None = None) -> Iterator[RawBatch]:
    """Yield :class:`RawBatch` es of at most ``batch_size`` rows from a CSV or Parquet file.

    CSV is read with the standard ``csv`` module, record by record (quoted newlines welcome),
    so every record is accounted for: a record with a different number of fields than the
    header becomes a bad row with its position instead of vanishing. Raises
    :class:`UserError` for files that cannot be read at all (not UTF-8, wrong delimiter,
    Parquet that is not Parquet, a header without rows).

    ``options`` (``data.delimiter`` / ``encoding`` / ``decimal``, ``row_id`` for a file
    without ids) are honoured as :func:`pipeline.inputs.reader.read_table` honours them; an ``auto``
    decimal is decided on the first batch and kept for the rest of the file. ``columns``:
    read only these (those the file has).

    ``fast``: a UTF-8 CSV file is streamed by Arrow instead
    (:mod:`pipeline.scoring.arrow_csv`), which raises
    :class:`~pipeline.scoring.arrow_csv.CarefulReadNeeded` when the file turns out to have
    a malformed record: the caller then starts again without ``fast``.

    ``only_ids`` (Parquet with ids): keep only the rows whose stripped id is one of these,
    chosen in Arrow before any row becomes pandas (``RawBatch.skipped`` counts the others).
    """
    options = options or ReadOptions()
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if table_format(path) == "parquet":
        for batch in _parquet_batches(path, batch_size, columns, only_ids, id_column):
            yield (RawBatch(with_row_ids(batch.frame, batch.rows, path), batch.rows, batch.bad)
                   if options.row_ids else batch)
        return
    if fast and (options.encoding == AUTO or is_utf8_codec(options.encoding)):
        delimiter = resolve_delimiter(path, options)
        header = csv_header(path, delimiter)
        if header is not None:
            # an auto decimal is decided on every column, as the careful reader does
            projected = columns if options.decimal != AUTO or delimiter == "," else None
            yield from _fast_csv_batches(path, header, batch_size, delimiter, options, projected)
            return
    yield from _csv_batches(path, batch_size, id_column, options)


def _fast_csv_batches(path: Path, header: list[str], batch_size: int, delimiter: str,
                      options: ReadOptions, columns: list[str] | None) -> Iterator[RawBatch]:
    """:func:`pipeline.scoring.arrow_csv.arrow_csv_frames` as raw batches (rows numbered
    from 1: the file has no malformed record, or the reader stops)."""
    wrong_delimiter(path, header, delimiter)
    decimal: str | None = None
    first = 1
    for frame in arrow_csv_frames(path, header, batch_size=batch_size, delimiter=delimiter,
                                  columns=columns):
        numbers = np.arange(first, first + len(frame))
        if decimal is None:
            decimal = sniff_decimal(frame, delimiter, options, path)
        yield RawBatch(finish_text(frame, numbers, decimal=decimal, options=options, path=path),
                       numbers, [])
        first += len(frame)


def _parquet_batches(path: Path, batch_size: int, columns: list[str] | None,
                     only_ids: pa.Array | None = None, id_column: str | None = None
                     ) -> Iterator[RawBatch]:
    import pyarrow.parquet as pq

    with open(path, "rb") as handle:
        if handle.read(4) != b"PAR1":
            raise UserError(f"{path}: not a Parquet file (it starts like a text file)",
                            hint="rename it to .csv if it is CSV, or re-export it as Parquet")
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise UserError(f"{path}: cannot read Parquet: {exc}") from None
    if parquet.metadata.num_rows == 0:
        raise UserError(f"{path}: has columns but no rows", hint="expected one row per lead")
    first = 1
    if columns is not None:
        names = set(parquet.schema_arrow.names)
        columns = [c for c in dict.fromkeys(columns) if c in names]
    filtering = only_ids is not None and id_column in parquet.schema_arrow.names
    for batch in parquet.iter_batches(batch_size=batch_size, columns=columns):
        rows = np.arange(first, first + batch.num_rows)
        first += batch.num_rows
        skipped = 0
        if filtering:
            ids = pc.utf8_trim_whitespace(pc.cast(batch.column(id_column), pa.string()))
            keep = pc.fill_null(pc.is_in(ids, value_set=only_ids), False)
            batch, rows = batch.filter(keep), rows[keep.to_numpy(zero_copy_only=False)]
            skipped = len(keep) - batch.num_rows
        yield RawBatch(batch.to_pandas(), rows, [], skipped)


def _csv_batches(path: Path, batch_size: int, id_column: str | None,
                 options: ReadOptions) -> Iterator[RawBatch]:
    from pipeline.inputs.records import csv_records, read_header
    from pipeline.inputs.text_format import resolve_delimiter, resolve_encoding

    delimiter = resolve_delimiter(path, options)
    encoding = resolve_encoding(path, options.encoding)  # reads the whole file once
    decimal: str | None = None

    def finished(records: list[list[str]], rows: list[int],
                 bad: list[tuple[int, str | None, str]]) -> RawBatch:
        nonlocal decimal
        frame = pd.DataFrame(records, columns=header, dtype=object)
        numbers = np.asarray(rows, dtype=np.int64)
        if decimal is None and records:
            decimal = sniff_decimal(frame, delimiter, options, path)
        frame = finish_text(frame, numbers, decimal=decimal or ".", options=options, path=path)
        return RawBatch(frame, numbers, bad)

    try:
        with open(path, encoding=encoding, newline="") as handle:
            header, after = read_header(handle, delimiter, path)
            width = len(header)
            id_at = header.index(id_column) if id_column in header else None
            records: list[list[str]] = []
            rows: list[int] = []
            bad: list[tuple[int, str | None, str]] = []
            row = 0
            for fields, line, swallowed in csv_records(handle, delimiter, width, path=path,
                                                       start=after):
                if not fields:  # a blank line holds no lead
                    continue
                if swallowed is not None:  # each line a stray quote swallowed is a reject
                    for at, line_fields in swallowed.line_fields:
                        row += 1
                        bad.append((row, str(row) if options.row_ids else
                                    _ragged_id(line_fields, id_at),
                                    f"malformed row: {swallowed.reason} (line {at})"))
                    continue
                row += 1
                if len(fields) == width:
                    records.append(fields)
                    rows.append(row)
                else:
                    bad.append((row, str(row) if options.row_ids else _ragged_id(fields, id_at),
                                f"malformed row: {len(fields)} fields, expected {width} "
                                f"(line {line} of the file)"))
                if len(records) >= batch_size:
                    yield finished(records, rows, bad)
                    records, rows, bad = [], [], []
            if row == 0:
                raise UserError(f"{path}: has a header but no rows",
                                hint="expected one row per lead")
            if records or bad:
                yield finished(records, rows, bad)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: cannot be read as {encoding} (data.encoding): {exc.reason}",
                        hint="set data.encoding to the file's encoding (latin-1 reads any byte)"
                        ) from None


def _ragged_id(fields: list[str], id_at: int | None) -> str | None:
    """The id of a malformed row, read at the id column's position (a guess, for the user)."""
    if id_at is None or id_at >= len(fields):
        return None
    return fields[id_at].strip() or None


def read_columns(rules: PointsRules, settings: FeatureSettings | None, id_column: str
                 ) -> list[str]:
    """The input columns scoring reads: the id, every factor (or gate) column, the raw
    columns of the derived signals and the creation time (event features)."""
    settings = settings or default_settings(rules, id_column)
    return [id_column, *rules.input_columns(), *signal_settings(rules, settings).raw_columns(),
            *([settings.created_at_column] if settings.created_at_column else [])]


class _Stream:
    """The batches of one input through :func:`score_batch` into a writer (the loop of
    :func:`score_file`, which may run it twice: see ``iter_batches(fast=...)``)."""

    def __init__(self, rules: PointsRules, *, id_column: str, settings: FeatureSettings | None,
                 event_table: pd.DataFrame | None,
                 row_filter: Callable[[pd.DataFrame], pd.Series] | None,
                 add_columns: Callable[[pd.DataFrame], pd.DataFrame] | None,
                 progress: Callable[[int], None] | None, reasons: bool) -> None:
        self.rules, self.id_column, self.settings = rules, id_column, settings
        self.event_table, self.row_filter, self.add_columns = event_table, row_filter, add_columns
        self.progress, self.reasons = progress, reasons

    def run(self, batches: Iterator[RawBatch], writer: ScoresWriter, summary: ScoringSummary,
            rejects_all: list[pd.DataFrame]) -> list[str] | None:
        """Score and write every batch; the output columns (None when nothing was scored)."""
        rules, seen, out_columns = self.rules, SeenIds(), None
        for batch in batches:
            raw, rows = batch.frame, batch.rows
            summary.skipped += batch.skipped
            if self.row_filter is not None and len(raw):
                keep = np.asarray(self.row_filter(raw), dtype=bool)
                summary.skipped += int((~keep).sum())
                raw, rows = raw.loc[keep], rows[keep]
            if self.add_columns is not None:
                raw = self.add_columns(raw)
            result = score_batch(raw, rules, id_column=self.id_column, settings=self.settings,
                                 event_table=self.event_table,
                                 first_row=int(rows[0]) if len(rows) else 1, seen_ids=seen,
                                 reasons=self.reasons, row_numbers=rows,
                                 pieces=writer.format == "parquet")
            if batch.bad:
                malformed = pd.DataFrame(batch.bad, columns=REJECT_COLUMNS)
                result = BatchResult(result.scored, pieces=result.pieces, unseen=result.unseen,
                                     rejects=pd.concat([df for df in (result.rejects, malformed)
                                                        if len(df)] or [malformed],
                                                       ignore_index=True))
            if len(result.scored):
                writer.write(result.scored, reason_codes=result.pieces)
                out_columns = [*result.scored.columns,
                               *(["reason_codes"] if result.pieces is not None else [])]
            rejects_all.append(result.rejects)
            summary.add(result, len(raw) + len(batch.bad), result.unseen)
            if self.progress:
                self.progress(summary.rows)
        return out_columns


def score_file(rules: PointsRules, input_path: Path, output_path: Path, *,
               rejects_path: Path | None, id_column: str,
               settings: FeatureSettings | None = None,
               event_table: pd.DataFrame | None = None, batch_size: int = 200_000,
               options: ReadOptions | None = None,
               add_columns: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
               row_filter: Callable[[pd.DataFrame], pd.Series] | None = None,
               progress: Callable[[int], None] | None = None, reasons: bool = True,
               only_ids: Collection[str] | None = None) -> ScoringSummary:
    """Stream ``input_path`` through the points table into ``output_path`` (+ rejects).

    Each batch goes through :func:`score_batch` (the one feature builder, then the points
    table); ``event_table`` holds the event features of the whole file when needed;
    ``options`` says how to read the file (:func:`iter_batches`) and ``add_columns`` joins
    the ``data.lookups`` columns onto each batch.

    Every data row of the input ends up exactly once in the output or in the rejects (columns
    ``row, lead_id, reason``, sorted by row), except rows that ``row_filter`` deliberately
    skips, or that are not among ``only_ids`` (``--since``: picked in Arrow for Parquet),
    counted in ``summary.skipped``: ``rows == scored + rejected``. Both files are
    written to temporary files and renamed only when the whole input has been read, so a
    run that fails or is killed leaves the previous outputs untouched. When no row could be
    scored the rejects are still written (they say why) and :class:`NothingScoredError` is
    raised without an output file.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise UserError(f"{input_path}: file not found", hint="check the --input path")
    if input_path.is_dir():
        raise UserError(f"{input_path}: is a directory, expected a .csv or .parquet file")
    if input_path.stat().st_size == 0:
        raise UserError(f"{input_path}: file is empty",
                        hint="expected a header and one row per lead")
    fmt, fmt_in = table_format(Path(output_path)), table_format(input_path)
    wanted = None if only_ids is None else pa.array(sorted(only_ids), type=pa.string())
    in_arrow = fmt_in == "parquet" and not (options and options.row_ids)
    if wanted is not None and row_filter is None and not in_arrow:
        def row_filter(frame: pd.DataFrame) -> pd.Series:  # rows Arrow did not pick already
            ids = frame[id_column].astype("str").str.strip()
            return ids.isin(only_ids).to_numpy(dtype=bool)
    columns = None if add_columns else read_columns(rules, settings, id_column)
    stream = _Stream(rules, id_column=id_column, settings=settings, event_table=event_table,
                     row_filter=row_filter, add_columns=add_columns, progress=progress,
                     reasons=reasons)
    with atomic_path(output_path) as tmp_out:
        for fast in (True, False):  # Arrow's CSV reader first; the careful one if need be
            writer = ScoresWriter(tmp_out, fmt)
            summary, rejects_all = ScoringSummary(), []
            out_columns = [id_column, "points", "fit", "pain", "probability", "sdr_ready"]
            try:
                batches = iter_batches(input_path, batch_size=batch_size, id_column=id_column,
                                       options=options, columns=columns, fast=fast,
                                       only_ids=wanted)
                out_columns = stream.run(batches, writer, summary, rejects_all) or out_columns
            except CarefulReadNeeded:
                continue
            finally:
                writer.close(out_columns)
            break
        rejects = _sorted_rejects(rejects_all)
        if rejects_path is not None and (summary.scored or len(rejects)):
            _write_rejects(rejects_path, rejects)
        if summary.scored == 0:
            raise NothingScoredError(
                f"{input_path}: no lead could be scored ({summary.rejected} rejected: "
                f"{_top_reasons(summary)})",
                hint=f"see {rejects_path} for each row's reason" if rejects_path
                else "every row was rejected")
    return summary


def _sorted_rejects(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({"row": pd.Series(dtype="int64"), "lead_id": pd.Series(dtype=object),
                             "reason": pd.Series(dtype=object)})
    frame = pd.concat(parts, ignore_index=True)[REJECT_COLUMNS]
    frame["row"] = frame["row"].astype("int64")
    return frame.sort_values("row", kind="stable").reset_index(drop=True)


def _write_rejects(path: Path, rejects: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        if table_format(Path(path)) == "parquet":
            rejects.to_parquet(tmp, index=False)
        else:
            rejects.to_csv(tmp, index=False, lineterminator="\n")


def _top_reasons(summary: ScoringSummary) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(summary.reasons.items(), key=lambda kv: -kv[1]))


def account_rollup(scored: pd.DataFrame, accounts: pd.Series, *, id_column: str) -> pd.DataFrame:
    """One row per account: leads, best lead, sum and mean of the top 3, share SDR-ready."""
    frame = scored.assign(account=accounts.to_numpy())
    frame = frame[frame["account"].notna()]
    rows = []
    for account, group in frame.groupby("account", sort=True):
        top = group.sort_values(["points", id_column], ascending=[False, True])
        top3 = top["points"].head(3)
        rows.append({"account": account, "leads": len(group), "best_lead": top[id_column].iloc[0],
                     "best_points": int(top["points"].iloc[0]), "top3_sum": int(top3.sum()),
                     "top3_mean": float(top3.mean()),
                     "sdr_ready_share": float(group["sdr_ready"].mean())})
    return pd.DataFrame(rows, columns=["account", "leads", "best_lead", "best_points", "top3_sum",
                                       "top3_mean", "sdr_ready_share"])


def lead_accounts(raw: pd.DataFrame, scored_ids: pd.Series, *, id_column: str,
                  account_column: str) -> pd.Series:
    """The account of each scored lead, aligned with ``scored_ids``.

    ``raw`` is the input as read (text, possibly with blank or duplicated ids and stray
    whitespace). Ids are stripped as scoring strips them; for a duplicated id the first row
    wins, as in scoring (the later rows are rejects). Blank accounts are missing.
    """
    ids = raw[id_column].astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
    accounts = raw[account_column].astype(object).map(
        lambda v: (v.strip() or None) if isinstance(v, str) else v)
    table = pd.Series(accounts.to_numpy(), index=pd.Index(ids.to_numpy(), dtype=object))
    table = table[table.index.notna() & ~table.index.duplicated(keep="first")]
    wanted = scored_ids.astype(str).to_numpy()
    return pd.Series(table.reindex(wanted).to_numpy(), index=scored_ids.index, dtype=object)
