"""Tests for fpi.scoring.frame: uploaded bytes to scored turns, and the column-mapping helpers."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fpi.data.schema import LABELS, PREDICTED_COLUMN, PREDICTION_COLUMNS, PROBABILITY_COLUMNS
from fpi.data.traces import load_traces
from fpi.data.write import write_traces
from fpi.errors import TraceError
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.scoring.frame import content_hash, file_columns, load_and_score, mapping_suggestions, score_frame
from fpi.simulator.simulate import simulate

QUICK = TrainConfig(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5, seed=0, num_threads=1,
                    text_models=False, cv_max_turns=100)


@pytest.fixture(scope="module")
def model() -> FailurePointModel:
    return FailurePointModel(config=QUICK).fit(simulate(400, seed=7))


@pytest.fixture(scope="module")
def traces() -> pd.DataFrame:
    return simulate(120, seed=31)


@pytest.fixture(scope="module")
def csv_bytes(traces: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("frame") / "traces.csv"
    write_traces(traces, path)
    return path.read_bytes()


def _problems(data: bytes, **kwargs) -> TraceError:
    with pytest.raises(TraceError) as info:
        load_traces(data, name="t.csv", **kwargs)
    return info.value


# ---------------------------------------------------------------- scoring

def test_score_frame_appends_the_model_probabilities_and_their_argmax(model, traces) -> None:
    scored = score_frame(traces, model=model, source="sim", digest="ab" * 32)
    proba = model.predict_proba(traces)
    assert scored.frame.columns.tolist() == [*traces.columns, *PREDICTION_COLUMNS]
    np.testing.assert_allclose(scored.frame[list(PROBABILITY_COLUMNS)].to_numpy(), proba)
    assert scored.frame[PREDICTED_COLUMN].tolist() == [LABELS[i] for i in proba.argmax(axis=1)]
    assert len(scored.features) == len(traces) and (scored.features.index == scored.frame.index).all()
    assert scored.summary.turns == len(traces)
    assert scored.key == f"{'ab' * 8}-{model.version}" and scored.model_version == model.version
    assert set(scored.seconds) == {"features", "score", "summary"}


def test_scoring_again_replaces_the_predictions_and_raw_gives_the_turns_back(model, traces) -> None:
    once = score_frame(traces, model=model, source="sim", digest="0" * 64)
    pd.testing.assert_frame_equal(once.raw, traces)
    stale = once.frame.assign(**{PREDICTED_COLUMN: "nlu", "p_nlu": 2.0})
    again = score_frame(stale, model=model, source="sim", digest="0" * 64)
    pd.testing.assert_frame_equal(again.frame, once.frame)  # no duplicate or stale prediction columns


def test_load_and_score_reads_checks_and_scores_the_bytes(model, traces, csv_bytes) -> None:
    steps: list[tuple[str, float]] = []
    scored = load_and_score(csv_bytes, model=model, name="traces.csv", progress=lambda m, f: steps.append((m, f)))
    pd.testing.assert_frame_equal(scored.raw, load_traces(csv_bytes))
    assert scored.source == "traces.csv" and scored.content_hash == content_hash(csv_bytes)
    assert set(scored.seconds) == {"read", "features", "score", "summary"}
    fractions = [f for _, f in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


def test_load_and_score_applies_the_column_map_and_refuses_a_bad_file(model, traces) -> None:
    renamed = traces.rename(columns={"dialogue_id": "session"})
    data = renamed.to_csv(index=False).encode("utf-8")
    with pytest.raises(TraceError) as info:
        load_and_score(data, model=model, name="renamed.csv")
    assert [p.column for p in info.value.problems if p.code == "missing_column"] == ["dialogue_id"]
    scored = load_and_score(data, model=model, name="renamed.csv", column_map={"session": "dialogue_id"})
    assert len(scored.frame) == len(traces) and "session" not in scored.frame.columns


def test_content_hash_is_the_sha256_of_the_bytes() -> None:
    assert content_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert content_hash(b"abc") != content_hash(b"abd")


# ---------------------------------------------------------------- column names and mapping

def test_file_columns_reads_only_the_csv_header() -> None:
    assert file_columns(b'\xef\xbb\xbf a ,"b,c",d\r\n1,2,3\n') == ["a", "b,c", "d"]
    assert file_columns(b"only,a,header") == ["only", "a", "header"]
    assert file_columns(b"") == []
    assert file_columns(b"\xff\xfe\x00bad") == []


def test_file_columns_reads_the_parquet_schema(traces) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(traces.head(3), preserve_index=False), sink)
    data = sink.getvalue()
    assert file_columns(data) == traces.columns.tolist()
    assert file_columns(data[:4] + b"not really parquet") == []


def test_mapping_suggestions_offer_the_look_alike_spare_columns(traces) -> None:
    renamed = traces.rename(columns={"dialogue_id": "Dialogue ID", "asr_confidence": "asr_conf"})
    renamed["unrelated"] = "x"
    data = renamed.to_csv(index=False).encode("utf-8")
    error = _problems(data)
    suggested = mapping_suggestions(error, file_columns(data))
    assert suggested == {"dialogue_id": "Dialogue ID", "asr_confidence": "asr_conf"}
    assert load_traces(data, column_map={v: k for k, v in suggested.items()}).shape[0] == len(traces)


def test_mapping_suggestions_are_empty_unless_a_mapping_can_help(traces) -> None:
    dropped = traces.drop(columns=["wake_confidence"])
    data = dropped.to_csv(index=False).encode("utf-8")
    error = _problems(data)
    assert mapping_suggestions(error, file_columns(data)) == {}  # every column is the contract's: nothing to map
    spare = dropped.assign(zzz=1).to_csv(index=False).encode("utf-8")
    error = _problems(spare)
    assert mapping_suggestions(error, file_columns(spare)) == {}  # nothing looks like it
    assert mapping_suggestions(error, file_columns(spare), keep_unmatched=True) == {"wake_confidence": None}
    bad_value = traces.head(3).assign(asr_confidence=["x", "0.5", "0.5"], spare_column="y")
    data = bad_value.to_csv(index=False).encode("utf-8")
    assert mapping_suggestions(_problems(data), file_columns(data), keep_unmatched=True) == {}  # none missing


def test_a_spare_column_is_suggested_for_one_missing_column_only(traces) -> None:
    data = traces.drop(columns=["asr_confidence", "nlu_confidence"]).assign(confidence=0.5)
    raw = data.to_csv(index=False).encode("utf-8")
    suggested = mapping_suggestions(_problems(raw), file_columns(raw), keep_unmatched=True)
    assert sorted(suggested) == ["asr_confidence", "nlu_confidence"]
    assert sorted(suggested.values(), key=str) == [None, "confidence"]  # taken once, not twice
