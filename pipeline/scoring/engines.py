"""Scoring engines beyond pandas: DuckDB (out of core, one machine) and Spark (a cluster).

Both score with the points table's own SQL (the per-factor CASE and the totals of
:func:`pipeline.exports.sql.export_sql`, via
:func:`~pipeline.exports.sql.sql_factor_points` and
:func:`~pipeline.exports.sql.sql_score_totals`) after cleaning the input the way the pandas
engine
(:func:`pipeline.scoring.batch.score_file`) does:

* every text value is stripped of surrounding whitespace (Python's ``str.strip`` set), and
  ``""`` or a configured missing token becomes NULL;
* a row is rejected, with a reason, when its id is missing, when its id already appeared
  on an earlier row, or when a numeric factor holds text that is not a number (checked with
  one regular expression plus ``try_cast``, so ``"1_000"``, ``"1d"`` or ``"nan"`` are
  rejected as pandas rejects them);
* everything else is scored: scored + rejected = input rows, the same leads and the same
  points as the pandas engine. The spam gate (``rules.spam_gate``: the points table's) and
  grades apply too.

How the work is kept small (the results are those of cleaning and scoring row by row):

* categorical factors: most raw values are exactly a level. One hash join on a small table of
  the factor's levels (those that are their own cleaned text) gives them their points with
  no cleaning at all; only the other values (padded text, missing tokens, unseen levels,
  non-text values, taken as canonical text: ``1.0`` -> ``'1'``) are cleaned row by row and
  looked up again on the cleaned text. Same points as ``export_sql``'s CASE, without up to
  200 WHENs per row; the rows carry unseen flags for the unseen counts;
* numeric factors: one CASE per column over DOUBLE values, missing tokens compared as
  numbers before as text (no value is cast to text); numeric text that already reads as a
  number (one regular expression) needs no stripping;
* DuckDB trims text only when its first or last character could be whitespace: trimming
  with the 25-character set is slow and rarely needed;
* duplicate ids: distinct 64-bit hashes of the ids are counted first; only when one repeats
  does ``GROUP BY id HAVING count(*) > 1`` find the repeated ids with their first rows, and
  only the later rows of those ids are marked (no window sorting every row).

DuckDB scans the file once into a narrow table (row, id, reason, fit, pain, gate, unseen
flags), counts on it and COPYs the scored and rejected rows out of it. Spark runs one job
counting repeated ids, one writing the scores with every count observed on the way
(``Observation``: no counting pass) and one writing the rejects when asked for; a single
Parquet file is numbered by ``_metadata.row_index``, not by a counting pass. Observing the
unseen counts between the categorical and the numeric work also cuts Spark's generated code
in two methods each small enough for the JIT compiler (a method over 8000 bytes of bytecode
runs interpreted, several times slower): very wide points tables can still go over, for
which ``-XX:-DontCompileHugeMethods`` in the driver's Java options is the remedy.

What they do not do (use ``--engine pandas``): derive profile signals from raw columns
(``email_domain_type``, ``name_spam``, ``seniority``), aggregate the event log into behaviour
features, and write reason codes. The input must already hold every factor column the points
table reads; :func:`score_with_engine` names the missing ones. Rows come out in no particular
order. A malformed CSV row (wrong number of fields) stops the DuckDB engine with an error
rather than being listed as a reject.

Spark runs on ``local[2]`` unless ``LEAD_SCORING_SPARK_MASTER`` (or ``master=``) names
another master; with a ``local`` master the part files are gathered into the one output file,
otherwise ``output`` is written as a Spark directory (HDFS/S3 paths welcome).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.inputs.reader import (
    read_options,
)
from pipeline.model.rules import PointsRules
from pipeline.scoring.batch import ScoringSummary
from pipeline.scoring.duckdb_engine import score_duckdb
from pipeline.scoring.spark_engine import score_spark

ENGINES = ("pandas", "duckdb", "spark")
SCORE_COLUMNS = ["points", "fit", "pain", "probability", "sdr_ready"]


def score_with_engine(engine: str, cfg: Any, rules: PointsRules, input_path: Path, output: Path,
                      rejects: Path | None, *, master: str | None = None) -> ScoringSummary:
    """Score ``input_path`` into ``output`` (+ ``rejects``) with ``engine``; counts as pandas.

    ``cfg`` (the model's config) supplies ``data.id_column`` and the feature settings; the
    spam gate is the points table's (``rules.spam_gate``). The pandas engine derives the
    profile signals; event features must be in the file (``lead-scoring score`` adds them
    from the event log).
    """
    id_column = cfg.data.id_name
    options = read_options(cfg)
    if engine == "pandas":
        from pipeline.inputs.features import FeatureSettings
        from pipeline.scoring.batch import score_file

        return score_file(rules, Path(input_path), Path(output), rejects_path=rejects,
                          id_column=id_column, settings=FeatureSettings.from_config(cfg),
                          options=options)
    if engine == "duckdb":
        return score_duckdb(rules, input_path, output, rejects, id_column=id_column,
                            options=options)
    if engine == "spark":
        return score_spark(rules, input_path, output, rejects, id_column=id_column,
                           master=master, options=options)
    raise UserError(f"unknown engine {engine!r}", hint=f"use one of {', '.join(ENGINES)}")


