"""Retraining from verdicts: the traces' own labels plus analysts' verdicts, a candidate, a fair comparison.

Verdicts win over labels in the data. The comparison holds out whole dialogues
(`fpi.splits.grouped_split`, the same split `FailurePointModel.fit` uses for its
test part), and the active model and the candidate are scored on exactly those
turns; the candidate never trains on them.

Two strategies:
- `continue` (the default): keep the active model and add a few boosting
  rounds fitted to the labelled turns (LightGBM `init_model`), verdicts
  weighted up. Needs few labels and keeps what the model learnt from its large
  training set; `bench/bench_loop.py` measures it against `scratch`.
- `scratch`: train a new model on the labelled turns alone, as the Model page
  does. Only sensible with thousands of labels.
Either way, fewer than `MIN_LABELLED_TURNS` labelled turns is a `NotLabelledError`,
not a junk model.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from fpi.errors import FpiError, ModelError, NotLabelledError
from fpi.evaluate import evaluate_predictions
from fpi.model import MIN_LABELLED_TURNS, FailurePointModel, TrainConfig, class_codes
from fpi.schema import LABEL_COLUMN, LABELS
from fpi.splits import grouped_split

__all__ = [
    "LABEL_SOURCE", "STRATEGIES", "RetrainConfig", "RetrainResult", "continue_training", "labels_with_verdicts",
    "retrain_from_verdicts", "split_masks",
]

STRATEGIES: tuple[str, ...] = ("continue", "scratch")
LABEL_SOURCE = "label_source"
"""Column `labels_with_verdicts` adds: "verdict", "data" or empty."""


@dataclass(frozen=True)
class RetrainConfig:
    """How a candidate is made from labels and verdicts (defaults chosen with bench/bench_loop.py)."""

    strategy: str = "continue"
    rounds: int = 30
    """continue: boosting rounds added to the active model."""
    learning_rate: float = 0.05
    """continue: small steps, so a few hundred verdicts nudge the model instead of rewriting it."""
    min_data_in_leaf: int = 25
    """continue: a leaf needs 25 labelled turns, so a few hundred verdicts make broad corrections
    instead of memorising single turns (bench_loop, 6 seeds: 5 -> the queue ahead of random in 16 of
    24 seed-checkpoints; 15 -> 23; 25 -> 23, with the larger gaps)."""
    verdict_weight: float = 10.0
    """Weight of a verdict-labelled turn relative to one labelled in the data: a verdict is a
    deliberate judgement of a hard turn. (An exploratory variant of bench_loop that replays 4,000
    unshifted labelled dialogues beside the verdicts: weights 10 and 30 both kept the queue ahead
    of random at every checkpoint.)"""
    class_weight_power: float = 0.0
    """continue: no class weights. Weights counted over a few hundred verdicts are noise, and the
    active model already has its class balance (bench_loop: 0 beat 0.5 at 500 verdicts)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """scratch: how to train; both: the split fractions and seed of the held-out dialogues."""


@dataclass(frozen=True)
class RetrainResult:
    candidate: FailurePointModel
    comparison: dict[str, Any]
    """`evaluate_predictions` report with systems "active" and "candidate", on the held-out turns."""
    heldout_turns: int
    heldout_verdicts: int
    training_turns: int
    """Labelled turns the candidate learnt from (including early stopping / calibration)."""
    verdict_turns: int
    """How many of all labelled turns carry a verdict."""
    strategy: str


def labels_with_verdicts(frame: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """`frame` with `failure_point` from the verdict where a turn has one, else from the data.

    `verdicts` has at most one row per (dialogue_id, turn_index), e.g.
    `VerdictStore.latest(dataset=...)` or `latest_by_turn()`; verdicts on turns
    the frame lacks are ignored. Adds `label_source`: "verdict", "data" or empty.
    """
    if not verdicts.empty and verdicts.duplicated(["dialogue_id", "turn_index"]).any():
        raise FpiError("labels_with_verdicts needs at most one verdict per (dialogue_id, turn_index); "
                       "pass VerdictStore.latest(dataset=...) or latest_by_turn()")
    out = frame.copy()
    data_labels = out[LABEL_COLUMN] if LABEL_COLUMN in out.columns else pd.Series(pd.NA, index=out.index, dtype="str")
    keys = out[["dialogue_id", "turn_index"]].astype({"dialogue_id": "str", "turn_index": "int64"})
    picked = verdicts[["dialogue_id", "turn_index", "label"]].astype(
        {"dialogue_id": "str", "turn_index": "int64", "label": "str"})
    verdict = keys.merge(picked, on=["dialogue_id", "turn_index"], how="left")["label"].to_numpy(dtype=object)
    has_verdict = pd.notna(verdict)
    labels = np.where(has_verdict, verdict, data_labels.to_numpy(dtype=object))
    out[LABEL_COLUMN] = pd.array(labels, dtype="str")
    source = np.where(has_verdict, "verdict", np.where(data_labels.notna().to_numpy(), "data", None))
    out[LABEL_SOURCE] = pd.array(source, dtype="str")
    return out


def split_masks(frame: pd.DataFrame, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, early stopping / calibration, held-out) by dialogue: the split `FailurePointModel.fit` makes."""
    fractions = (1 - config.valid_fraction - config.test_fraction, config.valid_fraction, config.test_fraction)
    return grouped_split(frame, fractions=fractions, seed=config.seed)


def _sample_weights(codes: np.ndarray, from_verdict: np.ndarray, config: RetrainConfig) -> np.ndarray:
    counts = np.bincount(codes[codes >= 0], minlength=len(LABELS)).astype(float)
    present = counts > 0
    per_class = np.ones(len(LABELS))
    per_class[present] = (np.median(counts[present]) / counts[present]) ** config.class_weight_power
    weights = per_class[np.maximum(codes, 0)]
    return np.where(from_verdict, weights * config.verdict_weight, weights)


def continue_training(
    active: FailurePointModel,
    frame: pd.DataFrame,
    *,
    train: np.ndarray,
    config: RetrainConfig | None = None,
    features: pd.DataFrame | None = None,
) -> FailurePointModel:
    """A copy of `active` with `config.rounds` more trees fitted to the labelled `train` turns of `frame`.

    The features are the active model's (same spec), computed over the whole
    frame (pass `features` to reuse them). The temperature and the baselines are
    the active model's: small steps barely move the scale of the scores, and a
    few hundred labels are too few to refit either. Verdict rows (a
    `label_source` column of "verdict") weigh `config.verdict_weight`.
    """
    config = config or RetrainConfig()
    booster, spec = active.booster, active.spec
    if booster is None or spec is None:
        raise ModelError("the active model is not loaded; there is nothing to continue from")
    started = time.perf_counter()
    features = active.features(frame) if features is None else features
    codes = class_codes(frame[LABEL_COLUMN])
    train = np.asarray(train, dtype=bool) & (codes >= 0)
    if not train.any():
        raise NotLabelledError("no labelled turns to continue training on")
    from_verdict = (frame[LABEL_SOURCE] == "verdict").to_numpy(dtype=bool, na_value=False) \
        if LABEL_SOURCE in frame.columns else np.zeros(len(frame), bool)
    weights = _sample_weights(codes[train], from_verdict[train], config)
    matrix = features.to_numpy(dtype=float)
    base = active.config
    params = {
        "objective": "multiclass", "num_class": len(LABELS), "learning_rate": config.learning_rate,
        "num_leaves": base.num_leaves, "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": base.feature_fraction, "lambda_l2": base.lambda_l2, "max_bin": base.max_bin,
        "seed": base.seed, "deterministic": True, "force_row_wise": True, "num_threads": config.train.num_threads,
        "verbosity": -1, "max_cat_to_onehot": 8, "cat_smooth": 10,
    }
    dataset = lgb.Dataset(
        matrix[train], label=codes[train], weight=weights, feature_name=list(features.columns),
        categorical_feature=[c for c in spec.categorical if c in spec.features], free_raw_data=False,
    )
    grown = lgb.train(params, dataset, num_boost_round=config.rounds, init_model=booster)
    candidate = FailurePointModel(config=active.config)
    candidate.booster = lgb.Booster(model_str=grown.model_to_string())
    candidate.baseline_booster, candidate.spec, candidate.rule = active.baseline_booster, spec, active.rule
    candidate.temperature = active.temperature
    candidate.meta = _continued_meta(active, candidate, frame, train, from_verdict, config,
                                     time.perf_counter() - started)
    return candidate


def _continued_meta(
    active: FailurePointModel, candidate: FailurePointModel, frame: pd.DataFrame, train: np.ndarray,
    from_verdict: np.ndarray, config: RetrainConfig, seconds: float,
) -> dict[str, Any]:
    from fpi.traces import dataset_fingerprint

    meta = {k: v for k, v in active.meta.items() if k not in ("model_sha256", "baseline_sha256")}
    counts = frame.loc[train, LABEL_COLUMN].value_counts()
    booster = candidate.booster
    assert booster is not None
    meta.update({
        "temperature": candidate.temperature,
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 2),
        "trees": int(booster.num_trees()),
        "iterations": int(booster.current_iteration()),
        "training_data": {
            "fingerprint": dataset_fingerprint(frame.drop(columns=[LABEL_SOURCE], errors="ignore")),
            "turns": int(len(frame)),
            "dialogues": int(frame["dialogue_id"].nunique()),
            "labelled_turns": int(train.sum()),
            "label_counts": {label: int(counts.get(label, 0)) for label in LABELS},
            "verdict_turns": int((train & from_verdict).sum()),
        },
        "retraining": {
            "strategy": "continue", "base_model": active.version, "added_rounds": config.rounds,
            "learning_rate": config.learning_rate, "min_data_in_leaf": config.min_data_in_leaf,
            "verdict_weight": config.verdict_weight,
            "base_training_data": (active.meta.get("training_data") or {}).get("fingerprint"),
        },
    })
    return meta


def retrain_from_verdicts(
    frame: pd.DataFrame,
    verdicts: pd.DataFrame,
    *,
    active: FailurePointModel,
    base: FailurePointModel | None = None,
    config: RetrainConfig | None = None,
) -> RetrainResult:
    """Combine the labels of `frame` with `verdicts`, train a candidate, compare it with `active`.

    `continue` adds trees to `base` (default: `active`). Pass the model the
    active one was itself continued from, so that retraining again refits all
    verdicts once instead of stacking rounds fitted to the same verdicts.

    Raises `NotLabelledError` when fewer than `MIN_LABELLED_TURNS` turns are
    labelled (data plus verdicts), or when no held-out dialogue has a label to
    compare on: a comparison on nothing would be a guess.
    """
    config = config or RetrainConfig()
    if config.strategy not in STRATEGIES:
        raise ModelError(f"unknown retraining strategy {config.strategy!r}; expected one of {', '.join(STRATEGIES)}")
    combined = labels_with_verdicts(frame, verdicts)
    labelled = combined[LABEL_COLUMN].notna().to_numpy()
    from_verdict = (combined[LABEL_SOURCE] == "verdict").to_numpy(dtype=bool, na_value=False)
    n_labelled, n_verdicts = int(labelled.sum()), int(from_verdict.sum())
    if n_labelled < MIN_LABELLED_TURNS:
        raise NotLabelledError(
            f"retraining needs at least {MIN_LABELLED_TURNS} labelled turns; there are {n_labelled} "
            f"({n_labelled - n_verdicts} labelled in the data, {n_verdicts} verdicts). "
            "Give more verdicts in the queue, or load traces with a filled failure_point column")
    train, valid, test = split_masks(combined, config.train)
    held = test & labelled
    if not held.any() or not (train & labelled).any():
        raise NotLabelledError(
            f"the {n_labelled} labelled turns fall in too few dialogues to hold some out for a fair comparison "
            f"({int((train & labelled).sum())} in training dialogues, {int(held.sum())} held out); "
            "give verdicts in more dialogues")
    if config.strategy == "scratch":
        candidate = FailurePointModel(config=config.train).fit(combined.drop(columns=[LABEL_SOURCE]))
        training = (train | valid) & labelled
    else:
        start = base or active
        features = start.features(combined)
        candidate = continue_training(start, combined, train=train | valid, config=config, features=features)
        # the card's held-out numbers, as `fit` stores them
        truth = combined[LABEL_COLUMN].to_numpy(dtype=object)[held]
        systems = {"model": candidate.predict_proba_from_features(features)[held]}
        systems.update({name: proba[held] for name, proba in candidate.baseline_probas(combined).items()})
        candidate.meta["metrics"] = evaluate_predictions(truth, systems)
        training = (train | valid) & labelled
    truth = combined[LABEL_COLUMN].to_numpy(dtype=object)[held]
    comparison = evaluate_predictions(truth, {
        "active": active.predict_proba(combined)[held],
        "candidate": candidate.predict_proba(combined)[held],
    })
    return RetrainResult(candidate=candidate, comparison=comparison, heldout_turns=int(held.sum()),
                         heldout_verdicts=int((held & from_verdict).sum()), training_turns=int(training.sum()),
                         verdict_turns=n_verdicts, strategy=config.strategy)


