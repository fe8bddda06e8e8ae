"""The behaviour of the demo data (PAIN): each lead's events before the snapshot, the
decayed and velocity features they give, and the events after it that the sale causes
(any feature that looks past the snapshot leaks the label)."""

from __future__ import annotations

import numpy as np

from pipeline.inputs.demo_truth import (
    DAY,
    EVENT_GROUPS,
    EVENT_NAMES,
    GROUP_NAMES,
    HALF_LIFE_DAYS,
    SNAPSHOT_HORIZON_DAYS,
    VELOCITY_WINDOW_DAYS,
)

_EVENT_CODE = {name: i for i, name in enumerate(EVENT_NAMES)}
_EVENT_GROUP_CODE = np.array(
    [GROUP_NAMES.index(g) for g, names in EVENT_GROUPS.items() for _ in names], dtype=np.int64
)

_BURST_MEAN_DAYS = 2.5
_LATE_MEAN_DAYS = 3.0
_PRODUCT_BURST_MEAN_DAYS = 2.0


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
    exp_mean = np.where(pattern == 2, _LATE_MEAN_DAYS, burst_mean_days) * DAY
    trunc = -exp_mean * np.log1p(-u * (1.0 - np.exp(-length_f / exp_mean)))
    value = np.where(pattern == 1, u * length_f, np.where(pattern == 2, length_f - trunc, trunc))
    return np.clip(np.floor(value).astype(np.int64), 1, np.maximum(length - 1, 1))


def pre_snapshot_events(
    rng: np.random.Generator,
    created: np.ndarray,
    engagement: np.ndarray,
    log_engagement: np.ndarray,
    pattern: np.ndarray,
) -> dict[str, np.ndarray]:
    """Events in ``(created_at, snapshot_at)``: trivial and non-product events for everyone,
    product events only for leads who signed up for a trial (and only after the signup)."""
    n = len(created)
    horizon = SNAPSHOT_HORIZON_DAYS * DAY
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


def behaviour_features(
    events: dict[str, np.ndarray], created: np.ndarray, snapshot: np.ndarray
) -> dict[str, np.ndarray]:
    """``decayed_<group>`` and ``velocity_product`` from events before each lead's snapshot."""
    n = len(created)
    lead, sec = events["lead"], events["sec"]
    group = _EVENT_GROUP_CODE[events["code"]]
    before = sec < snapshot[lead]
    age_days = (snapshot[lead] - sec) / DAY
    out: dict[str, np.ndarray] = {}
    for g, name in enumerate(GROUP_NAMES):
        mask = before & (group == g)
        weight = 0.5 ** (age_days[mask] / HALF_LIFE_DAYS[name])
        out[f"decayed_{name}"] = np.bincount(lead[mask], weights=weight, minlength=n)
    window_end = np.minimum(created + VELOCITY_WINDOW_DAYS * DAY, snapshot)
    in_window = (
        (group == GROUP_NAMES.index("product")) & (sec >= created[lead]) & (sec < window_end[lead])
    )
    out["velocity_product"] = np.bincount(lead[in_window], minlength=n) / VELOCITY_WINDOW_DAYS
    return out


def post_snapshot_events(
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
    end = outcome_at + 30 * DAY
    trial = pre["trial"].copy()
    new_trial = ~trial & (won | (rng.random(n) < 0.04))
    new_trial_lead = np.flatnonzero(new_trial)
    new_trial_sec = snapshot[new_trial_lead] + rng.integers(
        3600, 3 * DAY, size=len(new_trial_lead)
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


def assemble_events(
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
