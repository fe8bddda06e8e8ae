"""validate_leads: every column problem is reported with the file, column, rows and values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.errors import UserError
from pipeline.inputs.clean_columns import mostly_numeric
from pipeline.inputs.event_log import event_warnings
from pipeline.inputs.validate import expected_columns_diff, validate_leads

SRC = "leads.csv"


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "data:\n  leads: leads.csv\n  id_column: id\n  created_at_column: created\n"
        "  missing_values: ['', 'Select']\n"
        "label:\n  column: outcome\n  positive: [won]\n  negative: [lost]\n"
        "columns:\n  fit: [size, region]\n  pain: [visits]\n", encoding="utf-8")
    return load_config(path)


def _raw(n: int = 40, seed: int = 0, **columns) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = {
        "id": [f"L{i:03d}" for i in range(n)],
        "created": [f"2025-01-{1 + i % 28:02d}T10:00:00" for i in range(n)],
        "size": rng.choice(["1-10", "11-50", "51-200"], n).tolist(),
        "region": rng.choice(["north", "south"], n).tolist(),
        "visits": [str(v) for v in rng.integers(0, 20, n)],
        "outcome": ["won" if i % 3 == 0 else "lost" for i in range(n)],
    }
    base.update(columns)
    return pd.DataFrame(base, dtype=object)


def test_clean_table_is_typed(config):
    raw = _raw()
    raw.loc[3, "region"] = "Select"
    out = validate_leads(raw, config, source=SRC)
    frame = out.frame
    assert frame["converted"].tolist() == [1 if i % 3 == 0 else 0 for i in range(40)]
    assert frame["visits"].dtype == float and out.numeric_columns == ["visits"]
    assert frame.loc[3, "region"] is None
    assert str(frame["created_at"].dtype) == "datetime64[ns]"
    assert out.fit_columns == ["size", "region"] and out.pain_columns == ["visits"]
    assert out.warnings == [] and raw.loc[3, "region"] == "Select"  # argument not mutated


def test_label_column_missing(config):
    with pytest.raises(UserError, match=r"leads\.csv: label column 'outcome' not found") as info:
        validate_leads(_raw().drop(columns="outcome"), config, source=SRC)
    assert "- missing: 'outcome'" in info.value.message


def test_unexpected_label_values_are_listed_with_counts(config):
    labels = ["won", "lost", "Won", "open", "open", None] * 5
    with pytest.raises(UserError, match=r"label column 'outcome' has values that are neither won "
                       r"\['won'\] nor lost \['lost'\]: 'open': 10, 'Won': 5, '\(blank\)': 5"):
        validate_leads(_raw(30, outcome=labels), config, source=SRC)


@pytest.mark.parametrize(("value", "word"), [("won", "won"), ("lost", "lost")])
def test_single_class(config, value, word):
    with pytest.raises(UserError, match=rf"only one class present \(every lead is {word}\)"):
        validate_leads(_raw(outcome=[value] * 40), config, source=SRC)


def test_id_column_missing(config):
    with pytest.raises(UserError, match=r"columns 'id' not found\n  - missing: 'id'"):
        validate_leads(_raw().drop(columns="id"), config, source=SRC)


def test_blank_ids_name_rows(config):
    ids = [f"L{i}" for i in range(40)]
    ids[4], ids[9] = "", "  "
    with pytest.raises(UserError, match=r"id column 'id' is blank on rows 6, 11"):
        validate_leads(_raw(id=ids), config, source=SRC)


def test_duplicate_ids_list_the_first(config):
    ids = [f"L{i}" for i in range(40)]
    ids[10], ids[20], ids[30] = "L1", "L2", "L1"
    with pytest.raises(UserError, match=r"has duplicates: 'L1', 'L2'"):
        validate_leads(_raw(id=ids), config, source=SRC)


def test_missing_fit_column_shows_a_diff(config):
    raw = _raw().rename(columns={"region": "Region "})
    with pytest.raises(UserError) as info:
        validate_leads(raw, config, source=SRC)
    message = info.value.message
    assert "leads.csv: columns 'region' not found" in message
    assert "  - missing: 'region' (did you mean 'Region '?)" in message
    assert "  + found, not expected: 'Region '" in message
    assert "columns.fit" in info.value.hint


def test_expected_columns_diff_is_a_diff():
    assert expected_columns_diff(["a", "b"], ["a", "c"]) == (
        "  - missing: 'b'\n  + found, not expected: 'c'")
    assert expected_columns_diff(["visits"], ["Visits", "vists", "x"], {"x"}) == (
        "  - missing: 'visits' (did you mean 'Visits'?)\n  + found, not expected: 'Visits'\n"
        "  + found, not expected: 'vists'")


@pytest.mark.parametrize(("values", "reason"), [([None] * 40, "all missing"),
                                                (["Select"] * 40, "all missing"),
                                                (["north"] * 40, "constant")])
def test_all_missing_or_constant_columns_warn_and_drop(config, values, reason):
    out = validate_leads(_raw(region=values), config, source=SRC)
    assert "region" not in out.frame.columns and out.fit_columns == ["size"]
    assert out.dropped == {"region": reason}
    assert out.warnings == [f"leads.csv: column 'region' is {reason}: dropped "
                            "(it cannot earn points)"]


@pytest.mark.parametrize("dtype", [object, "str"])  # "str": Arrow text, cleaned by Arrow
@pytest.mark.parametrize(("column", "values", "reason"), [
    ("region", ["north"] * 40, "constant"),
    ("region", ["north"] * 39 + [""], None),  # missing counts as a second value
    ("region", [" north", "north "] * 20, "constant"),
    ("region", ["", "Select"] * 20, "all missing"),
    ("visits", ["3"] * 40, "constant"),
    ("visits", ["3.0", " 3"] * 20, "constant"),
    ("visits", ["3"] * 39 + [""], None),
    ("visits", [""] * 40, "all missing"),
])
def test_constant_and_all_missing_alike_for_arrow_and_object_text(config, dtype, column, values,
                                                                   reason):
    out = validate_leads(_raw(**{column: values}).astype(dtype), config, source=SRC)
    assert out.dropped == ({column: reason} if reason else {})
    assert (column in out.frame.columns) == (reason is None)


def test_duplicate_ids_in_arrow_text(config):
    ids = [f"L{i}" for i in range(40)]
    ids[10], ids[20] = "L1", " L1"
    with pytest.raises(UserError, match=r"has duplicates: 'L1'\n"):
        validate_leads(_raw(id=ids).astype("str"), config, source=SRC)
    assert len(validate_leads(_raw().astype("str"), config, source=SRC).frame) == 40


def test_numbers_with_text_in_them(config):
    visits = [str(i % 7) for i in range(40)]
    visits[5], visits[17] = "12 visits", "n/a"
    with pytest.raises(UserError, match=r"column 'visits' is numeric but rows 7, 19 hold text: "
                       r"'12 visits', 'n/a'") as info:
        validate_leads(_raw(visits=visits), config, source=SRC)
    assert "missing_values" in info.value.hint


def test_mostly_numeric_threshold():
    assert mostly_numeric(pd.Series(["1"] * 19 + ["x"], dtype=object))
    assert not mostly_numeric(pd.Series(["1"] * 5 + ["x"] * 5, dtype=object))
    assert not mostly_numeric(pd.Series(["1"] * 10, dtype=object))


def test_negative_counts(config):
    visits = [str(i % 5) for i in range(40)]
    visits[2] = "-3"
    with pytest.raises(UserError, match=r"column 'visits' is a behaviour count but has negative "
                       r"values on rows 4"):
        validate_leads(_raw(visits=visits), config, source=SRC)


def test_unparseable_timestamps(config):
    created = ["2025-01-02"] * 40
    created[7] = "yesterday"
    with pytest.raises(UserError, match=r"column 'created' has unparseable timestamps on rows 9: "
                       r"'yesterday'"):
        validate_leads(_raw(created=created), config, source=SRC)


def test_future_timestamps(config):
    created = ["2025-01-02"] * 40
    created[0] = (pd.Timestamp.now() + pd.Timedelta(days=30)).isoformat()
    with pytest.raises(UserError, match=r"column 'created' has timestamps in the future on rows 2"):
        validate_leads(_raw(created=created), config, source=SRC)


def test_scoring_does_not_need_the_label(config):
    out = validate_leads(_raw().drop(columns="outcome"), config, source=SRC, training=False)
    assert "converted" not in out.frame.columns


def test_event_warnings_lines():
    diag = {"events_total": 200, "events_used": 150, "events_after_snapshot": 20,
            "events_before_creation": 10, "events_unknown_lead": 15, "unparseable_timestamps": 5}
    assert event_warnings(diag, "events.csv") == [
        "events.csv: 5 events with an unparseable timestamp were ignored (2.5% of 200)",
        "events.csv: 15 events for leads that are not in the leads file were ignored (7.5% of 200)",
        "events.csv: 10 events dated before their lead was created were ignored (5.0% of 200)",
    ]
    assert event_warnings({"events_total": 3, "events_used": 3}, "e.csv") == []


def test_py_whitespace_is_every_character_python_strips():
    import sys

    from pipeline.inputs.clean_columns import PY_WHITESPACE

    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert every == PY_WHITESPACE
