"""Comparing two versions: a planted NLU regression is found first, nothing on two clean samples."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fpi.cli import main
from fpi.analysis.compare import compare_frames, compare_paired, format_comparison, moved_turns, split_frame
from fpi.errors import FpiError
from fpi.data.schema import LABELS
from fpi.simulator.pipelines import CohortEffect, PipelineProfile, SimConfig
from fpi.simulator.simulate import simulate
from fpi.simulator.templates import INTENT_NAMES
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
    assert set(result.cohorts.head(4)["failure_point"]) <= {"nlu", "defect"}
    # nlu_domain = video and nlu_intent = PlayVideo are the same turns: one of them is listed
    counts = result.cohorts[["failure_point", "turns_before", "count_before", "turns_after", "count_after"]]
    assert not counts.duplicated().any()
    assert "the same turns as" in set(result.redundant["reason"])
    assert result.migration is None and not result.paired
    assert "nlu" in format_comparison(result)


def _asr_worse_in(conditions: dict[str, str]) -> pd.DataFrame:
    return simulate(8000, seed=12, config=SimConfig(cohort_effects=(CohortEffect(conditions=conditions, stage="asr",
                                                                                 factor=3.0),)))


def test_a_two_condition_cohort_with_its_parents_change_is_left_out(before) -> None:
    result = compare_frames(before, _asr_worse_in({"locale": "en-IN"}), label_column="failure_point",
                            columns=("device_type", "locale"))
    assert tuple(result.cohorts.iloc[0][["cohort", "failure_point"]]) == ("locale = en-IN", "asr")
    dropped = result.redundant.set_index(["cohort", "failure_point"])
    car = ("device_type = car and locale = en-IN", "asr")
    assert dropped.loc[car, "explained_by"] == "locale = en-IN"
    assert dropped.loc[car, "reason"] == "the same change as the rest of"
    assert car not in set(zip(result.cohorts["cohort"], result.cohorts["failure_point"]))
    assert "more that say nothing a simpler cohort does not" in format_comparison(result)


def test_a_change_only_in_a_two_condition_cohort_is_kept(before) -> None:
    result = compare_frames(before, _asr_worse_in({"locale": "en-IN", "device_type": "car"}),
                            label_column="failure_point", columns=("device_type", "locale"))
    assert tuple(result.cohorts.iloc[0][["cohort", "failure_point"]]) == ("device_type = car and locale = en-IN", "asr")
    assert "device_type = car and locale = en-IN" not in set(result.redundant["cohort"])


def test_paired_a_change_in_one_locale_is_not_repeated_for_each_of_its_devices() -> None:
    frame = simulate(6000, seed=6)
    rng = np.random.default_rng(1)
    moved = (frame["locale"] == "en-IN").to_numpy() & (rng.random(len(frame)) < 0.15)
    frame["other"] = np.where(moved, "asr", frame["failure_point"])
    result = compare_paired(frame, "failure_point", "other", columns=("device_type", "locale"))
    top = result.cohorts.iloc[0]
    assert (top["cohort"], top["failure_point"]) == ("locale = en-IN", "asr")
    children = result.redundant[result.redundant["cohort"].str.endswith(" and locale = en-IN")]
    assert len(children) and set(children["explained_by"]) == {"locale = en-IN"}
    assert not result.cohorts["cohort"].str.contains(" and ").any()
    assert [tuple(c) for c in result.cohorts["conditions"].head(1)] == [(("locale", "en-IN"),)]


def test_moved_turns_lists_the_turns_whose_label_changed() -> None:
    frame = pd.DataFrame({"a": ["asr", "nlu", "correct", "asr", None], "b": ["asr", "asr", "er", "nlu", "asr"]})
    assert list(moved_turns(frame, "a", "b").index) == [1, 2, 3]
    assert list(moved_turns(frame, "a", "b", moved_from="asr").index) == [3]
    assert list(moved_turns(frame, "a", "b", moved_to="asr").index) == [1]
    with pytest.raises(FpiError, match="'ASR' is not a failure point"):
        moved_turns(frame, "a", "b", moved_from="ASR")


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
