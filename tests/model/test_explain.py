"""Explanations: exact additivity, stage groups, reasons that point the right way."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpi.model.explain import (
    GROUPS,
    ExplanationCache,
    beeswarm_data,
    reason_columns,
    contributions,
    explain_rows,
    global_importance,
    group_contributions,
)
from fpi.data.schema import LABELS


@pytest.fixture(scope="module")
def heldout_features(tiny_model, sim_heldout) -> pd.DataFrame:
    return tiny_model.features(sim_heldout)


@settings(max_examples=30, deadline=None)
@given(row=st.integers(min_value=0, max_value=2000), label=st.sampled_from(LABELS))
def test_base_value_plus_contributions_is_the_raw_score(tiny_model, heldout_features, row, label):
    features = heldout_features.iloc[[row]]
    explanation = explain_rows(tiny_model, features, label=label)[0]
    raw = tiny_model.raw_scores(features)[0, LABELS.index(label)]
    assert explanation.base_value + explanation.contributions.sum() == pytest.approx(raw, abs=1e-6)
    assert explanation.raw_score == pytest.approx(raw, abs=1e-6)


def test_contributions_agree_with_shap_tree_explainer(tiny_model, heldout_features):
    import shap

    sample = heldout_features.iloc[:50]
    ours = contributions(tiny_model, sample)[:, :, :-1]
    theirs = np.asarray(shap.TreeExplainer(tiny_model.booster).shap_values(sample.to_numpy(dtype=float)))
    np.testing.assert_allclose(ours, np.moveaxis(theirs, 2, 1), atol=1e-6)


def test_stage_groups_sum_to_the_total(tiny_model, heldout_features):
    shap = contributions(tiny_model, heldout_features.iloc[:200])
    for k in range(len(LABELS)):
        groups = group_contributions(shap[:, k, :-1], list(heldout_features.columns))
        assert list(groups.columns) == list(GROUPS)
        np.testing.assert_allclose(groups.sum(axis=1), shap[:, k, :-1].sum(axis=1), atol=1e-9)


def test_a_turn_is_explained_the_same_alone_or_in_a_batch(tiny_model, heldout_features):
    batch = explain_rows(tiny_model, heldout_features.iloc[:40])
    for i in (0, 17, 39):
        alone = explain_rows(tiny_model, heldout_features.iloc[[i]])[0]
        pd.testing.assert_series_equal(alone.contributions, batch[i].contributions, atol=1e-9, rtol=0)
        assert alone.predicted == batch[i].predicted
        assert [r.text for r in alone.reasons] == [r.text for r in batch[i].reasons]


def test_the_top_reason_points_the_right_way(tiny_model, sim_heldout, heldout_features):
    """Moving the top feature toward its typical value for another class lowers the predicted class's probability."""
    predicted = tiny_model.predict(sim_heldout)
    defects = np.flatnonzero(predicted != "correct")[:150]
    explanations = explain_rows(tiny_model, heldout_features.iloc[defects])
    typical_correct = heldout_features[predicted == "correct"].median()
    lowered = checked = 0
    for row, explanation in zip(defects, explanations):
        top = explanation.reasons[0]
        columns = reason_columns(top.feature)
        if top.contribution <= 0 or typical_correct[columns].isna().any():
            continue
        moved = heldout_features.iloc[[row]].copy()
        moved[columns] = typical_correct[columns].to_numpy()
        k = LABELS.index(explanation.predicted)
        before = explanation.probability
        after = float(np.exp(tiny_model.raw_scores(moved)[0] / tiny_model.temperature)[k]
                      / np.exp(tiny_model.raw_scores(moved)[0] / tiny_model.temperature).sum())
        checked += 1
        lowered += after < before
    assert checked >= 50
    assert lowered / checked >= 0.9, (lowered, checked)


def test_reasons_are_words_with_value_and_direction(tiny_model, heldout_features):
    explanation = explain_rows(tiny_model, heldout_features.iloc[:1], top=5)[0]
    assert 1 <= len(explanation.reasons) <= 5
    strengths = [abs(r.contribution) for r in explanation.reasons]
    assert strengths == sorted(strengths, reverse=True)
    for reason in explanation.reasons:
        assert ("toward " in reason.text) or ("away from " in reason.text)
        assert f"{reason.contribution:+.2f}" in reason.text


def test_global_importance_and_beeswarm_cover_every_class(tiny_model, sim_heldout, heldout_features):
    predicted = tiny_model.predict(sim_heldout)
    importance = global_importance(tiny_model, heldout_features, predicted=predicted, sample_size=300)
    assert set(importance["class"]) == set(LABELS)
    assert (importance["mean_abs_shap"] >= 0).all()
    swarm = beeswarm_data(tiny_model, heldout_features, label="asr", predicted=predicted, sample_size=200, top=5)
    assert swarm["feature"].nunique() == 5
    assert swarm["value_pct"].dropna().between(0, 1).all()


def test_cache_computes_each_turn_once(tiny_model, heldout_features):
    cache = ExplanationCache(max_items=100)
    first = cache.explain(tiny_model, heldout_features, [3, 4, 5], data_key="d")
    again = cache.explain(tiny_model, heldout_features, [4, 5, 6], data_key="d")
    assert cache.misses == 4 and cache.hits == 2
    assert first[1] is again[0]
