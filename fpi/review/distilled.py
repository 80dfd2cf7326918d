"""Candidates made of mixed scores: refit on every labelled turn and distilled into one booster.

`blend`, `selfblend`, `self` and `semi` (`fpi.review.strategies`) mix two models' raw scores. The
candidate is one LightGBM booster fitted to the mixture's probabilities on every turn of the
upload, so it is explained, compiled and saved like any other model. `unlabelled_candidate`
is `self` with no label at all (`fpi.review.self_training`). `scratchblend` mixes the best
`selfblend` with `scratch` and is distilled over `scratch`'s features, its text models included.
"""
from __future__ import annotations

from typing import Any, Callable

import lightgbm as lgb
import numpy as np
import pandas as pd

from fpi.errors import ModelError
from fpi.model.calibration import fit_temperature, matching_temperature, softmax
from fpi.model.estimator import FailurePointModel
from fpi.data.schema import LABELS
from fpi.review.strategies import (
    BUILDERS, MIN_SELF_TURNS, RetrainConfig, Scored, Upload, at_most, lgb_params, mix, scratch_partner, start_scores,
    sure_rows,
)

__all__ = ["DISTILLED", "blend_candidate", "scratchblend_candidate", "self_candidate",
           "selfblend_candidate", "semi_candidate", "unlabelled_candidate"]


def blend_candidate(upload: Upload, labelled: np.ndarray, start: FailurePointModel, config: RetrainConfig, *,
                    variant: str, scored: Scored) -> tuple[FailurePointModel, dict[str, Any], np.ndarray]:
    """The mixture `variant` ("blend@ROUNDS:WEIGHT") refit on every labelled turn, distilled into one booster;
    with what to record of it in the candidate's meta, and its probabilities on every turn of the upload."""
    rounds, weight = variant.split("@")[1].split(":")
    model, details, proba = _refit(upload, labelled, start, config, start_scores(upload, start), scored.oof[variant],
                                   rounds=int(rounds), weight=float(weight))
    return model, {"rounds": int(rounds), "start_weight": float(weight), **details}, proba


def selfblend_candidate(upload: Upload, labelled: np.ndarray, start: FailurePointModel, config: RetrainConfig, *,
                        variant: str, scored: Scored) -> tuple[FailurePointModel, dict[str, Any], np.ndarray]:
    """`self` mixed with the verdicts model ("selfblend@ROUNDS:WEIGHT"), refit on every labelled turn, distilled."""
    raw, make = _selfblend_scores(upload, labelled, start, config, variant)
    model, details, proba = _distilled(upload, make(), raw, _oof_temperature(upload, labelled, scored.oof[variant]),
                                       config)
    rounds, weight = variant.split("@")[1].split(":")
    return model, {**_self_details(config), "rounds": int(rounds), "self_weight": float(weight), **details}, proba


def _selfblend_scores(upload: Upload, labelled: np.ndarray, start: FailurePointModel, config: RetrainConfig,
                      variant: str) -> tuple[np.ndarray, Callable[[], FailurePointModel]]:
    """A `selfblend` variant's raw scores on every turn: `self` mixed at WEIGHT with the verdicts model of ROUNDS
    refit on every labelled turn ("selfblend@ROUNDS:WEIGHT"); and how to make that verdicts model."""
    rounds, weight = variant.split("@")[1].split(":")
    self_raw, _ = BUILDERS["self"](upload, labelled, start, config)["self"]
    return _with_verdicts(upload, labelled, start, config, self_raw, rounds=int(rounds), weight=float(weight))


def semi_candidate(upload: Upload, labelled: np.ndarray, start: FailurePointModel, config: RetrainConfig, *,
                   variant: str, scored: Scored) -> tuple[FailurePointModel, dict[str, Any], np.ndarray]:
    """`semi` ("semi@WEIGHT") refit on every labelled turn and distilled, like `self_candidate`."""
    raw, _ = BUILDERS["semi"](upload, labelled, start, config)[variant]
    model, details, proba = _refit(upload, labelled, start, config, raw, scored.oof[variant])
    return model, {**_self_details(config), "start_weight": float(variant.split("@")[1]),
                   "label_weight": config.semi_label_weight, **details}, proba


def self_candidate(upload: Upload, labelled: np.ndarray, start: FailurePointModel, config: RetrainConfig, *,
                   variant: str, scored: Scored) -> tuple[FailurePointModel, dict[str, Any], np.ndarray]:
    """`self` distilled into one booster, like `blend_candidate` (the verdicts give its baselines and rule)."""
    self_raw, _ = BUILDERS["self"](upload, labelled, start, config)["self"]
    model, details, proba = _refit(upload, labelled, start, config, self_raw, scored.oof[variant])
    return model, {**_self_details(config), **details}, proba


def _refit(upload: Upload, labelled: np.ndarray, start: FailurePointModel, config: RetrainConfig,
           raw: np.ndarray, oof_raw: np.ndarray, *, rounds: int | None = None, weight: float | None = None,
           ) -> tuple[FailurePointModel, dict[str, Any], np.ndarray]:
    """`raw` (mixed with the verdicts model of `rounds` at `weight`, if given) distilled at the temperature of
    its out-of-fold scores; the verdicts model refit on every labelled turn gives the baselines and rule."""
    raw, make = _with_verdicts(upload, labelled, start, config, raw, rounds=rounds, weight=weight)
    return _distilled(upload, make(), raw, _oof_temperature(upload, labelled, oof_raw), config)


def _with_verdicts(upload: Upload, labelled: np.ndarray, start: FailurePointModel, config: RetrainConfig,
                   raw: np.ndarray, *, rounds: int | None, weight: float | None,
                   ) -> tuple[np.ndarray, Callable[[], FailurePointModel]]:
    """`raw` mixed at `weight` with the verdicts model of `rounds` refit on every labelled turn (unmixed when
    `weight` is None), and how to make that verdicts model."""
    verdict_raw, make = BUILDERS["verdicts"](upload, labelled, start, config)[
        f"verdicts@{rounds if rounds is not None else min(config.verdict_rounds)}"]
    return (raw if weight is None else mix(raw, verdict_raw, weight)), make


def scratchblend_candidate(upload: Upload, labelled: np.ndarray, start: FailurePointModel, config: RetrainConfig, *,
                           variant: str, scored: Scored) -> tuple[FailurePointModel, dict[str, Any], np.ndarray]:
    """`scratch` mixed with its `scratch_partner` ("scratchblend@WEIGHT", the partner's share), distilled into
    one booster over `scratch`'s features (its text models too); `scratch`'s baselines and rule.

    Both sides are the scores that were cross-validated, refit on every labelled turn: the partner's
    mixture of `self` and the verdicts model at the temperature of its out-of-fold scores, and `scratch`
    at its own.
    """
    weight = float(variant.split("@")[1])
    scratch, partner = scored.built["scratch"], scratch_partner(scored, upload, labelled)
    assert partner is not None  # no scratchblend variant was scored without one
    partner_raw, _ = _selfblend_scores(upload, labelled, start, config, partner)
    features = scratch.features(upload.frame)
    scratch_raw = scratch.raw_scores(features, compiled=False) / scratch.temperature
    raw = mix(partner_raw / _oof_temperature(upload, labelled, scored.oof[partner]), scratch_raw, weight)
    model = FailurePointModel(config=scratch.config)
    model.spec, model.baseline_booster, model.rule = scratch.spec, scratch.baseline_booster, scratch.rule
    model.reference, model.reference_uploads = scratch.reference, scratch.reference_uploads
    temperature = _oof_temperature(upload, labelled, scored.oof[variant])
    model, details, proba = _distilled(upload, model, raw, temperature, config, features=features)
    return model, {"partner": partner, "partner_weight": weight, **details}, proba


def unlabelled_candidate(upload: Upload, start: FailurePointModel, config: RetrainConfig,
                         ) -> tuple[FailurePointModel, dict[str, Any], np.ndarray]:
    """`self` with no label at all (`fpi.review.self_training`), distilled like `self_candidate`.

    With no label to fit a temperature on, the mixture is made as sure on the upload, on average, as
    the starting model (`matching_temperature`), and the candidate keeps the starting model's
    baselines and rule; what it records and its probabilities on every turn come back too.
    """
    start_proba = softmax(start_scores(upload, start))
    sure = len(sure_rows(start_proba, config))
    if sure < MIN_SELF_TURNS:
        raise ModelError(
            f"self-training needs at least {MIN_SELF_TURNS} turns that the model labels with probability "
            f"{config.self_min_probability:g} or more; it is that sure of {sure:,} of these {len(upload.frame):,} "
            "turns. Label turns in the triage queue instead.")
    raw, _ = BUILDERS["self"](upload, np.zeros(len(upload.frame), bool), start, config)["self"]
    model = FailurePointModel(config=start.config)
    model.baseline_booster, model.rule = start.baseline_booster, start.rule
    start_confidence = float(start_proba.max(axis=1).mean())
    model, details, proba = _distilled(upload, model, raw, matching_temperature(raw, start_confidence), config)
    return model, {**_self_details(config), **details}, proba


def _self_details(config: RetrainConfig) -> dict[str, Any]:
    return {"start_weight": config.self_start_weight, "student_rounds": config.self_rounds,
            "student_min_probability": config.self_min_probability}


DISTILLED: dict[str, Callable[..., tuple[FailurePointModel, dict[str, Any], np.ndarray]]] = {
    "blend": blend_candidate, "self": self_candidate, "selfblend": selfblend_candidate, "semi": semi_candidate,
    "scratchblend": scratchblend_candidate,
}
"""Strategies whose candidate is a mixture of scores, refit on every labelled turn and distilled."""


def _oof_temperature(upload: Upload, labelled: np.ndarray, oof_raw: np.ndarray) -> float:
    """A mixture's temperature, fitted on its out-of-fold scores (honest held-out scores)."""
    return fit_temperature(oof_raw[labelled], upload.codes[labelled])


def _distilled(upload: Upload, model: FailurePointModel, raw: np.ndarray, temperature: float,
               config: RetrainConfig, *, features: pd.DataFrame | None = None,
               ) -> tuple[FailurePointModel, dict[str, Any], np.ndarray]:
    """`model` (its feature spec, baselines and rule) with one booster that learnt the scores `raw`.

    The distilled booster learns the probabilities at `temperature`, so it needs none of its own. It
    reads `features` (by default the upload's own, whose spec `model` is then given).
    """
    target = softmax(raw / temperature)
    if features is None:
        model.spec, features = upload.upload_features()
    spec = model.spec
    assert spec is not None
    model.booster = _distil(features, target, [c for c in spec.categorical if c in spec.features], config)
    model.temperature = 1.0
    student = softmax(model.raw_scores(features, compiled=False))
    return model, {
        "mixture_temperature": float(temperature),
        "distilled_turns": int(min(len(features), config.distil_max_turns)),
        "distilled_rounds": config.distil_rounds,
        "distilled_agreement": float((student.argmax(axis=1) == target.argmax(axis=1)).mean()),
    }, student


def _distil(features: pd.DataFrame, target: np.ndarray, categorical: list[str], config: RetrainConfig,
            ) -> lgb.Booster:
    """One multiclass booster fitted to `target` probabilities (soft labels, cross-entropy) on the upload."""
    rows = at_most(np.arange(len(features)), config)
    soft = target[rows]

    def cross_entropy(raw: np.ndarray, _: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        p = softmax(raw)
        return p - soft, np.maximum(p * (1.0 - p), 1e-6)

    params = {**lgb_params(config, num_leaves=config.distil_num_leaves, min_data_in_leaf=20,
                            learning_rate=config.distil_learning_rate, base=config.train),
              "objective": cross_entropy}
    dataset = lgb.Dataset(features.to_numpy(dtype=float)[rows], label=soft.argmax(axis=1),
                          feature_name=list(features.columns), categorical_feature=categorical, free_raw_data=False)
    text = lgb.train(params, dataset, num_boost_round=config.distil_rounds).model_to_string()
    # A custom objective leaves the link unnamed. The scores are multiclass raw scores (fpi applies the
    # softmax), so name it: the model then reads like any other fpi model, compiled scoring included.
    text = text.replace("\nfeature_names=", f"\nobjective=multiclass num_class:{len(LABELS)}\nfeature_names=", 1)
    return lgb.Booster(model_str=text)
