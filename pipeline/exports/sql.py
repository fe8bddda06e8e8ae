"""The ``sql`` export: one ``SELECT`` scoring every row of a leads table, in the DuckDB,
Postgres or Spark dialect, and the pieces of it that the SQL scoring engines reuse
(:mod:`pipeline.scoring.sql`)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.exports.table import check_finite, missing_tokens
from pipeline.model.rules import FactorRules, PointsRules

SQL_DIALECTS = ("duckdb", "postgres", "spark")

_SQL_TEXT = {"duckdb": "VARCHAR", "postgres": "TEXT", "spark": "STRING"}
_SQL_DOUBLE = {"duckdb": "DOUBLE", "postgres": "DOUBLE PRECISION", "spark": "DOUBLE"}
_SQL_RESERVED_OUTPUTS = ("fit", "pain", "points", "probability", "sdr_ready", "score_logit")


def sql_identifier(name: str, *, dialect: str) -> str:
    """Quote an identifier: ``"x"`` with ``""`` doubling (DuckDB, Postgres), backticks for Spark."""
    _check_dialect(dialect)
    if "\x00" in name:
        raise ValueError(f"identifier {name!r}: NUL characters cannot appear in SQL")
    if dialect == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str, *, dialect: str) -> str:
    """Quote a string literal so that any text is just a value.

    DuckDB: ``'...'`` with ``''``. Postgres: the same, or ``E'...'`` with backslashes doubled
    when the text has a backslash (correct whatever ``standard_conforming_strings`` is). Spark:
    backslash is an escape character and adjacent literals concatenate (``'a''b'`` is
    ``'ab'``), so both ``\\`` and ``'`` are backslash-escaped.
    """
    _check_dialect(dialect)
    if "\x00" in value:
        raise ValueError(f"string {value!r}: NUL characters cannot appear in SQL text")
    if dialect == "spark":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if dialect == "postgres" and "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"


def _sql_double(x: float, dialect: str) -> str:
    # repr(float) is the shortest text that parses back to the same double; parsing a string
    # (not a DECIMAL literal) is correctly rounded in DuckDB, Postgres and Spark alike.
    return f"CAST('{float(x)!r}' AS {_SQL_DOUBLE[dialect]})"


def _check_dialect(dialect: str) -> None:
    if dialect not in SQL_DIALECTS:
        raise ValueError(f"dialect must be one of {SQL_DIALECTS}, got {dialect!r}")


def _sql_factor_case(factor: FactorRules, rules: PointsRules, dialect: str, indent: str,
                     column: str | None = None, double: bool = False) -> str:
    col = column or sql_identifier(factor.name, dialect=dialect)
    as_text = f"CAST({col} AS {_SQL_TEXT[dialect]})"
    as_double = col if double else f"CAST({col} AS {_SQL_DOUBLE[dialect]})"
    tokens = ", ".join(sql_string(t, dialect=dialect) for t in missing_tokens(rules))
    missing = (_sql_double_missing(col, rules, dialect) if double
               else f"{col} IS NULL OR {as_text} IN ({tokens})")
    lines = [f"WHEN {missing} THEN {factor.missing_points}"]
    if factor.kind == "categorical":
        for level in sorted(factor.levels):
            lit = sql_string(level, dialect=dialect)
            lines.append(f"WHEN {as_text} = {lit} THEN {factor.levels[level]}")
        lines.append(f"ELSE {factor.unseen_points}")
    else:
        nan = f"CAST('NaN' AS {_SQL_DOUBLE[dialect]})"
        if not double:
            lines.append(f"WHEN {as_double} = {nan} THEN {factor.missing_points}")
        for value, pts, _ in factor.special_values():
            lines.append(f"WHEN {as_double} = {_sql_double(value, dialect)} THEN {pts}")
        edges = [float(e) for e in factor.edges]
        for i, pts in enumerate(factor.bin_points[:-1]):
            hi = f"{as_double} <= {_sql_double(edges[i], dialect)}"
            if i == 0 or double:  # double: the WHENs before already ruled out x <= edges[i - 1]
                # (the special values' WHENs rule out single values only: still exact)
                lines.append(f"WHEN {hi} THEN {pts}")
            else:
                lo = f"{as_double} > {_sql_double(edges[i - 1], dialect)}"
                lines.append(f"WHEN {lo} AND {hi} THEN {pts}")
        lines.append(f"ELSE {factor.bin_points[-1]}")
    body = "\n".join(f"{indent}  {line}" for line in lines)
    return f"(CASE\n{body}\n{indent}END)"


def _sql_double_missing(col: str, rules: PointsRules, dialect: str) -> str:
    """Whether a DOUBLE ``col`` is missing: NULL, NaN, or its text is a missing token.

    The same test as ``col IS NULL OR CAST(col AS text) IN (tokens)`` followed by the NaN
    test, without turning every value into text: a token can only be the text of the one
    number it parses to, so the text is compared only when the number matches first.
    """
    double, text = _SQL_DOUBLE[dialect], _SQL_TEXT[dialect]
    tests = [f"{col} IS NULL", f"{col} = CAST('NaN' AS {double})"]
    for token in missing_tokens(rules):
        if token:
            lit = sql_string(token, dialect=dialect)
            tests.append(f"({col} = TRY_CAST({lit} AS {double}) AND CAST({col} AS {text}) = {lit})")
    return " OR ".join(tests)


def check_sql_rules(rules: PointsRules, *, dialect: str) -> None:
    """Raise ``ValueError`` for points tables the SQL cannot express: non-finite numbers, an
    id column named like an output column, factor names that differ only in case (DuckDB
    and Spark resolve names case-insensitively)."""
    _check_dialect(dialect)
    check_finite(rules)
    if rules.id_column.lower() in _SQL_RESERVED_OUTPUTS:
        raise ValueError(
            f"id_column {rules.id_column!r} clashes with an output column {_SQL_RESERVED_OUTPUTS}"
        )
    if dialect in ("duckdb", "spark"):
        seen: dict[str, str] = {}
        for name in rules.factor_names():
            other = seen.setdefault(name.lower(), name)
            if other != name:
                raise ValueError(
                    f"factors {other!r} and {name!r} differ only in case: {dialect} resolves "
                    "column names case-insensitively"
                )


def sql_factor_points(factor: FactorRules, rules: PointsRules, *, dialect: str,
                      column: str | None = None, double: bool = False) -> str:
    """One factor's points as the CASE expression :func:`export_sql` sums, over ``column``.

    ``column`` is any SQL expression (default: the factor's quoted name). ``double=True``
    (DuckDB and Spark, numeric factors) says ``column`` already holds DOUBLE values: the
    missing-token test then compares numbers before text and each bin is one comparison,
    the same points for a fraction of the work (no per-row cast to text).
    """
    _check_dialect(dialect)
    if double and (factor.kind != "numeric" or dialect == "postgres"):
        raise ValueError("double=True is for numeric factors on duckdb or spark")
    return _sql_factor_case(factor, rules, dialect, "", column=column, double=double)


def sql_spam_expr(rules: PointsRules, *, dialect: str, column: str | None = None) -> str:
    """Whether a lead is spam for the spam gate, as SQL: its ``name_spam`` text is ``'yes'``
    and not a missing token (NULL counts as not spam), as :meth:`PointsRules.is_spam`."""
    from pipeline.model.rules import SPAM_COLUMN, SPAM_VALUE

    if SPAM_VALUE in missing_tokens(rules):
        return "FALSE"
    col = column or sql_identifier(SPAM_COLUMN, dialect=dialect)
    literal = sql_string(SPAM_VALUE, dialect=dialect)
    return f"COALESCE(CAST({col} AS {_SQL_TEXT[dialect]}) = {literal}, FALSE)"


def sql_score_totals(rules: PointsRules, factor_points: str, *, dialect: str,
                     id_column: str | None = None, carry: Sequence[str] = (),
                     spam: str | None = None) -> str:
    """The SELECT that turns each lead's ``fit`` and ``pain`` into points, probability and
    sdr_ready (cap, logistic curve and threshold of ``rules``), as :func:`export_sql` ends.

    ``factor_points`` is the text of a query giving ``id_column`` (default
    ``rules.id_column``), ``fit``, ``pain`` and the ``carry`` columns (quoted SQL names,
    passed through after the id). ``spam`` names a boolean column of ``factor_points`` that
    takes SDR-ready away (the spam gate); it is not output. Checks ``rules`` as
    :func:`check_sql_rules` does.
    """
    check_sql_rules(rules, dialect=dialect)
    ident = sql_identifier(id_column or rules.id_column, dialect=dialect)
    keep = "".join(f", {c}" for c in carry)
    inner_keep = keep + (f", {spam}" if spam else "")
    ready = f"points >= {int(rules.sdr_threshold)}" + (f" AND NOT {spam}" if spam else "")
    total = "fit + pain"
    if rules.score_min is not None:
        total = f"GREATEST({total}, {int(rules.score_min)})"
    if rules.score_max is not None:
        total = f"LEAST({total}, {int(rules.score_max)})"
    intercept = _sql_double(rules.prob_intercept, dialect)
    slope = _sql_double(rules.prob_slope, dialect)
    return (
        f"SELECT {ident}{keep}, fit, pain, points,\n"
        f"  CASE WHEN score_logit > 700 THEN 1.0\n"
        f"    WHEN score_logit > -700 THEN 1.0 / (1.0 + EXP(-score_logit))\n"
        f"    ELSE 0.0 END AS probability,\n"
        f"  {ready} AS sdr_ready\n"
        f"FROM (\n"
        f"  SELECT {ident}{inner_keep}, fit, pain, {total} AS points,\n"
        f"    {intercept} + {slope} * ({total}) AS score_logit\n"
        f"  FROM (\n"
        f"{factor_points}"
        f"  ) AS factor_points\n"
        f") AS totals\n"
    )


def export_sql(rules: PointsRules, *, dialect: str = "duckdb", table: str = "leads",
               derive: Sequence[str] | None = None) -> str:
    """A ``SELECT`` that scores every row of ``table``: id, fit, pain, points, probability,
    sdr_ready.

    Categorical columns are compared as text, numeric columns as doubles; a value is missing
    when NULL, NaN, ``''`` or its text is in ``missing_values`` (checked first, as in the
    reference). With ``spam_gate`` the query also reads ``name_spam``: a lead whose text is
    ``'yes'`` is never SDR-ready. ``table`` may be schema-qualified with dots; each part is
    quoted. Derived signals (``email_domain_type``, ``name_spam``, ``seniority``) are computed
    in the query from the raw e-mail, name and title columns on DuckDB and Spark
    (:mod:`pipeline.exports.signals_sql`; ``derive`` limits which, e.g. ``[]`` for a table
    that already holds them); Postgres reads them from the table. Caveats:
    keep categorical columns as text (a DOUBLE 1.0 reads as ``'1.0'``, the reference reads
    ``"1"``), and a missing token that looks like a number (``"-1"``) also matches a numeric
    column whose text is that number.
    """
    _check_dialect(dialect)
    check_finite(rules)
    if not table or any(not part for part in table.split(".")):
        raise ValueError(f"table must be a non-empty (optionally dotted) name, got {table!r}")
    check_sql_rules(rules, dialect=dialect)
    ident = sql_identifier(rules.id_column, dialect=dialect)
    from_table = ".".join(sql_identifier(p, dialect=dialect) for p in table.split("."))
    indent = "      "

    def group_sum(group: str) -> str:
        cases = [
            _sql_factor_case(f, rules, dialect, indent) for f in rules.factors if f.group == group
        ]
        return f"\n{indent}+ ".join(cases) if cases else "0"

    from pipeline.exports.signals_sql import derived_source, needed_signals, raw_columns

    with_clause, source = derived_source(rules, from_table, dialect, derive)
    spam = "__spam" if rules.spam_gate else None
    gate = f"      {sql_spam_expr(rules, dialect=dialect)} AS {spam},\n" if spam else ""
    factor_points = (
        f"    SELECT {ident},\n"
        f"{gate}"
        f"      {group_sum('FIT')} AS fit,\n"
        f"      {group_sum('PAIN')} AS pain\n"
        f"    FROM {source or from_table}\n"
    )
    totals = sql_score_totals(rules, factor_points, dialect=dialect, spam=spam)
    if not source:
        return totals
    made = [s for s in needed_signals(rules) if derive is None or s in derive]
    raws = list(dict.fromkeys(c for m in made for c in raw_columns(m, rules.derived)))
    note = (f"-- {', '.join(made)}: computed here from the raw columns {', '.join(raws)} "
            "(lead-scoring's derived signals)\n")
    return note + with_clause + totals


__all__ = [
    "SQL_DIALECTS",
    "check_sql_rules",
    "export_sql",
    "sql_factor_points",
    "sql_identifier",
    "sql_score_totals",
    "sql_spam_expr",
    "sql_string",
]
