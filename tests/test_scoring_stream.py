"""The streaming scorer's fast paths against their slow, obvious references.

- duplicate ids: :class:`SeenIds` (hashes + exact text checks) against a Python set, also
  with a hash that collides all the time;
- reason codes as pieces (Parquet) read the same as the text (CSV, pyfunc) and as a naive
  reference;
- Arrow's streamed CSV reader gives the careful reader's frames; a malformed record sends
  ``score_file`` back to the careful reader with the same accounting;
- ``only_ids`` (``--since``) picks rows in Arrow with the right row numbers and counts;
- a registered version read from the local store without MLflow is MLflow's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import UserError
from pipeline.model.rules import FactorRules, PointsRules
from pipeline.scoring import ids as ids_module
from pipeline.scoring.batch import score_file
from pipeline.scoring.frame import reason_codes, reason_pieces, score_frame
from pipeline.scoring.ids import SeenIds
from pipeline.scoring.input_batches import iter_batches
from pipeline.scoring.output import joined_pieces, read_scored

ID_TEXT = st.text(alphabet=st.sampled_from(list("ab'\\ é\t1")), max_size=4)


def _first_seen_reference(batches: list[list[str]]) -> list[list[bool]]:
    seen: set[str] = set()
    out = []
    for batch in batches:
        flags = []
        for value in batch:
            flags.append(value not in seen)
            seen.add(value)
        out.append(flags)
    return out


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(ID_TEXT, max_size=12), max_size=6), st.booleans())
def test_seen_ids_match_a_python_set(batches, colliding):
    original = ids_module.id_hashes
    if colliding:  # every id of a length hashes alike: exactness rests on the text checks
        ids_module.id_hashes = lambda a: pc.utf8_length(a).to_numpy(
            zero_copy_only=False).astype(np.uint64)
    try:
        seen = SeenIds()
        got = [seen.first_seen(pa.array(b, type=pa.string())).tolist() for b in batches]
    finally:
        ids_module.id_hashes = original
    assert got == _first_seen_reference(batches)


def test_id_hashes_differ_for_different_ids_of_every_length():
    ids = pa.array(["a", "b", "ab", "ba", "L000000001", "L000000002", "é", ""])
    hashes = ids_module.id_hashes(ids)
    assert len(set(hashes.tolist())) == len(ids)
    assert ids_module.id_hashes(pa.array(["ab", "ab"])).tolist()[0] == hashes[2]


def _table() -> tuple[PointsRules, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 500
    rules = PointsRules(factors=[
        FactorRules("src", "FIT", "categorical", levels={"web": 7, "ads": -4, "x; y = z: +1": 2},
                    missing_points=-2, unseen_points=1),
        FactorRules("size", "FIT", "categorical", levels={"s": -3, "m": 0, "l": 9},
                    missing_points=0, unseen_points=0),
        FactorRules("visits", "PAIN", "numeric", edges=[0.5, 3.0], bin_points=[-5, 2, 8],
                    missing_points=-1),
        FactorRules("time", "PAIN", "numeric", edges=[10.0], bin_points=[4, -6],
                    missing_points=3),
    ], missing_values=["Select"])
    frame = pd.DataFrame({
        "src": rng.choice(["web", "ads", "x; y = z: +1", "tv", None, "Select"], n),
        "size": pd.Categorical(rng.choice(["s", "m", "l", None], n)),
        "visits": rng.integers(0, 6, n),
        "time": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2, 6, n)),
    })
    return rules, frame


def test_reason_pieces_join_to_the_reason_text():
    rules, frame = _table()
    pieces = reason_pieces(rules, frame)
    assert pa.types.is_dictionary(pieces.type.value_type)
    assert len(pieces.values.dictionary) <= sum(
        len(f.levels or f.bin_points) + 2 for f in rules.factors)  # once per (factor, slot)
    text = score_frame(rules, frame, reasons=True)["reason_codes"].tolist()
    assert joined_pieces(pieces).to_pylist() == text == reason_codes(rules, frame)


def _csv(tmp_path, rows: list[str]):
    path = tmp_path / "leads.csv"
    path.write_text("\n".join(["lead_id,src,size,visits,time", *rows]) + "\n",
                    encoding="utf-8")
    return path


TRICKY = ['L1,web,s,1,2.5', '" L2 ","a, ""quoted"" src",m,,', '', 'L3,"multi\nline",l,4,11',
          'L4,Select,,2,1e1', 'L1,ads,s,0,3']


def test_arrow_csv_batches_equal_the_careful_readers(tmp_path):
    path = _csv(tmp_path, TRICKY)
    fast = list(iter_batches(path, batch_size=2, id_column="lead_id", fast=True))
    careful = list(iter_batches(path, batch_size=2, id_column="lead_id"))
    assert [b.rows.tolist() for b in fast] == [b.rows.tolist() for b in careful]
    for a, b in zip(fast, careful, strict=True):
        assert a.frame.astype(object).values.tolist() == b.frame.astype(object).values.tolist()


def test_a_file_lacking_a_factor_column_is_refused_naming_the_file(tmp_path):
    """The sweep: ``score`` said "the input lacks columns ..." without saying which input."""
    rules, _ = _table()
    path = tmp_path / "new_leads.csv"
    pd.read_csv(_csv(tmp_path, TRICKY)).drop(columns="visits").to_csv(path, index=False)
    with pytest.raises(UserError, match=r"new_leads.csv: the input lacks columns the points "
                                        r"table needs: \['visits'\]"):
        score_file(rules, path, tmp_path / "out.csv", rejects_path=None, id_column="lead_id")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_malformed_record_restarts_with_the_careful_reader(tmp_path, suffix):
    rules, _ = _table()
    clean = _csv(tmp_path, TRICKY)
    broken = tmp_path / "broken.csv"
    broken.write_text(clean.read_text() + "L5,web,s,1,2,extra\nL6,ads,m,2,3\n")
    out = tmp_path / f"out.{suffix}"
    summary = score_file(rules, broken, out, rejects_path=tmp_path / "rej.csv",
                         id_column="lead_id")
    rejects = pd.read_csv(tmp_path / "rej.csv")
    assert summary.rows == 7 == summary.scored + summary.rejected
    assert rejects["row"].tolist() == [5, 6]  # the repeated L1, the malformed record
    assert rejects["reason"].str.startswith(("duplicate id: 'L1'", "malformed row")).all()
    scored = read_scored(out)
    assert scored["lead_id"].tolist() == ["L1", "L2", "L3", "L4", "L6"]
    want = score_frame(rules, pd.DataFrame({
        "src": ["web", "a, \"quoted\" src", "multi\nline", None, "ads"],
        "size": ["s", "m", "l", None, "m"], "visits": [1, np.nan, 4, 2, 2],
        "time": [2.5, np.nan, 11, 10, 3]}), reasons=True)
    assert scored["points"].tolist() == want["points"].tolist()
    assert scored["reason_codes"].tolist() == want["reason_codes"].tolist()


def test_only_ids_picks_rows_in_arrow_with_their_row_numbers(tmp_path):
    rules, frame = _table()
    frame.insert(0, "lead_id", [f"L{i}" for i in range(len(frame))])
    path = tmp_path / "leads.parquet"
    frame.to_parquet(path)
    wanted = {"L3", "L77", "L499", "nobody"}
    summary = score_file(rules, path, tmp_path / "out.parquet",
                         rejects_path=tmp_path / "rej.csv", id_column="lead_id",
                         only_ids=wanted, batch_size=64)
    scored = read_scored(tmp_path / "out.parquet")
    assert scored["lead_id"].tolist() == ["L3", "L77", "L499"]
    assert summary.skipped == len(frame) - 3 and summary.rows == 3
    full = score_frame(rules, frame.iloc[[3, 77, 499]], reasons=True)
    assert scored["points"].tolist() == full["points"].tolist()
    assert scored["reason_codes"].tolist() == full["reason_codes"].tolist()


@pytest.mark.parametrize("batch_size", [2, 4, 1000])
def test_only_ids_reads_row_groups_as_a_whole_run_then_a_pandas_pick(tmp_path, batch_size):
    """Row groups without a chosen id are skipped (the first ones, middle ones, the last
    ones); ids with stray whitespace, a repeated chosen id (a reject with its row number)
    and missing ids: the output and the rejects are the whole file's, picked by id."""
    import pyarrow.parquet as pq

    rules, frame = _table()
    ids = [f"L{i}" for i in range(len(frame))]
    ids[130], ids[131], ids[260] = " L77\t", None, "L77"  # L77 three times in all
    frame.insert(0, "lead_id", ids)
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=40)
    wanted = {"L77", "L95", "L96", "L250", "L255", "nobody"}  # row groups 1, 2, 3 and 6 of 13
    out, rej = tmp_path / "out.parquet", tmp_path / "rej.csv"
    summary = score_file(rules, path, out, rejects_path=rej, id_column="lead_id",
                         only_ids=wanted, batch_size=batch_size)
    score_file(rules, path, tmp_path / "all.parquet", rejects_path=tmp_path / "all_rej.csv",
               id_column="lead_id", batch_size=batch_size)
    whole = read_scored(tmp_path / "all.parquet")
    picked = whole[whole["lead_id"].str.strip().isin(wanted)].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_scored(out), picked)
    rejects = pd.read_csv(rej)
    all_rejects = pd.read_csv(tmp_path / "all_rej.csv")
    repeated = all_rejects[all_rejects["reason"].str.startswith("duplicate id: 'L77'")]
    assert rejects["row"].tolist() == repeated["row"].tolist() == [131, 261]
    assert summary.scored == 5 and summary.rejected == 2
    assert summary.rows + summary.skipped == len(frame)


def test_local_store_reads_the_version_mlflow_resolves(tmp_path):
    from pipeline.inputs.features import FeatureSettings
    from pipeline.registry import store as registry
    from pipeline.registry.local import local_version

    rules, frame = _table()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry.connect(uri, experiment="local-read", artifact_location=str(tmp_path / "art"))
    artifacts = tmp_path / "run"
    artifacts.mkdir()
    (artifacts / registry.RULES_FILE).write_text(rules.to_json())
    (artifacts / "config.json").write_text('{"name": "x"}')
    ref = registry.log_training(model_name="local-read", params={}, metrics={}, tags={},
                                artifact_dir=artifacts, rules=rules,
                                feature_settings=FeatureSettings(id_column="lead_id"),
                                input_example=frame.head(3))
    for text in ("local-read/1", "local-read@challenger"):
        found = local_version(uri, text)
        assert found is not None and found.ref == registry.resolve(text) == ref
        assert found.rules() == registry.load_rules(ref)
        assert found.run_json("config.json") == {"name": "x"}
    assert local_version(uri, "local-read/2") is None  # MLflow then says what exists
    assert local_version(uri, "local-read@champion") is None
    assert local_version("http://localhost:5000", "local-read/1") is None
