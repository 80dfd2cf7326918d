"""Tests for fpi.data.write and fpi.data.files: traces written atomically, exports that run no spreadsheet formula."""
from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpi.data.files import atomic_write, format_of
from fpi.data.traces import load_traces
from fpi.data.write import (
    FORMULA_PREFIXES, export_bytes, neutralise_cell, neutralise_formulas, neutralise_table, write_export, write_traces,
)
from fpi.errors import FpiError
from fpi.simulator.simulate import simulate


@pytest.fixture(scope="module")
def traces() -> pd.DataFrame:
    return simulate(40, seed=61)


# ---------------------------------------------------------------- writing traces

@pytest.mark.parametrize("name", ["t.csv", "t.parquet", "T.PQ"])
def test_written_traces_read_back_the_same(traces, tmp_path, name) -> None:
    write_traces(traces, tmp_path / name)
    pd.testing.assert_frame_equal(load_traces(tmp_path / name), traces)


def test_csv_cells_are_plain_text(tmp_path) -> None:
    frame = pd.DataFrame({
        "when": pd.to_datetime(["2024-05-01 09:00:00", "2024-05-01 09:00:01"]),  # naive: read as UTC
        "zoned": pd.to_datetime(["2024-05-01T09:00:00.250+02:00", "2024-05-01T10:00:00+02:00"], format="ISO8601"),
        "flag": pd.array([True, None], dtype="boolean"), "kind": pd.Categorical(["a", "b"]),
        "x": [0.5, None], 3: ["named by a number", "x"],
    })
    write_traces(frame, tmp_path / "t.csv")
    with open(tmp_path / "t.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["when", "zoned", "flag", "kind", "x", "3"],
                    ["2024-05-01T09:00:00Z", "2024-05-01T07:00:00.250000Z", "true", "a", "0.5", "named by a number"],
                    ["2024-05-01T09:00:01Z", "2024-05-01T08:00:00.000000Z", "", "b", "", "x"]]


def test_a_writer_that_fails_leaves_the_old_file_and_no_temp_file(tmp_path) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"the old file")
    os.chmod(target, 0o600)

    def crash(fh) -> None:
        fh.write(b"half a fi")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, crash)
    assert target.read_bytes() == b"the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    atomic_write(target, lambda fh: fh.write(b"the new file"))
    assert target.read_bytes() == b"the new file"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # the file keeps its permissions
    atomic_write(tmp_path / "new" / "dir" / "x.bin", lambda fh: fh.write(b"x"))  # folders are made
    assert (tmp_path / "new" / "dir" / "x.bin").read_bytes() == b"x"


@pytest.mark.parametrize(("name", "fmt"), [("a.csv", "csv"), ("A.CSV", "csv"), ("a.parquet", "parquet"),
                                           ("dir.csv/a.pq", "parquet")])
def test_format_of_reads_the_suffix(name: str, fmt: str) -> None:
    assert format_of(name) == fmt


@pytest.mark.parametrize("name", ["a.xlsx", "a", "a.csv.gz", "csv"])
def test_format_of_refuses_other_suffixes_naming_what(name: str) -> None:
    with pytest.raises(FpiError, match="cannot tell the export format of .* use .csv or .parquet"):
        format_of(name, what="export format")


# ---------------------------------------------------------------- exports: no live formula

@pytest.mark.parametrize(("value", "expected"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1", "'+1"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("play music", "play music"), ("", ""), (" =x", " =x"), (-1.5, -1.5), (None, None),
])
def test_neutralise_cell(value: object, expected: object) -> None:
    assert neutralise_cell(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_neutralised_text_never_starts_like_a_formula(text: str) -> None:
    out = neutralise_cell(text)
    assert not out.startswith(FORMULA_PREFIXES)
    if text.startswith(FORMULA_PREFIXES):
        assert out == "'" + text  # nothing lost: the original follows the quote
    else:
        assert out == text  # harmless text is left exactly as it was
    assert neutralise_cell(out) == out  # idempotent


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.floats(allow_nan=False, allow_infinity=False),
                          st.integers(-10**6, 10**6)), min_size=1, max_size=20))
def test_neutralise_formulas_touches_only_text_columns(rows: list[tuple[str, float, int]]) -> None:
    frame = pd.DataFrame(rows, columns=["text", "number", "count"]).astype({"text": "str"})
    out = neutralise_formulas(frame)
    pd.testing.assert_series_equal(out["number"], frame["number"])
    pd.testing.assert_series_equal(out["count"], frame["count"])
    assert out["text"].dtype == frame["text"].dtype
    assert out["text"].tolist() == [neutralise_cell(t) for t in frame["text"]]


def test_csv_export_neutralises_text_but_not_numbers_and_parquet_keeps_everything(tmp_path: Path) -> None:
    frame = pd.DataFrame({"dialogue_id": ["=cmd|' /C calc'!A0", "d2"], "turn_index": [0, 1],
                          "asr_text": pd.array(["-play", None], dtype="str"), "asr_confidence": [-0.5, 0.25]})
    write_export(frame, tmp_path / "x.csv")
    back = pd.read_csv(tmp_path / "x.csv", keep_default_na=False)
    assert back["dialogue_id"].tolist() == ["'=cmd|' /C calc'!A0", "d2"]
    assert back["asr_text"].tolist() == ["'-play", ""]
    assert back["asr_confidence"].tolist() == [-0.5, 0.25]
    parquet = pd.read_parquet(pd.io.common.BytesIO(export_bytes(frame, fmt="parquet")))
    assert parquet["dialogue_id"].tolist() == frame["dialogue_id"].tolist()
    with pytest.raises(FpiError, match="use .csv or .parquet"):
        write_export(frame, tmp_path / "x.xlsx")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=8))
def test_the_arrow_and_pandas_neutralisers_agree(cells: list[str | None]) -> None:
    import pyarrow as pa

    from fpi.data.write import FORMULA_PREFIXES, neutralise_formulas, neutralise_table

    frame = pd.DataFrame({"-x": pd.Series(cells, dtype="object")})
    table = neutralise_table(pa.Table.from_pandas(frame, preserve_index=False))
    expected = neutralise_formulas(frame)
    assert table.column_names == list(expected.columns) == ["'-x"]
    assert table.column(0).to_pylist() == [None if v is None or v != v else v for v in expected.iloc[:, 0]]
    assert not any(isinstance(v, str) and v.startswith(FORMULA_PREFIXES) for v in table.column(0).to_pylist())


def test_export_bytes_are_the_export_file(tmp_path) -> None:
    frame = pd.DataFrame({"=a": ["+b", "c"], "n": [-1.5, 2.0]})
    data = export_bytes(frame, fmt="csv")
    assert list(csv.reader(io.StringIO(data.decode("utf-8")))) == [["'=a", "n"], ["'+b", "-1.5"], ["c", "2"]]
    assert data == write_export(frame, tmp_path / "x.csv").read_bytes()
    parquet = pd.read_parquet(pd.io.common.BytesIO(export_bytes(frame, fmt="parquet")))
    pd.testing.assert_frame_equal(parquet, frame)  # Parquet keeps every value exactly, header included
    with pytest.raises(FpiError, match="unknown export format"):
        export_bytes(frame, fmt="xlsx")


def test_neutralise_formulas_covers_headers_and_bytes_cells() -> None:
    frame = pd.DataFrame({"@who": [b"=cmd", b"\xff\xfe", b"ok"], "mixed": ["-x", 3, None]})
    out = neutralise_formulas(frame)
    assert out.columns.tolist() == ["'@who", "mixed"]
    assert out["'@who"].tolist() == ["'=cmd", "\ufffd\ufffd", "ok"]
    assert out["mixed"].tolist()[:2] == ["'-x", 3]  # a number in a text column stays a number
    assert frame.columns.tolist() == ["@who", "mixed"] and frame["@who"].iloc[0] == b"=cmd"  # a copy


def test_neutralise_table_covers_headers_binary_and_large_strings() -> None:
    table = pa.table({
        "=h": pa.array(["=1", "x", None], pa.large_string()),
        "raw": pa.array([b"+1", b"\xff=", None], pa.binary()),
        "n": pa.array([-1.0, 2.0, None]),
    })
    out = neutralise_table(table)
    assert out.column_names == ["'=h", "raw", "n"]
    assert out.column("'=h").to_pylist() == ["'=1", "x", None]
    assert out.column("raw").to_pylist() == ["'+1", "\ufffd=", None]
    assert out.column("n").to_pylist() == [-1.0, 2.0, None]


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_every_formula_start_is_quoted_in_frames_and_tables(prefix: str) -> None:
    cells = [prefix + "1", "x" + prefix, None]
    frame = pd.DataFrame({prefix + "h": pd.Series(cells, dtype="object")})
    expected = ["'" + prefix + "1", "x" + prefix]
    assert neutralise_formulas(frame).iloc[:2, 0].tolist() == expected
    table = neutralise_table(pa.Table.from_pandas(frame, preserve_index=False))
    assert table.column_names == ["'" + prefix + "h"] and table.column(0).to_pylist() == [*expected, None]

