"""The embedded demo dataset: synthetic B2B SaaS leads and events with a known truth.

Every lead gets a profile (FIT), an event log (PAIN) and an outcome drawn from a known
logistic model evaluated on features *at the snapshot* (``created_at + 30 days``). After the
snapshot, won leads produce many "post-contact" events caused by the sale, so any feature that
looks past the snapshot leaks the label. ``truth`` records the model, so that every stage of
the pipeline can be checked against what it should recover.

Feature definitions used by the truth (the pipeline computes exactly these):

* ``email_domain_type``: business / freemail / disposable (blank email -> missing);
* ``name_spam``: "yes" when the first or last name was made spam-like, else "no";
* ``seniority``: from the job title, see ``truth["title_seniority"]`` (case-insensitive);
* ``decayed_<group>``: sum over the group's events with ``timestamp < snapshot_at`` of
  ``0.5 ** (age_days / half_life_days[group])``,
  ``age_days = (snapshot_at - timestamp).total_seconds() / 86400``;
* ``velocity_product``: product events with ``created_at <= t < min(created_at + 7 days,
  snapshot_at)``, divided by 7.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.inputs.reader import write_bytes_atomic

LEAD_COLUMNS = (
    "lead_id",
    "created_at",
    "first_name",
    "last_name",
    "email",
    "job_title",
    "company",
    "account_id",
    "company_size",
    "industry",
    "country",
    "lead_source",
    "target_account",
    "outcome",
    "outcome_at",
)
EVENT_COLUMNS = ("lead_id", "event", "timestamp")

EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "product": ("trial_signup", "document_created", "document_signed", "teammate_invited", "login"),
    "non_product": ("whitepaper_download", "webinar", "pricing_page"),
    "trivial": ("email_open", "email_click", "site_visit"),
}
GROUP_NAMES = tuple(EVENT_GROUPS)
HALF_LIFE_DAYS: dict[str, float] = {"product": 10.0, "non_product": 30.0, "trivial": 5.0}
SNAPSHOT_HORIZON_DAYS = 30
VELOCITY_WINDOW_DAYS = 7
OUTCOME_DELAY_DAYS = (1, 60)
TARGET_CONVERSION = 0.15

COEFFICIENTS: dict[str, float] = {
    "email_domain_type=freemail": -0.8,
    "email_domain_type=disposable": -1.6,
    "name_spam=yes": -1.4,
    "seniority=c_level": 0.9,
    "seniority=vp": 0.75,
    "seniority=director": 0.55,
    "seniority=manager": 0.3,
    "seniority=student": -1.1,
    "company_size=201-1000": 0.5,
    "company_size=1000+": 0.4,
    "company_size=51-200": 0.25,
    "company_size=1-10": -0.4,
    "target_account=yes": 0.8,
    "industry=software": 0.2,
    "industry=financial_services": 0.15,
    "industry=retail": -0.1,
    "industry=education": -0.2,
    "lead_source=referral": 0.4,
    "lead_source=outbound": -0.2,
    "log1p(decayed_product)": 1.1,
    "log1p(decayed_non_product)": 0.45,
    "log1p(decayed_trivial)": 0.05,
    "velocity_product": 0.8,
}
BEHAVIOUR_TERMS: dict[str, str] = {
    "log1p(decayed_product)": "decayed_product",
    "log1p(decayed_non_product)": "decayed_non_product",
    "log1p(decayed_trivial)": "decayed_trivial",
}

# ---------------------------------------------------------------------------------------------
# Vocabularies

_DAY = 86_400
_EVENT_NAMES = tuple(name for names in EVENT_GROUPS.values() for name in names)
_EVENT_CODE = {name: i for i, name in enumerate(_EVENT_NAMES)}
_EVENT_GROUP_CODE = np.array(
    [GROUP_NAMES.index(g) for g, names in EVENT_GROUPS.items() for _ in names], dtype=np.int64
)

_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")
_SIZE_WEIGHTS = (0.22, 0.28, 0.24, 0.16, 0.10)
_SIZE_POPULARITY = (0.6, 0.8, 1.0, 1.4, 2.0)  # bigger accounts bring more leads
_SIZE_TARGET_P = (0.03, 0.05, 0.09, 0.16, 0.24)  # target-account lists favour large accounts
_SIZE_BLANK_P = 0.07

_INDUSTRIES = (
    "software",
    "financial_services",
    "manufacturing",
    "healthcare",
    "retail",
    "professional_services",
    "education",
    "logistics",
)
_INDUSTRY_WEIGHTS = (0.24, 0.12, 0.14, 0.1, 0.1, 0.14, 0.06, 0.1)
_INDUSTRY_WORDS = {
    "software": ("Software", "Labs", "Systems", "Technologies", "Digital", "Cloud"),
    "financial_services": ("Capital", "Finance", "Invest", "Assurance", "Payments"),
    "manufacturing": ("Industries", "Manufacturing", "Werke", "Components", "Machines"),
    "healthcare": ("Health", "Medical", "Care", "Pharma", "Clinics"),
    "retail": ("Retail", "Stores", "Commerce", "Shop", "Brands"),
    "professional_services": ("Consulting", "Advisory", "Group", "Partners", "Solutions"),
    "education": ("Academy", "Learning", "Education", "Institute", "Campus"),
    "logistics": ("Logistics", "Transport", "Freight", "Cargo", "Shipping"),
}
_COMPANY_PREFIXES = (
    "Nord", "Blue", "Alpen", "Rhein", "Silver", "Bright", "Clear", "Swift", "Green", "Iron",
    "Oak", "Pine", "Red", "Sun", "Stern", "Delta", "Nova", "Terra", "Luma", "Vela", "Aqua",
    "Flux", "Peak", "Core", "Zen", "Astra", "Bolt", "Cedar", "Echo", "Fjord", "Gala", "Helio",
    "Isar", "Jade", "Kite", "Lago", "Mosa", "Nimbus", "Orbit", "Polar", "Quartz", "Rivo", "Sola",
    "Tide", "Ulm", "Vista", "Wave", "Xeno", "Yara", "Zephyr", "Maas", "Elbe", "Loire", "Seine",
    "Tagus", "Arno", "Oder", "Granit", "Birk", "Coral",
)  # fmt: skip
_COMPANY_CORES = (
    "wind", "stone", "field", "bridge", "works", "line", "point", "gate", "path", "leaf", "bay",
    "light", "port", "crest", "forge", "mark", "wave", "spring", "rock", "dale", "view", "base",
    "hub", "way", "nest", "grid", "loop", "shift", "scale", "sense",
)  # fmt: skip

_COUNTRIES = ("DE", "US", "GB", "FR", "NL", "ES", "IT", "CH", "AT", "BE", "SE", "PL")
_COUNTRY_WEIGHTS = (0.24, 0.16, 0.1, 0.1, 0.08, 0.06, 0.05, 0.05, 0.04, 0.04, 0.04, 0.04)
_COUNTRY_TLD = {
    "DE": ".de", "US": ".com", "GB": ".co.uk", "FR": ".fr", "NL": ".nl", "ES": ".es",
    "IT": ".it", "CH": ".ch", "AT": ".at", "BE": ".be", "SE": ".se", "PL": ".pl",
}  # fmt: skip
_LEGAL_FORMS = {
    "DE": ("GmbH", "AG", "GmbH & Co. KG"), "US": ("Inc.", "LLC", "Corp."), "GB": ("Ltd", "PLC"),
    "FR": ("SAS", "SA"), "NL": ("B.V.", "N.V."), "ES": ("S.L.", "S.A."), "IT": ("S.r.l.", "S.p.A."),
    "CH": ("AG", "GmbH", "SA"), "AT": ("GmbH", "AG"), "BE": ("NV", "SRL", "BV"), "SE": ("AB",),
    "PL": ("Sp. z o.o.", "S.A."),
}  # fmt: skip
# Which name pools a country's people come from.
_COUNTRY_POOLS = {
    "DE": {"de": 0.88, "intl": 0.12}, "US": {"en": 0.72, "es": 0.06, "intl": 0.22},
    "GB": {"en": 0.82, "intl": 0.18}, "FR": {"fr": 0.86, "intl": 0.14},
    "NL": {"nl": 0.86, "intl": 0.14}, "ES": {"es": 0.9, "intl": 0.1},
    "IT": {"it": 0.9, "intl": 0.1}, "CH": {"de": 0.6, "fr": 0.2, "it": 0.08, "intl": 0.12},
    "AT": {"de": 0.9, "intl": 0.1}, "BE": {"nl": 0.5, "fr": 0.4, "intl": 0.1},
    "SE": {"sv": 0.88, "intl": 0.12}, "PL": {"pl": 0.92, "intl": 0.08},
}  # fmt: skip
_FIRST_NAMES = {
    "de": ("Anna", "Lukas", "Jonas", "Lena", "Sophie", "Maximilian", "Felix", "Marie", "Paul",
           "Laura", "Jürgen", "Jörg", "Björn", "Sören", "Günter", "Katharina", "Tobias", "Sabine",
           "Stefan", "Ute", "Matthias", "Hannah", "Moritz", "Julia", "Timo", "Frauke", "Jan"),
    "en": ("James", "Olivia", "Emma", "Liam", "Noah", "Ava", "Sophia", "William", "Michael",
           "Emily", "Daniel", "Sarah", "Jessica", "David", "Chloe", "Ryan", "Megan", "Connor",
           "Siobhán", "Seán", "John", "Grace", "Oliver", "Amelia"),
    "fr": ("Élodie", "Amélie", "Léa", "Chloé", "Camille", "Manon", "Théo", "Hugo", "Louis",
           "Gabriel", "Raphaël", "Jérôme", "François", "Céline", "Hélène", "Benoît", "Noël",
           "Zoë", "Mathilde", "Clément", "Anaïs", "Stéphane", "Marie-Claire", "Jean-Luc"),
    "nl": ("Daan", "Sem", "Lieke", "Sanne", "Bram", "Thijs", "Femke", "Joost", "Anouk",
           "Maarten", "Sietse", "Ruud", "Eline", "Jeroen", "Noor", "Wouter", "Ingrid", "Kees"),
    "es": ("José", "María", "Lucía", "Sofía", "Martín", "Hugo", "Álvaro", "Javier", "Carmen",
           "Pablo", "Alejandro", "Inés", "Raúl", "Núria", "Jordi", "Begoña", "Ana", "Andrés"),
    "it": ("Giuseppe", "Giulia", "Francesca", "Alessandro", "Lorenzo", "Matteo", "Chiara",
           "Niccolò", "Federica", "Luca", "Sara", "Andrea", "Elisa", "Marco", "Martina"),
    "sv": ("Lars", "Åsa", "Björn", "Sven", "Ingrid", "Elsa", "Maja", "Oskar", "Erik", "Linnéa",
           "Göran", "Astrid", "Johan", "Karin"),
    "pl": ("Piotr", "Katarzyna", "Małgorzata", "Krzysztof", "Agnieszka", "Tomasz", "Paweł",
           "Łukasz", "Zofia", "Jakub", "Magdalena", "Michał", "Anna", "Marek"),
    "intl": ("Minh", "Thảo", "Anh", "Priya", "Arjun", "Rahul", "Aisha", "Mohammed", "Fatima",
             "Yusuf", "Wei", "Mei", "Hiroshi", "Yuki", "Kwame", "Amara", "Oğuz", "Elif", "Çağla",
             "Dimitris", "Ngozi", "Sun-hee", "Mateus", "Leila"),
}  # fmt: skip
_LAST_NAMES = {
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
           "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
           "Hartmann", "Lange", "Weiß", "von Bergen", "Groß", "Köhler", "Jäger", "von der Heide"),
    "en": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
           "Taylor", "Anderson", "Thompson", "White", "Harris", "Clark", "Lewis", "O'Neil",
           "O'Brien", "McDonald", "MacLeod", "Walker", "Hughes", "Evans", "Wright", "Robinson"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Lefèvre", "Laurent", "Girard", "Rousseau", "Bonnet", "Lambert",
           "de la Fontaine", "Le Gall", "Mercier", "Chevalier", "Faure", "Gauthier", "d'Arcy"),
    "nl": ("de Jong", "Jansen", "de Vries", "van den Berg", "van der Berg", "van Dijk", "Bakker",
           "Janssen", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos",
           "Peters", "Hendriks", "van Leeuwen", "Dekker", "van der Meer", "Claes", "Peeters"),
    "es": ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
           "Pérez", "Gómez", "Díaz", "Ruiz", "Hernández", "Jiménez", "Muñoz", "de la Cruz",
           "Ibáñez", "Castaño", "Puig"),
    "it": ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
           "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "D'Angelo", "Lombardi"),
    "sv": ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
           "Persson", "Svensson", "Gustafsson", "Lindström", "Åkesson", "Sjöberg", "Öberg"),
    "pl": ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
           "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski"),
    "intl": ("Nguyễn", "Trần", "Lê", "Phạm", "Patel", "Sharma", "Singh", "Khan", "Ahmed",
             "Yılmaz", "Öztürk", "Chen", "Wang", "Li", "Tanaka", "Sato", "Okafor", "Mensah",
             "Papadopoulos", "Kim", "Park", "da Silva", "dos Santos", "Haddad"),
}  # fmt: skip

# Spam-like names. Every one of them has no capital letter, a run of 4+ keys in keyboard order
# (QWERTY / QWERTZ / AZERTY), 4+ repeats of one character, or is a well-known fake value.
_KEYBOARD_RUNS = (
    "asdf", "qwer", "azerty", "qwertz", "qwerty", "asdfgh", "zxcv", "yxcv", "wxcv", "qsdf",
    "sdfg", "hjkl", "uiop", "Asdf", "Qwerty", "Azerty",
)  # fmt: skip
_REPEATS = ("aaaa", "xxxx", "Aaaa", "zzzzz", "jjjj", "ssss", "Xxxxx")
_FAKE_FIRST = ("test", "Test", "TEST", "fake", "Dummy")
_FAKE_LAST = ("test", "Test", "User", "Testing", "Tester")
SPAM_FAKE_VALUES = ("dummy", "fake", "test", "tester", "testing")
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "yxcvbnm", "azertyuiop",
                 "qsdfghjklm", "wxcvbn")  # fmt: skip

_TITLES = {
    "c_level": ("Chief Executive Officer", "CEO", "CTO", "CFO", "COO", "CMO",
                "Chief Revenue Officer", "Founder & CEO", "Co-Founder", "Owner",
                "Geschäftsführer", "Directeur Général"),
    "vp": ("VP Sales", "Vice President of Marketing", "VP Engineering", "SVP Operations",
           "Vice President, Finance", "EVP Business Development", "VP Customer Success"),
    "director": ("Director of Operations", "Head of Growth", "Head of Sales", "Sales Director",
                 "Marketing Director", "Director, IT", "Head of Customer Success",
                 "Directeur Commercial"),
    "manager": ("Sales Manager", "Team Lead", "Marketing Manager", "Product Manager",
                "Project Manager", "Account Manager", "Office Manager", "Teamleiter Vertrieb",
                "Responsable Marketing"),
    "individual": ("Software Engineer", "Account Executive", "Marketing Specialist",
                   "Data Analyst", "Consultant", "Sales Representative", "Designer", "Accountant",
                   "Developer", "Executive Assistant", "Sales Development Representative",
                   "Customer Support Agent"),
    "student": ("Student", "Intern", "PhD candidate", "Working Student", "Werkstudent",
                "Graduate Student", "Trainee"),
}  # fmt: skip
_SENIORITY_WEIGHTS = {
    "c_level": 0.07, "vp": 0.05, "director": 0.11, "manager": 0.2, "individual": 0.4,
    "student": 0.09, "missing": 0.08,
}  # fmt: skip
_TITLE_LOWERCASE_P = 0.08

FREEMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com")
_LOCAL_FREEMAIL = {
    "DE": ("gmx.de", "web.de", "t-online.de"), "AT": ("gmx.at",), "CH": ("bluewin.ch",),
    "FR": ("orange.fr", "free.fr", "laposte.net"), "BE": ("skynet.be",), "NL": ("ziggo.nl",),
    "IT": ("libero.it",), "PL": ("wp.pl", "onet.pl"), "GB": ("btinternet.com", "yahoo.co.uk"),
    "ES": ("yahoo.es",),
}  # fmt: skip
DISPOSABLE_DOMAINS = ("mailinator.com", "yopmail.com", "guerrillamail.com", "10minutemail.com")

_LEAD_SOURCES = ("organic", "paid_search", "referral", "event", "partner", "outbound", "social")
_LEAD_SOURCE_WEIGHTS = (0.3, 0.2, 0.1, 0.1, 0.08, 0.12, 0.1)

_SPAM_SHARE = 0.04
_EMAIL_BLANK_P = 0.015

# Activity patterns: how a lead's pre-snapshot events spread over the 30 days.
_PATTERNS = ("burst", "steady", "late_burst")
_PATTERN_WEIGHTS = (0.45, 0.35, 0.2)
_BURST_MEAN_DAYS = 2.5
_LATE_MEAN_DAYS = 3.0
_PRODUCT_BURST_MEAN_DAYS = 2.0

_ASCII_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d",
                             "ı": "i", "Ł": "L", "Đ": "D", "Ø": "O", "Æ": "AE"})  # fmt: skip


@dataclass(frozen=True)
class DemoData:
    """The demo dataset: ``leads`` and ``events`` as written to CSV, the ``truth`` as written to
    JSON, and ``features``: per lead, the true features, logit, probability and latent pattern
    (kept for tests and benchmarks, not written)."""

    leads: pd.DataFrame
    events: pd.DataFrame
    truth: dict[str, Any]
    features: pd.DataFrame = field(default_factory=pd.DataFrame)


def generate_demo_data(
    *, n_leads: int = 20_000, seed: int = 42, start: str = "2025-01-01", days: int = 365
) -> DemoData:
    """Generate leads, events and the known truth; the same arguments give identical data.

    ``leads.created_at`` is spread over ``days`` days from ``start``; each lead's outcome is
    drawn at ``created_at + 30 days`` from the logistic model in ``truth["coefficients"]``.
    """
    if isinstance(n_leads, bool) or not isinstance(n_leads, int) or n_leads < 1:
        raise ValueError(f"n_leads must be a positive integer, got {n_leads!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        start_sec = int(np.datetime64(start, "s").astype(np.int64))
    except ValueError as exc:
        raise ValueError(f"start must be an ISO date like '2025-01-01', got {start!r}") from exc

    rng = np.random.default_rng(seed)
    horizon = SNAPSHOT_HORIZON_DAYS * _DAY
    window_end = start_sec + (days + SNAPSHOT_HORIZON_DAYS + OUTCOME_DELAY_DAYS[1]) * _DAY

    created = start_sec + np.sort(rng.integers(0, days * _DAY, size=n_leads))
    snapshot = created + horizon
    accounts = _make_accounts(rng, n_accounts=max(1, round(0.3 * n_leads)))
    account_idx = _assign_accounts(rng, n_leads, accounts["popularity"])
    country = accounts["country"][account_idx]
    size = accounts["size"][account_idx].copy()
    size[rng.random(n_leads) < _SIZE_BLANK_P] = None
    industry = accounts["industry"][account_idx]
    target = accounts["target"][account_idx]
    source = rng.choice(np.array(_LEAD_SOURCES, dtype=object), size=n_leads, p=_LEAD_SOURCE_WEIGHTS)

    first, last, spam = _make_names(rng, country)
    seniority, title = _make_titles(rng, n_leads)
    email, email_type = _make_emails(
        rng, first, last, spam, seniority, country, accounts["domain"][account_idx]
    )
    profile = {
        "email_domain_type": email_type,
        "name_spam": np.where(spam, "yes", "no").astype(object),
        "seniority": seniority,
        "company_size": size,
        "industry": industry,
        "target_account": np.where(target, "yes", "no").astype(object),
        "lead_source": source,
    }
    fit_eta = _profile_logit(profile)

    # Latent engagement: FIT-correlated (senior, target-account, business-email leads engage more).
    fit_z = (fit_eta - fit_eta.mean()) / (fit_eta.std() or 1.0)
    log_engagement = 0.55 * fit_z + 0.75 * rng.standard_normal(n_leads)
    engagement = np.exp(log_engagement)
    pattern = rng.choice(len(_PATTERNS), size=n_leads, p=_PATTERN_WEIGHTS)

    pre = _pre_snapshot_events(rng, created, engagement, log_engagement, pattern)
    behaviour = _behaviour_features(pre, created, snapshot)
    eta_wo_intercept = fit_eta + _behaviour_logit(behaviour)
    intercept = round(_solve_intercept(eta_wo_intercept, TARGET_CONVERSION), 4)
    true_logit = intercept + eta_wo_intercept
    probability = 1.0 / (1.0 + np.exp(-true_logit))
    won = rng.random(n_leads) < probability
    outcome_at = snapshot + rng.integers(
        OUTCOME_DELAY_DAYS[0] * _DAY, OUTCOME_DELAY_DAYS[1] * _DAY + 1, size=n_leads
    )

    post = _post_snapshot_events(rng, pre, won, snapshot, outcome_at, engagement)
    events = _assemble_events(pre, post, window_end)

    lead_ids = np.array([f"L{i + 1:06d}" for i in range(n_leads)], dtype=object)
    leads = pd.DataFrame(
        {
            "lead_id": lead_ids,
            "created_at": _as_datetime(created),
            "first_name": first,
            "last_name": last,
            "email": email,
            "job_title": title,
            "company": accounts["company"][account_idx],
            "account_id": accounts["account_id"][account_idx],
            "company_size": size,
            "industry": industry,
            "country": country,
            "lead_source": source,
            "target_account": profile["target_account"],
            "outcome": np.where(won, "won", "lost").astype(object),
            "outcome_at": _as_datetime(outcome_at),
        },
        columns=list(LEAD_COLUMNS),
    )
    events_frame = pd.DataFrame(
        {
            "lead_id": lead_ids[events["lead"]],
            "event": np.array(_EVENT_NAMES, dtype=object)[events["code"]],
            "timestamp": _as_datetime(events["sec"]),
        },
        columns=list(EVENT_COLUMNS),
    )
    features = pd.DataFrame(
        {
            "lead_id": lead_ids,
            **profile,
            **{f"decayed_{g}": behaviour[f"decayed_{g}"] for g in GROUP_NAMES},
            "velocity_product": behaviour["velocity_product"],
            "true_logit": true_logit,
            "true_probability": probability,
            "pattern": np.array(_PATTERNS, dtype=object)[pattern],
            "engagement": engagement,
        }
    )
    truth = _truth(
        seed=seed,
        n_leads=n_leads,
        n_accounts=len(accounts["account_id"]),
        n_events=len(events_frame),
        start=start,
        days=days,
        window=(start_sec, window_end),
        intercept=intercept,
        won=won,
        probability=probability,
    )
    return DemoData(leads=leads, events=events_frame, truth=truth, features=features)


def write_demo_data(data: DemoData, out_dir: Path) -> list[Path]:
    """Write ``leads.csv``, ``events.csv`` and ``truth.json`` to ``out_dir``, each atomically.

    The bytes depend only on the data: ISO timestamps, ``\\n`` line ends, sorted JSON keys.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        write_bytes_atomic(out_dir / "leads.csv", _csv_bytes(data.leads)),
        write_bytes_atomic(out_dir / "events.csv", _csv_bytes(data.events)),
        write_bytes_atomic(out_dir / "truth.json", truth_json(data.truth).encode("utf-8")),
    ]
    return written


def truth_json(truth: dict[str, Any]) -> str:
    """The truth as deterministic JSON text (sorted keys, floats rounded to 6 decimals)."""
    return json.dumps(_round_floats(truth), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------
# Profile (FIT)


def _make_accounts(rng: np.random.Generator, *, n_accounts: int) -> dict[str, np.ndarray]:
    """Accounts with a unique company name and domain, firmographics and a lead popularity."""
    size_idx = rng.choice(len(_SIZES), size=n_accounts, p=_SIZE_WEIGHTS)
    industry_idx = rng.choice(len(_INDUSTRIES), size=n_accounts, p=_INDUSTRY_WEIGHTS)
    country = rng.choice(np.array(_COUNTRIES, dtype=object), size=n_accounts, p=_COUNTRY_WEIGHTS)
    target = rng.random(n_accounts) < np.asarray(_SIZE_TARGET_P)[size_idx]
    popularity = rng.lognormal(0.0, 0.8, size=n_accounts) * np.asarray(_SIZE_POPULARITY)[size_idx]
    tld_roll = rng.random(n_accounts)
    legal_roll = rng.random(n_accounts)

    company = np.empty(n_accounts, dtype=object)
    domain = np.empty(n_accounts, dtype=object)
    n_pre, n_core = len(_COMPANY_PREFIXES), len(_COMPANY_CORES)
    for k, ind in enumerate(_INDUSTRIES):
        rows = np.flatnonzero(industry_idx == k)
        words = _INDUSTRY_WORDS[ind]
        space = n_pre * n_core * len(words)
        combos = rng.choice(space, size=min(len(rows), space), replace=False)
        for j, row in enumerate(rows):
            combo = combos[j % space]
            stem = _COMPANY_PREFIXES[combo // (n_core * len(words))]
            stem += _COMPANY_CORES[(combo // len(words)) % n_core]
            word = words[combo % len(words)]
            if j >= space:  # more accounts than names: number the repeats
                stem = f"{stem}{j // space + 1}"
            ctry = country[row]
            forms = _LEGAL_FORMS[ctry]
            company[row] = f"{stem} {word} {forms[int(legal_roll[row] * len(forms))]}"
            if ctry == "US":
                tld = ".io" if ind == "software" and tld_roll[row] < 0.25 else ".com"
            else:
                tld = _COUNTRY_TLD[ctry] if tld_roll[row] < 0.7 else ".com"
            domain[row] = f"{stem.lower()}-{_ascii_fold(word)}{tld}"
    return {
        "account_id": np.array([f"A{i + 1:05d}" for i in range(n_accounts)], dtype=object),
        "company": company,
        "domain": domain,
        "size": np.array(_SIZES, dtype=object)[size_idx],
        "industry": np.array(_INDUSTRIES, dtype=object)[industry_idx],
        "country": country,
        "target": target,
        "popularity": popularity,
    }


def _assign_accounts(rng: np.random.Generator, n_leads: int, popularity: np.ndarray) -> np.ndarray:
    """Every account gets at least one lead; the rest follow the (skewed) popularity."""
    n_accounts = len(popularity)
    base = np.arange(min(n_accounts, n_leads))
    extra = rng.choice(n_accounts, size=n_leads - len(base), p=popularity / popularity.sum())
    return rng.permutation(np.concatenate([base, extra]))


def _make_names(
    rng: np.random.Generator, country: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First and last names from the country's pools, with ~4% made spam-like."""
    n = len(country)
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    pool_roll = rng.random(n)
    first_roll = rng.random(n)
    last_roll = rng.random(n)
    for ctry, pools in _COUNTRY_POOLS.items():
        rows = np.flatnonzero(country == ctry)
        edges = np.cumsum(list(pools.values()))
        which = np.minimum(np.searchsorted(edges, pool_roll[rows], side="right"), len(pools) - 1)
        for k, pool in enumerate(pools):
            sel = rows[which == k]
            firsts, lasts = _FIRST_NAMES[pool], _LAST_NAMES[pool]
            first[sel] = np.array(firsts, dtype=object)[(first_roll[sel] * len(firsts)).astype(int)]
            last[sel] = np.array(lasts, dtype=object)[(last_roll[sel] * len(lasts)).astype(int)]

    spam = rng.random(n) < _SPAM_SHARE
    kind = rng.choice(4, size=n, p=(0.35, 0.3, 0.15, 0.2))
    pick_a, pick_b, coin = rng.random(n), rng.random(n), rng.random(n)

    def pick(values: tuple[str, ...], u: float) -> str:
        return values[int(u * len(values))]

    for i in np.flatnonzero(spam):
        if kind[i] == 0:  # "john smith": no capital letter anywhere
            first[i], last[i] = first[i].lower(), last[i].lower()
        elif kind[i] == 1:  # keyboard runs
            first[i] = pick(_KEYBOARD_RUNS, pick_a[i])
            if coin[i] < 0.5:
                last[i] = pick(_KEYBOARD_RUNS, pick_b[i])
        elif kind[i] == 2:  # repeated characters
            if coin[i] < 0.5:
                first[i] = pick(_REPEATS, pick_a[i])
            else:
                last[i] = pick(_REPEATS, pick_b[i])
        else:  # fake values
            first[i] = pick(_FAKE_FIRST, pick_a[i])
            if coin[i] < 0.6:
                last[i] = pick(_FAKE_LAST, pick_b[i])
    return first, last, spam


def _make_titles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seniority level and a free-text job title (some lower-cased, some blank)."""
    levels = np.array(list(_SENIORITY_WEIGHTS), dtype=object)
    seniority = rng.choice(levels, size=n, p=list(_SENIORITY_WEIGHTS.values()))
    title_roll = rng.random(n)
    lower = rng.random(n) < _TITLE_LOWERCASE_P
    title = np.empty(n, dtype=object)
    for level, titles in _TITLES.items():
        rows = np.flatnonzero(seniority == level)
        title[rows] = np.array(titles, dtype=object)[(title_roll[rows] * len(titles)).astype(int)]
    for i in np.flatnonzero(lower & (seniority != "missing")):
        title[i] = title[i].lower()
    title[seniority == "missing"] = None
    return seniority, title


def _make_emails(
    rng: np.random.Generator,
    first: np.ndarray,
    last: np.ndarray,
    spam: np.ndarray,
    seniority: np.ndarray,
    country: np.ndarray,
    company_domain: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Email addresses and their domain type: business / freemail / disposable / missing."""
    n = len(first)
    student = seniority == "student"
    # P(blank), P(disposable), P(freemail); business is the rest.
    p_blank = np.where(spam, 0.05, _EMAIL_BLANK_P)
    p_disp = np.where(spam, 0.45, 0.0135)
    p_free = np.where(spam, 0.3, np.where(student, 0.6, 0.225))
    u = rng.random(n)
    kind = np.where(
        u < p_blank,
        "missing",
        np.where(
            u < p_blank + p_disp,
            "disposable",
            np.where(u < p_blank + p_disp + p_free, "freemail", "business"),
        ),
    ).astype(object)
    style, local_roll, domain_roll, digits = (
        rng.random(n),
        rng.random(n),
        rng.random(n),
        rng.integers(1, 100, size=n),
    )
    random_local = rng.integers(0, 36, size=(n, 8))
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

    email = np.empty(n, dtype=object)
    for i in range(n):
        f, la = _ascii_fold(first[i]), _ascii_fold(last[i])
        if kind[i] == "missing":
            email[i] = None
            continue
        if kind[i] == "business":
            local = f"{f}.{la}" if style[i] < 0.8 else f"{f[:1]}{la}"
            email[i] = f"{local}@{company_domain[i]}"
        elif kind[i] == "freemail":
            if style[i] < 0.5:
                local = f"{f}.{la}"
            elif style[i] < 0.8:
                local = f"{f}.{la}{digits[i]}"
            else:
                local = f"{f}{la}"
            local_domains = _LOCAL_FREEMAIL.get(country[i], ())
            if local_domains and local_roll[i] < 0.35:
                domain = local_domains[int(domain_roll[i] * len(local_domains))]
            else:
                domain = _weighted_pick(
                    FREEMAIL_DOMAINS, (0.5, 0.12, 0.14, 0.16, 0.08), domain_roll[i]
                )
            email[i] = f"{local}@{domain}"
        else:
            if style[i] < 0.6:
                local = "".join(alphabet[k] for k in random_local[i])
            else:
                local = f"{f}{la}{digits[i]}"
            domain = DISPOSABLE_DOMAINS[int(domain_roll[i] * len(DISPOSABLE_DOMAINS))]
            email[i] = f"{local}@{domain}"
    return email, kind


def _weighted_pick(values: tuple[str, ...], weights: tuple[float, ...], u: float) -> str:
    edges = np.cumsum(weights) / sum(weights)
    return values[min(int(np.searchsorted(edges, u, side="right")), len(values) - 1)]


def _ascii_fold(text: str) -> str:
    """Lower-case ASCII form of a name for an email address ("Nguyễn" -> "nguyen")."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return "".join(ch for ch in ascii_text if ch.isalnum() or ch == "-")


def _profile_logit(profile: dict[str, np.ndarray]) -> np.ndarray:
    """The FIT part of the true logit: sum of the ``column=level`` coefficients that apply."""
    n = len(profile["seniority"])
    eta = np.zeros(n)
    for name, coef in COEFFICIENTS.items():
        if "=" not in name:
            continue
        column, level = name.split("=", 1)
        eta += coef * (profile[column] == level)
    return eta


# ---------------------------------------------------------------------------------------------
# Behaviour (PAIN)


def _pattern_offsets(
    rng: np.random.Generator,
    pattern: np.ndarray,
    length: np.ndarray,
    *,
    burst_mean_days: float,
) -> np.ndarray:
    """Offsets in whole seconds inside ``(0, length)`` shaped by the activity pattern.

    burst: truncated exponential from the start (then quiet); steady: uniform; late_burst:
    truncated exponential back from the end.
    """
    u = rng.random(len(pattern))
    length_f = length.astype(float)
    exp_mean = np.where(pattern == 2, _LATE_MEAN_DAYS, burst_mean_days) * _DAY
    trunc = -exp_mean * np.log1p(-u * (1.0 - np.exp(-length_f / exp_mean)))
    value = np.where(pattern == 1, u * length_f, np.where(pattern == 2, length_f - trunc, trunc))
    return np.clip(np.floor(value).astype(np.int64), 1, np.maximum(length - 1, 1))


def _pre_snapshot_events(
    rng: np.random.Generator,
    created: np.ndarray,
    engagement: np.ndarray,
    log_engagement: np.ndarray,
    pattern: np.ndarray,
) -> dict[str, np.ndarray]:
    """Events in ``(created_at, snapshot_at)``: trivial and non-product events for everyone,
    product events only for leads who signed up for a trial (and only after the signup)."""
    n = len(created)
    horizon = SNAPSHOT_HORIZON_DAYS * _DAY
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(
        lead: np.ndarray, names: tuple[str, ...], weights: tuple[float, ...], offset: np.ndarray
    ):
        codes = np.array([_EVENT_CODE[x] for x in names])[
            rng.choice(len(names), size=len(lead), p=np.asarray(weights) / sum(weights))
        ]
        chunks.append((lead, codes, created[lead] + offset))

    full = np.full(n, horizon, dtype=np.int64)
    trivial_lead = np.repeat(np.arange(n), rng.poisson(6.0 * engagement))
    add(
        trivial_lead,
        EVENT_GROUPS["trivial"],
        (0.5, 0.2, 0.3),
        _pattern_offsets(
            rng, pattern[trivial_lead], full[trivial_lead], burst_mean_days=_BURST_MEAN_DAYS
        ),
    )
    np_lead = np.repeat(np.arange(n), rng.poisson(1.1 * engagement))
    add(
        np_lead,
        EVENT_GROUPS["non_product"],
        (0.4, 0.25, 0.35),
        _pattern_offsets(rng, pattern[np_lead], full[np_lead], burst_mean_days=_BURST_MEAN_DAYS),
    )
    p_trial = 1.0 / (1.0 + np.exp(-(-1.0 + 1.3 * log_engagement)))
    trial = rng.random(n) < p_trial
    trial_lead = np.flatnonzero(trial)
    trial_off = _pattern_offsets(
        rng, pattern[trial_lead], full[trial_lead] - 2, burst_mean_days=_BURST_MEAN_DAYS
    )
    chunks.append(
        (
            trial_lead,
            np.full(len(trial_lead), _EVENT_CODE["trial_signup"]),
            created[trial_lead] + trial_off,
        )
    )
    trial_offset = np.full(n, -1, dtype=np.int64)
    trial_offset[trial_lead] = trial_off

    n_product = np.zeros(n, dtype=np.int64)
    n_product[trial_lead] = rng.poisson(3.0 * engagement[trial_lead])
    prod_lead = np.repeat(np.arange(n), n_product)
    remaining = horizon - trial_offset[prod_lead]
    prod_off = trial_offset[prod_lead] + _pattern_offsets(
        rng,
        np.where(pattern[prod_lead] == 1, 1, 0),
        remaining,
        burst_mean_days=_PRODUCT_BURST_MEAN_DAYS,
    )
    add(
        prod_lead,
        ("login", "document_created", "document_signed", "teammate_invited"),
        (0.55, 0.25, 0.1, 0.1),
        prod_off,
    )
    lead = np.concatenate([c[0] for c in chunks])
    code = np.concatenate([c[1] for c in chunks])
    sec = np.concatenate([c[2] for c in chunks])
    return {
        "lead": lead,
        "code": code,
        "sec": sec,
        "trial": trial,
        "trial_sec": created + trial_offset,
    }


def _behaviour_features(
    events: dict[str, np.ndarray], created: np.ndarray, snapshot: np.ndarray
) -> dict[str, np.ndarray]:
    """``decayed_<group>`` and ``velocity_product`` from events before each lead's snapshot."""
    n = len(created)
    lead, sec = events["lead"], events["sec"]
    group = _EVENT_GROUP_CODE[events["code"]]
    before = sec < snapshot[lead]
    age_days = (snapshot[lead] - sec) / _DAY
    out: dict[str, np.ndarray] = {}
    for g, name in enumerate(GROUP_NAMES):
        mask = before & (group == g)
        weight = 0.5 ** (age_days[mask] / HALF_LIFE_DAYS[name])
        out[f"decayed_{name}"] = np.bincount(lead[mask], weights=weight, minlength=n)
    window_end = np.minimum(created + VELOCITY_WINDOW_DAYS * _DAY, snapshot)
    in_window = (
        (group == GROUP_NAMES.index("product")) & (sec >= created[lead]) & (sec < window_end[lead])
    )
    out["velocity_product"] = np.bincount(lead[in_window], minlength=n) / VELOCITY_WINDOW_DAYS
    return out


def _behaviour_logit(behaviour: dict[str, np.ndarray]) -> np.ndarray:
    eta = COEFFICIENTS["velocity_product"] * behaviour["velocity_product"]
    for term, column in BEHAVIOUR_TERMS.items():
        eta = eta + COEFFICIENTS[term] * np.log1p(behaviour[column])
    return eta


def _solve_intercept(eta: np.ndarray, target: float) -> float:
    """The intercept whose mean predicted probability equals ``target`` (bisection)."""
    lo, hi = -30.0, 30.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if np.mean(1.0 / (1.0 + np.exp(-(mid + eta)))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def _post_snapshot_events(
    rng: np.random.Generator,
    pre: dict[str, np.ndarray],
    won: np.ndarray,
    snapshot: np.ndarray,
    outcome_at: np.ndarray,
    engagement: np.ndarray,
) -> dict[str, np.ndarray]:
    """Events after the snapshot, caused by the sale: many for won leads, few for lost ones.

    They run until 30 days after ``outcome_at``; a won lead without a trial signs up first.
    """
    n = len(won)
    end = outcome_at + 30 * _DAY
    trial = pre["trial"].copy()
    new_trial = ~trial & (won | (rng.random(n) < 0.04))
    new_trial_lead = np.flatnonzero(new_trial)
    new_trial_sec = snapshot[new_trial_lead] + rng.integers(
        3600, 3 * _DAY, size=len(new_trial_lead)
    )
    trial_sec = pre["trial_sec"].copy()
    trial_sec[new_trial_lead] = new_trial_sec
    trial |= new_trial
    product_start = np.maximum(trial_sec, snapshot)

    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
        (new_trial_lead, np.full(len(new_trial_lead), _EVENT_CODE["trial_signup"]), new_trial_sec)
    ]

    def add(counts: np.ndarray, names: tuple[str, ...], weights: tuple[float, ...], lo: np.ndarray):
        lead = np.repeat(np.arange(n), counts)
        span = np.maximum(end[lead] - lo[lead], 2)
        sec = lo[lead] + 1 + (rng.random(len(lead)) * (span - 1)).astype(np.int64)
        codes = np.array([_EVENT_CODE[x] for x in names])[
            rng.choice(len(names), size=len(lead), p=np.asarray(weights) / sum(weights))
        ]
        chunks.append((lead, codes, sec))

    trivial_rate = np.where(won, 6.0, 2.5 * np.sqrt(engagement))
    add(rng.poisson(trivial_rate), EVENT_GROUPS["trivial"], (0.5, 0.2, 0.3), snapshot)
    add(
        rng.poisson(np.where(won, 1.0, 0.3)), EVENT_GROUPS["non_product"], (0.2, 0.3, 0.5), snapshot
    )
    product_rate = np.where(won, 30.0, np.where(trial, 1.5, 0.0))
    add(
        rng.poisson(product_rate),
        ("login", "document_created", "document_signed", "teammate_invited"),
        (0.6, 0.18, 0.12, 0.1),
        product_start,
    )
    return {
        "lead": np.concatenate([c[0] for c in chunks]),
        "code": np.concatenate([c[1] for c in chunks]),
        "sec": np.concatenate([c[2] for c in chunks]),
    }


def _assemble_events(
    pre: dict[str, np.ndarray], post: dict[str, np.ndarray], window_end: int
) -> dict[str, np.ndarray]:
    """Pre- and post-snapshot events, clipped to the data window, sorted by lead then time."""
    lead = np.concatenate([pre["lead"], post["lead"]])
    code = np.concatenate([pre["code"], post["code"]])
    sec = np.concatenate([pre["sec"], post["sec"]])
    keep = sec < window_end
    lead, code, sec = lead[keep], code[keep], sec[keep]
    order = np.lexsort((code, sec, lead))
    return {"lead": lead[order], "code": code[order], "sec": sec[order]}


# ---------------------------------------------------------------------------------------------
# Output


def _as_datetime(seconds: np.ndarray) -> np.ndarray:
    return np.asarray(seconds, dtype=np.int64).astype("datetime64[s]")


def _iso(seconds: np.datetime64 | int) -> str:
    return str(np.datetime64(int(seconds), "s"))


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Rank AUC (ties get half credit)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _truth(
    *,
    seed: int,
    n_leads: int,
    n_accounts: int,
    n_events: int,
    start: str,
    days: int,
    window: tuple[int, int],
    intercept: float,
    won: np.ndarray,
    probability: np.ndarray,
) -> dict[str, Any]:
    title_seniority = {
        title.casefold(): level for level, titles in _TITLES.items() for title in titles
    }
    return {
        "seed": seed,
        "n_leads": n_leads,
        "n_accounts": n_accounts,
        "n_events": n_events,
        "start": start,
        "days": days,
        "window_start": _iso(window[0]),
        "window_end": _iso(window[1]),
        "snapshot_horizon_days": SNAPSHOT_HORIZON_DAYS,
        "velocity_window_days": VELOCITY_WINDOW_DAYS,
        "half_life_days": dict(HALF_LIFE_DAYS),
        **{f"half_life_days_{g}": hl for g, hl in HALF_LIFE_DAYS.items()},
        "event_groups": {g: list(names) for g, names in EVENT_GROUPS.items()},
        "label": {"column": "outcome", "positive": ["won"], "negative": ["lost"]},
        "leaky_columns": ["outcome_at"],
        "intercept": intercept,
        "coefficients": {**COEFFICIENTS, "intercept": intercept},
        "reference_levels": {
            "email_domain_type": ["business", "missing"],
            "name_spam": ["no"],
            "seniority": ["individual", "missing"],
            "company_size": ["11-50", "missing"],
            "target_account": ["no"],
        },
        "target_conversion_rate": TARGET_CONVERSION,
        "conversion_rate": float(np.mean(won)),
        "expected_conversion_rate": float(np.mean(probability)),
        "oracle_auc": _auc(probability, won),
        "freemail_domains": sorted(
            {*FREEMAIL_DOMAINS, *(d for v in _LOCAL_FREEMAIL.values() for d in v)}
        ),
        "disposable_domains": sorted(DISPOSABLE_DOMAINS),
        "title_seniority": dict(sorted(title_seniority.items())),
        "spam_fake_values": list(SPAM_FAKE_VALUES),
        "keyboard_rows": list(KEYBOARD_ROWS),
    }


def _round_floats(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _round_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round_floats(v) for v in value]
    return value


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with ISO-8601 timestamps (``YYYY-MM-DDTHH:MM:SS``) and ``\\n`` line ends."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            values = out[column].to_numpy().astype("datetime64[s]")
            out[column] = np.datetime_as_string(values, unit="s")
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")
