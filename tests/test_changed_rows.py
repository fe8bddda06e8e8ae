"""Incremental scoring's picks in Arrow (:mod:`pipeline.inputs.changed_rows`) against naive
pandas references: Parquet files in many row groups (the statistics skip some), timestamps
in several units and time zones, ids with stray whitespace, nulls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.inputs.changed_rows import event_ids_since, parquet_rows
from pipeline.inputs.event_features import creation_times

BASE = pd.Timestamp("2025-01-01")


def _stamps(minutes: list[int | None], unit: str, tz: str | None) -> pa.Array:
    """Times ``BASE + minutes`` (naive = UTC); with ``tz``, the same instants in that zone."""
    ns = [None if m is None else (BASE + pd.Timedelta(minutes=m)).value for m in minutes]
    return pa.array(ns, pa.int64()).cast(pa.timestamp("ns", tz=tz)).cast(pa.timestamp(unit, tz=tz))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(minutes=st.lists(st.one_of(st.none(), st.integers(0, 10_000)), min_size=1, max_size=60),
       since=st.integers(-10, 10_010), unit=st.sampled_from(["s", "ms", "us", "ns"]),
       group=st.integers(1, 9))
def test_event_ids_since_equals_a_pandas_filter(tmp_path, minutes, since, unit, group):
    ids = [f"L{i % 7}" if i % 5 else f" L{i % 7} " for i in range(len(minutes))]
    ids[0] = None
    path = tmp_path / "events.parquet"
    pq.write_table(pa.table({"lead_id": pa.array(ids, pa.string()), "event": ["x"] * len(ids),
                             "timestamp": _stamps(minutes, unit, None)}), path,
                   row_group_size=group)
    at = BASE + pd.Timedelta(minutes=since)
    frame = pd.DataFrame({"id": ids, "t": [None if m is None else BASE + pd.Timedelta(minutes=m)
                                           for m in minutes]})
    frame["t"] = pd.to_datetime(frame["t"])
    expected = set(frame.loc[frame["t"] >= at, "id"].dropna())
    found = event_ids_since(path, at)
    assert found is not None and set(x for x in found if x is not None) == expected


def test_event_ids_since_leaves_other_logs_to_duckdb(tmp_path):
    csv = tmp_path / "events.csv"
    csv.write_text("lead_id,event,timestamp\nL1,x,2025-01-01\n")
    assert event_ids_since(csv, BASE) is None
    aware = tmp_path / "aware.parquet"
    pq.write_table(pa.table({"lead_id": ["L1"], "event": ["x"],
                             "timestamp": _stamps([1], "us", "Europe/Paris")}), aware)
    assert event_ids_since(aware, BASE) is None  # DuckDB casts zoned times its own way
    numeric = tmp_path / "numeric.parquet"
    pq.write_table(pa.table({"lead_id": [1], "event": ["x"],
                             "timestamp": _stamps([1], "us", None)}), numeric)
    assert event_ids_since(numeric, BASE) is None


@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"])
@pytest.mark.parametrize("unit", ["s", "us", "ns"])
def test_parquet_rows_pick_the_same_leads_as_pandas(tmp_path, tz, unit):
    rng = np.random.default_rng(3)
    n = 400
    minutes = [None if i % 37 == 0 else int(m) for i, m in
               enumerate(np.sort(rng.integers(0, 100_000, n)))]  # appended as they came
    ids = [f"L{i}" if i % 11 else f"  L{i}\t" for i in range(n)]
    ids[5] = None
    ids[9] = "L8"  # a repeated id: its first row wins for the snapshot
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.table({"lead_id": ids, "x": range(n),
                             "created_at": _stamps(minutes, unit, tz)}), path, row_group_size=64)
    whole = pq.read_table(path).to_pandas()
    reference = creation_times(whole["lead_id"], whole["created_at"], [], first_per_id=False)
    for since in (BASE, BASE + pd.Timedelta(minutes=50_000), BASE + pd.Timedelta(days=400)):
        raw = parquet_rows(path, "lead_id", "created_at", since=since)
        got = creation_times(raw["lead_id"], raw["created_at"], [], first_per_id=False)
        want = reference[reference["created_at"] >= since]
        assert got["lead_id"].tolist() == want["lead_id"].tolist()
        assert (got["created_at"].to_numpy() == want["created_at"].to_numpy()).all()
    chosen = {"L8", "L11", "L300", "nobody"}
    raw = parquet_rows(path, "lead_id", "created_at", only_ids=chosen)
    got = creation_times(raw["lead_id"], raw["created_at"], [])
    first = creation_times(whole["lead_id"], whole["created_at"], [])
    pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                  first[first["lead_id"].isin(chosen)].reset_index(drop=True))
    assert parquet_rows(path, "lead_id", "nothere") is None


def test_mixed_zones_are_looked_for_in_text_times_only(tmp_path):
    """The event-log check reads each text time for an offset; a Parquet log of typed
    times (naive or zoned) has no text to mix and is not read for it."""
    from pipeline.inputs.event_log import check_event_log

    text = tmp_path / "text.parquet"
    pq.write_table(pa.table({"lead_id": ["L1", "L2"], "event": ["x", "x"],
                             "timestamp": ["2025-01-01T10:00:00+02:00", "2025-01-02T10:00:00"]}),
                   text)
    warned = check_event_log(text, {"x": "g"}, default_as_of=False).warnings
    assert any("time zones are mixed: 1 timestamps carry a UTC offset and 1 do not" in w
               for w in warned)
    for tz in (None, "Europe/Paris"):
        typed = tmp_path / f"typed_{tz is None}.parquet"
        pq.write_table(pa.table({"lead_id": ["L1", "L2"], "event": ["x", "x"],
                                 "timestamp": _stamps([1, 2], "us", tz)}), typed)
        assert check_event_log(typed, {"x": "g"}, default_as_of=False).warnings == []
