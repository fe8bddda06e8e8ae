"""The derived signals (e-mail domain type, spam-like names, seniority) as SQL, so that the
``sql`` export scores raw CRM leads: the same rules as :mod:`pipeline.inputs.signals`, read
from its tables (domain lists, keyboard runs, placeholder words, title patterns), written as a
domain table and pattern matching for DuckDB and Spark.

Each raw column is cleaned first as scoring cleans it (surrounding whitespace stripped, blank
and missing tokens NULL). Where SQL cannot follow Python exactly the difference is on rare
Unicode only, and stated: DuckDB's ``lower`` / ``strip_accents`` stand for ``casefold`` /
NFKD (``ß`` stays ``ß``, ligatures stay ligatures); RE2's ``\\b`` and ``\\w`` are ASCII;
Spark does not NFC-normalise names (keyed-in text is NFC already). Postgres has no list
functions or RE2 classes in common: its export reads the derived columns from the table
(:data:`SIGNAL_DIALECTS`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.exports.sql import sql_identifier, sql_string
from pipeline.inputs import job_titles, spam_names
from pipeline.inputs.clean_columns import PY_WHITESPACE
from pipeline.inputs.email_domains import load_domain_lists
from pipeline.model.rules import DerivedSignals, PointsRules

EMAIL_TYPE, NAME_SPAM, SENIORITY = "email_domain_type", "name_spam", "seniority"
DERIVED_SIGNALS = (EMAIL_TYPE, NAME_SPAM, SENIORITY)
SIGNAL_DIALECTS = ("duckdb", "spark")  # the dialects whose export computes the signals
DOMAIN_TABLE = "__ls_domains"
# letters as Python's [^\W\d_] has them (alphabetic, or numeric but not a decimal digit)
LETTER = r"\pL\p{Nl}\p{No}"
# CJK ideographs and Hangul syllables: one of them can be a whole name
_CJK = (r"\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}\x{F900}-\x{FAFF}\x{20000}-\x{2FA1F}"
        r"\x{30000}-\x{323AF}\x{AC00}-\x{D7A3}")


def needed_signals(rules: PointsRules) -> list[str]:
    """The derived signals ``rules`` reads (factors, or ``name_spam`` for the spam gate) whose
    raw columns the table's ``derived`` settings name: the ones an export computes."""
    d = rules.derived
    source = {EMAIL_TYPE: bool(d.email_column), NAME_SPAM: bool(d.name_columns),
              SENIORITY: bool(d.title_column)}
    return [s for s in DERIVED_SIGNALS if s in rules.input_columns() and source[s]]


def raw_columns(signal: str, derived: DerivedSignals) -> list[str]:
    """The raw columns ``signal`` is computed from."""
    if signal == EMAIL_TYPE:
        return [derived.email_column] if derived.email_column else []
    if signal == NAME_SPAM:
        return list(derived.name_columns[:2])
    return [derived.title_column] if derived.title_column else []


def _re(pattern: str, dialect: str) -> str:
    """A regular expression literal: Java (Spark) reads ``\\x{...}`` as RE2 does."""
    return sql_string(pattern, dialect=dialect)


def _class(chars: str) -> str:
    return "".join(f"\\x{{{ord(c):04X}}}" for c in chars)


_WS = _class(PY_WHITESPACE)
WS_CLASS, WS_RUN = f"[{_WS}]", f"[{_WS}]+"
ALPHA, LOWER, UPPER = r"\pL", r"\p{Ll}", r"[\p{Lu}\p{Lt}]"
CJK_CLASS = f"[{_CJK}]"


def _matches(value: str, pattern: str, dialect: str) -> str:
    """Whether ``pattern`` occurs in ``value`` (unanchored search)."""
    if dialect == "duckdb":
        return f"regexp_matches({value}, {_re(pattern, dialect)})"
    return f"({value} RLIKE {_re(pattern, dialect)})"


def _full(value: str, pattern: str, dialect: str) -> str:
    """Whether the whole of ``value`` matches ``pattern``."""
    return _matches(value, f"^(?:{pattern})\\z" if dialect == "spark" else f"^(?:{pattern})$",
                    dialect)


def _replace(value: str, pattern: str, by: str, dialect: str) -> str:
    flags = ", 'g'" if dialect == "duckdb" else ""
    return f"regexp_replace({value}, {_re(pattern, dialect)}, {sql_string(by, dialect=dialect)}" \
           f"{flags})"


def _any(items: str, var: str, test: str, dialect: str) -> str:
    """Whether ``test`` (over ``var``) holds for some element of the list ``items``."""
    if dialect == "duckdb":
        return f"coalesce(list_bool_or(list_transform({items}, lambda {var}: {test})), false)"
    return f"exists({items}, {var} -> {test})"


def _all(items: str, var: str, test: str, dialect: str) -> str:
    if dialect == "duckdb":
        return f"coalesce(list_bool_and(list_transform({items}, lambda {var}: {test})), true)"
    return f"forall({items}, {var} -> {test})"


def _words(value: str, pattern: str, dialect: str) -> str:
    """Every match of ``pattern`` in ``value``, as a list."""
    lit = _re(f"({pattern})", dialect)
    return f"regexp_extract_all({value}, {lit}" + (")" if dialect == "duckdb" else ", 1)")


def _in(value: str, values: list[str], dialect: str) -> str:
    return f"{value} IN ({', '.join(sql_string(v, dialect=dialect) for v in sorted(values))})"


def clean_text(column: str, rules: PointsRules, dialect: str) -> str:
    """A raw text column as scoring reads it: stripped of Python's whitespace, NULL when blank
    or a missing token."""
    text = "VARCHAR" if dialect == "duckdb" else "STRING"
    chars = sql_string(PY_WHITESPACE, dialect=dialect)
    stripped = (f"trim(CAST({column} AS {text}), {chars})" if dialect == "duckdb"
                else f"trim(BOTH {chars} FROM CAST({column} AS {text}))")
    tokens = ", ".join(sql_string(t, dialect=dialect)
                       for t in dict.fromkeys(["", *rules.missing_values]))
    return f"(CASE WHEN {stripped} IN ({tokens}) THEN NULL ELSE {stripped} END)"


# --------------------------------------------------------------------------------------------
# e-mail domain type


def domain_table_sql(derived: DerivedSignals, dialect: str) -> str:
    """``__ls_domains(domain, kind)``: the free-mail and disposable domains the table was
    trained with (shipped lists + the config's extras), as a VALUES table."""
    lists = load_domain_lists(extra_free=tuple(derived.extra_free_domains),
                              extra_disposable=tuple(derived.extra_disposable_domains))
    rows = [(d, "disposable") for d in sorted(lists.disposable)]
    rows += [(d, "freemail") for d in sorted(lists.free)]
    values = ",\n    ".join(f"({sql_string(d, dialect=dialect)}, {sql_string(k, dialect=dialect)})"
                            for d, k in rows)
    return (f"{DOMAIN_TABLE}(domain, kind) AS (\n  SELECT * FROM (VALUES\n    {values}\n"
            "  ) AS t(domain, kind)\n)")


def email_domain_sql(value: str, dialect: str) -> str:
    """The lowercased domain of the cleaned address ``value`` when it is plausible (one
    ``@``, a local part, no whitespace, non-empty labels, a TLD of 2+ characters with a
    letter), else NULL."""
    not_ws = f"[^{_WS}@"
    pattern = f"^{not_ws}]+@((?:{not_ws}.]+\\.)+({not_ws}.]{{2,}}))"
    pattern += "\\z" if dialect == "spark" else "$"
    lowered = f"lower({value})"
    domain = f"regexp_extract({lowered}, {_re(pattern, dialect)}, 1)"
    tld = f"regexp_extract({lowered}, {_re(pattern, dialect)}, 2)"
    plausible = f"({_matches(lowered, pattern, dialect)} AND {_matches(tld, ALPHA, dialect)})"
    return f"(CASE WHEN {plausible} THEN {domain} END)"


def email_type_sql(value: str, domain: str) -> str:
    """:func:`pipeline.inputs.signals.email_domain_type` from the cleaned address ``value``
    (NULL = missing) and its :func:`email_domain_sql` ``domain`` (NULL = invalid):
    business / freemail / disposable / invalid / missing. Needs the :func:`domain_table_sql`
    CTE; a subdomain of a listed domain counts as listed, disposable beats free-mail."""

    def listed(kind: str) -> str:
        return (f"EXISTS (SELECT 1 FROM {DOMAIN_TABLE} WHERE kind = '{kind}' AND "
                f"({domain} = domain OR right({domain}, length(domain) + 1) = concat('.', "
                "domain)))")

    return (f"(CASE WHEN {value} IS NULL THEN 'missing' WHEN {domain} IS NULL THEN 'invalid' "
            f"WHEN {listed('disposable')} THEN 'disposable' "
            f"WHEN {listed('freemail')} THEN 'freemail' ELSE 'business' END)")


# --------------------------------------------------------------------------------------------
# spam-like names


def _repeated(folded: str, dialect: str) -> str:
    """One non-space character 4+ times in a row, or the whole value one character (3+)."""
    whole = f"(length({folded}) >= 3 AND replace({folded}, left({folded}, 1), '') = '')"
    if dialect == "spark":
        run = _matches(folded, f"([^{_WS}])\\1{{3,}}", dialect)
    else:  # RE2 has no back-references: compare each character with the next three
        ch = f"substr({folded}, i, 1)"
        same = " AND ".join(f"{ch} = substr({folded}, i + {k}, 1)" for k in (1, 2, 3))
        run = _any(f"range(1, length({folded}) - 2)", "i",
                   f"{same} AND NOT {_matches(ch, WS_CLASS, dialect)}", dialect)
    return f"({run} OR {whole})"


def _keyboard_run(lowered: str, dialect: str) -> str:
    """5+ keys of one keyboard row anywhere, or exactly 4 as a whole word (names excepted)."""
    five = sorted(p for p in spam_names.RUN_PIECES if len(p) == 5 and p not in spam_names.NAME_RUNS)
    four = sorted(p for p in spam_names.RUN_PIECES if len(p) == 4 and p not in spam_names.NAME_RUNS)
    word4 = f"(?:^|[^{LETTER}])(?:{'|'.join(four)})(?:[^{LETTER}]|$)"
    return f"({_matches(lowered, '|'.join(five), dialect)} OR {_matches(lowered, word4, dialect)})"


def _fake(text: str, dialect: str) -> str:
    """A placeholder value, no letters at all, a lone non-CJK character, or words that are all
    placeholders (digits after them ignored, "Na" / "Bar" title-case excepted)."""
    collapsed = _replace(f"lower({text})", WS_RUN, " ", dialect)
    words = _words(text, r"[\pL\pN]+", dialect)
    key = _replace("lower(w)", r"\p{Nd}+$", "", dialect)
    special = sorted(spam_names.FAKE_UNLESS_TITLE)
    title = _full("w", f"(?:{'|'.join(s.title() for s in special)})\\p{{Nd}}*", dialect)
    known = sorted(spam_names.FAKE_WORDS) + special
    every = _all(words, "w", f"({key} = '' OR {_in(key, known, dialect)})", dialect)
    some = _any(words, "w", f"({_in(key, sorted(spam_names.FAKE_WORDS), dialect)} OR "
                f"({_in(key, special, dialect)} AND NOT {title}))", dialect)
    first_word = f"element_at({words}, 1)"
    lone = (f"(size({words}) = 1 AND length(element_at({words}, 1)) = 1 AND NOT "
            f"{_matches(first_word, CJK_CLASS, dialect)})")
    if dialect == "duckdb":
        lone = lone.replace("size(", "len(").replace("element_at(", "list_extract(")
    return (f"({_in(collapsed, sorted(spam_names.FAKE_VALUES), dialect)} OR "
            f"NOT {_matches(text, ALPHA, dialect)} OR {lone} OR ({every} AND {some}))")


def name_spam_reasons_sql(value: str, dialect: str) -> str:
    """Whether the cleaned name ``value`` has any :func:`pipeline.inputs.signals.spam_reasons`
    (NULL gives none)."""
    text = f"nfc_normalize({value})" if dialect == "duckdb" else value
    lowered = f"lower({text})"
    no_capital = (f"({_matches(text, LOWER, dialect)} AND NOT "
                  f"{_matches(text, UPPER, dialect)})")
    reasons = " OR ".join([no_capital, _keyboard_run(lowered, dialect),
                           _repeated(lowered, dialect), _fake(text, dialect)])
    return f"coalesce({value} IS NOT NULL AND ({reasons}), false)"


def _pair_key(value: str, dialect: str) -> str:
    text = f"nfc_normalize({value})" if dialect == "duckdb" else value
    return f"coalesce({_replace(f'lower({text})', WS_RUN, ' ', dialect)}, '')"


def name_spam_sql(first: str, last: str | None, dialect: str) -> str:
    """``'yes'`` / ``'no'``: :func:`pipeline.inputs.signals.is_spam_name` of two cleaned
    columns (``last`` None: only one name column)."""
    tests = [name_spam_reasons_sql(first, dialect)]
    if last is not None:
        tests.append(name_spam_reasons_sql(last, dialect))
        pairs = [f"({_pair_key(first, dialect)} = {sql_string(a, dialect=dialect)} AND "
                 f"{_pair_key(last, dialect)} = {sql_string(b, dialect=dialect)})"
                 for a, b in sorted(spam_names.FAKE_PAIRS)]
        tests += pairs
    return f"(CASE WHEN {' OR '.join(tests)} THEN 'yes' ELSE 'no' END)"


# --------------------------------------------------------------------------------------------
# seniority


_LOOKAHEAD = "(?!(?:team|projekt|gruppen)leiter)"


def _accent_map() -> tuple[str, str]:
    """Spark has no NFKD: the Latin letters (U+00C0..U+024F) whose NFKD without combining
    marks is one other letter, as ``translate`` arguments."""
    import unicodedata

    src, dst = [], []
    for code in range(0xC0, 0x250):
        ch = chr(code)
        plain = "".join(c for c in unicodedata.normalize("NFKD", ch)
                        if not unicodedata.combining(c))
        if len(plain) == 1 and plain != ch:
            src.append(ch)
            dst.append(plain)
    return sql_string("".join(src), dialect="spark"), sql_string("".join(dst), dialect="spark")


_ACCENTED = _accent_map()


def _rank_test(pattern: str, folded: str, dialect: str) -> str:
    """``pattern`` (one of :data:`pipeline.inputs.signals.SENIORITY_RULES`) found in
    ``folded``; RE2 has no look-ahead, so the "-leiter but not team-leiter" word is tested
    word by word."""
    if dialect == "spark" or _LOOKAHEAD not in pattern:
        return _matches(folded, pattern, dialect)
    # the pattern is "|".join(rf"\b(?:{p})\b" for p in alternatives) (job_titles._rx)
    parts = pattern[len(r"\b(?:"): -len(r")\b")].split(r")\b|\b(?:")
    plain = "|".join(rf"\b(?:{p})\b" for p in parts if _LOOKAHEAD not in p)
    (body,) = [p.replace(_LOOKAHEAD, "") for p in parts if _LOOKAHEAD in p]
    word = _any(_words(folded, r"\w+", dialect), "w",
                f"({_full('w', body, dialect)} AND NOT "
                f"{_matches('w', '^(?:team|projekt|gruppen)leiter', dialect)})", dialect)
    return f"({_matches(folded, plain, dialect)} OR {word})"


def seniority_sql(value: str, dialect: str) -> str:
    """:func:`pipeline.inputs.signals.seniority` of the cleaned title ``value``."""
    lowered = f"lower({value})"
    if dialect == "duckdb":
        plain = f"strip_accents({lowered})"
    else:
        plain = f"translate({lowered}, {_ACCENTED[0]}, {_ACCENTED[1]})"
    collapsed = f"trim({_replace(plain, WS_RUN, ' ', dialect)})"
    folded = _replace(collapsed, job_titles.NOT_A_RANK.pattern, " ", dialect)
    whens = " ".join(f"WHEN {_rank_test(p.pattern, folded, dialect)} THEN '{level}'"
                     for level, p in job_titles.SENIORITY_RULES)
    return (f"(CASE WHEN {value} IS NULL OR {collapsed} = '' THEN 'missing' {whens} "
            "ELSE 'individual' END)")


# --------------------------------------------------------------------------------------------
# the leads with their signals


def derived_source(rules: PointsRules, table: str, dialect: str,
                   signals: Sequence[str] | None = None) -> tuple[str, str]:
    """``(with_clause, source)`` for :func:`pipeline.exports.sql.export_sql` to score raw
    leads: ``source`` is a subquery over the quoted ``table`` giving the id, every other input
    column and the derived signals the table reads, computed from the raw columns its
    ``derived`` settings name (a column of the signal's name in ``table`` is not read);
    ``with_clause`` holds the domain table (``""`` when not needed). ``signals`` (default:
    every one the table reads) limits what is computed, as scoring computes only the signals
    its input lacks. Both are ``""`` when nothing is derived or the dialect does not compute
    signals."""
    wanted = needed_signals(rules) if signals is None else list(signals)
    signals = [s for s in needed_signals(rules) if s in wanted] \
        if dialect in SIGNAL_DIALECTS else []
    if not signals:
        return "", ""
    ident = sql_identifier(rules.id_column, dialect=dialect)
    d = rules.derived
    raw = {c: f"__ls_raw{i}" for i, c in enumerate(dict.fromkeys(
        c for s in signals for c in raw_columns(s, d)))}
    cleaned = ", ".join(f"{clean_text(sql_identifier(c, dialect=dialect), rules, dialect)} AS {a}"
                        for c, a in raw.items())
    exprs = []
    for signal in signals:
        cols = [raw[c] for c in raw_columns(signal, d)]
        if signal == EMAIL_TYPE:
            expr = email_type_sql(cols[0], "__ls_domain")
        elif signal == NAME_SPAM:
            expr = name_spam_sql(cols[0], cols[1] if len(cols) > 1 else None, dialect)
        else:
            expr = seniority_sql(cols[0], dialect)
        exprs.append(f"{expr} AS {sql_identifier(signal, dialect=dialect)}")
    keep = [sql_identifier(c, dialect=dialect) for c in rules.input_columns()
            if c not in signals and c != rules.id_column]
    columns = ",\n      ".join([ident, *keep, *exprs])
    inner = f"(SELECT *, {cleaned} FROM {table}) AS raw_leads"
    if EMAIL_TYPE in signals:  # the domain once per lead, not once per listed domain
        email = raw[raw_columns(EMAIL_TYPE, d)[0]]
        inner = (f"(SELECT *, {email_domain_sql(email, dialect)} AS __ls_domain FROM {inner}) "
                 "AS parsed_leads")
    source = f"(\n    SELECT {columns}\n    FROM {inner}\n  ) AS leads_with_signals"
    with_clause = f"WITH {domain_table_sql(d, dialect)}\n" if EMAIL_TYPE in signals else ""
    return with_clause, source


__all__ = [
    "DERIVED_SIGNALS",
    "DOMAIN_TABLE",
    "SIGNAL_DIALECTS",
    "clean_text",
    "derived_source",
    "domain_table_sql",
    "email_domain_sql",
    "email_type_sql",
    "name_spam_reasons_sql",
    "name_spam_sql",
    "needed_signals",
    "raw_columns",
    "seniority_sql",
]
