"""Text models stacked into the model: out of fold, saved as arrays, explained in words."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fpi.errors import ModelError
from fpi.model.features import feature_group
from fpi.model.estimator import FailurePointModel
from fpi.model.persistence import META_FILE, TEXT_ARRAYS_FILE
from fpi.data.schema import LABELS
from fpi.model.text_stack import TEXT_FIELDS, TextClassifier, TextStack, field_of_feature, field_texts, fit_text_stack

WORDS = {"correct": "thanks great", "asr": "no i said", "nlu": "wrong app", "er": "not that one",
         "result": "stop it", "false_wake": ""}


def _dialogues(n: int, *, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Two turns per dialogue; the first turn's label shows only in the words of the second."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["correct", "asr", "nlu", "er", "result"], size=n)
    rows = []
    for i, label in enumerate(labels):
        rows.append({"dialogue_id": f"d{i:04d}", "turn_index": 0, "asr_text": f"play song {i % 7}",
                     "response_text": "ok", "failure_point": label})
        rows.append({"dialogue_id": f"d{i:04d}", "turn_index": 1, "asr_text": f"{WORDS[label]} please",
                     "response_text": "ok", "failure_point": "correct"})
    return pd.DataFrame(rows), labels


def test_the_next_turns_words_become_evidence_for_the_turn_before():
    frame, labels = _dialogues(300, seed=0)
    codes = pd.Categorical(frame["failure_point"], categories=list(LABELS)).codes.astype(int)
    folds = (np.arange(len(frame)) // 2) % 5
    stack, oof = fit_text_stack(frame, codes, folds=folds)
    first = frame["turn_index"].to_numpy() == 0
    proba = np.column_stack([oof[f"text_next_asr_{label}"] for label in LABELS])[first]
    accuracy = (np.asarray(LABELS)[proba.argmax(axis=1)] == labels).mean()
    assert accuracy > 0.9
    # the last turn has no next turn: no evidence, not a guess
    assert np.isnan(oof["text_next_asr_correct"][~first]).all()
    assert "next_asr" in stack.models


def test_no_turn_ever_sees_its_own_label_through_its_text():
    """Each dialogue says a word of its own, twice: learnable in sample, never out of fold."""
    rng = np.random.default_rng(1)
    n = 400
    labels = rng.choice(list(LABELS), size=n)
    frame = pd.DataFrame({
        "dialogue_id": np.repeat([f"d{i:04d}" for i in range(n)], 2),
        "turn_index": np.tile([0, 1], n),
        "asr_text": np.repeat([f"zq{i}x" for i in range(n)], 2),
        "failure_point": np.repeat(labels, 2),
    })
    codes = pd.Categorical(frame["failure_point"], categories=list(LABELS)).codes.astype(int)
    folds = (np.arange(len(frame)) // 2) % 5  # whole dialogues per fold
    stack, oof = fit_text_stack(frame, codes, folds=folds)
    own = np.column_stack([oof[f"text_asr_{label}"] for label in LABELS])[np.arange(len(frame)), codes]
    in_sample = stack.models["asr"].predict_proba(field_texts(frame, TEXT_FIELDS[0]))[np.arange(len(frame)), codes]
    assert in_sample.mean() > 0.5, "the word is learnable in sample, or the test proves nothing"
    assert own.mean() < 0.3, own.mean()


def test_a_text_classifier_survives_its_arrays_round_trip():
    frame, _ = _dialogues(120, seed=2)
    texts = frame["asr_text"].tolist()
    codes = pd.Categorical(frame["failure_point"], categories=list(LABELS)).codes.astype(int)
    stack = TextStack({"asr": TextClassifier.fit(texts, codes)})
    words = json.loads(json.dumps(stack.to_json()))
    again = TextStack.from_saved(words, {k: v.copy() for k, v in stack.arrays().items()})
    np.testing.assert_allclose(again.models["asr"].predict_proba(texts),
                               stack.models["asr"].predict_proba(texts), rtol=0, atol=1e-6)


def test_saved_model_with_text_models_predicts_identically_and_refuses_edits(tiny_model, sim_heldout, tmp_path):
    assert tiny_model.spec.text is not None and tiny_model.spec.text.models
    assert any(name.startswith("text_") for name in tiny_model.spec.features)
    tiny_model.save(tmp_path / "m")
    loaded = FailurePointModel.load(tmp_path / "m")
    assert set(loaded.spec.text.models) == set(tiny_model.spec.text.models)
    np.testing.assert_array_equal(loaded.predict_proba(sim_heldout), tiny_model.predict_proba(sim_heldout))
    assert loaded.reference is not None and list(loaded.reference.columns) == list(loaded.spec.features)
    arrays = tmp_path / "m" / TEXT_ARRAYS_FILE
    arrays.write_bytes(arrays.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelError, match="sha256"):
        FailurePointModel.load(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / META_FILE).read_text())
    assert meta["schedule"]["rounds"] >= 1 and meta["text_models"]


def test_telling_words_come_from_the_text_and_point_to_the_label():
    frame, _ = _dialogues(300, seed=3)
    second = frame["turn_index"] == 1
    texts = frame.loc[second, "asr_text"].tolist()
    first_labels = frame.loc[~second, "failure_point"].to_numpy()
    codes = pd.Categorical(first_labels, categories=list(LABELS)).codes.astype(int)
    model = TextClassifier.fit(texts, codes)
    words = model.telling_terms("no i said please", "asr", top=2)
    assert words and set(words) <= {"no", "i", "said", "no i", "i said", "please"}
    assert "please" not in words  # said after every label: no evidence


def test_every_text_feature_belongs_to_its_field_and_a_group():
    for field in TEXT_FIELDS:
        for label in LABELS:
            name = f"text_{field.key}_{label}"
            assert field_of_feature(name) is field
            assert feature_group(name) == field.group


def test_derived_fields_show_plain_words():
    from fpi.model.text_stack import FIELDS_BY_KEY, readable

    assert readable(FIELDS_BY_KEY["intent_words"], "SetTimer_for SetTimer_twenty") == "for twenty"
    assert readable(FIELDS_BY_KEY["entity_words"], "out_summer lacks_velvet") == "summer missing velvet"
    assert readable(FIELDS_BY_KEY["next_asr"], "no i said") == "no i said"
