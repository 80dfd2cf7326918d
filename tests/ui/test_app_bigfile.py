"""The app on a large scored Parquet file opened by path: the overview by DuckDB, other pages say why not."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from app_files import AppFiles
from fpi.scoring.file import predict_file
from fpi.model.estimator import FailurePointModel
from fpi.data.traces import load_traces
from fpi.data.write import write_traces
from fpi.ui.text import md_escape
from app_files import PAGES, all_text, button, metric, no_exception, start

BIG_FILE_LABEL = "Path of a scored Parquet file on this server"


@pytest.fixture(scope="module")
def scored(files: AppFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("bigfile") / "scored.parquet"
    predict_file(files.labelled, output, model=FailurePointModel.load(files.model))
    return output


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Scored files may only be opened under FPI_DATA_DIR; the tests' files live under the base temp dir."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("FPI_DATA_DIR", str(root))
    return root


def open_big(at: AppTest, path: Path) -> AppTest:
    next(t for t in at.text_input if t.label == BIG_FILE_LABEL).set_value(str(path))
    button(at, "Open").click().run()
    no_exception(at)
    return at


def test_open_a_scored_file_by_path_and_see_its_overview(at: AppTest, scored: Path) -> None:
    start(at)
    open_big(at, scored)
    assert not at.error, [e.value for e in at.error]
    at.switch_page(PAGES["overview"]).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    turns = pq.read_metadata(scored).num_rows
    assert metric(at, "Turns") == f"{turns:,}"
    assert f"Computed with DuckDB on {md_escape(scored.name)}, {turns:,} turns" in all_text(at.caption)
    table = next(d for d in at.dataframe if d.key and d.key.startswith("w_turns_table"))
    assert 0 < len(table.value) and (table.value["predicted_failure_point"] != "correct").all()

    device = next(m for m in at.multiselect if m.label == "Device")
    device.set_value([device.options[0]]).run()
    no_exception(at)
    assert int(metric(at, "Turns").replace(",", "")) < turns
    for control in at.segmented_control:
        for dimension in control.options:
            control.set_value(dimension).run()
            no_exception(at)

    for page in ("dialogue", "model"):
        at.switch_page(PAGES[page]).run()
        no_exception(at)
        assert "Open a smaller file or the sample" in all_text(at.info)


def test_cohorts_are_discovered_on_a_scored_file_without_loading_it(at: AppTest, scored: Path) -> None:
    start(at)
    open_big(at, scored)
    at.switch_page("fpi/ui/pages/cohorts.py").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["fpi_app_state"].data is None
    assert "need the turns in memory" in all_text(at.info)
    found = next(d for d in at.dataframe if d.key and d.key.startswith("w_cohort_found"))
    assert len(found.value) > 0
    at.session_state[found.key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    no_exception(at)
    assert found.value.iloc[0]["cohort"] in [t.value for t in at.text]
    assert len(at.get("plotly_chart")) >= 1
    assert not [b for b in at.button if b.label == "Triage these turns"]
    assert not [d for d in at.dataframe if d.key and d.key.startswith(("w_turns_table", "fairness_table"))]


def test_a_file_without_predictions_is_refused_and_the_previous_file_stays(
        at: AppTest, files: AppFiles, scored: Path, tmp_path: Path) -> None:
    unscored = tmp_path / "unscored.parquet"
    write_traces(load_traces(files.labelled).head(50), unscored)
    start(at)
    open_big(at, scored)
    open_big(at, unscored)
    message = all_text(at.error)
    for expected in ("has no prediction columns", "predicted_failure_point", "p_correct", "fpi predict"):
        assert md_escape(expected) in message, message
    at.switch_page(PAGES["overview"]).run()
    no_exception(at)
    assert metric(at, "Turns") == f"{pq.read_metadata(scored).num_rows:,}"


def test_loading_the_sample_closes_the_big_file(at: AppTest, files: AppFiles, scored: Path) -> None:
    start(at)
    open_big(at, scored)
    button(at, "Load labelled sample").click().run()
    no_exception(at)
    at.switch_page(PAGES["overview"]).run()
    no_exception(at)
    assert metric(at, "Turns") == f"{len(load_traces(files.labelled)):,}"
    assert "duckdb" not in all_text(at.caption).lower()


def test_a_file_outside_the_data_folder_is_refused(at: AppTest, scored: Path, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("FPI_DATA_DIR", str(tmp_path / "elsewhere"))
    start(at)
    open_big(at, scored)
    assert "outside the data folder" in all_text(at.error)
    assert at.session_state["fpi_app_state"].big_file is None
