"""Tests for fpi.data.stream: a trace file read in checked batches says what `load_traces` says of it whole."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpi.data import stream as stream_module
from fpi.data.schema import CONTRACT_COLUMNS
from fpi.data.stream import TraceStream, merge_problems
from fpi.data.traces import load_traces
from fpi.data.write import write_traces
from fpi.errors import Problem, TraceError
from fpi.simulator.simulate import simulate

BAD_CELLS = {  # (row of the frame, column) -> a value the contract refuses
    (3, "asr_confidence"): "x",
    (10, "wake_confidence"): "1.5",
    (11, "wake_confidence"): "-0.2",
    (40, "turn_index"): "",
    (41, "barge_in"): "maybe",
    (77, "failure_point"): "bad label",
    (78, "timestamp"): "yesterday",
    (90, "dialogue_id"): "",
}
RAGGED_AFTER = (5, 6, 50, 120)
"""Lines of the CSV after which a line of the wrong number of fields is inserted."""


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate(50, seed=41)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """CSV is read in blocks of 4 MB; blocks of 2 kB give a small file many batches (Parquet: row groups)."""
    monkeypatch.setattr(stream_module, "BLOCK_BYTES", 2048)


def _text_frame(frame: pd.DataFrame, bad: dict[tuple[int, str], str]) -> pd.DataFrame:
    """Every cell as text (missing as ''), with the `bad` cells put in."""
    out = frame.astype("object").where(frame.notna(), "").astype("str")
    out["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["barge_in"] = frame["barge_in"].map({True: "true", False: "false"}).astype("object").fillna("")
    for (row, column), value in bad.items():
        out.loc[out.index[row], column] = value
    return out


def _write_csv(text_frame: pd.DataFrame, path: Path, ragged_after: tuple[int, ...] = ()) -> Path:
    lines = text_frame.to_csv(index=False, lineterminator="\n").splitlines()
    for line in sorted(ragged_after, reverse=True):
        lines.insert(min(line, len(lines)), "ragged,row" if line % 2 else "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,"
                                                                     "u,v,w,x,y,z")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _whole_file_problems(path: Path, **kwargs) -> list[Problem]:
    with pytest.raises(TraceError) as info:
        load_traces(path, **kwargs)
    return [p for p in info.value.problems if p.code != "duplicate_turn"]  # a batch cannot know those


def _read(path: Path, batch_rows: int, **kwargs) -> tuple[TraceStream, list]:
    stream = TraceStream(path, batch_rows=batch_rows, **kwargs)
    return stream, list(stream)


def _streamed_problems(path: Path, batch_rows: int, **kwargs) -> list[Problem]:
    stream, batches = _read(path, batch_rows, **kwargs)
    return merge_problems([*stream.file_problems(), *(p for b in batches for p in b.checked.problems)])


def _by_key(problems: list[Problem]) -> dict[tuple, Problem]:
    keyed = {(p.column, p.code, p.reason): p for p in problems}
    assert len(keyed) == len(problems), problems
    return keyed


# ---------------------------------------------------------------- the same report as the whole read

@pytest.mark.parametrize("batch_rows", [7, 40, 100_000])
def test_a_bad_csv_gets_the_same_problems_and_rows_in_batches(frame, tmp_path, batch_rows) -> None:
    path = _write_csv(_text_frame(frame, BAD_CELLS), tmp_path / "bad.csv", RAGGED_AFTER)
    whole = _whole_file_problems(path)
    assert {p.code for p in whole} >= {"bad_row", "out_of_range"} and len(whole) >= 8
    assert _by_key(_streamed_problems(path, batch_rows)) == _by_key(whole)


@pytest.mark.parametrize("batch_rows", [7, 100_000])
def test_a_bad_parquet_file_gets_the_same_problems_and_rows_in_batches(frame, tmp_path, batch_rows) -> None:
    path = tmp_path / "bad.parquet"
    _text_frame(frame, BAD_CELLS).to_parquet(path, index=False)
    whole = _whole_file_problems(path)
    assert len(whole) >= 6
    assert _by_key(_streamed_problems(path, batch_rows)) == _by_key(whole)


def test_a_missing_column_and_the_column_map_as_in_the_whole_read(frame, tmp_path) -> None:
    path = _write_csv(_text_frame(frame, {}).rename(columns={"asr_confidence": "asr_conf"})
                      .drop(columns=["nlu_confidence"]), tmp_path / "renamed.csv")
    whole = _whole_file_problems(path)
    assert {(p.column, p.code) for p in whole} == {("asr_confidence", "missing_column"),
                                                    ("nlu_confidence", "missing_column")}
    assert _by_key(_streamed_problems(path, 30)) == _by_key(whole)  # once, not once per batch
    mapped = {"asr_conf": "asr_confidence"}
    assert _by_key(_streamed_problems(path, 30, column_map=mapped)) == _by_key(
        _whole_file_problems(path, column_map=mapped))


def test_rows_are_the_spreadsheet_rows_counted_across_batches_and_rejected_lines(frame, tmp_path) -> None:
    path = _write_csv(_text_frame(frame, {}), tmp_path / "ragged.csv", ragged_after=(1, 3))
    stream, batches = _read(path, 10)
    rows = np.concatenate([b.rows for b in batches])
    n = len(frame)
    # the header is row 1; the inserted lines are rows 2 and 5 of the file
    assert rows.tolist() == [r for r in range(2, n + 4) if r not in (2, 5)]
    assert stream.rows_read == n and len(batches) > 5
    [bad] = stream.file_problems()
    assert bad.code == "bad_row" and bad.rows == (2, 5) and bad.count == 2


# ---------------------------------------------------------------- batches put together are the file

@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batches_concatenated_equal_the_whole_read(frame, tmp_path, suffix) -> None:
    path = tmp_path / f"good{suffix}"
    write_traces(frame, path)
    stream, batches = _read(path, 64)
    assert len(batches) > 1
    assert all(not b.checked.problems for b in batches) and stream.file_problems() == []
    streamed = pd.concat([pd.DataFrame(b.checked.columns) for b in batches], ignore_index=True)
    whole = load_traces(path)
    contract = [c for c in CONTRACT_COLUMNS if c in whole.columns]
    pd.testing.assert_frame_equal(streamed[contract], whole[contract])
    assert streamed.columns.tolist() == whole.columns.tolist()
    assert np.concatenate([b.rows for b in batches]).tolist() == list(range(2, len(frame) + 2))
    assert sum(b.raw.num_rows for b in batches) == len(frame) == stream.rows_read
    assert stream.fraction_read == pytest.approx(1.0)
    if suffix == ".parquet":  # typed columns come through typed
        pd.testing.assert_frame_equal(streamed, whole)
    else:  # raw text: an empty cell is missing
        raw = pd.concat([b.raw.to_pandas() for b in batches], ignore_index=True)
        assert raw["asr_text"].isna().sum() == frame["asr_text"].isna().sum()


def test_a_header_only_file_yields_no_rows_and_no_problems(frame, tmp_path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(",".join(frame.columns) + "\n", encoding="utf-8")
    stream, batches = _read(path, 10)
    assert sum(len(b.rows) for b in batches) == 0 == stream.rows_read
    assert not [p for b in batches for p in b.checked.problems] and stream.file_problems() == []


@pytest.mark.parametrize(("content", "name", "code"), [
    (b"", "empty.csv", "empty_file"),
    (b"dialogue_id,turn_index\nd\xff1,0\n", "latin.csv", "encoding"),
    (b"dialogue_id,turn_index\nd1,0\n", "fake.parquet", "not_parquet"),
])
def test_files_that_cannot_be_read_are_trace_errors_as_in_the_whole_read(tmp_path, content, name, code) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TraceError) as streamed:
        _read(path, 10)
    with pytest.raises(TraceError) as whole:
        load_traces(path)
    assert [p.code for p in streamed.value.problems] == [code] == [p.code for p in whole.value.problems]
    assert streamed.value.problems[0].reason == whole.value.problems[0].reason


def test_a_semicolon_file_is_named_as_such(tmp_path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("dialogue_id;turn_index\nd1;0\n", encoding="utf-8")
    stream, _ = _read(path, 10)
    assert "separated by semicolons" in stream.file_problems()[0].reason


def test_merge_problems_adds_up_counts_and_keeps_rows_in_order() -> None:
    a = Problem("asr_confidence", "not a number", "not_number", rows=(2, 3), count=2, examples=("x", "y"))
    b = Problem("asr_confidence", "not a number", "not_number", rows=(9,), count=1, examples=("y", "z", "w"))
    other = Problem("nlu_confidence", "not a number", "not_number", rows=(4,), count=1)
    merged = merge_problems([a, other, b])
    assert merged == [Problem("asr_confidence", "not a number", "not_number", rows=(2, 3, 9), count=3,
                              examples=("x", "y", "z")), other]


# ---------------------------------------------------------------- property

_cells = st.sampled_from(["", "0.5", "x", "2", "-1", "true", "maybe", "asr", "ASR", "NA", "1e400", " 0.1 "])
_columns = st.sampled_from(["turn_index", "wake_confidence", "asr_confidence", "barge_in", "failure_point",
                            "timestamp", "dialogue_id", "asr_nbest_margin", "device_type"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.dictionaries(st.tuples(st.integers(0, 39), _columns), _cells, max_size=12),
       ragged=st.lists(st.integers(1, 40), max_size=3, unique=True),
       batch_rows=st.integers(1, 45), parquet=st.booleans())
def test_any_batch_size_reports_what_the_whole_read_reports(frame, tmp_path, bad, ragged, batch_rows,
                                                            parquet) -> None:
    text = _text_frame(frame.head(40), bad)
    if parquet:
        path = tmp_path / "p.parquet"
        text.to_parquet(path, index=False)
    else:
        path = _write_csv(text, tmp_path / "p.csv", tuple(ragged))
    try:
        load_traces(path)
    except TraceError:
        whole = _whole_file_problems(path)
    else:
        whole = []
    assert _by_key(_streamed_problems(path, batch_rows)) == _by_key(whole)
