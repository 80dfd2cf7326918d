"""Metrics against hand-computed values, and the baselines' basic behaviour."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fpi.model.baselines import RuleCascade
from fpi.model.evaluate import expected_calibration_error, format_report, metrics_for
from fpi.data.schema import CONFIDENCE_COLUMNS, LABELS


def _onehot(labels):
    return (np.asarray(labels, dtype=object)[:, None] == np.asarray(LABELS, dtype=object)[None, :]).astype(float)


def test_metrics_match_hand_computed_values():
    truth = np.array(["correct", "correct", "asr", "asr", "nlu"], dtype=object)
    predicted = np.array(["correct", "asr", "asr", "asr", "correct"], dtype=object)
    m = metrics_for(truth, _onehot(predicted))
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["per_class"]["asr"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["asr"]["recall"] == pytest.approx(1.0)
    assert m["per_class"]["correct"]["f1"] == pytest.approx(0.5)
    assert m["confusion"][LABELS.index("nlu")][LABELS.index("correct")] == 1
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0) / 6)


def test_unlabelled_turns_are_skipped():
    truth = np.array(["correct", None, "asr"], dtype=object)
    m = metrics_for(truth, _onehot(["correct", "asr", "asr"]))
    assert m["turns"] == 2 and m["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("confidence", "accuracy", "expected"),
    [(0.9, 1.0, 0.1), (0.9, 0.0, 0.9), (1.0, 1.0, 0.0)],
)
def test_ece_is_the_gap_between_confidence_and_accuracy(confidence, accuracy, expected):
    n = 10
    proba = np.zeros((n, len(LABELS)))
    proba[:, 0] = confidence
    proba[:, 1] = 1 - confidence
    truth = np.zeros(n, dtype=int) if accuracy == 1.0 else np.full(n, 2)
    assert expected_calibration_error(truth, proba) == pytest.approx(expected)


def test_rule_cascade_takes_the_first_low_stage_and_skips_missing():
    frame = pd.DataFrame({c: [0.9, 0.9, 0.9] for c in CONFIDENCE_COLUMNS})
    frame.loc[0, "nlu_confidence"] = 0.2
    frame.loc[0, "result_confidence"] = 0.1
    frame.loc[1, "er_confidence"] = np.nan
    predicted = RuleCascade().predict(frame)
    assert list(predicted) == ["nlu", "correct", "correct"]


def test_rule_cascade_tuning_does_not_get_worse_than_fixed_thresholds(sim_small):
    from fpi.model.baselines import _fast_macro_f1

    labelled = sim_small[sim_small["failure_point"].notna()]
    truth = pd.Categorical(labelled["failure_point"], categories=list(LABELS)).codes
    fixed = pd.Categorical(RuleCascade().predict(labelled), categories=list(LABELS)).codes
    tuned_rule = RuleCascade.fit(labelled, labelled["failure_point"].to_numpy(dtype=object))
    tuned = pd.Categorical(tuned_rule.predict(labelled), categories=list(LABELS)).codes
    assert _fast_macro_f1(truth, tuned) >= _fast_macro_f1(truth, fixed)


def test_format_report_names_every_system(tiny_model, sim_heldout):
    from fpi.model.evaluate import evaluate_model

    text = format_report(evaluate_model(tiny_model, sim_heldout))
    for name in ("fpi model", "raw confidences", "rule cascade", "macro-F1", "false_wake"):
        assert name in text
