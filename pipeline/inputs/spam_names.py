"""The spam-name signal: a name-like field that looks like form spam (no capital, a keyboard
run, repeated characters, a placeholder), or a placeholder pair such as John Doe.

:func:`spam_reasons` and :func:`is_spam_name` are the reference (one value; they are also the
code of the ``python`` export); :func:`spam_field_flags` and :func:`spam_flags` run them once
per distinct value of a column.
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

SPAM_REASONS = ("no_capital", "keyboard_run", "repeated_chars", "fake_value")


# Letter rows of the three common Latin layouts. A keyboard run is a stretch of consecutive
# keys of one row, typed forwards or backwards.
KEYBOARD_ROWS: dict[str, tuple[str, ...]] = {
    "qwerty": ("qwertyuiop", "asdfghjkl", "zxcvbnm"),
    "qwertz": ("qwertzuiopü", "asdfghjklöä", "yxcvbnm"),
    "azerty": ("azertyuiop", "qsdfghjklm", "wxcvbn"),
}
_RUN_PIECES = frozenset(
    line[i:j]
    for rows in KEYBOARD_ROWS.values()
    for row in rows
    for line in (row, row[::-1])
    for i in range(len(line))
    for j in range(i + 2, len(line) + 1)
)
_RUN4_RE = re.compile("|".join(sorted(p for p in _RUN_PIECES if len(p) == 4)))
# Keyboard runs that are also real names ("Reza", "Trew", "Wert", "Wertz"): never counted.
_NAME_RUNS = frozenset({"reza", "trew", "wert", "wertz"})

# Whole values that are placeholders, not names (compared case-folded, spaces collapsed).
_FAKE_VALUES = frozenset(
    {
        "n/a", "n.a.", "n.a", "n\\a", "n / a", "john doe", "jane doe", "max mustermann",
        "erika mustermann", "first name", "last name", "your name", "full name",
    }
)  # fmt: skip
# Words that on their own (alone or with each other, digits stripped) make a value fake.
_FAKE_WORDS = frozenset(
    {
        "test", "testing", "tester", "asdf", "xxx", "xx", "none", "null", "nil", "unknown",
        "fake", "sample", "abc", "abcd", "qwerty", "foo", "foobar", "first", "last", "name",
        "firstname", "lastname", "fullname", "surname", "your", "dummy", "demo", "example",
        "blah", "anonymous", "nobody", "noname", "vorname", "nachname", "voornaam",
        "achternaam", "prenom", "prénom",
    }
)  # fmt: skip
# Placeholders that are also real names ("Na": a Korean surname and a Chinese given name;
# "Bar": a Hebrew given name): fake unless written title-case ("Na", "Bar") on their own.
_FAKE_UNLESS_TITLE = frozenset({"na", "bar"})
_WORD_RE = re.compile(r"[^\W_]+")
_LETTER_WORD_RE = re.compile(r"[^\W\d_]+")
_TRAILING_DIGITS_RE = re.compile(r"\d+$")
_REPEAT_RE = re.compile(r"(\S)\1{3,}")
# Scripts where a single character is a whole name (Chinese 李, Korean 김).
_SINGLE_CHAR_NAME_SCRIPTS = (
    "CJK UNIFIED IDEOGRAPH",
    "CJK COMPATIBILITY IDEOGRAPH",
    "HANGUL SYLLABLE",
)


def _longest_keyboard_run(word: str) -> int:
    """Length of the longest keyboard run in ``word`` (lowercase), ignoring ``_NAME_RUNS``."""
    best = 0
    n = len(word)
    for i in range(n - 1):
        if word[i : i + 2] not in _RUN_PIECES:
            continue
        j = i + 2
        while j < n and word[i : j + 1] in _RUN_PIECES:
            j += 1
        if j - i > best and word[i:j] not in _NAME_RUNS:
            best = j - i
    return best


def _has_keyboard_run(text: str) -> bool:
    """A run of 5+ keys anywhere, or a run of exactly 4 keys that is a whole word.

    Why not every 4-run: common surnames hold one inside a longer word (Doherty, Rafferty,
    Haggerty: "erty"; Wertheimer: "wert"; Hertz: "ertz"), while form spam types the run on
    its own ("asdf", "qwer"). Words are maximal runs of letters.
    """
    lowered = text.lower()
    if _RUN4_RE.search(lowered) is None:
        return False
    for word in _LETTER_WORD_RE.findall(lowered):
        run = _longest_keyboard_run(word)
        if run >= 5 or (run == 4 and len(word) == 4):
            return True
    return False


def _is_fake(text: str) -> bool:
    """A placeholder value, no letters at all, or one lone character (see ``spam_reasons``)."""
    folded = " ".join(text.casefold().split())
    if folded in _FAKE_VALUES:
        return True
    if not any(map(str.isalpha, text)):
        return True  # digits only, punctuation only
    words = _WORD_RE.findall(text)
    if len(words) == 1 and len(words[0]) == 1:
        # one character; a CJK / Hangul character can be a whole name
        return not unicodedata.name(words[0], "").startswith(_SINGLE_CHAR_NAME_SCRIPTS)
    kinds = []
    for word in words:
        key = _TRAILING_DIGITS_RE.sub("", word.casefold())
        if not key:
            continue  # a number next to a placeholder ("test 123") adds nothing
        if key in _FAKE_WORDS:
            kinds.append("fake")
        elif key in _FAKE_UNLESS_TITLE:
            kinds.append("title" if word.istitle() else "fake")
        else:
            return False
    return "fake" in kinds


def spam_reasons(value: Any) -> list[str]:
    """Why a name-like field looks like form spam; empty list when it looks like a real name.

    Reasons, in the order of ``SPAM_REASONS``:

    * ``no_capital``: has cased letters but not one capital (judged on the whole value, so
      "van der Berg" passes); caseless scripts (Chinese, Arabic, ...) are never flagged;
    * ``keyboard_run``: 5+ consecutive keys of a QWERTY / QWERTZ / AZERTY letter row
      anywhere, or exactly 4 forming a whole word (forwards or backwards, any case);
    * ``repeated_chars``: one non-space character 4+ times in a row, or the whole value one
      character repeated (length 3+);
    * ``fake_value``: a placeholder (test, n/a, asdf, first name, ...), no letters at all,
      or a single character (except a CJK / Hangul character, which can be a whole name).

    A missing or blank value gives no reasons (missingness is a separate signal); any other
    non-text value is ``fake_value``.
    """
    if _is_missing(value):
        return []
    if not isinstance(value, str):
        return ["fake_value"]
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        return []
    reasons = []
    if any(map(str.islower, text)) and not (
        any(map(str.isupper, text)) or any(map(str.istitle, text))
    ):
        reasons.append("no_capital")
    if _has_keyboard_run(text):
        reasons.append("keyboard_run")
    folded = text.casefold()
    if _REPEAT_RE.search(folded) or (len(folded) >= 3 and len(set(folded)) == 1):
        reasons.append("repeated_chars")
    if _is_fake(text):
        reasons.append("fake_value")
    return reasons


# Full names that are placeholders only as a pair ("Doe" and "John" are real on their own).
_FAKE_PAIRS = frozenset(
    {("john", "doe"), ("jane", "doe"), ("max", "mustermann"), ("erika", "mustermann")}
)


def _pair_key(value: Any) -> str:
    """How a name is compared against ``_FAKE_PAIRS``: case-folded, spaces collapsed."""
    if _is_missing(value) or not isinstance(value, str):
        return ""
    return " ".join(unicodedata.normalize("NFC", value).casefold().split())


def is_spam_name(first: Any, last: Any) -> bool:
    """True when either name field has a spam reason, or the pair is a placeholder (John Doe)."""
    if spam_reasons(first) or spam_reasons(last):
        return True
    return (_pair_key(first), _pair_key(last)) in _FAKE_PAIRS


def spam_field_flags(values: pd.Series) -> pd.Series:
    """Per row: does this one name-like field have any :func:`spam_reasons` (bool, same index)."""
    return map_distinct(values, lambda v: bool(spam_reasons(v)), dtype="bool", name="spam_name")


def spam_flags(first: pd.Series, last: pd.Series) -> pd.Series:
    """:func:`is_spam_name` for two aligned columns; bool Series named ``spam_name``."""
    for name, series in (("first", first), ("last", last)):
        if not isinstance(series, pd.Series):
            raise TypeError(f"spam_flags: {name} must be a pandas Series, got {type(series)}")
    if len(first) != len(last) or not first.index.equals(last.index):
        raise ValueError(
            "spam_flags: first and last must share one index (same labels, same order), "
            f"got lengths {len(first)} and {len(last)}"
        )
    flagged = spam_field_flags(first).to_numpy() | spam_field_flags(last).to_numpy()
    first_keys = map_distinct(first, _pair_key, dtype="str", name="first")
    last_keys = map_distinct(last, _pair_key, dtype="str", name="last")
    for pair_first, pair_last in _FAKE_PAIRS:
        flagged |= ((first_keys == pair_first) & (last_keys == pair_last)).to_numpy()
    return pd.Series(flagged, index=first.index, name="spam_name", dtype="bool")


# the rules as data, for the exports that compute the signal themselves
# (:mod:`pipeline.exports.signals_sql` in SQL, :mod:`pipeline.exports.python` as Python)
RUN_PIECES = _RUN_PIECES
NAME_RUNS = _NAME_RUNS
FAKE_VALUES = _FAKE_VALUES
FAKE_WORDS = _FAKE_WORDS
FAKE_UNLESS_TITLE = _FAKE_UNLESS_TITLE
FAKE_PAIRS = _FAKE_PAIRS
SINGLE_CHAR_NAME_SCRIPTS = _SINGLE_CHAR_NAME_SCRIPTS
