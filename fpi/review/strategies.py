"""How a candidate is made from labelled turns: the strategies `fpi.review.adapt` chooses among.

- `keep`: the starting model unchanged (right when it already reads this pipeline well);
- `continue`: the starting model plus a few boosting rounds fitted to the labels
  (LightGBM `init_model`: the starting model's raw scores are the prior the new
  trees correct; the saved model holds both);
- `self`: the starting model mixed with a student that learnt the starting
  model's surest labels on this upload, over the upload's own features (self-training:
  no verdict is used, so it is the same in every fold). It gives the starting model's
  knowledge this pipeline's own feature levels and extras; distilled into one booster
  like `blend`;
- `verdicts`: a small LightGBM trained on the labelled turns alone, over features
  specified from this upload (its own categorical levels and stage-prefixed
  extras), rounds chosen by cross-validation;
- `blend`: the starting model's and the `verdicts` model's scores mixed (weight
  chosen by cross-validation), so a few verdicts correct the starting model
  without replacing what it knows. The mixture is then distilled into one
  LightGBM model over the upload's features, fitted to the mixture's
  probabilities on every turn of the upload (labelled or not; `fpi.review.distilled`):
  the candidate stays one booster, explained, compiled and saved like any other;
- `selfblend`: `blend` with `self` in place of the starting model: the starting model
  self-trained on the upload, mixed with the `verdicts` model (out-of-fold scores are
  sums of the two, so it costs no fit of its own). Where the starting model reads the
  pipeline partly, it keeps what self-training gained and adds what the verdicts teach;
- `semi`: `self` whose student also learns the labelled turns, with their own labels
  (semi-supervised): the upload's surest turns as the starting model labels them and the
  labelled ones as labelled; mixed with the starting model (its share chosen by
  cross-validation) and distilled like `blend`;
- `scratch`: `FailurePointModel.fit` on the labelled turns (the full training
  recipe with its text models; it cross-validates itself, and its out-of-fold
  metrics are its score);
- `scratchblend`: the best `selfblend` mixed with `scratch` (the partner's share chosen
  by cross-validation, on the two sides' out-of-fold scores), distilled over `scratch`'s
  features (`fpi.review.distilled`). Once the labels are enough for a model of their
  own, what the starting model knew still corrects it where they are few.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import lightgbm as lgb
import numpy as np
import pandas as pd

from fpi.model.baselines import RuleCascade
from fpi.errors import ModelError, NotLabelledError
from fpi.model.features import build_features, fit_feature_spec
from fpi.model.calibration import fit_temperature, softmax
from fpi.model.estimator import FailurePointModel
from fpi.model.evaluate import metrics_for
from fpi.model.training import TrainConfig, class_codes
from fpi.data.schema import CONFIDENCE_COLUMNS, LABEL_COLUMN, LABELS
from fpi.review.metadata import LABEL_SOURCE, candidate_meta, fresh_meta

__all__ = [
    "BUILDERS", "DERIVED", "LABEL_SOURCE", "MIN_SELF_TURNS", "SELF_VALIDATED", "RetrainConfig", "Scored", "Upload",
    "at_most", "candidate_meta", "continue_training", "fresh_meta", "lgb_params", "mix", "start_scores",
    "scratch_mixtures", "scratch_partner", "sure_rows", "verdict_mask", "verdict_mixtures",
]

@dataclass(frozen=True)
class RetrainConfig:
    """How a candidate is made from labels and verdicts (defaults chosen with bench/bench_transfer.py)."""

    strategy: str = "auto"
    """"auto": every strategy of `candidates`, the best by grouped cross-validation; or one strategy's name."""
    candidates: tuple[str, ...] = ("keep", "self", "verdicts", "blend", "selfblend", "semi", "scratch",
                                   "scratchblend")
    """auto: the strategies tried. `selfblend` joined them after it lifted held-out macro-F1 on traces of a
    real small speech pipeline (bench_transfer, 6 seeds, random order) from 0.482 to 0.500 after 100
    verdicts and 0.542 to 0.551 after 300, queue order level (0.505 / 0.543). `scratchblend` joined
    them after it lifted 1000 verdicts from 0.665 / 0.645 (queue / random order; `scratch` was chosen
    before) to 0.686 / 0.656 there (6 seeds, shares 0.25 and 0.4; see `scratch_blend_weights`). Not
    `continue`: on traces of a real pipeline (bench_transfer, 3 seeds) it lost to `verdicts` at 300
    and 1000 verdicts in every seed, and after 300 queue-ordered verdicts cross-validation picked it
    in every seed although it was the worse model on held-out dialogues (the queue's sample is not
    the upload's mix, and 30 small rounds on the starting model fit that sample best)."""
    folds: int = 10
    """Cross-validation folds over the labelled dialogues. Fold models learn from (folds - 1) / folds of
    the labels, so cross-validation underrates learning strategies against `keep` (which learns
    nothing) the more, the fewer the folds: with 5, `keep` won after 100 verdicts where a trained
    candidate was better on held-out dialogues."""
    rounds: int = 30
    """continue: boosting rounds added to the starting model."""
    learning_rate: float = 0.05
    """continue: small steps, so a few hundred verdicts nudge the model instead of rewriting it."""
    min_data_in_leaf: int = 25
    """continue: a leaf needs 25 labelled turns (bench_loop, shifted simulator traces)."""
    verdict_weight: float = 10.0
    """continue and verdicts: weight of a verdict relative to a turn labelled in the data."""
    class_weight_power: float = 0.0
    """continue: no class weights (the starting model already has its class balance)."""
    verdict_rounds: tuple[int, ...] = (30, 60, 120, 240)
    """verdicts: the numbers of rounds tried; cross-validation picks one (each is a candidate)."""
    verdict_learning_rate: float = 0.05
    verdict_num_leaves: int = 7
    verdict_min_data_in_leaf: int = 5
    """verdicts: small trees with small leaves, for a few hundred labelled turns."""
    verdict_class_weight_power: float = 0.5
    """verdicts: lift rare labels (macro-F1 counts each label alike) without flattening the rest."""
    self_min_probability: float = 0.7
    """self: the student learns the turns the starting model labels with at least this probability."""
    self_rounds: int = 100
    self_num_leaves: int = 15
    self_min_data_in_leaf: int = 20
    """self: the student's trees (it learns thousands of turns, not a few hundred verdicts)."""
    self_start_weight: float = 0.5
    """self: the starting model's share of the mixture with its student."""
    semi_start_weights: tuple[float, ...] = (0.25, 0.5)
    """semi: the starting model's shares tried in the mixture with its student."""
    semi_label_weight: float = 3.0
    """semi: weight of a labelled turn in the student (a sure turn weighs its probability, 0.7 to 1)."""
    blend_weights: tuple[float, ...] = (0.25, 0.5, 0.75)
    """blend: the starting model's shares tried (each with every `verdict_rounds`)."""
    scratch_blend_weights: tuple[float, ...] = (0.25, 0.4, 0.6)
    """scratchblend: the `selfblend` partner's shares tried in the mixture with `scratch`. 0.6 joined after it
    took 300 verdicts on traces of a real small speech pipeline (bench_transfer, 6 seeds) from 0.543 / 0.554
    (queue / random order) to 0.554 / 0.561, lower in no run, at a cost of 0.004 / 0.006 after 1000."""
    distil_rounds: int = 300
    distil_num_leaves: int = 15
    distil_learning_rate: float = 0.1
    distil_max_turns: int = 50_000
    """blend: the one booster that learns the mixture, on at most this many turns of the upload."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """scratch: how to train; all: the seed and threads."""


MIN_SELF_TURNS = 200
"""self: the student learns from at least this many turns the starting model is sure of. With fewer
there is nothing to learn from: `self` is then the starting model as it is, and self-training
without labels (`unlabelled_candidate`) refuses."""


# ---------------------------------------------------------------- the strategies


@dataclass
class Upload:
    """One upload, the labels to learn from and the features built once per spec."""

    frame: pd.DataFrame
    codes: np.ndarray
    weights: np.ndarray
    """Per-turn weight of a label (verdicts weigh `verdict_weight`)."""
    cache: dict[str, Any] = field(default_factory=dict)

    def features(self, model: FailurePointModel) -> pd.DataFrame:
        key = f"model:{id(model)}"
        if key not in self.cache:
            self.cache[key] = model.features(self.frame)
        return self.cache[key]

    def upload_features(self) -> tuple[Any, pd.DataFrame]:
        if "upload" not in self.cache:
            spec = fit_feature_spec(self.frame)  # label-free: levels, extras and references of this upload
            self.cache["upload"] = (spec, build_features(self.frame, spec))
        return self.cache["upload"]

    def with_labels(self, train: np.ndarray) -> pd.DataFrame:
        """The frame with labels on the `train` turns only."""
        labels = np.where(train, np.asarray(LABELS, dtype=object)[np.maximum(self.codes, 0)], None)
        return self.frame.assign(**{LABEL_COLUMN: pd.array(labels, dtype="str")}).drop(
            columns=[LABEL_SOURCE], errors="ignore")


Builder = Callable[[Upload, np.ndarray, FailurePointModel, RetrainConfig, "np.ndarray | None"], dict[str, Any]]
"""Trains on the `train` turns; returns {variant name: (raw scores of the turns in the last argument, every
turn when it is None, NaN for the others; make final model)}."""


def lgb_params(config: RetrainConfig, *, num_leaves: int, min_data_in_leaf: int, learning_rate: float,
                base: TrainConfig) -> dict[str, Any]:
    return {
        "objective": "multiclass", "num_class": len(LABELS), "learning_rate": learning_rate,
        "num_leaves": num_leaves, "min_data_in_leaf": min_data_in_leaf, "feature_fraction": base.feature_fraction,
        "lambda_l2": base.lambda_l2, "max_bin": base.max_bin, "seed": config.train.seed, "deterministic": True,
        "force_row_wise": True, "num_threads": config.train.num_threads, "verbosity": -1, "max_cat_to_onehot": 8,
        "cat_smooth": 10, "min_data_per_group": 5,
    }


def _class_weights(codes: np.ndarray, power: float) -> np.ndarray:
    counts = np.bincount(codes[codes >= 0], minlength=len(LABELS)).astype(float)
    present = counts > 0
    per_class = np.ones(len(LABELS))
    per_class[present] = (np.median(counts[present]) / counts[present]) ** power
    return per_class[np.maximum(codes, 0)]


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
    the active model's. Verdict rows (`label_source` "verdict") weigh `config.verdict_weight`.
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
    from_verdict = verdict_mask(frame)
    weights = _class_weights(codes[train], config.class_weight_power)
    weights = np.where(from_verdict[train], weights * config.verdict_weight, weights)
    params = lgb_params(config, num_leaves=active.config.num_leaves, min_data_in_leaf=config.min_data_in_leaf,
                         learning_rate=config.learning_rate, base=active.config)
    params["seed"] = active.config.seed
    dataset = lgb.Dataset(
        features.to_numpy(dtype=float)[train], label=codes[train], weight=weights, feature_name=list(features.columns),
        categorical_feature=[c for c in spec.categorical if c in spec.features], free_raw_data=False,
    )
    grown = lgb.train(params, dataset, num_boost_round=config.rounds, init_model=booster)
    candidate = FailurePointModel(config=active.config)
    candidate.booster = lgb.Booster(model_str=grown.model_to_string())
    candidate.baseline_booster, candidate.spec, candidate.rule = active.baseline_booster, spec, active.rule
    candidate.reference, candidate.reference_uploads = active.reference, active.reference_uploads
    candidate.temperature = active.temperature
    meta = {k: v for k, v in active.meta.items() if k not in ("model_sha256", "baseline_sha256")}
    candidate.meta = candidate_meta(meta, candidate, frame, train, from_verdict, time.perf_counter() - started, {
        "strategy": "continue", "base_model": active.version, "added_rounds": config.rounds,
        "learning_rate": config.learning_rate, "min_data_in_leaf": config.min_data_in_leaf,
        "verdict_weight": config.verdict_weight,
        "base_training_data": (active.meta.get("training_data") or {}).get("fingerprint"),
    })
    return candidate


def verdict_mask(frame: pd.DataFrame) -> np.ndarray:
    if LABEL_SOURCE not in frame.columns:
        return np.zeros(len(frame), bool)
    return (frame[LABEL_SOURCE] == "verdict").to_numpy(dtype=bool, na_value=False)


def _scored_rows(n: int, score: np.ndarray | None, predict: Callable[[Any], np.ndarray]) -> np.ndarray:
    """`predict(rows)` on the `score` rows (every row when None), NaN elsewhere.

    A cross-validation fold reads only its test rows: scoring every turn of a 100k-turn upload in
    each of 10 folds and 4 round counts took most of a minute for nothing.
    """
    if score is None:
        return np.asarray(predict(slice(None)))  # every row, without copying the matrix
    out = np.full((n, len(LABELS)), np.nan)
    rows = np.flatnonzero(score)
    if len(rows):
        out[rows] = predict(rows)
    return out


def _keep(upload: Upload, train: np.ndarray, start: FailurePointModel, config: RetrainConfig,
          score: np.ndarray | None = None) -> dict[str, Any]:
    return {"keep": (start_scores(upload, start), lambda: start)}


def start_scores(upload: Upload, start: FailurePointModel) -> np.ndarray:
    """The starting model's raw scores on the upload at its temperature, computed once per upload."""
    if "keep" not in upload.cache:
        upload.cache["keep"] = start.raw_scores(upload.features(start)) / start.temperature
    return upload.cache["keep"]


def sure_rows(start_proba: np.ndarray, config: RetrainConfig) -> np.ndarray:
    """The turns the starting model labels with at least `config.self_min_probability`: what `self` learns."""
    return np.flatnonzero(start_proba.max(axis=1) >= config.self_min_probability)


def _continue(upload: Upload, train: np.ndarray, start: FailurePointModel, config: RetrainConfig,
              score: np.ndarray | None = None) -> dict[str, Any]:
    frame = upload.with_labels(train).assign(**{LABEL_SOURCE: upload.frame.get(LABEL_SOURCE)})
    features = upload.features(start)
    model = continue_training(start, frame, train=train, config=config, features=features)
    raw = _scored_rows(len(features), score, lambda rows: model.raw_scores(features.iloc[rows]) / model.temperature)
    return {"continue": (raw, lambda: model)}


def _verdicts(upload: Upload, train: np.ndarray, start: FailurePointModel, config: RetrainConfig,
              score: np.ndarray | None = None) -> dict[str, Any]:
    spec, features = upload.upload_features()
    matrix = features.to_numpy(dtype=float)
    codes = upload.codes
    weights = _class_weights(codes[train], config.verdict_class_weight_power) * upload.weights[train]
    params = lgb_params(config, num_leaves=config.verdict_num_leaves,
                         min_data_in_leaf=config.verdict_min_data_in_leaf,
                         learning_rate=config.verdict_learning_rate, base=config.train)
    categorical = [c for c in spec.categorical if c in spec.features]
    dataset = lgb.Dataset(matrix[train], label=codes[train], weight=weights, feature_name=list(features.columns),
                          categorical_feature=categorical, free_raw_data=False)
    booster = lgb.train(params, dataset, num_boost_round=max(config.verdict_rounds))
    out = {}
    for rounds in config.verdict_rounds:
        raw = _scored_rows(len(matrix), score, lambda rows, rounds=rounds: booster.predict(
            matrix[rows], raw_score=True, num_iteration=rounds))

        def make(rounds: int = rounds) -> FailurePointModel:
            model = FailurePointModel(config=config.train)
            model.booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
            model.spec = spec
            raw_conf = features[list(CONFIDENCE_COLUMNS)].to_numpy(dtype=float)
            model.baseline_booster = lgb.train(
                {**params, "num_leaves": 7}, lgb.Dataset(raw_conf[train], label=codes[train], weight=weights,
                                                         feature_name=list(CONFIDENCE_COLUMNS)),
                num_boost_round=rounds)
            model.rule = RuleCascade.fit(upload.frame.loc[train], np.asarray(LABELS, dtype=object)[codes[train]])
            return model

        out[f"verdicts@{rounds}"] = (raw, make)
    return out


def _self(upload: Upload, train: np.ndarray, start: FailurePointModel, config: RetrainConfig,
          score: np.ndarray | None = None) -> dict[str, Any]:
    """The starting model mixed with a student of its surest labels on this upload (no verdict used)."""
    if "self" not in upload.cache:
        keep_raw = start_scores(upload, start)
        proba = softmax(keep_raw)
        labels, sureness = proba.argmax(axis=1), proba.max(axis=1)
        rows = at_most(sure_rows(proba, config), config)
        if len(rows) < MIN_SELF_TURNS:  # nothing to learn from: the starting model as it is
            upload.cache["self"] = keep_raw
        else:
            student = _student(upload, rows, labels[rows], sureness[rows], config)
            matrix = upload.upload_features()[1].to_numpy(dtype=float)
            upload.cache["self"] = mix(keep_raw, student.predict(matrix, raw_score=True), config.self_start_weight)
    return {"self": (upload.cache["self"], lambda: start)}  # the candidate itself: `self_candidate`


def _semi(upload: Upload, train: np.ndarray, start: FailurePointModel, config: RetrainConfig,
          score: np.ndarray | None = None) -> dict[str, Any]:
    """The starting model mixed with a student of its surest labels and of the `train` turns' own labels."""
    keep_raw = start_scores(upload, start)
    proba = softmax(keep_raw)
    sure = np.zeros(len(proba), bool)
    sure[sure_rows(proba, config)] = True
    rows = np.concatenate([at_most(np.flatnonzero(sure & ~train), config), np.flatnonzero(train)])
    labels = np.where(train, upload.codes, proba.argmax(axis=1))[rows]
    student = _student(upload, rows, labels, np.where(train, config.semi_label_weight, proba.max(axis=1))[rows],
                       config)
    matrix = upload.upload_features()[1].to_numpy(dtype=float)
    raw = _scored_rows(len(matrix), score, lambda r: student.predict(matrix[r], raw_score=True))
    return {f"semi@{weight:g}": (mix(keep_raw, raw, weight), lambda: start)  # the candidate: `semi_candidate`
            for weight in config.semi_start_weights}


def _student(upload: Upload, rows: np.ndarray, labels: np.ndarray, weights: np.ndarray,
             config: RetrainConfig) -> lgb.Booster:
    """`self` and `semi`: a LightGBM over the upload's own features that learns `labels` on `rows`, each
    weighing `weights` times its class weight (thousands of turns: bigger trees than the verdicts model's)."""
    spec, features = upload.upload_features()
    params = lgb_params(config, num_leaves=config.self_num_leaves, min_data_in_leaf=config.self_min_data_in_leaf,
                        learning_rate=config.verdict_learning_rate, base=config.train)
    return lgb.train(params, lgb.Dataset(
        features.to_numpy(dtype=float)[rows], label=labels,
        weight=_class_weights(labels, config.verdict_class_weight_power) * weights,
        feature_name=list(features.columns), categorical_feature=[c for c in spec.categorical if c in spec.features]),
        num_boost_round=config.self_rounds)


def _scratch(upload: Upload, train: np.ndarray, start: FailurePointModel, config: RetrainConfig,
             ) -> FailurePointModel | None:
    """`FailurePointModel.fit` on the `train` turns, every one of them training (no held-out share):
    `fit` cross-validates itself (grouped folds) and keeps the out-of-fold metrics in its meta."""
    frame = upload.with_labels(train)
    model = FailurePointModel(config=replace(config.train, test_fraction=0.0))
    try:
        model.fit(frame)
    except NotLabelledError:
        return None  # too few labelled dialogues for its own folds: not a candidate
    return model


BUILDERS: dict[str, Builder] = {"keep": _keep, "continue": _continue, "self": _self, "verdicts": _verdicts,
                                 "semi": _semi}
"""Strategies cross-validated here: one build per fold, then the winner refit on every labelled turn."""
SELF_VALIDATED: dict[str, Callable[..., FailurePointModel | None]] = {"scratch": _scratch}
"""Strategies whose `fit` cross-validates itself: built once on every labelled turn, scored by its
own out-of-fold metrics (refitting it per fold here would cost folds x its own folds fits)."""


@dataclass
class Scored:
    """What cross-validation has so far: out-of-fold raw scores per variant, and the models that
    cross-validated themselves (`SELF_VALIDATED`), built once on every labelled turn."""

    oof: dict[str, np.ndarray] = field(default_factory=dict)
    built: dict[str, FailurePointModel] = field(default_factory=dict)


def verdict_mixtures(scored: Scored, upload: Upload, labelled: np.ndarray, config: RetrainConfig, *,
                     first: str = "keep", name: str = "blend") -> dict[str, np.ndarray]:
    """Out-of-fold scores of the `first` strategy's scores mixed with every `verdicts` model's, as `name`
    variants: sums of two out-of-fold scores, so nothing is refitted."""
    oof = scored.oof
    base = oof.get(first)
    if base is None:
        return {}
    return {f"{name}@{rounds}:{weight:g}": mix(base, oof[f"verdicts@{rounds}"], weight)
            for rounds in config.verdict_rounds if f"verdicts@{rounds}" in oof for weight in config.blend_weights}


def scratch_partner(scored: Scored, upload: Upload, labelled: np.ndarray) -> str | None:
    """The `selfblend` variant `scratch` is mixed with: the best by out-of-fold macro-F1 (None if none was
    scored on every labelled turn)."""
    partners = {v: raw for v, raw in scored.oof.items()
                if v.startswith("selfblend@") and not np.isnan(raw[labelled]).any()}
    if not partners:
        return None
    truth = np.asarray(LABELS, dtype=object)[upload.codes[labelled]]
    return max(partners, key=lambda v: round(metrics_for(truth, softmax(partners[v][labelled]))["macro_f1"], 6))


def scratch_mixtures(scored: Scored, upload: Upload, labelled: np.ndarray,
                     config: RetrainConfig) -> dict[str, np.ndarray]:
    """Out-of-fold scores of the `scratch_partner` mixed with `scratch`'s at each
    `config.scratch_blend_weights` (the partner's share), as "scratchblend@WEIGHT" variants.

    Each side's scores are out of fold for every labelled turn (`scratch` by its own folds, the partner by
    the selection's), so their mixture is too; each side is put at its own temperature first, so the
    weight, not one side's scale, sets the mix. Nothing when either side lacks a labelled turn's score.
    """
    scratch = scored.built.get("scratch")
    if scratch is None or scratch.out_of_fold is None or np.isnan(scratch.out_of_fold[labelled]).any():
        return {}
    partner = scratch_partner(scored, upload, labelled)
    if partner is None:
        return {}
    raw = scored.oof[partner]
    calibrated = raw / fit_temperature(raw[labelled], upload.codes[labelled])
    return {f"scratchblend@{weight:g}": mix(calibrated, scratch.out_of_fold, weight)
            for weight in config.scratch_blend_weights}


Derive = Callable[[Scored, Upload, np.ndarray, RetrainConfig], dict[str, np.ndarray]]
"""Scores a strategy from what is `Scored` already: {variant name: out-of-fold raw scores}."""

DERIVED: dict[str, tuple[tuple[str, ...], Derive]] = {
    "blend": (("keep", "verdicts"), verdict_mixtures),
    "selfblend": (("self", "verdicts"), functools.partial(verdict_mixtures, first="self", name="selfblend")),
    "scratchblend": (("selfblend", "scratch"), scratch_mixtures),
}
"""Strategies scored from others' out-of-fold scores or self-validated models (those named first, scored
before them: a strategy here comes after those it names), with no fit of their own per fold."""


def mix(start_raw: np.ndarray, verdict_raw: np.ndarray, weight: float) -> np.ndarray:
    """A weighted geometric mean of the two models' probabilities, as raw scores (softmax of it)."""
    return weight * start_raw + (1.0 - weight) * verdict_raw


def at_most(rows: np.ndarray, config: RetrainConfig) -> np.ndarray:
    """`rows`, or a seeded sample of `config.distil_max_turns` of them (in order) when there are more."""
    if len(rows) <= config.distil_max_turns:
        return rows
    return np.sort(np.random.default_rng(config.train.seed).choice(rows, config.distil_max_turns, replace=False))
