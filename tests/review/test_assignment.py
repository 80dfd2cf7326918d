"""Assignment: the queue split among named analysts, each one's progress, skipped turns back to the pool."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from fpi.data.summary import dataset_fingerprint
from fpi.data.traces import load_traces
from fpi.review.assignment import Split, assign, assignment_progress, my_share, owners_of, parse_analysts
from fpi.review.store import VerdictStore
from fpi.simulator.simulate import simulate
from fpi.ui.state import STATE_KEY

NO_SKIPS = pd.DataFrame(columns=["dialogue_id", "turn_index", "analyst"])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate(90, seed=4)


def test_round_robin_deals_whole_dialogues_evenly_and_stably(frame: pd.DataFrame) -> None:
    split = Split(analysts=("Ana", " Bo ", "Cy", "Ana"))
    assert split.analysts == ("Ana", "Bo", "Cy")  # trimmed, each once
    owners = assign(frame, split)
    per_dialogue = owners.groupby(frame["dialogue_id"]).nunique()
    assert (per_dialogue == 1).all()  # a dialogue is never split between analysts
    dialogues = owners.groupby(frame["dialogue_id"]).first().value_counts()
    assert dialogues.to_dict() == {"Ana": 30, "Bo": 30, "Cy": 30}
    shuffled = frame.sample(frac=1, random_state=0)
    assert (assign(shuffled, split).sort_index() == owners.sort_index()).all()  # not the queue's order


def test_a_split_by_cohort_gives_each_value_to_one_analyst(frame: pd.DataFrame) -> None:
    owners = assign(frame, Split(analysts=("Ana", "Bo"), by="cohort", column="locale"))
    assert (owners.groupby(frame["locale"]).nunique() == 1).all()
    assert set(owners) == {"Ana", "Bo"}
    with pytest.raises(ValueError, match="needs the column"):
        Split(analysts=("Ana",), by="cohort")
    with pytest.raises(ValueError, match="no visible character"):
        Split(analysts=("\u200b",))
    assert parse_analysts("Ana, \u200b,\nBo") == ("Ana", "Bo")


def test_progress_and_a_skipped_turn_goes_back_to_the_pool(frame: pd.DataFrame) -> None:
    owners = assign(frame, Split(analysts=("Ana", "Bo")))
    keys = list(zip(frame["dialogue_id"].astype(str), frame["turn_index"].astype("int64")))
    anas = [k for k, o in zip(keys, owners) if o == "Ana"]
    judged = pd.DataFrame([(d, t, "Ana") for d, t in anas[:5]], columns=["dialogue_id", "turn_index", "analyst"])
    skipped = pd.DataFrame([(*anas[5], "Ana")], columns=["dialogue_id", "turn_index", "analyst"])
    table = assignment_progress(frame, owners, judged, skipped).set_index("analyst")
    assert table.loc["Ana", "judged"] == 5 and table.loc["Ana", "skipped"] == 1
    assert table.loc["Ana", "left"] == len(anas) - 6 and table.loc["Bo", "judged"] == 0
    queue = frame[["dialogue_id", "turn_index"]].assign(dialogue_id=frame["dialogue_id"].astype(str))
    owner_map = owners_of(frame, owners)
    bos = my_share(queue, owner_map, "Bo", skipped=skipped)
    bo_keys = list(zip(bos["dialogue_id"], bos["turn_index"]))
    assert anas[5] in bo_keys and bo_keys[-1] == anas[5]  # the pool comes after Bo's own turns
    assert not set(anas[:5]) & set(bo_keys)
    ana_keys = set(zip(*(my_share(queue, owner_map, "Ana", skipped=skipped)[c] for c in ("dialogue_id", "turn_index"))))
    assert anas[5] not in ana_keys and anas[0] in ana_keys


def test_the_team_page_splits_and_the_triage_queue_follows(at: AppTest, home: Path, files) -> None:
    at.run()
    at.switch_page("fpi/ui/pages/data.py").run()
    next(b for b in at.button if b.label == "Load labelled sample").click().run()
    at.session_state[STATE_KEY].analyst = "Lead"
    at.switch_page("fpi/ui/pages/team.py").run()
    at.text_area(key="w_team_analysts").input("Ana\nBo")
    next(b for b in at.form_submit_button if b.label == "Share out the turns").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    progress = next(d for d in at.dataframe if "assigned" in d.value.columns).value
    sample = load_traces(files.labelled)
    assert set(progress["analyst"]) == {"Ana", "Bo"} and progress["assigned"].sum() == len(sample)
    at.session_state[STATE_KEY].analyst = "Ana"
    at.switch_page("fpi/ui/pages/triage.py").run()
    assert any(c.value.startswith("Your share of the team's split") for c in at.caption)
    owners = owners_of(sample, assign(sample, Split(analysts=("Ana", "Bo"))))
    shown = {t.value for t in at.text}
    assert any(owners.get((d, t)) == "Ana" for (d, t) in owners if d in shown)
    next(b for b in at.button if b.label == "Skip").click().run()
    with VerdictStore(f"sqlite:///{home / 'fpi.sqlite3'}") as store:
        skips = store.skips(dataset=dataset_fingerprint(sample))
    assert list(skips["analyst"]) == ["Ana"]
    assert owners[(skips["dialogue_id"][0], int(skips["turn_index"][0]))] == "Ana"
