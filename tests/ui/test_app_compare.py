"""The Compare page with `streamlit.testing.v1.AppTest`: a date split, two models, and a moved turn's dialogue."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_files import QUICK
from fpi.config import Config
from fpi.model.estimator import FailurePointModel
from fpi.model.registry import Registry
from fpi.data.write import write_traces
from fpi.simulator.pipelines import PipelineProfile, SimConfig
from fpi.simulator.simulate import simulate
from fpi.simulator.templates import INTENT_NAMES
from fpi.ui.pages.compare import COLUMN, DATE
from fpi.ui.state import Keys
from app_files import all_text, no_exception, start, upload

COMPARE = "fpi/ui/pages/compare.py"


@pytest.fixture(scope="module")
def other_model() -> FailurePointModel:
    """A second model, quick and trained on other traces: it labels some turns of the sample differently."""
    return FailurePointModel(config=QUICK).fit(simulate(1500, seed=41))


def open_compare(at: AppTest, mode: str | None = None) -> AppTest:
    at.run()  # the app opens on the Overview with the labelled sample
    no_exception(at)
    if mode is not None:
        at.session_state[Keys.COMPARE_MODE] = mode
    at.switch_page(COMPARE).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Compare"
    return at


def chart_titles(at: AppTest) -> list[str]:
    titles = []
    for chart in at.get("plotly_chart"):
        title = json.loads(chart.proto.spec)["layout"].get("title", {})
        titles.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return titles


def rates_table(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "cohort" in d.value and set(d.value["cohort"]) == {"all turns"})


def table(at: AppTest, prefix: str) -> tuple[str, pd.DataFrame]:
    found = next(d for d in at.dataframe if d.key and d.key.startswith(prefix))
    return found.key, found.value


def test_two_models_show_where_turns_moved_and_a_moved_turn_opens_in_the_drill_down(
        at: AppTest, home: Path, other_model: FailurePointModel) -> None:
    Registry(home, default_model=Config.from_env().default_model).save_candidate(other_model)
    open_compare(at)
    titles = chart_titles(at)
    assert "Where turns moved" in [s.value for s in at.subheader]
    version = next(e.version for e in Registry.from_config().versions() if not e.active)
    assert f"Rows: model default; columns: model {version}" in titles  # the migration matrix
    assert f"model default → model {version}: change with its 95% interval" in titles
    rates = rates_table(at)
    assert list(rates["failure_point"]) == ["all defects", "false wake", "ASR", "NLU", "ER", "result"]
    key, moved = table(at, Keys.COMPARE_MOVED)
    assert len(moved) and (moved["_before"] != moved["_after"]).all()
    assert set(moved["_before"]) <= {"correct", "false wake", "ASR", "NLU", "ER", "result"}  # display names
    at.session_state[key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    no_exception(at)
    assert at.title[0].value == "Dialogue drill-down"
    assert at.query_params["dialogue"] == moved.iloc[0]["dialogue_id"]


def test_moved_turns_follow_the_chosen_failure_points(at: AppTest, home: Path,
                                                      other_model: FailurePointModel) -> None:
    Registry(home, default_model=Config.from_env().default_model).save_candidate(other_model)
    open_compare(at)
    _, moved = table(at, Keys.COMPARE_MOVED)
    source = moved["_before"].mode()[0]
    label = {"false wake": "false_wake"}.get(source, source.lower() if source in ("ASR", "NLU", "ER") else source)
    at.selectbox(key=Keys.COMPARE_MOVED_FROM).set_value(label).run()
    no_exception(at)
    _, narrowed = table(at, Keys.COMPARE_MOVED)
    assert set(narrowed["_before"]) == {source} and len(narrowed) == (moved["_before"] == source).sum()


def test_one_model_only_says_how_to_get_a_second(at: AppTest) -> None:
    open_compare(at)
    assert "one model only" in all_text(at.info)


def test_a_date_split_compares_rates_and_lists_a_changed_cohort(at: AppTest) -> None:
    open_compare(at, DATE)
    assert any(t.endswith(": change with its 95% interval") for t in chart_titles(at))
    assert "Where turns moved" not in [s.value for s in at.subheader]  # different turns: nothing to follow
    assert "migration matrix needs the same turns" in all_text(at.caption)
    rates = rates_table(at)
    assert len(rates) == 6 and rates["p_value"].between(0, 1).all()
    versions, turns = [t.value for t in at.text if " → " in t.value][0].splitlines()[:2]
    assert versions.startswith("before 20") and " → from 20" in versions and turns.endswith(" turns")


def test_a_column_split_offers_app_version_first(at: AppTest) -> None:
    open_compare(at, COLUMN)
    assert next(s for s in at.selectbox if s.label == "Column").value == "app_version"  # releases first
    assert len(rates_table(at)) == 6


def test_a_planted_release_is_found_at_its_date_and_its_turns_open_in_the_drill_down(at: AppTest,
                                                                                   tmp_path: Path) -> None:
    factors = tuple(4.0 if name == "PlayMusic" else 1.0 for name in INTENT_NAMES)
    before = simulate(2000, seed=42, config=SimConfig(start="2026-10-01", days=10))
    after = simulate(2000, seed=43, config=SimConfig(start="2026-10-11", days=10,
                                                     pipeline=PipelineProfile(nlu_by_intent=factors)))
    both = pd.concat([before, after.assign(dialogue_id="r" + after["dialogue_id"])], ignore_index=True)
    path = tmp_path / "release.csv"
    write_traces(both, path)
    start(at)
    upload(at, "release.csv", path.read_bytes())
    at.session_state[Keys.COMPARE_MODE] = DATE
    at.session_state[f"{Keys.COMPARE_SOURCE}_2"] = "human label"
    at.switch_page(COMPARE).run()
    no_exception(at)
    day = next(d for d in at.date_input if d.key.startswith(Keys.COMPARE_DATE))
    day.set_value(date(2026, 10, 11)).run()
    no_exception(at)
    rates = rates_table(at).set_index("failure_point")
    assert rates.loc["NLU", "low"] > 0  # the NLU rate rose, surely (in points)
    key, cohorts = table(at, Keys.COMPARE_COHORTS)
    assert cohorts.iloc[0]["failure_point"] == "NLU"  # where PlayMusic requests land when NLU fails them
    assert cohorts.iloc[0]["cohort"] in {"NLU domain = books", "NLU domain = video", "NLU intent = PlayAudiobook",
                                         "NLU intent = PlayVideo"}  # columns by their display names
    at.session_state[key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    no_exception(at)
    assert cohorts.iloc[0]["cohort"] in [t.value for t in at.text]
    turn_key, turns = table(at, f"{Keys.TURNS_TABLE}_compare_")
    assert turns["dialogue_id"].str.startswith("r").all()  # the turns after the release
    at.session_state[turn_key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    no_exception(at)
    assert at.title[0].value == "Dialogue drill-down"
    assert at.query_params["dialogue"] == turns.iloc[0]["dialogue_id"]


def test_the_loaded_traces_against_a_dataset_kept_on_the_server(at: AppTest, files) -> None:
    from fpi.ui.pages.compare import DATASETS

    start(at)  # the sample is open, and kept on the server
    own = pd.read_csv(files.labelled, dtype=str, keep_default_na=False)
    ids = sorted(set(own["dialogue_id"]))
    upload(at, "later.csv", own[own["dialogue_id"].isin(ids[: len(ids) // 2])].to_csv(index=False).encode())
    at.session_state[Keys.COMPARE_MODE] = DATASETS
    at.switch_page(COMPARE).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    versions = [t.value for t in at.text if " → " in t.value][0].splitlines()[0]
    assert versions == "labelled.csv (sample) → later.csv (loaded)"
    assert len(rates_table(at)) == 6


def test_without_data_the_page_says_what_to_do(at: AppTest, monkeypatch, tmp_path: Path) -> None:
    from fpi.ui.services import loading

    monkeypatch.setitem(loading.SAMPLES, "labelled", tmp_path / "missing.csv")
    at.run()
    at.switch_page(COMPARE).run()
    no_exception(at)
    assert "No traces are loaded yet" in all_text(at.info)
