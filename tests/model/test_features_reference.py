"""The dialogue and text features against a turn-by-turn reference written the plain way.

`build_features` computes these vectorised (a similarity once per adjacent pair, coverage once per
distinct pair, equality on factorized codes); the reference below is how they are defined, one turn at
a time, so any shortcut that changes a value shows up here, on a frame with gaps, empty texts,
repeated texts and values across dialogue boundaries.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from rapidfuzz import fuzz

from fpi.data.check import validate_traces
from fpi.model.features import APOLOGY, NO_CHANGE, build_features, fit_feature_spec
from fpi.model.text_measures import SIMILARITY_MAX_CHARS
from fpi.simulator.simulate import simulate

COMPARED = ("next_text_similarity", "prev_text_similarity", "entity_in_text", "entity_words_heard",
            "entity_covers_request", "asr_word_count", "asr_text_empty", "response_word_count", "response_apology",
            "response_no_change",
            "next_same_intent", "prev_same_intent", "next_same_domain", "prev_same_domain", "next_same_entity",
            "prev_same_entity")


@pytest.fixture(scope="module")
def ragged() -> pd.DataFrame:
    """Simulated turns with the awkward cases real exports have."""
    frame = simulate(250, seed=3)
    rng = np.random.default_rng(0)
    n = len(frame)
    for column in ("asr_text", "er_entity", "nlu_intent", "nlu_domain", "response_text"):
        frame.loc[rng.random(n) < 0.08, column] = None
        frame.loc[rng.random(n) < 0.05, column] = ""
    frame.loc[rng.random(n) < 0.1, "asr_text"] = "Play Play the NEWS"  # repeats, case, duplicate words
    frame.loc[rng.random(n) < 0.05, "er_entity"] = "the news"
    frame.loc[rng.random(n) < 0.02, "asr_text"] = "turn it up " * 80  # longer than the similarity cap
    frame.loc[rng.random(n) < 0.03, "asr_text"] = "  "
    frame.loc[rng.random(n) < 0.05, "response_text"] = "The lamp is Already on."
    frame.loc[rng.random(n) < 0.03, "er_entity"] = " "
    return validate_traces(frame)


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA else str(value)


def _ratio(scorer, a: str, b: str) -> float:
    if not a or not b:
        return np.nan
    return float(np.float32(scorer(a[:SIMILARITY_MAX_CHARS], b[:SIMILARITY_MAX_CHARS]))) / 100.0


def _reference(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame.to_dict("records")
    out = {name: np.full(len(rows), np.nan) for name in COMPARED}
    for i, row in enumerate(rows):
        text, entity, response = _text(row["asr_text"]), _text(row["er_entity"]), _text(row["response_text"])
        prev = rows[i - 1] if i > 0 and rows[i - 1]["dialogue_id"] == row["dialogue_id"] else None
        nxt = rows[i + 1] if i + 1 < len(rows) and rows[i + 1]["dialogue_id"] == row["dialogue_id"] else None
        out["asr_word_count"][i] = len(text.split())
        out["asr_text_empty"][i] = float(len(text.split()) == 0)
        out["response_word_count"][i] = len(response.split())
        out["response_apology"][i] = float(re.search(APOLOGY, response, re.IGNORECASE) is not None)
        out["response_no_change"][i] = float(re.search(NO_CHANGE, response, re.IGNORECASE) is not None)
        out["entity_in_text"][i] = _ratio(fuzz.partial_ratio, entity, text)
        said, resolved = set(text.lower().split()), set(entity.lower().split())
        if said and resolved:
            out["entity_words_heard"][i] = len(said & resolved) / len(resolved)
            out["entity_covers_request"][i] = len(said & resolved) / len(said)
        if nxt is not None:
            out["next_text_similarity"][i] = _ratio(fuzz.token_set_ratio, text, _text(nxt["asr_text"]))
        if prev is not None:
            out["prev_text_similarity"][i] = _ratio(fuzz.token_set_ratio, text, _text(prev["asr_text"]))
        for column, name in (("nlu_intent", "intent"), ("nlu_domain", "domain"), ("er_entity", "entity")):
            for side, other in (("next", nxt), ("prev", prev)):
                mine, theirs = row[column], None if other is None else other[column]
                if other is not None and not pd.isna(mine) and not pd.isna(theirs):
                    out[f"{side}_same_{name}"][i] = float(mine == theirs)
    return pd.DataFrame(out, index=frame.index)


def test_dialogue_and_text_features_equal_the_turn_by_turn_reference(ragged):
    spec = fit_feature_spec(ragged)
    built = build_features(ragged, spec)[list(COMPARED)]
    pd.testing.assert_frame_equal(built, _reference(ragged), check_exact=True)


def test_text_columns_read_as_plain_objects_give_the_same_features(ragged):
    """A frame whose text columns are Python objects (not pandas strings) builds the same matrix."""
    spec = fit_feature_spec(ragged)
    texts = [c for c in ragged.columns if isinstance(ragged[c].dtype, pd.StringDtype)]
    as_objects = ragged.astype({c: object for c in texts})
    pd.testing.assert_frame_equal(build_features(as_objects, spec), build_features(ragged, spec), check_exact=True)


def test_a_single_turn_and_an_empty_frame_build(ragged):
    spec = fit_feature_spec(ragged)
    one = build_features(ragged.head(1), spec)
    assert np.isnan(one[["next_text_similarity", "prev_text_similarity", "next_same_intent"]].to_numpy()).all()
    assert build_features(ragged.head(0), spec).shape == (0, len(spec.features))


def test_a_blank_request_or_entity_covers_nothing_instead_of_failing(ragged):
    """A request of spaces beside a resolved entity used to divide by zero and fail the whole upload."""
    spec = fit_feature_spec(ragged)
    turns = ragged.head(4).copy()
    turns["asr_text"] = ["  ", "play jazz", "\t", "play jazz"]
    turns["er_entity"] = ["jazz", " ", "jazz", "jazz"]
    built = build_features(turns, spec)
    assert np.isnan(built["entity_words_heard"].to_numpy()[:3]).all()
    assert np.isnan(built["entity_covers_request"].to_numpy()[:3]).all()
    assert built["entity_words_heard"].iloc[3] == 1.0 and built["entity_covers_request"].iloc[3] == 0.5
