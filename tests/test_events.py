"""Event features: DuckDB aggregation against a slow pure-Python loop, plus point-in-time rules."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import UserError
from pipeline.inputs.events import (
    DIAGNOSTIC_KEYS,
    aggregate_events,
    decayed_counts_as_of,
    half_life_column,
    slugify,
)

GROUPS = {
    "trial_signup": "product",
    "Doc Signed": "product",
    "webinar": "non_product",
    "pricing-page": "non_product",
    "email_open": "trivial",
}
HALF_LIVES = {"product": 10.0, "non_product": 30.0, "trivial": 3.0, "other": 7.0}
EVENT_NAMES = [*GROUPS, "unmapped_thing"]
T0 = datetime(2024, 3, 1)


# --------------------------------------------------------------------------- reference


def _parse(value) -> datetime | None:
    """Reference timestamp parsing: naive = UTC, offsets converted to UTC."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if pd.isna(ts):
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


def reference(events, snapshots, *, event_groups, half_lives, windows, key_group, grid=None):
    """One loop over events: obviously right, slow."""
    leads = {
        str(r.lead_id): (_parse(r.created_at), _parse(r.snapshot_at))
        for r in snapshots.itertuples()
    }
    groups = sorted(set(event_groups.values()) | {"other"})
    diag = dict.fromkeys(DIAGNOSTIC_KEYS, 0)
    used: dict[str, list[tuple[str, str, datetime]]] = {lead: [] for lead in leads}
    for r in events.itertuples():
        diag["events_total"] += 1
        ts = _parse(r.timestamp)
        if ts is None:
            diag["unparseable_timestamps"] += 1
        elif str(r.lead_id) not in leads:
            diag["events_unknown_lead"] += 1
        elif ts < leads[str(r.lead_id)][0]:
            diag["events_before_creation"] += 1
        elif ts >= leads[str(r.lead_id)][1]:
            diag["events_after_snapshot"] += 1
        else:
            diag["events_used"] += 1
            used[str(r.lead_id)].append((r.event, event_groups.get(r.event, "other"), ts))
    names = sorted(
        {slugify(e) for e in event_groups} | {slugify(e) for v in used.values() for e, _, _ in v}
    )
    rows = []
    for lead, (created, snap) in leads.items():
        evs = used[lead]
        row: dict[str, object] = {"lead_id": lead}
        for n in names:
            row[f"n_{n}"] = sum(1 for e, _, _ in evs if slugify(e) == n)
        for g in groups:
            for w in sorted(windows):
                row[f"n_{g}_{w}d"] = sum(
                    1 for _, gg, t in evs if gg == g and snap - timedelta(days=w) <= t < snap
                )
        row["days_since_last_event"] = min(_days(snap - t) for _, _, t in evs) if evs else math.nan
        row["days_active"] = len({t.date() for _, _, t in evs})
        week_end = min(created + timedelta(days=7), snap)
        row[f"velocity_{key_group}"] = (
            sum(1 for _, g, t in evs if g == key_group and created <= t < week_end) / 7
        )
        key_times = [t for _, g, t in evs if g == key_group]
        row[f"days_to_first_{key_group}"] = (
            _days(min(key_times) - created) if key_times else math.nan
        )
        for g in sorted(half_lives):
            row[f"decayed_{g}"] = sum(
                0.5 ** (_days(snap - t) / half_lives[g]) for _, gg, t in evs if gg == g
            )
        for g in sorted(grid or {}):
            for h in sorted(grid[g]):
                row[half_life_column(g, h)] = sum(
                    0.5 ** (_days(snap - t) / h) for _, gg, t in evs if gg == g
                )
        rows.append(row)
    return pd.DataFrame(rows), diag


def random_log(seed: int, *, n_leads: int = 12, n_events: int = 400):
    """Small seeded log with unknown leads, bad timestamps and events outside the window."""
    rng = np.random.default_rng(seed)
    created = [T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 20 * 86400, n_leads)]
    snaps = [
        c + timedelta(seconds=int(s))
        for c, s in zip(created, rng.integers(3600, 120 * 86400, n_leads), strict=True)
    ]
    snapshots = pd.DataFrame(
        {
            "lead_id": [f"L{i:03d}" for i in range(n_leads)],
            "created_at": pd.to_datetime(created),
            "snapshot_at": pd.to_datetime(snaps),
        }
    )
    lead_ids = [*snapshots["lead_id"], "ghost-1", "ghost-2"]
    stamps: list[object] = []
    for _ in range(n_events):
        base = T0 + timedelta(seconds=int(rng.integers(-30 * 86400, 160 * 86400)))
        stamps.append(base.isoformat(sep=" "))
    for i in rng.choice(n_events, 6, replace=False):
        stamps[i] = "not a date"
    stamps[0] = None
    events = pd.DataFrame(
        {
            "lead_id": [lead_ids[i] for i in rng.integers(0, len(lead_ids), n_events)],
            "event": [EVENT_NAMES[i] for i in rng.integers(0, len(EVENT_NAMES), n_events)],
            "timestamp": stamps,
            "page": rng.integers(0, 5, n_events),
        }
    )
    return events, snapshots


def assert_features_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert got["lead_id"].tolist() == want["lead_id"].tolist()
    for col in got.columns[1:]:
        np.testing.assert_allclose(
            got[col].to_numpy(dtype=float),
            want[col].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-12,
            err_msg=col,
        )


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_feature_matches_reference(seed):
    events, snapshots = random_log(seed)
    grid = {"product": (2, 5.5, 40), "other": (1,)}
    got = aggregate_events(
        events,
        snapshots,
        event_groups=GROUPS,
        half_lives=HALF_LIVES,
        windows=(30, 7, 90),
        extra_half_life_grid=grid,
    )
    want, diag = reference(
        events,
        snapshots,
        event_groups=GROUPS,
        half_lives=HALF_LIVES,
        windows=(7, 30, 90),
        key_group="product",
        grid=grid,
    )
    assert_features_equal(got.features, want)
    assert got.diagnostics == diag
    assert diag["events_used"] > 50 and diag["events_unknown_lead"] > 0


def test_column_families_in_documented_order():
    events, snapshots = random_log(5)
    got = aggregate_events(
        events,
        snapshots,
        event_groups=GROUPS,
        half_lives=HALF_LIVES,
        extra_half_life_grid={"trivial": (14, 2)},
    ).features
    cols = list(got.columns)
    assert cols[:7] == [
        "lead_id",
        "n_doc_signed",
        "n_email_open",
        "n_pricing_page",
        "n_trial_signup",
        "n_unmapped_thing",
        "n_webinar",
    ]
    assert cols[7:10] == ["n_non_product_7d", "n_non_product_30d", "n_non_product_90d"]
    assert cols[-10:] == [
        "days_since_last_event",
        "days_active",
        "velocity_product",
        "days_to_first_product",
        "decayed_non_product",
        "decayed_other",
        "decayed_product",
        "decayed_trivial",
        "decayed_trivial__hl2",
        "decayed_trivial__hl14",
    ]
    assert all(re.fullmatch(r"[a-z0-9_.]+", c) for c in cols)
    assert got["n_trial_signup"].dtype == np.int64 and got["decayed_other"].dtype == np.float64


def test_hand_computed_lead():
    snapshots = pd.DataFrame(
        {
            "lead_id": ["a"],
            "created_at": [datetime(2024, 1, 1)],
            "snapshot_at": [datetime(2024, 1, 31)],
        }
    )
    events = pd.DataFrame(
        {
            "lead_id": ["a"] * 5,
            "event": ["trial_signup", "trial_signup", "webinar", "trial_signup", "email_open"],
            "timestamp": [
                "2024-01-02 12:00",
                "2024-01-02 18:00",
                "2024-01-10",
                "2024-01-21",
                "2024-01-31",
            ],
        }
    )
    got = aggregate_events(
        events, snapshots, event_groups=GROUPS, half_lives={"product": 10.0}
    ).features.iloc[0]
    assert got["n_trial_signup"] == 3 and got["n_email_open"] == 0
    assert got["n_product_7d"] == 0 and got["n_product_30d"] == 3
    assert got["days_since_last_event"] == 10.0
    assert got["days_active"] == 3
    assert got["velocity_product"] == pytest.approx(2 / 7)
    assert got["days_to_first_product"] == pytest.approx(1.5)
    assert got["decayed_product"] == pytest.approx(0.5 + 0.5**2.85 + 0.5**2.825)


def test_lead_without_events_gets_zero_counts_and_nan_times():
    events, snapshots = random_log(1)
    silent = pd.DataFrame(
        {"lead_id": ["silent"], "created_at": [T0], "snapshot_at": [T0 + timedelta(days=5)]}
    )
    got = aggregate_events(
        events,
        pd.concat([snapshots, silent], ignore_index=True),
        event_groups=GROUPS,
        half_lives=HALF_LIVES,
    ).features.iloc[-1]
    assert got["lead_id"] == "silent"
    counts = [c for c in got.index if c.startswith(("n_", "decayed_", "velocity_"))]
    assert all(got[c] == 0 for c in counts) and got["days_active"] == 0
    assert math.isnan(got["days_since_last_event"]) and math.isnan(got["days_to_first_product"])


def test_events_after_snapshot_change_nothing():
    events, snapshots = random_log(7)
    before = aggregate_events(events, snapshots, event_groups=GROUPS, half_lives=HALF_LIVES)
    lead = snapshots.iloc[3]
    late = pd.DataFrame(
        {
            "lead_id": [lead["lead_id"]] * 4,
            # a burst of product use right after the snapshot (it would flip the label),
            # including a brand-new event type
            "event": ["trial_signup", "Doc Signed", "Doc Signed", "purchase_completed"],
            "timestamp": [lead["snapshot_at"] + timedelta(seconds=s) for s in (0, 1, 3600, 86400)],
            "page": [0] * 4,
        }
    )
    after = aggregate_events(
        pd.concat([events, late], ignore_index=True),
        snapshots,
        event_groups=GROUPS,
        half_lives=HALF_LIVES,
    )
    pd.testing.assert_frame_equal(after.features, before.features)
    assert after.diagnostics["events_after_snapshot"] == (
        before.diagnostics["events_after_snapshot"] + 4
    )


def test_unknown_leads_and_pre_creation_events_are_counted():
    snapshots = pd.DataFrame(
        {
            "lead_id": ["a", "b"],
            "created_at": [T0, T0],
            "snapshot_at": [T0 + timedelta(days=10)] * 2,
        }
    )
    events = pd.DataFrame(
        {
            "lead_id": ["a", "a", "a", "x", "y", "b", None, "b"],
            "event": ["webinar"] * 8,
            "timestamp": [
                T0 - timedelta(seconds=1),
                T0,
                T0 + timedelta(days=10),
                T0,
                T0,
                "2024-02-30",
                T0,
                "2024-03-01T01:00:00+02:00",
            ],
        }
    )
    got = aggregate_events(events, snapshots, event_groups=GROUPS, half_lives=HALF_LIVES)
    assert got.diagnostics == {
        "events_total": 8,
        "events_used": 1,
        "events_after_snapshot": 1,
        "events_before_creation": 2,
        "events_unknown_lead": 3,
        "unparseable_timestamps": 1,
    }
    assert got.features["n_webinar"].tolist() == [1, 0]


def test_offset_timestamps_are_converted_to_utc():
    snapshots = pd.DataFrame(
        {"lead_id": ["a"], "created_at": ["2024-01-01"], "snapshot_at": ["2024-01-11T00:00:00Z"]}
    )
    events = pd.DataFrame(
        {
            "lead_id": ["a", "a"],
            "event": ["webinar", "webinar"],
            "timestamp": ["2024-01-10T02:00:00+02:00", "2024-01-11T01:00:00+02:00"],
        }
    )
    got = aggregate_events(events, snapshots, event_groups=GROUPS, half_lives=HALF_LIVES)
    assert got.features["n_webinar"].tolist() == [2]
    assert got.features["days_since_last_event"].tolist() == [pytest.approx(1 / 24)]


def test_slug_collisions_merge_event_counts():
    snapshots = pd.DataFrame(
        {"lead_id": ["a"], "created_at": [T0], "snapshot_at": [T0 + timedelta(days=2)]}
    )
    events = pd.DataFrame(
        {
            "lead_id": ["a"] * 3,
            "event": ["Page View", "page-view", "page_view"],
            "timestamp": [T0 + timedelta(hours=h) for h in (1, 2, 3)],
        }
    )
    got = aggregate_events(events, snapshots, event_groups={}, half_lives={}, key_group="other")
    assert got.features["n_page_view"].tolist() == [3]
    assert got.features["velocity_other"].tolist() == [3 / 7]
    assert got.features["n_other_7d"].tolist() == [3]


def test_csv_path_equals_dataframe(tmp_path):
    events, snapshots = random_log(11)
    snapshots = snapshots.assign(lead_id=[f"00{i}" for i in range(len(snapshots))])
    events = events.assign(
        lead_id=events["lead_id"]
        .map(dict(zip(random_log(11)[1]["lead_id"], snapshots["lead_id"], strict=True)))
        .fillna("ghost")
    )
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    kwargs = {
        "event_groups": GROUPS,
        "half_lives": HALF_LIVES,
        "extra_half_life_grid": {"product": (3, 30)},
    }
    from_frame = aggregate_events(events, snapshots, **kwargs)
    from_csv = aggregate_events(path, snapshots, **kwargs)
    pd.testing.assert_frame_equal(from_csv.features, from_frame.features)
    assert from_csv.diagnostics == from_frame.diagnostics
    assert from_csv.diagnostics["events_used"] > 0  # "001" kept its leading zeros


def test_parquet_path_matches_reference(tmp_path):
    events, snapshots = random_log(12)
    typed = events.assign(timestamp=pd.to_datetime(events["timestamp"], errors="coerce"))
    path = tmp_path / "events.parquet"
    typed.to_parquet(path, index=False)
    got = aggregate_events(str(path), snapshots, event_groups=GROUPS, half_lives=HALF_LIVES)
    want, diag = reference(
        typed,
        snapshots,
        event_groups=GROUPS,
        half_lives=HALF_LIVES,
        windows=(7, 30, 90),
        key_group="product",
    )
    assert_features_equal(got.features, want)
    assert got.diagnostics == diag


def test_inputs_are_not_mutated_and_index_is_kept():
    events, snapshots = random_log(3)
    snapshots.index = [f"row{i}" for i in range(len(snapshots))]
    events_copy, snapshots_copy = events.copy(), snapshots.copy()
    got = aggregate_events(events, snapshots, event_groups=GROUPS, half_lives=HALF_LIVES)
    pd.testing.assert_frame_equal(events, events_copy)
    pd.testing.assert_frame_equal(snapshots, snapshots_copy)
    assert got.features.index.equals(snapshots.index)


def test_extra_grid_column_equals_main_decay_at_that_half_life():
    events, snapshots = random_log(4)
    grid = aggregate_events(
        events,
        snapshots,
        event_groups=GROUPS,
        half_lives={"product": 10.0},
        extra_half_life_grid={"product": (2.5, 21)},
    ).features
    single = aggregate_events(
        events, snapshots, event_groups=GROUPS, half_lives={"product": 21.0}
    ).features
    np.testing.assert_allclose(grid["decayed_product__hl21"], single["decayed_product"])
    assert (grid["decayed_product__hl2.5"] <= grid["decayed_product__hl21"]).all()


def test_decayed_counts_as_of_matches_snapshot_at_as_of_and_fades():
    events, snapshots = random_log(6)
    leads = snapshots[["lead_id", "created_at"]]
    as_of = datetime(2024, 9, 1)
    got = decayed_counts_as_of(
        events, leads, as_of=as_of, event_groups=GROUPS, half_lives=HALF_LIVES
    )
    want, diag = reference(
        events,
        leads.assign(snapshot_at=as_of),
        event_groups=GROUPS,
        half_lives=HALF_LIVES,
        windows=(),
        key_group="product",
    )
    cols = ["lead_id", *[f"decayed_{g}" for g in sorted(HALF_LIVES)]]
    assert list(got.features.columns) == cols
    assert_features_equal(got.features, want[cols])
    assert got.diagnostics == diag
    later = decayed_counts_as_of(
        events, leads, as_of=as_of + timedelta(days=30), event_groups=GROUPS, half_lives=HALF_LIVES
    ).features
    # no events after the last as-of date: each group loses exactly 0.5 ** (30 / h)
    for g, h in HALF_LIVES.items():
        np.testing.assert_allclose(
            later[f"decayed_{g}"], got.features[f"decayed_{g}"] * 0.5 ** (30 / h)
        )


def test_one_event_one_half_life_ago_counts_half():
    events = pd.DataFrame(
        {"lead_id": ["a"], "event": ["webinar"], "timestamp": ["2024-05-01T06:00:00"]}
    )
    leads = pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-04-01"]})
    got = decayed_counts_as_of(
        events,
        leads,
        as_of="2024-05-31T06:00:00Z",
        event_groups=GROUPS,
        half_lives={"non_product": 30},
    )
    assert got.features["decayed_non_product"].tolist() == [pytest.approx(0.5)]
    with pytest.raises(UserError, match=r"as_of: must be a date-time, got 'tomorrow-ish'"):
        decayed_counts_as_of(
            events, leads, as_of="tomorrow-ish", event_groups=GROUPS, half_lives={}
        )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3), st.sampled_from(EVENT_NAMES), st.integers(-40 * 86400, 200 * 86400)
        ),
        max_size=60,
    ),
    st.lists(st.integers(1, 150 * 86400), min_size=4, max_size=4),
)
def test_invariants(rows, horizons):
    snapshots = pd.DataFrame(
        {
            "lead_id": ["a", "b", "c", "d"],
            "created_at": [T0] * 4,
            "snapshot_at": [T0 + timedelta(seconds=s) for s in horizons],
        }
    )
    events = pd.DataFrame(
        {
            "lead_id": pd.Series(["abcd"[i] for i, _, _ in rows], dtype=object),
            "event": pd.Series([e for _, e, _ in rows], dtype=object),
            "timestamp": pd.Series(
                [T0 + timedelta(seconds=s) for _, _, s in rows], dtype="datetime64[us]"
            ),
        }
    )
    got = aggregate_events(events, snapshots, event_groups=GROUPS, half_lives=HALF_LIVES)
    f = got.features
    numeric = f.drop(columns="lead_id")
    assert (numeric.fillna(0) >= 0).all().all()
    for g in ("product", "non_product", "trivial", "other"):
        assert (f[f"n_{g}_7d"] <= f[f"n_{g}_30d"]).all()
        assert (f[f"n_{g}_30d"] <= f[f"n_{g}_90d"]).all()
        members = [slugify(e) for e in EVENT_NAMES if GROUPS.get(e, "other") == g]
        # an event column exists once the event is mapped or seen before a snapshot
        total = f[[f"n_{m}" for m in members if f"n_{m}" in f]].sum(axis=1)
        assert (f[f"decayed_{g}"] <= total).all()
        assert (f[f"n_{g}_90d"] <= total).all()
    per_event = [c for c in f if re.fullmatch(r"n_[a-z_]+", c)]  # window columns hold digits
    assert (f["days_active"] <= f[per_event].sum(axis=1)).all()
    d = got.diagnostics
    assert d["events_total"] == len(rows) == sum(v for k, v in d.items() if k != "events_total")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"half_lives": {"produkt": 3}}, r"half_lives: unknown group\(s\) \['produkt'\]"),
        ({"half_lives": {"product": -1}}, r"half_lives\['product'\].*positive.*-1"),
        ({"windows": (7, 0)}, r"windows: each must be a positive whole number.*0"),
        ({"windows": (7, 7)}, r"windows: must not repeat"),
        ({"key_group": "sales"}, r"key_group: must be one of .*'sales'"),
        ({"extra_half_life_grid": {"nope": (1,)}}, r"extra_half_life_grid: unknown group"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    events, snapshots = random_log(0, n_events=10)
    options = {"event_groups": GROUPS, "half_lives": HALF_LIVES, **kwargs}
    with pytest.raises(UserError, match=match):
        aggregate_events(events, snapshots, **options)


def test_bad_inputs_are_named(tmp_path):
    events, snapshots = random_log(0, n_events=10)
    kw = {"event_groups": GROUPS, "half_lives": HALF_LIVES}
    with pytest.raises(UserError, match=r"events: missing column\(s\) \['timestamp'\]"):
        aggregate_events(events.drop(columns="timestamp"), snapshots, **kw)
    with pytest.raises(UserError, match=r"snapshots: column 'lead_id' must be unique.*L000"):
        aggregate_events(events, pd.concat([snapshots, snapshots.iloc[:1]]), **kw)
    swapped = snapshots.assign(
        created_at=snapshots["snapshot_at"], snapshot_at=snapshots["created_at"]
    )
    with pytest.raises(UserError, match=r"'snapshot_at' must not be before 'created_at'"):
        aggregate_events(events, swapped, **kw)
    with pytest.raises(UserError, match=r"'created_at' must be a parseable date-time"):
        aggregate_events(events, snapshots.assign(created_at="soon"), **kw)
    with pytest.raises(UserError, match=r"'timestamp' must hold date-times.*BIGINT"):
        aggregate_events(events.assign(timestamp=1), snapshots, **kw)
    with pytest.raises(UserError, match=r"events: file not found"):
        aggregate_events(tmp_path / "missing.csv", snapshots, **kw)
    with pytest.raises(UserError, match=r"feature names collide.*n_product_7d"):
        aggregate_events(
            events, snapshots, event_groups={**GROUPS, "product 7d": "other"}, half_lives=HALF_LIVES
        )


@pytest.mark.parametrize("span_days", [200, 2000])
def test_active_days_across_bitmap_words_and_the_distinct_fallback(span_days):
    """Active days are a bitmap of 62-day words (days 61/62 and 123/124 sit on either side of
    a word boundary); a span longer than the bitmap holds counts distinct days instead: the
    same numbers, checked against the slow reference."""
    from pipeline.inputs.event_sql import DAYS_PER_WORD, MAX_DAY_WORDS

    assert (span_days + 1 > DAYS_PER_WORD * MAX_DAY_WORDS) == (span_days == 2000)
    created = datetime(2020, 1, 1, 23, 0)
    day0 = datetime(2020, 1, 1)
    offsets = [0, 0, 1, 61, 61, 62, 123, 124, 185, 199, 199]
    stamps = [day0 + timedelta(days=d, hours=23, minutes=30) for d in offsets]
    stamps += [day0 + timedelta(days=124, hours=1), created - timedelta(minutes=1)]
    events = pd.DataFrame({"lead_id": "a", "event": "trial_signup",
                           "timestamp": [s.isoformat(sep=" ") for s in stamps]})
    events = pd.concat([events, pd.DataFrame({"lead_id": ["b"] * 3, "event": "webinar",
                                              "timestamp": ["2020-03-01", "2020-03-01 05:00",
                                                            "2020-04-01"]})])
    busy = [(day0 + timedelta(days=d + 1)).isoformat() for d in range(199)]  # > 127 days
    events = pd.concat([events, pd.DataFrame({"lead_id": "d", "event": "login",
                                              "timestamp": busy})], ignore_index=True)
    snapshots = pd.DataFrame({"lead_id": ["a", "b", "c", "d"], "created_at": [created] * 4,
                              "snapshot_at": [created + timedelta(days=span_days)] * 4})
    got = aggregate_events(events, snapshots, event_groups=GROUPS, half_lives=HALF_LIVES)
    want, _ = reference(events, snapshots, event_groups=GROUPS, half_lives=HALF_LIVES,
                        windows=(7, 30, 90), key_group="product")
    assert got.features["days_active"].tolist() == [8, 2, 0, 199]
    assert_features_equal(got.features, want)
