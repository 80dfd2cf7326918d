"""Tests for fpi.data.traces: the trace contract enforced on files and frames."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpi.data import write
from fpi.cli import main
from fpi.errors import Problem, TraceError
from fpi.data.schema import CONTRACT_COLUMNS, LABELS, REQUIRED_COLUMNS
from fpi.data.check import validate_traces
from fpi.data.columns import stage_signal_columns
from fpi.data.summary import TraceSummary, dataset_fingerprint, summarize_traces
from fpi.data.traces import load_traces
from fpi.data.write import write_traces

HEADER = [*CONTRACT_COLUMNS, "asr_nbest_margin", "cohort"]

# Eight turns, deliberately out of order; row i of this list is spreadsheet row i + 2.
GOOD_ROWS: list[dict[str, str]] = [
    dict(dialogue_id="d2", turn_index="1", timestamp="2024-05-01T10:00:05Z", device_type="tv", locale="en-US",
         wake_confidence="0.91", asr_confidence="0.8", asr_text="NA", nlu_domain="music", nlu_intent="PlayMusic",
         nlu_confidence="0.7", er_entity="", er_confidence="", result_confidence="0.6",
         response_text='Playing "jazz", enjoy', barge_in="false", failure_point="correct",
         asr_nbest_margin="0.12", cohort="beta"),
    dict(dialogue_id="d1", turn_index="0", timestamp="2024-05-01T09:00:00+02:00", device_type="speaker",
         locale="en-GB", wake_confidence="0.95", asr_confidence="", asr_text="null", nlu_domain="weather",
         nlu_intent="GetWeather", nlu_confidence="0.9", er_entity="London", er_confidence="0.8",
         result_confidence="0.7", response_text="Sunny.", barge_in="TRUE", failure_point="ASR ",
         asr_nbest_margin="0.3", cohort="control"),
    dict(dialogue_id="d2", turn_index="0", timestamp="2024-05-01 10:00:00", device_type="tv", locale="en-US",
         wake_confidence="1", asr_confidence="0", asr_text="play jazz", nlu_domain="music", nlu_intent="PlayMusic",
         nlu_confidence="0.5", er_entity="jazz", er_confidence="0.1", result_confidence="0.6",
         response_text="", barge_in="", failure_point="", asr_nbest_margin="", cohort="beta"),
    dict(dialogue_id="d1", turn_index="1", timestamp="", device_type="speaker", locale="en-GB",
         wake_confidence="0.99", asr_confidence="0.93", asr_text="and tomorrow\nplease", nlu_domain="weather",
         nlu_intent="GetWeather", nlu_confidence="0.88", er_entity="London", er_confidence="0.75",
         result_confidence="0.8", response_text="Rain, sadly.", barge_in="0", failure_point="result",
         asr_nbest_margin="1e-3", cohort="control"),
    dict(dialogue_id="d3", turn_index="0", timestamp="2024-05-02T08:00:00Z", device_type="car", locale="en-IN",
         wake_confidence="0.6", asr_confidence="0.4", asr_text="call mum", nlu_domain="phone", nlu_intent="Call",
         nlu_confidence="0.3", er_entity="Mum", er_confidence="0.2", result_confidence="0.1",
         response_text="Calling.", barge_in="yes", failure_point="nlu", asr_nbest_margin="0.05", cohort="beta"),
    dict(dialogue_id="d3", turn_index="2", timestamp="2024-05-02T08:00:09Z", device_type="car", locale="en-IN",
         wake_confidence="0.7", asr_confidence="0.66", asr_text="no", nlu_domain="phone", nlu_intent="Cancel",
         nlu_confidence="0.9", er_entity="", er_confidence="", result_confidence="0.9",
         response_text="OK.", barge_in="no", failure_point="false_wake", asr_nbest_margin="0.5", cohort="beta"),
    dict(dialogue_id="d3", turn_index="1", timestamp="2024-05-02T08:00:04Z", device_type="car", locale="en-IN",
         wake_confidence="0.8", asr_confidence="0.5", asr_text="call mom", nlu_domain="phone", nlu_intent="Call",
         nlu_confidence="0.6", er_entity="Mom", er_confidence="0.4", result_confidence="0.5",
         response_text="Calling Mom.", barge_in="1", failure_point="er", asr_nbest_margin="0.2", cohort="control"),
    dict(dialogue_id="d4", turn_index="0", timestamp="2024-05-03T12:00:00Z", device_type="phone", locale="en-US",
         wake_confidence="0.97", asr_confidence="0.97", asr_text="what time is it", nlu_domain="clock",
         nlu_intent="GetTime", nlu_confidence="0.97", er_entity="", er_confidence="", result_confidence="0.97",
         response_text="It's noon.", barge_in="false", failure_point="correct", asr_nbest_margin="0.9",
         cohort="beta"),
]


def to_csv(rows: list[dict[str, str]], header: list[str] | None = None) -> bytes:
    header = header or list(rows[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[row.get(name, "") for name in header] for row in rows])
    return out.getvalue().encode("utf-8")


def rows_with(index: int, **values: str) -> list[dict[str, str]]:
    rows = [dict(r) for r in GOOD_ROWS]
    rows[index].update(values)
    return rows


def problems_of(source: bytes, **kwargs: object) -> list[Problem]:
    with pytest.raises(TraceError) as info:
        load_traces(source, name="traces.csv", **kwargs)
    return list(info.value.problems)


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    path = tmp_path / "good.csv"
    path.write_bytes(to_csv(GOOD_ROWS, HEADER))
    return path


# ------------------------------------------------------------------ good input

def test_good_file_is_typed_and_sorted(good_csv: Path) -> None:
    frame = load_traces(good_csv)
    assert list(frame.columns) == HEADER
    assert list(zip(frame["dialogue_id"], frame["turn_index"])) == [
        ("d1", 0), ("d1", 1), ("d2", 0), ("d2", 1), ("d3", 0), ("d3", 1), ("d3", 2), ("d4", 0)]
    assert isinstance(frame.index, pd.RangeIndex)
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert dtypes["dialogue_id"] == "str" and dtypes["turn_index"] == "int64"
    assert all(dtypes[c] == "float64" for c in REQUIRED_COLUMNS if c.endswith("_confidence"))
    assert dtypes["barge_in"] == "boolean" and dtypes["failure_point"] == "str"
    assert str(frame["timestamp"].dt.tz) == "UTC"
    # labels are normalised; booleans read from every spelling
    assert frame.loc[0, "failure_point"] == "asr"
    assert frame["barge_in"].tolist() == [True, False, pd.NA, False, True, True, False, False]
    # naive times are UTC; offsets are converted
    assert frame.loc[0, "timestamp"] == pd.Timestamp("2024-05-01T07:00:00Z")
    assert frame.loc[2, "timestamp"] == pd.Timestamp("2024-05-01T10:00:00Z")


def test_na_text_survives_and_empty_confidence_is_nan(good_csv: Path) -> None:
    frame = load_traces(good_csv).set_index(["dialogue_id", "turn_index"])
    assert frame.loc[("d2", 1), "asr_text"] == "NA"
    assert frame.loc[("d1", 0), "asr_text"] == "null"
    assert frame.loc[("d1", 1), "asr_text"] == "and tomorrow\nplease"
    assert math.isnan(frame.loc[("d1", 0), "asr_confidence"])  # empty is missing, never zero
    assert frame.loc[("d2", 0), "asr_confidence"] == 0.0
    assert pd.isna(frame.loc[("d2", 0), "response_text"]) and pd.isna(frame.loc[("d2", 0), "failure_point"])


def test_extras_pass_through_and_stage_signals_are_detected(good_csv: Path) -> None:
    frame = load_traces(good_csv)
    assert frame["asr_nbest_margin"].dtype == "float64"
    assert frame["cohort"].dtype == "str"
    assert frame.set_index(["dialogue_id", "turn_index"]).loc[("d1", 1), "asr_nbest_margin"] == 0.001
    assert stage_signal_columns(frame) == ["asr_nbest_margin"]


def test_bom_is_accepted() -> None:
    frame = load_traces(b"\xef\xbb\xbf" + to_csv(GOOD_ROWS, HEADER))
    assert frame.columns[0] == "dialogue_id" and len(frame) == len(GOOD_ROWS)


def test_optional_columns_may_be_absent() -> None:
    frame = load_traces(to_csv(GOOD_ROWS, list(REQUIRED_COLUMNS)))
    assert list(frame.columns) == list(REQUIRED_COLUMNS)


def test_sources_bytes_file_like_and_parquet_magic(good_csv: Path, tmp_path: Path) -> None:
    expected = load_traces(good_csv)

    class Upload(io.BytesIO):  # what Streamlit's UploadedFile looks like
        name = "upload.csv"

    upload = Upload(good_csv.read_bytes())
    upload.read()  # the cursor position must not matter
    pd.testing.assert_frame_equal(load_traces(upload), expected)
    write_traces(expected, tmp_path / "t.parquet")
    parquet_bytes = (tmp_path / "t.parquet").read_bytes()
    pd.testing.assert_frame_equal(load_traces(parquet_bytes), expected)  # found by its magic bytes
    pd.testing.assert_frame_equal(load_traces(io.BytesIO(parquet_bytes), name="x.csv"), expected)


def test_parquet_and_csv_round_trip(good_csv: Path, tmp_path: Path) -> None:
    frame = load_traces(good_csv)
    for name in ("again.csv", "again.parquet"):
        write_traces(frame, tmp_path / name)
        pd.testing.assert_frame_equal(load_traces(tmp_path / name), frame)


def test_rows_in_any_order_come_out_sorted_with_the_same_fingerprint() -> None:
    frame = load_traces(to_csv(GOOD_ROWS, HEADER))
    reordered = load_traces(to_csv(GOOD_ROWS[::-1], HEADER))
    pd.testing.assert_frame_equal(frame, reordered)
    assert dataset_fingerprint(frame) == dataset_fingerprint(reordered)
    assert dataset_fingerprint(frame) == dataset_fingerprint(frame.sample(frac=1, random_state=1))
    changed = frame.assign(asr_confidence=frame["asr_confidence"].fillna(0.5))
    assert dataset_fingerprint(changed) != dataset_fingerprint(frame)


def test_column_map_renames_before_validation() -> None:
    header = ["ASR Confidence" if h == "asr_confidence" else h for h in HEADER]
    rows = [{("ASR Confidence" if k == "asr_confidence" else k): v for k, v in r.items()} for r in GOOD_ROWS]
    frame = load_traces(to_csv(rows, header), column_map={"ASR Confidence": "asr_confidence"})
    assert "asr_confidence" in frame and "ASR Confidence" not in frame


@pytest.mark.parametrize("spelling", ["ASR Confidence", "asr-confidence", "asr_conf", " Asr_Confidence"])
def test_near_miss_column_names_are_suggested_not_applied(spelling: str) -> None:
    header = [spelling if h == "asr_confidence" else h for h in HEADER]
    rows = [{(spelling if k == "asr_confidence" else k): v for k, v in r.items()} for r in GOOD_ROWS]
    [problem] = problems_of(to_csv(rows, header))
    assert (problem.code, problem.column) == ("missing_column", "asr_confidence")
    assert f"Did you mean '{spelling}'" in problem.hint and "--map" in problem.hint


def test_validate_traces_accepts_typed_frames() -> None:
    frame = pd.DataFrame({
        "dialogue_id": ["b", "a"], "turn_index": [0, 0], "wake_confidence": [0.9, 1.0],
        "asr_confidence": [None, 0.5], "nlu_confidence": [0.1, 0.2], "er_confidence": [np.nan, 0.3],
        "result_confidence": [0.4, 0.5], "barge_in": [True, None],
        "timestamp": pd.to_datetime(["2024-01-01 00:00", "2024-01-02 00:00"]), "failure_point": ["NLU", None],
        "result_latency_ms": [120, 80],
    })
    out = validate_traces(frame)
    assert out["dialogue_id"].tolist() == ["a", "b"]
    assert out["barge_in"].dtype == "boolean" and out["failure_point"].tolist()[1] == "nlu"
    assert str(out["timestamp"].dt.tz) == "UTC"
    assert out["result_latency_ms"].tolist() == [80, 120]  # extras of a typed frame are left alone
    assert list(out.columns[:2]) == ["dialogue_id", "turn_index"]  # contract columns first
    with pytest.raises(TraceError, match="row 3"):
        validate_traces(frame.assign(wake_confidence=[0.5, 7.0]), source="mine")


def test_summary(good_csv: Path) -> None:
    summary = summarize_traces(load_traces(good_csv))
    assert isinstance(summary, TraceSummary)
    assert (summary.turns, summary.dialogues, summary.labelled) == (8, 4, 7)
    assert summary.label_counts == {"correct": 2, "false_wake": 1, "asr": 1, "nlu": 1, "er": 1, "result": 1}
    assert summary.devices["car"] == 3 and set(summary.locales) == {"en-US", "en-GB", "en-IN"}
    assert summary.date_range == (pd.Timestamp("2024-05-01T07:00Z"), pd.Timestamp("2024-05-03T12:00Z"))
    assert summary.stage_signals == ("asr_nbest_margin",) and summary.other_extras == ("cohort",)
    text = summary.text()
    assert "8 turns in 4 dialogues" in text and "asr_nbest_margin" in text and "cohort" in text


def test_write_is_atomic(good_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = load_traces(good_csv)
    target = tmp_path / "out.csv"
    write_traces(frame, target)
    before = target.read_bytes()

    def crash(table: object, sink: io.RawIOBase, *args: object, **kwargs: object) -> None:
        sink.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(write.pv, "write_csv", crash)
    with pytest.raises(KeyboardInterrupt):
        write_traces(frame.head(2), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.csv", "out.csv"]  # no temp file left


def test_csv_format_is_plain(good_csv: Path, tmp_path: Path) -> None:
    write_traces(load_traces(good_csv), tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text(encoding="utf-8")
    header, first = text.splitlines()[:2]
    assert header == ",".join(HEADER)
    assert "2024-05-01T07:00:00Z" in first and ",true," in first and ",0.95," in first


# ------------------------------------------------------------------ bad input

def _ragged(_: object) -> bytes:
    return to_csv(GOOD_ROWS, HEADER) + b"d9,0,0.5\n"


def _drop(column: str) -> Callable[[object], bytes]:
    return lambda _: to_csv(GOOD_ROWS, [h for h in HEADER if h != column])


BAD_INPUTS = [
    # id, file bytes, kwargs, code, column, spreadsheet rows, text in the report
    ("missing_column", _drop("nlu_confidence")(None), {}, "missing_column", "nlu_confidence", (), "missing"),
    ("not_a_number", to_csv(rows_with(3, asr_confidence="high"), HEADER), {}, "not_a_number", "asr_confidence",
     (5,), "'high'"),
    ("not_a_number_nan_text", to_csv(rows_with(0, er_confidence="NaN"), HEADER), {}, "not_a_number",
     "er_confidence", (2,), "'NaN'"),
    ("out_of_range", to_csv(rows_with(1, wake_confidence="1.5"), HEADER), {}, "out_of_range", "wake_confidence",
     (3,), "between 0 and 1"),
    ("negative_turn_index", to_csv(rows_with(4, turn_index="-1"), HEADER), {}, "not_an_integer", "turn_index",
     (6,), "whole number"),
    ("fractional_turn_index", to_csv(rows_with(4, turn_index="1.5"), HEADER), {}, "not_an_integer",
     "turn_index", (6,), "'1.5'"),
    ("unknown_label", to_csv(rows_with(2, failure_point="tts"), HEADER), {}, "unknown_label", "failure_point",
     (4,), "false_wake"),
    ("duplicate_turn", to_csv(rows_with(6, turn_index="2"), HEADER), {}, "duplicate_turn",
     "dialogue_id, turn_index", (7, 8), "d3 / 2"),
    ("bad_boolean", to_csv(rows_with(7, barge_in="maybe"), HEADER), {}, "bad_boolean", "barge_in", (9,),
     "true/false"),
    ("bad_timestamp", to_csv(rows_with(0, timestamp="yesterday"), HEADER), {}, "bad_timestamp", "timestamp",
     (2,), "ISO-8601"),
    ("empty_dialogue_id", to_csv(rows_with(5, dialogue_id=""), HEADER), {}, "missing_value", "dialogue_id",
     (7,), "can't be empty"),
    ("empty_turn_index", to_csv(rows_with(5, turn_index=" "), HEADER), {}, "missing_value", "turn_index",
     (7,), "can't be empty"),
    ("empty_file", b"", {}, "empty_file", None, (), "empty"),
    ("header_only", to_csv(GOOD_ROWS, HEADER).split(b"\n")[0] + b"\n", {}, "empty_file", None, (), "no rows"),
    ("json_lines", b'{"dialogue_id": "d1"}\n{"dialogue_id": "d2"}\n', {}, "not_csv", None, (), "JSON"),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", {}, "not_csv", None, (), "PDF"),
    ("binary_junk", bytes(range(256)) * 4, {}, "not_csv", None, (), "binary"),
    ("json", b'[{"dialogue_id": "d1", "turn_index": 0}]', {}, "not_csv", None, (), "JSON"),
    ("ragged_row", _ragged(None), {}, "bad_row", None, (10,), "number of fields"),
    ("latin1", to_csv(rows_with(3, asr_text="caf\u00e9"), HEADER).decode().encode("latin-1"), {}, "encoding",
     None, (), "UTF-8"),
    ("latin1_in_a_ragged_row", to_csv(GOOD_ROWS, HEADER) + "caf\u00e9,1\n".encode("latin-1"), {}, "encoding",
     None, (), "line 11"),
    ("utf16", to_csv(GOOD_ROWS, HEADER).decode().encode("utf-16"), {}, "encoding", None, (), "UTF-16"),
    ("map_unknown_source", to_csv(GOOD_ROWS, HEADER), {"column_map": {"asr_conf": "asr_confidence"}},
     "bad_mapping", "asr_conf", (), "not in the file"),
    ("map_two_onto_one", _drop("asr_confidence")(None),
     {"column_map": {"asr_text": "asr_confidence", "cohort": "asr_confidence"}}, "bad_mapping",
     "asr_confidence", (), "two columns"),
    ("map_collision", to_csv(GOOD_ROWS, HEADER), {"column_map": {"asr_nbest_margin": "asr_confidence"}},
     "bad_mapping", "asr_confidence", (), "collides"),
]


@pytest.mark.parametrize(("source", "kwargs", "code", "column", "rows", "text"),
                         [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_reported(source: bytes, kwargs: dict, code: str, column: str | None,
                               rows: tuple[int, ...], text: str) -> None:
    with pytest.raises(TraceError) as info:
        load_traces(source, name="traces.csv", **kwargs)
    matching = [p for p in info.value.problems if p.code == code]
    assert matching, info.value.report()
    problem = matching[0]
    assert problem.column == column
    assert problem.rows[: len(rows)] == rows and problem.count >= len(rows)
    report = info.value.report()
    assert text in report and "traces.csv" in report and "nothing was loaded" in report
    if column:
        assert f"column '{column}'" in report
    if rows:
        assert f"{'row' if len(rows) == 1 else 'rows'} {', '.join(map(str, rows))}" in report


def test_out_of_range_on_row_7_and_missing_column_are_reported_together() -> None:
    rows = rows_with(5, asr_confidence="1.7")  # list position 5 is spreadsheet row 7
    source = to_csv(rows, [h for h in HEADER if h != "nlu_confidence"])
    problems = {p.code: p for p in problems_of(source)}
    assert set(problems) == {"out_of_range", "missing_column"}
    assert problems["out_of_range"].column == "asr_confidence" and problems["out_of_range"].rows == (7,)
    assert problems["out_of_range"].examples == ("1.7",)
    assert problems["missing_column"].column == "nlu_confidence"


def test_web_records_show_the_value_found_and_web_advice_only() -> None:
    rows = rows_with(5, asr_confidence="1.7")
    header = [h if h != "nlu_confidence" else "NLU conf" for h in HEADER]
    rows = [{("NLU conf" if k == "nlu_confidence" else k): v for k, v in r.items()} for r in rows]
    with pytest.raises(TraceError) as info:
        load_traces(to_csv(rows, header), name="traces.csv")
    web = {r["code"]: r for r in info.value.web_records()}
    assert web["out_of_range"]["found"] == "'1.7'" and web["out_of_range"]["rows"] == "7"
    assert web["out_of_range"]["reason"].startswith("Expected a number between 0 and 1")
    missing = web["missing_column"]
    assert missing["column"] == "nlu_confidence"
    assert "--map" not in missing["reason"] and "column_map" not in missing["reason"]
    assert "'NLU conf'" in missing["reason"] and "Map your columns" in missing["reason"]
    cli = {r["code"]: r for r in info.value.to_records()}
    assert "--map" in cli["missing_column"]["reason"]  # the command line keeps its own advice


def test_many_problems_are_all_collected_and_counted() -> None:
    rows = [dict(r, wake_confidence="2") for r in GOOD_ROWS]
    rows[0]["failure_point"] = "bogus"
    problems = {p.code: p for p in problems_of(to_csv(rows, HEADER))}
    assert problems["out_of_range"].count == len(GOOD_ROWS)
    assert "and 3 more" in problems["out_of_range"].describe()
    assert "unknown_label" in problems


def test_unreadable_path_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        load_traces(tmp_path / "nope.csv")


# ------------------------------------------------------------------ properties

# CSV's hard cases (separators, quotes, line breaks) often, any other character now and then; NUL is
# excluded because a NUL byte is how binary files are recognised.
_text = st.text(st.one_of(st.sampled_from(list(',"\n\r\' ;')),
                          st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))), max_size=12)
_maybe_conf = st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0))
_row = st.fixed_dictionaries({
    "dialogue_id": _text.filter(lambda s: s.strip() != ""),
    "turn_index": st.integers(min_value=0, max_value=2**40),
    "timestamp": st.one_of(st.none(), st.datetimes(min_value=pd.Timestamp("1900-01-01").to_pydatetime(),
                                                   max_value=pd.Timestamp("2200-01-01").to_pydatetime())),
    "device_type": st.one_of(st.none(), _text), "response_text": st.one_of(st.none(), _text),
    "wake_confidence": _maybe_conf, "asr_confidence": _maybe_conf, "asr_text": st.one_of(st.none(), _text),
    "nlu_confidence": _maybe_conf, "er_confidence": _maybe_conf, "result_confidence": _maybe_conf,
    "barge_in": st.one_of(st.none(), st.booleans()),
    "failure_point": st.one_of(st.none(), st.sampled_from(LABELS)),
    "result_latency_ms": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    "cohort": _text.map(lambda s: "c" + s),
})
_frames = st.lists(_row, min_size=1, max_size=15,
                   unique_by=lambda r: (r["dialogue_id"], r["turn_index"])).map(pd.DataFrame)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_frames, suffix=st.sampled_from([".csv", ".parquet"]))
def test_valid_frames_survive_a_round_trip(raw: pd.DataFrame, suffix: str, tmp_path: Path) -> None:
    raw = raw.assign(cohort=raw["cohort"].astype("str"),
                     result_latency_ms=raw["result_latency_ms"].astype("float64"))
    frame = validate_traces(raw)
    path = tmp_path / f"t{suffix}"
    write_traces(frame, path)
    loaded = load_traces(path)
    pd.testing.assert_frame_equal(loaded, frame)
    assert dataset_fingerprint(loaded) == dataset_fingerprint(frame)


_cells = st.sampled_from(["", "0.5", "2", "-1", "x", "true", "maybe", "asr", "ASR", '"', '"a,b"', "1e400",
                          "NA", "2024-01-01", "nan", " 1 ", "d1", "0"])
_csvish = st.builds(
    lambda header, rows, sep: (",".join(header) + "\n" + "\n".join(sep.join(r) for r in rows)).encode("utf-8"),
    st.lists(st.sampled_from([*CONTRACT_COLUMNS, "asr_x", "junk", ""]), min_size=1, max_size=20),
    st.lists(st.lists(_cells, max_size=20), max_size=6),
    st.sampled_from([",", ";"]),
)


@settings(max_examples=100, deadline=None)
@given(data=st.one_of(st.binary(max_size=600), st.text(max_size=300).map(str.encode), _csvish))
def test_anything_yields_a_frame_or_a_trace_error(data: bytes) -> None:
    try:
        frame = load_traces(data)
    except TraceError as exc:
        assert exc.problems and exc.report()
    else:
        assert isinstance(frame, pd.DataFrame) and len(frame)


# ------------------------------------------------------------------ CLI

def test_cli_validate_good_file(good_csv: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(good_csv)])
    assert result.exit_code == 0, result.output
    assert "8 turns in 4 dialogues" in result.output


def test_cli_validate_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(to_csv(rows_with(5, asr_confidence="1.7"), [h for h in HEADER if h != "nlu_confidence"]))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert "column 'asr_confidence', row 7" in result.output and "column 'nlu_confidence'" in result.output


def test_cli_validate_map(tmp_path: Path) -> None:
    path = tmp_path / "renamed.csv"
    header = ["asr_conf" if h == "asr_confidence" else h for h in HEADER]
    rows = [{("asr_conf" if k == "asr_confidence" else k): v for k, v in r.items()} for r in GOOD_ROWS]
    path.write_bytes(to_csv(rows, header))
    assert CliRunner().invoke(main, ["validate", str(path)]).exit_code == 1
    result = CliRunner().invoke(main, ["validate", str(path), "--map", "asr_conf=asr_confidence"])
    assert result.exit_code == 0, result.output


def test_text_extras_that_look_numeric_pass_through_unchanged() -> None:
    header = "dialogue_id,turn_index,wake_confidence,asr_confidence,nlu_confidence,er_confidence,result_confidence"
    data = (f"{header},app_version,asr_nbest_margin\n"
            "d1,0,0.9,0.9,0.9,0.9,0.9,4.10,0.25\n"
            "d1,1,0.9,0.9,0.9,0.9,0.9,007,0.5\n").encode()
    frame = load_traces(data)
    assert frame["app_version"].tolist() == ["4.10", "007"]
    assert frame["asr_nbest_margin"].dtype == "float64"
