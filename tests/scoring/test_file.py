"""Out-of-core scoring: the same predictions as in memory, bounded batches, all or nothing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fpi.scoring.file import predict_file
from fpi.cli import main
from fpi.errors import TraceError
from fpi.scoring.partition import partition_traces
from fpi.data.schema import KEY_COLUMNS, LABELS
from fpi.simulator.simulate import simulate
from fpi.data.traces import load_traces
from fpi.data.write import write_traces

PROBABILITIES = [f"p_{label}" for label in LABELS]
CHUNK = 250  # turns per batch and bucket: dialogues straddle batches, and there are many buckets


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory) -> dict[str, Path]:
    """~2,800 turns in random row order, as CSV and Parquet: a dialogue's turns are spread over the file."""
    root = tmp_path_factory.mktemp("bulk")
    frame = simulate(1000, seed=21).sample(frac=1.0, random_state=3).reset_index(drop=True)
    files = {"csv": root / "shuffled.csv", "parquet": root / "shuffled.parquet"}
    for path in files.values():
        write_traces(frame, path)
    return files


def _aligned(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else load_traces(path)
    return frame.sort_values(list(KEY_COLUMNS), ignore_index=True)


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_chunked_predictions_equal_in_memory(shuffled, tiny_model, tmp_path, source) -> None:
    memory = predict_file(shuffled[source], tmp_path / "memory.parquet", model=tiny_model)
    chunked = predict_file(shuffled[source], tmp_path / "chunked.parquet", model=tiny_model, chunk_rows=CHUNK)
    assert (memory.mode, chunked.mode) == ("in memory", "out of core")
    assert chunked.buckets > 5 and chunked.turns == memory.turns
    a, b = _aligned(tmp_path / "memory.parquet"), _aligned(tmp_path / "chunked.parquet")
    assert (a["predicted_failure_point"] == b["predicted_failure_point"]).all()
    assert np.abs(a[PROBABILITIES].to_numpy() - b[PROBABILITIES].to_numpy()).max() <= 1e-12
    pd.testing.assert_frame_equal(a, b, check_dtype=False)  # every input column comes through unchanged
    assert dict(chunked.label_counts) == dict(memory.label_counts)


def test_chunked_output_keeps_each_dialogue_together_and_in_order(shuffled, tiny_model, tmp_path) -> None:
    predict_file(shuffled["csv"], tmp_path / "out.parquet", model=tiny_model, chunk_rows=CHUNK)
    out = pd.read_parquet(tmp_path / "out.parquet")
    ids = out["dialogue_id"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    assert len(starts) == out["dialogue_id"].nunique()  # each dialogue is one contiguous run
    assert (out.groupby("dialogue_id", sort=False)["turn_index"].diff().dropna() > 0).all()


def test_chunked_csv_output_has_the_same_lines_as_in_memory(shuffled, tiny_model, tmp_path) -> None:
    predict_file(shuffled["csv"], tmp_path / "memory.csv", model=tiny_model)
    predict_file(shuffled["csv"], tmp_path / "chunked.csv", model=tiny_model, chunk_rows=CHUNK)
    memory = (tmp_path / "memory.csv").read_text().splitlines()
    chunked = (tmp_path / "chunked.csv").read_text().splitlines()
    assert chunked[0] == memory[0]
    assert sorted(chunked[1:]) == sorted(memory[1:])


def _lines_with(path: Path, edits: dict[int, str], tmp_path: Path) -> Path:
    """A copy of a CSV with some spreadsheet rows replaced (row 1 is the header)."""
    lines = path.read_text().splitlines()
    for row, text in edits.items():
        lines[row - 1] = text
    out = tmp_path / "edited.csv"
    out.write_text("\n".join(lines) + "\n")
    return out


def _problems(exc: TraceError) -> dict[str, tuple[int, ...]]:
    return {p.code: p.rows for p in exc.problems}


def test_a_bad_row_deep_in_the_file_fails_the_run_with_its_row_and_no_output(shuffled, tiny_model, tmp_path) -> None:
    lines = shuffled["csv"].read_text().splitlines()
    deep = len(lines) - 40
    cells = lines[deep - 1].split(",")
    cells[5] = "1.7"  # wake_confidence out of range
    bad = _lines_with(shuffled["csv"], {deep: ",".join(cells)}, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(TraceError) as caught:
        predict_file(bad, out_dir / "scored.parquet", model=tiny_model, chunk_rows=CHUNK)
    assert _problems(caught.value) == {"out_of_range": (deep,)}
    assert list(out_dir.iterdir()) == []  # no output, no temp file, no buckets left behind


def test_problems_are_reported_as_in_memory_across_batches(shuffled, tiny_model, tmp_path) -> None:
    lines = shuffled["csv"].read_text().splitlines()
    n = len(lines)
    edits = {
        300: "too,few,fields",  # the reader drops it: later rows must still be numbered as the file has them
        n - 100: lines[1],  # a duplicate of the first turn, far away in another batch
    }
    for row, index, value in ((n - 5, 1, "-2"), (n - 3, 6, "notanumber")):  # turn_index, asr_confidence
        cells = lines[row - 1].split(",")
        cells[index] = value
        edits[row] = ",".join(cells)
    bad = _lines_with(shuffled["csv"], edits, tmp_path)
    with pytest.raises(TraceError) as memory:
        load_traces(bad)
    with pytest.raises(TraceError) as chunked:
        predict_file(bad, tmp_path / "scored.csv", model=tiny_model, chunk_rows=CHUNK)
    assert _problems(chunked.value) == _problems(memory.value)
    assert {p.code: p.count for p in chunked.value.problems} == {p.code: p.count for p in memory.value.problems}
    assert _problems(chunked.value)["duplicate_turn"] == (2, n - 100)
    assert not (tmp_path / "scored.csv").exists()


def test_a_duplicate_turn_alone_is_found_in_pass_two(shuffled, tiny_model, tmp_path) -> None:
    lines = shuffled["csv"].read_text().splitlines()
    bad = _lines_with(shuffled["csv"], {len(lines): lines[1]}, tmp_path)
    with pytest.raises(TraceError) as caught:
        predict_file(bad, tmp_path / "scored.parquet", model=tiny_model, chunk_rows=CHUNK)
    assert _problems(caught.value) == {"duplicate_turn": (2, len(lines))}
    assert not (tmp_path / "scored.parquet").exists()


def test_partition_puts_every_turn_of_a_dialogue_in_one_bucket(shuffled, tmp_path) -> None:
    part = partition_traces(shuffled["csv"], tmp_path / "b", chunk_rows=CHUNK)
    seen: dict[str, int] = {}
    for i, path in enumerate(part.buckets):
        for dialogue in pd.read_parquet(path, columns=["dialogue_id"])["dialogue_id"].unique():
            assert seen.setdefault(dialogue, i) == i
    assert part.turns == len(load_traces(shuffled["csv"]))
    assert "asr_nbest_margin" in part.numeric_signals


def test_cli_predict_chunked_shows_progress(shuffled, tiny_model, tmp_path) -> None:
    model_dir = tiny_model.save(tmp_path / "model")
    out = tmp_path / "scored.parquet"
    result = CliRunner().invoke(main, ["predict", str(shuffled["csv"]), "--model", str(model_dir), "-o", str(out),
                                       "--chunk-rows", str(CHUNK)])
    assert result.exit_code == 0, result.output
    assert "out of core" in result.stdout and "[" in result.stderr and "bucket" in result.stderr
    assert len(pd.read_parquet(out)) == len(load_traces(shuffled["csv"]))
