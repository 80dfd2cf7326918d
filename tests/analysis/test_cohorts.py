"""Cohorts: rates with intervals, discovery of weak spots, the page and the command."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from app_files import AppFiles
from fpi.cli import main
from fpi.analysis.cohorts import ANY_DEFECT, candidate_columns, cohort_mask, cohort_profile, cohort_rates
from fpi.analysis.discovery import count_lattice, discover_cohorts, format_discovery
from fpi.analysis.dashboard import MISSING
from fpi.data.schema import LABELS, PREDICTED_COLUMN
from fpi.errors import FpiError, NotLabelledError
from fpi.simulator.pipelines import CohortEffect, SimConfig
from fpi.simulator.simulate import simulate
from fpi.data.traces import load_traces
from fpi.data.write import write_traces

REPO = Path(__file__).resolve().parents[2]
PLANTED = {"locale": "en-IN", "device_type": "car"}
WHO = ("device_type", "locale", "app_version")


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    """~56k turns in which en-IN users in cars get triple the ASR failures."""
    config = SimConfig(cohort_effects=(CohortEffect(PLANTED, "asr", 3.0),))
    return simulate(20_000, seed=3, config=config)


def _independent(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same cohort columns, failure points drawn independently of them from the same overall mix."""
    mix = frame["failure_point"].value_counts(normalize=True).reindex(list(LABELS)).to_numpy()
    rng = np.random.default_rng(seed)
    drawn = np.array(LABELS, dtype=object)[rng.choice(len(LABELS), size=len(frame), p=mix)]
    return frame.assign(failure_point=pd.Series(drawn, index=frame.index, dtype="str"))


# ---------------------------------------------------------------- rates per cohort

def test_cohort_rates_add_up_with_intervals_around_them(planted: pd.DataFrame) -> None:
    table = cohort_rates(planted, "device_type", label_column="failure_point")
    assert table["turns"].sum() == len(planted)
    car = table.set_index("cohort").loc["car"]
    in_car = planted[planted["device_type"] == "car"]
    assert car["turns"] == len(in_car)
    assert car["defect_rate"] == pytest.approx((in_car["failure_point"] != "correct").mean())
    assert car["rate_asr"] == pytest.approx((in_car["failure_point"] == "asr").mean())
    for label in ("defect", *[f"{x}" for x in LABELS[1:]]):
        rate = table["defect_rate" if label == "defect" else f"rate_{label}"]
        low = table["defect_low" if label == "defect" else f"low_{label}"]
        high = table["defect_high" if label == "defect" else f"high_{label}"]
        assert ((low <= rate) & (rate <= high)).all()
    assert table["defect_rate"].is_monotonic_decreasing


def test_rates_leave_unlabelled_turns_out_and_name_missing_cells(planted: pd.DataFrame) -> None:
    part = planted.head(3000).copy()
    part.loc[part.index[:100], "failure_point"] = pd.NA
    part.loc[part.index[100:150], "locale"] = pd.NA
    table = cohort_rates(part, "locale", label_column="failure_point")
    assert table["turns"].sum() == 2900
    assert table.set_index("cohort").loc[MISSING, "turns"] == 50
    assert cohort_mask(part, {"locale": MISSING}).sum() == 50


def test_profile_compares_the_cohort_with_all_turns(planted: pd.DataFrame) -> None:
    profile = cohort_profile(planted, PLANTED, label_column="failure_point")
    assert set(profile["group"]) == {"cohort", "all turns"}
    assert list(profile["failure_point"].unique()) == [ANY_DEFECT, *LABELS[1:]]
    rows = profile.set_index(["group", "failure_point"])
    inside = planted[cohort_mask(planted, PLANTED)]
    assert rows.loc[("cohort", "asr"), "turns"] == len(inside)
    assert rows.loc[("cohort", "asr"), "rate"] == pytest.approx((inside["failure_point"] == "asr").mean())
    assert rows.loc[("cohort", "asr"), "low"] > 2 * rows.loc[("all turns", "asr"), "high"]


# ---------------------------------------------------------------- discovery

def test_the_planted_cohort_ranks_first(planted: pd.DataFrame) -> None:
    found = discover_cohorts(planted, label_column="failure_point")
    top = found.cohorts.iloc[0]
    assert dict(top["conditions"]) == PLANTED and top["failure_point"] == "asr"
    assert top["lift_low"] > 3 and top["q_value"] < 1e-50
    # its three-condition children add nothing and are pruned, each explained by the planted pair
    children = found.redundant[found.redundant["conditions"].map(lambda c: set(PLANTED.items()) < set(c))
                               & (found.redundant["failure_point"] == "asr")]
    assert len(children) >= 3
    assert all(dict(parent) == PLANTED for parent in children["explained_by"])
    assert not found.cohorts["conditions"].map(lambda c: set(PLANTED.items()) < set(c)).any()
    assert "locale = en-IN and device_type = car" in format_discovery(found) or \
        "device_type = car and locale = en-IN" in format_discovery(found)


def test_the_planted_cohort_is_first_by_who_columns_and_on_model_style_input(planted: pd.DataFrame) -> None:
    scored_like = planted.assign(**{PREDICTED_COLUMN: planted["failure_point"]}).drop(columns="failure_point")
    found = discover_cohorts(scored_like, columns=WHO, max_conditions=2)
    assert dict(found.cohorts.iloc[0]["conditions"]) == PLANTED


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_failure_points_independent_of_the_columns_give_nothing(planted: pd.DataFrame, seed: int) -> None:
    found = discover_cohorts(_independent(planted, seed), label_column="failure_point", upstream_only=False)
    assert found.tested > 1000
    assert found.cohorts.empty and found.redundant.empty


def test_counts_match_a_brute_force_count() -> None:
    rng = np.random.default_rng(4)
    n, levels = 5000, [3, 4, 2, 5]
    codes = [rng.integers(0, k, n) for k in levels]
    labels = rng.integers(0, len(LABELS), n)
    cells = count_lattice(codes, [np.ones(k, dtype=bool) for k in levels], labels, max_conditions=3, min_support=60)
    found = {}
    for combo, cell_codes, support, counts in zip(cells.combos, cells.codes, cells.support, cells.counts):
        for row, s, c in zip(cell_codes, support, counts):
            found[(combo, tuple(row))] = (s, tuple(c))
    expected = {}
    for k in (1, 2, 3):
        for combo in itertools.combinations(range(len(levels)), k):
            for values in itertools.product(*(range(levels[j]) for j in combo)):
                inside = np.all([codes[j] == v for j, v in zip(combo, values)], axis=0)
                if inside.sum() >= 60:
                    expected[(combo, values)] = (inside.sum(), tuple(np.bincount(labels[inside], minlength=6)))
    assert found == expected


def test_symptoms_and_missing_cells_are_not_conditions(planted: pd.DataFrame) -> None:
    found = discover_cohorts(planted, label_column="failure_point", min_support=100)
    everything = pd.concat([found.cohorts, found.redundant])
    for conditions, target in zip(everything["conditions"], everything["failure_point"]):
        columns = {c for c, _ in conditions}
        assert MISSING not in {v for _, v in conditions}
        if target in ("false_wake", "asr", "nlu"):
            assert not columns & {"nlu_domain", "nlu_intent", "nlu_alt_domain"}, (conditions, target)
    with_symptoms = discover_cohorts(planted, label_column="failure_point", upstream_only=False,
                                     include_missing=True)
    assert any(dict(c).get("nlu_domain") == MISSING for c in with_symptoms.cohorts["conditions"])


def test_the_same_turns_under_two_names_are_listed_once(planted: pd.DataFrame) -> None:
    frame = planted.assign(platform=planted["device_type"].map(lambda d: f"hw-{d}"))
    found = discover_cohorts(frame, label_column="failure_point", columns=["device_type", "locale", "platform"])
    names = [dict(c) for c in found.cohorts["conditions"]]
    assert {"device_type": "car", "locale": "en-IN"} in names
    assert {"platform": "hw-car", "locale": "en-IN"} not in names
    same = found.redundant[found.redundant["reason"] == "the same turns as"]
    assert any(dict(c) == {"locale": "en-IN", "platform": "hw-car"} for c in same["conditions"])


def test_columns_are_chosen_by_type_and_cardinality(planted: pd.DataFrame) -> None:
    used, skipped = candidate_columns(planted, max_levels=50)
    assert {"device_type", "locale", "nlu_domain", "nlu_intent", "app_version"} <= set(used)
    assert not {"dialogue_id", "asr_text", "response_text", "failure_point", "timestamp"} & set(used)
    assert "er_entity" in skipped
    used, skipped = candidate_columns(planted, columns=["locale", "dialogue_id", "asr_confidence"])
    assert used == ("locale",) and set(skipped) == {"dialogue_id", "asr_confidence"}
    with pytest.raises(FpiError, match="no column 'localle'"):
        discover_cohorts(planted, label_column="failure_point", columns=["localle"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_conditions": 0}, "max_conditions must be at least 1"),
    ({"min_support": 0}, "min_support must be at least 1"),
    ({"level": 1.5}, "level in"),
    ({"method": "bonferroni"}, "method must be one of"),
    ({"targets": ["asr", "typo"]}, "targets must be labels"),
])
def test_bad_options_say_what_was_wrong(planted: pd.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        discover_cohorts(planted.head(500), label_column="failure_point", **kwargs)


def test_unscored_or_unlabelled_traces_are_explained(planted: pd.DataFrame) -> None:
    with pytest.raises(FpiError, match="score the traces with a model first"):
        discover_cohorts(planted.head(200))
    with pytest.raises(NotLabelledError, match="no turn has a value"):
        discover_cohorts(planted.head(200).assign(failure_point=pd.NA), label_column="failure_point")


def test_discovery_is_json_ready(planted: pd.DataFrame) -> None:
    found = discover_cohorts(planted, label_column="failure_point", targets=["asr", ANY_DEFECT])
    data = json.loads(json.dumps(found.to_dict()))
    assert data["cohorts"][0]["conditions"] == PLANTED
    assert data["tested"] == found.tested and data["correction"] == "Benjamini-Hochberg"


# ---------------------------------------------------------------- the page

PAGE = "fpi/ui/pages/cohorts.py"


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _select(at: AppTest, prefix: str, row: int) -> pd.DataFrame:
    table = next(d for d in at.dataframe if d.key and d.key.startswith(prefix))
    at.session_state[table.key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    _no_exception(at)
    return table.value


def test_cohorts_page_opens_on_the_sample(at: AppTest) -> None:
    at.run()
    at.switch_page(PAGE).run()
    _no_exception(at)
    assert "bundled **labelled sample**" in "\n".join(i.value for i in at.info)
    assert at.title[0].value == "Cohorts"
    assert any(d.key and d.key.startswith("w_cohort_found") for d in at.dataframe)


def test_selecting_a_cohort_charts_it_and_clicks_through(at: AppTest) -> None:
    at.run()
    at.switch_page("fpi/ui/pages/data.py").run()
    next(b for b in at.button if b.label == "Load labelled sample").click().run()
    at.switch_page(PAGE).run()
    _no_exception(at)
    charts_before = len(at.get("plotly_chart"))  # the model-performance chart
    assert any({"metric", "value", "low", "high", "flagged"} <= set(d.value.columns) for d in at.dataframe)
    found = _select(at, "w_cohort_found", 0)
    cohort = found.iloc[0]["cohort"]
    assert cohort in [t.value for t in at.text]  # shown as plain text, never Markdown
    assert len(at.get("plotly_chart")) == charts_before + 1  # the cohort's profile

    next(b for b in at.button if b.label == "Triage these turns").click().run()
    _no_exception(at)
    state = at.session_state["fpi_app_state"]
    assert state.triage_cohort and " and ".join(f"{k} = {v}" for k, v in state.triage_cohort.items()) == cohort
    assert at.title[0].value == "Triage"

    at.switch_page(PAGE).run()
    _select(at, "w_cohort_found", 0)
    turns = _select(at, "w_turns_table_cohort", 0)
    assert at.title[0].value == "Dialogue drill-down"
    assert at.query_params["dialogue"] == turns.iloc[0]["dialogue_id"]


def test_cohort_values_with_markup_show_as_typed(at: AppTest, files: AppFiles, tmp_path: Path) -> None:
    markup = "<b>tv</b> **loud**"
    frame = load_traces(files.labelled)
    frame["device_type"] = frame["device_type"].replace({"tv": markup})
    write_traces(frame, tmp_path / "markup.csv")
    at.run()
    at.switch_page("fpi/ui/pages/data.py").run()
    at.file_uploader[0].set_value(("markup.csv", (tmp_path / "markup.csv").read_bytes(), "text/csv")).run()
    at.switch_page(PAGE).run()
    _no_exception(at)
    found = next(d for d in at.dataframe if d.key and d.key.startswith("w_cohort_found")).value
    row = int(np.flatnonzero(found["cohort"].str.contains("loud", regex=False))[0])
    _select(at, "w_cohort_found", row)
    assert found.iloc[row]["cohort"] in [t.value for t in at.text]
    prose = "\n".join(str(e.value) for e in [*at.markdown, *at.caption, *at.title, *at.subheader, *at.info])
    assert "loud" not in prose
    spec = "".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "<b>tv" not in spec and "&lt;b&gt;tv&lt;" in spec  # the title escaped: plotly renders tags


def test_cohorts_page_on_unlabelled_traces_says_fairness_needs_labels(at: AppTest) -> None:
    at.run()
    at.switch_page("fpi/ui/pages/data.py").run()
    next(b for b in at.button if b.label == "Load unlabelled sample").click().run()
    at.switch_page(PAGE).run()
    _no_exception(at)
    assert any("needs human labels" in i.value for i in at.info)


# ---------------------------------------------------------------- the command

def test_cohorts_command_prints_cohorts_and_fairness(files: AppFiles) -> None:
    args = ["cohorts", str(files.labelled), "--model", str(files.model), "--max-conditions", "2"]
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "hypotheses tested" in text.output and "model fairness" in text.output
    as_json = CliRunner().invoke(main, [*args, "--json", "--level", "0.1", "--min-support", "150"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["level"] == 0.1 and report["label_column"] == PREDICTED_COLUMN
    assert all(c["turns"] >= 150 and len(c["conditions"]) <= 2 for c in report["cohorts"])
    assert isinstance(report["fairness"], list) and report["fairness"]


def test_cohorts_command_on_labels_needs_labels(files: AppFiles) -> None:
    result = CliRunner().invoke(main, ["cohorts", str(files.unlabelled), "--model", str(files.model), "--labels"])
    assert result.exit_code == 2
    assert "failure_point" in result.output
    plain = CliRunner().invoke(main, ["cohorts", str(files.unlabelled), "--model", str(files.model)])
    assert plain.exit_code == 0, plain.output
    assert "needs labels" in plain.output
