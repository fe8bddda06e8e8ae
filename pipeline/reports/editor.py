"""The points editor: one self-contained HTML page (no server, nothing fetched).

The page embeds the points table, the lift evidence of each of its slots on the training
leads, and the holdout leads as slot codes (:func:`pipeline.model.audit.code_table`); its
script recomputes, at every change, what :func:`pipeline.model.audit.audit_tables` reports:
holdout AUC (ties count one half), SDR-ready volume and close rate at the threshold, and the
contradictions with the lift (significant slots whose points lie on the other side of their
factor's lead-weighted average). A person changes points, locks slots (a locked slot cannot
be changed, and is saved as a ``points.locked`` entry relative to the factor's most common
slot, as the config reads them) and moves the threshold; **Save** downloads the edited table
as an ``edited`` rules file (:mod:`pipeline.exports.importers`) for ``lead-scoring
register-rules``.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

import numpy as np

from pipeline.exports.importers import EDITED_FORMAT
from pipeline.model.audit import CodedTable, evidence, slot_paths

SCRIPT_RESOURCE = "points_editor.js"


def editor_payload(coded_train: CodedTable, y_train: np.ndarray, coded_holdout: CodedTable,
                   y_holdout: np.ndarray, *, parent: str, alpha: float = 0.05,
                   weeks: float | None = None) -> dict[str, Any]:
    """Everything the page shows and recomputes from (JSON-ready)."""
    rules = coded_train.rules
    table = evidence(coded_train, y_train)
    factors = []
    for j, factor in enumerate(rules.factors):
        part = table[table["factor"] == factor.name]
        leads = part["leads"].astype(int).tolist()
        rule = rules.event_rule(factor.name)
        factors.append({
            "name": factor.name, "group": factor.group, "kind": factor.kind,
            "event": None if rule is None else f"counted from the event log: {rule.describe()}; "
                     "a row is a number of occurrences (the CRM's criterion 'at least i "
                     "times' adds the difference between rows i - 1 and i)",
            "labels": coded_train.labels[j],
            "points": [int(p) for p in coded_train.points[j]],
            "paths": slot_paths(factor),
            "leads": leads,
            "rate": [None if np.isnan(r) else float(r) for r in part["conversion_rate"]],
            "p_adjusted": [None if np.isnan(p) else float(p) for p in part["p_adjusted"]],
            "side": part["side"].astype(int).tolist(),
            "significant": [bool(p < alpha) for p in part["p_adjusted"].fillna(1.0)],
            "reference": int(np.argmax(leads)) if leads else 0,
        })
    return {
        "format": EDITED_FORMAT, "parent": parent, "alpha": alpha,
        "rules": rules.to_dict(), "factors": factors,
        "overall_rate": float(np.mean(y_train)) if len(y_train) else 0.0,
        "weeks": weeks,
        "holdout": {"y": [int(v) for v in y_holdout],
                    "spam": [bool(v) for v in coded_holdout.spam],
                    "codes": [c.astype(int).tolist() for c in coded_holdout.codes]},
    }


def editor_html(payload: dict[str, Any]) -> str:
    """The page for ``payload`` (:func:`editor_payload`)."""
    data = json.dumps(payload, sort_keys=True, allow_nan=False).replace("</", "<\\/")
    title = html.escape(f"Points editor: {payload['parent']}")
    script = resources.files("pipeline").joinpath("resources", SCRIPT_RESOURCE).read_text(
        "utf-8")
    return (_PAGE.replace("__TITLE__", title).replace("__PAYLOAD__", data)
            .replace("__SCRIPT__", script))


_PAGE = """<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>__TITLE__</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem auto;
max-width:1150px;color:#1f2933;padding:0 1rem}
#figures{position:sticky;top:0;background:#fff;border-bottom:2px solid #e4e7eb;padding:.5rem 0;
display:flex;gap:1.6rem;flex-wrap:wrap;align-items:baseline;z-index:1}
.fig b{font-size:1.3rem}.fig small{color:#7b8794;display:block}
table{border-collapse:collapse;font-size:.85rem;margin:.3rem 0 1.2rem}
th,td{padding:.2rem .55rem;border-bottom:1px solid #e4e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.contradiction td{background:#fde8e8}input.pts{width:4.5rem;text-align:right}
.changed{background:#fff3c4}h2{font-size:1.05rem;margin:1rem 0 .2rem}
</style></head><body>
<h1>__TITLE__</h1>
<p>Change points, lock agreed levels, move the SDR-ready threshold: the figures are
recomputed on the holdout leads at once. Lift evidence is from the training leads; a red row
contradicts it (significant lift, points on the other side of the factor's average).
<b>Save</b> downloads the edited table; register it with
<code>lead-scoring register-rules FILE</code>.</p>
<div id='figures'>
<span class='fig'><small>holdout AUC</small><b id='auc'></b> <small id='auc-parent'></small></span>
<span class='fig'><small>SDR-ready at
<input id='threshold' type='number' step='1' style='width:4.5rem'> points</small>
<b id='sdr-ready'></b> <small id='sdr-share'></small></span>
<span class='fig'><small>close rate of SDR-ready</small><b id='close-rate'></b></span>
<span class='fig'><small>contradictions</small><b id='contradictions'></b></span>
<span class='fig'><button id='save'>Save</button> <button id='reset'>Reset</button></span>
</div>
<div id='tables'></div>
<script type='application/json' id='payload'>__PAYLOAD__</script>
<script>__SCRIPT__</script></body></html>
"""
