"""The Triage page with `streamlit.testing.v1.AppTest`: who the analyst is, verdicts, progress, retraining."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_files import button, no_error

from fpi.data.schema import LABELS, PROBABILITY_COLUMNS
from fpi.model.estimator import FailurePointModel
from fpi.review.store import VerdictStore
from fpi.ui.state import STATE_KEY
from fpi.ui.text import md_escape

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")
TRIAGE = "fpi/ui/pages/triage.py"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "not-a-real-secret",
        "client_id": "fpi", "client_secret": "not-a-real-secret",
        "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration"}


def verdicts(home: Path):
    with VerdictStore(f"sqlite:///{home / 'fpi.sqlite3'}") as store:
        return store.all()


def open_triage(at: AppTest, sample: str = "labelled") -> AppTest:
    at.run()
    at.switch_page("fpi/ui/pages/data.py").run()
    button(at, f"Load {sample} sample").click().run()
    at.switch_page(TRIAGE).run()
    no_error(at)
    return at


def sign_in(at: AppTest, name: str = "Ana Lima") -> AppTest:
    at.text_input(key="w_triage_name").input(name)
    at.form_submit_button[0].click().run()
    no_error(at)
    return at


def progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def current_turn(at: AppTest) -> tuple[str, str]:
    """(dialogue id, "Turn n of dialogue") of the turn under review."""
    captions = [c.value for c in at.caption]
    header = next(c for c in captions if c.startswith("Turn ") and c.endswith(" of dialogue"))
    known = set(at.session_state[STATE_KEY].data.frame["dialogue_id"])
    return next(t.value for t in at.text if t.value in known), header


def test_triage_opens_on_the_sample_and_says_so(at: AppTest) -> None:
    at.run()
    at.switch_page(TRIAGE).run()
    no_error(at)
    assert at.title[0].value == "Triage"
    assert "bundled **labelled sample**" in at.info[0].value


def test_the_analyst_types_a_name_once(at: AppTest) -> None:
    open_triage(at)
    assert any("Type your name" in i.value for i in at.info)
    assert not [b for b in at.button if b.label in ("ASR", "correct")]  # no verdicts before a name
    at.form_submit_button[0].click().run()  # empty name: refused
    assert "never anonymous" in at.warning[0].value
    sign_in(at)
    assert "Ana Lima" in [t.value for t in at.text]
    at.switch_page("fpi/ui/pages/data.py").run()
    at.switch_page(TRIAGE).run()
    assert not at.form_submit_button  # asked once per session


def test_a_verdict_is_stored_and_the_next_turn_comes_up(at: AppTest, home: Path) -> None:
    sign_in(open_triage(at))
    first = current_turn(at)
    assert progress_text(at).startswith("0 of ")
    size = progress_text(at).split(" of ")[1].split(" ")[0]
    assert [b.label for b in at.button if b.key and b.key.startswith("w_triage_verdict_")] == [
        "correct", "false wake", "ASR", "NLU", "ER", "result"]
    assert [b.proto.shortcut for b in at.button if b.key and b.key.startswith("w_triage_verdict_")] == [
        "1", "2", "3", "4", "5", "6"]

    at.text_input(key="w_triage_note").input("=ASR misheard 'pay'")
    button(at, "NLU").click().run()
    no_error(at)
    rows = verdicts(home)
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["label"], row["analyst"], row["note"]) == ("nlu", "Ana Lima", "=ASR misheard 'pay'")
    assert (row["dialogue_id"], f"Turn {row['turn_index']} of dialogue") == first
    assert row["predicted_label"] in LABELS and row["model_version"]
    assert current_turn(at) != first
    assert progress_text(at).startswith(f"1 of {size} ") and "1 given in this session" in progress_text(at)
    assert at.text_input(key="w_triage_note").value == ""  # the note does not carry over

    second = current_turn(at)
    button(at, "Skip").click().run()
    assert current_turn(at) not in (first, second)
    button(at, "correct").click().run()
    assert len(verdicts(home)) == 2 and progress_text(at).startswith(f"2 of {size} ")


def test_verdict_buttons_are_neutral_and_the_prediction_is_text(at: AppTest) -> None:
    sign_in(open_triage(at))
    verdict_buttons = [b for b in at.button if b.key and b.key.startswith("w_triage_verdict_")]
    assert len(verdict_buttons) == len(LABELS)
    assert {b.proto.type for b in verdict_buttons} == {"secondary"}  # none pre-selected
    assert not any("prediction" in (b.help or "") for b in verdict_buttons)
    assert any(m.value.startswith("**Predicted: ") for m in at.markdown)


def test_filters_and_a_cohort_from_the_cohorts_page(at: AppTest) -> None:
    sign_in(open_triage(at))
    at.selectbox(key="w_triage_label").set_value("asr").run()
    no_error(at)
    assert any(m.value.startswith("**Predicted: ASR**") for m in at.markdown)
    at.selectbox(key="w_triage_label").set_value(None).run()
    at.session_state[STATE_KEY].triage_cohort = {"device_type": "tv"}
    at.run()
    no_error(at)
    assert "device_type = tv" in [t.value for t in at.text]
    state = at.session_state[STATE_KEY]
    frame = state.data.frame
    dialogue = current_turn(at)[0]
    assert set(frame.loc[frame["dialogue_id"] == dialogue, "device_type"]) == {"tv"}
    tv_turns = int((frame["device_type"] == "tv").sum())
    assert f" of {tv_turns:,} turns" in progress_text(at)
    button(at, "Whole data").click().run()
    assert at.session_state[STATE_KEY].triage_cohort is None
    assert f" of {len(frame):,} turns" in progress_text(at)


def test_retraining_with_too_few_labels_says_so(at: AppTest) -> None:
    sign_in(open_triage(at, "unlabelled"))
    for _ in range(3):
        button(at, "ASR").click().run()
    button(at, "Train a candidate").click().run()
    no_error(at)
    expected = "at least 50 labelled turns; there are 3 (0 labelled in the data, 3 verdicts)"
    assert md_escape(expected) in at.warning[0].value


@pytest.mark.parametrize("strategy", ["continue", "self", "blend"])
def test_retrain_compare_and_activate(at: AppTest, home: Path, monkeypatch, strategy: str) -> None:
    from app_files import QUICK
    from fpi.review.adapt import strategy_words
    from fpi.review.retrain import RetrainConfig
    from fpi.ui.services import triage as triage_services

    # one strategy, so there is always a candidate to activate (auto may keep the active model)
    monkeypatch.setattr(triage_services, "RETRAIN_CONFIG", RetrainConfig(
        strategy=strategy, train=QUICK, verdict_rounds=(20,), blend_weights=(0.5,), distil_rounds=60))
    sign_in(open_triage(at))
    button(at, "ER").click().run()
    button(at, "Train a candidate").click().run()
    no_error(at)
    chosen = at.session_state[STATE_KEY].candidate.strategy
    assert chosen.split("@")[0] == strategy
    assert any(strategy_words(chosen) in c.value for c in at.caption)  # named in words, not as "blend@20:0.5"
    activate = next(b for b in at.button if b.key == "verdict_candidate_activate")
    version = activate.label.split()[1]
    assert any(t.startswith("The candidate is ") for t in
               [e.value for e in (*at.success, *at.warning, *at.info)])
    table = next(d.value for d in at.dataframe if "macro_f1" in d.value.columns)
    assert list(table["system"]) == ["active", "candidate"] and table["turns"].nunique() == 1
    assert (home / "models" / version / "model.txt").is_file()
    assert at.session_state[STATE_KEY].candidate.upload_scores.model_version == version
    activate.click().run()
    confirm = [b for b in at.button if b.key == "verdict_candidate_confirm"]
    if confirm:  # a worse candidate is activated only on a second click
        confirm[0].click().run()
    no_error(at)
    assert f"Scored by model: {version}" in [t.value for t in at.switch_page("fpi/ui/pages/data.py").run().text]
    # re-ranked with the probabilities the candidate computed while it trained: the same as scoring afresh
    data = at.session_state[STATE_KEY].data
    assert data.kept_probabilities and at.session_state[STATE_KEY].activated_scores is None
    fresh = FailurePointModel.load(home / "models" / version).predict_proba(data.raw)
    np.testing.assert_allclose(data.frame[list(PROBABILITY_COLUMNS)].to_numpy(), fresh, rtol=0, atol=1e-9)
    at.switch_page(TRIAGE).run()
    button(at, "Roll back to the previous model").click().run()
    no_error(at)
    assert not (home / "models" / "active.json").read_text().count(f'"version": "{version}"')


def test_login_configured_shows_only_the_login_page(at: AppTest) -> None:
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": False}
    at.run()
    no_error(at)
    assert [b.label for b in at.button] == ["Log in"]
    assert "sign in" in at.info[0].value


def test_the_logged_in_user_is_the_analyst(at: AppTest, home: Path) -> None:
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": "ana@example.com", "email_verified": True, "name": "Ana Lima"}
    open_triage(at)
    assert not at.form_submit_button  # no name to type
    assert "ana@example.com" in [t.value for t in at.text]
    assert "Log out" in [b.label for b in at.button]
    button(at, "result").click().run()
    no_error(at)
    assert verdicts(home)["analyst"].tolist() == ["ana@example.com"]


def test_an_unverified_email_claim_does_not_name_the_analyst(at: AppTest, home: Path) -> None:
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": "lead@example.com", "email_verified": False, "name": "Ana Lima"}
    open_triage(at)
    assert "lead@example.com" not in [t.value for t in at.text]
    assert "Ana Lima" in [t.value for t in at.text]


def test_a_cohort_sent_from_the_cohorts_page_narrows_the_queue(at: AppTest) -> None:
    at.run()
    at.switch_page("fpi/ui/pages/data.py").run()
    button(at, "Load labelled sample").click().run()
    at.switch_page("fpi/ui/pages/cohorts.py").run()
    found = next(d for d in at.dataframe if d.key and d.key.startswith("w_cohort_found"))
    at.session_state[found.key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    button(at, "Triage these turns").click().run()
    no_error(at)
    assert at.title[0].value == "Triage"
    cohort = at.session_state[STATE_KEY].triage_cohort
    assert cohort
    at.switch_page(TRIAGE)  # AppTest stays on the page it was told; the app itself has switched
    sign_in(at)
    assert " and ".join(f"{k} = {v}" for k, v in cohort.items()) in [t.value for t in at.text]
