"""Tests for pipeline.inputs.signals: e-mail domain type, spam-like names, seniority from
job title."""

from __future__ import annotations

import random
import re
from importlib import resources

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.inputs import signals
from pipeline.inputs.signals import (
    EMAIL_DOMAIN_TYPES,
    SENIORITY_LEVELS,
    SPAM_REASONS,
    DomainLists,
    email_domain_type,
    email_domain_types,
    is_spam_name,
    load_domain_lists,
    seniorities,
    seniority,
    spam_field_flags,
    spam_flags,
    spam_reasons,
)


@pytest.fixture(scope="module")
def lists() -> DomainLists:
    return load_domain_lists()


def _shipped_lines(filename: str) -> list[str]:
    text = resources.files("pipeline").joinpath("resources", filename).read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


# ----------------------------------------------------------------------------- domain lists


@pytest.mark.parametrize(
    ("filename", "minimum"),
    [("free_email_domains.txt", 150), ("disposable_email_domains.txt", 80)],
)
def test_shipped_list_is_clean(filename: str, minimum: int) -> None:
    lines = _shipped_lines(filename)
    assert len(lines) >= minimum
    assert len(set(lines)) == len(lines), "duplicate domains"
    for domain in lines:
        assert domain == domain.lower()
        assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain), domain


def test_lists_do_not_overlap_and_hold_the_usual_suspects(lists: DomainLists) -> None:
    assert not lists.free & lists.disposable
    free = {"gmail.com", "googlemail.com", "yahoo.co.uk", "hotmail.fr", "outlook.com",
            "live.nl", "msn.com", "aol.com", "icloud.com", "me.com", "mac.com", "gmx.de",
            "gmx.net", "web.de", "t-online.de", "orange.fr", "free.fr", "laposte.net",
            "wanadoo.fr", "libero.it", "mail.ru", "yandex.ru", "yandex.com", "qq.com",
            "163.com", "126.com", "protonmail.com", "proton.me", "zoho.com", "rediffmail.com",
            "seznam.cz", "wp.pl", "o2.pl", "ziggo.nl", "hetnet.nl", "kpnmail.nl",
            "telenet.be", "skynet.be", "bluewin.ch"}  # fmt: skip
    disposable = {"mailinator.com", "guerrillamail.com", "10minutemail.com", "temp-mail.org",
                  "yopmail.com", "trashmail.com", "sharklasers.com", "getnada.com",
                  "dispostable.com", "maildrop.cc"}  # fmt: skip
    assert free <= lists.free
    assert disposable <= lists.disposable
    assert len(lists.free) == len(_shipped_lines("free_email_domains.txt"))


def test_extra_domains_extend_and_are_normalised() -> None:
    base = load_domain_lists()
    more = load_domain_lists(
        extra_free=[" Example-ISP.NET ", "@mail.example.org", ""],
        extra_disposable=[".burner.test"],
    )
    assert more.free == base.free | {"example-isp.net", "mail.example.org"}
    assert more.disposable == base.disposable | {"burner.test"}
    assert email_domain_type("a@Example-ISP.net", more) == "freemail"
    assert email_domain_type("a@example-isp.net", base) == "business"
    assert email_domain_type("a@x.burner.test", more) == "disposable"


def test_disposable_wins_over_free() -> None:
    both = load_domain_lists(extra_free=["mailinator.com"])
    assert email_domain_type("x@mailinator.com", both) == "disposable"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"extra_free": ["not a domain"]}, r"extra_free: 'not a domain' is not a domain"),
        ({"extra_free": ["localhost"]}, r"extra_free: 'localhost' is not a domain"),
        ({"extra_disposable": ["a@b.com"]}, r"extra_disposable: 'a@b.com' is not a domain"),
        ({"extra_disposable": [3]}, r"extra_disposable: every domain must be text, got 3"),
    ],
)
def test_bad_extra_domains_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_domain_lists(**kwargs)


def test_a_bare_string_is_not_a_list_of_domains() -> None:
    with pytest.raises(TypeError, match=r"extra_free: expected a list of domains"):
        load_domain_lists(extra_free="gmail.com")


# ----------------------------------------------------------------------------- email type


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("jane@acme.com", "business"),
        ("Jane.Doe+news@Sub.Acme.co.uk", "business"),
        ("jane@gmail.com", "freemail"),
        ("  JANE@GMAIL.COM \n", "freemail"),
        ("jane@googlemail.com", "freemail"),
        ("jane@mail.yahoo.co.uk", "freemail"),
        ("jane@yahoo.co.uk", "freemail"),
        ("jane@web.de", "freemail"),
        ("jane@qq.com", "freemail"),
        ("jane@kpnmail.nl", "freemail"),
        ("jane@mailinator.com", "disposable"),
        ("jane@YOPMAIL.com", "disposable"),
        ("jane@x.guerrillamail.com", "disposable"),
        ("jane@notgmail.com", "business"),  # a suffix of a label is not a subdomain
        ("jane@gmail.com.evil.io", "business"),
        (None, "missing"),
        (float("nan"), "missing"),
        (pd.NA, "missing"),
        ("", "missing"),
        ("   ", "missing"),
        ("jane", "invalid"),
        ("jane@", "invalid"),
        ("@acme.com", "invalid"),
        ("jane@acme", "invalid"),
        ("jane@@acme.com", "invalid"),
        ("jane@acme@corp.com", "invalid"),
        ("jane doe@acme.com", "invalid"),
        ("jane@acme..com", "invalid"),
        ("jane@.acme.com", "invalid"),
        ("jane@acme.com.", "invalid"),
        ("jane@acme.c", "invalid"),
        ("jane@10.0.0.1", "invalid"),
        (12345, "invalid"),
    ],
)
def test_email_domain_type(email: object, expected: str, lists: DomainLists) -> None:
    assert email_domain_type(email, lists) == expected


_DOMAINS = ["gmail.com", "acme.com", "mailinator.com", "mail.yahoo.co.uk", "GMX.de", "a.b"]
_emails = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.text(max_size=12),
    st.builds(
        lambda local, domain, pad: pad + local + "@" + domain + pad,
        st.text(max_size=6),
        st.one_of(st.sampled_from(_DOMAINS), st.text(max_size=8)),
        st.sampled_from(["", " ", "\t", "\u00a0"]),
    ),
)


@settings(deadline=None, max_examples=150)
@given(st.lists(_emails, max_size=40), st.booleans())
def test_email_domain_types_matches_scalar(values: list, as_str: bool) -> None:
    lists = load_domain_lists()
    series = pd.Series(values, dtype="str" if as_str else object)
    series.index = [f"r{i}" for i in range(len(series))]
    before = series.copy()
    result = email_domain_types(series, lists)
    expected = [email_domain_type(v, lists) for v in series.tolist()]
    assert result.tolist() == expected
    assert result.index.equals(series.index)
    assert result.name == "email_domain_type"
    assert set(result) <= set(EMAIL_DOMAIN_TYPES)
    pd.testing.assert_series_equal(series, before)


@settings(deadline=None, max_examples=100)
@given(st.lists(_emails, max_size=40))
def test_the_domain_cache_changes_no_verdict(values: list) -> None:
    """``verdicts`` (what the column version passes) caches one verdict per domain: with it
    every address gets the type it gets without, shared cache or not."""
    lists = load_domain_lists(extra_free=["acme.com"])
    verdicts: dict[str, str] = {}
    for value in values:
        assert email_domain_type(value, lists, verdicts=verdicts) == \
            email_domain_type(value, lists)
    assert set(verdicts.values()) <= {"business", "freemail", "disposable"}
    for domain, verdict in verdicts.items():
        assert email_domain_type(f"someone@{domain}", lists) == verdict


def test_email_domain_types_keeps_a_duplicated_index(lists: DomainLists) -> None:
    series = pd.Series(["a@gmail.com", None, "b@acme.com"], index=[7, 7, 3])
    result = email_domain_types(series, lists)
    assert result.tolist() == ["freemail", "missing", "business"]
    assert result.index.tolist() == [7, 7, 3]


def test_email_domain_types_rejects_a_list(lists: DomainLists) -> None:
    with pytest.raises(TypeError, match="email_domain_type: expected a pandas Series, got list"):
        email_domain_types(["a@gmail.com"], lists)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- spam names

REAL_NAMES = [
    "Élodie", "O'Neil", "van der Berg", "de la Cruz", "Zoë", "José", "Müller", "Ng", "Li",
    "Xu", "Ødegaard", "Łukasz", "Ærøskøbing", "Jean-Luc", "McDonald", "D'Angelo",
    "Asdrubal", "Wertheimer", "Sjögren", "Ruiz", "Ioana", "Aoife", "Siobhán", "Nguyễn", "李",
    "محمد", "김", "Иван", "Anna-Lena", "Al-Hassan", "MÜLLER", "Yu",
    # real names holding a 4-key run inside a longer word, or that are one
    "Doherty", "Rafferty", "Haggerty", "Laverty", "Hertz", "Mertz", "Ewert", "Ewerton",
    "Gerty", "Trewin", "Rezaei", "Reza", "Trew", "Wert", "Wertz",
    # placeholders that are also real names, written as names
    "Na", "Bar",
    # decomposed accents (e + combining acute) are normalised first
    "Ele\u0301onore",
]  # fmt: skip


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_names_are_not_spam(name: str) -> None:
    assert spam_reasons(name) == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("john", "no_capital"),
        ("van der berg", "no_capital"),
        ("élodie", "no_capital"),
        ("müller", "no_capital"),
        ("asdf", "keyboard_run"),
        ("Asdf", "keyboard_run"),
        ("ASDF", "keyboard_run"),
        ("qwer", "keyboard_run"),
        ("azer", "keyboard_run"),
        ("uiop", "keyboard_run"),
        ("wxcv", "keyboard_run"),
        ("fdsa", "keyboard_run"),
        ("Lkjh", "keyboard_run"),
        ("Qsdf", "keyboard_run"),
        ("Yxcv", "keyboard_run"),
        ("qwert", "keyboard_run"),
        ("qwertz", "keyboard_run"),
        ("asdfgh", "keyboard_run"),
        ("zxcvb", "keyboard_run"),
        ("Poiuy", "keyboard_run"),
        ("Anna Qwert", "keyboard_run"),
        ("Johnasdfg", "keyboard_run"),
        ("Asdf-Smith", "keyboard_run"),
        ("aaaa", "repeated_chars"),
        ("Annnnna", "repeated_chars"),
        ("Aaaa", "repeated_chars"),
        ("zzz", "repeated_chars"),
        ("...", "repeated_chars"),
        ("test", "fake_value"),
        ("Test", "fake_value"),
        ("TEST 123", "fake_value"),
        ("Test1", "fake_value"),
        ("Test Test", "fake_value"),
        ("asdf", "fake_value"),
        ("xxx", "fake_value"),
        ("None", "fake_value"),
        ("N/A", "fake_value"),
        ("n.a.", "fake_value"),
        ("NA", "fake_value"),
        ("na", "fake_value"),
        ("NULL", "fake_value"),
        ("Unknown", "fake_value"),
        ("Fake", "fake_value"),
        ("Sample", "fake_value"),
        ("Abc", "fake_value"),
        ("ABCD", "fake_value"),
        ("Qwerty", "fake_value"),
        ("Foo", "fake_value"),
        ("bar", "fake_value"),
        ("Foo Bar", "fake_value"),
        ("First", "fake_value"),
        ("Last Name", "fake_value"),
        ("Name", "fake_value"),
        ("Firstname", "fake_value"),
        ("John Doe", "fake_value"),
        ("12345", "fake_value"),
        ("007", "fake_value"),
        ("J", "fake_value"),
        ("J.", "fake_value"),
        ("-", "fake_value"),
        ("?!", "fake_value"),
        (42, "fake_value"),
    ],
)
def test_spam_reason_is_found(value: object, reason: str) -> None:
    reasons = spam_reasons(value)
    assert reason in reasons
    assert reasons == [r for r in SPAM_REASONS if r in reasons], "reasons keep a fixed order"


@pytest.mark.parametrize("value", [None, float("nan"), pd.NA, "", "   "])
def test_missing_name_is_not_spam(value: object) -> None:
    assert spam_reasons(value) == []


@pytest.mark.parametrize(
    ("value", "not_reason"),
    [
        ("Wertheimer", "keyboard_run"),  # "wert" is a 4-run inside a 10-letter word
        ("Doherty", "keyboard_run"),  # "erty"
        ("Asdrubal", "keyboard_run"),  # "asd" is only a 3-run
        ("Reza Asdrubal", "keyboard_run"),
        ("Schifffahrt", "repeated_chars"),  # three in a row is German spelling
        ("Aaron", "repeated_chars"),
        ("Anna", "fake_value"),
        ("Doe", "fake_value"),  # a real surname on its own
        ("Barbara", "fake_value"),
        ("Testa", "fake_value"),
        ("Ng", "fake_value"),
        ("李", "fake_value"),
        ("R2", "fake_value"),
        ("de la Cruz", "no_capital"),
        ("李明", "no_capital"),
        ("محمد", "no_capital"),
    ],
)
def test_spam_counter_examples(value: str, not_reason: str) -> None:
    assert not_reason not in spam_reasons(value)


_LINES = [
    line
    for rows in signals.KEYBOARD_ROWS.values()
    for row in rows
    for line in (row, row[::-1])
]  # fmt: skip


def _reference_keyboard_run(text: str) -> bool:
    """Slow and plain: try every word, every start, every end, every keyboard row."""
    for word in re.findall(r"[^\W\d_]+", text.lower()):
        for i in range(len(word)):
            # the longest stretch starting at i that is typed along one row
            longest = max(
                (j for j in range(i + 1, len(word) + 1) if any(word[i:j] in ln for ln in _LINES)),
                default=i,
            )
            run = word[i:longest]
            if run in {"reza", "trew", "wert", "wertz"}:
                continue
            if len(run) >= 5 or (len(run) == 4 and len(word) == 4):
                return True
    return False


_ROW_BITS = sorted(
    {ln[i:j] for ln in _LINES for i in range(len(ln)) for j in range(i + 2, min(i + 7, len(ln)))}
    | {"reza", "Trew", "wert", "WERTZ", "Rezaei", "Doherty", "Asdf"}
)
_keyboardish = st.lists(
    st.one_of(
        st.sampled_from(_ROW_BITS),
        st.text(alphabet="qwertzuiopasdfghjklyxcvbnmüöäQWERTAZ -'1", max_size=3),
    ),
    max_size=4,
).map("".join)


@settings(deadline=None, max_examples=400)
@given(_keyboardish)
def test_keyboard_run_matches_reference(text: str) -> None:
    assert ("keyboard_run" in spam_reasons(text)) == _reference_keyboard_run(text)


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Jane", "Müller", False),
        ("Jane", None, False),
        (None, None, False),
        ("jane", "Müller", True),
        ("Jane", "asdf", True),
        ("John", "Doe", True),
        ("  jane ", "DOE", True),
        ("Max", "Mustermann", True),
        ("John", "Smith", False),
        ("Richard", "Doe", False),
    ],
)
def test_is_spam_name(first: object, last: object, expected: bool) -> None:
    assert is_spam_name(first, last) is expected


_names = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.text(max_size=10),
    st.sampled_from(REAL_NAMES + ["asdf", "Test", "John", "Doe", "jane", "DOE", "NA", "Na"]),
)


@settings(deadline=None, max_examples=150)
@given(st.lists(st.tuples(_names, _names), max_size=40), st.booleans())
def test_spam_flags_matches_scalar(pairs: list, as_str: bool) -> None:
    dtype = "str" if as_str else object
    index = pd.Index([f"r{i}" for i in range(len(pairs))])
    first = pd.Series([p[0] for p in pairs], index=index, dtype=dtype)
    last = pd.Series([p[1] for p in pairs], index=index, dtype=dtype)
    result = spam_flags(first, last)
    expected = [is_spam_name(f, ln) for f, ln in zip(first.tolist(), last.tolist(), strict=True)]
    assert result.tolist() == expected
    assert result.dtype == bool
    assert result.index.equals(index)
    single = spam_field_flags(first)
    assert single.tolist() == [bool(spam_reasons(f)) for f in first.tolist()]


def test_spam_flags_needs_aligned_columns() -> None:
    first = pd.Series(["Anna", "Bob"], index=[0, 1])
    with pytest.raises(ValueError, match=r"first and last must share one index .*lengths 2 and 2"):
        spam_flags(first, pd.Series(["Smith", "Jones"], index=[1, 0]))
    with pytest.raises(ValueError, match=r"lengths 2 and 1"):
        spam_flags(first, pd.Series(["Smith"]))
    with pytest.raises(TypeError, match=r"spam_flags: last must be a pandas Series"):
        spam_flags(first, ["Smith", "Jones"])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- seniority


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("CEO", "c_level"),
        ("ceo & founder", "c_level"),
        ("Co-Founder", "c_level"),
        ("Cofounder", "c_level"),
        ("CTO", "c_level"),
        ("CFO", "c_level"),
        ("COO", "c_level"),
        ("CMO", "c_level"),
        ("CRO", "c_level"),
        ("CIO", "c_level"),
        ("Chief Revenue Officer", "c_level"),
        ("Owner", "c_level"),
        ("President", "c_level"),
        ("President & CEO", "c_level"),
        ("Managing Director", "c_level"),
        ("Geschäftsführer", "c_level"),
        ("Geschaeftsfuehrer", "c_level"),
        ("Directeur Général", "c_level"),
        ("Algemeen directeur", "c_level"),
        ("Vice President", "vp"),
        ("Senior Vice-President, Sales", "vp"),
        ("VP Marketing", "vp"),
        ("SVP Engineering", "vp"),
        ("EVP", "vp"),
        ("Head of Growth", "vp"),
        ("Leiter Vertrieb", "vp"),
        ("Vertriebsleiter", "vp"),
        ("Director", "director"),
        ("Sr. Director of Sales", "director"),
        ("Marketing Director", "director"),
        ("Directeur commercial", "director"),
        ("Marketing Manager", "manager"),
        ("Team Lead", "manager"),
        ("Tech Lead", "manager"),
        ("Team Leader", "manager"),
        ("Teamleiter", "manager"),
        ("Student", "student"),
        ("Marketing Intern", "student"),
        ("Trainee", "student"),
        ("Trainee Manager", "student"),
        ("PhD candidate", "student"),
        ("PhD Student", "student"),
        ("Werkstudent", "student"),
        ("Student Services Manager", "manager"),
        ("Software Engineer", "individual"),
        ("Directory Analyst", "individual"),
        ("Doctor", "individual"),
        ("Internal Auditor", "individual"),
        ("Management Consultant", "individual"),
        ("Product Owner", "individual"),
        ("Lead Generation Specialist", "individual"),
        ("Executive Assistant to the CEO", "individual"),
        ("Headhunter", "individual"),
        ("x", "individual"),
        (123, "individual"),
        ("", "missing"),
        ("  ", "missing"),
        (None, "missing"),
        (float("nan"), "missing"),
    ],
)
def test_seniority(title: object, expected: str) -> None:
    assert seniority(title) == expected


_titles = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.text(max_size=15),
    st.lists(
        st.sampled_from(["Head", "of", "VP", "vice", "president", "Manager", "Lead", "CTO",
                         "student", "Intern", "Director", "Directory", "Owner", "Product",
                         "-", "&", "Assistant", "to", "the"]),
        max_size=5,
    ).map(" ".join),
)  # fmt: skip


@settings(deadline=None, max_examples=150)
@given(st.lists(_titles, max_size=40), st.booleans())
def test_seniorities_matches_scalar(values: list, as_str: bool) -> None:
    series = pd.Series(values, dtype="str" if as_str else object)
    result = seniorities(series)
    assert result.tolist() == [seniority(v) for v in series.tolist()]
    assert set(result) <= set(SENIORITY_LEVELS)
    assert result.name == "seniority"


# ----------------------------------------------------------------------------- scale


def test_vectorised_calls_on_200k_rows(lists: DomainLists) -> None:
    rng = random.Random(20240607)
    n = 200_000
    domains = ["gmail.com", "mailinator.com", *(f"company{i}.com" for i in range(2_000))]
    emails = pd.Series(
        [f"user{rng.randrange(10**8)}@{rng.choice(domains)}" for _ in range(n)], dtype="str"
    )
    emails.iloc[::1000] = None
    kinds = email_domain_types(emails, lists)
    assert len(kinds) == n
    assert kinds.iloc[::1000].eq("missing").all()
    sample = rng.sample(range(n), 500)
    assert [kinds.iloc[i] for i in sample] == [
        email_domain_type(emails.iloc[i], lists) for i in sample
    ]

    firsts = ["Anna", "Jean-Luc", "asdf", "Zoë", "test", "李", "Ng"]
    first = pd.Series([rng.choice(firsts) + rng.choice(["", "a", "e"]) for _ in range(n)])
    last = pd.Series([rng.choice(["Müller", "Doe", "qwert", "de la Cruz"]) for _ in range(n)])
    flags = spam_flags(first, last)
    truth = {
        (f, ln): is_spam_name(f, ln)
        for f in set(first.tolist())
        for ln in set(last.tolist())
    }  # fmt: skip
    expected = [truth[pair] for pair in zip(first.tolist(), last.tolist(), strict=True)]
    assert flags.tolist() == expected

    level_of = {"CEO": "c_level", "Head of Sales": "vp", "Engineer": "individual", None: "missing"}
    picks = [rng.choice(list(level_of)) for _ in range(n)]
    levels = seniorities(pd.Series(picks))
    assert levels.tolist() == [level_of[p] for p in picks]
