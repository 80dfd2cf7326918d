"""The Streamlit app, page by page, with `streamlit.testing.v1.AppTest` (no browser)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_files import PAGES, AppFiles, all_text, button, load_sample, metric, no_exception, start, upload
from fpi.data.traces import load_traces
from fpi.data.write import write_traces
from fpi.ui.text import md_escape

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")
SCRIPT = "<script>alert(1)</script>"
BOLD = "**bold**"


def test_the_first_screen_is_the_overview_on_the_labelled_sample(at: AppTest, files: AppFiles) -> None:
    at.run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Overview"
    assert metric(at, "Turns") == f"{len(load_traces(files.labelled)):,}"
    assert "bundled **labelled sample**" in all_text(at.info)
    links = [(link.proto.page, link.proto.label) for link in at.get("page_link")]
    assert ("data", "Upload your own traces") in links, links  # one click to replace it
    for page in ("dialogue", "model", "data"):
        at.switch_page(PAGES[page]).run()
        no_exception(at)
        assert "bundled **labelled sample**" in all_text(at.info), page


def test_own_traces_replace_the_sample_and_it_is_not_loaded_again(at: AppTest, files: AppFiles) -> None:
    start(at)
    own = pd.read_csv(files.labelled, dtype=str, keep_default_na=False).head(60)
    upload(at, "mine.csv", own.to_csv(index=False).encode())
    assert metric(at, "Turns") == "60"
    assert "bundled" not in all_text(at.info)
    at.switch_page(PAGES["overview"]).run()
    assert metric(at, "Turns") == "60" and "bundled" not in all_text(at.info)


@pytest.mark.parametrize("page", [p for p in PAGES if p != "data"])
def test_without_the_sample_every_page_says_what_to_do(at: AppTest, page: str, monkeypatch, tmp_path: Path) -> None:
    from fpi.ui.services import loading

    monkeypatch.setitem(loading.SAMPLES, "labelled", tmp_path / "missing.csv")
    at.run()
    at.switch_page(PAGES[page]).run()
    no_exception(at)
    assert "No traces are loaded yet" in all_text(at.info)
    button(at, "Load the labelled sample")


def test_sample_then_every_page_runs(at: AppTest, files: AppFiles) -> None:
    load_sample(at)
    turns = len(load_traces(files.labelled))
    assert metric(at, "Turns") == f"{turns:,}"
    for page in ("overview", "dialogue", "model"):
        at.switch_page(PAGES[page]).run()
        no_exception(at)
        assert not at.error, (page, [e.value for e in at.error])
    at.switch_page(PAGES["overview"]).run()
    assert metric(at, "Turns") == f"{turns:,}"


def test_load_sample_from_an_empty_page(at: AppTest, monkeypatch, files: AppFiles, tmp_path: Path) -> None:
    from fpi.ui.services import loading

    monkeypatch.setitem(loading.SAMPLES, "labelled", tmp_path / "not-yet.csv")
    at.run()  # nothing to open at first
    monkeypatch.setitem(loading.SAMPLES, "labelled", files.labelled)
    at.switch_page(PAGES["overview"]).run()
    assert "No traces are loaded yet" in all_text(at.info)  # offered once per session only
    button(at, "Load the labelled sample").click().run()
    no_exception(at)
    assert metric(at, "Turns") != "0" and at.title[0].value == "Overview"


def test_unlabelled_sample_has_no_agreement(at: AppTest) -> None:
    start(at)
    button(at, "Load unlabelled sample").click().run()
    at.switch_page(PAGES["overview"]).run()
    no_exception(at)
    assert metric(at, "Label agreement") == "—"
    at.switch_page(PAGES["model"]).run()
    no_exception(at)
    assert "no labels" in all_text(at.info)


def test_bad_upload_shows_report_and_keeps_previous_data(at: AppTest, files: AppFiles) -> None:
    load_sample(at)
    before = metric(at, "Turns")
    bad = pd.read_csv(files.labelled, dtype=str, keep_default_na=False).head(40)
    bad = bad.rename(columns={"asr_confidence": "ASR conf"})
    bad.loc[3, "wake_confidence"] = "1.7"
    upload(at, "broken.csv", bad.to_csv(index=False).encode())

    assert "rejected" in all_text(at.error)
    report = at.table[0].value.reset_index()
    assert list(report.columns) == ["Column", "Rows (first few)", "Rows in all", "Value found",
                                    "What is wrong and how to fix it"]
    assert md_escape("asr_confidence") in set(report["Column"])
    out_of_range = report[report["Column"] == md_escape("wake_confidence")].iloc[0]
    assert out_of_range["Rows (first few)"] == "5" and out_of_range["Value found"] == md_escape("'1.7'")
    assert "between 0 and 1" in out_of_range["What is wrong and how to fix it"]
    missing = report[report["Column"] == md_escape("asr_confidence")].iloc[0]["What is wrong and how to fix it"]
    assert "--map" not in missing and "column\\_map" not in missing  # no command-line advice on the web
    assert "Map your columns" in missing and "ASR conf" in missing  # the reason in full, pointing at the form
    assert metric(at, "Turns") == before  # the sample is still the active data

    # The mapping form offers the look-alike column; applying it reloads (the range error remains).
    mapping = next(s for s in at.selectbox if s.label.startswith("asr_confidence"))
    assert mapping.value == "ASR conf"
    at.form_submit_button[0].click().run()
    no_exception(at)
    assert md_escape("asr_confidence") not in set(at.table[0].value.reset_index()["Column"])
    assert metric(at, "Turns") == before


def test_mapping_form_loads_a_file_with_other_column_names(at: AppTest, files: AppFiles) -> None:
    start(at)
    good = pd.read_csv(files.labelled, dtype=str, keep_default_na=False).head(60)
    renamed = good.rename(columns={"asr_confidence": "asr_conf", "dialogue_id": "session_id"})
    upload(at, "renamed.csv", renamed.to_csv(index=False).encode())
    assert {s.value for s in at.selectbox} >= {"asr_conf", "session_id"}
    at.form_submit_button[0].click().run()
    no_exception(at)
    assert metric(at, "Turns") == "60"


def test_filters_change_the_kpis(at: AppTest) -> None:
    load_sample(at)
    at.switch_page(PAGES["overview"]).run()
    everything = metric(at, "Turns")
    device = next(m for m in at.multiselect if m.label == "Device")
    device.set_value([device.options[0]]).run()
    no_exception(at)
    filtered = metric(at, "Turns")
    assert int(filtered.replace(",", "")) < int(everything.replace(",", ""))
    predicted = next(m for m in at.multiselect if m.label == "Predicted failure point")
    predicted.set_value(["correct"]).run()
    assert metric(at, "Defect rate") == "0.0%"
    button(at, "Clear filters").click().run()
    assert metric(at, "Turns") == everything


def test_breakdown_dimension_switch(at: AppTest) -> None:
    load_sample(at)
    at.switch_page(PAGES["overview"]).run()
    control = at.segmented_control[0]
    for dimension in control.options:
        control.set_value(dimension).run()
        no_exception(at)


def test_drilldown_deep_link_shows_the_dialogues_turns(at: AppTest, files: AppFiles) -> None:
    frame = load_traces(files.labelled)
    dialogue = frame.groupby("dialogue_id").size().idxmax()
    turns = frame[frame["dialogue_id"] == dialogue]
    load_sample(at)
    at.query_params["dialogue"] = dialogue
    at.switch_page(PAGES["dialogue"]).run()
    no_exception(at)
    assert at.query_params["dialogue"] == dialogue
    shown = all_text(at.text)
    for text in turns["asr_text"].dropna():
        assert text in shown
    assert at.dataframe[0].value["dialogue"].iloc[0] == dialogue
    assert f"Turn {int(turns['turn_index'].max())}" in all_text(at.caption)
    glossary = next(e for e in at.expander if e.label == "What these features mean")
    meanings = glossary.table[0].value
    assert len(meanings) >= 5 and "nan" not in all_text(at.text).lower().split()
    import json
    waterfall = next(c for c in at.get("plotly_chart") if '"waterfall"' in c.proto.spec)
    rows = json.loads(waterfall.proto.spec)["data"][0]["y"]
    assert not any("nan" in row.split() or "_" in row for row in rows), rows


def test_previous_next_defect_navigation(at: AppTest) -> None:
    load_sample(at)
    at.switch_page(PAGES["dialogue"]).run()
    first = at.query_params["dialogue"]
    button(at, "Next defect ▶").click().run()
    no_exception(at)
    second = at.query_params["dialogue"]
    assert second > first and at.selectbox[0].value == second
    button(at, "◀ Previous defect").click().run()
    assert at.query_params["dialogue"] == first


def test_trace_text_renders_literally(at: AppTest, files: AppFiles, tmp_path: Path) -> None:
    frame = load_traces(files.labelled)
    dialogue = frame.groupby("dialogue_id").size().idxmax()
    rows = frame.index[frame["dialogue_id"] == dialogue]
    frame.loc[rows[0], "asr_text"] = SCRIPT
    frame.loc[rows[1], "asr_text"] = BOLD
    frame.loc[rows[1], "response_text"] = "<img src=x onerror=alert(2)>"
    write_traces(frame, tmp_path / "markup.csv")
    start(at)
    upload(at, "markup.csv", (tmp_path / "markup.csv").read_bytes())
    at.query_params["dialogue"] = dialogue
    at.switch_page(PAGES["dialogue"]).run()
    no_exception(at)
    shown = [t.value for t in at.text]
    assert SCRIPT in shown and BOLD in shown and "<img src=x onerror=alert(2)>" in shown
    rendered_as_markup = all_text([*at.markdown, *at.caption, *at.title, *at.header, *at.subheader])
    assert "alert(" not in rendered_as_markup and "bold" not in rendered_as_markup


def activate_candidate(at: AppTest) -> str:
    """Click the candidate's Activate button (confirming when the page asks); returns its version."""
    activate = next(b for b in at.button if b.key == "model_candidate_activate")
    version = activate.label.split()[1]
    activate.click().run()
    confirm = [b for b in at.button if b.key == "model_candidate_confirm"]
    if confirm:
        confirm[0].click().run()
    return version


def shows_the_fleet_average(at: AppTest) -> None:
    """The Model page on the shipped model: an average of fleet models, and the card says so."""
    members = json.loads((REPO / "models" / "default" / "meta.json").read_text())["schedule"]["members"]
    assert members > 1
    assert next(m for m in at.metric if m.label == "Trees").delta == f"average of {members} models"
    assert any(f"It averages {members} models, one per training fleet" in c.value for c in at.caption)


def test_training_a_candidate_and_activating_it(at: AppTest) -> None:
    load_sample(at)
    at.switch_page(PAGES["model"]).run()
    no_exception(at)
    old_version = metric(at, "Version")
    shows_the_fleet_average(at)
    button(at, "Train a model").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    new_version = activate_candidate(at)
    no_exception(at)
    if new_version != old_version:
        assert metric(at, "Version") == new_version
        assert not next(m for m in at.metric if m.label == "Trees").delta  # one booster, trained here
        assert not any("one per training fleet" in c.value for c in at.caption)
        at.switch_page(PAGES["data"]).run()
        assert f"Scored by model: {new_version}" in [t.value for t in at.text]
        at.switch_page(PAGES["model"]).run()
        button(at, "Roll back").click().run()
        no_exception(at)
        assert metric(at, "Version") == old_version


def test_a_worse_candidate_is_advised_against_and_activating_it_asks_first(at: AppTest, monkeypatch) -> None:
    from fpi.model.training import TrainConfig
    from fpi.ui.services import models

    # Two boosting rounds on 5k turns: far below the shipped model on the same held-out dialogues.
    weak = TrainConfig(learning_rate=0.01, max_rounds=2, early_stopping_rounds=1, text_models=False, seed=0,
                       num_threads=1)
    monkeypatch.setattr(models, "TRAIN_CONFIG", weak)
    load_sample(at)
    at.switch_page(PAGES["model"]).run()
    old_version = metric(at, "Version")
    shows_the_fleet_average(at)
    button(at, "Train a model").click().run()
    no_exception(at)
    assert "The candidate is worse than the active model on the same" in all_text(at.warning)
    keep = button(at, "Keep the active model")
    activate = next(b for b in at.button if b.key == "model_candidate_activate")
    assert keep.proto.type == "primary" and activate.proto.type == "secondary"
    assert activate.label.endswith(" anyway")
    version = activate.label.split()[1]

    activate.click().run()  # asks first, activates nothing
    no_exception(at)
    assert metric(at, "Version") == old_version
    assert f"Activate {version} anyway?" in all_text(at.warning)
    button(at, "Cancel").click().run()
    assert metric(at, "Version") == old_version
    assert not [b for b in at.button if b.key == "model_candidate_confirm"]

    next(b for b in at.button if b.key == "model_candidate_activate").click().run()
    button(at, f"Yes, activate {version}").click().run()
    no_exception(at)
    assert metric(at, "Version") == version
    button(at, "Roll back").click().run()
    assert metric(at, "Version") == old_version


def test_keeping_the_active_model_drops_the_candidate(at: AppTest, monkeypatch) -> None:
    from fpi.model.training import TrainConfig
    from fpi.ui.services import models

    monkeypatch.setattr(models, "TRAIN_CONFIG", TrainConfig(learning_rate=0.01, max_rounds=2,
                                                              early_stopping_rounds=1, text_models=False,
                                                              seed=0, num_threads=1))
    load_sample(at)
    at.switch_page(PAGES["model"]).run()
    old_version = metric(at, "Version")
    shows_the_fleet_average(at)
    button(at, "Train a model").click().run()
    button(at, "Keep the active model").click().run()
    no_exception(at)
    assert not [b for b in at.button if b.key == "model_candidate_activate"]
    assert metric(at, "Version") == old_version


def _table_key(at: AppTest, prefix: str) -> tuple[str, pd.DataFrame]:
    table = next(d for d in at.dataframe if d.key and d.key.startswith(prefix))
    return table.key, table.value


def test_selecting_a_matching_turn_opens_its_dialogue(at: AppTest) -> None:
    load_sample(at)
    at.switch_page(PAGES["overview"]).run()
    key, turns = _table_key(at, "w_turns_table")
    assert (turns["predicted_failure_point"] != "correct").all()  # defects by default
    at.session_state[key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    no_exception(at)
    assert at.title[0].value == "Dialogue drill-down"
    assert at.query_params["dialogue"] == turns.iloc[0]["dialogue_id"]


def test_selecting_a_cohort_lists_its_defective_turns(at: AppTest) -> None:
    load_sample(at)
    at.switch_page(PAGES["overview"]).run()
    key, cohorts = _table_key(at, "w_cohort_table")
    at.session_state[key] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    no_exception(at)
    cohort = cohorts.iloc[1]["cohort"]
    assert cohort in [t.value for t in at.text]
    _, turns = _table_key(at, "w_turns_table")
    assert set(turns["device_type"]) == {cohort}
    assert len(turns) == round(cohorts.iloc[1]["turns"] * cohorts.iloc[1]["defect_rate"])


def test_only_the_ui_package_imports_streamlit() -> None:
    offenders = [
        str(path.relative_to(REPO)) for path in (REPO / "fpi").rglob("*.py")
        if "ui" not in path.relative_to(REPO / "fpi").parts[:1]
        and any(line.strip().startswith(("import streamlit", "from streamlit"))
                for line in path.read_text(encoding="utf-8").splitlines())
    ]
    assert offenders == []


@pytest.mark.parametrize("text", ["**bold**", "<script>alert(1)</script>", "a_b_c.csv", "[x](http://e.com)", ":red[x]"])
def test_md_escape_escapes_every_markup_character(text: str) -> None:
    escaped = md_escape(text)
    for i, char in enumerate(text):
        if char in "*_<>[]():":
            assert f"\\{char}" in escaped, (char, escaped)


# ---------------------------------------------------------------- how far to trust the labels (Overview)


def _recalibrated_pipeline(files: AppFiles, tmp_path: Path) -> Path:
    """The unlabelled sample as another pipeline would log it: ASR confidences 2.5 logits higher, NLU 1.5 lower."""
    frame = load_traces(files.unlabelled)
    for column, shift in (("asr_confidence", 2.5), ("nlu_confidence", -1.5)):
        p = frame[column].astype(float).clip(1e-6, 1 - 1e-6)
        frame[column] = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + shift)))
    write_traces(frame, tmp_path / "other_pipeline.csv")
    return tmp_path / "other_pipeline.csv"


def test_no_trust_warning_on_the_bundled_samples(at: AppTest) -> None:
    load_sample(at)
    at.switch_page(PAGES["overview"]).run()
    no_exception(at)
    assert not at.warning, [w.value for w in at.warning]
    assert "Model macro-F1 on your labels: **0." in all_text(at.caption)
    at.switch_page(PAGES["data"]).run()
    button(at, "Load unlabelled sample").click().run()
    at.switch_page(PAGES["overview"]).run()
    no_exception(at)
    assert not at.warning, [w.value for w in at.warning]
    assert "your traces look like what the model was trained on" in all_text(at.caption)


def test_trust_warning_on_a_recalibrated_pipeline(at: AppTest, files: AppFiles, tmp_path: Path) -> None:
    start(at)
    upload(at, "other_pipeline.csv", _recalibrated_pipeline(files, tmp_path).read_bytes())
    at.switch_page(PAGES["overview"]).run()
    no_exception(at)
    warning = all_text(at.warning)
    assert "Your traces differ from the model's training data" in warning
    assert "ASR confidence is higher in your traces" in warning
    links = [link.proto.page for link in at.get("page_link")]
    assert "triage" in links, links

    # Before any label: self-training makes a candidate to check, shown with what it changes.
    button(at, "Self-train on these traces").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert "self-trained from" in all_text(at.caption)
    shares = next(d.value for d in at.dataframe if "label" in d.value.columns)
    assert len(shares) == 6 and list(shares.iloc[:, 1:].sum().round(6)) == [100.0, 100.0]
    assert "No label shows whether the candidate is better" in all_text(at.info)
    keep = next(b for b in at.button if b.key == "self_candidate_keep")
    activate = next(b for b in at.button if b.key == "self_candidate_activate")
    assert keep.proto.type == "primary" and activate.proto.type == "secondary"
    version = activate.label.split()[1]
    activate.click().run()
    no_exception(at)
    at.switch_page(PAGES["model"]).run()
    no_exception(at)
    assert metric(at, "Version") == version
    assert "Self-trained from model" in all_text(at.caption) and "no label read" in all_text(at.caption)
    at.switch_page(PAGES["overview"]).run()  # no shift score against the traces it was self-trained on
    no_exception(at)
    assert "self-trained from model" in all_text(at.caption) and not at.warning


def test_trust_warning_on_labels_the_model_gets_wrong_trains_on_them(at: AppTest, files: AppFiles,
                                                                     tmp_path: Path) -> None:
    frame = load_traces(files.labelled)
    labels = frame["failure_point"].to_numpy(dtype=object)
    frame["failure_point"] = np.random.default_rng(0).permutation(labels)  # labels the model cannot follow
    write_traces(frame, tmp_path / "relabelled.csv")
    start(at)
    upload(at, "relabelled.csv", (tmp_path / "relabelled.csv").read_bytes())
    at.switch_page(PAGES["overview"]).run()
    no_exception(at)
    assert "Model macro-F1 on your labels" in all_text(at.warning)
    assert "below 0.70" in all_text(at.warning)
    button(at, "Train a model on these traces").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert "is trained" in all_text(at.success)
    links = [link.proto.page for link in at.get("page_link")]
    assert "model" in links, links


# ---------------------------------------------------------------- links a colleague can open


def _other_session(params: dict) -> AppTest:
    """A second, independent browser session (same server, same FPI_HOME) opening `params` as its URL."""
    other = AppTest.from_file(APP, default_timeout=90)
    for name, value in params.items():
        other.query_params[name] = value
    return other


def test_a_link_opens_the_same_turn_in_a_new_session(at: AppTest, files: AppFiles, home: Path) -> None:
    own = pd.read_csv(files.labelled, dtype=str, keep_default_na=False).head(300)
    start(at)
    upload(at, "mine.csv", own.to_csv(index=False).encode())
    frame = load_traces(own.to_csv(index=False).encode())
    dialogue = str(frame.groupby("dialogue_id").size().idxmax())
    at.query_params["dialogue"] = dialogue
    at.switch_page(PAGES["dialogue"]).run()
    no_exception(at)
    turn = int(frame.loc[frame["dialogue_id"] == dialogue, "turn_index"].max())
    next(c for c in at.segmented_control if c.label == "Explain turn").set_value(turn).run()
    params = {name: at.query_params[name] for name in ("dataset", "dialogue", "turn")}
    assert params["dialogue"] == dialogue and str(params["turn"]) == str(turn)
    kept = home / "datasets" / str(params["dataset"])
    assert kept.is_dir() and (kept / "traces.csv").read_bytes() == own.to_csv(index=False).encode()

    colleague = _other_session(params)
    colleague.run()  # AppTest starts on the default page; a browser would open /dialogue?... directly
    no_exception(colleague)
    colleague.switch_page(PAGES["dialogue"]).run()
    no_exception(colleague)
    assert not colleague.error, [e.value for e in colleague.error]
    assert colleague.title[0].value == "Dialogue drill-down"
    assert colleague.dataframe[0].value["dialogue"].iloc[0] == dialogue
    assert next(c for c in colleague.segmented_control if c.label == "Explain turn").value == turn
    assert "bundled" not in all_text(colleague.info)  # the link's data, not the sample
    assert colleague.session_state["fpi_app_state"].data.source == "mine.csv"


def test_a_link_carries_the_overview_filters(at: AppTest) -> None:
    at.run()
    device = next(m for m in at.multiselect if m.label == "Device")
    device.set_value([device.options[0]]).run()
    filtered = metric(at, "Turns")
    params = {name: at.query_params[name] for name in ("dataset", "device")}
    colleague = _other_session(params)
    colleague.run()
    no_exception(colleague)
    assert metric(colleague, "Turns") == filtered
    assert next(m for m in colleague.multiselect if m.label == "Device").value == [device.options[0]]


def test_a_link_to_a_dataset_that_is_gone_says_so(at: AppTest) -> None:
    at.query_params["dataset"] = "0" * 64
    at.run()
    no_exception(at)
    assert "not on this server" in all_text(at.warning)
