"""Members averaged into one booster: exact, explainable, saved like any model."""
from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from conftest import FAST
from fpi.errors import ModelError
from fpi.model.ensemble import average_boosters, ensemble_out_of_fold, member_codes
from fpi.model.estimator import FailurePointModel
from fpi.model.persistence import META_FILE
from fpi.simulator.simulate import simulate_fleet


def _members(seed: int = 0) -> tuple[list[lgb.Booster], np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = (np.nan_to_num(x[:, 0]) > 0).astype(int) + (np.nan_to_num(x[:, 1]) > 0.7)
    params = {"objective": "multiclass", "num_class": 3, "num_leaves": 7, "verbosity": -1, "bagging_freq": 1,
              "bagging_fraction": 0.7, "feature_fraction": 0.7}
    boosters = [lgb.train({**params, "seed": k}, lgb.Dataset(x, y), num_boost_round=10 + 7 * k) for k in range(3)]
    return boosters, x


def test_the_average_booster_scores_the_mean_of_its_members() -> None:
    boosters, x = _members()
    merged = average_boosters(boosters)
    mean = np.mean([b.predict(x, raw_score=True) for b in boosters], axis=0)
    assert merged.num_trees() == sum(b.num_trees() for b in boosters)
    np.testing.assert_allclose(merged.predict(x, raw_score=True), mean, atol=1e-12)
    # One plain booster: its contributions add up to its scores, and it survives a save and load.
    contributions = merged.predict(x, pred_contrib=True).reshape(len(x), 3, -1).sum(axis=2)
    np.testing.assert_allclose(contributions, mean, atol=1e-9)
    reloaded = lgb.Booster(model_str=merged.model_to_string())
    np.testing.assert_allclose(reloaded.predict(x, raw_score=True), mean, atol=1e-12)
    assert average_boosters(boosters[:1]) is boosters[0]


def test_boosters_of_other_features_or_classes_are_refused() -> None:
    boosters, x = _members()
    other = lgb.train({"objective": "multiclass", "num_class": 3, "verbosity": -1},
                      lgb.Dataset(x[:, :4], (np.nan_to_num(x[:, 0]) > 0).astype(int) * 2), num_boost_round=3)
    with pytest.raises(ValueError, match="share"):
        average_boosters([boosters[0], other])
    with pytest.raises(ValueError, match="no boosters"):
        average_boosters([])


def test_out_of_fold_scores_of_the_average_use_no_member_that_trained_on_the_row() -> None:
    boosters, x = _members()
    own = [np.full((len(x), 3), np.nan) for _ in boosters]
    own[0][:5] = 7.0  # rows 0-4: held out by member 0, which gives them 7
    own[2][5:8] = -1.0  # rows 5-7: held out by member 2
    out = ensemble_out_of_fold(boosters, own, x)
    raw = [b.predict(x[:8], raw_score=True) for b in boosters]
    np.testing.assert_allclose(out[:5], (7.0 + raw[1][:5] + raw[2][:5]) / 3)
    np.testing.assert_allclose(out[5:8], (raw[0][5:8] + raw[1][5:8] - 1.0) / 3)
    assert np.isnan(out[8:]).all()


def test_member_codes_name_the_column_and_the_empty_rows() -> None:
    frame = pd.DataFrame({"fleet": ["f1", "f0", "f1", None]})
    assert member_codes(frame.iloc[:3], "fleet").tolist() == [1, 0, 1]
    assert member_codes(frame, None).tolist() == [0, 0, 0, 0]
    with pytest.raises(ModelError, match=r"'fleet' is empty on 1 rows \(3\)"):
        member_codes(frame, "fleet")
    with pytest.raises(ModelError, match="'nope'"):
        member_codes(frame, "nope")


def test_a_model_of_two_fleets_averages_one_booster_per_fleet(tmp_path) -> None:
    fleets = simulate_fleet(2100, seed=5, n_pipelines=7, n_fleets=2)
    config = FAST.__class__(**{**FAST.__dict__, "upload_column": "pipeline", "member_column": "fleet",
                               "text_models": False})
    model = FailurePointModel(config=config).fit(fleets)
    assert model.meta["schedule"]["members"] == 2
    # Both members' trees are in it: the rounds are their sum, six trees (one per class) a round.
    assert model.booster.num_trees() == 6 * model.meta["schedule"]["rounds"] == model.meta["trees"]
    assert model.meta["metrics"]["systems"]["model"]["macro_f1"] > 0.5
    # The shift check compares an upload with the first 12 training pipelines, not all 14.
    expected = [f"f0-p{j:02d}" for j in range(7)] + [f"f1-p{j:02d}" for j in range(5)]
    assert pd.unique(model.reference_uploads).tolist() == expected
    model.save(tmp_path / "m")
    loaded = FailurePointModel.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(fleets), model.predict_proba(fleets), atol=1e-12)
    assert json.loads((tmp_path / "m" / META_FILE).read_text())["train_config"]["member_column"] == "fleet"
