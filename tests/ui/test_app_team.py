"""The Team page, blind overlap in Triage and roles on the Model page, with `streamlit.testing.v1.AppTest`."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from app_files import button, no_error
from conftest import MAINTAINER_TOKEN
from fpi.data.summary import dataset_fingerprint
from fpi.data.traces import load_traces
from fpi.review.agreement import training_verdicts
from fpi.review.store import VerdictStore
from fpi.ui.state import STATE_KEY, AppState

REPO = Path(__file__).resolve().parents[2]
TEAM = "fpi/ui/pages/team.py"
TRIAGE = "fpi/ui/pages/triage.py"
MODEL = "fpi/ui/pages/model.py"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def store_of(home: Path) -> VerdictStore:
    return VerdictStore(f"sqlite:///{home / 'fpi.sqlite3'}")


def load_sample(at: AppTest) -> None:
    at.run()
    at.switch_page("fpi/ui/pages/data.py").run()
    button(at, "Load labelled sample").click().run()


def two_analysts(home: Path, frame: pd.DataFrame, *, turns: int = 40) -> str:
    """Ana and Bo judge the same `turns` turns and disagree on every fifth; returns the dataset fingerprint."""
    dataset = dataset_fingerprint(frame)
    keys = frame[["dialogue_id", "turn_index"]].head(turns).itertuples(index=False)
    rows = []
    for i, (dialogue, turn) in enumerate(keys):
        truth = ["asr", "nlu", "correct", "er"][i % 4]
        for j, (who, label) in enumerate((("Ana", truth), ("Bo", "result" if i % 5 == 0 else truth))):
            rows.append({"dataset": dataset, "dialogue_id": str(dialogue), "turn_index": int(turn), "label": label,
                         "analyst": who, "at": T0 + timedelta(minutes=2 * i + j)})
    with store_of(home) as store:
        store.record_many(rows)
    return dataset


def test_the_team_page_shows_agreement_and_a_disagreement_can_be_adjudicated(at: AppTest, home: Path,
                                                                           files) -> None:
    two_analysts(home, load_traces(files.labelled))
    load_sample(at)
    at.switch_page(TEAM).run()
    no_error(at)
    assert at.title[0].value == "Team"
    kappa = next(m for m in at.metric if m.label == "Cohen's kappa")
    assert 0.5 < float(kappa.value) < 1.0 and "interval" in kappa.proto.delta
    assert next(m for m in at.metric if m.label == "Turns judged by two or more").value == "40"
    disagreements = next(d for d in at.dataframe if d.key == "w_team_adjudicate")
    assert len(disagreements.value) == 8
    at.session_state[STATE_KEY].analyst = "Lead"
    at.session_state["w_team_adjudicate"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.selectbox(key="w_team_adjudicate_label").set_value("asr")
    at.text_input(key="w_team_adjudicate_note").input("the user said 'play', ASR heard 'pay'")
    button_ = next(b for b in at.button if b.label == "Record the final label")
    button_.click().run()
    no_error(at)
    with store_of(home) as store:
        adjudicated = store.adjudications()
        kept, held = training_verdicts(store.all(), adjudicated)
    assert list(adjudicated["analyst"]) == ["Lead"] and list(adjudicated["label"]) == ["asr"]
    assert len(held) == 7 and len(kept) == 33  # the other seven disagreements teach nothing yet


def test_an_overlap_turn_comes_to_a_second_analyst_blind(at: AppTest, home: Path, files, monkeypatch) -> None:
    monkeypatch.setenv("FPI_OVERLAP_SHARE", "1")  # every turn goes to two analysts
    load_sample(at)
    at.switch_page(TRIAGE).run()
    at.text_input(key="w_triage_name").input("Ana")
    at.form_submit_button[0].click().run()
    button(at, "ASR").click().run()
    no_error(at)
    [turn] = list(at.session_state[STATE_KEY].triage.this_session)
    # Bo, in another session, gets the same turn, and does not see Ana's verdict.
    other = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
    other.session_state[STATE_KEY] = AppState()
    load_sample(other)
    other.switch_page(TRIAGE).run()
    other.text_input(key="w_triage_name").input("Bo")
    other.form_submit_button[0].click().run()
    no_error(other)
    shown = [t.value for t in other.text]
    assert turn[0] in shown
    assert any("shown once you have given yours" in c.value for c in other.caption)
    assert "Ana" not in " ".join(c.value for c in other.caption)


def test_an_analyst_cannot_activate_a_maintainer_can_and_the_model_page_logs_both(at: AppTest, home: Path) -> None:
    at.session_state[STATE_KEY] = AppState()  # no token typed: an analyst
    load_sample(at)
    at.switch_page(MODEL).run()
    assert any("(analyst)" in c.value for c in at.caption)
    button(at, "Activate").click().run()
    assert any("only a maintainer may activate a model" in e.value for e in at.error)
    at.text_input(key="w_maintainer_name").input("Lee")
    at.text_input(key="w_maintainer_token").input("wrong")
    at.form_submit_button[0].click().run()
    assert any("not the maintainer token" in w.value for w in at.warning)
    at.text_input(key="w_maintainer_token").input(MAINTAINER_TOKEN)
    at.form_submit_button[0].click().run()
    assert any("**Lee** (maintainer)" in c.value for c in at.caption)
    button(at, "Activate").click().run()
    no_error(at)
    with store_of(home) as store:
        log = store.events().iloc[::-1]
    assert list(log["allowed"]) == [False, True]
    assert list(log["actor"]) == ["unnamed session", "Lee"]  # nobody had typed a name before the refusal
    assert list(log["role"]) == ["analyst", "maintainer"]
    shown = next(d for d in at.dataframe if "actor" in d.value.columns or "who" in d.value.columns)
    assert len(shown.value) == 2


def test_without_a_token_model_changes_are_off(at: AppTest, home: Path, monkeypatch) -> None:
    monkeypatch.delenv("FPI_MAINTAINER_TOKEN")
    load_sample(at)
    at.switch_page(MODEL).run()
    assert any("Model changes are off in this app" in c.value for c in at.caption)
    assert not at.form_submit_button


def test_the_audit_flags_planted_wrong_verdicts_and_a_confirmation_keeps_one(at: AppTest, home: Path, files) -> None:
    frame = load_traces(files.labelled)
    dataset = dataset_fingerprint(frame)
    labelled = frame[frame["failure_point"].notna()].head(300)
    wrong = {"correct": "er", "asr": "correct", "nlu": "correct", "er": "asr", "false_wake": "nlu", "result": "asr"}
    rows = [{"dataset": dataset, "dialogue_id": str(r.dialogue_id), "turn_index": int(r.turn_index),
             "label": wrong[r.failure_point] if i % 10 == 0 else r.failure_point, "analyst": "Ana",
             "at": T0 + timedelta(minutes=i)} for i, r in enumerate(labelled.itertuples(index=False))]
    with store_of(home) as store:
        store.record_many(rows)
    load_sample(at)
    at.switch_page(TEAM).run()
    button(at, "Audit the verdicts on the loaded traces").click().run()
    no_error(at)
    result = at.session_state[STATE_KEY].audit
    assert result is not None and result.checked == 300 and result.flagged >= 10
    assert any(c.value.startswith("Audit: 300 verdicts checked") for c in at.caption)
    at.session_state[STATE_KEY].analyst = "Lead"
    at.session_state["w_team_audit"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    flagged = result.flags.iloc[0]
    assert at.selectbox(key="w_team_audit_label").value == flagged["label"]  # confirming is one click
    button(at, "Record the final label").click().run()
    no_error(at)
    with store_of(home) as store:
        confirmed = store.adjudications()
    assert list(zip(confirmed["dialogue_id"], confirmed["label"])) == [(flagged["dialogue_id"], flagged["label"])]
