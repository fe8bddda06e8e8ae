"""Proof that the executable exports score like the reference, lead by lead.

Each ``score_*`` function runs one export on a frame of raw leads (values as read from CSV:
strings, floats, NaN) and returns a frame indexed like the input with the columns it can give
among ``points, fit, pain, probability, sdr_ready``. :func:`verify_exports` compares them with
:func:`score_reference` (:func:`pipeline.model.reference.score_record` per row).

How the leads reach each engine is part of what is checked, so it is spelled out in
:func:`sql_input_columns`: categorical columns become text the way the reference reads them
(``1.0`` -> ``"1"``, NaN -> NULL), numeric columns stay DOUBLE (NaN kept as NaN, so the
exports' NaN rule is exercised) unless they hold text, in which case they are loaded as text
and cast by the export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

from pipeline.errors import UserError
from pipeline.exports.pmml import export_pmml, pmml_output_names
from pipeline.exports.python import export_python
from pipeline.exports.signals_py import event_columns
from pipeline.exports.signals_sql import needed_signals, raw_columns
from pipeline.exports.sql import export_sql
from pipeline.exports.table import factor_kinds
from pipeline.inputs.signal_values import is_missing_value
from pipeline.model.reference import canonical_str, score_record
from pipeline.model.rules import PointsRules

SCORE_COLUMNS = ["points", "fit", "pain", "probability", "sdr_ready"]
VERIFY_FORMATS = ("sql", "pmml", "python")
PROBABILITY_TOLERANCE = 1e-12  # exp() of another libm / JVM may differ in the last bits
EXAMPLE_COLUMNS = ["row", "column", "expected", "actual", "inputs"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of one format: how many of ``total`` leads disagree with the reference.

    ``examples`` is a tidy frame (columns ``row, column, expected, actual, inputs``) of the
    first few disagreeing leads, one row per disagreeing output column.
    """

    format: str
    mismatches: int
    total: int
    examples: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.mismatches == 0


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def _input_kinds(rules: PointsRules) -> dict[str, str]:
    """Every column the scorers read, with its kind: the factors, then the spam gate's
    ``name_spam`` (text) when the gate is on and it is not a factor, then the raw e-mail,
    name and title columns the derived signals are computed from (text)."""
    raw = [c for s in needed_signals(rules) for c in raw_columns(s, rules.derived)]
    kinds = {**factor_kinds(rules), **dict.fromkeys(rules.gate_columns(), "categorical")}
    return {**kinds, **{c: "categorical" for c in raw if c not in kinds}}


def derive_in_export(rules: PointsRules, df: pd.DataFrame) -> list[str]:
    """The derived signals an export computes for ``df``: those the table reads and ``df``
    lacks (as ``lead-scoring score`` computes only those)."""
    return [s for s in needed_signals(rules) if s not in df.columns]


def check_export_input(rules: PointsRules, df: pd.DataFrame, fmt: str) -> None:
    """Refuse (:class:`UserError`) leads an export cannot score right: a derived signal
    absent with its raw columns (every format), absent at all (``pmml``: a Scorecard cannot
    compute it), or an event feature absent (made only by aggregating the event log)."""
    columns = set(df.columns)
    for signal in derive_in_export(rules, df):
        raw = raw_columns(signal, rules.derived)
        if fmt == "pmml":
            raise UserError(
                f"pmml: the leads lack {signal!r}: the PMML reads the derived signals "
                f"{needed_signals(rules)} as fields and cannot compute them from {raw}",
                hint="add them: lead-scoring features --model REF --input LEADS --output FILE")
        if not columns.intersection(raw):
            raise UserError(f"{fmt}: the leads have neither {signal!r} nor the raw column(s) "
                            f"{raw} it is computed from", hint=f"add the column {raw[0]!r}")
    absent = [c for c in event_columns(rules) if c not in columns]
    if absent:
        raise UserError(
            f"{fmt}: the points table scores event features {absent}, which exist only after "
            "aggregating the event log", hint="pass the event log (verify-export --events "
            "FILE), or add them: lead-scoring features --model REF --input LEADS --events "
            "EVENTS --output FILE")


def lead_records(rules: PointsRules, df: pd.DataFrame) -> list[dict[str, Any]]:
    """Each row as ``{column: raw value}`` over the input columns present (``pd.NA`` -> None):
    the factors and, with the spam gate on, ``name_spam``."""
    columns = [c for c in _input_kinds(rules) if c in df.columns]
    values = [df[c].tolist() for c in columns]
    return [
        {c: (None if v is pd.NA or v is pd.NaT else v) for c, v in zip(columns, row, strict=True)}
        for row in zip(*values, strict=True)
    ] if columns else [{} for _ in range(len(df))]


def sql_input_columns(rules: PointsRules, df: pd.DataFrame) -> dict[str, tuple[str, list[Any]]]:
    """The table an engine scores: ``{column: (type, values)}`` with type ``bigint``, ``text``
    or ``double`` and Python values (None = NULL), over the factors and the gate columns.

    The id column holds row positions 0..n-1 (results are matched back by it). Categorical
    columns are text as the reference reads them; numeric columns of a numeric dtype are
    doubles (NaN kept), others text (numbers written with ``repr``). A factor column absent
    from ``df`` is all NULL, as the reference treats it as missing.
    """
    kinds = _input_kinds(rules)
    if rules.id_column.lower() in {c.lower() for c in kinds}:
        raise ValueError(f"id_column {rules.id_column!r} is also a factor column")
    n = len(df)
    out: dict[str, tuple[str, list[Any]]] = {rules.id_column: ("bigint", list(range(n)))}
    computed = derive_in_export(rules, df)
    for name, kind in kinds.items():
        if name in computed:
            continue
        if name not in df.columns:
            out[name] = ("text", [None] * n)
            continue
        series = df[name]
        raw = series.tolist()
        if kind == "categorical":
            out[name] = ("text", [_category_text(v) for v in raw])
        elif pd.api.types.is_numeric_dtype(series.dtype):
            out[name] = ("double", [None if v is pd.NA else float(v) for v in raw])
        else:
            out[name] = ("text", [_number_text(v) for v in raw])
    return out


def _category_text(value: Any) -> str | None:
    if is_missing_value(value):
        return None
    return value if isinstance(value, str) else canonical_str(value)


def _number_text(value: Any) -> str | None:
    if is_missing_value(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return repr(float(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --------------------------------------------------------------------------------------------
# scorers
# --------------------------------------------------------------------------------------------


def score_reference(rules: PointsRules, df: pd.DataFrame) -> pd.DataFrame:
    """:func:`pipeline.model.reference.score_record` on every row: ``points, fit, pain, probability,
    sdr_ready``, indexed like ``df``."""
    rows = [score_record(rules, lead) for lead in lead_records(rules, df)]
    return _frame(rows, df.index, SCORE_COLUMNS)


def _frame(rows: Sequence[Mapping[str, Any]], index: pd.Index, columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(list(rows), columns=columns)
    types = {"points": "int64", "fit": "int64", "pain": "int64", "probability": "float64",
             "sdr_ready": "bool"}
    out = out.astype({c: t for c, t in types.items() if c in columns})
    out.index = index
    return out


def score_duckdb_sql(rules: PointsRules, df: pd.DataFrame, *, table: str = "leads") -> pd.DataFrame:
    """Run the DuckDB SQL export in an in-memory DuckDB over ``df``."""
    import duckdb
    import pyarrow as pa

    types = {"bigint": pa.int64(), "text": pa.string(), "double": pa.float64()}
    cols = sql_input_columns(rules, df)
    arrow = pa.table(
        {
            name: pa.array(values, type=types[t], from_pandas=False)
            for name, (t, values) in cols.items()
        }
    )
    sql = export_sql(rules, dialect="duckdb", table=table, derive=derive_in_export(rules, df))
    with duckdb.connect(":memory:", config={"threads": 1}) as con:
        con.register(table, arrow)
        rows = con.execute(sql).fetchall()
    return sql_rows_to_frame(rows, df.index)


def sql_rows_to_frame(rows: Sequence[Sequence[Any]], index: pd.Index) -> pd.DataFrame:
    """Rows ``(row_position, fit, pain, points, probability, sdr_ready)`` of the SQL export,
    in any order, as a score frame indexed like the input."""
    if len(rows) != len(index):
        raise ValueError(f"SQL returned {len(rows)} rows for {len(index)} leads")
    ordered = sorted(rows, key=lambda r: int(r[0]))
    records = [
        {"fit": r[1], "pain": r[2], "points": r[3], "probability": r[4], "sdr_ready": r[5]}
        for r in ordered
    ]
    return _frame(records, index, SCORE_COLUMNS)


@cache
def _pmml_backend(name: str) -> Any:
    from jpmml_evaluator import make_backend

    return make_backend(name)


def pmml_evaluator(rules: PointsRules, *, backend: str = "jpype") -> Any:
    """A verified JPMML evaluator of the PMML export (one JVM per process, reused)."""
    from jpmml_evaluator import make_evaluator

    return make_evaluator(export_pmml(rules), backend=_pmml_backend(backend)).verify()


def score_pmml(rules: PointsRules, df: pd.DataFrame, *, backend: str = "jpype") -> pd.DataFrame:
    """Evaluate the PMML export with JPMML: ``points, probability, sdr_ready`` (a Scorecard has
    no FIT/PAIN subtotals). NaN is passed as NaN, so the PMML's own missing rules apply."""
    evaluator = pmml_evaluator(rules, backend=backend)
    cols = sql_input_columns(rules, df)
    cols.pop(rules.id_column)
    args = pd.DataFrame(
        {name: pd.Series(values, dtype="float64" if t == "double" else object)
         for name, (t, values) in cols.items()},
        index=pd.RangeIndex(len(df)),
    )
    results = evaluator.evaluateAll(args, nan_as_missing=False)
    if "errors" in results.columns and results["errors"].notna().any():
        first = results["errors"].dropna().iloc[0]
        raise RuntimeError(f"JPMML failed on {results['errors'].notna().sum()} leads: {first}")
    names = pmml_output_names(rules)
    records = [
        {"points": int(round(p)), "probability": float(q), "sdr_ready": bool(s)}
        for p, q, s in zip(
            results[names["points"]], results[names["probability"]], results[names["sdr_ready"]],
            strict=True,
        )
    ]
    return _frame(records, df.index, ["points", "probability", "sdr_ready"])


def load_python_export(source: str) -> dict[str, Any]:
    """Exec the Python export in a fresh namespace and return it (``score``, ``RULES``, ...)."""
    namespace: dict[str, Any] = {"__name__": "lead_scoring_export"}
    exec(compile(source, "<score_leads.py>", "exec"), namespace)
    return namespace


def score_python_export(rules: PointsRules, df: pd.DataFrame) -> pd.DataFrame:
    """Exec the Python export in a fresh namespace and score every row with its ``score``."""
    score = load_python_export(export_python(rules))["score"]
    rows = [score(lead) for lead in lead_records(rules, df)]
    return _frame(rows, df.index, SCORE_COLUMNS)


# --------------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------------


def compare_scores(
    expected: pd.DataFrame,
    actual: pd.DataFrame,
    *,
    fmt: str,
    inputs: Sequence[Mapping[str, Any]] | None = None,
    max_examples: int = 5,
) -> VerifyResult:
    """Lead-by-lead comparison on the columns both frames have; probability within
    :data:`PROBABILITY_TOLERANCE`, everything else exact."""
    if len(expected) != len(actual):
        raise ValueError(f"{fmt}: {len(actual)} scored rows for {len(expected)} leads")
    columns = [c for c in SCORE_COLUMNS if c in expected.columns and c in actual.columns]
    bad = pd.DataFrame(False, index=range(len(expected)), columns=columns)
    for c in columns:
        e, a = expected[c].to_numpy(), actual[c].to_numpy()
        if c == "probability":
            bad[c] = ~(abs(e.astype(float) - a.astype(float)) <= PROBABILITY_TOLERANCE)
        else:
            bad[c] = e != a
    rows_bad = bad.any(axis=1).to_numpy()
    examples = []
    for pos in [i for i, b in enumerate(rows_bad) if b][:max_examples]:
        for c in columns:
            if bad.iloc[pos][c]:
                examples.append(
                    {
                        "row": expected.index[pos],
                        "column": c,
                        "expected": expected[c].iloc[pos],
                        "actual": actual[c].iloc[pos],
                        "inputs": repr(dict(inputs[pos])) if inputs is not None else "",
                    }
                )
    return VerifyResult(
        format=fmt,
        mismatches=int(rows_bad.sum()),
        total=len(expected),
        examples=pd.DataFrame(examples, columns=EXAMPLE_COLUMNS),
    )


_SCORERS = {"sql": score_duckdb_sql, "pmml": score_pmml, "python": score_python_export}


def verify_exports(
    rules: PointsRules,
    df: pd.DataFrame,
    *,
    formats: Sequence[str] = VERIFY_FORMATS,
    max_examples: int = 5,
    reference: pd.DataFrame | None = None,
    inputs: Mapping[str, pd.DataFrame] | None = None,
) -> list[VerifyResult]:
    """Score ``df`` with each executable export (``sql`` = DuckDB) and with the reference, and
    count the leads whose points (and fit, pain, sdr_ready, probability where the format gives
    them) differ.

    ``reference`` is the table the reference scores (default ``df``): for raw leads, the
    features ``lead-scoring score`` builds from them, while the exports get ``df`` as it is
    (or ``inputs[fmt]``, same rows) and compute the derived signals themselves. Leads an
    export cannot score right are refused first (:func:`check_export_input`)."""
    unknown = [f for f in formats if f not in _SCORERS]
    if unknown:
        raise ValueError(f"formats must be among {tuple(_SCORERS)}, got {unknown}")
    given = {fmt: (inputs or {}).get(fmt, df) for fmt in formats}
    for fmt, frame in given.items():
        check_export_input(rules, frame, fmt)
    expected = score_reference(rules, df if reference is None else reference)
    shown = lead_records(rules, df)
    return [
        compare_scores(expected, _SCORERS[fmt](rules, given[fmt]), fmt=fmt, inputs=shown,
                       max_examples=max_examples)
        for fmt in formats
    ]


__all__ = [
    "PROBABILITY_TOLERANCE",
    "SCORE_COLUMNS",
    "VERIFY_FORMATS",
    "VerifyResult",
    "check_export_input",
    "compare_scores",
    "derive_in_export",
    "lead_records",
    "load_python_export",
    "pmml_evaluator",
    "score_duckdb_sql",
    "score_pmml",
    "score_python_export",
    "score_reference",
    "sql_input_columns",
    "sql_rows_to_frame",
    "verify_exports",
]
