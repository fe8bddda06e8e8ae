"""The CSV shapes of real CRM exports: one reader for every path (training, scoring, engines).

``data.delimiter`` (sniffed among , ; tab |), ``data.encoding`` (UTF-8 with or without a BOM,
else cp1252 with a warning), ``data.decimal`` (``1.234,56`` in a ``;`` file is 1234.56) and
``data.id_column: null`` (the data row numbers are the ids, in ``row_id``). Every file is
written here, in ``tmp_path``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import run_cli

from pipeline.config import load_config
from pipeline.errors import UserError
from pipeline.inputs.reader import ReadOptions, read_options, read_table
from pipeline.inputs.text_format import sniff_delimiter
from pipeline.inputs.validate import validate_leads
from pipeline.scoring.input_batches import iter_batches

REPO = Path(__file__).resolve().parents[1]

# an Excel export from a German CRM: ';', decimal commas, umlauts, a ';' inside quotes
GERMAN = [
    "Kunden-Nr;Größe;Branche;Umsatz;Anteil;Notiz;Abschluss",
    '101;groß;Maschinenbau;1.234,56;0,5;"Termin; später";1',
    "102;klein;Bäckerei;3,5;1;ü;0",
    "103;mittel;Maschinenbau;12;0,25;;0",
    "104;groß;Brauerei;-7.000,5;0,75;x;1",
]


def _write(path: Path, lines: list[str], encoding: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode(encoding))
    return path


def _config(tmp_path: Path, leads: Path, **data: object) -> Path:
    """A config for ``leads`` (label ``Abschluss``), ``data`` keys overriding."""
    settings = {"root": str(tmp_path),
                "data": {"leads": str(leads), "id_column": "Kunden-Nr", **data},
                "label": {"column": "Abschluss", "positive": [1], "negative": [0]},
                "registry": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                             "artifact_location": str(tmp_path / "artifacts")}}
    path = tmp_path / "intake.yaml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return path


def _german_checks(frame: pd.DataFrame) -> None:
    """The German file's cells, whatever its encoding: decimal commas rewritten as points,
    the quoted ';' kept inside its field, umlauts decoded, the ids untouched."""
    assert list(frame.columns) == GERMAN[0].split(";")
    assert frame["Kunden-Nr"].tolist() == ["101", "102", "103", "104"]
    assert frame["Größe"].tolist() == ["groß", "klein", "mittel", "groß"]
    assert frame["Umsatz"].tolist() == ["1234.56", "3.5", "12", "-7000.5"]
    assert frame["Notiz"].iloc[0] == "Termin; später"
    assert frame["Notiz"].iloc[1] == "ü"


# --------------------------------------------------------------------------- the reader

def test_semicolon_cp1252_file_with_decimal_commas_is_read_with_a_warning(tmp_path, capsys):
    path = _write(tmp_path / "leads.csv", GERMAN, "cp1252")
    frame = read_table(path).frame
    _german_checks(frame)
    err = capsys.readouterr().err
    assert (f"warning: {path} is not UTF-8; read as cp1252 (set data.encoding to silence this)"
            in err)


def test_same_file_with_a_utf8_bom_reads_the_same_without_warning(tmp_path, capsys):
    path = _write(tmp_path / "leads.csv", GERMAN, "utf-8", bom=True)
    frame = read_table(path).frame
    _german_checks(frame)  # the BOM is not part of the first column's name
    assert "warning" not in capsys.readouterr().err


def test_decimal_comma_columns_validate_as_floats(tmp_path):
    """Numbers with a decimal comma are numbers: never silently categorical."""
    path = _write(tmp_path / "leads.csv", GERMAN, "cp1252")
    cfg = load_config(_config(tmp_path, path))
    raw = read_table(path, options=read_options(cfg)).frame
    leads = validate_leads(raw, cfg, source=str(path))
    assert {"Umsatz", "Anteil"} <= set(leads.numeric_columns)
    assert leads.frame["Umsatz"].dtype == float
    np.testing.assert_allclose(leads.frame["Umsatz"], [1234.56, 3.5, 12.0, -7000.5])
    np.testing.assert_allclose(leads.frame["Anteil"], [0.5, 1.0, 0.25, 0.75])
    assert "Branche" not in leads.numeric_columns


@pytest.mark.parametrize(("delimiter", "name"), [("\t", "tab"), ("|", "pipe")])
def test_tab_and_pipe_files_are_sniffed(tmp_path, delimiter, name):
    lines = [line.replace(";", delimiter) for line in
             ["lead_id;size;visits;outcome", "L1;small;3;won", "L2;large a|b;4;lost"]]
    if delimiter == "|":  # a pipe inside a quoted field does not count
        lines[2] = 'L2|"large a|b"|4|lost'
    path = _write(tmp_path / f"{name}.csv", lines, "utf-8")
    frame = read_table(path).frame
    assert list(frame.columns) == ["lead_id", "size", "visits", "outcome"]
    assert frame["size"].tolist() == ["small", "large a|b"]
    assert frame["visits"].tolist() == ["3", "4"]  # a point-decimal file: nothing rewritten


def test_sniffing_respects_quotes_and_prefers_consistent_rows():
    # more ';' than ',' in the text, but they are inside quotes: the header decides
    sample = 'id,text,n\n1,"a;b;c;d",2\n2,"e;f;g;h",3\n'
    assert sniff_delimiter(sample, complete=True) == ","
    # a '|' inside quotes does not make a row ragged
    assert sniff_delimiter('id|text\n1|"x|y|z"\n2|"p|q"\n', complete=True) == "|"
    # a cut-off last record (a partial sample) does not count
    assert sniff_delimiter("a;b;c\n1;2;3\n4;5", complete=False) == ";"
    assert sniff_delimiter("a;b\n1,5;2,5\n", complete=True) == ";"
    assert sniff_delimiter("one column\nx\n", complete=True) == ","


def test_comma_separated_file_keeps_decimal_points(tmp_path):
    """In a ``,`` file the decimal is the point: a quoted ``1,5`` stays text."""
    path = _write(tmp_path / "leads.csv",
                  ["lead_id,amount,note", 'L1,1.5,"1,5"', "L2,2.25,x"], "utf-8")
    frame = read_table(path).frame
    assert frame["amount"].tolist() == ["1.5", "2.25"]
    assert frame["note"].tolist() == ["1,5", "x"]


def test_mixed_decimal_separators_are_refused_naming_the_key(tmp_path):
    path = _write(tmp_path / "mixed.csv", ["id;a;b", "1;0,5;0.5", "2;1,25;1.75"], "utf-8")
    with pytest.raises(UserError, match=r"mixed\.csv: columns \['a'\] have numbers with a "
                       r"decimal comma, columns \['b'\] with a decimal point") as caught:
        read_table(path)
    assert "data.decimal" in str(caught.value)


def test_thousands_dots_are_dropped_and_stray_text_kept_for_validation(tmp_path):
    """``1.234`` in a decimal-comma file is 1234; a word in a numeric column stays a word (the
    validation then names its row instead of the column turning categorical)."""
    path = _write(tmp_path / "leads.csv", ["id;amount;outcome"] + [
        f"{i};{v};{i % 2}" for i, v in enumerate(
            ["1.234", "2,5", "n/a", *[f"{k},5" for k in range(20)]], start=1)], "utf-8")
    cfg = load_config(_config(tmp_path, path, id_column="id"), overrides={
        "label": {"column": "outcome"}})
    raw = read_table(path, options=read_options(cfg)).frame
    assert raw["amount"].tolist()[:3] == ["1234", "2.5", "n/a"]
    with pytest.raises(UserError, match=r"column 'amount' is numeric but rows 4 hold text: "
                       r"'n/a'"):
        validate_leads(raw, cfg, source=str(path))


# --------------------------------------------------------------------------- explicit keys

def test_explicit_delimiter_decimal_and_encoding_override_auto(tmp_path):
    # ';' and '|' explain this file equally well: auto takes ';', an explicit '|' wins
    path = _write(tmp_path / "leads.csv", ["a|b;c", "1,5|x;y", "2,5|z;w"], "utf-8")
    assert list(read_table(path).frame.columns) == ["a|b", "c"]
    frame = read_table(path, options=ReadOptions(delimiter="|")).frame
    assert list(frame.columns) == ["a", "b;c"]
    assert frame["a"].tolist() == ["1.5", "2.5"]  # auto decimal: a '|' file, comma numbers
    assert read_table(path, options=ReadOptions(delimiter="|", decimal=".")
                      ).frame["a"].tolist() == ["1,5", "2,5"]  # explicit '.': left as text
    # decimal '.' keeps the comma numbers of a ';' file as written
    german = _write(tmp_path / "german.csv", GERMAN, "utf-8")
    assert read_table(german, options=ReadOptions(decimal=".")
                      ).frame["Umsatz"].tolist() == ["1.234,56", "3,5", "12", "-7.000,5"]
    # a comma file with decimal ',' (quoted numbers)
    quoted = _write(tmp_path / "quoted.csv", ["id,x", '1,"1.234,5"', '2,"0,5"'], "utf-8")
    assert read_table(quoted, options=ReadOptions(decimal=",")
                      ).frame["x"].tolist() == ["1234.5", "0.5"]
    # latin-1 explicitly: no warning, the same letters as cp1252 for these bytes
    latin = _write(tmp_path / "latin.csv", ["id;name", "1;Renée"], "latin-1")
    assert read_table(latin, options=ReadOptions(encoding="latin-1")
                      ).frame["name"].tolist() == ["Renée"]
    # UTF-8 read as latin-1 is mojibake: the explicit value is used as is
    utf8 = _write(tmp_path / "utf8.csv", ["id;name", "1;Renée"], "utf-8")
    assert read_table(utf8, options=ReadOptions(encoding="latin-1")
                      ).frame["name"].tolist() == ["RenÃ©e"]


def test_explicit_keys_reach_the_reader_from_the_config(tmp_path, capsys):
    path = _write(tmp_path / "leads.csv", GERMAN, "cp1252")
    cfg = load_config(_config(tmp_path, path, delimiter=";", encoding="cp1252", decimal=","))
    options = read_options(cfg)
    assert (options.delimiter, options.encoding, options.decimal) == (";", "cp1252", ",")
    _german_checks(read_table(path, options=options).frame)
    assert "warning" not in capsys.readouterr().err  # the encoding was given: no warning
    tab = load_config(_config(tmp_path, path, delimiter="tab"))
    assert tab.data.delimiter == "\t"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("delimiter", ";;", r"key 'data\.delimiter': Value error, must be 'auto' or one character"),
    ("delimiter", '"', r"key 'data\.delimiter': Value error, must be 'auto' or one character"),
    ("encoding", "klingon", r"key 'data\.encoding': Value error, must be 'auto' or a text "
                            r"encoding such as utf-8, cp1252 or latin-1, got 'klingon'"),
    ("encoding", "rot13", r"key 'data\.encoding': Value error, 'rot13' is not a text encoding"),
    ("decimal", ";", r"key 'data\.decimal': Input should be 'auto', '\.' or ','"),
    ("id_column", 5, r"key 'data\.id_column': Input should be a valid string"),
])
def test_invalid_values_name_the_key(tmp_path, key, value, message):
    path = _write(tmp_path / "leads.csv", GERMAN, "utf-8")
    with pytest.raises(UserError, match=message):
        load_config(_config(tmp_path, path, **{key: value}))


def test_explicit_utf8_on_a_cp1252_file_names_the_byte_and_line(tmp_path):
    path = _write(tmp_path / "leads.csv", GERMAN, "cp1252")
    with pytest.raises(UserError, match=r"leads\.csv: not UTF-8 text \(byte 0xf6 on line 1\)"
                       ) as caught:
        read_table(path, options=ReadOptions(encoding="utf-8"))
    assert "data.encoding" in caught.value.hint


# --------------------------------------------------------------------------- no id column

def test_row_ids_are_the_data_row_numbers_on_every_reading_path(tmp_path):
    """``row_id`` is the 1-based data row number (blank lines do not count), the same whether
    the file is read whole (training) or streamed in batches (scoring), UTF-8 or not."""
    lines = ["Größe;Umsatz", "groß;1,5", "", "klein;2,5", "mittel;3"]
    options = ReadOptions(row_ids=True)
    for encoding in ("utf-8", "cp1252"):
        path = _write(tmp_path / f"{encoding}.csv", lines, encoding)
        whole = read_table(path, options=options).frame
        assert whole["row_id"].tolist() == ["1", "2", "3"]
        assert whole["Umsatz"].tolist() == ["1.5", "2.5", "3"]
        streamed = pd.concat([b.frame for b in iter_batches(path, batch_size=2,
                                                             options=options)])
        assert streamed["row_id"].tolist() == ["1", "2", "3"]
        assert streamed["Umsatz"].tolist() == ["1.5", "2.5", "3"]
    parquet = tmp_path / "leads.parquet"
    pd.DataFrame({"x": ["a", "b"]}).to_parquet(parquet)
    assert read_table(parquet, options=options).frame["row_id"].tolist() == ["1", "2"]


def test_a_file_with_its_own_row_id_column_is_refused(tmp_path):
    path = _write(tmp_path / "leads.csv", ["row_id,x", "7,a", "8,b"], "utf-8")
    with pytest.raises(UserError, match=r"leads\.csv: data\.id_column is null, so the rows are "
                       r"numbered in a column 'row_id', but the file already has a column "
                       r"'row_id'") as caught:
        read_table(path, options=ReadOptions(row_ids=True))
    assert "set data.id_column: row_id" in caught.value.hint


def _no_id_leads(n: int, *, seed: int = 3) -> list[str]:
    """A ';' cp1252 export without ids: the industry and the revenue (decimal comma) drive
    conversion."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(["Maschinenbau", "Bäckerei", "Brauerei", "Möbel"], n)
    revenue = rng.gamma(2.0, 800.0, n).round(2)
    logit = -1.2 + 1.3 * (industry == "Maschinenbau") - 0.9 * (industry == "Bäckerei") \
        + 0.0008 * revenue
    won = rng.random(n) < 1 / (1 + np.exp(-logit))
    lines = ["Branche;Umsatz;Notiz;Abschluss"]
    for i in range(n):
        amount = f"{revenue[i]:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
        lines.append(f'{industry[i]};{amount};"Anruf; {i}";{int(won[i])}')
    return lines


@pytest.mark.training  # trains through the CLI
def test_train_and_score_a_file_without_ids(tmp_path, mlflow_db_template, monkeypatch, capsys):
    """``data.id_column: null`` end to end through the CLI: training works; scoring writes the
    row numbers as ids, scores every lead, and a bad row's reject names its row number."""
    leads = _write(tmp_path / "leads.csv", _no_id_leads(600), "cp1252")
    shutil.copyfile(mlflow_db_template, tmp_path / "mlflow.db")
    config = _config(tmp_path, leads, id_column=None)
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["columns"] = {"fit": ["Branche", "Umsatz"]}
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "train", "-c", config, "--out", tmp_path / "out",
                           "--no-score")
    assert code == 0, err
    assert err.count("is not UTF-8; read as cp1252") == 1
    rules = (tmp_path / "out" / "points_rules.json").read_text(encoding="utf-8")
    assert '"id_column": "row_id"' in rules and "Umsatz" in rules

    output = tmp_path / "scored.csv"
    code, _, err = run_cli(monkeypatch, capsys, "score", "-c", config, "-o", output)
    assert code == 0, err
    scored = pd.read_csv(output, dtype={"row_id": str})
    assert scored.columns[0] == "row_id"
    assert sorted(scored["row_id"].astype(int)) == list(range(1, 601))  # every lead scored
    assert "600 rows -> 600 scored" in err
    assert pd.read_csv(tmp_path / "scored_rejects.csv").empty

    lines = _no_id_leads(20, seed=4)
    industry, _, rest = lines[3].split(";", 2)
    lines[3] = f"{industry};viel;{rest}"  # data row 3: a word where the revenue goes
    bad = _write(tmp_path / "bad.csv", lines, "cp1252")
    code, _, err = run_cli(monkeypatch, capsys, "score", "-c", config, "-i", bad,
                           "-o", tmp_path / "bad_scored.csv")
    assert code == 0, err
    rejects = pd.read_csv(tmp_path / "bad_scored_rejects.csv", dtype={"lead_id": str})
    assert rejects[["row", "lead_id"]].to_dict("records") == [{"row": 3, "lead_id": "3"}]
    assert rejects["reason"].iloc[0].startswith("unparseable value: column 'Umsatz' holds 'viel'")
    scored = pd.read_csv(tmp_path / "bad_scored.csv", dtype={"row_id": str})
    assert scored["row_id"].tolist() == [str(r) for r in range(1, 21) if r != 3]


@pytest.mark.training  # trains through the CLI
def test_duckdb_engine_reads_the_file_as_the_keys_say(tmp_path, mlflow_db_template,
                                                      monkeypatch, capsys):
    """The DuckDB engine scores the ';' cp1252 decimal-comma file without ids exactly as the
    pandas engine does (it gets a copy made by the same reader)."""
    leads = _write(tmp_path / "leads.csv", _no_id_leads(400), "cp1252")
    shutil.copyfile(mlflow_db_template, tmp_path / "mlflow.db")
    config = _config(tmp_path, leads, id_column=None)
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["columns"] = {"fit": ["Branche", "Umsatz"]}
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "train", "-c", config, "--out", tmp_path / "out",
                           "--no-score")
    assert code == 0, err
    outputs = {}
    for engine in ("pandas", "duckdb"):
        output = tmp_path / f"{engine}.csv"
        code, _, err = run_cli(monkeypatch, capsys, "score", "-c", config, "-o", output,
                               "--engine", engine, "--no-reasons")
        assert code == 0, err
        outputs[engine] = pd.read_csv(output, dtype={"row_id": str}).sort_values(
            "row_id", key=lambda s: s.astype(int)).reset_index(drop=True)
    columns = ["row_id", "points", "fit", "pain", "sdr_ready"]
    assert len(outputs["duckdb"]) == 400
    pd.testing.assert_frame_equal(outputs["duckdb"][columns], outputs["pandas"][columns])


def test_sql_engines_read_plain_files_as_they_are_and_copy_the_others(tmp_path):
    """Only a comma-separated UTF-8 file with decimal points and an id column (or Parquet) is
    handed to DuckDB/Spark as it is; any other goes through the reader first."""
    from pipeline.scoring.engine_input import plain_input, refuse_remote

    plain = _write(tmp_path / "plain.csv", ["id,x", "1,0.5"], "utf-8")
    semicolons = _write(tmp_path / "semi.csv", ["id;x", "1;0,5"], "utf-8")
    latin = _write(tmp_path / "latin.csv", ["id,x", "1,Renée"], "cp1252")
    parquet = tmp_path / "leads.parquet"
    pd.DataFrame({"id": ["1"]}).to_parquet(parquet)
    assert plain_input(plain, ReadOptions()) and plain_input(parquet, ReadOptions())
    assert not plain_input(semicolons, ReadOptions())
    assert not plain_input(latin, ReadOptions())
    assert not plain_input(plain, ReadOptions(decimal=","))
    assert not plain_input(plain, ReadOptions(encoding="cp1252"))
    assert not plain_input(parquet, ReadOptions(row_ids=True))
    for options, key in ((ReadOptions(delimiter=";"), "data.delimiter"),
                         (ReadOptions(encoding="cp1252"), "data.encoding"),
                         (ReadOptions(decimal=","), "data.decimal"),
                         (ReadOptions(row_ids=True), "data.id_column")):
        with pytest.raises(UserError, match=key):  # a cluster path: refused, naming the key
            refuse_remote(options)
    refuse_remote(ReadOptions())  # auto: read as before


def test_a_version_trained_before_these_keys_still_loads_its_config(tmp_path):
    """A logged config.json without data.delimiter/encoding/decimal takes their defaults."""
    from pipeline.config import logged_config

    path = _write(tmp_path / "leads.csv", GERMAN, "utf-8")
    logged = load_config(_config(tmp_path, path)).model_dump(mode="json")
    for key in ("delimiter", "encoding", "decimal"):
        del logged["data"][key]
    cfg = logged_config(logged)
    assert (cfg.data.delimiter, cfg.data.encoding, cfg.data.decimal) == ("auto",) * 3
    assert cfg.data.id_column == "Kunden-Nr"
