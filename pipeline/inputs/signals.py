"""Profile signals that count against a lead: free-mail or throwaway e-mail, spam-like names,
and seniority read from a free-text job title.

Each detector is a plain scalar function (the reference) with a vectorised twin that computes
on the distinct values of a column and maps the answers back, so a 1M-row column costs about
as much as its distinct values. Only the standard library and pandas are used.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd

EMAIL_DOMAIN_TYPES = ("business", "freemail", "disposable", "invalid", "missing")
SPAM_REASONS = ("no_capital", "keyboard_run", "repeated_chars", "fake_value")
SENIORITY_LEVELS = ("c_level", "vp", "director", "manager", "individual", "student", "missing")

_FREE_FILE = "free_email_domains.txt"
_DISPOSABLE_FILE = "disposable_email_domains.txt"


# --------------------------------------------------------------------------------------------
# shared helpers


def _is_missing(value: Any) -> bool:
    """None, NaN and pandas' NA are missing (empty text is judged by each detector)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _map_unique(
    values: pd.Series, func: Callable[[Any], Any], *, dtype: str, name: str
) -> pd.Series:
    """Apply ``func`` once per distinct value of ``values`` and broadcast back (same index)."""
    if not isinstance(values, pd.Series):
        raise TypeError(f"{name}: expected a pandas Series, got {type(values).__name__}")
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    answers = pd.Series([func(u) for u in uniques.to_numpy().tolist()], dtype=dtype)
    return pd.Series(answers.take(codes).array, index=values.index, name=name, dtype=dtype)


# --------------------------------------------------------------------------------------------
# e-mail domains


@dataclass(frozen=True)
class DomainLists:
    """The e-mail domains treated as free-mail and as disposable (lowercase, no leading dot)."""

    free: frozenset[str]
    disposable: frozenset[str]


def _read_domain_file(filename: str) -> list[str]:
    text = resources.files("pipeline").joinpath("resources", filename).read_text(encoding="utf-8")
    return [line.split("#", 1)[0].strip().lower() for line in text.splitlines()]


def _clean_domains(entries: Iterable[Any], *, parameter: str) -> set[str]:
    if isinstance(entries, str):
        raise TypeError(f"{parameter}: expected a list of domains, got the string {entries!r}")
    out: set[str] = set()
    for raw in entries:
        if not isinstance(raw, str):
            raise ValueError(f"{parameter}: every domain must be text, got {raw!r}")
        domain = raw.strip().lower().lstrip("@").strip(".")
        if not domain:
            continue
        if "." not in domain or "@" in domain or any(c.isspace() for c in domain):
            raise ValueError(
                f"{parameter}: {raw!r} is not a domain (need e.g. 'example.com': "
                "a dot, no '@', no spaces)"
            )
        out.add(domain)
    return out


def load_domain_lists(
    *, extra_free: Iterable[str] = (), extra_disposable: Iterable[str] = ()
) -> DomainLists:
    """The shipped free-mail and disposable domain lists, extended by the config's extras.

    Entries are lowercased; a leading ``@`` or dot is dropped; blank lines and ``#`` comments
    in the shipped files are ignored.
    """
    free = _clean_domains(_read_domain_file(_FREE_FILE), parameter=_FREE_FILE)
    disposable = _clean_domains(_read_domain_file(_DISPOSABLE_FILE), parameter=_DISPOSABLE_FILE)
    free |= _clean_domains(extra_free, parameter="extra_free")
    disposable |= _clean_domains(extra_disposable, parameter="extra_disposable")
    return DomainLists(free=frozenset(free), disposable=frozenset(disposable))


def domain_lists_digest() -> str:
    """SHA-256 of the shipped free-mail and disposable lists (as shipped, name and text), so a
    points table can record which lists its ``email_domain_type`` levels were learned with."""
    import hashlib

    digest = hashlib.sha256()
    for filename in (_FREE_FILE, _DISPOSABLE_FILE):
        text = resources.files("pipeline").joinpath("resources", filename).read_bytes()
        digest.update(filename.encode() + b"\0" + text + b"\0")
    return digest.hexdigest()


# local@label.label...tld: no whitespace, exactly one "@", no empty label.
_EMAIL_RE = re.compile(r"[^\s@]+@((?:[^\s@.]+\.)+([^\s@.]{2,}))")


def _email_domain(text: str) -> str | None:
    """The domain of a syntactically plausible address, else ``None``.

    Plausible: exactly one ``@``, a non-empty local part, no whitespace, a domain of
    non-empty dot-separated labels whose last label (the TLD) has 2+ characters and a letter.
    """
    match = _EMAIL_RE.fullmatch(text)
    if match is None or not any(map(str.isalpha, match.group(2))):
        return None
    return match.group(1)


def _domain_type(domain: str, lists: DomainLists) -> str:
    """Disposable beats free-mail; a subdomain of a listed domain counts as listed."""
    labels = domain.split(".")
    suffixes = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    if any(s in lists.disposable for s in suffixes):
        return "disposable"
    if any(s in lists.free for s in suffixes):
        return "freemail"
    return "business"


def email_domain_type(email: Any, lists: DomainLists) -> str:
    """Classify one address as business / freemail / disposable / invalid / missing.

    None, NaN or blank text is ``missing``; anything else that is not a plausible address
    (see ``_email_domain``), including non-text values, is ``invalid``. Case-insensitive,
    surrounding whitespace ignored.
    """
    if _is_missing(email):
        return "missing"
    if not isinstance(email, str):
        return "invalid"
    text = email.strip()
    if not text:
        return "missing"
    domain = _email_domain(text.lower())
    if domain is None:
        return "invalid"
    return _domain_type(domain, lists)


def email_domain_types(emails: pd.Series, lists: DomainLists) -> pd.Series:
    """:func:`email_domain_type` for a column; same index, name ``email_domain_type``, str dtype.

    Addresses are mostly distinct, so the domain verdict is cached per domain on top of the
    per-distinct-value evaluation.
    """
    cache: dict[str, str] = {}

    def classify(email: Any) -> str:
        if _is_missing(email):
            return "missing"
        if not isinstance(email, str):
            return "invalid"
        text = email.strip()
        if not text:
            return "missing"
        domain = _email_domain(text.lower())
        if domain is None:
            return "invalid"
        verdict = cache.get(domain)
        if verdict is None:
            verdict = cache[domain] = _domain_type(domain, lists)
        return verdict

    return _map_unique(emails, classify, dtype="str", name="email_domain_type")


# --------------------------------------------------------------------------------------------
# spam-like names

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
    return _map_unique(values, lambda v: bool(spam_reasons(v)), dtype="bool", name="spam_name")


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
    first_keys = _map_unique(first, _pair_key, dtype="str", name="first")
    last_keys = _map_unique(last, _pair_key, dtype="str", name="last")
    for pair_first, pair_last in _FAKE_PAIRS:
        flagged |= ((first_keys == pair_first) & (last_keys == pair_last)).to_numpy()
    return pd.Series(flagged, index=first.index, name="spam_name", dtype="bool")


# --------------------------------------------------------------------------------------------
# seniority from job title


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
    return _map_unique(titles, seniority, dtype="str", name="seniority")


# --------------------------------------------------------------------------------------------
# the rules as data, for the exports that compute these signals themselves
# (:mod:`pipeline.exports.signals_sql` in SQL, :mod:`pipeline.exports.python` as Python)

EMAIL_RE = _EMAIL_RE
RUN_PIECES = _RUN_PIECES
NAME_RUNS = _NAME_RUNS
FAKE_VALUES = _FAKE_VALUES
FAKE_WORDS = _FAKE_WORDS
FAKE_UNLESS_TITLE = _FAKE_UNLESS_TITLE
FAKE_PAIRS = _FAKE_PAIRS
SINGLE_CHAR_NAME_SCRIPTS = _SINGLE_CHAR_NAME_SCRIPTS
NOT_A_RANK = _NOT_A_RANK
SENIORITY_RULES = _SENIORITY_RULES
