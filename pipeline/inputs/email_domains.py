"""The e-mail domain signal: business, free-mail, disposable, invalid or missing address,
judged by the shipped domain lists (extended by the config's extras).

:func:`email_domain_type` is the reference (one address; it is also the code of the
``python`` export); :func:`email_domain_types` runs it once per distinct address of a column,
reusing the verdict of a domain already seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd

from pipeline.inputs.signal_values import is_missing_value as _is_missing
from pipeline.inputs.signal_values import map_distinct

# ``_is_missing``: the scalar detectors' source is also the ``python`` export's code
# (:mod:`pipeline.exports.signals_py`), whose preamble defines it without pandas

EMAIL_DOMAIN_TYPES = ("business", "freemail", "disposable", "invalid", "missing")

_FREE_FILE = "free_email_domains.txt"
_DISPOSABLE_FILE = "disposable_email_domains.txt"


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



def email_domain_type(email: Any, lists: DomainLists, *,
                      verdicts: dict[str, str] | None = None) -> str:
    """Classify one address as business / freemail / disposable / invalid / missing.

    None, NaN or blank text is ``missing``; anything else that is not a plausible address
    (see ``_email_domain``), including non-text values, is ``invalid``. Case-insensitive,
    surrounding whitespace ignored. ``verdicts``: a cache of domain -> type, filled as
    domains are met (a column's addresses are mostly distinct, its domains are not).
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
    if verdicts is None:
        return _domain_type(domain, lists)
    verdict = verdicts.get(domain)
    if verdict is None:
        verdict = verdicts[domain] = _domain_type(domain, lists)
    return verdict


def email_domain_types(emails: pd.Series, lists: DomainLists) -> pd.Series:
    """:func:`email_domain_type` for a column; same index, name ``email_domain_type``, str dtype.

    Addresses are mostly distinct, so the domain verdict is cached per domain on top of the
    per-distinct-value evaluation.
    """
    verdicts: dict[str, str] = {}
    return map_distinct(emails, lambda email: email_domain_type(email, lists, verdicts=verdicts),
                        dtype="str", name="email_domain_type")


# the rule as data, for the exports that compute the signal themselves
# (:mod:`pipeline.exports.signals_sql` in SQL, :mod:`pipeline.exports.python` as Python)
EMAIL_RE = _EMAIL_RE
