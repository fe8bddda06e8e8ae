"""The embedded demo dataset: synthetic B2B SaaS leads and events with a known truth.

Every lead gets a profile (FIT: :mod:`pipeline.inputs.demo_accounts`,
:mod:`pipeline.inputs.demo_people`), an event log (PAIN: :mod:`pipeline.inputs.demo_behaviour`)
and an outcome drawn from a known logistic model evaluated on features *at the snapshot*
(``created_at + 30 days``). After the snapshot, won leads produce many "post-contact" events
caused by the sale, so any feature that looks past the snapshot leaks the label. ``truth``
records the model (:mod:`pipeline.inputs.demo_truth`, which also defines the features), so
that every stage of the pipeline can be checked against what it should recover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.inputs.demo_accounts import SIZE_BLANK_P, assign_accounts, make_accounts
from pipeline.inputs.demo_behaviour import (
    assemble_events,
    behaviour_features,
    post_snapshot_events,
    pre_snapshot_events,
)
from pipeline.inputs.demo_people import make_emails, make_names, make_titles
from pipeline.inputs.demo_truth import (
    DAY,
    EVENT_COLUMNS,
    EVENT_NAMES,
    GROUP_NAMES,
    LEAD_COLUMNS,
    OUTCOME_DELAY_DAYS,
    SNAPSHOT_HORIZON_DAYS,
    TARGET_CONVERSION,
    behaviour_logit,
    make_truth,
    profile_logit,
    solve_intercept,
    truth_json,
)
from pipeline.inputs.reader import write_bytes_atomic

_LEAD_SOURCES = ("organic", "paid_search", "referral", "event", "partner", "outbound", "social")
_LEAD_SOURCE_WEIGHTS = (0.3, 0.2, 0.1, 0.1, 0.08, 0.12, 0.1)

# Activity patterns: how a lead's pre-snapshot events spread over the 30 days.
_PATTERNS = ("burst", "steady", "late_burst")
_PATTERN_WEIGHTS = (0.45, 0.35, 0.2)


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
    horizon = SNAPSHOT_HORIZON_DAYS * DAY
    window_end = start_sec + (days + SNAPSHOT_HORIZON_DAYS + OUTCOME_DELAY_DAYS[1]) * DAY

    created = start_sec + np.sort(rng.integers(0, days * DAY, size=n_leads))
    snapshot = created + horizon
    accounts = make_accounts(rng, n_accounts=max(1, round(0.3 * n_leads)))
    account_idx = assign_accounts(rng, n_leads, accounts["popularity"])
    country = accounts["country"][account_idx]
    size = accounts["size"][account_idx].copy()
    size[rng.random(n_leads) < SIZE_BLANK_P] = None
    industry = accounts["industry"][account_idx]
    target = accounts["target"][account_idx]
    source = rng.choice(np.array(_LEAD_SOURCES, dtype=object), size=n_leads, p=_LEAD_SOURCE_WEIGHTS)

    first, last, spam = make_names(rng, country)
    seniority, title = make_titles(rng, n_leads)
    email, email_type = make_emails(
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
    fit_eta = profile_logit(profile)

    # Latent engagement: FIT-correlated (senior, target-account, business-email leads engage more).
    fit_z = (fit_eta - fit_eta.mean()) / (fit_eta.std() or 1.0)
    log_engagement = 0.55 * fit_z + 0.75 * rng.standard_normal(n_leads)
    engagement = np.exp(log_engagement)
    pattern = rng.choice(len(_PATTERNS), size=n_leads, p=_PATTERN_WEIGHTS)

    pre = pre_snapshot_events(rng, created, engagement, log_engagement, pattern)
    behaviour = behaviour_features(pre, created, snapshot)
    eta_wo_intercept = fit_eta + behaviour_logit(behaviour)
    intercept = round(solve_intercept(eta_wo_intercept, TARGET_CONVERSION), 4)
    true_logit = intercept + eta_wo_intercept
    probability = 1.0 / (1.0 + np.exp(-true_logit))
    won = rng.random(n_leads) < probability
    outcome_at = snapshot + rng.integers(
        OUTCOME_DELAY_DAYS[0] * DAY, OUTCOME_DELAY_DAYS[1] * DAY + 1, size=n_leads
    )

    post = post_snapshot_events(rng, pre, won, snapshot, outcome_at, engagement)
    events = assemble_events(pre, post, window_end)

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
            "event": np.array(EVENT_NAMES, dtype=object)[events["code"]],
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
    truth = make_truth(
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


def _as_datetime(seconds: np.ndarray) -> np.ndarray:
    return np.asarray(seconds, dtype=np.int64).astype("datetime64[s]")


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with ISO-8601 timestamps (``YYYY-MM-DDTHH:MM:SS``) and ``\\n`` line ends."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            values = out[column].to_numpy().astype("datetime64[s]")
            out[column] = np.datetime_as_string(values, unit="s")
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")
