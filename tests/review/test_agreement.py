"""Agreement between analysts: kappa against hand-computed examples, consensus, adjudication, the overlap."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fpi.review.agreement import (
    agreement, cohen_kappa, fleiss_kappa, in_overlap, reviewed_for, training_verdicts,
)
from fpi.review.store import VerdictStore

DATASET = "e" * 64
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture()
def store(tmp_path: Path):
    with VerdictStore(f"sqlite:///{(tmp_path / 'fpi.sqlite3').as_posix()}") as opened:
        yield opened


def give_all(store: VerdictStore, table: dict[str, list[str]]) -> None:
    """table: analyst -> label per turn (turn i of dialogue d<i>); '' means that analyst skipped it."""
    rows, minute = [], 0
    for analyst, labels in table.items():
        for i, label in enumerate(labels):
            if label:
                minute += 1
                rows.append({"dataset": DATASET, "dialogue_id": f"d{i}", "turn_index": 0, "label": label,
                             "analyst": analyst, "at": T0 + timedelta(minutes=minute)})
    store.record_many(rows)


def test_cohen_kappa_matches_the_textbook_example(store: VerdictStore) -> None:
    # 50 turns: both ASR 20, A ASR / B NLU 5, A NLU / B ASR 10, both NLU 15.
    # p_o = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4.
    first = ["asr"] * 25 + ["nlu"] * 25
    second = ["asr"] * 20 + ["nlu"] * 5 + ["asr"] * 10 + ["nlu"] * 15
    codes = {"asr": 2, "nlu": 3}
    assert cohen_kappa(np.array([codes[x] for x in first]), np.array([codes[x] for x in second]),
                       categories=6) == pytest.approx(0.4)
    give_all(store, {"ana": first, "bo": second})
    report = agreement(store.all())
    assert report.method == "cohen" and report.analysts == ("ana", "bo") and report.overlap_turns == 50
    assert report.overall.value == pytest.approx(0.4)
    assert report.overall.low < 0.4 < report.overall.high and report.overall.turns == 50
    per_label = report.per_label.set_index("label")
    assert per_label.loc["asr", "kappa"] == pytest.approx(0.4)  # asr-or-not is the same 2x2 table
    assert per_label.loc["nlu", "kappa"] == pytest.approx(0.4)
    assert np.isnan(per_label.loc["correct", "kappa"]) and per_label.loc["correct", "turns"] == 0
    # Against the consensus (with two analysts: the other one): agreement 35 of 50.
    assert list(report.per_analyst["agreement"]) == [pytest.approx(0.7), pytest.approx(0.7)]
    assert len(report.disagreements) == 15 and set(report.disagreements["status"]) == {"open"}


def test_fleiss_kappa_matches_the_textbook_example() -> None:
    # Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa = 0.210.
    counts = np.array([
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ])
    assert fleiss_kappa(counts) == pytest.approx(0.20993, abs=1e-4)
    assert np.isnan(fleiss_kappa(np.array([[3, 0], [3, 0]])))  # chance agreement 1: undefined, not 1


def test_three_analysts_fleiss_consensus_adjudication_and_what_retraining_uses(store: VerdictStore) -> None:
    give_all(store, {"a": ["asr", "asr", "nlu", "er"], "b": ["asr", "asr", "nlu", "nlu"],
                     "c": ["asr", "nlu", "nlu", "er"]})
    report = agreement(store.all(), store.adjudications())
    # P_i = 1, 1/3, 1, 1/3 -> P = 2/3; shares asr 5/12, nlu 5/12, er 2/12 -> P_e = 54/144; kappa = 7/15.
    assert report.method == "fleiss" and report.overall.value == pytest.approx(7 / 15)
    by = report.per_analyst.set_index("analyst")
    assert (by.loc["a", "turns"], by.loc["a", "agreement"]) == (2, 1.0)  # d1, d3 have no consensus of the others
    assert by.loc["c", "turns"] == 3 and by.loc["c", "agreement"] == pytest.approx(2 / 3)
    assert list(report.disagreements["dialogue_id"]) == ["d1", "d3"]
    kept, held = training_verdicts(store.all(), store.adjudications())
    assert sorted(kept["dialogue_id"]) == ["d0", "d2"] and sorted(held["dialogue_id"]) == ["d1", "d3"]

    store.adjudicate(dataset=DATASET, dialogue_id="d3", turn_index=0, label="er", analyst="lead", note="ER, clearly")
    report = agreement(store.all(), store.adjudications())
    status = report.disagreements.set_index("dialogue_id")
    assert status.loc["d3", "status"] == "adjudicated" and status.loc["d3", "adjudicated"] == "er"
    assert report.per_analyst.set_index("analyst").loc["a", "turns"] == 3
    kept, held = training_verdicts(store.all(), store.adjudications())
    assert list(held["dialogue_id"]) == ["d1"]
    final = kept.set_index("dialogue_id")
    assert (final.loc["d3", "label"], final.loc["d3", "analyst"]) == ("er", "lead")
    assert set(kept.columns) == set(store.latest().columns)
    assert report.to_dict()["overall"]["turns"] == 4


def test_an_analyst_changing_their_mind_counts_once_with_the_newest_label(store: VerdictStore) -> None:
    give_all(store, {"a": ["asr"], "b": ["nlu"]})
    store.record(dataset=DATASET, dialogue_id="d0", turn_index=0, label="asr", analyst="b",
                 at=T0 + timedelta(hours=1))
    assert agreement(store.all()).disagreements.empty
    kept, held = training_verdicts(store.all())
    assert held.empty and list(kept["label"]) == ["asr"]


def test_no_shared_turns_is_no_agreement_not_an_error(store: VerdictStore) -> None:
    assert agreement(store.all()).method == "none"
    give_all(store, {"a": ["asr", ""], "b": ["", "nlu"]})
    report = agreement(store.all())
    assert report.method == "none" and report.overlap_turns == 0 and np.isnan(report.overall.value)


def test_the_overlap_is_about_the_share_asked_and_stable() -> None:
    ids = [f"dlg{i}" for i in range(20_000)]
    chosen = in_overlap(ids, [0] * len(ids), share=0.10)
    assert 0.09 < chosen.mean() < 0.11
    assert (in_overlap(ids, [0] * len(ids), share=0.10) == chosen).all()
    assert not in_overlap(ids[:100], [0] * 100, share=0.0).any()


def test_an_overlap_turn_stays_in_the_queue_of_others_until_two_analysts_judged_it() -> None:
    judged = pd.DataFrame({"dialogue_id": ["d1", "d2", "d2"], "turn_index": [0, 0, 0], "analyst": ["a", "a", "b"]})
    assert reviewed_for("b", judged, share=1.0) == {("d1", 0), ("d2", 0)} - {("d1", 0)}  # d1 waits for b
    assert reviewed_for("a", judged, share=1.0) == {("d1", 0), ("d2", 0)}
    assert reviewed_for("c", judged, share=1.0) == {("d2", 0)}
    assert reviewed_for("b", judged, share=0.0) == {("d1", 0), ("d2", 0)}  # no overlap: one verdict is enough
