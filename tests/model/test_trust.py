"""How far to trust the labels: F1 on an upload's own labels, and the shift score without them."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fpi.model import shift, trust
from fpi.model.features import build_features, fit_feature_spec
from fpi.data.schema import LABELS
from fpi.simulator.pipelines import SimConfig
from fpi.simulator.simulate import simulate

TRAINING = simulate(1500, seed=31)
"""Stands in for a model's training data (the tests build features without training a model)."""
SPEC = fit_feature_spec(TRAINING)


def features(frame: pd.DataFrame) -> pd.DataFrame:
    return build_features(frame, SPEC)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """What a model saves as `reference`: up to 2,000 rows of its training features."""
    return features(TRAINING).sample(2000, random_state=0)


def recalibrate(frame: pd.DataFrame, shifts: dict[str, float]) -> pd.DataFrame:
    """Another pipeline's calibration: each confidence moved by `shift` logits (the order of turns kept)."""
    out = frame.copy()
    for column, shift in shifts.items():
        p = out[column].to_numpy(dtype=float).clip(1e-6, 1 - 1e-6)
        out[column] = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + shift)))
    return out


def score(frame: pd.DataFrame, reference: pd.DataFrame | None, **options) -> shift.ShiftScore:
    result = shift.shift_score(features(frame), dialogue_ids=frame["dialogue_id"], reference=reference,
                               quantiles=SPEC.reference_quantiles, **options)
    assert result is not None
    return result


# ---------------------------------------------------------------- the shift score


@pytest.mark.parametrize("seed", [41, 42])
def test_same_pipeline_scores_near_one_half(reference: pd.DataFrame, seed: int) -> None:
    result = score(simulate(700, seed=seed, labelled=False), reference)
    assert 0.4 < result.auc < 0.6 and not result.warn
    assert result.reference_kind == "training sample" and result.top == ()
    assert not any(name.startswith("rank_") for name in result.compared)
    assert "device_type" not in result.compared and "asr_confidence" in result.compared


def test_recalibrated_asr_confidence_scores_high_and_is_named(reference: pd.DataFrame) -> None:
    result = score(simulate(700, seed=43, labelled=False, config=SimConfig(asr_confidence_shift=2.5)), reference)
    assert result.auc > 0.9 and result.warn
    assert result.top[0].feature == "asr_confidence"
    assert result.top[0].text.startswith("ASR confidence is higher in your traces: median 0.9")


@pytest.mark.parametrize("name, transform, feature, word", [
    ("NLU calibrated lower", lambda f: f.assign(nlu_confidence=f["nlu_confidence"] ** 3), "nlu_confidence", "lower"),
    ("wake saturated (only triggered turns logged)",
     lambda f: f.assign(wake_confidence=0.97 + 0.03 * f["wake_confidence"]), "wake_confidence", "higher"),
    ("every stage recalibrated", lambda f: recalibrate(f, {"asr_confidence": 1.0, "nlu_confidence": 1.0,
                                                         "er_confidence": -1.0, "result_confidence": 1.0}),
     None, None),
])
def test_other_recalibrations_warn(reference: pd.DataFrame, name: str, transform, feature, word) -> None:
    upload = transform(simulate(500, seed=44, labelled=False))
    for ref in (reference, None):  # a training sample, or the training quantiles when the model has none
        result = score(upload, ref)
        assert result.warn, (name, ref is None, result.auc)
        if feature is not None:
            assert result.top[0].feature == feature and f" is {word} in your traces" in result.top[0].text


def test_without_a_training_sample_the_quantiles_compare_the_confidences_only() -> None:
    same = score(simulate(700, seed=45, labelled=False), None)
    assert same.reference_kind == "training quantiles"
    assert set(same.compared) == {"wake_confidence", "asr_confidence", "nlu_confidence", "er_confidence",
                                  "result_confidence"}
    assert 0.4 < same.auc < 0.6 and not same.warn
    shifted = score(simulate(700, seed=45, labelled=False, config=SimConfig(asr_confidence_shift=2.5)), None)
    assert shifted.auc > 0.8 and shifted.warn


def test_a_small_upload_of_the_same_pipeline_does_not_warn(reference: pd.DataFrame) -> None:
    upload = simulate(40, seed=46, labelled=False)
    assert shift.MIN_SHIFT_ROWS <= len(upload) < 200
    for ref in (reference, None):
        assert not score(upload, ref).warn


def test_columns_an_upload_does_not_log_are_not_a_shift(reference: pd.DataFrame) -> None:
    upload = simulate(600, seed=47, labelled=False).drop(columns=["timestamp", "asr_text", "response_text",
                                                                   "er_entity"])
    result = score(upload, reference)
    assert not result.warn, result.auc
    assert "gap_to_next_s" not in result.compared and "next_text_similarity" not in result.compared


def test_dialogues_are_never_split_between_folds(reference: pd.DataFrame) -> None:
    """Turns of one dialogue share context features; split between folds, a classifier would
    recognise the dialogue instead of the pipeline. Here every turn is logged 40 times."""
    upload = simulate(50, seed=48, labelled=False)
    logged = features(upload)
    repeated = pd.concat([logged] * 40, ignore_index=True)
    dialogues = pd.concat([upload["dialogue_id"]] * 40, ignore_index=True)
    grouped = shift.shift_score(repeated, dialogue_ids=dialogues, reference=reference)
    split = shift.shift_score(repeated, dialogue_ids=np.arange(len(repeated)), reference=reference)
    assert grouped.auc < 0.65 < 0.9 < split.auc


def test_too_few_turns_give_no_score(reference: pd.DataFrame) -> None:
    tiny = simulate(5, seed=49, labelled=False)
    assert len(tiny) < shift.MIN_SHIFT_ROWS
    assert shift.shift_score(features(tiny), dialogue_ids=tiny["dialogue_id"], reference=reference) is None


def test_the_threshold_is_configurable(reference: pd.DataFrame) -> None:
    upload = simulate(300, seed=50, labelled=False)
    assert score(upload, reference, threshold=0.0).warn
    assert not score(upload, reference, threshold=1.0).warn


def test_shift_in_missing_values_is_described_in_words() -> None:
    up = pd.DataFrame({"er_confidence": np.r_[np.full(150, np.nan), np.linspace(0, 1, 50)],
                       "asr_word_count": np.r_[np.full(100, 6.0), np.full(100, 5.0)]})
    ref = pd.DataFrame({"er_confidence": np.linspace(0, 1, 200), "asr_word_count": np.r_[np.full(150, 3.0),
                                                                                       np.full(50, 5.0)]})
    words, entity = shift.describe_shift(up, ref)  # strongest first: 2 x |0.94 - 0.5|, then 0.75 - 0
    assert words.text == "Words per request is higher in your traces: median 5.50, 3.00 in training"
    assert entity.text == "Entity-resolution confidence: missing on 75% of your turns, 0% in training"
    assert words.score == pytest.approx(0.875) and entity.score == pytest.approx(0.75)


# ---------------------------------------------------------------- labelled uploads


@pytest.mark.parametrize("model_f1, baseline_f1, reasons", [
    (0.90, 0.70, ()),
    (0.70, 0.70, ()),
    (0.69, 0.50, ("below_floor",)),
    (0.80, 0.81, ("below_baseline",)),
    (0.40, 0.50, ("below_floor", "below_baseline")),
])
def test_label_verdict(model_f1: float, baseline_f1: float, reasons: tuple[str, ...]) -> None:
    assert trust.label_verdict(model_f1, baseline_f1) == reasons


class StubModel:
    """Answers with given probabilities: the model's (as `p_` columns) and the baseline's."""

    def __init__(self, baseline: np.ndarray) -> None:
        self.baseline = baseline
        self.spec = SimpleNamespace(reference_quantiles=SPEC.reference_quantiles)
        self.seen: list[int] = []

    def baseline_probas(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        self.seen.append(len(frame))
        return {"raw_confidence_lgbm": self.baseline[frame.index.to_numpy()], "rule_cascade": self.baseline}


def one_hot(labels: list[str]) -> np.ndarray:
    return np.eye(len(LABELS))[[LABELS.index(label) for label in labels]]


def labelled_upload(truth: list[str], predicted: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"dialogue_id": [f"d{i // 3:04d}" for i in range(len(truth))], "failure_point": truth})
    for i, label in enumerate(LABELS):
        frame[f"p_{label}"] = one_hot(predicted)[:, i]
    return frame


def test_label_trust_scores_the_model_and_the_baseline_on_the_labels() -> None:
    truth = ["correct"] * 60 + ["asr"] * 40
    predicted = ["correct"] * 60 + ["asr"] * 20 + ["nlu"] * 20  # half the ASR errors missed
    model = StubModel(one_hot(["correct"] * 100))
    result = trust.label_trust(model, labelled_upload(truth, predicted))
    assert result is not None and result.classes == ("correct", "asr")
    # correct: P 60/60, R 1 -> 1.0; asr: P 1, R 0.5 -> 2/3. NLU is absent from the labels: not averaged in.
    assert result.model_f1 == pytest.approx((1.0 + 2 / 3) / 2)
    assert result.baseline_f1 == pytest.approx((2 * 0.6 / 1.6 + 0.0) / 2)
    assert not result.warn and result.reasons == ()


def test_label_trust_warns_below_the_floor_and_below_the_baseline() -> None:
    truth = ["correct"] * 50 + ["asr"] * 50
    model = StubModel(one_hot(truth))  # the baseline is right every time
    result = trust.label_trust(model, labelled_upload(truth, ["correct"] * 100))
    assert result.warn and result.reasons == ("below_floor", "below_baseline")
    assert result.baseline_f1 == 1.0


def test_a_model_trained_on_the_upload_does_not_warn() -> None:
    truth = ["correct"] * 50 + ["asr"] * 50
    result = trust.label_trust(StubModel(one_hot(truth)), labelled_upload(truth, ["correct"] * 100),
                               trained_on_upload=True)
    assert result.reasons and not result.warn and result.trained_on_upload


def test_too_few_labels_fall_back_to_the_shift_score(reference: pd.DataFrame) -> None:
    upload = simulate(300, seed=51)
    upload.loc[upload.index[40:], "failure_point"] = None
    model = StubModel(np.zeros((len(upload), len(LABELS))))
    assert trust.label_trust(model, upload) is None
    report = trust.assess(model, upload, features(upload), reference=reference)
    assert report.labels is None and report.shift is not None and not report.shift.warn


def test_assess_uses_the_labels_and_the_models_own_reference() -> None:
    upload = simulate(300, seed=52)
    truth = upload["failure_point"].tolist()
    model = StubModel(one_hot(truth))
    scored = labelled_upload(truth, truth).set_index(upload.index)
    report = trust.assess(model, scored.assign(dialogue_id=upload["dialogue_id"]), features(upload))
    assert report.shift is None and report.labels is not None and report.labels.model_f1 == 1.0

    model.reference = features(TRAINING).sample(1000, random_state=1)
    unlabelled = upload.drop(columns=["failure_point"])
    assert trust.assess(model, unlabelled, features(unlabelled)).shift.reference_kind == "training sample"
    del model.reference
    assert trust.assess(model, unlabelled, features(unlabelled)).shift.reference_kind == "training quantiles"


def test_a_large_upload_is_evaluated_on_a_sample_of_dialogues() -> None:
    truth = (["correct", "asr", "nlu"] * 400)[:1200]
    model = StubModel(one_hot(truth))
    result = trust.label_trust(model, labelled_upload(truth, truth), max_turns=300)
    assert result.labelled_turns == 1200 and 150 < result.evaluated_turns < 450
    assert model.seen == [result.evaluated_turns]


def test_a_model_knows_the_traces_it_was_trained_on() -> None:
    from fpi.data.summary import dataset_fingerprint

    upload = simulate(30, seed=53)
    model = SimpleNamespace(meta={"training_data": {"fingerprint": dataset_fingerprint(upload)}})
    scored = upload.assign(predicted_failure_point="correct", **{f"p_{label}": 0.0 for label in LABELS})
    assert trust.trained_on(model, scored)
    assert not trust.trained_on(model, simulate(30, seed=54))
    assert not trust.trained_on(SimpleNamespace(meta={}), upload)
    # self-trained on them without reading a label: their labels are still an honest test of it
    unread = {"fingerprint": dataset_fingerprint(upload), "labelled_turns": 0}
    assert not trust.trained_on(SimpleNamespace(meta={"training_data": unread}), scored)
    assert trust.trained_on(SimpleNamespace(meta={"training_data": {**unread, "labelled_turns": 20}}), scored)
    self_trained = SimpleNamespace(meta={"training_data": unread,
                                         "retraining": {"strategy": "self", "labels_read": 0, "base_model": "b1"}})
    assert trust.self_trained_on(self_trained, scored) == "b1"
    assert trust.self_trained_on(self_trained, simulate(30, seed=54)) is None
    assert trust.self_trained_on(SimpleNamespace(meta={"training_data": unread}), scored) is None


@pytest.mark.parametrize("meta, threshold", [
    ({}, shift.SHIFT_AUC_THRESHOLD),
    ({"shift_auc_threshold": 0.93}, 0.93),
    ({"shift_auc_threshold": "0.9"}, 0.9),
    ({"shift_auc_threshold": 1.5}, shift.SHIFT_AUC_THRESHOLD),
    ({"shift_auc_threshold": None}, shift.SHIFT_AUC_THRESHOLD),
])
def test_a_model_may_carry_its_own_shift_threshold(meta: dict, threshold: float) -> None:
    assert shift.model_threshold(SimpleNamespace(meta=meta)) == threshold


def test_assess_warns_by_the_models_threshold(reference: pd.DataFrame) -> None:
    upload = simulate(400, seed=55, labelled=False, config=SimConfig(asr_confidence_shift=1.5))
    model = StubModel(np.zeros((len(upload), len(LABELS))))
    default = trust.assess(model, upload, features(upload), reference=reference).shift
    assert default.warn and default.auc < 0.999
    model.meta = {"shift_auc_threshold": 0.999}
    lenient = trust.assess(model, upload, features(upload), reference=reference).shift
    assert lenient.auc == default.auc and lenient.threshold == 0.999 and not lenient.warn


def test_a_model_of_a_family_of_pipelines_compares_an_upload_with_its_closest_member() -> None:
    """Any one pipeline is told from the pool; a member of the family is not told from itself."""
    from fpi.simulator.simulate import simulate_fleet

    fleet = simulate_fleet(3000, seed=8, n_pipelines=4)
    spec = fit_feature_spec(fleet)
    features = pd.concat([build_features(part, spec) for _, part in fleet.groupby("pipeline", sort=False)])
    features = features.loc[fleet.index]
    number = fleet["dialogue_id"].str.slice(5).astype(int).to_numpy()
    new = (fleet["pipeline"] == "p02").to_numpy() & (number % 2 == 0)  # later dialogues of a known pipeline
    pool, uploads = features[~new], fleet.loc[~new, "pipeline"].astype(str).to_numpy()
    ids = fleet.loc[new, "dialogue_id"]
    pooled = shift.shift_score(features[new], dialogue_ids=ids, reference=pool)
    closest = shift.closest_upload_shift(features[new], ids, pool, uploads)
    assert pooled.warn and not closest.warn, (pooled.auc, closest.auc)
    assert "p02" in closest.reference_kind
    stranger = features[new].assign(asr_confidence=features.loc[new, "asr_confidence"] ** 6,
                                     nlu_confidence=features.loc[new, "nlu_confidence"] ** 6)
    far = shift.closest_upload_shift(stranger, ids, pool, uploads)
    assert far.warn, far.auc


def test_macro_f1_equals_sklearns_on_the_label_strings() -> None:
    """Scored on label codes; the same figure as sklearn's on the strings, absent and unlisted classes included."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(4)
    truth = np.asarray(LABELS, dtype=object)[rng.choice([0, 1, 2, 3, 5], size=3000)]  # "nlu" never labelled
    proba = rng.dirichlet(np.ones(len(LABELS)), size=3000)
    predicted = np.asarray(LABELS, dtype=object)[proba.argmax(axis=1)]
    for classes in (tuple(label for label in LABELS if (truth == label).any()), ("asr", "er"), LABELS):
        expected = f1_score(truth, predicted, labels=list(classes), average="macro", zero_division=0)
        assert trust.macro_f1(truth, proba, classes) == expected


def test_a_model_trained_on_another_number_of_turns_was_not_trained_on_the_upload() -> None:
    from fpi.data.summary import dataset_fingerprint

    upload = simulate(30, seed=53)
    recorded = {"fingerprint": dataset_fingerprint(upload), "turns": len(upload)}
    assert trust.trained_on(SimpleNamespace(meta={"training_data": recorded}), upload)
    assert not trust.trained_on(SimpleNamespace(meta={"training_data": recorded}), upload.head(len(upload) - 1))
    assert not trust.trained_on(SimpleNamespace(meta={"training_data": {**recorded, "turns": len(upload) + 1}}),
                                upload)
