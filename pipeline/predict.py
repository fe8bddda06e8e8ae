"""Batch prediction: every input lead comes out exactly once, scored or rejected with a reason.

Files are streamed in batches (pyarrow), so a file larger than memory is fine; outputs
are written to a temporary file and renamed at the end, so a killed run leaves nothing
that looks complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import NothingScoredError, UserError
from pipeline.io import atomic_path, table_format
from pipeline.rules import PointsRules
from pipeline.scoring import score_frame, unseen_counts
from pipeline.serving import derive_missing_signals

REJECT_COLUMNS = ["row", "lead_id", "reason"]


@dataclass(frozen=True)
class BatchResult:
    """Scored rows and rejected rows of one batch (their counts add up to the batch size)."""

    scored: pd.DataFrame
    rejects: pd.DataFrame


@dataclass
class ScoringSummary:
    """Counts for the whole input: rows = scored + rejected."""

    rows: int = 0
    scored: int = 0
    rejected: int = 0
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


def _text_frame(frame: pd.DataFrame, missing_values: list[str]) -> pd.DataFrame:
    tokens = set(missing_values) | {""}
    out = {}
    for column in frame.columns:
        series = frame[column]
        if series.dtype == object or pd.api.types.is_string_dtype(series):
            s = series.astype(object)
            s = s.map(lambda v: v.strip() if isinstance(v, str) else v)
            out[column] = s.where(~s.isin(tokens), None)
        else:
            out[column] = series
    return pd.DataFrame(out, index=frame.index)


def score_batch(raw: pd.DataFrame, rules: PointsRules, *, id_column: str, derived: dict[str, Any],
                first_row: int, seen_ids: set[str] | None = None,
                extra_features: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                reasons: bool = True) -> BatchResult:
    """Validate and score one batch. Row numbers are 1-based data rows (header excluded)."""
    frame = _text_frame(raw, rules.missing_values)
    rows = np.arange(first_row, first_row + len(frame))
    reason = np.full(len(frame), "", dtype=object)
    if id_column not in frame.columns:
        raise UserError(f"id column {id_column!r} not found in the input",
                        hint=f"columns found: {', '.join(map(str, frame.columns[:20]))}")
    ids = frame[id_column].map(lambda v: None if v is None else str(v))
    reason[ids.isna().to_numpy()] = "missing id"
    if seen_ids is not None:
        for i, lead_id in enumerate(ids):
            if lead_id is None or reason[i]:
                continue
            if lead_id in seen_ids:
                reason[i] = f"duplicate id: {lead_id!r} already appeared earlier in the input"
            else:
                seen_ids.add(lead_id)
    if extra_features is not None:
        frame = extra_features(frame)
    frame = derive_missing_signals(frame, rules, derived)
    absent = [f.name for f in rules.factors if f.name not in frame.columns]
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
            reason[i] = f"unparseable value: column {factor.name!r} holds {values.iloc[i]!r}, not a number"
        frame[factor.name] = numbers
    ok = reason == ""
    good = frame.loc[ok]
    scores = score_frame(rules, good, reasons=reasons)
    if derived.get("spam_gate") and "name_spam" in good.columns:
        scores["sdr_ready"] = scores["sdr_ready"].to_numpy() & ~good["name_spam"].eq("yes").to_numpy()
    scored = pd.concat([ids.loc[ok].rename(id_column).to_frame(), scores], axis=1)
    rejects = pd.DataFrame({"row": rows[~ok], "lead_id": ids.loc[~ok].to_numpy(),
                            "reason": reason[~ok]})
    return BatchResult(scored.reset_index(drop=True), rejects)


def iter_batches(path: Path, *, batch_size: int) -> Iterator[tuple[pd.DataFrame, list[tuple[int, str]]]]:
    """Yield (text frame, bad rows as (line, reason)) batches from CSV or Parquet."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if table_format(path) == "parquet":
        with open(path, "rb") as handle:
            if handle.read(4) != b"PAR1":
                raise UserError(f"{path}: not a Parquet file (it starts like a text file)",
                                hint="rename it to .csv if it is CSV")
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=batch_size):
            yield batch.to_pandas(), []
        return
    from pipeline.io import _check_utf8

    _check_utf8(path)
    with open(path, encoding="utf-8") as handle:
        header = handle.readline()
    if header.count(",") == 0 and any(s in header for s in (";", "\t", "|")):
        raise UserError(f"{path}: the header has one column but other delimiters: wrong delimiter",
                        hint="save the file with commas as the delimiter")
    bad_rows: list[tuple[int, str]] = []

    def on_invalid(row: Any) -> str:
        line = row.number if row.number is not None else -1
        bad_rows.append((line, f"malformed row: {row.actual_columns} fields, expected "
                               f"{row.expected_columns}"))
        return "skip"

    read_options = pacsv.ReadOptions(block_size=max(1 << 20, batch_size * 64))
    convert = pacsv.ConvertOptions(strings_can_be_null=False, quoted_strings_can_be_null=False,
                                   column_types=None, auto_dict_encode=False)
    try:
        reader = pacsv.open_csv(path, read_options=read_options,
                                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid,
                                                                 newlines_in_values=True),
                                convert_options=convert)
        schema = reader.schema
        string_schema = pa.schema([pa.field(n, pa.string()) for n in schema.names])
        reader = pacsv.open_csv(path, read_options=read_options,
                                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid,
                                                                 newlines_in_values=True),
                                convert_options=pacsv.ConvertOptions(
                                    column_types=string_schema, strings_can_be_null=False))
        bad_rows.clear()
        for record_batch in reader:
            table = record_batch.to_pandas()
            for start in range(0, len(table), batch_size):
                chunk = table.iloc[start:start + batch_size]
                yield chunk.astype(object), list(bad_rows)
                bad_rows.clear()
        if bad_rows:
            yield pd.DataFrame(columns=schema.names, dtype=object), list(bad_rows)
    except pa.ArrowInvalid as exc:
        raise UserError(f"{path}: cannot read as CSV: {exc}") from None


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


def score_file(rules: PointsRules, input_path: Path, output_path: Path, *, rejects_path: Path | None,
               id_column: str, derived: dict[str, Any], batch_size: int = 200_000,
               extra_features: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
               row_filter: Callable[[pd.DataFrame], pd.Series] | None = None,
               progress: Callable[[int], None] | None = None, reasons: bool = True
               ) -> ScoringSummary:
    """Stream ``input_path`` through the points table into ``output_path`` (+ rejects)."""
    input_path = Path(input_path)
    if not input_path.exists():
        raise UserError(f"{input_path}: file not found")
    if input_path.stat().st_size == 0:
        raise UserError(f"{input_path}: file is empty", hint="expected a header and one row per lead")
    summary = ScoringSummary()
    seen: set[str] = set()
    rejects_all: list[pd.DataFrame] = []
    out_columns = [id_column, "points", "fit", "pain", "probability", "sdr_ready"]
    with atomic_path(output_path) as tmp_out:
        writer = _Writer(tmp_out, table_format(output_path))
        first_row = 1
        for raw, bad in iter_batches(input_path, batch_size=batch_size):
            if row_filter is not None and len(raw):
                raw = raw.loc[row_filter(raw).to_numpy()]
            result = score_batch(raw, rules, id_column=id_column, derived=derived,
                                 first_row=first_row, seen_ids=seen,
                                 extra_features=extra_features, reasons=reasons)
            if bad:
                malformed = pd.DataFrame({"row": [b[0] for b in bad], "lead_id": [None] * len(bad),
                                          "reason": [b[1] for b in bad]})
                result = BatchResult(result.scored, pd.concat([result.rejects, malformed],
                                                              ignore_index=True))
            first_row += len(raw)
            if len(result.scored):
                writer.write(result.scored)
                out_columns = list(result.scored.columns)
            rejects_all.append(result.rejects)
            summary.add(result, len(raw) + len(bad), unseen_counts(rules, raw) if len(raw) and
                        all(f.name in raw.columns for f in rules.factors) else {})
            if progress:
                progress(summary.rows)
        writer.close(out_columns)
        rejects = (pd.concat(rejects_all, ignore_index=True) if rejects_all
                   else pd.DataFrame(columns=REJECT_COLUMNS))
        if summary.scored == 0:
            raise NothingScoredError(
                f"{input_path}: no lead could be scored ({summary.rejected} rejected: "
                f"{_top_reasons(summary)})", hint="see the rejects for each row's reason")
        if rejects_path is not None:
            with atomic_path(rejects_path) as tmp_rej:
                rejects.to_csv(tmp_rej, index=False, lineterminator="\n")
    return summary


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
