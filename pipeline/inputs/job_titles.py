"""The seniority signal: the rank a free-text job title states (c_level, vp, director,
manager, individual, student, missing), by keyword rules in English, German, French and Dutch.

:func:`seniority` is the reference (one title; it is also the code of the ``python`` export);
:func:`seniorities` runs it once per distinct title of a column.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pandas as pd

from pipeline.inputs.signal_values import is_missing_value as _is_missing
from pipeline.inputs.signal_values import map_distinct

# ``_is_missing``: the scalar detectors' source is also the ``python`` export's code
# (:mod:`pipeline.exports.signals_py`), whose preamble defines it without pandas

SENIORITY_LEVELS = ("c_level", "vp", "director", "manager", "individual", "student", "missing")



def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(rf"\b(?:{p})\b" for p in patterns))


# Phrases removed before matching: the rank in them belongs to someone else or is no rank
# ("Assistant to the CEO", "Product Owner", "Lead Generation Specialist").
_NOT_A_RANK = re.compile(
    r"\b(?:assistant|secretary|advisor|adviser|aide|office)\s+(?:to|of)\b.*$"
    r"|\b(?:product|process|data|service|system|content|application|risk|control|budget)"
    r"\s+owner\b"
    r"|\blead\s+(?:generation|gen|management|nurturing|qualification)\b"
)
# (level, pattern) in precedence order: the first match wins. Trainee words come first
# ("Trainee Manager" is a trainee); "student" comes after the ranks ("Student Services
# Manager" is a manager); "vice president" is tested before "president".
_SENIORITY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "student",
        _rx(r"interns?", "internship", "trainee", "apprentice", "werkstudent(?:in)?",
            r"praktikant(?:in)?", "stagiaire", "stagiair", "azubi", r"auszubildende[rn]?"),
    ),
    ("vp", _rx(r"vice[\s-]*president", "vp", "svp", "evp", "avp", r"vice[\s-]*presidente")),
    (
        "c_level",
        _rx("ceo", "cto", "cfo", "coo", "cmo", "cro", "cio", "ciso", "cdo", "cpo", "cco", "chro",
            "chief", r"co-?founder", "founder", "owner", r"co-?owner", "president",
            r"managing\s+director", r"managing\s+partner", "chairman", "chairwoman",
            r"gesch(?:ae|a)ftsf(?:ue|u)hrer(?:in)?", "inhaber(?:in)?", r"gr(?:ue|u)nder(?:in)?",
            r"vorstand\w*", r"directeur\s+general", r"directrice\s+generale", "pdg",
            r"algemeen\s+directeur", "eigenaar", "oprichter", "bestuurder"),
    ),
    # "Leiter Vertrieb", "Vertriebsleiter": head of; team / project / group leads are managers
    ("vp", _rx("head", "hoofd", r"(?!(?:team|projekt|gruppen)leiter)\w*leiter(?:in)?")),
    ("director", _rx(r"directors?", "directeur", "directrice", r"direktor(?:in)?", "dir")),
    (
        "manager",
        _rx(r"managers?", "mgr", r"lead", r"leader", "supervisor", "responsable",
            r"(?:team|projekt|gruppen)leiter(?:in)?", "teamleider", "manager[a-z]*"),
    ),
    (
        "student",
        _rx(r"students?", r"studentin", r"phd\s+(?:candidate|student)",
            r"doctoral\s+(?:candidate|student)", "doktorand(?:in)?", "promovendus"),
    ),
)  # fmt: skip


def _fold_title(title: str) -> str:
    """Lowercase, accents removed, whitespace collapsed: "Geschäftsführer" -> "geschaftsfuhrer"."""
    decomposed = unicodedata.normalize("NFKD", title.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.split())


def seniority(title: Any) -> str:
    """Seniority level of a free-text job title (see ``SENIORITY_LEVELS``).

    Keyword rules on whole words, case- and accent-insensitive, first match wins:
    trainee words -> student; VP / Vice President -> vp; C-suite titles, Chief, Founder,
    Owner, President, Managing Director -> c_level; Head of -> vp; Director -> director;
    Manager / Lead -> manager; Student / PhD candidate -> student; any other text ->
    individual; None / NaN / blank -> missing. A few English, German, French and Dutch
    forms are known.
    """
    if _is_missing(title):
        return "missing"
    if not isinstance(title, str):
        return "individual"
    folded = _fold_title(title)
    if not folded:
        return "missing"
    folded = _NOT_A_RANK.sub(" ", folded)
    for level, pattern in _SENIORITY_RULES:
        if pattern.search(folded):
            return level
    return "individual"


def seniorities(titles: pd.Series) -> pd.Series:
    """:func:`seniority` for a column; same index, name ``seniority``, str dtype."""
    return map_distinct(titles, seniority, dtype="str", name="seniority")


# the rules as data, for the exports that compute the signal themselves
# (:mod:`pipeline.exports.signals_sql` in SQL, :mod:`pipeline.exports.python` as Python)
NOT_A_RANK = _NOT_A_RANK
SENIORITY_RULES = _SENIORITY_RULES
