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

from pipeline.errors import NothingScoredError, UserError
from pipeline.inputs.features import FeatureSettings, signal_settings
from pipeline.inputs.raw_tables import check_data_file
from pipeline.inputs.reader import ReadOptions, atomic_path, table_format
from pipeline.model.rules import PointsRules
from pipeline.scoring.accounts import account_rollup, lead_accounts
from pipeline.scoring.arrow_csv import CarefulReadNeeded
from pipeline.scoring.batch_scoring import (
    BatchResult,
    default_settings,
    id_text,
    quoted,
    score_batch,
)
from pipeline.scoring.ids import SeenIds
from pipeline.scoring.input_batches import RawBatch, iter_batches
from pipeline.scoring.output import ScoresWriter

# the names of the split-off modules stay importable from here
__all__ = ["REJECT_COLUMNS", "BatchResult", "RawBatch", "ScoringSummary", "account_rollup",
           "default_settings", "id_text", "iter_batches", "lead_accounts", "quoted",
           "read_columns", "score_batch", "score_file"]

REJECT_COLUMNS = ["row", "lead_id", "reason"]


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



def read_columns(rules: PointsRules, settings: FeatureSettings | None, id_column: str
                 ) -> list[str]:
    """The input columns scoring reads: the id, every factor (or gate) column and the raw
    columns of the derived signals (not the creation time: a file's event features come
    made, as ``score_file(event_table=...)``)."""
    settings = settings or default_settings(rules, id_column)
    return [id_column, *rules.input_columns(), *signal_settings(rules, settings).raw_columns()]


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
    input_path = check_data_file(Path(input_path), missing_hint="check the --input path")
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
            except UserError as error:  # every refusal of the file names it
                if error.message.startswith(str(input_path)):
                    raise
                raise type(error)(f"{input_path}: {error.message}", hint=error.hint) from None
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
