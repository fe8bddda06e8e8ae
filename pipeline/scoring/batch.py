"""Batch prediction: every input lead comes out exactly once, scored or rejected with a reason.

Files are streamed in batches (pyarrow), so a file larger than memory is fine; outputs
are written to a temporary file and renamed at the end, so a killed run leaves nothing
that looks complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import NothingScoredError, UserError
from pipeline.inputs.features import FeatureSettings, scoring_features
from pipeline.inputs.reader import (
    ReadOptions,
    atomic_path,
    finish_text,
    shorten,
    sniff_decimal,
    table_format,
    with_row_ids,
)
from pipeline.model.rules import PointsRules
from pipeline.scoring.frame import score_frame, unseen_counts

REJECT_COLUMNS = ["row", "lead_id", "reason"]


@dataclass(frozen=True)
class BatchResult:
    """Scored rows and rejected rows of one batch (their counts add up to the batch size)."""

    scored: pd.DataFrame
    rejects: pd.DataFrame
    unseen: dict[str, int] = field(default_factory=dict)  # scored leads per unseen factor


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
        for reason in batch.rejects["reason"]:
            key = reason.split(":")[0]
            self.reasons[key] = self.reasons.get(key, 0) + 1


def default_settings(rules: PointsRules, id_column: str) -> FeatureSettings:
    """Feature settings when none are given: the id column and the table's missing tokens
    (derived signals from the table's own settings; no event log)."""
    return FeatureSettings(id_column=id_column, missing_values=list(rules.missing_values))


def score_batch(raw: pd.DataFrame, rules: PointsRules, *, id_column: str, first_row: int,
                settings: FeatureSettings | None = None, event_table: pd.DataFrame | None = None,
                seen_ids: set[str] | None = None, reasons: bool = True,
                row_numbers: np.ndarray | None = None) -> BatchResult:
    """Validate and score one batch of raw leads.

    The features come from :func:`pipeline.inputs.features.scoring_features` (``settings``, and the
    per-lead ``event_table`` of the whole file when the table has event factors). Row numbers
    are 1-based data rows (header excluded): ``row_numbers`` when given (one per row of
    ``raw``), else consecutive from ``first_row``.
    """
    if id_column not in raw.columns:
        raise UserError(f"id column {id_column!r} not found in the input",
                        hint=f"columns found: {', '.join(map(str, raw.columns[:20]))}")
    frame = scoring_features(raw, rules, settings or default_settings(rules, id_column),
                             event_table=event_table)
    rows = (np.asarray(row_numbers, dtype=np.int64) if row_numbers is not None
            else np.arange(first_row, first_row + len(frame)))
    reason = np.full(len(frame), "", dtype=object)
    ids = pd.Series(np.array([None if v is None or (not isinstance(v, str) and pd.isna(v))
                              else str(v) for v in frame[id_column]], dtype=object),
                    index=frame.index, dtype=object)
    reason[ids.isna().to_numpy()] = "missing id"
    if seen_ids is not None:
        for i, lead_id in enumerate(ids):
            if lead_id is None or reason[i]:
                continue
            if lead_id in seen_ids:
                reason[i] = f"duplicate id: {lead_id!r} already appeared earlier in the input"
            else:
                seen_ids.add(lead_id)
    absent = [name for name in rules.input_columns() if name not in frame.columns]
    if absent:
        raise UserError(f"the input lacks columns the points table needs: {absent}",
                        hint="score a file with the same columns as the training data")
    for factor in rules.factors:
        if factor.kind != "numeric":
            continue
        values = frame[factor.name]
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values.notna().to_numpy() & numbers.isna().to_numpy()
        for i in np.flatnonzero(bad & (reason == "")):
            reason[i] = (f"unparseable value: column {factor.name!r} holds "
                         f"{shorten(repr(values.iloc[i]))}, not a number")
        as_float = numbers.to_numpy(dtype=float, na_value=np.nan)
        for i in np.flatnonzero(np.isinf(as_float) & (reason == "")):
            reason[i] = (f"infinite value: column {factor.name!r} holds "
                         f"{shorten(repr(values.iloc[i]))}, not a finite number")
        if factor.group == "PAIN":  # behaviour counts (training refuses negative ones)
            for i in np.flatnonzero((as_float < 0) & (reason == "")):
                reason[i] = (f"negative count: column {factor.name!r} holds "
                             f"{shorten(repr(values.iloc[i]))}; counts cannot be negative")
        frame[factor.name] = numbers
    ok = reason == ""
    good = frame.loc[ok]
    scores = score_frame(rules, good, reasons=reasons)  # the spam gate is the table's
    scored = pd.concat([ids.loc[ok].rename(id_column).to_frame(), scores], axis=1)
    rejects = pd.DataFrame({"row": rows[~ok], "lead_id": ids.loc[~ok].to_numpy(),
                            "reason": reason[~ok]})
    # counted on the features (derived and event factors included), scored leads only
    unseen = unseen_counts(rules, good) if len(good) else {}
    return BatchResult(scored.reset_index(drop=True), rejects, unseen)


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


def iter_batches(path: Path, *, batch_size: int, id_column: str | None = None,
                 options: ReadOptions | None = None) -> Iterator[RawBatch]:
    """Yield :class:`RawBatch` es of at most ``batch_size`` rows from a CSV or Parquet file.

    CSV is read with the standard ``csv`` module, record by record (quoted newlines welcome),
    so every record is accounted for: a record with a different number of fields than the
    header becomes a bad row with its position instead of vanishing. Raises
    :class:`UserError` for files that cannot be read at all (not UTF-8, wrong delimiter,
    Parquet that is not Parquet, a header without rows).

    ``options`` (``data.delimiter`` / ``encoding`` / ``decimal``, ``row_id`` for a file
    without ids) are honoured as :func:`pipeline.inputs.reader.read_table` honours them; an ``auto``
    decimal is decided on the first batch and kept for the rest of the file.
    """
    options = options or ReadOptions()
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if table_format(path) == "parquet":
        for batch in _parquet_batches(path, batch_size):
            yield (RawBatch(with_row_ids(batch.frame, batch.rows, path), batch.rows, batch.bad)
                   if options.row_ids else batch)
        return
    yield from _csv_batches(path, batch_size, id_column, options)


def _parquet_batches(path: Path, batch_size: int) -> Iterator[RawBatch]:
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
    for batch in parquet.iter_batches(batch_size=batch_size):
        frame = batch.to_pandas()
        yield RawBatch(frame, np.arange(first, first + len(frame)), [])
        first += len(frame)


def _csv_batches(path: Path, batch_size: int, id_column: str | None,
                 options: ReadOptions) -> Iterator[RawBatch]:
    from pipeline.inputs.reader import resolve_delimiter, resolve_encoding
    from pipeline.inputs.records import csv_records, read_header

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


class _Writer:
    """Append batches to a CSV or Parquet temp file (schema fixed by the first batch)."""

    def __init__(self, path: Path, fmt: str):
        self.path = path
        self.format = fmt
        self._parquet = None
        self._wrote_header = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
            return
        frame.to_csv(self.path, mode="a", header=not self._wrote_header, index=False,
                     lineterminator="\n")
        self._wrote_header = True

    def close(self, empty_columns: list[str]) -> None:
        if self.format == "parquet":
            if self._parquet is None:
                pd.DataFrame(columns=empty_columns).to_parquet(self.path, index=False)
            else:
                self._parquet.close()
        elif not self._wrote_header:
            pd.DataFrame(columns=empty_columns).to_csv(self.path, index=False)


def score_file(rules: PointsRules, input_path: Path, output_path: Path, *,
               rejects_path: Path | None, id_column: str,
               settings: FeatureSettings | None = None,
               event_table: pd.DataFrame | None = None, batch_size: int = 200_000,
               options: ReadOptions | None = None,
               add_columns: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
               row_filter: Callable[[pd.DataFrame], pd.Series] | None = None,
               progress: Callable[[int], None] | None = None, reasons: bool = True
               ) -> ScoringSummary:
    """Stream ``input_path`` through the points table into ``output_path`` (+ rejects).

    Each batch goes through :func:`score_batch` (the one feature builder, then the points
    table); ``event_table`` holds the event features of the whole file when needed;
    ``options`` says how to read the file (:func:`iter_batches`) and ``add_columns`` joins
    the ``data.lookups`` columns onto each batch.

    Every data row of the input ends up exactly once in the output or in the rejects (columns
    ``row, lead_id, reason``, sorted by row), except rows that ``row_filter`` deliberately
    skips (counted in ``summary.skipped``): ``rows == scored + rejected``. Both files are
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
    table_format(Path(output_path))
    summary = ScoringSummary()
    seen: set[str] = set()
    rejects_all: list[pd.DataFrame] = []
    out_columns = [id_column, "points", "fit", "pain", "probability", "sdr_ready"]
    with atomic_path(output_path) as tmp_out:
        writer = _Writer(tmp_out, table_format(Path(output_path)))
        try:
            for batch in iter_batches(input_path, batch_size=batch_size, id_column=id_column,
                                      options=options):
                raw, rows = batch.frame, batch.rows
                if row_filter is not None and len(raw):
                    keep = np.asarray(row_filter(raw), dtype=bool)
                    summary.skipped += int((~keep).sum())
                    raw, rows = raw.loc[keep], rows[keep]
                if add_columns is not None:
                    raw = add_columns(raw)
                result = score_batch(raw, rules, id_column=id_column, settings=settings,
                                     event_table=event_table,
                                     first_row=int(rows[0]) if len(rows) else 1, seen_ids=seen,
                                     reasons=reasons, row_numbers=rows)
                if batch.bad:
                    malformed = pd.DataFrame(batch.bad, columns=REJECT_COLUMNS)
                    result = BatchResult(result.scored, pd.concat(
                        [df for df in (result.rejects, malformed) if len(df)] or [malformed],
                        ignore_index=True), result.unseen)
                if len(result.scored):
                    writer.write(result.scored)
                    out_columns = list(result.scored.columns)
                rejects_all.append(result.rejects)
                summary.add(result, len(raw) + len(batch.bad), result.unseen)
                if progress:
                    progress(summary.rows)
        finally:
            writer.close(out_columns)
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
