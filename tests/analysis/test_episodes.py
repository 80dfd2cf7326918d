"""Defect episodes: counted right on hand-made dialogues, and invariants on any dialogues."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpi.analysis.episodes import (OUTCOMES, Similarity, assign_episodes, episode_summary, episodes,
                                  format_episode_summary)
from fpi.errors import FpiError
from fpi.data.schema import LABELS


def _frame(rows: list[tuple[str, int, str, bool, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["dialogue_id", "turn_index", "asr_text", "barge_in", "failure_point"])


# (dialogue, turn, what ASR heard, barge-in on the reply, failure point)
HAND_MADE = _frame([
    # d1: misheard, rephrased, worked: recovered after 1 turn
    ("d1", 0, "play billie eilish", False, "asr"),
    ("d1", 1, "play the song billie eilish", False, "correct"),
    # d2: failed three times on the same request, then the dialogue ends: abandoned
    ("d2", 0, "turn on the kitchen light", False, "nlu"),
    ("d2", 1, "turn on the kitchen light", False, "nlu"),
    ("d2", 2, "switch on the kitchen light", False, "er"),
    # d3: a new request, then a wrong song talked over and asked for in other words: recovered
    ("d3", 0, "what is the weather", False, "correct"),
    ("d3", 1, "play jazz", True, "result"),
    ("d3", 2, "put on saxophone records", False, "correct"),
    ("d3", 3, "what time is it", False, "correct"),
    # d4: three failures on three different requests: moved on, moved on, abandoned
    ("d4", 0, "call mom", False, "asr"),
    ("d4", 1, "what's the weather in paris", False, "correct"),
    ("d4", 2, "add milk to my list", False, "er"),
    ("d4", 3, "set an alarm for seven", False, "asr"),
    # d5: a repeat that failed again, then a rephrase that worked: recovered after 2 turns
    ("d5", 0, "play hello by adele", False, "asr"),
    ("d5", 1, "play hello by adele", False, "asr"),
    ("d5", 2, "play the song hello by adele", False, "correct"),
])


def test_hand_made_dialogues_give_exact_episodes() -> None:
    table = episodes(HAND_MADE, label_column="failure_point")
    got = [(r.dialogue_id, r.first_turn, r.last_turn, r.turns, r.failure_point, r.failures, r.outcome)
           for r in table.itertuples(index=False)]
    assert got == [
        ("d1", 0, 1, 2, "asr", 1, "recovered"),
        ("d2", 0, 2, 3, "nlu", 3, "abandoned"),
        ("d3", 1, 2, 2, "result", 1, "recovered"),
        ("d4", 0, 0, 1, "asr", 1, "moved_on"),
        ("d4", 2, 2, 1, "er", 1, "moved_on"),
        ("d4", 3, 3, 1, "asr", 1, "abandoned"),
        ("d5", 0, 2, 3, "asr", 2, "recovered"),
    ]
    assert table["turns_to_recovery"].iloc[[0, 2, 6]].tolist() == [1.0, 1.0, 2.0]
    assert table["turns_to_recovery"].iloc[[1, 3, 4, 5]].isna().all()


def test_hand_made_summary_counts_turns_and_episodes_side_by_side() -> None:
    s = episode_summary(HAND_MADE, label_column="failure_point")
    assert (s.turns, s.defect_turns, s.episodes, s.requests) == (16, 10, 7, 10)
    assert (s.recovered, s.abandoned, s.moved_on) == (3, 2, 2)
    assert s.defect_rate_per_turn == pytest.approx(10 / 16)
    assert s.defect_rate_per_episode == pytest.approx(7 / 10)
    assert s.mean_turns_to_recovery == pytest.approx(4 / 3)
    assert s.abandoned_share == pytest.approx(2 / 7)
    text = format_episode_summary(s)
    assert "62.5% per turn" in text and "7 of 10 requests" in text and "2 abandoned" in text


def test_rows_in_any_order_and_predictions_before_labels() -> None:
    shuffled = HAND_MADE.sample(frac=1.0, random_state=0)
    assert episodes(shuffled, label_column="failure_point").equals(episodes(HAND_MADE, label_column="failure_point"))
    numbers = assign_episodes(shuffled, label_column="failure_point")
    assert (numbers.index == shuffled.index).all()
    assert numbers.loc[HAND_MADE.index[5]] == -1  # d3's first turn worked: in no episode
    # with predictions present they are read by default: here the model says every turn worked
    predicted = HAND_MADE.assign(predicted_failure_point="correct")
    assert episode_summary(predicted).episodes == 0
    assert episode_summary(predicted, label_column="failure_point").episodes == 7


def test_unlabelled_turns_are_left_out_and_a_missing_column_is_named() -> None:
    partly = HAND_MADE.assign(failure_point=HAND_MADE["failure_point"].where(HAND_MADE["dialogue_id"] != "d2"))
    s = episode_summary(partly, label_column="failure_point")
    assert (s.turns, s.episodes) == (13, 6)
    with pytest.raises(FpiError, match="failure_point"):
        episode_summary(HAND_MADE.drop(columns="failure_point"), label_column="failure_point")
    with pytest.raises(FpiError, match="turn_index"):
        episode_summary(HAND_MADE.drop(columns="turn_index"), label_column="failure_point")


def test_without_text_or_barge_in_every_failing_turn_is_its_own_episode() -> None:
    s = episode_summary(HAND_MADE.drop(columns=["asr_text", "barge_in"]), label_column="failure_point")
    assert s.episodes == s.defect_turns == 10
    assert s.recovered == 0 and math.isnan(s.mean_turns_to_recovery)
    assert s.to_dict()["mean_turns_to_recovery"] is None  # JSON has no NaN


WORDS = ["play", "jazz", "call", "mom", "the", "light", "on", "weather"]
TURN = st.tuples(
    st.lists(st.sampled_from(WORDS), min_size=0, max_size=4).map(" ".join),
    st.booleans(),
    st.sampled_from(LABELS),
)


@settings(max_examples=60, deadline=None)
@given(dialogues=st.lists(st.lists(TURN, min_size=1, max_size=6), min_size=1, max_size=6),
       min_similarity=st.floats(0.0, 1.0))
def test_episode_invariants(dialogues: list[list[tuple[str, bool, str]]], min_similarity: float) -> None:
    frame = _frame([(f"d{d}", k, text, barge, label)
                    for d, turns in enumerate(dialogues) for k, (text, barge, label) in enumerate(turns)])
    numbers = assign_episodes(frame, label_column="failure_point", min_similarity=min_similarity)
    table = episodes(frame, label_column="failure_point", min_similarity=min_similarity)
    failing = frame["failure_point"].ne("correct").to_numpy()
    # every failing turn is in an episode; every episode starts with one
    assert (numbers[failing] >= 0).all()
    assert table["failure_point"].ne("correct").all()
    assert table["turns"].sum() == (numbers >= 0).sum()
    assert table["failures"].sum() == failing.sum()
    for number, rows in frame.groupby(numbers.to_numpy()):
        if number < 0:
            continue
        # one dialogue, consecutive turns, only the last may be correct
        assert rows["dialogue_id"].nunique() == 1
        assert np.array_equal(rows["turn_index"].to_numpy(), np.arange(rows["turn_index"].min(),
                                                                       rows["turn_index"].max() + 1))
        assert not rows["failure_point"].iloc[:-1].eq("correct").any()
    s = episode_summary(frame, label_column="failure_point", min_similarity=min_similarity)
    assert s.recovered + s.abandoned + s.moved_on == s.episodes <= s.defect_turns
    assert set(table["outcome"]) <= set(OUTCOMES)
    assert s.requests == s.turns - table["turns"].sum() + s.episodes
    recovered = table[table["outcome"] == "recovered"]
    assert (recovered["turns_to_recovery"] == recovered["turns"] - 1).all()
    assert (recovered["turns_to_recovery"] >= 1).all()


def _reference_numbers(frame: pd.DataFrame, min_similarity: float) -> pd.Series:
    """Episode numbers the way the module doc defines them, one turn at a time."""
    from rapidfuzz import fuzz

    ordered = frame[frame["failure_point"].notna()].sort_values(["dialogue_id", "turn_index"], kind="stable")
    rows = ordered.to_dict("records")
    numbers = pd.Series(-1, index=frame.index, dtype=np.int64)
    current, open_ = -1, False
    for i, row in enumerate(rows):
        prev = rows[i - 1] if i else None
        retry = False
        if prev is not None and prev["dialogue_id"] == row["dialogue_id"]:
            text, before = (("" if pd.isna(r["asr_text"]) else str(r["asr_text"])) for r in (row, prev))
            similar = (text.strip() and before.strip()
                       and np.float32(fuzz.token_set_ratio(text, before)) / 100.0 >= min_similarity)
            retry = bool(similar) or bool(prev["barge_in"] is True)
        if open_ and retry:
            numbers[ordered.index[i]] = current
            open_ = row["failure_point"] != "correct"
        elif row["failure_point"] != "correct":
            current += 1
            numbers[ordered.index[i]] = current
            open_ = True
        else:
            open_ = False
    return numbers


def test_episodes_of_simulated_traces_equal_the_turn_by_turn_reading() -> None:
    """Retries, recoveries and gaps as a simulator makes them: numbered as a loop over the turns does."""
    from fpi.simulator.simulate import simulate

    frame = simulate(400, seed=12).sample(frac=1.0, random_state=1)  # any row order
    rng = np.random.default_rng(2)
    frame.loc[rng.random(len(frame)) < 0.1, "failure_point"] = None
    frame.loc[rng.random(len(frame)) < 0.05, "asr_text"] = None
    frame.loc[rng.random(len(frame)) < 0.05, "asr_text"] = " "
    frame.loc[rng.random(len(frame)) < 0.05, "barge_in"] = None
    for min_similarity in (0.0, 0.5, 0.9):
        numbers = assign_episodes(frame, label_column="failure_point", min_similarity=min_similarity)
        expected = _reference_numbers(frame, min_similarity)
        assert (expected >= 0).sum() > 100
        pd.testing.assert_series_equal(numbers, expected, check_names=False)


def test_the_features_similarity_gives_the_same_summary_and_is_ignored_where_it_does_not_fit() -> None:
    """The Overview hands over the model's `prev_text_similarity`: the same episodes as matching the texts."""
    from fpi.model.features import build_features, fit_feature_spec
    from fpi.model.text_measures import SIMILARITY_MAX_CHARS
    from fpi.simulator.simulate import simulate

    frame = simulate(300, seed=13).sort_values(["dialogue_id", "turn_index"], ignore_index=True)
    rng = np.random.default_rng(3)
    frame.loc[rng.random(len(frame)) < 0.05, "asr_text"] = None
    frame.loc[rng.random(len(frame)) < 0.05, "asr_text"] = ""
    frame.loc[rng.random(len(frame)) < 0.05, "asr_text"] = "  "
    assert frame["failure_point"].notna().all()

    def summary(traces: pd.DataFrame, scores: pd.Series | None = None) -> dict:
        similarity = None if scores is None else Similarity(scores, max_chars=SIMILARITY_MAX_CHARS)
        return episode_summary(traces, label_column="failure_point", similarity=similarity).to_dict()

    similarity = build_features(frame, fit_feature_spec(frame))["prev_text_similarity"]
    assert summary(frame, similarity) == summary(frame)
    unlike = pd.Series(0.0, index=frame.index)
    assert summary(frame, unlike) != summary(frame)  # used when it fits...
    gaps = frame.assign(failure_point=frame["failure_point"].where(rng.random(len(frame)) > 0.1))
    assert summary(gaps, unlike) == summary(gaps)  # ...not when turns are left out
    long = frame.copy()
    long.loc[5, "asr_text"] = "again " * SIMILARITY_MAX_CHARS
    assert summary(long, unlike) == summary(long)  # nor when a text is longer than the features read
    shuffled = frame.sample(frac=1.0, random_state=0)  # as features of it would be: in its row order
    assert summary(shuffled, unlike.loc[shuffled.index]) == summary(shuffled)  # nor for turns in another order


def test_cli_prints_turns_and_episodes(tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from fpi.cli import main
    from fpi.simulator.simulate import simulate
    from fpi.data.write import write_traces

    path = tmp_path / "traces.csv"
    frame = simulate(300, seed=4)
    write_traces(frame, path)
    text = CliRunner().invoke(main, ["episodes", str(path), "--labels"])
    assert text.exit_code == 0, text.output
    assert "per turn" in text.output and "per request" in text.output
    report = json.loads(CliRunner().invoke(main, ["episodes", str(path), "--labels", "--json"]).output)
    expected = episode_summary(frame, label_column="failure_point")
    assert report["episodes"] == expected.episodes and report["turns"] == len(frame)


def test_the_turn_strip_frames_each_episode() -> None:
    from fpi.ui.charts import confidence_strip_figure
    from fpi.analysis.navigation import stage_strip

    turns = HAND_MADE[HAND_MADE["dialogue_id"] == "d4"].assign(
        predicted_failure_point=lambda f: f["failure_point"],
        **{f"{stage}_confidence": 0.9 for stage in ("wake", "asr", "nlu", "er", "result")})
    figure = confidence_strip_figure(stage_strip(turns), episodes=episodes(turns))
    # One dashed trace draws every frame (corners, then a gap): (bottom, top) rows of each.
    (frames,) = [trace for trace in figure.data if trace.type == "scatter" and trace.line.dash == "dash"]
    ys = np.asarray(frames.y, dtype=float).reshape(-1, 6)
    assert [(y[0], y[2]) for y in ys] == [(-0.5, 0.5), (1.5, 2.5), (2.5, 3.5)]
    assert [a.text for a in figure.layout.annotations] == [
        "episode: asr, moved on", "episode: er, moved on", "episode: asr, abandoned"]
    plain = confidence_strip_figure(stage_strip(turns))
    assert not [trace for trace in plain.data if trace.type == "scatter" and trace.line.dash == "dash"]
