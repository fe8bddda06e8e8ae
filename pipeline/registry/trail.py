"""The registry's audit trail in words a person reads: alias moves, gate decisions and the
descriptions of the registered model and its versions.

Pure functions (no MLflow): :mod:`pipeline.registry.store` writes what they format and reads
back what they parse. Every tag value is one short line (MLflow's UI shows tags in a narrow
column; a JSON object there is unreadable):

- an alias move: ``audit.<UTC time>.<alias>`` = ``v3 from v1 by alice: promoted: ...``
  (``from -`` for the first move), at most :data:`MAX_TAG` characters;
- a gate decision: ``gate.promoted`` = ``true``, ``gate.challenger_auc`` = ``0.8123``,
  ``gate.champion_auc``, ``gate.champion_version``, ``gate.margin``, ``gate.summary``.

Older stores hold one JSON object per tag (``gate_decision``, ``audit.*``): still read.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_TAG = 250  # characters of a free-text tag value (reasons, summaries)
GATE_PREFIX = "gate."
_MOVE = re.compile(r"^v(?P<version>\S+) from (?:v(?P<previous>\S+)|-) by (?P<user>\S+): "
                   r"(?P<reason>.*)$", re.S)


def short(text: str, limit: int = MAX_TAG) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis says it was cut)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def format_move(version: str, previous: str | None, user: str, reason: str) -> str:
    """One alias move as a tag value: ``v3 from v1 by alice: why``."""
    user = re.sub(r"\s+", "_", user) or "unknown"
    return short(f"v{version} from {'v' + previous if previous else '-'} by {user}: {reason}")


def parse_move(key_time: str, alias: str, value: str) -> dict[str, str]:
    """The move a tag holds (:func:`format_move`, or an older store's JSON object) as the
    columns of :data:`pipeline.registry.aliases.AUDIT_COLUMNS`."""
    if value.lstrip().startswith("{"):
        data = json.loads(value)
        return {k: str(data.get(k, "")) for k in
                ("time", "alias", "version", "previous", "reason", "user")}
    match = _MOVE.match(value)
    if match is None:  # written by hand: keep it, in the reason
        return {"time": key_time, "alias": alias, "version": "", "previous": "",
                "reason": value, "user": ""}
    return {"time": key_time, "alias": alias, "version": match["version"],
            "previous": match["previous"] or "", "reason": match["reason"],
            "user": match["user"]}


def key_time(stamp: str) -> str:
    """``20261203T130000.123456Z`` (an audit tag key's time) -> ``2026-12-03T13:00:00.123456Z``."""
    m = re.match(r"^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(\.\d+)?Z$", stamp)
    if not m:
        return stamp
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}{m[7] or ''}Z"


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{number:.4f}" if math.isfinite(number) else ""


def gate_tags(decision: dict[str, Any]) -> dict[str, str]:
    """A gate decision as short version tags (``gate.*``)."""
    tags = {"gate.promoted": str(bool(decision.get("promoted"))).lower(),
            "gate.summary": short(decision.get("summary", ""))}
    for key in ("challenger_auc", "champion_auc", "margin"):
        if _number(decision.get(key)):
            tags[f"gate.{key}"] = _number(decision[key]) if key != "margin" else \
                f"{float(decision[key]):g}"
    if decision.get("champion_version"):
        tags["gate.champion_version"] = str(decision["champion_version"])
    return tags


def decision_from_tags(tags: dict[str, str]) -> dict[str, Any]:
    """The gate decision kept on a version (:func:`gate_tags`, or an older JSON tag); {} when
    none was recorded."""
    if "gate_decision" in tags and GATE_PREFIX + "promoted" not in tags:
        return json.loads(tags["gate_decision"])
    if GATE_PREFIX + "promoted" not in tags:
        return {}
    decision: dict[str, Any] = {"promoted": tags["gate.promoted"] == "true",
                                "summary": tags.get("gate.summary", "")}
    for key in ("challenger_auc", "champion_auc", "margin"):
        if tags.get(f"gate.{key}"):
            decision[key] = float(tags[f"gate.{key}"])
    if tags.get("gate.champion_version"):
        decision["champion_version"] = tags["gate.champion_version"]
    return decision


def gate_brief(decision: dict[str, Any]) -> str:
    """A gate decision in at most ~40 characters: ``promoted 0.8123 vs v1 0.8100``,
    ``refused 0.7012 vs v1 0.8100``, ``first champion 0.8123``, ``no signal``."""
    if not decision:
        return ""
    summary = str(decision.get("summary", ""))
    if "no signal" in summary:
        return "refused: no signal"
    verb = "promoted" if decision.get("promoted") else "refused"
    challenger = _number(decision.get("challenger_auc"))
    champion = _number(decision.get("champion_auc"))
    if "cannot evaluate" in summary:
        return "refused: champion unreadable"
    if not champion:
        return f"first champion {challenger}".strip() if decision.get("promoted") else verb
    against = f"v{decision['champion_version']} " if decision.get("champion_version") else ""
    return f"{verb} {challenger} vs {against}{champion}"


def model_description(model_name: str, config_name: str) -> str:
    """The registered model's description (markdown, shown on its MLflow page)."""
    return (f"Lead-scoring points table trained by `lead-scoring train` (config "
            f"`{config_name}`): FIT + PAIN integer points per factor level, learned from won "
            "and lost leads. `@champion` is the version that scores; `@challenger` the newest. "
            "A new version replaces the champion only through the promotion gate (holdout AUC "
            "not worse than the champion's by more than `registry.promotion_margin`) or "
            "`lead-scoring promote`. Each version's description says what changed against "
            f"its parent and the gate's decision; `lead-scoring history --name {model_name}` "
            "lists them.")


def version_description(*, version: str, parent: str | None, changes: Any,
                        metrics: dict[str, float], decision: dict[str, Any],
                        kept: list[str], rows: int) -> str:
    """A version's description: its figures, what changed against ``parent`` (a
    :func:`pipeline.exports.formats.diff_rules` frame, or None for the first) and the gate."""
    auc = _number(metrics.get("holdout_auc"))
    lines = [f"Version {version}: {len(kept)} factor{'' if len(kept) == 1 else 's'} "
             f"({', '.join(kept) or 'none'}), "
             f"{rows:,} training leads, holdout AUC {auc or 'n/a'}."]
    if parent is None or changes is None:
        lines.append("What changed: first version (no parent).")
    else:
        counts = changes["change"].value_counts().to_dict() if len(changes) else {}
        if not counts:
            lines.append(f"What changed against v{parent}: no rule changed points.")
        else:
            parts = [f"{n} rules {kind}" for kind, n in sorted(counts.items())]
            factors = list(dict.fromkeys(changes.loc[changes["change"] != "unchanged",
                                                     "factor"]))
            lines.append(f"What changed against v{parent}: {', '.join(parts)} "
                         f"(factors: {', '.join(map(str, factors[:12]))}"
                         f"{', ...' if len(factors) > 12 else ''}).")
    lines.append(f"Gate: {decision.get('summary', 'not run')}.")
    return "\n\n".join(lines)


WIDTH = 80  # `lead-scoring history` fits a standard terminal


def _minute(stamp: str) -> str:
    """``2026-12-03T13:00:00.123Z`` -> ``2026-12-03 13:00``."""
    return stamp[:16].replace("T", " ") if stamp else ""


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[:WIDTH - 1] + "…"


def history_lines(model_name: str, versions: Any, moves: Any) -> list[str]:
    """The history of a registered model as plain lines of at most :data:`WIDTH` characters:
    one line per version (number, creation time, aliases, the gate in brief), its champion
    period under it, then every alias move with its reason wrapped below."""
    import textwrap

    lines = [_fit(f"{model_name}: {len(versions)} versions"),
             f"{'ver':>4}  {'created (UTC)':<16}  {'aliases':<20}  gate"]
    for row in versions.itertuples():
        aliases = str(row.aliases).replace(",", ", ")
        lines.append(_fit(f"{row.version:>4}  {row.created[:16].replace('T', ' '):<16}  "
                          f"{aliases:<20}  {getattr(row, 'gate_brief', '')}"))
        if row.champion_since:
            current = "champion" in str(row.aliases).split(",")
            until = "now" if current or not row.champion_until else _minute(row.champion_until)
            lines.append(_fit(f"{'':6}champion {_minute(row.champion_since)} to {until}"))
    if len(moves):
        lines += ["", "alias moves (UTC):"]
        for move in moves.itertuples():
            previous = f"v{move.previous}" if move.previous else "-"
            lines.append(_fit(f"  {_minute(move.time)}  {move.alias:<10}  {previous} -> "
                              f"v{move.version}  by {move.user}"))
            lines += textwrap.wrap(str(move.reason), WIDTH, initial_indent=" " * 6,
                                   subsequent_indent=" " * 6, break_long_words=True)
    return lines
