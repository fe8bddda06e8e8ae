"""Bad input through the real command line: a message naming the file and the row, column or
key, what is wrong and what to do; exit code 2; no traceback; nothing written half-way.

``pipeline.cli.main`` is called in-process (it is the console script's entry point and holds
the error handler); one small model is trained once per module in a subprocess for the
``score`` cases.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import run_cli

from pipeline.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
N_LEADS = 1200




@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def leads(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first demo leads plus a numeric behaviour column ``visits`` (clean)."""
    frame = pd.read_csv(demo_dir / "leads.csv", dtype=str, keep_default_na=False).head(N_LEADS)
    frame["visits"] = [str(i % 9) for i in range(len(frame))]
    path = tmp_path_factory.mktemp("leads") / "leads.csv"
    frame.to_csv(path, index=False)
    return path


def write_config(path: Path, leads: Path, store: Path, **sections: dict) -> Path:
    settings = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    settings["root"] = str(REPO)
    settings["data"]["leads"] = str(leads)
    settings["data"]["events"] = None
    settings["events"] = {"groups": {}}
    settings["columns"]["pain"] = ["visits"]
    settings["registry"] = {"tracking_uri": f"sqlite:///{store / 'mlflow.db'}",
                            "artifact_location": str(store / "artifacts")}
    for key, value in sections.items():
        settings.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def model_config(leads: Path, store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config whose model (lead-scoring@champion) is trained once, in a subprocess."""
    path = write_config(tmp_path_factory.mktemp("cfg") / "model.yaml", leads, store)
    done = subprocess.run([str(REPO / ".venv" / "bin" / "lead-scoring"), "train", "-c", str(path),
                           "--no-score", "--out", str(store / "out")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return path


@pytest.fixture
def config_for(leads: Path, store: Path, tmp_path: Path):
    def make(leads_file: Path | None = None, **sections: dict) -> Path:
        return write_config(tmp_path / "cfg.yaml", leads_file or leads, store, **sections)

    return make


# --------------------------------------------------------------------------- files

def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def bad_file(kind: str, leads: Path, tmp_path: Path) -> Path:
    """One malformed variant of the clean leads file."""
    lines = _lines(leads)
    header, rows = lines[0], lines[1:]
    out = tmp_path / ("leads.parquet" if kind == "fake_parquet" else f"{kind}.csv")
    if kind == "missing":
        return tmp_path / "nowhere.csv"
    text = {
        "empty": "",
        "header_only": header + "\n",
        "semicolons": "\n".join(r.replace(",", ";") for r in lines) + "\n",
        "ragged": "\n".join([header, *rows[:4], rows[4] + ",x,y", *rows[5:]]) + "\n",
        "fake_parquet": "\n".join(lines) + "\n",
    }.get(kind)
    if kind == "latin1":
        body = "\n".join([header, *rows[:2], rows[2].replace("lost", "perdu\xe9"), *rows[3:]])
        out.write_bytes((body + "\n").encode("latin-1", errors="replace"))
        return out
    out.write_text(text, encoding="utf-8")
    return out


FILE_CASES = {
    "missing": (r"nowhere\.csv: file not found", "check the path"),
    "empty": (r"empty\.csv: file is empty", "expected a header"),
    "header_only": (r"header_only\.csv: has a header but no rows", "one row per lead"),
    "semicolons": (r"semicolons\.csv: the header has one column but contains semicolons: "
                   r"wrong delimiter", "set data.delimiter to auto (or ';')"),
    "latin1": (r"latin1\.csv: not UTF-8 text \(byte 0x[0-9a-f]{2} on line \d+\)",
               "set data.encoding"),
    "ragged": (r"ragged\.csv: malformed CSV: line 6 has 18 fields, expected 16", "as many fields"),
    "fake_parquet": (r"leads\.parquet: not a Parquet file \(it starts like a text file\)",
                     "rename it to .csv"),
}


# by default ';' files are sniffed and non-UTF-8 files read as cp1252
# (tests/test_intake_formats.py); these settings ask for commas and UTF-8 explicitly
FILE_SETTINGS = {"semicolons": {"data": {"delimiter": ","}},
                 "latin1": {"data": {"encoding": "utf-8"}}}


@pytest.mark.parametrize("kind", list(FILE_CASES))
def test_train_refuses_bad_files(kind, leads, config_for, tmp_path, monkeypatch, capsys):
    data = bad_file(kind, leads, tmp_path)
    out = tmp_path / "out"
    code, _, err = run_cli(monkeypatch, capsys, "train", "-c",
                           config_for(**FILE_SETTINGS.get(kind, {})), "--data", data,
                           "--out", out, "--no-score")
    pattern, hint = FILE_CASES[kind]
    assert code == 2
    assert re.search(f"error: .*{pattern}", err), err
    assert "hint: " in err and hint in err
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("kind", [k for k in FILE_CASES if k != "ragged"])
def test_score_refuses_unreadable_files(kind, leads, model_config, config_for, tmp_path,
                                        monkeypatch, capsys):
    data = bad_file(kind, leads, tmp_path)
    output = tmp_path / "scored.csv"
    config = config_for(**FILE_SETTINGS[kind]) if kind in FILE_SETTINGS else model_config
    code, _, err = run_cli(monkeypatch, capsys, "score", "-c", config, "-i", data,
                           "-o", output)
    assert code == 2, err
    pattern = FILE_CASES[kind][0].replace("malformed CSV", "")
    assert re.search(pattern, err), err
    assert not output.exists() and not (tmp_path / "scored_rejects.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_score_sends_ragged_rows_to_the_rejects(leads, model_config, tmp_path, monkeypatch,
                                                capsys):
    data = bad_file("ragged", leads, tmp_path)
    output = tmp_path / "scored.csv"
    code, _, err = run_cli(monkeypatch, capsys, "score", "-c", model_config, "-i", data,
                           "-o", output)
    assert code == 0, err
    scored = pd.read_csv(output, dtype={"lead_id": str})
    rejects = pd.read_csv(tmp_path / "scored_rejects.csv", dtype={"lead_id": str})
    assert list(rejects.columns) == ["row", "lead_id", "reason"]
    assert rejects.to_dict("records") == [{
        "row": 5, "lead_id": "L000005",
        "reason": "malformed row: 18 fields, expected 16 (line 6 of the file)"}]
    assert len(scored) + len(rejects) == N_LEADS
    assert f"{N_LEADS:,} rows -> {N_LEADS - 1:,} scored" in err and "1 rejected" in err


# --------------------------------------------------------------------------- columns

def edited(leads: Path, tmp_path: Path, edit) -> Path:
    frame = pd.read_csv(leads, dtype=str, keep_default_na=False)
    out = tmp_path / "edited.csv"
    edit(frame).to_csv(out, index=False)
    return out


def _set(column, rows, value):
    def edit(frame):
        frame = frame.copy()
        frame.loc[rows, column] = value
        return frame
    return edit


COLUMN_CASES = {
    "label_missing": (lambda f: f.drop(columns="outcome"),
                      r"edited\.csv: label column 'outcome' not found\n  - missing: 'outcome'"),
    "label_values": (_set("outcome", [3, 4, 5], "open"),
                     r"label column 'outcome' has values that are neither won \['won'\] nor "
                     r"lost \['lost'\]: 'open': 3"),
    "one_class": (_set("outcome", slice(None), "lost"),
                  r"only one class present \(every lead is lost\)"),
    "id_missing": (lambda f: f.drop(columns="lead_id"), r"columns 'lead_id' not found"),
    "id_blank": (_set("lead_id", [7], ""), r"id column 'lead_id' is blank on rows 9"),
    "id_duplicated": (_set("lead_id", [7, 8], "L000001"),
                      r"id column 'lead_id' has duplicates: 'L000001'"),
    "fit_missing": (lambda f: f.rename(columns={"industry": "Industry"}),
                    r"columns 'industry' not found\n  - missing: 'industry' \(did you mean "
                    r"'Industry'\?\)\n  \+ found, not expected: 'Industry'\n  hint"),
    "text_in_numbers": (_set("visits", [10], "3 visits"),
                        r"column 'visits' is numeric but rows 12 hold text: '3 visits'"),
    "negative_counts": (_set("visits", [11], "-2"),
                        r"column 'visits' is a behaviour count but has negative values on rows 13"),
    "unparseable_time": (_set("created_at", [2], "31/02/2025 25:00"),
                         r"column 'created_at' has unparseable timestamps on rows 4"),
    "future_time": (_set("created_at", [2], "2999-01-01T00:00:00"),
                    r"column 'created_at' has timestamps in the future on rows 4"),
}


@pytest.mark.parametrize("case", list(COLUMN_CASES))
def test_train_refuses_bad_columns(case, leads, config_for, tmp_path, monkeypatch, capsys):
    edit, pattern = COLUMN_CASES[case]
    data = edited(leads, tmp_path, edit)
    code, _, err = run_cli(monkeypatch, capsys, "train", "-c", config_for(), "--data", data,
                           "--out", tmp_path / "out", "--no-score")
    assert code == 2, err
    assert re.search(pattern, err), err
    assert str(data) in err and "hint: " in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- config

CONFIG_CASES = {
    "unknown_key": ({"columns": {"fitt": ["x"]}}, r"unknown key 'columns\.fitt'"),
    "wrong_type": ({"points": {"pdo": "twenty"}}, r"key 'points\.pdo': .*got 'twenty'"),
    "contradiction": ({"columns": {"exclude": ["industry"]}},
                      r"columns \['industry'\] are both FIT/PAIN and in exclude: pick one"),
    "threshold_range": ({"threshold": {"target_rate": [0.2, 1.4]}},
                        r"target_rate must be \[low, high\] within 0\.\.1"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_is_refused(case, config_for, tmp_path, monkeypatch, capsys):
    sections, pattern = CONFIG_CASES[case]
    path = config_for(**sections)
    code, _, err = run_cli(monkeypatch, capsys, "train", "-c", path, "--no-score",
                           "--out", tmp_path / "out")
    assert code == 2
    assert re.search(pattern, err), err
    assert str(path) in err


def test_yaml_python_object_is_refused(tmp_path, monkeypatch, capsys):
    path = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    path.write_text(f"data:\n  leads: x.csv\nseed: !!python/object/apply:os.system "
                    f"['touch {marker}']\n")
    code, _, err = run_cli(monkeypatch, capsys, "train", "-c", path)
    assert code == 2 and "refused a YAML tag (line 3)" in err and "safe_load" in err
    assert not marker.exists()


# --------------------------------------------------------------------------- registry

def test_unknown_model_name_lists_the_registered_ones(model_config, store, monkeypatch, capsys):
    uri = f"sqlite:///{store / 'mlflow.db'}"
    code, _, err = run_cli(monkeypatch, capsys, "export", "--model", "nope@champion",
                           "--tracking-uri", uri)
    assert code == 2
    assert "error: registered model 'nope' does not exist" in err
    assert "hint: registered models: lead-scoring" in err


def test_unknown_alias_lists_aliases_and_versions(model_config, store, monkeypatch, capsys):
    uri = f"sqlite:///{store / 'mlflow.db'}"
    code, _, err = run_cli(monkeypatch, capsys, "export", "--model", "lead-scoring@gold",
                           "--tracking-uri", uri)
    assert code == 2
    assert "error: model 'lead-scoring' has no alias @gold" in err
    assert "@challenger" in err and "@champion" in err and "versions: 1" in err


def test_unreachable_tracking_server_fails_fast(config_for, tmp_path, monkeypatch, capsys):
    import time

    path = config_for(registry={"tracking_uri": "http://127.0.0.1:9"})
    started = time.perf_counter()
    code, _, err = run_cli(monkeypatch, capsys, "train", "-c", path, "--no-score",
                           "--out", tmp_path / "out")
    assert code == 2
    assert "error: MLflow tracking server http://127.0.0.1:9 is unreachable" in err
    assert "registry.tracking_uri" in err
    assert time.perf_counter() - started < 20


def test_locked_store_refuses_to_start(config_for, tmp_path, monkeypatch, capsys):
    from pipeline.config import load_config
    from pipeline.inputs.reader import run_lock

    path = config_for()
    cfg = load_config(path)
    with run_lock(cli._lock_path(cfg, "train"), what="train"):
        code, _, err = run_cli(monkeypatch, capsys, "train", "-c", path, "--lock", "--no-score",
                               "--out", tmp_path / "out")
    assert code == 75
    assert "is already running" in err and "this run did nothing" in err
    assert not (tmp_path / "out").exists()


def test_score_duplicate_ids_with_account_rollup(leads, model_config, tmp_path, monkeypatch,
                                                 capsys):
    data = edited(leads, tmp_path, _set("lead_id", [7, 8], "L000001"))
    output = tmp_path / "scored.csv"
    code, _, err = run_cli(monkeypatch, capsys, "score", "-c", model_config, "-i", data,
                           "-o", output)
    assert code == 0, err
    rejects = pd.read_csv(tmp_path / "scored_rejects.csv")
    assert rejects["row"].tolist() == [8, 9]
    assert rejects["reason"].str.startswith("duplicate id: 'L000001' already appeared").all()
    assert len(pd.read_csv(output)) == N_LEADS - 2
    assert (tmp_path / "scored_accounts.csv").exists()


@pytest.mark.slow
def test_train_warns_about_dropped_columns_and_bad_events(demo_dir, leads, config_for, tmp_path,
                                                          monkeypatch, capsys):
    data = edited(leads, tmp_path, lambda f: f.assign(region="EU"))
    ids = set(pd.read_csv(data, dtype=str)["lead_id"])
    events = pd.read_csv(demo_dir / "events.csv", dtype=str)
    events = events[events["lead_id"].isin(ids)]
    extra = pd.DataFrame({"lead_id": ["NOBODY", "NOBODY", "L000001"],
                          "event": ["login", "login", "login"],
                          "timestamp": ["2025-02-01T00:00:00", "2025-02-02T00:00:00",
                                        "2020-01-01T00:00:00"]})
    events_path = tmp_path / "events.csv"
    pd.concat([events, extra]).to_csv(events_path, index=False)
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    path = config_for(data, data={"events": str(events_path)}, events=demo["events"],
                      columns={"fit": [*demo["columns"]["fit"], "region"]})
    code, _, err = run_cli(monkeypatch, capsys, "train", "-c", path, "--no-score",
                           "--out", tmp_path / "out")
    assert code == 0, err
    assert f"warning: {data}: column 'region' is constant: dropped" in err
    assert re.search(rf"warning: {events_path}: 2 events for leads that are not in the leads "
                     r"file were ignored", err), err
    assert re.search(rf"warning: {events_path}: 1 events dated before their lead was created",
                     err), err
