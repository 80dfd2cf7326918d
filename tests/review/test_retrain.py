"""Adaptation from verdicts: reading verdict files, folds by dialogue, and the strategy the data chooses."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fpi.review.adapt import RetrainConfig, Selection, cv_folds, select_strategy
from fpi.errors import NotLabelledError, TraceError
from fpi.model.estimator import FailurePointModel
from fpi.review.retrain import LABEL_SOURCE, labels_with_verdicts, read_verdicts, retrain_from_verdicts
from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.model.calibration import softmax
from fpi.model.training import TrainConfig, class_codes
from fpi.review.strategies import BUILDERS, Upload
from fpi.simulator.simulate import simulate

SMALL = RetrainConfig(candidates=("keep", "verdicts"), verdict_rounds=(20, 60), folds=3)


@pytest.fixture(scope="module")
def upload() -> tuple[pd.DataFrame, np.ndarray]:
    """Unlabelled traces and their true labels."""
    frame = simulate(160, seed=41)
    truth = frame[LABEL_COLUMN].to_numpy(dtype=object)
    return frame.assign(**{LABEL_COLUMN: pd.array([None] * len(frame), dtype="str")}), truth


def verdicts_for(frame: pd.DataFrame, labels: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"dialogue_id": frame["dialogue_id"].iloc[rows].astype(str).to_numpy(),
                         "turn_index": frame["turn_index"].iloc[rows].astype(int).to_numpy(),
                         "label": labels[rows]})


# ---------------------------------------------------------------- verdict files

def test_read_a_plain_verdicts_csv(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("dialogue_id,turn_index,label\nd1,0,asr\n'-d2,3,correct\n", encoding="utf-8")
    table = read_verdicts(path)
    assert table.values.tolist() == [["d1", 0, "asr"], ["-d2", 3, "correct"]]  # the export's quote undone


def test_read_the_verdicts_export_keeps_the_newest_per_turn(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    pd.DataFrame({"id": [1, 2, 3], "dialogue_id": ["a", "a", "b"], "turn_index": [0, 0, 1],
                  "label": ["er", "nlu", "result"], "analyst": ["x", "y", "x"],
                  "created_at": ["2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"],
                  }).to_csv(path, index=False)
    assert read_verdicts(path).values.tolist() == [["b", 1, "result"], ["a", 0, "er"]]


def test_read_the_traces_export_skips_turns_without_a_verdict(tmp_path: Path) -> None:
    path = tmp_path / "export.parquet"
    pd.DataFrame({"dialogue_id": ["a", "a"], "turn_index": [0, 1], "asr_confidence": [0.5, 0.9],
                  "verdict_label": [None, "asr"]}).to_parquet(path)
    assert read_verdicts(path).values.tolist() == [["a", 1, "asr"]]


@pytest.mark.parametrize(("content", "match"), [
    ("dialogue_id,label\nd1,asr\n", r"column 'turn_index': missing required column"),
    ("dialogue_id,turn_index\nd1,0\n", r"column 'label': missing required column"),
    ("dialogue_id,turn_index,label\nd1,0,asr\nd1,1,ASR?\nd2,0,oops\n",
     r"column 'label', rows 3, 4 \(2 in all\): unknown label \(found: 'ASR\?', 'oops'\)"),
    ("dialogue_id,turn_index,label\nd1,x,asr\nd1,-1,asr\nd1,1.5,asr\n",
     r"column 'turn_index', rows 2, 3, 4 \(3 in all\): not a whole number"),
    ("dialogue_id,turn_index,label\n,0,asr\n", r"column 'dialogue_id', row 2 \(1 in all\): empty value"),
])
def test_a_bad_verdicts_file_names_file_column_and_rows(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TraceError, match=match) as raised:
        read_verdicts(path)
    assert str(path) in raised.value.report()


def test_a_missing_verdicts_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        read_verdicts(tmp_path / "nope.csv")


# ---------------------------------------------------------------- folds and the choice

def test_folds_keep_dialogues_whole_and_skip_unlabelled_turns(upload) -> None:
    frame, _ = upload
    labelled = np.zeros(len(frame), bool)
    labelled[::3] = True
    fold = cv_folds(frame, labelled, folds=5, seed=0)
    assert (fold[~labelled] == -1).all() and set(fold[labelled]) == set(range(5))
    per_dialogue = pd.Series(fold[labelled]).groupby(frame["dialogue_id"].to_numpy()[labelled]).nunique()
    assert (per_dialogue == 1).all()
    with pytest.raises(NotLabelledError, match="at least 2"):
        cv_folds(frame, (frame["dialogue_id"] == frame["dialogue_id"].iloc[0]).to_numpy(), folds=5, seed=0)


def test_the_starting_model_is_kept_when_it_already_fits(upload, tiny_model: FailurePointModel) -> None:
    frame, truth = upload
    combined = labels_with_verdicts(frame, verdicts_for(frame, truth, np.arange(0, len(frame), 2)))
    chosen = select_strategy(combined, start=tiny_model, config=SMALL)
    assert set(chosen.scores) == {"keep", "verdicts@20", "verdicts@60"}
    assert chosen.strategy == "keep" and chosen.candidate is tiny_model
    assert chosen.scores["keep"] == max(chosen.scores.values())


def test_labels_the_model_contradicts_make_a_new_model(upload, tiny_model: FailurePointModel, tmp_path) -> None:
    frame, truth = upload
    # labels that mean something else here (pairs swapped): the start model cannot know that
    swap = {"correct": "asr", "asr": "correct", "nlu": "er", "er": "nlu", "result": "false_wake",
            "false_wake": "result"}
    labels = np.array([swap.get(label, label) for label in truth], dtype=object)
    rows = np.arange(0, len(frame), 2)
    result = retrain_from_verdicts(frame, verdicts_for(frame, labels, rows), active=tiny_model, config=SMALL)
    assert result.strategy.startswith("verdicts@")
    assert result.strategy_scores[result.strategy] > result.strategy_scores["keep"]
    systems = result.comparison["systems"]
    assert systems["candidate"]["macro_f1"] > systems["active"]["macro_f1"]
    assert systems["candidate"]["turns"] == result.heldout_turns == len(rows)
    held = np.setdiff1d(np.arange(len(frame)), rows)  # turns without a verdict: the candidate never saw them
    was_correct = truth[held] == "correct"
    assert (result.candidate.predict(frame)[held][was_correct] == "asr").mean() > 0.8
    # saved and loaded without pickle, the same predictions; training's own probabilities of the upload are them
    loaded = FailurePointModel.load(result.candidate.save(tmp_path / "candidate"))
    np.testing.assert_allclose(loaded.predict_proba(frame), result.candidate.predict_proba(frame))
    np.testing.assert_allclose(result.upload_proba, loaded.predict_proba(frame), rtol=0, atol=1e-9)
    assert loaded.meta["retraining"]["strategy"] == result.strategy


def mixture_ends(strategy: str, upload: tuple[pd.DataFrame, np.ndarray], start: FailurePointModel,
                 ) -> tuple[pd.DataFrame, RetrainConfig, dict[float, Selection]]:
    """Verdicts the start model cannot know (correct and asr swapped) on every other turn, and `strategy`
    ("blend" or "selfblend") chosen with all weight on its starting side (1.0) and with none (0.0)."""
    frame, truth = upload
    swap = {"correct": "asr", "asr": "correct"}
    labels = np.array([swap.get(label, label) for label in truth], dtype=object)
    combined = labels_with_verdicts(frame, verdicts_for(frame, labels, np.arange(0, len(frame), 2)))
    config = RetrainConfig(strategy=strategy, verdict_rounds=(20,), folds=3, distil_rounds=150)
    ends = {}
    for weight in (1.0, 0.0):
        chosen = select_strategy(combined, start=start, config=replace(config, blend_weights=(weight,)))
        assert set(chosen.scores) == {f"{strategy}@20:{weight:g}"} and chosen.strategy == f"{strategy}@20:{weight:g}"
        ends[weight] = chosen
    return combined, config, ends


def test_a_blend_is_one_booster_that_moves_from_the_start_model_to_the_verdicts_model(
        upload, tiny_model: FailurePointModel, tmp_path) -> None:
    frame, _ = upload
    combined, config, chosen_at = mixture_ends("blend", upload, tiny_model)
    ends = {weight: chosen.candidate for weight, chosen in chosen_at.items()}
    chosen = chosen_at[0.0]
    verdicts_only = select_strategy(combined, start=tiny_model, config=replace(config, strategy="verdicts")).candidate
    # all weight on the start model: its labels, on every turn (labelled or not); none: the verdicts model's
    assert (ends[1.0].predict(frame) == tiny_model.predict(frame)).mean() > 0.95
    assert (ends[0.0].predict(frame) == verdicts_only.predict(frame)).mean() > 0.95
    assert (ends[0.0].predict(frame) == tiny_model.predict(frame)).mean() < 0.8
    candidate = ends[0.0]
    assert candidate.booster.num_trees() == 150 * 6 and candidate.temperature == 1.0
    meta = candidate.meta["retraining"]
    assert meta["start_weight"] == 0.0 and meta["rounds"] == 20 and meta["distilled_agreement"] > 0.95
    loaded = FailurePointModel.load(candidate.save(tmp_path / "blend"))
    np.testing.assert_allclose(loaded.predict_proba(frame), candidate.predict_proba(frame), rtol=0, atol=1e-12)
    np.testing.assert_allclose(chosen.upload_proba, loaded.predict_proba(frame), rtol=0, atol=1e-9)
    assert "objective=multiclass" in (tmp_path / "blend" / "model.txt").read_text()


def test_a_selfblend_moves_from_the_self_trained_start_to_the_verdicts_model(
        upload, tiny_model: FailurePointModel, tmp_path) -> None:
    frame, _ = upload
    combined, config, ends = mixture_ends("selfblend", upload, tiny_model)
    upload_ = Upload(frame=combined, codes=class_codes(combined[LABEL_COLUMN]), weights=np.ones(len(frame)))
    self_raw, _ = BUILDERS["self"](upload_, upload_.codes >= 0, tiny_model, config)["self"]
    verdicts_only = select_strategy(combined, start=tiny_model, config=replace(config, strategy="verdicts")).candidate
    # all weight on the self-trained start: its labels on every turn; none: the verdicts model's
    assert (ends[1.0].candidate.predict(frame) == np.asarray(LABELS, dtype=object)[self_raw.argmax(axis=1)]).mean() > 0.95
    assert (ends[0.0].candidate.predict(frame) == verdicts_only.predict(frame)).mean() > 0.95
    assert (ends[0.0].candidate.predict(frame) == tiny_model.predict(frame)).mean() < 0.8
    # the same out-of-fold scores as the two it mixes: with all weight on `self`, the `self` strategy's figure
    alone = select_strategy(combined, start=tiny_model, config=replace(config, strategy="self"))
    assert ends[1.0].scores["selfblend@20:1"] == pytest.approx(alone.scores["self"])
    # here `self` changes no label of the start model, only how sure it is: the probabilities tell them apart
    keep_raw, _ = BUILDERS["keep"](upload_, upload_.codes >= 0, tiny_model, config)["keep"]
    assert np.abs(softmax(self_raw) - softmax(keep_raw)).max() > 0.05
    assert ends[1.0].metrics["ece"] == pytest.approx(alone.metrics["ece"])
    np.testing.assert_allclose(ends[1.0].candidate.predict_proba(frame), alone.candidate.predict_proba(frame),
                               rtol=0, atol=1e-9)  # the same mixture, the same verdicts model: the same booster
    meta = ends[0.0].candidate.meta["retraining"]
    assert meta["self_weight"] == 0.0 and meta["rounds"] == 20 and meta["student_min_probability"] == 0.7
    loaded = FailurePointModel.load(ends[0.0].candidate.save(tmp_path / "selfblend"))
    np.testing.assert_allclose(loaded.predict_proba(frame), ends[0.0].candidate.predict_proba(frame), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ends[0.0].upload_proba, loaded.predict_proba(frame), rtol=0, atol=1e-9)


def test_a_scratchblend_mixes_the_best_selfblend_with_scratch_on_their_out_of_fold_scores(
        upload, tiny_model: FailurePointModel, tmp_path) -> None:
    frame, truth = upload
    swapped = np.array([{"correct": "asr", "asr": "correct"}.get(label, label) for label in truth], dtype=object)
    combined = labels_with_verdicts(frame, verdicts_for(frame, swapped, np.arange(0, len(frame), 2)))
    config = RetrainConfig(verdict_rounds=(20,), folds=3, distil_rounds=150, blend_weights=(0.5,),
                           train=TrainConfig(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5, seed=0,
                                             num_threads=1))
    scratch = FailurePointModel(config=replace(config.train, test_fraction=0.0)).fit(
        combined.drop(columns=[LABEL_SOURCE]))  # what `scratch` fits
    selfblend = select_strategy(combined, start=tiny_model, config=replace(config, strategy="selfblend"))
    ends = {weight: select_strategy(combined, start=tiny_model, config=replace(
        config, strategy="scratchblend", scratch_blend_weights=(weight,))) for weight in (0.0, 1.0)}
    # out of fold on both sides: no share, scratch's own cross-validated figure; all of it, the selfblend's
    own = scratch.meta["metrics"]["systems"]["model"]["macro_f1"]
    assert ends[0.0].scores == {"scratchblend@0": pytest.approx(own)}
    assert ends[1.0].scores == {"scratchblend@1": pytest.approx(selfblend.scores["selfblend@20:0.5"])}
    # and the candidates follow the side that has the weight, on every turn, labelled or not
    assert (ends[0.0].candidate.predict(frame) == scratch.predict(frame)).mean() > 0.95
    assert (ends[1.0].candidate.predict(frame) == selfblend.candidate.predict(frame)).mean() > 0.95
    assert (ends[0.0].candidate.predict(frame) == ends[1.0].candidate.predict(frame)).mean() < 0.95
    candidate = ends[0.0].candidate
    assert any(name.startswith("text_") for name in candidate.spec.features)  # scratch's features, text included
    meta = candidate.meta["retraining"]
    assert meta["partner"] == "selfblend@20:0.5" and meta["partner_weight"] == 0.0
    loaded = FailurePointModel.load(candidate.save(tmp_path / "scratchblend"))
    np.testing.assert_allclose(loaded.predict_proba(frame), candidate.predict_proba(frame), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ends[0.0].upload_proba, loaded.predict_proba(frame), rtol=0, atol=1e-9)


def test_semi_learns_the_labelled_turns_with_the_sure_ones_and_never_a_turns_own_label(
        upload, tiny_model: FailurePointModel, tmp_path) -> None:
    frame, truth = upload
    rows = np.arange(0, len(frame), 2)
    swapped = np.array([{"correct": "asr", "asr": "correct"}.get(label, label) for label in truth], dtype=object)
    config = RetrainConfig(strategy="semi", folds=3, distil_rounds=150, semi_start_weights=(0.0,),
                           semi_label_weight=10.0)
    combined = labels_with_verdicts(frame, verdicts_for(frame, swapped, rows))
    codes = class_codes(combined[LABEL_COLUMN])
    train = codes >= 0
    built = {}
    for name in ("semi", "self"):
        upload_ = Upload(frame=combined, codes=codes, weights=np.ones(len(frame)))
        raw = BUILDERS[name](upload_, train, tiny_model, config)
        built[name] = raw["semi@0" if name == "semi" else "self"][0]
    # the labels reach the student: on the labelled turns it follows them (the swap), `self` does not
    follows = {name: (np.asarray(LABELS, dtype=object)[raw.argmax(axis=1)][rows] == swapped[rows]).mean()
               for name, raw in built.items()}
    assert follows["semi"] > 0.9 and follows["semi"] > follows["self"] + 0.2
    # a turn outside `train` is scored by a student that never read its label: change those labels, same scores
    held = np.zeros(len(frame), bool)
    held[rows[::3]] = True
    other = codes.copy()
    other[held] = (other[held] + 1) % len(LABELS)
    scores = [BUILDERS["semi"](Upload(frame=combined, codes=c, weights=np.ones(len(frame))), train & ~held,
                               tiny_model, config, held)["semi@0"][0] for c in (codes, other)]
    np.testing.assert_array_equal(scores[0][held], scores[1][held])
    chosen = select_strategy(combined, start=tiny_model, config=config)
    assert set(chosen.scores) == {"semi@0"} and chosen.strategy == "semi@0"
    meta = chosen.candidate.meta["retraining"]
    assert meta["label_weight"] == 10.0 and meta["start_weight"] == 0.0 and meta["distilled_agreement"] > 0.9
    loaded = FailurePointModel.load(chosen.candidate.save(tmp_path / "semi"))
    np.testing.assert_allclose(loaded.predict_proba(frame), chosen.candidate.predict_proba(frame), rtol=0, atol=1e-12)
    np.testing.assert_allclose(chosen.upload_proba, loaded.predict_proba(frame), rtol=0, atol=1e-9)


def test_self_training_learns_the_start_models_labels_on_the_upload_and_no_verdict(
        upload, tiny_model: FailurePointModel, tmp_path) -> None:
    frame, truth = upload
    rows = np.arange(0, len(frame), 2)
    swapped = np.array([{"correct": "asr", "asr": "correct"}.get(label, label) for label in truth], dtype=object)
    config = RetrainConfig(strategy="self", folds=3, distil_rounds=150)
    raw = {}
    for name, labels in (("true", truth), ("swapped", swapped)):
        combined = labels_with_verdicts(frame, verdicts_for(frame, labels, rows))
        upload_ = Upload(frame=combined, codes=class_codes(combined[LABEL_COLUMN]), weights=np.ones(len(frame)))
        raw[name], _ = BUILDERS["self"](upload_, upload_.codes >= 0, tiny_model, config)["self"]
    np.testing.assert_array_equal(raw["true"], raw["swapped"])  # the verdicts do not reach it
    start = tiny_model.predict_proba(frame)
    sure = start.max(axis=1) >= config.self_min_probability
    assert (raw["true"].argmax(axis=1)[sure] == start.argmax(axis=1)[sure]).mean() > 0.9
    assert not np.allclose(softmax(raw["true"]), start, atol=0.05)  # the student moved it

    chosen = select_strategy(labels_with_verdicts(frame, verdicts_for(frame, truth, rows)), start=tiny_model,
                             config=config)
    assert set(chosen.scores) == {"self"} and chosen.strategy == "self"
    candidate = chosen.candidate
    assert candidate.booster.num_trees() == 150 * 6 and candidate.meta["retraining"]["distilled_agreement"] > 0.95
    assert (candidate.predict(frame) == np.asarray(LABELS, dtype=object)[raw["true"].argmax(axis=1)]).mean() > 0.95
    loaded = FailurePointModel.load(candidate.save(tmp_path / "self"))
    np.testing.assert_allclose(loaded.predict_proba(frame), candidate.predict_proba(frame), rtol=0, atol=1e-12)
    np.testing.assert_allclose(chosen.upload_proba, loaded.predict_proba(frame), rtol=0, atol=1e-9)
