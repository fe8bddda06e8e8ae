"""The known truth behind the demo data: columns, event groups, half-lives, the true
coefficients, the logit they give, and ``truth.json``.

Every lead's outcome is drawn from a known logistic model evaluated on features *at the
snapshot* (``created_at + 30 days``). Feature definitions used by the truth (the pipeline
computes exactly these):

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
from typing import Any

import numpy as np
import pandas as pd

from pipeline.inputs.demo_people import (
    DISPOSABLE_DOMAINS,
    FREEMAIL_DOMAINS,
    KEYBOARD_ROWS,
    LOCAL_FREEMAIL,
    SPAM_FAKE_VALUES,
    TITLES,
)

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

DAY = 86_400
EVENT_NAMES = tuple(name for names in EVENT_GROUPS.values() for name in names)


def profile_logit(profile: dict[str, np.ndarray]) -> np.ndarray:
    """The FIT part of the true logit: sum of the ``column=level`` coefficients that apply."""
    n = len(profile["seniority"])
    eta = np.zeros(n)
    for name, coef in COEFFICIENTS.items():
        if "=" not in name:
            continue
        column, level = name.split("=", 1)
        eta += coef * (profile[column] == level)
    return eta


def behaviour_logit(behaviour: dict[str, np.ndarray]) -> np.ndarray:
    eta = COEFFICIENTS["velocity_product"] * behaviour["velocity_product"]
    for term, column in BEHAVIOUR_TERMS.items():
        eta = eta + COEFFICIENTS[term] * np.log1p(behaviour[column])
    return eta


def solve_intercept(eta: np.ndarray, target: float) -> float:
    """The intercept whose mean predicted probability equals ``target`` (bisection)."""
    lo, hi = -30.0, 30.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if np.mean(1.0 / (1.0 + np.exp(-(mid + eta)))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


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


def make_truth(
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
        title.casefold(): level for level, titles in TITLES.items() for title in titles
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
            {*FREEMAIL_DOMAINS, *(d for v in LOCAL_FREEMAIL.values() for d in v)}
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


def truth_json(truth: dict[str, Any]) -> str:
    """The truth as deterministic JSON text (sorted keys, floats rounded to 6 decimals)."""
    return json.dumps(_round_floats(truth), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
