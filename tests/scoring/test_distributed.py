"""Scoring and training on a Dask LocalCluster of 2 worker processes (deselect with -m "not dask")."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fpi.scoring.file import predict_file
from fpi.cli import main
from fpi.cluster import dask_client
from fpi.model.dask_training import DaskTrainer
from fpi.model.evaluate import evaluate_model
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.simulator.simulate import simulate
from fpi.data.write import write_traces

pytestmark = pytest.mark.dask

FAST = TrainConfig(learning_rate=0.15, max_rounds=150, early_stopping_rounds=20, seed=0)  # as in conftest


@pytest.fixture(scope="module")
def client():
    with dask_client() as client:
        yield client


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory):
    path = tmp_path_factory.mktemp("dask") / "shuffled.csv"
    write_traces(simulate(600, seed=41).sample(frac=1.0, random_state=5), path)
    return path


def test_dask_predictions_are_identical_to_single_process(client, shuffled, tiny_model, tmp_path) -> None:
    address = client.scheduler.address
    dask = predict_file(shuffled, tmp_path / "dask.parquet", model=tiny_model, chunk_rows=300, engine="dask",
                        scheduler=address)
    local = predict_file(shuffled, tmp_path / "local.parquet", model=tiny_model, chunk_rows=300)
    predict_file(shuffled, tmp_path / "memory.parquet", model=tiny_model)
    assert dask.mode == "dask" and dask.buckets == local.buckets > 1
    # same buckets, same order: the very same table as the single-process out-of-core run
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dask.parquet"), pd.read_parquet(tmp_path / "local.parquet"))
    keys = ["dialogue_id", "turn_index"]
    a = pd.read_parquet(tmp_path / "dask.parquet").sort_values(keys, ignore_index=True)
    b = pd.read_parquet(tmp_path / "memory.parquet").sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_cli_predict_on_a_cluster_address_and_duplicates_reject_the_file(client, shuffled, tiny_model, tmp_path) -> None:
    model_dir = tiny_model.save(tmp_path / "model")
    args = ["--model", str(model_dir), "--engine", "dask", "--scheduler", client.scheduler.address,
            "--chunk-rows", "300"]
    out = tmp_path / "scored.csv"
    result = CliRunner().invoke(main, ["predict", str(shuffled), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    assert "dask" in result.stdout and out.exists()
    lines = shuffled.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines, lines[1]]) + "\n")
    result = CliRunner().invoke(main, ["predict", str(bad), "-o", str(tmp_path / "bad_scored.csv"), *args])
    assert result.exit_code == 1
    assert "appears on more than one row" in result.stderr and f"rows 2, {len(lines) + 1}" in result.stderr
    assert not (tmp_path / "bad_scored.csv").exists()


def test_dask_training_is_close_to_single_process_and_saves_a_normal_model(client, sim_heldout, tmp_path) -> None:
    train = simulate(2500, seed=7)
    single = FailurePointModel(config=FAST).fit(train)
    on_dask = FailurePointModel(config=FAST, trainer=DaskTrainer(client)).fit(train)
    on_dask.trainer = None
    loaded = FailurePointModel.load(on_dask.save(tmp_path / "dask_model"))
    f1 = {name: evaluate_model(m, sim_heldout)["systems"]["model"]["macro_f1"]
          for name, m in (("single", single), ("dask", loaded))}
    assert abs(f1["dask"] - f1["single"]) <= 0.03, f1
    a, b = single.predict_proba(sim_heldout), loaded.predict_proba(sim_heldout)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.97
    assert (a.argmax(axis=1) == b.argmax(axis=1)).mean() > 0.95
    np.testing.assert_allclose(loaded.predict_proba(sim_heldout), on_dask.predict_proba(sim_heldout))
