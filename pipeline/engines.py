"""Scoring engines beyond pandas: DuckDB (out of core, one machine) and Spark (a cluster).

Both score with the points table's own SQL (the per-factor CASE and the totals of
:func:`pipeline.export.export_sql`, via :func:`~pipeline.export.sql_factor_points` and
:func:`~pipeline.export.sql_score_totals`) after cleaning the input the way the pandas engine
(:func:`pipeline.predict.score_file`) does:

* every text value is stripped of surrounding whitespace (Python's ``str.strip`` set), and
  ``""`` or a configured missing token becomes NULL;
* a row is rejected, with a reason, when its id is missing, when its id already appeared
  on an earlier row, or when a numeric factor holds text that is not a number (checked with
  one regular expression plus ``try_cast``, so ``"1_000"``, ``"1d"`` or ``"nan"`` are
  rejected as pandas rejects them);
* everything else is scored: scored + rejected = input rows, the same leads and the same
  points as the pandas engine. The spam gate (``derived.spam_gate``) and grades apply too.

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

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import NothingScoredError, UserError
from pipeline.export import (
    check_sql_rules,
    sql_factor_points,
    sql_identifier,
    sql_score_totals,
    sql_string,
)
from pipeline.io import atomic_path, table_format, write_text_atomic
from pipeline.predict import REJECT_COLUMNS, ScoringSummary
from pipeline.rules import FactorRules, PointsRules
from pipeline.validate import PY_WHITESPACE

ENGINES = ("pandas", "duckdb", "spark")
SPARK_MASTER_ENV = "LEAD_SCORING_SPARK_MASTER"
DEFAULT_SPARK_MASTER = "local[2]"
WHITESPACE = PY_WHITESPACE  # what Python's str.strip() removes, as training strips it
# what pandas.to_numeric accepts as a number (after stripping), and nothing else
NUMBER_PATTERN = (r"^[+-]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
                  r"|[iI][nN][fF]([iI][nN][iI][tT][yY])?)$")
SCORE_COLUMNS = ["points", "fit", "pain", "probability", "sdr_ready"]
REASON_KINDS = ("missing id", "duplicate id", "unparseable value")
# the same, anchored at the very end (Java's ``$`` also matches before a final line break):
# text it matches has no surrounding whitespace
_PLAIN_NUMBER = NUMBER_PATTERN[:-1] + r"\z"
_ROW, _REASON, _GATE = "__row", "__reason", "__spam"
# columns of a levels table: the level, its points, whether it is its own cleaned text
_KEY, _POINTS, _CLEAN = "__ls_key", "__ls_points", "__ls_clean"


def score_with_engine(engine: str, cfg: Any, rules: PointsRules, input_path: Path, output: Path,
                      rejects: Path | None, *, master: str | None = None) -> ScoringSummary:
    """Score ``input_path`` into ``output`` (+ ``rejects``) with ``engine``; counts as pandas.

    ``cfg`` supplies ``data.id_column`` and ``derived.spam_gate``.
    """
    spam_gate = bool(getattr(getattr(cfg, "derived", None), "spam_gate", False))
    id_column = cfg.data.id_column
    if engine == "pandas":
        from pipeline.predict import score_file

        return score_file(rules, Path(input_path), Path(output), rejects_path=rejects,
                          id_column=id_column, derived=cfg.derived.model_dump(mode="json"))
    if engine == "duckdb":
        return score_duckdb(rules, input_path, output, rejects, id_column=id_column,
                            spam_gate=spam_gate)
    if engine == "spark":
        return score_spark(rules, input_path, output, rejects, id_column=id_column,
                           spam_gate=spam_gate, master=master)
    raise UserError(f"unknown engine {engine!r}", hint=f"use one of {', '.join(ENGINES)}")


def _check_input(input_path: Path) -> Path:
    """``input_path`` as a Path, when it is a non-empty CSV or Parquet file."""
    input_path = Path(input_path)
    if not input_path.exists():
        raise UserError(f"{input_path}: file not found")
    if input_path.stat().st_size == 0:
        raise UserError(f"{input_path}: file is empty",
                        hint="expected a header and one row per lead")
    table_format(input_path)
    return input_path


def required_columns(rules: PointsRules, id_column: str) -> list[str]:
    """Columns an SQL engine needs in the input: the id and every factor."""
    return [id_column, *rules.factor_names()]


def check_columns(rules: PointsRules, columns: Sequence[str], *, id_column: str, engine: str,
                  source: Path) -> None:
    """Raise a :class:`UserError` naming each column the SQL engines cannot derive."""
    present = set(columns)
    if id_column not in present:
        raise UserError(f"{source}: id column {id_column!r} not found in the input",
                        hint=f"columns found: {', '.join(list(columns)[:20])}")
    missing = [c for c in rules.factor_names() if c not in present]
    if missing:
        raise UserError(
            f"{source}: the {engine} engine needs every factor column in the input; missing: "
            f"{', '.join(missing)}",
            hint="derived signals and event features are computed by --engine pandas only: "
                 "score with --engine pandas, or add these columns to the file first")


# ------------------------------------------------------------------------------ shared SQL


def _text_type(dialect: str) -> str:
    """The dialect's name of the text type."""
    return "VARCHAR" if dialect == "duckdb" else "STRING"


def _is_text_type(sql_type: str) -> bool:
    """Whether a column of ``sql_type`` holds text (cleaned by stripping) or not."""
    kind = sql_type.upper()
    return any(k in kind for k in ("VARCHAR", "STRING", "CHAR", "TEXT"))


def _strip_expr(value: str, dialect: str) -> str:
    """``value`` without surrounding whitespace (Python's ``str.strip`` set).

    DuckDB's trim with the 25-character set is slow, so there only text whose first or last
    character could be whitespace (below ``'!'`` or beyond ASCII, compared as bytes) is
    trimmed; Spark's trim is cheaper than that test.
    """
    chars = sql_string(WHITESPACE, dialect=dialect)
    if dialect != "duckdb":
        return f"trim(BOTH {chars} FROM {value})"
    low, high = sql_string("!", dialect=dialect), sql_string(chr(128), dialect=dialect)
    last = f"right({value}, 1)"
    maybe = f"{value} < {low} OR {value} >= {high} OR {last} < {low} OR {last} >= {high}"
    return f"(CASE WHEN {maybe} THEN trim({value}, {chars}) ELSE {value} END)"


def _strip_if_text(value: str, sql_type: str, dialect: str) -> str:
    """``value`` stripped when its column holds text, as it is otherwise."""
    return _strip_expr(value, dialect) if _is_text_type(sql_type) else value


def _tokens(rules: PointsRules, dialect: str) -> str:
    """The missing tokens (``''`` first) as an SQL list."""
    return ", ".join(sql_string(t, dialect=dialect)
                     for t in dict.fromkeys(["", *rules.missing_values]))


def _text_expr(value: str, rules: PointsRules, dialect: str) -> str:
    """NULL when the (already stripped) text ``value`` is empty or a missing token."""
    return f"(CASE WHEN {value} IN ({_tokens(rules, dialect)}) THEN NULL ELSE {value} END)"


def _canonical_text_expr(value: str, sql_type: str, dialect: str) -> str:
    """A non-text value as the text the reference matches levels on (``1.0`` -> ``'1'``).

    ``abs`` is tested before ``floor``: Spark's ``floor`` of an infinity, or of a number
    beyond BIGINT, raises under ANSI mode.
    """
    text = _text_type(dialect)
    kind = sql_type.upper()
    if any(k in kind for k in ("DOUBLE", "FLOAT", "REAL", "DECIMAL")):
        return (f"(CASE WHEN abs({value}) < 1e15 AND {value} = floor({value}) "
                f"THEN CAST(CAST({value} AS BIGINT) AS {text}) ELSE CAST({value} AS {text}) END)")
    return f"CAST({value} AS {text})"


def _categoricals(rules: PointsRules) -> list[FactorRules]:
    """The categorical factors, in table order (``i`` in ``__ls_p<i>`` and friends)."""
    return [f for f in rules.factors if f.kind == "categorical"]


def _levels_sql(factor: FactorRules, rules: PointsRules, dialect: str) -> str:
    """A categorical factor's levels as a small table: (key, points, clean).

    ``clean`` says the level is its own cleaned text (no surrounding whitespace, not a
    missing token): raw text equal to such a level needs no cleaning at all.
    """
    if not factor.levels:
        return (f"SELECT CAST(NULL AS {_text_type(dialect)}) AS {_KEY}, CAST(NULL AS INT) "
                f"AS {_POINTS}, false AS {_CLEAN} WHERE false")
    rows = ", ".join(f"({sql_string(level, dialect=dialect)}, {int(points)})"
                     for level, points in sorted(factor.levels.items()))
    clean = f"coalesce({_text_expr(_strip_expr(_KEY, dialect), rules, dialect)} = {_KEY}, false)"
    return (f"SELECT {_KEY}, {_POINTS}, {clean} AS {_CLEAN} "
            f"FROM (VALUES {rows}) AS levels({_KEY}, {_POINTS})")


def _clean_id(id_column: str, rules: PointsRules, types: dict[str, str], dialect: str) -> str:
    """The id over its stripped value: NULL when empty or a missing token; non-text as text."""
    ident = sql_identifier(id_column, dialect=dialect)
    return (_text_expr(ident, rules, dialect) if _is_text_type(types[id_column])
            else f"CAST({ident} AS {_text_type(dialect)})")


def _ids_sql(rules: PointsRules, types: dict[str, str], *, id_column: str, dialect: str,
             table: str) -> str:
    """Row number and cleaned id of every row of ``table`` (the rows the duplicate check reads)."""
    ident = sql_identifier(id_column, dialect=dialect)
    return (f"SELECT {_ROW}, {_clean_id(id_column, rules, types, dialect)} AS {ident} "
            f"FROM (SELECT {_ROW}, {_strip_if_text(ident, types[id_column], dialect)} AS {ident} "
            f"FROM {table}) AS stripped_ids")


def _repeated_ids_sql(id_column: str, dialect: str, table: str) -> str:
    """How many 64-bit hashes of the non-NULL ids of ``table`` repeat (0: every id is unique).

    Grouping hashes is much cheaper than grouping the id text; a repeated hash (a repeated
    id, or very rarely a collision) only sends the exact check to work. Spark distributes
    the hashes first, so that the grouping runs after the shuffle, in parallel.
    """
    ident = sql_identifier(id_column, dialect=dialect)
    hashes = (f"SELECT hash({ident}) AS h FROM {table} WHERE {ident} IS NOT NULL"
              if dialect == "duckdb" else
              f"SELECT xxhash64({ident}) AS h FROM {table} WHERE {ident} IS NOT NULL "
              "DISTRIBUTE BY h")
    return (f"SELECT count(*) AS n FROM (SELECT h FROM ({hashes}) AS hashes GROUP BY h "
            "HAVING count(*) > 1) AS repeated")


def _duplicates_sql(id_column: str, dialect: str, table: str) -> str:
    """Each id that appears on more than one row of ``table``, with its first row."""
    ident = sql_identifier(id_column, dialect=dialect)
    return (f"SELECT {ident}, min({_ROW}) AS __first FROM {table} WHERE {ident} IS NOT NULL "
            f"GROUP BY {ident} HAVING count(*) > 1")


def _duplicate_reason(id_expr: str) -> str:
    """The reject reason of a later row of a repeated id (the pandas engine's words)."""
    return (f"'duplicate id: ' || chr(39) || {id_expr} || chr(39) "
            f"|| ' already appeared earlier in the input'")


def _regex_test(value: str, pattern: str, dialect: str) -> str:
    """Whether the whole of ``value`` matches ``pattern``."""
    lit = sql_string(pattern, dialect=dialect)
    return (f"regexp_full_match({value}, {lit})" if dialect == "duckdb"
            else f"{value} RLIKE {lit}")


@dataclass(frozen=True)
class _CheckedQuery:
    """The SQL that gives every input row as (row, id, reason, fit, pain[, gate], unseen...).

    Built in layers so that no costly expression runs twice on a row. The categorical front
    strips the id (and gate), looks up raw text that is exactly a clean level, cleans and
    looks up the other values, and gives the points and unseen flags (``__ls_u<i>``: the row
    holds an unseen level of the i-th categorical factor). The numeric back cleans and
    parses numeric text, gives the reason, and adds up the points. The reason is NULL
    (scored), 'missing id' or 'unparseable value: ...'; duplicate ids are marked afterwards.
    ``levels`` names the :func:`_levels_sql` table of each categorical factor.
    """

    rules: PointsRules
    types: dict[str, str]
    levels: Sequence[str]
    id_column: str
    dialect: str
    gate: bool

    def __post_init__(self) -> None:
        check_sql_rules(self.rules, dialect=self.dialect)  # before any work on the rows

    def sql(self, table: str) -> str:
        """The whole query over ``table`` (DuckDB; Spark runs the front and back apart)."""
        return self.back(f"({self.front(table)}) AS c")

    def front(self, table: str) -> str:
        """Rows of ``table`` with a clean id, gate, categorical points and unseen flags
        (numeric columns passed on as they are)."""
        return self._layers(self.stripped(table), self.cleaned, self.looked_up, self.scored)

    def back(self, source: str) -> str:
        """Rows of the front with numbers parsed, reasons and points added up.

        Spark observes the unseen counts between the two, which also cuts the generated code
        into methods small enough for the JIT compiler (8000 bytes).
        """
        return self._layers(self.tested(source), self.numbers, self.parsed, self.summed)

    @staticmethod
    def _layers(first: str, *steps: Callable[[str], str]) -> str:
        """``first`` wrapped by each step in turn, as the FROM of the next."""
        layer = first
        for step in steps:
            layer = step(f"({layer}) AS c")
        return layer

    def q(self, name: str) -> str:
        """A column name quoted for the dialect."""
        return sql_identifier(name, dialect=self.dialect)

    @property
    def cats(self) -> list[FactorRules]:
        """Categorical factors: their points come from the levels tables."""
        return _categoricals(self.rules)

    @property
    def numerics(self) -> list[FactorRules]:
        """Numeric factors: their points come from a CASE over DOUBLE values."""
        return [f for f in self.rules.factors if f.kind == "numeric"]

    @property
    def texts(self) -> list[FactorRules]:
        """Numeric factors held as text (every column of a CSV): parsed row by row."""
        return [f for f in self.numerics if _is_text_type(self.types[f.name])]

    @property
    def passed(self) -> list[str]:
        """Columns every layer of the back passes on."""
        return [_ROW, self.q(self.id_column), *([_GATE] if self.gate else []),
                *(f"__ls_{x}{i}" for i in range(len(self.cats)) for x in "pu")]

    def _broadcast(self, prefix: str) -> str:
        """Spark's hint to broadcast the levels tables (small) into the joins."""
        if self.dialect != "spark" or not self.cats:
            return ""
        return f"/*+ BROADCAST({', '.join(f'{prefix}{i}' for i in range(len(self.cats)))}) */ "

    # -- categorical front

    def stripped(self, table: str) -> str:
        """Strip the id and gate text; categorical text that is exactly a clean level gets
        its points here (``__ls_e<i>``), by a join on the small levels table."""
        d, ident = self.dialect, self.q(self.id_column)
        cols = [f"t.{_ROW}", f"{_strip_if_text('t.' + ident, self.types[self.id_column], d)} "
                             f"AS {ident}"]
        cols += [f"t.{self.q(f.name)}" for f in self.numerics]
        joins = []
        for i, (f, levels) in enumerate(zip(self.cats, self.levels, strict=True)):
            sql_type, col = self.types[f.name], f"t.{self.q(f.name)}"
            key = col if _is_text_type(sql_type) else _canonical_text_expr(col, sql_type, d)
            joins.append(f"LEFT JOIN {levels} AS e{i} ON e{i}.{_KEY} = {key} AND e{i}.{_CLEAN}")
            cols += [f"{key} AS __ls_k{i}", f"e{i}.{_POINTS} AS __ls_e{i}"]
        if self.gate:
            spam = self.q("name_spam")
            cols.append(f"{_strip_if_text('t.' + spam, self.types['name_spam'], d)} AS {spam}")
        return f"SELECT {self._broadcast('e')}{', '.join(cols)}\nFROM {table} AS t\n" + \
            "\n".join(joins)

    def cleaned(self, source: str) -> str:
        """NULL for an empty or missing-token id; the gate; each categorical value not found
        among the clean levels, cleaned (``__ls_v<i>``)."""
        d, rules, ident = self.dialect, self.rules, self.q(self.id_column)
        cols = [_ROW, f"{_clean_id(self.id_column, rules, self.types, d)} AS {ident}",
                *(self.q(f.name) for f in self.numerics)]
        for i, f in enumerate(self.cats):
            value = (_text_expr(_strip_expr(f"__ls_k{i}", d), rules, d)
                     if _is_text_type(self.types[f.name]) else f"__ls_k{i}")
            cols += [f"__ls_e{i}", f"(CASE WHEN __ls_e{i} IS NULL THEN {value} END) AS __ls_v{i}"]
        if self.gate:
            spam = _text_expr(self.q("name_spam"), rules, d)
            cols.append(f"coalesce({spam} = 'yes', false) AS {_GATE}")
        return f"SELECT {', '.join(cols)}\nFROM {source}"

    def looked_up(self, source: str) -> str:
        """The points of each cleaned categorical value's level, if any (``__ls_l<i>``)."""
        joins = [f"LEFT JOIN {levels} AS l{i} ON l{i}.{_KEY} = c.__ls_v{i}"
                 for i, levels in enumerate(self.levels)]
        cols = ["c.*", *(f"l{i}.{_POINTS} AS __ls_l{i}" for i in range(len(joins)))]
        return (f"SELECT {self._broadcast('l')}{', '.join(cols)}\nFROM {source}\n"
                + "\n".join(joins))

    def scored(self, source: str) -> str:
        """Categorical points and unseen flags, as ``export_sql``'s CASE: missing (NULL or a
        missing token), then the level's points, else the unseen points."""
        cols = [_ROW, self.q(self.id_column), *([_GATE] if self.gate else []),
                *(self.q(f.name) for f in self.numerics)]
        for i, f in enumerate(self.cats):
            v = f"__ls_v{i}"
            other = (f"CASE WHEN {v} IS NULL OR {v} IN ({_tokens(self.rules, self.dialect)}) "
                     f"THEN {int(f.missing_points)} "
                     f"ELSE coalesce(__ls_l{i}, {int(f.unseen_points)}) END")
            cols.append(f"coalesce(__ls_e{i}, {other}) AS __ls_p{i}")
            cols.append(f"({v} IS NOT NULL AND __ls_l{i} IS NULL) AS __ls_u{i}")
        return f"SELECT {', '.join(cols)}\nFROM {source}"

    # -- numeric back

    def tested(self, source: str) -> str:
        """Numeric text that already reads as a number has no whitespace to strip: the
        regular expression marks it (``__ls_plain<i>``) so that only the rest is stripped."""
        cols = [*self.passed, *(self.q(f.name) for f in self.numerics)]
        cols += [f"{_regex_test(self.q(f.name), _PLAIN_NUMBER, self.dialect)} AS __ls_plain{i}"
                 for i, f in enumerate(self.texts)]
        return f"SELECT {', '.join(cols)}\nFROM {source}"

    def numbers(self, source: str) -> str:
        """Numbers as DOUBLE; numeric text stripped, NULL when empty or a missing token, and
        whether it is a number pandas would read (``__ls_ok<i>``)."""
        d, rules = self.dialect, self.rules
        cols = list(self.passed)
        for f in self.numerics:
            col = self.q(f.name)
            if f not in self.texts:
                cols.append(f"CAST({col} AS DOUBLE) AS {col}")
                continue
            i = self.texts.index(f)
            stripped = f"(CASE WHEN __ls_plain{i} THEN {col} ELSE {_strip_expr(col, d)} END)"
            number = _regex_test(_text_expr(_strip_expr(col, d), rules, d), NUMBER_PATTERN, d)
            cols.append(f"{_text_expr(stripped, rules, d)} AS {col}")
            cols.append(f"(CASE WHEN __ls_plain{i} THEN true ELSE {number} END) AS __ls_ok{i}")
        return f"SELECT {', '.join(cols)}\nFROM {source}"

    def parsed(self, source: str) -> str:
        """Numeric text as DOUBLE, and each row's reason."""
        d, ident = self.dialect, self.q(self.id_column)
        cols, checks = list(self.passed), []
        for f in self.numerics:
            col = self.q(f.name)
            if f not in self.texts:
                cols.append(col)
                continue
            i = self.texts.index(f)
            cols.append(f"(CASE WHEN __ls_ok{i} THEN try_cast({col} AS DOUBLE) END) AS {col}")
            holds = sql_string(f"unparseable value: column {f.name!r} holds ", dialect=d)
            message = f"{holds} || chr(39) || {col} || chr(39) || ', not a number'"
            checks.append(f"WHEN {col} IS NOT NULL AND NOT __ls_ok{i} THEN {message}")
        reason = f"CASE WHEN {ident} IS NULL THEN 'missing id' {' '.join(checks)} ELSE NULL END"
        return f"SELECT {', '.join(cols)}, {reason} AS {_REASON}\nFROM {source}"

    def summed(self, source: str) -> str:
        """fit and pain: the sums of the factors' points by group."""
        points = {f.name: f"__ls_p{i}" for i, f in enumerate(self.cats)}
        points.update({f.name: sql_factor_points(f, self.rules, dialect=self.dialect,
                                                 column=self.q(f.name), double=True)
                       for f in self.numerics})

        def group_sum(group: str) -> str:
            return " + ".join(points[f.name] for f in self.rules.factors
                              if f.group == group) or "0"

        cols = [_ROW, self.q(self.id_column), _REASON, f"{group_sum('FIT')} AS fit",
                f"{group_sum('PAIN')} AS pain", *([_GATE] if self.gate else []),
                *(f"__ls_u{i}" for i in range(len(self.cats)))]
        return f"SELECT {', '.join(cols)}\nFROM {source}"


def _unseen_columns(rules: PointsRules) -> dict[str, str]:
    """Factor name -> the flag column of ``checked`` saying a row holds an unseen level."""
    return {f.name: f"__ls_u{i}" for i, f in enumerate(_categoricals(rules))}


def _grade_expr(rules: PointsRules, dialect: str) -> str | None:
    """The grade of ``points`` (best grade first), or None without grades."""
    if not rules.grades:
        return None
    cuts = sorted(rules.grades, key=lambda g: -g["min_points"])
    whens = " ".join(f"WHEN points >= {float(g['min_points'])!r} THEN "
                     f"{sql_string(str(g['grade']), dialect=dialect)}" for g in cuts)
    return f"CASE {whens} ELSE {sql_string(str(cuts[-1]['grade']), dialect=dialect)} END"


def _scored_select(rules: PointsRules, *, id_column: str, dialect: str, gate: bool,
                   table: str) -> str:
    """Output columns as the pandas engine writes them, for the rows of ``table`` with no
    reject reason: points, probability and sdr_ready from fit and pain."""
    ident = sql_identifier(id_column, dialect=dialect)
    carry = [_GATE] if gate else []
    inner = (f"    SELECT {', '.join([ident, *carry])}, fit, pain FROM {table} "
             f"WHERE {_REASON} IS NULL\n")
    scores = sql_score_totals(rules, inner, dialect=dialect, id_column=id_column, carry=carry)
    sdr = f"s.sdr_ready AND NOT s.{_GATE}" if gate else "s.sdr_ready"
    grade = _grade_expr(rules, dialect)
    cols = [f"s.{ident}", "s.points", "s.fit", "s.pain", "s.probability", f"{sdr} AS sdr_ready"]
    if grade:
        cols.append(f"{grade.replace('points', 's.points')} AS grade")
    return f"SELECT {', '.join(cols)}\nFROM ({scores}) AS s"


def _summary(rows: int, scored: int, sdr_ready: int, reasons: dict[str, int],
             unseen: dict[str, int]) -> ScoringSummary:
    """The counts as the pandas engine reports them (zero counts left out)."""
    return ScoringSummary(rows=rows, scored=scored, rejected=rows - scored, sdr_ready=sdr_ready,
                          unseen={k: v for k, v in unseen.items() if v},
                          reasons={k: v for k, v in reasons.items() if v})


def _nothing_scored(source: Path, summary: ScoringSummary) -> NothingScoredError:
    """The error for an input whose every row was rejected, with the reasons."""
    top = ", ".join(f"{k}: {v}" for k, v in sorted(summary.reasons.items(), key=lambda kv: -kv[1]))
    return NothingScoredError(f"{source}: no lead could be scored ({summary.rejected} rejected: "
                              f"{top})", hint="see the rejects for each row's reason")


# ------------------------------------------------------------------------------ DuckDB


def score_duckdb(rules: PointsRules, input_path: Path, output: Path, rejects: Path | None, *,
                 id_column: str, spam_gate: bool = False, threads: int | None = None,
                 memory_limit: str | None = None) -> ScoringSummary:
    """Score with DuckDB straight over the CSV/Parquet file (out of core); COPY the output.

    Parquet rows are numbered by ``file_row_number``; a CSV is first loaded into a temporary
    table (spilled to disk beyond ``memory_limit``) so that ``rowid`` gives file order. One
    scan of the rows fills the narrow table ``checked``; the rest reads only that.
    """
    source = _check_input(input_path)
    with tempfile.TemporaryDirectory(prefix="lead-scoring-duckdb-") as tmp:
        con = _duckdb_connect(tmp, threads=threads, memory_limit=memory_limit)
        try:
            types = _duckdb_source(con, source)
            check_columns(rules, list(types), id_column=id_column, engine="duckdb",
                          source=source)
            gate = spam_gate and "name_spam" in types
            query = _CheckedQuery(rules, types, _duckdb_levels(con, rules), id_column,
                                  "duckdb", gate)
            con.execute(f"CREATE TEMP TABLE checked AS {query.sql('src')}")
            _duckdb_mark_duplicates(con, id_column)
            rows, scored, reasons, unseen = _duckdb_counts(con, rules)
            if scored == 0:
                raise _nothing_scored(source, _summary(rows, 0, 0, reasons, unseen))
            sdr_ready = _duckdb_write_scores(con, _scored_select(
                rules, id_column=id_column, dialect="duckdb", gate=gate, table="checked"),
                Path(output))
            if rejects is not None:
                _duckdb_write_rejects(con, id_column, Path(rejects))
        finally:
            con.close()
    return _summary(rows, scored, sdr_ready, reasons, unseen)


def _duckdb_connect(tmp: str, *, threads: int | None, memory_limit: str | None) -> Any:
    """An in-memory DuckDB that spills to ``tmp`` beyond the memory limit."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_string(memory_limit, dialect='duckdb')}")
    con.execute(f"SET temp_directory = {sql_string(tmp, dialect='duckdb')}")
    return con


def _duckdb_source(con: Any, source: Path) -> dict[str, str]:
    """Create the view ``src`` (the input plus ``__row``, 1-based file order); its column types."""
    import duckdb

    path = sql_string(str(source), dialect="duckdb")
    try:
        if table_format(source) == "parquet":
            con.execute(f"CREATE VIEW src AS SELECT *, file_row_number + 1 AS {_ROW} "
                        f"FROM read_parquet({path}, file_row_number = true)")
        else:
            con.execute(f"CREATE TABLE src_table AS SELECT * FROM read_csv({path}, "
                        "header = true, all_varchar = true, auto_detect = true)")
            con.execute(f"CREATE VIEW src AS SELECT *, rowid + 1 AS {_ROW} FROM src_table")
        described = con.execute("DESCRIBE src").fetchall()
    except duckdb.Error as exc:
        raise UserError(f"{source}: DuckDB cannot read the file: {exc}",
                        hint="check the file, or score it with --engine pandas") from None
    return {row[0]: str(row[1]) for row in described}


def _duckdb_levels(con: Any, rules: PointsRules) -> list[str]:
    """Create each categorical factor's levels table (a few rows); their names."""
    names = []
    for i, factor in enumerate(_categoricals(rules)):
        names.append(f"__ls_levels{i}")
        con.execute(f"CREATE TEMP TABLE {names[-1]} AS {_levels_sql(factor, rules, 'duckdb')}")
    return names


def _duckdb_mark_duplicates(con: Any, id_column: str) -> None:
    """Give every row whose id appeared on an earlier row of ``checked`` the duplicate reason."""
    if not con.execute(_repeated_ids_sql(id_column, "duckdb", "checked")).fetchone()[0]:
        return
    ident = sql_identifier(id_column, dialect="duckdb")
    con.execute(f"UPDATE checked SET {_REASON} = {_duplicate_reason('checked.' + ident)} "
                f"FROM ({_duplicates_sql(id_column, 'duckdb', 'checked')}) AS d "
                f"WHERE checked.{ident} = d.{ident} AND checked.{_ROW} > d.__first")


def _duckdb_counts(con: Any, rules: PointsRules
                   ) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """(rows, rows scored, rejects per kind of reason, unseen per factor) of ``checked``."""
    unseen = _unseen_columns(rules)
    counts = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {_REASON} IS NULL)"
        + "".join(f", count(*) FILTER (WHERE {flag})" for flag in unseen.values())
        + " FROM checked").fetchone()
    reasons = dict(con.execute(f"SELECT split_part({_REASON}, ':', 1), count(*) FROM checked "
                               f"WHERE {_REASON} IS NOT NULL GROUP BY 1").fetchall())
    return (int(counts[0]), int(counts[1]), reasons,
            {name: int(n) for name, n in zip(unseen, counts[2:], strict=True)})


def _duckdb_write_scores(con: Any, scored_sql: str, output: Path) -> int:
    """Write the scored rows to ``output`` (CSV or Parquet); how many are SDR-ready.

    A table, not the query, is COPYed: its statistics mark the Parquet columns required.
    """
    con.execute(f"CREATE TEMP TABLE result AS {scored_sql}")
    sdr_ready = con.execute("SELECT count(*) FILTER (WHERE sdr_ready) FROM result").fetchone()
    out_fmt = "PARQUET" if table_format(output) == "parquet" else "CSV, HEADER"
    with atomic_path(output) as tmp_out:
        con.execute(f"COPY result TO {sql_string(str(tmp_out), dialect='duckdb')} "
                    f"(FORMAT {out_fmt})")
    return int(sdr_ready[0])


def _duckdb_write_rejects(con: Any, id_column: str, rejects: Path) -> None:
    """Write the rejected rows of ``checked`` (row, lead_id, reason) as CSV, by row."""
    ident = sql_identifier(id_column, dialect="duckdb")
    with atomic_path(rejects) as tmp_rej:
        con.execute(f"COPY (SELECT {_ROW} AS row, {ident} AS lead_id, {_REASON} AS reason "
                    f"FROM checked WHERE {_REASON} IS NOT NULL ORDER BY {_ROW}) TO "
                    f"{sql_string(str(tmp_rej), dialect='duckdb')} (FORMAT CSV, HEADER)")


# ------------------------------------------------------------------------------ Spark


def spark_master(master: str | None = None) -> str:
    """``master``, else ``$LEAD_SCORING_SPARK_MASTER``, else ``local[2]``."""
    return master or os.environ.get(SPARK_MASTER_ENV) or DEFAULT_SPARK_MASTER


def spark_session(master: str | None = None, *, app_name: str = "lead-scoring",
                  shuffle_partitions: int | None = None) -> Any:
    """A SparkSession (reused when one is active), UI off, few shuffle partitions locally."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    chosen = spark_master(master)
    builder = (SparkSession.builder.master(chosen).appName(app_name)
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC"))
    if chosen.startswith("local"):  # Python workers (pyfunc UDFs) run this interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if shuffle_partitions is None and chosen.startswith("local"):
        shuffle_partitions = 4
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    return builder.getOrCreate()


def _spark_read(spark: Any, source: str, fmt: str) -> Any:
    """The input file; a single Parquet file comes numbered by ``_metadata.row_index``
    (no counting pass), when this Spark has it."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    if fmt == "parquet":
        frame = spark.read.parquet(source)
        if len(frame.inputFiles()) == 1:  # row_index counts within a file
            try:
                return frame.select("*", (F.col("_metadata.row_index") + 1).alias(_ROW))
            except AnalysisException:
                pass
        return frame
    return (spark.read.option("header", True).option("inferSchema", False)
            .option("multiLine", True).option("escape", '"').csv(source))


def _spark_numbered(spark: Any, frame: Any) -> Any:
    """``frame`` with ``__row``, its 1-based position (kept when ``frame`` has it already).

    ``monotonically_increasing_id`` within each partition plus the sizes of the partitions
    before it; one partition (e.g. a multi-line CSV file) needs no counting pass.
    """
    from pyspark.sql import functions as F

    if _ROW in frame.columns:
        return frame
    marked = frame.withColumn("__mid", F.monotonically_increasing_id())
    if frame.rdd.getNumPartitions() == 1:
        return marked.withColumn(_ROW, F.col("__mid") + 1).drop("__mid")
    marked = marked.withColumn("__part", F.shiftright("__mid", 33))
    sizes = sorted(marked.groupBy("__part").count().collect())
    offsets, start = [], 0
    for part, count in sizes:
        offsets.append((int(part), start))
        start += int(count)
    offset_frame = spark.createDataFrame(offsets or [(0, 0)], "__part long, __offset long")
    return (marked.join(F.broadcast(offset_frame), "__part")
            .withColumn(_ROW, F.col("__offset") + F.col("__mid") - F.shiftleft("__part", 33) + 1)
            .drop("__part", "__offset", "__mid"))


def _spark_checked(spark: Any, frame: Any, rules: PointsRules, *, id_column: str,
                   spam_gate: bool) -> tuple[Any, Any, bool]:
    """(checked, unseen, gate): every row as (row, id, reason, fit, pain[, gate], flags).

    Runs one job, the count of repeated ids: the duplicate join is planned only when some id
    may repeat. ``unseen`` is the Observation that gets the unseen counts of the first action.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    check_columns(rules, list(types), id_column=id_column, engine="spark", source=Path("input"))
    gate = spam_gate and "name_spam" in types
    tag = id(frame)
    view, front_view = f"lead_scoring_src_{tag}", f"lead_scoring_front_{tag}"
    _spark_numbered(spark, frame).createOrReplaceTempView(view)
    query = _CheckedQuery(rules, types, _spark_levels(spark, rules, tag), id_column, "spark",
                          gate)
    unseen = Observation()
    flags = [F.count_if(F.col(flag)).alias(flag) for flag in _unseen_columns(rules).values()]
    spark.sql(query.front(view)).observe(unseen, *flags or [F.count(F.lit(1)).alias("rows")]) \
        .createOrReplaceTempView(front_view)
    checked = spark.sql(query.back(f"{front_view} AS c"))
    ids = _ids_sql(rules, types, id_column=id_column, dialect="spark", table=view)
    if spark.sql(_repeated_ids_sql(id_column, "spark", f"({ids}) AS ids")).collect()[0][0]:
        checked = _spark_mark_duplicates(spark, checked, id_column)
    return checked, unseen, gate


def _spark_levels(spark: Any, rules: PointsRules, tag: int) -> list[str]:
    """Register each categorical factor's levels table (inline VALUES: no job); their names."""
    names = []
    for i, factor in enumerate(_categoricals(rules)):
        names.append(f"lead_scoring_levels{i}_{tag}")
        spark.sql(_levels_sql(factor, rules, "spark")).createOrReplaceTempView(names[-1])
    return names


def _spark_mark_duplicates(spark: Any, checked: Any, id_column: str) -> Any:
    """``checked`` with the duplicate reason on every row whose id appeared on an earlier row."""
    ident = sql_identifier(id_column, dialect="spark")
    view = f"lead_scoring_checked_{id(checked)}"
    checked.createOrReplaceTempView(view)
    keep = ", ".join(f"c.{sql_identifier(c, dialect='spark')}" for c in checked.columns
                     if c != _REASON)
    return spark.sql(
        f"SELECT {keep}, CASE WHEN c.{_ROW} > d.__first THEN {_duplicate_reason('c.' + ident)} "
        f"ELSE c.{_REASON} END AS {_REASON}\n"
        f"FROM {view} AS c LEFT JOIN ({_duplicates_sql(id_column, 'spark', view)}) AS d "
        f"ON c.{ident} = d.{ident}")


def _spark_scored(spark: Any, checked: Any, rules: PointsRules, *, id_column: str,
                  gate: bool) -> Any:
    """The scored rows of ``checked`` with the output columns."""
    view = f"lead_scoring_checked_{id(checked)}"
    checked.createOrReplaceTempView(view)
    return spark.sql(_scored_select(rules, id_column=id_column, dialect="spark", gate=gate,
                                    table=view))


def _spark_rejects(checked: Any, id_column: str) -> Any:
    """The rejected rows of ``checked`` (row, lead_id, reason) in one partition, by row."""
    from pyspark.sql import functions as F

    return (checked.where(F.col(_REASON).isNotNull())
            .select(F.col(_ROW).alias("row"), F.col(id_column).alias("lead_id"),
                    F.col(_REASON).alias("reason"))
            .repartition(1).sortWithinPartitions("row"))


def spark_scores(spark: Any, frame: Any, rules: PointsRules, *, id_column: str,
                 spam_gate: bool = False) -> tuple[Any, Any, Any]:
    """(scored, rejects, checked) DataFrames: native Spark SQL, no Python UDF.

    ``frame`` is any Spark DataFrame holding the id and the factor columns (and ``__row``,
    else rows are numbered by position: ``monotonically_increasing_id`` within each partition
    plus the sizes of the partitions before it). Row numbers of the rejects are 1-based.
    ``checked`` is every row with its reject reason (NULL when scored). Runs one job (the
    repeated-id count); nothing is cached (``checked.unpersist()`` is harmless).
    """
    checked, _, gate = _spark_checked(spark, frame, rules, id_column=id_column,
                                      spam_gate=spam_gate)
    scored = _spark_scored(spark, checked, rules, id_column=id_column, gate=gate)
    return scored, _spark_rejects(checked, id_column), checked


def score_spark(rules: PointsRules, input_path: Path | str, output: Path | str,
                rejects: Path | str | None, *, id_column: str, spam_gate: bool = False,
                master: str | None = None, spark: Any = None) -> ScoringSummary:
    """Score a CSV/Parquet file with Spark SQL; the points table runs as a native expression.

    Counts are observed while the scores are written (no separate counting pass); when
    nothing can be scored the output is not published.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    chosen = spark_master(master)
    local = chosen.startswith("local") if spark is None else \
        spark.sparkContext.master.startswith("local")
    source = _check_input(Path(input_path)) if local else Path(input_path)
    spark = spark or spark_session(chosen)
    frame = _spark_read(spark, str(source), table_format(source))
    checked, unseen, gate = _spark_checked(spark, frame, rules, id_column=id_column,
                                           spam_gate=spam_gate)
    counts, ready = Observation(), Observation()
    kind = F.split(F.col(_REASON), ":").getItem(0)
    observed = checked.observe(counts, F.count(F.lit(1)).alias("rows"),
                               *[F.count_if(kind == k).alias(k) for k in REASON_KINDS])
    scored = _spark_scored(spark, observed, rules, id_column=id_column, gate=gate).observe(
        ready, F.count(F.lit(1)).alias("scored"),
        F.count_if(F.col("sdr_ready")).alias("sdr_ready"))

    def summary() -> ScoringSummary:
        c, r, u = counts.get, ready.get, unseen.get
        return _summary(int(c["rows"]), int(r["scored"]), int(r["sdr_ready"] or 0),
                        {k: int(c[k] or 0) for k in REASON_KINDS},
                        {name: int(u.get(flag) or 0)
                         for name, flag in _unseen_columns(rules).items()})

    def check() -> None:
        if summary().scored == 0:
            raise _nothing_scored(source, summary())

    _spark_write(scored, Path(output) if local else output, local=local, before_publish=check)
    if rejects is not None and local and summary().rejected == 0:  # no pass for no rows
        write_text_atomic(rejects, ",".join(REJECT_COLUMNS) + "\n")
    elif rejects is not None:
        _spark_write(_spark_rejects(checked, id_column), Path(rejects) if local else rejects,
                     local=local, fmt="csv")
    return summary()


def _spark_write(frame: Any, target: Path | str, *, local: bool, fmt: str | None = None,
                 before_publish: Callable[[], None] | None = None) -> None:
    """Write a DataFrame: one file locally (part files gathered), a directory on a cluster.

    ``before_publish`` runs once the rows are computed and before ``target`` appears (it may
    raise); on a cluster that takes a ``noop`` pass first.
    """
    fmt = fmt or table_format(Path(str(target)))
    if not local:
        if before_publish is not None:
            frame.write.format("noop").mode("overwrite").save()
            before_publish()
        writer = frame.write.mode("overwrite")
        (writer.parquet(str(target)) if fmt == "parquet"
         else writer.option("header", True).csv(str(target)))
        return
    target = Path(target)
    with tempfile.TemporaryDirectory(prefix=".spark-", dir=target.parent) as tmp:
        parts_dir = Path(tmp) / "parts"
        writer = frame.write.mode("overwrite")
        if fmt == "parquet":
            writer.parquet(str(parts_dir))
        else:
            writer.option("header", True).option("emptyValue", "").csv(str(parts_dir))
        if before_publish is not None:
            before_publish()
        with atomic_path(target) as tmp_out:
            _gather(sorted(parts_dir.glob("part-*")), tmp_out, fmt, frame.columns)


def _gather(parts: list[Path], out: Path, fmt: str, columns: list[str]) -> None:
    """Concatenate Spark part files into one CSV (one header) or one Parquet file."""
    if fmt == "parquet" and len(parts) == 1:  # the common case locally: nothing to merge
        shutil.move(parts[0], out)
        return
    if fmt == "parquet":
        import pyarrow.parquet as pq

        writer = None
        for part in parts:
            pf = pq.ParquetFile(part)
            for i in range(pf.num_row_groups):
                table = pf.read_row_group(i)
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema)
                writer.write_table(table.cast(writer.schema))
        if writer is None:
            import pandas as pd

            pd.DataFrame(columns=columns).to_parquet(out, index=False)
        else:
            writer.close()
        return
    with open(out, "wb") as sink:
        sink.write((",".join(columns) + "\n").encode())
        for part in parts:
            with open(part, "rb") as handle:
                first = handle.readline()
                if first and first.rstrip(b"\r\n") != ",".join(columns).encode():
                    sink.write(first)
                shutil.copyfileobj(handle, sink)


def spark_pyfunc_udf(spark: Any, model_uri: str, *, env_manager: str = "local") -> Any:
    """The registered pyfunc model as a Spark UDF (``models:/NAME@ALIAS``).

    Returns a UDF giving a struct of the score columns; apply it to the factor columns:
    ``frame.withColumn("score", udf(*[frame[c] for c in factors]))``. This runs Python in every
    executor (pandas + the model): simple, and much slower than :func:`spark_scores`.
    ``env_manager="local"`` uses the executors' own Python: no virtualenv is built (which
    would need network access); the executors must have ``lead-scoring`` installed.
    """
    import mlflow.pyfunc

    result_type = ("points long, fit long, pain long, probability double, sdr_ready boolean, "
                   "grade string, reason_codes string")
    return mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result_type,
                                   env_manager=env_manager)
