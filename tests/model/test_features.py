"""Features: context stays inside a dialogue, and nothing depends on row order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpi.model.features import (
    MIN_UPLOAD_FOR_RANKS,
    build_features,
    feature_group,
    fit_feature_spec,
)
from fpi.data.schema import CONFIDENCE_COLUMNS

UPLOAD_RELATIVE = ("rank_", "next_rank_", "prev_rank_")


def _turn_features(frame: pd.DataFrame, spec) -> pd.DataFrame:
    table = build_features(frame, spec)
    table.index = pd.MultiIndex.from_frame(frame[["dialogue_id", "turn_index"]])
    return table


def test_features_do_not_change_when_unrelated_dialogues_are_added_or_rows_shuffled(sim_small, sim_other):
    spec = fit_feature_spec(sim_small)
    alone = _turn_features(sim_small, spec)
    other = sim_other.assign(dialogue_id="x" + sim_other["dialogue_id"])
    mixed = pd.concat([other, sim_small]).sample(frac=1.0, random_state=3)
    mixed = mixed.sort_values(["dialogue_id", "turn_index"]).reset_index(drop=True)
    together = _turn_features(mixed, spec).loc[alone.index]
    # Ranks are upload-relative by design (calibration-free); everything else must be identical.
    own = [c for c in alone.columns if not c.startswith(UPLOAD_RELATIVE)]
    pd.testing.assert_frame_equal(alone[own], together[own])


def test_upload_ranks_ignore_row_order_and_duplication(sim_small):
    spec = fit_feature_spec(sim_small)
    ranks = [c for c in spec.features if c.startswith(UPLOAD_RELATIVE)]
    base = _turn_features(sim_small, spec)[ranks]
    twice = pd.concat([sim_small, sim_small.assign(dialogue_id="copy-" + sim_small["dialogue_id"])])
    twice = twice.sort_values(["dialogue_id", "turn_index"]).reset_index(drop=True)
    doubled = _turn_features(twice, spec)[ranks]
    doubled = doubled[~doubled.index.get_level_values(0).str.startswith("copy-")]
    np.testing.assert_allclose(base.to_numpy(), doubled.loc[base.index].to_numpy(), atol=1e-9)


def test_small_upload_ranks_against_training_reference(sim_small):
    spec = fit_feature_spec(sim_small)
    few = sim_small.head(MIN_UPLOAD_FOR_RANKS // 4)
    ranks = build_features(few, spec)["rank_asr_confidence"].to_numpy()
    present = ~np.isnan(few["asr_confidence"].to_numpy(dtype=float))
    assert np.all((ranks[present] >= 0) & (ranks[present] <= 1))
    order = np.argsort(few["asr_confidence"].to_numpy(dtype=float)[present])
    assert np.all(np.diff(ranks[present][order]) >= -1e-12)


def test_context_reads_the_next_turn_of_the_same_dialogue_only():
    frame = pd.DataFrame({
        "dialogue_id": pd.array(["a", "a", "b"], dtype="str"),
        "turn_index": [0, 1, 0],
        "timestamp": pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:06Z"]),
        "wake_confidence": [0.9, 0.9, 0.9],
        "asr_confidence": [0.3, 0.95, 0.7],
        "asr_text": pd.array(["play the hobbit", "i said play the hobbit", "what time is it"], dtype="str"),
        "nlu_intent": pd.array(["PlayAudiobook", "PlayAudiobook", "GetTime"], dtype="str"),
        "nlu_confidence": [0.8, 0.9, 0.9],
        "er_confidence": [0.5, 0.9, np.nan],
        "result_confidence": [0.7, 0.9, 0.9],
        "barge_in": pd.array([True, False, False], dtype="boolean"),
    })
    spec = fit_feature_spec(frame)
    table = build_features(frame, spec)
    assert table.loc[0, "next_text_similarity"] == pytest.approx(1.0)  # token set of turn 0 inside turn 1
    assert np.isnan(table.loc[1, "next_text_similarity"])  # last turn of "a": "b" is another dialogue
    assert table.loc[0, "next_asr_confidence"] == pytest.approx(0.95)
    assert np.isnan(table.loc[1, "next_asr_confidence"])
    assert table.loc[0, "gap_to_next_s"] == pytest.approx(5.0)
    assert np.isnan(table.loc[1, "gap_to_next_s"])
    assert table.loc[0, "next_same_intent"] == 1.0
    assert list(table["is_last_turn"]) == [0.0, 1.0, 1.0]
    assert list(table["dialogue_length"]) == [2.0, 2.0, 1.0]
    assert table.loc[2, "missing_er_confidence"] == 1.0
    assert table.loc[0, "barge_in"] == 1.0


def test_works_without_any_optional_column(sim_small):
    required = ["dialogue_id", "turn_index", *CONFIDENCE_COLUMNS]
    spec = fit_feature_spec(sim_small)
    table = build_features(sim_small[required], spec)
    assert list(table.columns) == list(spec.features)
    assert table["asr_word_count"].isna().all()
    assert table[list(CONFIDENCE_COLUMNS)].notna().any().all()


def test_unseen_categorical_levels_become_missing(sim_small):
    spec = fit_feature_spec(sim_small)
    changed = sim_small.assign(device_type="hologram")
    assert build_features(changed, spec)["device_type"].isna().all()
    assert build_features(sim_small, spec)["device_type"].notna().all()


def test_stage_extras_are_features_and_every_feature_has_a_group(sim_small):
    spec = fit_feature_spec(sim_small)
    assert "asr_nbest_margin" in spec.stage_signals
    assert feature_group("asr_nbest_margin") == "asr"
    assert feature_group("next_text_similarity") == "dialogue"
    assert feature_group("locale") == "device/locale"
    assert all(feature_group(name) != "other" for name in spec.features), [
        name for name in spec.features if feature_group(name) == "other"
    ]


def test_replies_that_say_the_command_changed_nothing() -> None:
    texts = ["turn the lamp on", "play the song", "Play some", "", None]
    replies = ["The lamp is already on.", "Playing it.", None, "Nothing to change here", "Sorry, I ALREADY did."]
    frame = pd.DataFrame({
        "dialogue_id": pd.array([f"d{i}" for i in range(5)], dtype="str"), "turn_index": [0] * 5,
        **{c: [0.9] * 5 for c in CONFIDENCE_COLUMNS},
        "asr_text": pd.array(texts, dtype="str"), "response_text": pd.array(replies, dtype="str"),
    })
    table = build_features(frame, fit_feature_spec(frame))
    assert table["response_no_change"].tolist() == [1, 0, 0, 1, 1]
    bare = build_features(frame.drop(columns=["response_text"]), fit_feature_spec(frame))
    assert bare["response_no_change"].isna().all()  # not logged: unknown, not "no"


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), st.text(alphabet=" \tab\u00e9\n", max_size=12)), min_size=1, max_size=8))
def test_word_counts_match_python_split(texts):
    n = len(texts)
    frame = pd.DataFrame({
        "dialogue_id": pd.array([f"d{i}" for i in range(n)], dtype="str"),
        "turn_index": [0] * n,
        **{c: [0.9] * n for c in CONFIDENCE_COLUMNS},
        "asr_text": pd.array(texts, dtype="str"),
    })
    table = build_features(frame, fit_feature_spec(frame))
    expected = [len(t.split()) if t is not None else 0 for t in texts]
    assert table["asr_word_count"].tolist() == expected
    assert table["asr_text_empty"].tolist() == [float(e == 0) for e in expected]


def test_features_of_chunks_with_whole_upload_stats_equal_the_whole(sim_small):
    from fpi.model.features import UploadStats

    spec = fit_feature_spec(sim_small)
    whole = build_features(sim_small, spec)
    ids = sim_small["dialogue_id"].unique()
    first = sim_small["dialogue_id"].isin(ids[: len(ids) // 3])
    parts = [sim_small[first], sim_small[~first]]
    stats = UploadStats.of(parts[0]).merge(UploadStats.of(parts[1]))
    pieced = pd.concat([build_features(part, spec, upload=stats) for part in parts]).loc[whole.index]
    pd.testing.assert_frame_equal(whole, pieced)


def test_pooled_uploads_are_ranked_each_within_itself(sim_small, sim_other):
    from fpi.model.features import build_features_by_upload

    spec = fit_feature_spec(sim_small)
    shifted = sim_other.assign(dialogue_id="x" + sim_other["dialogue_id"],
                               asr_confidence=sim_other["asr_confidence"] ** 4)  # another pipeline's calibration
    pool = pd.concat([sim_small.assign(pipeline="a"), shifted.assign(pipeline="b")], ignore_index=True)
    by_upload = build_features_by_upload(pool, spec, "pipeline")
    alone = build_features(pool[pool["pipeline"] == "b"], spec)
    pd.testing.assert_frame_equal(by_upload[pool["pipeline"] == "b"], alone)
    pooled = build_features(pool, spec)
    assert not np.allclose(pooled.loc[alone.index, "rank_asr_confidence"], alone["rank_asr_confidence"])
