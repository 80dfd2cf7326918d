"""Comparing two versions: a planted NLU regression is found first, nothing on two clean samples."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from fpi.cli import main
from fpi.analysis.compare import compare_frames, compare_paired, format_comparison, split_frame
from fpi.errors import FpiError
from fpi.data.schema import LABELS
from fpi.simulator.pipelines import PipelineProfile, SimConfig
from fpi.simulator.simulate import simulate
from fpi.simulator.templates import INTENT_NAMES
from fpi.analysis.stats import newcombe_interval, newcombe_paired_interval, wilson_interval
from fpi.data.write import write_traces

# NLU symptoms of PlayMusic requests: NLU sends them to another media intent
WHERE_MUSIC_LANDS = {"nlu_intent = PlayVideo", "nlu_intent = PlayAudiobook", "nlu_domain = video", "nlu_domain = books"}


@pytest.fixture(scope="module")
def before() -> pd.DataFrame:
    return simulate(12000, seed=10)


@pytest.fixture(scope="module")
def release() -> pd.DataFrame:
    """A release whose NLU fails twice as often on PlayMusic requests, starting 15 October."""
    factors = tuple(2.0 if name == "PlayMusic" else 1.0 for name in INTENT_NAMES)
    config = SimConfig(start="2026-10-15", pipeline=PipelineProfile(nlu_by_intent=factors))
    return simulate(12000, seed=20, config=config)


def test_a_release_doubling_nlu_failures_for_one_intent_is_found_first(before, release) -> None:
    result = compare_frames(before, release, label_column="failure_point")
    top = result.cohorts.iloc[0]
    assert top["failure_point"] == "nlu" and top["cohort"] in WHERE_MUSIC_LANDS
    assert top["low"] > 0 and top["q_value"] < 0.05
    nlu = result.rates.set_index("failure_point").loc["nlu"]
    assert nlu["low"] > 0 and nlu["p_value"] < 0.05  # the overall NLU rate rose, surely
    assert set(result.cohorts.head(4)["failure_point"]) == {"nlu"}
    assert result.migration is None and not result.paired
    assert "nlu" in format_comparison(result)


def test_two_clean_samples_differ_in_no_cohort(before) -> None:
    result = compare_frames(before, simulate(12000, seed=30), label_column="failure_point")
    assert result.tested > 1000
    assert result.cohorts.empty


def test_paired_migration_counts_every_moved_turn() -> None:
    frame = simulate(1500, seed=5)
    rng = np.random.default_rng(0)
    moved = rng.random(len(frame)) < 0.1
    frame["other"] = np.where(moved, "nlu", frame["failure_point"])
    result = compare_paired(frame, "failure_point", "other", min_support=50)
    matrix = result.migration
    assert matrix.to_numpy().sum() == len(frame)
    assert list(matrix.index) == list(LABELS) == list(matrix.columns)
    truth = pd.crosstab(frame["failure_point"], frame["other"]).reindex(index=LABELS, columns=LABELS, fill_value=0)
    np.testing.assert_array_equal(matrix.to_numpy(), truth.to_numpy())
    rates = result.rates.set_index("failure_point")
    assert rates.loc["nlu", "low"] > 0 and rates.loc["nlu", "p_value"] < 1e-10
    assert rates.loc["nlu", "low"] <= rates.loc["nlu", "change"] <= rates.loc["nlu", "high"]
    assert (result.cohorts["failure_point"].isin(["nlu", "defect"]) | (result.cohorts["change"] < 0)).all()
    same = compare_paired(frame, "failure_point", "failure_point")
    assert same.cohorts.empty and (same.rates["change"] == 0).all() and (same.rates["p_value"] == 1).all()


def test_newcombe_intervals_hold_the_difference_and_pairing_narrows_them() -> None:
    # Newcombe (1998), example: 56/70 vs 48/80 -> difference 0.2, interval 0.0524 to 0.3339
    low, high = newcombe_interval(48, 80, 56, 70)
    assert (round(float(low), 4), round(float(high), 4)) == (0.0524, 0.3339)
    # 1000 pairs agreeing on 90 positives, 30 more positive only in the second
    low_p, high_p = newcombe_paired_interval(90, 0, 30, 880)
    low_u, high_u = newcombe_interval(90, 1000, 120, 1000)
    assert low_u < low_p < 0.03 < high_p < high_u
    wl, wh = wilson_interval(90, 1000)
    assert 0 < wl < 0.09 < wh


def test_split_at_a_date_and_by_a_column(before, release) -> None:
    both = pd.concat([before, release.assign(dialogue_id="r" + release["dialogue_id"])], ignore_index=True)
    early, late = split_frame(both, at="2026-10-15")
    assert len(early) + len(late) == len(both)
    assert late["timestamp"].min() >= pd.Timestamp("2026-10-15", tz="UTC") > early["timestamp"].max()
    old, new = split_frame(before, column="app_version", before_value="4.12", after_value="4.13")
    assert set(old["app_version"]) == {"4.12"} and set(new["app_version"]) == {"4.13"}
    with pytest.raises(FpiError, match="no turn after"):
        split_frame(before, at="2030-01-01")
    with pytest.raises(FpiError, match="either"):
        split_frame(before)


def test_cli_compares_two_files_and_a_split_file(before, release, tmp_path) -> None:
    first, second = tmp_path / "before.parquet", tmp_path / "after.parquet"
    write_traces(before, first)
    write_traces(release, second)
    text = CliRunner().invoke(main, ["compare", str(first), str(second), "--labels"])
    assert text.exit_code == 0, text.output
    assert "two-proportion z test" in text.output and "significant" in text.output
    as_json = CliRunner().invoke(main, ["compare", str(first), str(second), "--labels", "--json"])
    report = json.loads(as_json.output)
    assert report["cohorts"][0]["failure_point"] == "nlu" and report["cohorts"][0]["cohort"] in WHERE_MUSIC_LANDS
    split = CliRunner().invoke(main, ["compare", str(first), "--labels", "--split-by", "app_version",
                                      "--before", "4.12", "--after", "4.13"])
    assert split.exit_code == 0 and "app_version = 4.12" in split.output
    neither = CliRunner().invoke(main, ["compare", str(first), "--labels"])
    assert neither.exit_code == 2 and "exactly one way" in neither.output


def test_cli_compares_two_models_on_the_same_turns(tiny_model, sim_heldout, tmp_path) -> None:
    from fpi.config import SHIPPED_MODEL

    if not (SHIPPED_MODEL / "meta.json").is_file():
        pytest.skip("the shipped model is not in this checkout")
    traces = tmp_path / "traces.csv"
    write_traces(sim_heldout.head(2000), traces)
    mine = tiny_model.save(tmp_path / "model")
    result = CliRunner().invoke(main, ["compare", str(traces), "--model", str(SHIPPED_MODEL), "--against", str(mine),
                                       "--min-support", "50", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["paired"] and report["before"] != report["after"]
    assert sum(sum(row.values()) for row in report["migration"].values()) == 2000
    text = CliRunner().invoke(main, ["compare", str(traces), "--model", str(mine), "--against", str(mine)])
    assert text.exit_code == 0 and "exact McNemar" in text.output and "0 significant" in text.output


@settings(max_examples=200, deadline=None)
@given(counts=st.tuples(*(st.integers(0, 400) for _ in range(4))))
def test_intervals_hold_the_observed_change_and_stay_in_range(counts: tuple[int, int, int, int]) -> None:
    a, b, c, d = counts
    n = a + b + c + d
    if n == 0:
        return
    change = (c - b) / n  # second rate minus first
    low, high = newcombe_paired_interval(a, b, c, d)
    assert -1 - 1e-9 <= low <= change + 1e-9 and change - 1e-9 <= high <= 1 + 1e-9
    x1, x2 = a + b, a + c
    low_u, high_u = newcombe_interval(x1, n, x2, n)
    assert -1 - 1e-9 <= low_u <= change + 1e-9 <= high_u + 2e-9 <= 1 + 3e-9
