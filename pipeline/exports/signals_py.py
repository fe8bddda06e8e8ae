"""The derived signals as standard-library Python for the ``python`` export: the code of
:mod:`pipeline.inputs.signals` itself (its functions' source, its tables as literals, the
domain lists the points table was trained with), and the raw-input contract of the export:
which signals it computes from which raw columns, and which event features it cannot make.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from pipeline.exports.signals_sql import needed_signals, raw_columns
from pipeline.inputs import email_domains, job_titles, spam_names
from pipeline.model.rules import PointsRules

# the functions of the signal modules the three scalar signals call, in dependency order
_FUNCTIONS = ("_email_domain", "_domain_type", "email_domain_type", "_longest_keyboard_run",
              "_has_keyboard_run", "_is_fake", "spam_reasons", "_pair_key", "is_spam_name",
              "_fold_title", "seniority")
_TABLES = ("_EMAIL_RE", "_RUN_PIECES", "_RUN4_RE", "_NAME_RUNS", "_FAKE_VALUES", "_FAKE_WORDS",
           "_FAKE_UNLESS_TITLE", "_WORD_RE", "_LETTER_WORD_RE", "_TRAILING_DIGITS_RE",
           "_REPEAT_RE", "_SINGLE_CHAR_NAME_SCRIPTS", "_FAKE_PAIRS", "_NOT_A_RANK",
           "_SENIORITY_RULES")
# event features made by aggregating an event log (pipeline.inputs.event_features)
EVENT_PREFIXES = ("decayed_", "velocity_", "days_to_first_")
EVENT_NAMES = ("days_since_last_event", "days_active")


def event_columns(rules: PointsRules) -> list[str]:
    """The columns of ``rules`` that are event features (``decayed_<group>``, velocity, days to
    first / since last event, days active; the counts of its ``event_rules``): they exist
    only after aggregating an event log."""
    counted = {r.factor for r in rules.event_rules}
    decayed = bool(rules.decay_half_life_days)
    return [c for c in rules.input_columns() if c in counted
            or (decayed and (c.startswith(EVENT_PREFIXES) or c in EVENT_NAMES))]


_SIGNAL_MODULES = (email_domains, spam_names, job_titles)


def _signal_member(name: str) -> Any:
    """The function or table ``name`` of the signal module that defines it."""
    for module in _SIGNAL_MODULES:
        if name in vars(module):
            return vars(module)[name]
    raise LookupError(f"no signal module defines {name}")


def _literal(value: Any) -> str:
    if isinstance(value, re.Pattern):
        if value.flags != re.UNICODE:
            raise ValueError(f"pattern {value.pattern!r}: flags other than re.UNICODE")
        return f"re.compile({value.pattern!r})"
    if isinstance(value, frozenset):
        return f"frozenset({sorted(value, key=repr)!r})"
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return "(\n" + "".join(f"    ({v[0]!r}, {_literal(v[1])}),\n" for v in value) + ")"
    return repr(value)


def signal_code(rules: PointsRules) -> str:
    """The Python text that defines ``derive(lead)`` for the export (the identity when the
    table reads no derived signal and no event feature)."""
    signals = needed_signals(rules)
    events = event_columns(rules)
    if not signals and not events:
        return ('\n\ndef derive(lead):\n    """Nothing to derive: the points table reads raw '
                'columns only."""\n    return lead\n')
    sources = {s: raw_columns(s, rules.derived) for s in signals}
    parts = ["\n# " + "-" * 90, "# raw leads: the derived signals (the code of "
             "pipeline.inputs.signals) and the columns this file cannot make", "",
             "import re", "import unicodedata", "",
             f"SIGNALS = {sources!r}", f"EVENT_COLUMNS = {events!r}", ""]
    if signals:
        lists = email_domains.load_domain_lists(
            extra_free=tuple(rules.derived.extra_free_domains),
            extra_disposable=tuple(rules.derived.extra_disposable_domains))
        parts += [
            "",
            "def _is_missing(value):",
            '    """None and NaN are missing (empty text is judged by each detector)."""',
            "    return value is None or (isinstance(value, float) and math.isnan(value))",
            "", "",
            "class DomainLists:",
            '    """The e-mail domains treated as free-mail and as disposable."""',
            "",
            "    def __init__(self, free, disposable):",
            "        self.free, self.disposable = free, disposable",
            "", "",
            f"DOMAIN_LISTS = DomainLists(free={_literal(lists.free)},\n"
            f"                           disposable={_literal(lists.disposable)})",
        ]
        parts += [f"{name} = {_literal(_signal_member(name))}" for name in _TABLES]
        parts += ["\n\n" + inspect.getsource(_signal_member(name)).rstrip() for name in _FUNCTIONS]
    parts.append(_DERIVE)
    return "\n".join(parts) + "\n"


_DERIVE = '''

def _clean(value):
    """Text as scoring reads it: stripped, None when blank or a missing token."""
    if isinstance(value, str):
        value = value.strip()
        if value == "" or value in RULES["missing_values"]:
            return None
    return value


def derive(lead):
    """``lead`` with the derived signals it lacks computed from its raw columns (a column of
    the signal's own name is used as given). Refuses (ValueError) a lead that lacks a signal
    and its raw columns, or an event feature: scored as missing they would mis-score."""
    absent = [c for c in EVENT_COLUMNS if c not in lead]
    if absent:
        raise ValueError(
            f"the points table scores event features {absent}, made by aggregating the event "
            "log: add them to the leads (lead-scoring features --model REF --input LEADS "
            "--events EVENTS --output FILE)")
    out = dict(lead)
    for signal, columns in SIGNALS.items():
        if signal in lead:
            continue
        present = [c for c in columns if c in lead]
        if not present:
            raise ValueError(
                f"the lead has neither {signal!r} nor the raw column(s) {columns} it is "
                "computed from: add one of them")
        values = [_clean(lead[c]) for c in present]
        if signal == "email_domain_type":
            out[signal] = email_domain_type(values[0], DOMAIN_LISTS)
        elif signal == "name_spam":
            last = values[1] if len(values) > 1 else None
            out[signal] = "yes" if is_spam_name(values[0], last) else "no"
        else:
            out[signal] = seniority(values[0])
    return out
'''


__all__ = ["EVENT_NAMES", "EVENT_PREFIXES", "event_columns", "signal_code"]
