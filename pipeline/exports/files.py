"""Every export by name: :data:`FORMATS`, :func:`export` (render one), :func:`export_all`
and :func:`write_export` (atomic write inside an output directory)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pipeline.exports.crm_sheet import export_crm_csv
from pipeline.exports.hubspot import export_hubspot
from pipeline.exports.pmml import export_pmml
from pipeline.exports.python import export_python
from pipeline.exports.sql import export_sql
from pipeline.exports.table import export_csv, export_json
from pipeline.model.rules import PointsRules

FORMATS = ("json", "csv", "sql", "pmml", "python", "hubspot", "crm-csv")
FILE_NAMES = {
    "json": "points_table.json",
    "csv": "points_table.csv",
    "sql": "score_leads.sql",
    "pmml": "points_table.pmml",
    "python": "score_leads.py",
    "hubspot": "hubspot_lead_score.json",
    "crm-csv": "crm_scoring_rules.csv",
}


_EXPORTERS: dict[str, Callable[[PointsRules], str]] = {
    "json": export_json,
    "csv": export_csv,
    "pmml": export_pmml,
    "python": export_python,
    "hubspot": export_hubspot,
    "crm-csv": export_crm_csv,
}


def export(rules: PointsRules, fmt: str, *, dialect: str | None = None) -> str:
    """Render ``rules`` in format ``fmt`` (one of :data:`FORMATS`); ``dialect`` is for ``sql``
    only (default ``duckdb``)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if fmt == "sql":
        return export_sql(rules, dialect=dialect or "duckdb")
    if dialect is not None:
        raise ValueError(f"dialect applies to fmt='sql' only, got dialect={dialect!r} for {fmt!r}")
    return _EXPORTERS[fmt](rules)


def safe_output_path(out_dir: str | os.PathLike[str], name: str | os.PathLike[str]) -> Path:
    """``out_dir / name``, refusing names that leave ``out_dir`` (absolute paths, ``..``,
    symlinks pointing outside, NUL bytes)."""
    text = os.fspath(name)
    if not text or "\x00" in text:
        raise ValueError(f"output name must be a non-empty path without NUL bytes, got {text!r}")
    if os.path.isabs(text) or Path(text).drive:
        raise ValueError(f"output name {text!r} must be relative to {os.fspath(out_dir)!r}")
    base = Path(out_dir).resolve()
    target = (base / text).resolve()
    if target == base or base not in target.parents:
        raise ValueError(f"output name {text!r} escapes the output directory {str(base)!r}")
    return target


def write_export(
    rules: PointsRules,
    fmt: str,
    out_path: str | os.PathLike[str],
    *,
    dialect: str | None = None,
    within: str | os.PathLike[str] | None = None,
) -> Path:
    """Render and write atomically (temp file in the same directory + ``os.replace``).

    With ``within``, ``out_path`` is a name inside that directory and is checked with
    :func:`safe_output_path`. Returns the path written.
    """
    text = export(rules, fmt, dialect=dialect)
    path = safe_output_path(within, out_path) if within is not None else Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file 0600: keep the mode of the file replaced, else the usual 0644
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path




def export_all(
    rules: PointsRules, formats: Iterable[str] = FORMATS, *, dialects: Sequence[str] = ("duckdb",)
) -> dict[str, str]:
    """Every requested format rendered, keyed by file name (``sql`` once per dialect)."""
    out: dict[str, str] = {}
    for fmt in formats:
        if fmt == "sql":
            for d in dialects:
                out[f"score_leads.{d}.sql"] = export(rules, "sql", dialect=d)
        else:
            out[FILE_NAMES[fmt]] = export(rules, fmt)
    return out


__all__ = ["FILE_NAMES", "FORMATS", "export", "export_all", "safe_output_path", "write_export"]
