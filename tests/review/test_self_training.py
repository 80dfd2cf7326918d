"""Self-training on an unlabelled upload: it never reads a label, and the candidate saves like any model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.model.estimator import FailurePointModel
from fpi.review.self_training import self_train
from fpi.model.calibration import softmax
from fpi.errors import ModelError
from fpi.review.strategies import BUILDERS, MIN_SELF_TURNS, RetrainConfig, Upload
from fpi.simulator.simulate import simulate

CONFIG = RetrainConfig(distil_rounds=150)


@pytest.fixture(scope="module")
def labelled() -> pd.DataFrame:
    """Simulated traces as another pipeline would log them (ASR and ER surer, NLU less sure)."""
    frame = simulate(160, seed=43)
    for column, shift in (("asr_confidence", 2.5), ("nlu_confidence", -1.5), ("er_confidence", 1.0)):
        p = frame[column].astype(float).clip(1e-6, 1 - 1e-6)
        frame[column] = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + shift)))
    return frame


def test_self_training_reads_no_label_and_moves_the_start_model(labelled, tiny_model: FailurePointModel,
                                                                 tmp_path) -> None:
    truth = labelled[LABEL_COLUMN].to_numpy(dtype=object)
    swapped = np.array([{"correct": "asr", "asr": "correct"}.get(label, label) for label in truth], dtype=object)
    runs = {name: self_train(frame, tiny_model, CONFIG) for name, frame in (
        ("true", labelled),
        ("swapped", labelled.assign(**{LABEL_COLUMN: pd.array(swapped, dtype="str")})),
        ("none", labelled.drop(columns=[LABEL_COLUMN])),
    )}
    result = runs["true"]
    for other in ("swapped", "none"):
        np.testing.assert_array_equal(result.proba, runs[other].proba)
    np.testing.assert_allclose(result.start_proba, tiny_model.predict_proba(labelled), rtol=0, atol=1e-9)

    sure = result.start_proba.max(axis=1) >= CONFIG.self_min_probability
    assert (result.proba.argmax(axis=1)[sure] == result.start_proba.argmax(axis=1)[sure]).mean() > 0.9
    assert 0.0 < result.changed < 0.5
    assert not np.allclose(result.proba, result.start_proba, atol=0.05)  # the student moved it
    # The mixture it learnt is as sure as the starting model on average (learning its own labels makes
    # it surer, not righter), and the distilled candidate nearly so.
    hidden = labelled.assign(**{LABEL_COLUMN: pd.array([None] * len(labelled), dtype="str")})
    upload = Upload(frame=hidden, codes=np.full(len(hidden), -1), weights=np.ones(len(hidden)))
    mixture, _ = BUILDERS["self"](upload, np.zeros(len(hidden), bool), tiny_model, CONFIG)["self"]
    temperature = result.candidate.meta["retraining"]["mixture_temperature"]
    start_confidence = result.start_proba.max(axis=1).mean()
    assert softmax(mixture / temperature).max(axis=1).mean() == pytest.approx(start_confidence, abs=1e-3)
    assert result.proba.max(axis=1).mean() == pytest.approx(start_confidence, abs=0.02)
    shares = result.label_shares()
    assert list(shares["label"]) == list(LABELS)
    np.testing.assert_allclose(shares[["start", "candidate"]].sum(), [1.0, 1.0])

    candidate = result.candidate
    assert candidate.meta["training_data"]["labelled_turns"] == 0
    assert candidate.meta["retraining"]["strategy"] == "self"
    assert candidate.meta["retraining"]["base_model"] == tiny_model.version
    loaded = FailurePointModel.load(candidate.save(tmp_path / "self"))
    np.testing.assert_allclose(loaded.predict_proba(labelled), result.proba, rtol=0, atol=1e-9)


def test_the_labels_score_both_models_when_there_are_some(labelled, tiny_model: FailurePointModel) -> None:
    result = self_train(labelled, tiny_model, CONFIG)
    scored = result.on_labels(labelled)
    assert scored is not None and scored["labelled_turns"] == len(labelled)
    truth = labelled[LABEL_COLUMN].to_numpy(dtype=object)
    accuracy = (np.asarray(LABELS, dtype=object)[result.proba.argmax(axis=1)] == truth).mean()
    assert scored["candidate"]["accuracy"] == pytest.approx(accuracy)
    assert result.on_labels(labelled.assign(**{LABEL_COLUMN: pd.array([None] * len(labelled), dtype="str")})) is None
    assert result.on_labels(labelled.drop(columns=[LABEL_COLUMN])) is None


def test_too_few_sure_turns_to_learn_from_is_refused_and_self_is_then_the_start_model(
        labelled, tiny_model: FailurePointModel) -> None:
    few = labelled.head(MIN_SELF_TURNS - 1)
    with pytest.raises(ModelError, match=f"at least {MIN_SELF_TURNS} turns .* of these {MIN_SELF_TURNS - 1} turns"):
        self_train(few, tiny_model, CONFIG)
    # In retraining from verdicts, `self` on such an upload is the starting model: it ties with `keep`.
    upload = Upload(frame=few, codes=np.full(len(few), -1), weights=np.ones(len(few)))
    mixture, _ = BUILDERS["self"](upload, np.zeros(len(few), bool), tiny_model, CONFIG)["self"]
    keep, _ = BUILDERS["keep"](upload, np.zeros(len(few), bool), tiny_model, CONFIG)["keep"]
    np.testing.assert_array_equal(mixture, keep)
