"""The SQL text of the DuckDB and Spark engines: clean, check and score every input row.

Kept apart from the engine drivers (:mod:`pipeline.scoring.engines`) because the same SQL text, in
either dialect, serves DuckDB and Spark; nothing here runs a query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.config_sections import ROW_ID_COLUMN
from pipeline.exports.sql import (
    check_sql_rules,
    sql_factor_points,
    sql_identifier,
    sql_score_totals,
    sql_string,
)
from pipeline.inputs.clean_columns import PY_WHITESPACE
from pipeline.model.rules import FactorRules, PointsRules

WHITESPACE = PY_WHITESPACE  # what Python's str.strip() removes, as training strips it
# what pandas.to_numeric accepts as a number (after stripping), and nothing else
NUMBER_PATTERN = (r"^[+-]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
                  r"|[iI][nN][fF]([iI][nN][iI][tT][yY])?)$")
# the same, anchored at the very end (Java's ``$`` also matches before a final line break):
# text it matches has no surrounding whitespace
_PLAIN_NUMBER = NUMBER_PATTERN[:-1] + r"\z"
ROW, REASON, _GATE = "__row", "__reason", "__spam"
# columns of a levels table: the level, its points, whether it is its own cleaned text
_KEY, _POINTS, _CLEAN = "__ls_key", "__ls_points", "__ls_clean"


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


def categoricals(rules: PointsRules) -> list[FactorRules]:
    """The categorical factors, in table order (``i`` in ``__ls_p<i>`` and friends)."""
    return [f for f in rules.factors if f.kind == "categorical"]


def levels_sql(factor: FactorRules, rules: PointsRules, dialect: str) -> str:
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
    """The id over its stripped value: NULL when empty or a missing token (never a token for
    the generated ``row_id``: lead 999's is "999"); non-text as text."""
    ident = sql_identifier(id_column, dialect=dialect)
    if id_column == ROW_ID_COLUMN and _is_text_type(types[id_column]):
        return f"NULLIF({ident}, '')"
    return (_text_expr(ident, rules, dialect) if _is_text_type(types[id_column])
            else f"CAST({ident} AS {_text_type(dialect)})")


def ids_sql(rules: PointsRules, types: dict[str, str], *, id_column: str, dialect: str,
            table: str) -> str:
    """Row number and cleaned id of every row of ``table`` (the rows the duplicate check reads)."""
    ident = sql_identifier(id_column, dialect=dialect)
    return (f"SELECT {ROW}, {_clean_id(id_column, rules, types, dialect)} AS {ident} "
            f"FROM (SELECT {ROW}, {_strip_if_text(ident, types[id_column], dialect)} AS {ident} "
            f"FROM {table}) AS stripped_ids")


def repeated_ids_sql(id_column: str, dialect: str, table: str) -> str:
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


def duplicates_sql(id_column: str, dialect: str, table: str) -> str:
    """Each id that appears on more than one row of ``table``, with its first row."""
    ident = sql_identifier(id_column, dialect=dialect)
    return (f"SELECT {ident}, min({ROW}) AS __first FROM {table} WHERE {ident} IS NOT NULL "
            f"GROUP BY {ident} HAVING count(*) > 1")


def duplicate_reason(id_expr: str) -> str:
    """The reject reason of a later row of a repeated id (the pandas engine's words)."""
    return (f"'duplicate id: ' || chr(39) || {id_expr} || chr(39) "
            f"|| ' already appeared earlier in the input'")


def _regex_test(value: str, pattern: str, dialect: str) -> str:
    """Whether the whole of ``value`` matches ``pattern``."""
    lit = sql_string(pattern, dialect=dialect)
    return (f"regexp_full_match({value}, {lit})" if dialect == "duckdb"
            else f"{value} RLIKE {lit}")


@dataclass(frozen=True)
class CheckedQuery:
    """The SQL that gives every input row as (row, id, reason, fit, pain[, gate], unseen...).

    Built in layers so that no costly expression runs twice on a row. The categorical front
    strips the id (and gate), looks up raw text that is exactly a clean level, cleans and
    looks up the other values, and gives the points and unseen flags (``__ls_u<i>``: the row
    holds an unseen level of the i-th categorical factor). The numeric back cleans and
    parses numeric text, gives the reason, and adds up the points. The reason is NULL
    (scored), 'missing id' or 'unparseable value: ...'; duplicate ids are marked afterwards.
    ``levels`` names the :func:`levels_sql` table of each categorical factor.
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
        return categoricals(self.rules)

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
        return [ROW, self.q(self.id_column), *([_GATE] if self.gate else []),
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
        cols = [f"t.{ROW}", f"{_strip_if_text('t.' + ident, self.types[self.id_column], d)} "
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
        cols = [ROW, f"{_clean_id(self.id_column, rules, self.types, d)} AS {ident}",
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
        cols = [ROW, self.q(self.id_column), *([_GATE] if self.gate else []),
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
        return f"SELECT {', '.join(cols)}, {reason} AS {REASON}\nFROM {source}"

    def summed(self, source: str) -> str:
        """fit and pain: the sums of the factors' points by group."""
        points = {f.name: f"__ls_p{i}" for i, f in enumerate(self.cats)}
        points.update({f.name: sql_factor_points(f, self.rules, dialect=self.dialect,
                                                 column=self.q(f.name), double=True)
                       for f in self.numerics})

        def group_sum(group: str) -> str:
            return " + ".join(points[f.name] for f in self.rules.factors
                              if f.group == group) or "0"

        cols = [ROW, self.q(self.id_column), REASON, f"{group_sum('FIT')} AS fit",
                f"{group_sum('PAIN')} AS pain", *([_GATE] if self.gate else []),
                *(f"__ls_u{i}" for i in range(len(self.cats)))]
        return f"SELECT {', '.join(cols)}\nFROM {source}"


def unseen_columns(rules: PointsRules) -> dict[str, str]:
    """Factor name -> the flag column of ``checked`` saying a row holds an unseen level."""
    return {f.name: f"__ls_u{i}" for i, f in enumerate(categoricals(rules))}


def _grade_expr(rules: PointsRules, dialect: str) -> str | None:
    """The grade of ``points`` (best grade first), or None without grades."""
    if not rules.grades:
        return None
    cuts = sorted(rules.grades, key=lambda g: -g["min_points"])
    whens = " ".join(f"WHEN points >= {float(g['min_points'])!r} THEN "
                     f"{sql_string(str(g['grade']), dialect=dialect)}" for g in cuts)
    return f"CASE {whens} ELSE {sql_string(str(cuts[-1]['grade']), dialect=dialect)} END"


def scored_select(rules: PointsRules, *, id_column: str, dialect: str, gate: bool,
                  table: str) -> str:
    """Output columns as the pandas engine writes them, for the rows of ``table`` with no
    reject reason: points, probability and sdr_ready from fit and pain."""
    ident = sql_identifier(id_column, dialect=dialect)
    carry = [_GATE] if gate else []
    inner = (f"    SELECT {', '.join([ident, *carry])}, fit, pain FROM {table} "
             f"WHERE {REASON} IS NULL\n")
    scores = sql_score_totals(rules, inner, dialect=dialect, id_column=id_column, carry=carry)
    sdr = f"s.sdr_ready AND NOT s.{_GATE}" if gate else "s.sdr_ready"
    grade = _grade_expr(rules, dialect)
    cols = [f"s.{ident}", "s.points", "s.fit", "s.pain", "s.probability", f"{sdr} AS sdr_ready"]
    if grade:
        cols.append(f"{grade.replace('points', 's.points')} AS grade")
    return f"SELECT {', '.join(cols)}\nFROM ({scores}) AS s"
