"""The accounts of the demo data: companies with a unique name and domain, firmographics
(size, industry, country, target-account list) and how many leads each brings."""

from __future__ import annotations

import numpy as np

from pipeline.inputs.demo_people import ascii_fold

_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")
_SIZE_WEIGHTS = (0.22, 0.28, 0.24, 0.16, 0.10)
_SIZE_POPULARITY = (0.6, 0.8, 1.0, 1.4, 2.0)  # bigger accounts bring more leads
_SIZE_TARGET_P = (0.03, 0.05, 0.09, 0.16, 0.24)  # target-account lists favour large accounts
SIZE_BLANK_P = 0.07

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


def make_accounts(rng: np.random.Generator, *, n_accounts: int) -> dict[str, np.ndarray]:
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
            domain[row] = f"{stem.lower()}-{ascii_fold(word)}{tld}"
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


def assign_accounts(rng: np.random.Generator, n_leads: int, popularity: np.ndarray) -> np.ndarray:
    """Every account gets at least one lead; the rest follow the (skewed) popularity."""
    n_accounts = len(popularity)
    base = np.arange(min(n_accounts, n_leads))
    extra = rng.choice(n_accounts, size=n_leads - len(base), p=popularity / popularity.sum())
    return rng.permutation(np.concatenate([base, extra]))
