"""File edges: reading tables with clear errors, atomic writes, run locks, safe output names."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import LockedError, UserError
from pipeline.inputs.reader import (
    ReadOptions,
    atomic_path,
    file_digest,
    read_table,
    run_lock,
    system_allocator,
    write_frame_atomic,
    write_text_atomic,
)
from pipeline.inputs.text_format import check_utf8

HEADER = "lead_id,size,outcome"
COMMAS, UTF8 = ReadOptions(delimiter=","), ReadOptions(encoding="utf-8")
ROWS = ["L1,small,won", "L2,large,lost", "L3,,lost"]


def _csv(tmp_path, lines, name="leads.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_reads_every_value_as_text(tmp_path):
    table = read_table(_csv(tmp_path, [HEADER, *ROWS, "007,x,won"]))
    assert list(table.frame.columns) == ["lead_id", "size", "outcome"]
    assert table.frame["lead_id"].tolist() == ["L1", "L2", "L3", "007"]  # leading zeros kept
    assert table.frame.loc[2, "size"] == "" and table.bad_rows == []


def test_system_allocator_reads_the_same_table_and_restores_the_pool(tmp_path):
    """Training reads with Arrow on the C library's malloc: the same table; the pool Arrow
    had is back afterwards."""
    import pyarrow as pa

    path = _csv(tmp_path, [HEADER, *ROWS])
    before, pool = read_table(path).frame, pa.default_memory_pool().backend_name
    with system_allocator():
        assert pa.default_memory_pool().backend_name == "system"
        pd.testing.assert_frame_equal(read_table(path).frame, before)
    assert pa.default_memory_pool().backend_name == pool


@pytest.mark.parametrize(("make", "pattern"), [
    (lambda p: p / "absent.csv", r"absent\.csv: file not found"),
    (lambda p: _csv(p, [""], "empty.csv") if False else (p / "empty.csv", (p / "empty.csv")
                                                         .write_bytes(b""))[0],
     r"empty\.csv: file is empty"),
    (lambda p: _csv(p, [HEADER], "head.csv"), r"head\.csv: has a header but no rows"),
    # semicolons and tabs are sniffed (tests/test_intake_formats.py); an explicit comma is not
    (lambda p: (_csv(p, [h.replace(",", ";") for h in [HEADER, *ROWS]], "semi.csv"), COMMAS),
     r"semi\.csv: the header has one column but contains semicolons: wrong delimiter"),
    (lambda p: (_csv(p, [h.replace(",", "\t") for h in [HEADER, *ROWS]], "tab.csv"), COMMAS),
     r"contains tabs: wrong delimiter"),
    # auto reads it as cp1252; an explicit UTF-8 says where it is not
    (lambda p: (_csv(p, [HEADER, "L1,Ren\xe9e,won"], "latin.csv", "latin-1"), UTF8),
     r"latin\.csv: not UTF-8 text \(byte 0xe9 on line 2\)"),
    (lambda p: _csv(p, [HEADER, ROWS[0], "L2,a,b,c,d", ROWS[2]], "ragged.csv"),
     r"ragged\.csv: malformed CSV: line 3 has 5 fields, expected 3"),
    (lambda p: _csv(p, [HEADER, *ROWS], "fake.parquet"),
     r"fake\.parquet: not a Parquet file \(it starts like a text file\)"),
    (lambda p: _csv(p, [HEADER, *ROWS], "leads.xlsx"), r"unsupported file type '\.xlsx'"),
    (lambda p: p, r"is a directory"),
])
def test_unreadable_files_are_explained(tmp_path, make, pattern):
    made = make(tmp_path)
    path, options = made if isinstance(made, tuple) else (made, None)
    with pytest.raises(UserError, match=pattern):
        read_table(path, options=options)


def test_ragged_rows_all_listed_when_strict_and_kept_aside_when_not(tmp_path):
    lines = [HEADER, ROWS[0], "L2,a,b,c,d", ROWS[2], "L4", ROWS[1].replace("L2", "L5")]
    path = _csv(tmp_path, lines)
    with pytest.raises(UserError, match=r"\(2 malformed rows in all, lines 3, 5\)"):
        read_table(path)
    table = read_table(path, strict=False)
    assert table.frame["lead_id"].tolist() == ["L1", "L3", "L5"]
    assert [(b.line, b.reason) for b in table.bad_rows] == [
        (3, "row has 5 fields, expected 3"), (5, "row has 1 fields, expected 3")]


def test_not_utf8_far_into_the_file_is_found_with_its_line(tmp_path):
    lines = [HEADER] + [f"L{i},size{i},won" for i in range(60_000)] + ["L9,caf\xe9,lost"]
    path = _csv(tmp_path, lines, encoding="latin-1")
    assert path.stat().st_size > 1 << 20
    with pytest.raises(UserError, match=r"byte 0xe9 on line 60002"):
        check_utf8(path)


def test_multibyte_character_across_the_read_boundary_is_fine(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"a\n" + b"x" * ((1 << 20) - 3) + "é\n".encode())
    check_utf8(path)  # no error


def test_utf8_bom_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join([HEADER, *ROWS]) + "\n").encode())
    assert read_table(path).frame.columns[0] == "lead_id"


def test_parquet_read_as_text(tmp_path):
    path = tmp_path / "leads.parquet"
    pd.DataFrame({"lead_id": ["L1", "L2"], "visits": [3.0, None], "n": [1, 2]}).to_parquet(path)
    frame = read_table(path).frame
    assert frame["visits"].tolist() == ["3", None] and frame["n"].tolist() == ["1", "2"]


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.csv"
    write_text_atomic(target, "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temp file left behind
    write_frame_atomic(target, pd.DataFrame({"a": [1.5]}))
    assert target.read_text() == "a\n1.5\n"


def test_file_digest_is_content_hash(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert file_digest(a) == file_digest(b) and len(file_digest(a)) == 16
    b.write_bytes(b"other")
    assert file_digest(a) != file_digest(b)


def test_run_lock_refuses_a_second_holder(tmp_path):
    lock = tmp_path / "models" / ".train.lock"
    expected = rf"another train is already running \(pid {os.getpid()}; lock file {lock}\)"
    with (run_lock(lock, what="train"), pytest.raises(LockedError, match=expected) as info,
          run_lock(lock, what="train")):
        pass
    assert info.value.exit_code == 75
    with run_lock(lock, what="train"):  # released: free again
        pass


CELL = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
    st.sampled_from(["", " ", '"', '""', 'a"b', "a,b", "line\nbreak", "cr\r\nlf", "\ufeff",
                     "Select", " padded ", "1.5", "-0", "NaN"]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 4).flatmap(lambda width: st.tuples(
    st.lists(st.text(alphabet="abcXYZ_ ", min_size=1, max_size=6), min_size=width,
             max_size=width, unique=True),
    st.lists(st.lists(CELL, min_size=width, max_size=width), min_size=1, max_size=6))),
    st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_fast_reader_reads_what_the_csv_module_reads(tmp_path_factory, table, newline, bom):
    """Arrow's reader (well-formed files) and the csv module give the same cells."""
    import csv
    import io

    from pipeline.inputs.csv_text import _read_csv_with_arrow, _read_csv_with_csv_module

    header, rows = table
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerows([header, *rows])
    path = tmp_path_factory.mktemp("csv") / "leads.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + buffer.getvalue().encode())
    careful = _read_csv_with_csv_module(path, strict=False)
    fast = _read_csv_with_arrow(path)
    if fast is None:  # refused: the careful reader is used, nothing to compare
        return
    assert careful.bad_rows == []
    assert list(fast.columns) == list(careful.frame.columns)
    assert fast.astype(object).to_numpy().tolist() == careful.frame.to_numpy().tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", ",", '"', "\n", "\r", "\r\n"]), max_size=40),
       st.integers(1, 8))
def test_physical_lines_count_every_line_break_the_csv_module_counts(tmp_path_factory, pieces,
                                                                      block_power):
    """LF, CRLF and a lone CR each end a line (a lone CR in a quoted cell made Arrow's reading
    pass the one-record-per-line check while the csv module saw two lines), also when a CRLF
    falls across two read blocks."""
    import re

    import pipeline.inputs.csv_text as csv_text

    data = "".join(pieces).encode()
    path = tmp_path_factory.mktemp("lines") / "f.csv"
    path.write_bytes(data)
    text = data.decode()
    breaks = len(re.findall(r"\r\n|\r|\n", text))
    expected = breaks + (bool(text) and not text.endswith(("\n", "\r")))
    assert csv_text.physical_lines(path) == expected
    assert csv_text.physical_lines(path, block_size=2 ** block_power // 2 or 1) == expected
