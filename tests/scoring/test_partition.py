"""Tests for fpi.scoring.partition: a trace file split into buckets of whole dialogues, and a bucket scored."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fpi.data.predictions import PREDICTION_FIELDS
from fpi.data.schema import KEY_COLUMNS, LABELS, PREDICTED_COLUMN, PREDICTION_COLUMNS, PROBABILITY_COLUMNS
from fpi.data.traces import load_traces
from fpi.data.write import write_traces
from fpi.errors import TraceError
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.scoring.partition import ROW_COLUMN, bucket_of, duplicate_turns, partition_traces, read_bucket, score_bucket
from fpi.simulator.simulate import simulate

QUICK = TrainConfig(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5, seed=0, num_threads=1,
                    text_models=False, cv_max_turns=100)
KEYS = list(KEY_COLUMNS)


@pytest.fixture(scope="module")
def shuffled() -> pd.DataFrame:
    """~560 turns of 200 dialogues in random row order: a dialogue's turns are all over the file."""
    return simulate(200, seed=51).sample(frac=1.0, random_state=4).reset_index(drop=True)


@pytest.fixture(scope="module", params=["csv", "parquet"])
def source(request, shuffled, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("partition") / f"shuffled.{request.param}"
    write_traces(shuffled, path)
    return path


def _all_buckets(part) -> list[pd.DataFrame]:
    return [read_bucket(part, i)[0] for i in range(len(part.buckets))]


def test_every_turn_lands_in_exactly_one_bucket_with_its_whole_dialogue(source, shuffled, tmp_path) -> None:
    part = partition_traces(source, tmp_path / "b", chunk_rows=60, buckets=7)
    assert part.turns == len(shuffled) and 1 < len(part.buckets) <= 7
    frames = _all_buckets(part)
    together = pd.concat(frames, ignore_index=True)
    assert len(together) == len(shuffled) and not together.duplicated(KEYS).any()
    ids_per_bucket = [set(f["dialogue_id"]) for f in frames]
    assert sum(len(ids) for ids in ids_per_bucket) == shuffled["dialogue_id"].nunique()  # no dialogue split
    for path, frame in zip(part.buckets, frames):  # the bucket is the stable hash of the dialogue id
        index = int(path.stem.split("-")[1])
        assert (bucket_of(frame["dialogue_id"], 7) == index).all()
    whole = load_traces(source)
    back = together.sort_values(KEYS, ignore_index=True)
    pd.testing.assert_frame_equal(back[whole.columns], whole, check_dtype=False)


def test_a_bucket_reads_back_sorted_with_the_row_of_each_turn(source, shuffled, tmp_path) -> None:
    part = partition_traces(source, tmp_path / "b", chunk_rows=100, buckets=3)
    frame, table = read_bucket(part, 0)
    assert frame.equals(frame.sort_values(KEYS)) and frame.index.is_monotonic_increasing
    rows = frame[ROW_COLUMN].to_numpy() - 2  # spreadsheet row -> row of the file's frame
    pd.testing.assert_series_equal(shuffled["dialogue_id"].iloc[rows].reset_index(drop=True),
                                   frame["dialogue_id"], check_names=False, check_dtype=False)
    assert (shuffled["turn_index"].iloc[rows].to_numpy() == frame["turn_index"].to_numpy()).all()
    assert ROW_COLUMN not in table.column_names and table.num_rows == len(frame)
    assert list(part.columns) == table.column_names
    assert frame["asr_nbest_margin"].dtype == "float64"  # a stage signal read as text comes out a number


def test_the_number_of_buckets_follows_chunk_rows(source, shuffled, tmp_path) -> None:
    few = partition_traces(source, tmp_path / "few", chunk_rows=100_000)
    assert len(few.buckets) == 1
    many = partition_traces(source, tmp_path / "many", chunk_rows=50, min_buckets=1)
    assert len(many.buckets) >= len(shuffled) // 50 // 2  # about chunk_rows turns a bucket (CSV: estimated)
    floor = partition_traces(source, tmp_path / "floor", chunk_rows=100_000, min_buckets=4)
    assert len(floor.buckets) == 4
    with pytest.raises(ValueError, match="chunk_rows"):
        partition_traces(source, tmp_path / "none", chunk_rows=0)


def _with_duplicates(shuffled: pd.DataFrame) -> pd.DataFrame:
    """Two turns repeated at the far end of the file, so the copies are in other batches."""
    copies = shuffled.iloc[[0, 5]]
    return pd.concat([shuffled, copies], ignore_index=True)


def test_duplicate_turns_are_found_across_batches_as_load_traces_finds_them(shuffled, tmp_path) -> None:
    path = tmp_path / "dup.parquet"  # read 50 rows a batch: the copies come batches later
    write_traces(_with_duplicates(shuffled), path)
    with pytest.raises(TraceError) as whole:
        load_traces(path)
    [expected] = whole.value.problems
    part = partition_traces(path, tmp_path / "b", chunk_rows=50, buckets=5)  # only the caller can know
    found = duplicate_turns(part)
    assert found == expected and found.count == 4
    assert set(found.rows) == {2, 7, len(shuffled) + 2, len(shuffled) + 3}
    clean = tmp_path / "clean.parquet"
    write_traces(shuffled, clean)
    assert duplicate_turns(partition_traces(clean, tmp_path / "c", chunk_rows=50, buckets=5)) is None


def test_a_rejected_file_reports_its_duplicates_with_its_other_problems(shuffled, tmp_path) -> None:
    bad = _with_duplicates(shuffled)
    bad.loc[10, "wake_confidence"] = 1.5
    path = tmp_path / "bad.parquet"
    bad.to_parquet(path, index=False)
    with pytest.raises(TraceError) as streamed:
        partition_traces(path, tmp_path / "b", chunk_rows=50)
    with pytest.raises(TraceError) as whole:
        load_traces(path)
    assert {p.code for p in streamed.value.problems} == {"duplicate_turn", "out_of_range"}
    assert sorted(streamed.value.problems, key=lambda p: p.code) == sorted(whole.value.problems,
                                                                         key=lambda p: p.code)


def test_score_bucket_appends_the_prediction_columns(shuffled, tmp_path) -> None:
    model = FailurePointModel(config=QUICK).fit(simulate(400, seed=7))
    path = tmp_path / "t.parquet"
    write_traces(shuffled, path)
    part = partition_traces(path, tmp_path / "b", chunk_rows=100, buckets=3)
    whole = load_traces(path)
    in_memory = pd.DataFrame(model.predict_proba(whole), columns=list(PROBABILITY_COLUMNS))
    in_memory[KEYS] = whole[KEYS]
    for i in range(len(part.buckets)):
        frame, table = read_bucket(part, i)
        scored = score_bucket(model, part, frame, table)
        assert scored.column_names == [*table.column_names, *PREDICTION_COLUMNS]
        assert list(scored.schema)[-len(PREDICTION_FIELDS):] == list(PREDICTION_FIELDS)
        assert scored.slice(0, 0).drop_columns(list(PREDICTION_COLUMNS)).schema == table.schema
        out = scored.to_pandas()
        proba = out[list(PROBABILITY_COLUMNS)].to_numpy()
        assert out[PREDICTED_COLUMN].tolist() == [LABELS[j] for j in proba.argmax(axis=1)]
        expected = out[KEYS].merge(in_memory, on=KEYS, how="left")[list(PROBABILITY_COLUMNS)].to_numpy()
        np.testing.assert_allclose(proba, expected, atol=1e-12)  # the whole file's ranks, not the bucket's


def test_buckets_are_parquet_files_in_the_given_directory(source, tmp_path) -> None:
    part = partition_traces(source, tmp_path / "here", chunk_rows=100, buckets=2)
    assert all(p.parent == tmp_path / "here" and p.is_file() for p in part.buckets)
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in part.buckets) == part.turns
