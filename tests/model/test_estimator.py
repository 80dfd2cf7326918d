"""The model: grouped splits, beating baselines on held-out data, safe persistence."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpi.errors import ModelError, NotLabelledError
from fpi.model.evaluate import evaluate_model
from fpi.model.estimator import FailurePointModel
from fpi.model.persistence import MODEL_FILE, META_FILE
from fpi.data.schema import CONFIDENCE_COLUMNS, LABELS
from fpi.simulator.simulate import simulate
from fpi.model.splits import grouped_split


def test_grouped_split_never_puts_a_dialogue_on_both_sides(sim_small):
    parts = grouped_split(sim_small, fractions=(0.7, 0.15, 0.15), seed=1)
    assert sum(int(p.sum()) for p in parts) == len(sim_small)
    ids = [set(sim_small.loc[p, "dialogue_id"]) for p in parts]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert all(p.sum() > 0 for p in parts)


def test_grouped_split_is_stable_when_other_dialogues_are_added(sim_small, sim_other):
    alone = grouped_split(sim_small, fractions=(0.8, 0.2), seed=0)[1]
    other = sim_other.assign(dialogue_id="x" + sim_other["dialogue_id"])
    both = pd.concat([sim_small, other], ignore_index=True)
    together = grouped_split(both, fractions=(0.8, 0.2), seed=0)[1][: len(sim_small)]
    np.testing.assert_array_equal(alone, together)


def test_model_beats_both_baselines_on_a_held_out_seed(tiny_model, sim_heldout):
    report = evaluate_model(tiny_model, sim_heldout)
    f1 = {name: m["macro_f1"] for name, m in report["systems"].items()}
    assert f1["model"] > f1["raw_confidence_lgbm"] + 0.02, f1
    assert f1["model"] > f1["rule_cascade"] + 0.05, f1
    assert 0 <= report["systems"]["model"]["ece"] < 0.1


def test_probabilities_are_a_distribution_over_the_six_labels(tiny_model, sim_heldout):
    proba = tiny_model.predict_proba(sim_heldout)
    assert proba.shape == (len(sim_heldout), len(LABELS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert set(tiny_model.predict(sim_heldout)) <= set(LABELS)


def test_save_then_load_gives_identical_probabilities(tiny_model, sim_heldout, tmp_path):
    tiny_model.save(tmp_path / "m")
    loaded = FailurePointModel.load(tmp_path / "m")
    np.testing.assert_array_equal(tiny_model.predict_proba(sim_heldout), loaded.predict_proba(sim_heldout))
    meta = json.loads((tmp_path / "m" / META_FILE).read_text())
    for key in ("contract_version", "classes", "feature_spec", "training_data", "metrics", "versions", "model_sha256"):
        assert key in meta
    assert meta["classes"] == list(LABELS)
    assert len(meta["training_data"]["fingerprint"]) == 64


def test_a_model_whose_file_was_edited_is_refused(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "m")
    model_file = tmp_path / "m" / MODEL_FILE
    text = model_file.read_text()
    model_file.write_text(text.replace("learning_rate", "learning_rate ", 1) if "learning_rate" in text else text + "\n")
    with pytest.raises(ModelError, match="sha256"):
        FailurePointModel.load(tmp_path / "m")


def test_a_model_for_another_contract_version_is_refused(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "m")
    meta_file = tmp_path / "m" / META_FILE
    meta = json.loads(meta_file.read_text())
    meta["contract_version"] = 99
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="contract v99"):
        FailurePointModel.load(tmp_path / "m")


def test_an_interrupted_save_leaves_the_previous_model_intact(tiny_model, sim_heldout, tmp_path, monkeypatch):
    target = tmp_path / "m"
    tiny_model.save(target)
    before = FailurePointModel.load(target).predict_proba(sim_heldout)

    import fpi.model.persistence as persistence

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut while writing meta.json")

    monkeypatch.setattr(persistence, "_write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        tiny_model.save(target)
    monkeypatch.undo()
    after = FailurePointModel.load(target).predict_proba(sim_heldout)
    np.testing.assert_array_equal(before, after)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging debris


def test_traces_without_optional_columns_still_predict(tiny_model, sim_heldout):
    bare = sim_heldout[["dialogue_id", "turn_index", *CONFIDENCE_COLUMNS]]
    scored = tiny_model.score(bare)
    assert scored["predicted_failure_point"].notna().all()
    assert list(scored.columns[: bare.shape[1]]) == list(bare.columns)


def test_score_keeps_every_input_column_and_adds_predictions(tiny_model, sim_heldout):
    scored = tiny_model.score(sim_heldout)
    pd.testing.assert_frame_equal(scored[sim_heldout.columns], sim_heldout)
    assert {"predicted_failure_point", *(f"p_{label}" for label in LABELS)} <= set(scored.columns)


def test_training_without_labels_says_what_is_missing(sim_small):
    with pytest.raises(NotLabelledError, match="labelled turns"):
        FailurePointModel().fit(sim_small.assign(failure_point=pd.NA))


def test_an_export_with_only_the_required_columns_is_still_read_well(tiny_model, sim_heldout):
    """Trained with missing-column variants, the model does not collapse when optional columns are absent."""
    bare = sim_heldout[["dialogue_id", "turn_index", *CONFIDENCE_COLUMNS, "failure_point"]]
    systems = evaluate_model(tiny_model, bare)["systems"]
    assert systems["model"]["macro_f1"] >= systems["raw_confidence_lgbm"]["macro_f1"] - 0.03, systems
    assert systems["model"]["macro_f1"] > systems["rule_cascade"]["macro_f1"] + 0.1


def test_small_data_trains_on_every_label_and_reports_cross_validated_metrics(sim_heldout):
    """No labelled turn is spent on early stopping: rounds and metrics come from grouped folds."""
    from fpi.model.training import TrainConfig

    small = simulate(700, seed=31)
    model = FailurePointModel(config=TrainConfig(test_fraction=0.0, max_rounds=200, seed=0)).fit(small)
    data, schedule = model.meta["training_data"], model.meta["schedule"]
    assert data["split_turns"]["train"] == data["labelled_turns"] == len(small)
    assert "cross-validation" in schedule["chosen_by"] and 1 <= schedule["rounds"] < 200
    assert model.meta["metrics"]["evaluated_on"] == "5-fold cross-validation"
    claimed = model.meta["metrics"]["systems"]["model"]["macro_f1"]
    measured = evaluate_model(model, sim_heldout)["systems"]["model"]["macro_f1"]
    assert abs(claimed - measured) < 0.08, (claimed, measured)  # out-of-fold figures are honest


def test_a_scale_free_model_reads_no_raw_confidence_and_ignores_a_recalibration(sim_heldout):
    """Raw scores are one pipeline's scale; their ranks within the upload mean the same anywhere."""
    from fpi.model.features import pipeline_scaled
    from fpi.model.training import TrainConfig

    model = FailurePointModel(config=TrainConfig(scale_free=True, text_models=False, max_rounds=80)).fit(
        simulate(1500, seed=32))
    assert not any(pipeline_scaled(f, model.spec) for f in model.spec.features)
    assert "rank_asr_confidence" in model.spec.features and "asr_confidence" not in model.spec.features
    recalibrated = sim_heldout.assign(asr_confidence=sim_heldout["asr_confidence"] ** 3,
                                      nlu_confidence=np.sqrt(sim_heldout["nlu_confidence"]))
    before, after = model.predict_proba(sim_heldout), model.predict_proba(recalibrated)
    # ranks are kept at 1e-4 resolution, so a monotone recalibration moves a few turns across a bin
    assert (before.argmax(axis=1) == after.argmax(axis=1)).mean() > 0.995
    assert np.abs(before - after).mean() < 1e-3


def test_a_model_saved_with_meta_copied_from_another_loads(tiny_model, sim_heldout, tmp_path):
    """A continued candidate starts from its base's meta: hashes of files it lacks must not follow."""
    copy = FailurePointModel(config=tiny_model.config)
    copy.booster, copy.spec, copy.rule = tiny_model.booster, tiny_model.spec, tiny_model.rule
    copy.meta = {**tiny_model.meta, "reference_sha256": "0" * 64, "baseline_sha256": "0" * 64}
    copy.save(tmp_path / "c")
    loaded = FailurePointModel.load(tmp_path / "c")
    assert loaded.reference is None and loaded.baseline_booster is None
    np.testing.assert_array_equal(loaded.predict_proba(sim_heldout), tiny_model.predict_proba(sim_heldout))


def test_temperature_is_fitted_on_the_turns_that_have_an_out_of_fold_score():
    """Large data keeps out-of-fold scores for one fold only; the others must not decide the temperature."""
    from fpi.model.calibration import fit_temperature

    rng = np.random.default_rng(0)
    codes = rng.integers(0, len(LABELS), 400)
    raw = rng.normal(size=(400, len(LABELS))) * 3  # overconfident noise: the best temperature is large
    alone = fit_temperature(raw, codes)
    raw_with_gaps = np.vstack([raw, np.full((400, len(LABELS)), np.nan)])
    assert fit_temperature(raw_with_gaps, np.concatenate([codes, codes])) == pytest.approx(alone)
    assert alone > 3


@settings(max_examples=40, deadline=None)
@given(scale=st.floats(0.3, 5.0), confidence=st.floats(0.2, 0.99), seed=st.integers(0, 2**16))
def test_the_matching_temperature_gives_the_asked_mean_confidence_and_keeps_the_labels(scale, confidence, seed):
    from fpi.model.calibration import matching_temperature, softmax

    raw = np.random.default_rng(seed).normal(size=(300, len(LABELS))) * scale
    t = matching_temperature(raw, confidence)
    assert 0.25 <= t <= 4.0
    proba = softmax(raw / t)
    np.testing.assert_array_equal(proba.argmax(axis=1), raw.argmax(axis=1))
    reachable = softmax(raw / 4.0).max(axis=1).mean() <= confidence <= softmax(raw / 0.25).max(axis=1).mean()
    if reachable:
        assert proba.max(axis=1).mean() == pytest.approx(confidence, abs=1e-3)
    else:  # out of reach: the nearest end of the range
        assert t in (0.25, 4.0)


def test_dialogue_bucket_is_the_salted_hash_of_each_id_in_any_order():
    import hashlib

    from fpi.model.splits import dialogue_bucket

    ids = pd.Series(["d10", "d2", "d10", "d1", "b", "d2", "a", "d10"], dtype="str")
    expected = [int.from_bytes(hashlib.blake2b(f"5:{i}".encode(), digest_size=8).digest(), "big") / 2**64
                for i in ids]
    assert dialogue_bucket(ids, seed=5).tolist() == expected
    assert dialogue_bucket(ids[::-1], seed=5).tolist() == expected[::-1]
