"""Tests for fpi.analysis.fairness: the model's accuracy, recall and macro-F1 per cohort, cohort vs the rest."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact
from sklearn.metrics import f1_score

from fpi.analysis.cohorts import cohort_mask
from fpi.analysis.fairness import FAIRNESS_RESULT, cohort_performance, fairness, format_fairness
from fpi.analysis.stats import benjamini_hochberg
from fpi.data.schema import LABELS, PREDICTED_COLUMN
from fpi.errors import NotLabelledError
from fpi.simulator.pipelines import CohortEffect, SimConfig
from fpi.simulator.simulate import simulate

PLANTED = {"locale": "en-IN", "device_type": "car"}


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    """~56k turns in which en-IN users in cars get triple the ASR failures (as in test_cohorts)."""
    config = SimConfig(cohort_effects=(CohortEffect(PLANTED, "asr", 3.0),))
    return simulate(20_000, seed=3, config=config)


# ---------------------------------------------------------------- fairness of the model

def _predictions(frame: pd.DataFrame, *, worse: dict[str, str] | None, seed: int = 0) -> pd.DataFrame:
    """Predictions right ~90% of the time, and ~65% in the `worse` cohort."""
    rng = np.random.default_rng(seed)
    truth = frame["failure_point"].to_numpy(dtype=object)
    error = np.full(len(frame), 0.10)
    if worse:
        error[cohort_mask(frame, worse)] = 0.35
    wrong = rng.random(len(frame)) < error
    predicted = truth.copy()
    predicted[wrong] = np.array(LABELS, dtype=object)[rng.integers(0, len(LABELS), wrong.sum())]
    return frame.assign(**{PREDICTED_COLUMN: pd.Series(predicted, index=frame.index, dtype="str")})


def test_fairness_flags_the_locale_the_model_serves_worse_and_no_other(planted: pd.DataFrame) -> None:
    frame = _predictions(planted.head(12_000), worse={"locale": "en-AU"})
    table = fairness(frame, columns=("locale",))
    flagged = table[table["flagged"]]
    assert set(flagged["cohort"]) == {"en-AU"}
    assert {"accuracy", "recall:correct", "recall:asr"} <= set(flagged["metric"])
    accuracy = flagged.set_index("metric").loc["accuracy"]
    assert accuracy["high"] < accuracy["rest_value"] and accuracy["q_value"] < 1e-10
    assert (table["low"] <= table["value"]).all() and (table["value"] <= table["high"]).all()


def test_fairness_flags_nothing_when_the_model_is_equally_good(planted: pd.DataFrame) -> None:
    table = fairness(_predictions(planted.head(12_000), worse=None, seed=1))
    assert len(table) > 40 and not table["flagged"].any()
    assert set(table["column"]) == {"locale", "device_type"}


def test_performance_per_cohort_has_seeded_intervals(planted: pd.DataFrame) -> None:
    frame = _predictions(planted.head(8000), worse={"locale": "en-AU"})
    first = cohort_performance(frame, "locale", n_boot=100, seed=5)
    again = cohort_performance(frame, "locale", n_boot=100, seed=5)
    pd.testing.assert_frame_equal(first, again)
    rows = first.set_index("cohort")
    en_us = frame[frame["locale"] == "en-US"]
    assert rows.loc["en-US", "accuracy"] == pytest.approx((en_us[PREDICTED_COLUMN] == en_us["failure_point"]).mean())
    assert rows.loc["en-US", "macro_f1"] == pytest.approx(
        f1_score(en_us["failure_point"], en_us[PREDICTED_COLUMN], average="macro"))
    assert (first["macro_f1_low"] <= first["macro_f1"]).all() and (first["macro_f1"] <= first["macro_f1_high"]).all()
    assert rows.loc["en-AU", "macro_f1_high"] < rows.loc["en-US", "macro_f1_low"]
    with pytest.raises(NotLabelledError, match="needs labels"):
        cohort_performance(frame.assign(failure_point=pd.NA), "locale")


# ---------------------------------------------------------------- by hand

def _hand_frame() -> pd.DataFrame:
    """Two locales of 40 labelled turns: en-GB right 20 times of 40, en-US 38 of 40; 5 unlabelled turns."""
    truth = ["asr"] * 40 + ["asr"] * 40 + [None] * 5
    predicted = ["asr"] * 20 + ["nlu"] * 20 + ["asr"] * 38 + ["er"] * 2 + ["asr"] * 5
    return pd.DataFrame({
        "dialogue_id": [f"d{i // 2}" for i in range(85)], "turn_index": [i % 2 for i in range(85)],
        "locale": ["en-GB"] * 40 + ["en-US"] * 40 + ["en-GB"] * 5,
        "failure_point": pd.array(truth, dtype="str"), PREDICTED_COLUMN: pd.array(predicted, dtype="str"),
    })


def test_fairness_p_values_are_fishers_and_q_values_benjamini_hochbergs() -> None:
    table = fairness(_hand_frame(), columns=("locale", "not_a_column"), min_turns=30)
    assert list(table.columns) == FAIRNESS_RESULT and set(table["column"]) == {"locale"}
    assert set(table["metric"]) == {"accuracy", "recall:asr"}  # no other class has 30 labelled turns
    gb = table[(table["cohort"] == "en-GB") & (table["metric"] == "accuracy")].iloc[0]
    assert (gb["turns"], gb["hits"], gb["value"], gb["rest_value"]) == (40, 20, 0.5, 0.95)
    assert gb["gap"] == pytest.approx(-0.45)
    _, p = fisher_exact([[20, 20], [38, 2]], alternative="less")  # cohort's hits lower than the rest's
    assert gb["p_value"] == pytest.approx(p, rel=1e-9)
    _, q = benjamini_hochberg(table["p_value"].to_numpy())
    np.testing.assert_allclose(table["q_value"], q)
    assert table["flagged"].tolist() == [True, True, False, False]  # en-GB's two rows first
    assert set(table[table["flagged"]]["cohort"]) == {"en-GB"}


def test_fairness_leaves_out_small_cohorts_and_needs_labels() -> None:
    frame = _hand_frame()
    assert fairness(frame, columns=("locale",), min_turns=41).empty
    assert list(fairness(frame, columns=("locale",), min_turns=41).columns) == FAIRNESS_RESULT
    with pytest.raises(NotLabelledError, match="needs labels"):
        fairness(frame.assign(failure_point=pd.NA), columns=("locale",))
    with pytest.raises(NotLabelledError):
        fairness(frame.drop(columns="failure_point"), columns=("locale",))


def test_performance_counts_the_labelled_turns_and_dialogues_of_each_cohort() -> None:
    table = cohort_performance(_hand_frame(), "locale", n_boot=50)
    assert table["cohort"].tolist() == ["en-GB", "en-US"]  # largest first, then by name
    rows = table.set_index("cohort")
    assert rows.loc["en-GB", "turns"] == 40 and rows.loc["en-GB", "dialogues"] == 20
    assert rows.loc["en-GB", "accuracy"] == 0.5 and rows.loc["en-US", "accuracy"] == 0.95
    assert rows.loc["en-GB", "accuracy_low"] < 0.5 < rows.loc["en-GB", "accuracy_high"]


def test_format_fairness_lists_the_flagged_rows_or_says_there_are_none() -> None:
    table = fairness(_hand_frame(), columns=("locale",), min_turns=30)
    text = format_fairness(table, level=0.05)
    assert "4 cohort x metric comparisons" in text and "locale = en-GB" in text and "en-US" not in text
    assert "50.0%" in text and "95.0%" in text
    calm = format_fairness(table.assign(flagged=False), level=0.05)
    assert calm.endswith("no cohort is significantly worse served than the rest")
