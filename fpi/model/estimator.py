"""The failure-point model: LightGBM multiclass over turn, cascade and dialogue features.

A model directory holds only data, never code, so loading one cannot run anything:
- `model.txt`         LightGBM's own text format (the full model)
- `baseline_raw.txt`  LightGBM on the five raw confidences (a baseline, for comparison)
- `meta.json`         contract version, classes, feature spec, rule-cascade thresholds,
                      temperature, training data fingerprint, metrics, library
                      versions and the sha256 of both model files.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from fpi.model.baselines import RuleCascade
from fpi.model.compiled import CompiledScoring
from fpi.config import Config
from fpi.errors import ModelError, NotLabelledError
from fpi.model.features import (
    FeatureSpec, build_features, build_features_by_upload, fit_feature_spec, missing_column_variants,
    pipeline_scaled,
)
from fpi.data.schema import (
    CONFIDENCE_COLUMNS, CONTRACT_VERSION, LABEL_COLUMN, LABELS, feature_name_problem, safe_feature_name,
)
from fpi.model.splits import dialogue_bucket, grouped_split
from fpi.model.text_stack import FIELDS_BY_KEY as FIELDS, TextStack, field_of_feature, fit_text_stack

MODEL_FILE = "model.txt"
BASELINE_FILE = "baseline_raw.txt"
TEXT_TERMS_FILE = "text_terms.json"
TEXT_ARRAYS_FILE = "text_models.npz"
REFERENCE_FILE = "reference.npz"
REFERENCE_ROWS = 2000
REFERENCE_PER_UPLOAD = 500
META_FILE = "meta.json"
FORMAT_VERSION = 1
MIN_LABELLED_TURNS = 50

Progress = Callable[[str, float], None]
"""Called with a message and the share of the work done, in [0, 1]."""

BoosterTrainer = Callable[..., lgb.Booster]
"""Trains a booster elsewhere (e.g. `fpi.scoring.distributed.DaskTrainer`): called with the LightGBM params,
train x/y, valid x/y and class weights, and keywords names, categorical, rounds, early_stopping_rounds."""


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; every option has a seed-stable default."""

    # Small trees: on 100k simulator turns 15 leaves lose ~0.003 macro-F1 against
    # 31 leaves at lr 0.08, and explain 3x faster (bench/bench_explain.py).
    learning_rate: float = 0.15
    num_leaves: int = 15
    min_data_in_leaf: int = 30
    feature_fraction: float = 0.8
    lambda_l2: float = 1.0
    max_bin: int = 63
    """Coarser histograms: ~2x faster training, no measurable loss on confidences."""
    max_rounds: int = 600
    early_stopping_rounds: int = 40
    cv_folds: int = 5
    """Folds (grouped by dialogue) for the text models' out-of-fold features and the rounds."""
    cv_max_turns: int = 40_000
    """Up to this many labelled training turns, rounds come from cross-validation and the model
    is refitted on all of them; above, one fold is the early-stopping set (5x cheaper)."""
    cv_learning_rate: float = 0.05
    """Learning rate under cross-validation: on a few thousand turns smaller steps generalise
    better (traces from a real small speech pipeline, 5-fold: 0.05 -> 0.72 macro-F1, 0.15 -> 0.70)."""
    scale_free: bool = False
    """Leave out features read on the training pipelines' own scale (raw confidences and extras,
    and what is built from them), keeping their ranks within the upload: for a model meant to
    carry over to pipelines it never saw (the shipped one)."""
    upload_column: str | None = None
    """A column naming the upload (e.g. the simulated `pipeline`) each turn came from: upload-relative
    features are computed within each, as they will be on a customer's one upload."""
    text_models: bool = True
    """Stack TF-IDF text models of the request, response and neighbouring turns (`fpi.model.text_stack`)."""
    class_weight_power: float = 0.5
    """0 = no weighting, 1 = fully balanced classes; 0.5 lifts rare classes without
    wrecking calibration (temperature scaling then tidies the rest)."""
    missing_column_share: float = 0.3
    """Share of dialogues seen a second time in training with optional columns removed."""
    valid_fraction: float = 0.15
    """Where the held-out part starts (`split_masks`); early stopping now uses the folds."""
    test_fraction: float = 0.15
    """Dialogues held out for the stored metrics (0: cross-validated metrics, every label trains)."""
    seed: int = 0
    num_threads: int = 0


def split_masks(frame: pd.DataFrame, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, early stopping, held-out) by dialogue; `fit` trains on the first two, tests on the third."""
    fractions = (1 - config.valid_fraction - config.test_fraction, config.valid_fraction, config.test_fraction)
    return grouped_split(frame, fractions=fractions, seed=config.seed)


def softmax(raw: np.ndarray) -> np.ndarray:
    shifted = raw - raw.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def labelled_turns(frame: pd.DataFrame) -> pd.Series:
    """Boolean mask of turns that carry a label."""
    if LABEL_COLUMN not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[LABEL_COLUMN].notna()


def class_codes(labels: pd.Series | np.ndarray) -> np.ndarray:
    return pd.Categorical(np.asarray(labels, dtype=object), categories=list(LABELS)).codes.astype(int)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FailurePointModel:
    """Labels each turn with its failure point; scikit-learn style fit/predict."""

    def __init__(self, *, config: TrainConfig | None = None, trainer: BoosterTrainer | None = None) -> None:
        self.config = config or TrainConfig()
        self.trainer = trainer
        """Who trains the boosters: in this process (None) or e.g. on a Dask cluster."""
        self.booster: lgb.Booster | None = None
        self.baseline_booster: lgb.Booster | None = None
        self.spec: FeatureSpec | None = None
        self.rule: RuleCascade | None = None
        self.temperature: float = 1.0
        self.meta: dict[str, Any] = {}
        self.path: Path | None = None
        self.reference: pd.DataFrame | None = None
        """Up to `REFERENCE_ROWS` training feature rows: what an upload is compared with (`fpi.model.trust`)."""
        self.reference_uploads: np.ndarray | None = None
        """The upload (`TrainConfig.upload_column`) of each reference row, when training pooled several."""
        self._compiled: dict[str, tuple[lgb.Booster, CompiledScoring]] = {}
        """Per booster ('model', 'baseline'): the compiled scoring made for that booster object."""
        self._saved: dict[str, lgb.Booster] = {}
        """The boosters `meta['<name>_sha256']` vouches for (saved or loaded); compiled builds are keyed by it."""

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for Dask workers: the compiled forest is machine code of this process; a worker finds its own."""
        state = dict(self.__dict__)
        state["_compiled"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._compiled = {}

    # -- training ---------------------------------------------------------------

    def fit(self, frame: pd.DataFrame, *, progress: Progress | None = None) -> FailurePointModel:
        """Train on the labelled turns of a validated traces frame.

        `config.test_fraction` of the dialogues (by id) is held out and gives the
        metrics stored in `meta.json`; with none held out, the metrics are the
        cross-validated (out-of-fold) ones. Up to `config.cv_max_turns` labelled
        training turns, the number of boosting rounds and the temperature come from
        grouped cross-validation and the model is then refitted on all of them, so a
        small labelled set is not spent on early stopping; above it one fold serves
        for early stopping. Text models are stacked out of fold with the same folds.
        Context features are computed on the whole frame first, so unlabelled turns
        still count as context for their labelled neighbours.
        """
        from fpi.model.evaluate import evaluate_predictions  # evaluate imports model

        report = progress or (lambda message, done: None)
        started = time.perf_counter()
        mask = labelled_turns(frame).to_numpy()
        if mask.sum() < MIN_LABELLED_TURNS:
            raise NotLabelledError(
                f"training needs at least {MIN_LABELLED_TURNS} labelled turns; the traces have {int(mask.sum())}"
                " (fill the failure_point column or add verdicts)"
            )
        cfg = self.config
        report("building features", 0.02)
        codes = class_codes(frame[LABEL_COLUMN])
        _, _, test = split_masks(frame, cfg)
        test &= mask
        train = mask & ~test
        folds = np.where(train, np.minimum((dialogue_bucket(frame["dialogue_id"], seed=cfg.seed + 2)
                                            * cfg.cv_folds).astype(int), cfg.cv_folds - 1), -1)
        if len(np.unique(folds[train])) < 2:
            raise NotLabelledError("too few labelled dialogues to cross-validate; label turns in more dialogues")
        spec = fit_feature_spec(frame)
        if cfg.scale_free:
            spec = replace(spec, features=tuple(f for f in spec.features if not pipeline_scaled(f, spec)))
        features = build_features_by_upload(frame, spec, cfg.upload_column)
        if cfg.text_models:
            report("fitting the text models", 0.05)
            stack, oof_text = fit_text_stack(frame, np.where(train, codes, -1), folds=folds, seed=cfg.seed)
            features = pd.concat([features, pd.DataFrame(oof_text, index=frame.index)], axis=1)
            spec = replace(spec, features=tuple(features.columns), text=stack)
        _require_storable_names(spec.features)
        self.spec = spec
        weights = self._class_weights(codes[train])
        self.reference, self.reference_uploads = _reference_sample(frame, features, train, cfg)

        report("training the model", 0.2)
        matrix = features.to_numpy(dtype=float)
        extra_x, extra_y, extra_rows = self._missing_column_variants(frame, train, features)
        self.booster, oof_raw, rounds = self._train_scheduled(
            np.vstack([matrix, extra_x]), np.concatenate([codes, extra_y]), np.concatenate([folds, folds[extra_rows]]),
            weights, names=list(features.columns), categorical=[c for c in spec.categorical if c in spec.features],
            progress=lambda done: report("training the model", 0.2 + 0.55 * done),
        )
        oof_raw = oof_raw[: len(frame)]
        self.temperature = _fit_temperature(oof_raw[train], codes[train])

        report("training the baselines", 0.8)
        raw = _confidences(frame)
        self.baseline_booster, baseline_oof, _ = self._train_scheduled(
            raw, codes, folds, weights, names=list(CONFIDENCE_COLUMNS), categorical=[], progress=None)
        labels = frame[LABEL_COLUMN].to_numpy(dtype=object)
        self.rule = RuleCascade.fit(frame.loc[train], labels[train])

        report("evaluating on held-out dialogues", 0.9)
        if test.any():
            held, systems = test, {
                "model": self.predict_proba_from_features(features)[test],
                "raw_confidence_lgbm": self._baseline_proba(frame)[test],
                "rule_cascade": self.rule.predict_proba(frame.loc[test]),
            }
        else:  # out of fold: each turn scored by the models that did not see its dialogue
            held = train & ~np.isnan(oof_raw).any(axis=1)
            rule_oof = np.zeros((len(frame), len(LABELS)))
            for fold in np.unique(folds[train]):
                inside = folds == fold
                rule = RuleCascade.fit(frame.loc[train & ~inside], labels[train & ~inside])
                rule_oof[inside] = rule.predict_proba(frame.loc[inside])
            systems = {
                "model": softmax(oof_raw[held] / self.temperature),
                "raw_confidence_lgbm": softmax(baseline_oof[held]),
                "rule_cascade": rule_oof[held],
            }
        metrics = evaluate_predictions(labels[held], systems)
        metrics["evaluated_on"] = "held-out dialogues" if test.any() else f"{cfg.cv_folds}-fold cross-validation"
        self.meta = self._build_meta(frame, mask, train, test, held, metrics, time.perf_counter() - started, rounds)
        report("done", 1.0)
        return self

    def _class_weights(self, codes: np.ndarray) -> np.ndarray:
        counts = np.bincount(codes[codes >= 0], minlength=len(LABELS)).astype(float)
        present = counts > 0
        weights = np.ones(len(LABELS))
        weights[present] = (np.median(counts[present]) / counts[present]) ** self.config.class_weight_power
        return weights

    def _missing_column_variants(
        self, frame: pd.DataFrame, train: np.ndarray, features: pd.DataFrame,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Extra training rows: some training dialogues again, with groups of optional columns removed.

        Real exports often lack text, timestamps, extras or cohort columns. Without
        these rows the model only ever saw such features missing where they mean
        something (a last turn has no next text), and would misread an upload
        that simply does not log them. Returns the rows, their labels and the row
        of `frame` each was made from (text features are the source rows'
        out-of-fold ones, or missing where the variant drops the text).
        """
        assert self.spec is not None
        share = self.config.missing_column_share
        n_features = len(self.spec.features)
        none = np.zeros((0, n_features)), np.zeros(0, dtype=int), np.zeros(0, dtype=int)
        if share <= 0:
            return none
        base_spec = replace(self.spec, features=tuple(c for c in self.spec.features if not c.startswith("text_")),
                            text=None)
        text_columns = [c for c in features.columns if c.startswith("text_")]
        rank_columns = [c for c in features.columns if c.startswith("rank_")]
        variants = missing_column_variants(self.spec)
        bucket = dialogue_bucket(frame["dialogue_id"], seed=self.config.seed + 1)
        xs, ys, sources = [], [], []
        width = share / len(variants)
        for i, dropped in enumerate(variants):
            chosen = (bucket >= i * width) & (bucket < (i + 1) * width)
            rows = np.flatnonzero(chosen)
            if len(rows) == 0:
                continue
            part = frame.iloc[rows].drop(columns=[c for c in dropped if c in frame.columns])
            keep = train[rows]
            table = build_features(part.reset_index(drop=True), base_spec)
            for column in text_columns:
                lost = field_of_feature(column).column in dropped
                table[column] = np.nan if lost else features[column].to_numpy()[rows]
            for column in rank_columns:  # ranks within the whole upload, as the source rows have them
                table[column] = features[column].to_numpy()[rows]
            xs.append(table.reindex(columns=list(self.spec.features)).to_numpy(dtype=float)[keep])
            ys.append(class_codes(part[LABEL_COLUMN])[keep])
            sources.append(rows[keep])
        if not xs:
            return none
        return np.vstack(xs), np.concatenate(ys), np.concatenate(sources)

    def _train_scheduled(
        self, x: np.ndarray, y: np.ndarray, folds: np.ndarray, class_weights: np.ndarray, *,
        names: list[str], categorical: list[str], progress: Callable[[float], None] | None,
    ) -> tuple[lgb.Booster, np.ndarray, int]:
        """A booster for the rows with `folds >= 0`, its out-of-fold raw scores and its rounds.

        Small data: rounds by grouped cross-validation over `folds`, then one refit
        on all rows. Large data: fold 0 is the early-stopping set and its scores are
        the only out-of-fold ones (others are NaN).
        """
        cfg = self.config
        rows = folds >= 0
        oof = np.full((len(y), len(LABELS)), np.nan)
        if rows.sum() > cfg.cv_max_turns or self.trainer is not None:
            valid = folds == 0
            train = rows & ~valid
            booster = self._train_booster(x[train], y[train], x[valid], y[valid], class_weights, names=names,
                                          categorical=categorical, progress=progress)
            oof[valid] = booster.predict(x[valid], raw_score=True)
            return booster, oof, int(booster.current_iteration())
        fold_ids = [f for f in np.unique(folds[rows])]
        histories, boosters = [], []
        for i, fold in enumerate(fold_ids):
            held = folds == fold
            fit_rows = rows & ~held
            booster, history = self._boost(x[fit_rows], y[fit_rows], class_weights, names=names,
                                           categorical=categorical, rounds=cfg.max_rounds,
                                           valid=(x[held], y[held]))
            histories.append(history)
            boosters.append((held, booster))
            if progress is not None:
                progress((i + 1) / (len(fold_ids) + 1))
        # Rounds where the mean held-out loss is lowest, each fold's curve padded with its last value.
        longest = max(len(h) for h in histories)
        curves = np.array([np.pad(h, (0, longest - len(h)), mode="edge") for h in histories])
        rounds = int(np.argmin(curves.mean(axis=0))) + 1
        for held, booster in boosters:
            oof[held] = booster.predict(x[held], raw_score=True, num_iteration=rounds)
        final, _ = self._boost(x[rows], y[rows], class_weights, names=names, categorical=categorical, rounds=rounds)
        if progress is not None:
            progress(1.0)
        return final, oof, rounds

    def _params(self, *, small: bool = False) -> dict[str, Any]:
        cfg = self.config
        return {
            "objective": "multiclass",
            "num_class": len(LABELS),
            "learning_rate": cfg.cv_learning_rate if small else cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_data_in_leaf,
            "feature_fraction": cfg.feature_fraction,
            "lambda_l2": cfg.lambda_l2,
            "max_bin": cfg.max_bin,
            "seed": cfg.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": cfg.num_threads,
            "verbosity": -1,
            "max_cat_to_onehot": 8,
            "cat_smooth": 10,
        }

    def _boost(
        self, x: np.ndarray, y: np.ndarray, class_weights: np.ndarray, *, names: list[str], categorical: list[str],
        rounds: int, valid: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[lgb.Booster, np.ndarray]:
        """`rounds` boosting rounds (stopping early on `valid` if given), and the valid loss per round."""
        train_set = lgb.Dataset(x, label=y, weight=class_weights[y], feature_name=names,
                                categorical_feature=categorical, free_raw_data=True)
        history: dict[str, Any] = {}
        callbacks: list[Callable[..., None]] = []
        valid_sets = []
        if valid is not None:
            valid_sets = [lgb.Dataset(valid[0], label=valid[1], weight=class_weights[valid[1]], reference=train_set)]
            callbacks = [lgb.record_evaluation(history),
                         lgb.early_stopping(self.config.early_stopping_rounds, verbose=False)]
        booster = lgb.train(self._params(small=True), train_set, num_boost_round=rounds, valid_sets=valid_sets,
                            callbacks=callbacks)
        losses = np.asarray(history["valid_0"]["multi_logloss"]) if history else np.zeros(0)
        return booster, losses

    def _train_booster(
        self,
        train_x: np.ndarray,
        train_y: np.ndarray,
        valid_x: np.ndarray,
        valid_y: np.ndarray,
        class_weights: np.ndarray,
        *,
        names: list[str],
        categorical: list[str],
        progress: Callable[[float], None] | None,
    ) -> lgb.Booster:
        cfg = self.config
        params = self._params()
        if self.trainer is not None:
            return self.trainer(params, train_x, train_y, valid_x, valid_y, class_weights, names=names,
                                categorical=categorical, rounds=cfg.max_rounds,
                                early_stopping_rounds=cfg.early_stopping_rounds)
        train_set = lgb.Dataset(
            train_x, label=train_y, weight=class_weights[train_y],
            feature_name=names, categorical_feature=categorical, free_raw_data=True,
        )
        valid_set = lgb.Dataset(valid_x, label=valid_y, weight=class_weights[valid_y], reference=train_set)
        callbacks: list[Callable[..., None]] = [lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)]
        if progress is not None:
            def _tick(env: lgb.callback.CallbackEnv) -> None:
                if env.iteration % 10 == 0:
                    progress(min(1.0, env.iteration / cfg.max_rounds))
            callbacks.append(_tick)
        booster = lgb.train(params, train_set, num_boost_round=cfg.max_rounds, valid_sets=[valid_set], callbacks=callbacks)
        # Keep only the trees up to the best iteration, so saving and loading agree.
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))

    # -- prediction -------------------------------------------------------------

    def _require(self) -> tuple[lgb.Booster, FeatureSpec]:
        if self.booster is None or self.spec is None:
            raise ModelError("the model is not trained or loaded yet")
        return self.booster, self.spec

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The feature matrix this model reads, for explanations and debugging."""
        _, spec = self._require()
        return build_features(frame, spec)

    @property
    def compiled(self) -> CompiledScoring:
        """This model's compiled scoring (built once per model sha256 under `FPI_HOME/compiled`).

        Only a saved or loaded model has one: its key is the sha256 of its model file.
        """
        booster, _ = self._require()
        baseline = self._compiled_scoring("baseline", self.baseline_booster) if self.baseline_booster else None
        return self._compiled_scoring("model", booster, then=baseline)

    def _compiled_scoring(self, name: str, booster: lgb.Booster, then: CompiledScoring | None = None
                          ) -> CompiledScoring:
        """The compiled scoring of one of this model's boosters, made afresh when the booster was replaced."""
        made = self._compiled.get(name)
        if made is None or made[0] is not booster:
            config = Config.from_env()
            sha = str(self.meta.get(f"{name}_sha256", "")) if self._saved.get(name) is booster else ""
            made = booster, CompiledScoring(
                model_text=booster.model_to_string, model_sha256=sha, home=config.home,
                n_features=booster.num_feature(), n_classes=booster.num_model_per_iteration(),
                enabled=config.compiled, then=then,
            )
            self._compiled[name] = made
        return made[1]

    def raw_scores(self, features: pd.DataFrame, *, compiled: bool = True) -> np.ndarray:
        """Raw scores per class: from the compiled forest when one is built, else `Booster.predict`
        (the same numbers to ~1e-15; `compiled=False` forces the booster, for comparisons)."""
        booster, _ = self._require()
        matrix = features.to_numpy(dtype=float)
        forest = self.compiled.forest() if compiled else None
        if forest is not None:
            return forest.raw_scores(matrix, threads=self.config.num_threads or None)
        return np.asarray(booster.predict(matrix, raw_score=True))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities per turn, columns in `LABELS` order."""
        return self.predict_proba_from_features(self.features(frame))

    def predict_proba_from_features(self, features: pd.DataFrame) -> np.ndarray:
        """Probabilities from an already built feature matrix (saves building it twice)."""
        return softmax(self.raw_scores(features) / self.temperature)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        proba = self.predict_proba(frame)
        return np.asarray(LABELS, dtype=object)[proba.argmax(axis=1)]

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with `predicted_failure_point` and `p_<label>` columns added; nothing else changes."""
        proba = self.predict_proba(frame)
        return with_predictions(frame, proba)

    def _baseline_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.baseline_booster is None:
            raise ModelError("this model has no raw-confidence baseline")
        forest = self._compiled_scoring("baseline", self.baseline_booster).forest()
        if forest is not None:  # compiled after the model itself (`compiled.then`); the Overview's trust reads it
            return softmax(forest.raw_scores(_confidences(frame), threads=self.config.num_threads or None))
        return np.asarray(self.baseline_booster.predict(_confidences(frame)))

    def baseline_probas(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Probabilities of both baselines, for side-by-side evaluation."""
        if self.rule is None:
            raise ModelError("this model has no rule-cascade baseline")
        return {
            "raw_confidence_lgbm": self._baseline_proba(frame),
            "rule_cascade": self.rule.predict_proba(frame),
        }

    # -- persistence -----------------------------------------------------------

    @property
    def version(self) -> str:
        """Short id of this model: the first 12 hex digits of its model file's sha256."""
        return str(self.meta.get("model_sha256", ""))[:12]

    def _build_meta(
        self, frame: pd.DataFrame, mask: np.ndarray, train: np.ndarray, test: np.ndarray, held: np.ndarray,
        metrics: Mapping[str, Any], seconds: float, rounds: int,
    ) -> dict[str, Any]:
        from fpi.data.traces import dataset_fingerprint

        import sklearn

        booster, spec = self._require()
        counts = frame.loc[mask, LABEL_COLUMN].value_counts()
        return {
            "format_version": FORMAT_VERSION,
            "contract_version": CONTRACT_VERSION,
            "classes": list(LABELS),
            "feature_spec": spec.to_json(),
            "rule_cascade_thresholds": dict(self.rule.thresholds) if self.rule else {},
            "temperature": self.temperature,
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "training_seconds": round(seconds, 2),
            "training_data": {
                "fingerprint": dataset_fingerprint(frame),
                "turns": int(len(frame)),
                "dialogues": int(frame["dialogue_id"].nunique()),
                "labelled_turns": int(mask.sum()),
                "label_counts": {label: int(counts.get(label, 0)) for label in LABELS},
                "split_turns": {"train": int(train.sum()), "test": int(test.sum()), "evaluated": int(held.sum())},
            },
            "schedule": {
                "rounds": rounds,
                "chosen_by": (f"{self.config.cv_folds}-fold grouped cross-validation, refitted on all training turns"
                              if train.sum() <= self.config.cv_max_turns and self.trainer is None
                              else "early stopping on one fold"),
            },
            "text_models": {key: {"terms": len(m.terms), "field": FIELDS[key].description}
                            for key, m in (spec.text.models.items() if spec.text else ())},
            "train_config": self.config.__dict__,
            "trees": int(booster.num_trees()),
            "iterations": int(booster.current_iteration()),
            "metrics": metrics,
            "versions": {
                "fpi": _fpi_version(),
                "lightgbm": lgb.__version__,
                "pandas": pd.__version__,
                "numpy": np.__version__,
                "scikit-learn": sklearn.__version__,
                "python": platform.python_version(),
            },
        }

    def save(self, directory: str | Path) -> Path:
        """Write the model atomically: a crash mid-save leaves any previous model intact."""
        booster, _ = self._require()
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; a model is meant to be shared
            booster.save_model(staging / MODEL_FILE)
            # Hashes vouch for the files written here and now; a meta copied from another model
            # (a continued candidate) must not vouch for files this one does not have.
            meta = {k: v for k, v in self.meta.items() if not k.endswith("_sha256")}
            meta["model_sha256"] = sha256_file(staging / MODEL_FILE)
            if self.baseline_booster is not None:
                self.baseline_booster.save_model(staging / BASELINE_FILE)
                meta["baseline_sha256"] = sha256_file(staging / BASELINE_FILE)
            if self.spec is not None and self.spec.text is not None:
                _write_json(staging / TEXT_TERMS_FILE, self.spec.text.to_json())
                np.savez_compressed(staging / TEXT_ARRAYS_FILE, **self.spec.text.arrays())
                meta["text_terms_sha256"] = sha256_file(staging / TEXT_TERMS_FILE)
                meta["text_models_sha256"] = sha256_file(staging / TEXT_ARRAYS_FILE)
            if self.reference is not None:
                uploads = {} if self.reference_uploads is None else {"uploads": self.reference_uploads.astype(str)}
                np.savez_compressed(staging / REFERENCE_FILE, columns=np.array(list(self.reference.columns)),
                                    values=self.reference.to_numpy(dtype=np.float32), **uploads)
                meta["reference_sha256"] = sha256_file(staging / REFERENCE_FILE)
            _write_json(staging / META_FILE, meta)
            try:  # a model that cannot be loaded again is never saved (nor activated from the registry)
                type(self).load(staging)
            except ModelError as exc:
                raise ModelError(f"refusing to save a model that could not be loaded again: {exc.message}",
                                 path=str(target)) from exc
            _swap_in(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.meta, self.path, self._compiled = meta, target, {}
        self._saved = {"model": booster, **({"baseline": self.baseline_booster} if self.baseline_booster else {})}
        return target

    @classmethod
    def load(cls, directory: str | Path) -> FailurePointModel:
        """Read a model directory, refusing one that was edited or is for another contract."""
        path = Path(directory)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise ModelError(f"no {META_FILE} found; is this a model directory?", path=str(path))
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{META_FILE} is not valid JSON ({exc})", path=str(path)) from exc
        if not isinstance(meta, dict):
            raise ModelError(f"{META_FILE} field '(top level)' must be an object; restore the file or retrain "
                             "the model", path=str(path))
        if meta.get("contract_version") != CONTRACT_VERSION:
            raise ModelError(
                f"model was trained for trace contract v{meta.get('contract_version')}, this fpi reads "
                f"v{CONTRACT_VERSION}; retrain it with `fpi train`", path=str(path),
            )
        classes = meta.get("classes")
        if meta.get("format_version") != FORMAT_VERSION or not isinstance(classes, list) or classes != list(LABELS):
            raise ModelError("model format or classes differ from this fpi; retrain it", path=str(path))
        _check_meta(meta, path)
        model = cls(config=TrainConfig(**meta.get("train_config", {})))
        model.booster = _load_booster(path / MODEL_FILE, meta.get("model_sha256"), path)
        if "baseline_sha256" in meta:
            model.baseline_booster = _load_booster(path / BASELINE_FILE, meta["baseline_sha256"], path)
        model.spec = FeatureSpec.from_json(meta["feature_spec"])
        if "text_models_sha256" in meta:
            words = json.loads(_checked(path / TEXT_TERMS_FILE, meta.get("text_terms_sha256"), path).decode("utf-8"))
            arrays = _load_npz(path / TEXT_ARRAYS_FILE, meta["text_models_sha256"], path)
            try:
                model.spec = replace(model.spec, text=TextStack.from_saved(words, arrays))
            except (KeyError, ValueError) as exc:
                raise ModelError(f"{TEXT_ARRAYS_FILE} does not fit {TEXT_TERMS_FILE} ({exc})", path=str(path)) from exc
        if "reference_sha256" in meta:
            arrays = _load_npz(path / REFERENCE_FILE, meta["reference_sha256"], path)
            model.reference = pd.DataFrame(np.asarray(arrays["values"], dtype=float),
                                           columns=[str(c) for c in arrays["columns"]])
            model.reference_uploads = arrays["uploads"].astype(str) if "uploads" in arrays else None
        stored, expected = model.booster.feature_name(), list(model.spec.features)
        if stored != expected:
            differ = [f"{a!r} vs {b!r}" for a, b in zip(stored, expected) if a != b][:3]
            raise ModelError("the model's features do not match its meta.json"
                             + (f" (model.txt vs meta.json: {', '.join(differ)})" if differ else
                                f" ({len(stored)} vs {len(expected)} features)")
                             + "; retrain it, or activate another model", path=str(path))
        if meta.get("rule_cascade_thresholds"):
            model.rule = RuleCascade(dict(meta["rule_cascade_thresholds"]))
        model.temperature = float(meta.get("temperature", 1.0))
        model.meta, model.path = meta, path
        model._saved = {"model": model.booster,
                        **({"baseline": model.baseline_booster} if model.baseline_booster is not None else {})}
        return model


def _check_meta(meta: Any, path: Path) -> None:
    """Every field `load` reads, checked for type and value before use: a hand-edited meta.json
    is refused with the field and the fix, never a traceback or a model that answers NaN."""
    def bad(field: str, expected: str) -> NoReturn:
        raise ModelError(f"{META_FILE} field '{field}' must be {expected}; restore the file or retrain the model",
                         path=str(path))

    if not isinstance(meta, dict):
        bad("(top level)", "an object")
    temperature = meta.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and 0.01 <= temperature <= 100):
        bad("temperature", "a number between 0.01 and 100")
    config = meta.get("train_config", {})
    known = {f.name: f.type for f in fields(TrainConfig)}
    if not isinstance(config, dict) or not set(config) <= set(known):
        bad("train_config", f"an object with only the keys {', '.join(known)}")
    defaults = TrainConfig()
    for key, value in config.items():
        default = getattr(defaults, key)
        expected = ((str, type(None)) if default is None else (bool,) if isinstance(default, bool)
                    else (int,) if isinstance(default, int) else (int, float))
        if not isinstance(value, expected) or (isinstance(value, bool) and not isinstance(default, bool)) or (
                isinstance(value, float) and not math.isfinite(value)):
            bad(f"train_config.{key}", "a " + " or ".join(t.__name__ for t in expected if t is not type(None)))
    spec = meta.get("feature_spec")
    if not isinstance(spec, dict):
        bad("feature_spec", "an object")
    for key in ("features", "categorical", "stage_signals"):
        if not isinstance(spec.get(key), list) or not all(isinstance(v, str) for v in spec[key]):
            bad(f"feature_spec.{key}", "a list of names")
    for key, kind in (("levels", "a list of names"), ("reference_quantiles", "a list of numbers"),
                      ("cascade_thresholds", "a number")):
        value = spec.get(key)
        if not isinstance(value, dict):
            bad(f"feature_spec.{key}", "an object")
        for name, item in value.items():
            ok = (isinstance(item, list) and all(isinstance(v, str) for v in item) if key == "levels" else
                  isinstance(item, list) and all(_is_number(v) for v in item) if key == "reference_quantiles" else
                  _is_number(item))
            if not ok:
                bad(f"feature_spec.{key}.{name}", kind)
    thresholds = meta.get("rule_cascade_thresholds", {})
    if not isinstance(thresholds, dict) or not all(_is_number(v) for v in thresholds.values()):
        bad("rule_cascade_thresholds", "an object of numbers")
    for key in [k for k in meta if k.endswith("_sha256")]:
        if not isinstance(meta[key], str):
            bad(key, "a hex digest")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require_storable_names(features: tuple[str, ...] | list[str]) -> None:
    """Refuse, before any training, feature names LightGBM would reject or rename on saving."""
    bad = [(name, problem) for name in features if (problem := feature_name_problem(name))]
    if bad:
        raise ModelError("cannot train on feature names LightGBM would change: "
                         + "; ".join(f"'{n}': {p} (rename the column to '{safe_feature_name(n)}')" for n, p in bad))


LOAD_CHECK_SECONDS = 300.0


def load_problem(directory: str | Path, *, timeout: float = LOAD_CHECK_SECONDS) -> str | None:
    """Why the model in `directory` cannot be loaded, or None when it loads.

    The load runs in a child process: a crafted `model.txt` can abort or crash LightGBM's
    parser, and that must cost a child, not the app serving everyone. Used before activating.
    """
    code = ("import sys\nfrom fpi.errors import FpiError\nfrom fpi.model.estimator import FailurePointModel\n"
            "try:\n    FailurePointModel.load(sys.argv[1])\n"
            "except FpiError as exc:\n    print(exc, end='')\n    sys.exit(3)\n")
    try:
        done = subprocess.run([sys.executable, "-c", code, str(directory)], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "PYTHONPATH": _package_root()})
    except subprocess.TimeoutExpired:
        return f"loading the model took more than {timeout:.0f} s"
    if done.returncode == 0:
        return None
    if done.returncode == 3:
        return done.stdout.strip() or "the model could not be loaded"
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    return f"loading the model failed (exit status {done.returncode}: {last[:300]})"


def _package_root() -> str:
    """The folder holding the `fpi` package, first on the child's path, so it loads this very fpi."""
    root = str(Path(__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH")
    return root if not rest else os.pathsep.join([root, rest])


def _confidences(frame: pd.DataFrame) -> np.ndarray:
    """The five raw confidences: what the raw-confidence baseline reads."""
    return np.column_stack([frame[c].to_numpy(dtype=float, na_value=np.nan) for c in CONFIDENCE_COLUMNS])


def _reference_sample(
    frame: pd.DataFrame, features: pd.DataFrame, train: np.ndarray, config: TrainConfig,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Training feature rows to compare uploads with: `REFERENCE_ROWS` at random, or
    `REFERENCE_PER_UPLOAD` per upload when the training data pooled several (an upload is then
    compared with the closest of them)."""
    rng = np.random.default_rng(config.seed)
    rows = np.flatnonzero(train)
    if config.upload_column is None or config.upload_column not in frame.columns:
        if len(rows) > REFERENCE_ROWS:
            rows = np.sort(rng.choice(rows, REFERENCE_ROWS, replace=False))
        return features.iloc[rows].reset_index(drop=True), None
    uploads = frame[config.upload_column].astype(str).to_numpy()
    picked = []
    for name in pd.unique(uploads[rows]):
        mine = rows[uploads[rows] == name]
        picked.append(np.sort(rng.choice(mine, min(REFERENCE_PER_UPLOAD, len(mine)), replace=False)))
    rows = np.concatenate(picked)
    return features.iloc[rows].reset_index(drop=True), uploads[rows]


def with_predictions(frame: pd.DataFrame, proba: np.ndarray) -> pd.DataFrame:
    """Add `predicted_failure_point` and one `p_<label>` column per label to a copy of `frame`."""
    scored = frame.copy()
    scored["predicted_failure_point"] = pd.array(np.asarray(LABELS, dtype=object)[proba.argmax(axis=1)], dtype="str")
    for i, label in enumerate(LABELS):
        scored[f"p_{label}"] = proba[:, i]
    return scored


def _fit_temperature(raw: np.ndarray, codes: np.ndarray) -> float:
    """Temperature that minimises the log loss on held-out turns (keeps the argmax)."""
    keep = (codes >= 0) & ~np.isnan(raw).any(axis=1)  # rows without an out-of-fold score carry no evidence
    raw, codes = raw[keep], codes[keep]
    if len(codes) < 20:
        return 1.0

    def nll(t: float) -> float:
        proba = softmax(raw / t)
        return float(-np.mean(np.log(np.clip(proba[np.arange(len(codes)), codes], 1e-12, None))))

    result = minimize_scalar(nll, bounds=(0.25, 4.0), method="bounded")
    return float(result.x)


def _checked(file: Path, expected_sha: str | None, path: Path) -> bytes:
    """The file's bytes, if they are the ones `meta.json` vouches for: what is checked is what is read."""
    if not file.is_file():
        raise ModelError(f"{file.name} is missing", path=str(path))
    data = file.read_bytes()
    if not expected_sha or hashlib.sha256(data).hexdigest() != expected_sha:
        raise ModelError(
            f"{file.name} does not match the sha256 in {META_FILE}: the file was changed after saving; "
            "refusing to load it (retrain or restore the original)", path=str(path),
        )
    return data


def _load_npz(file: Path, expected_sha: str | None, path: Path) -> dict[str, np.ndarray]:
    data = _checked(file, expected_sha, path)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:  # numbers only: never unpickle
            return {key: arrays[key] for key in arrays.files}
    except (ValueError, OSError) as exc:
        raise ModelError(f"{file.name} is not a valid array file ({exc})", path=str(path)) from exc


def _load_booster(file: Path, expected_sha: str | None, path: Path) -> lgb.Booster:
    data = _checked(file, expected_sha, path)
    try:
        return lgb.Booster(model_str=data.decode("utf-8"))
    except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
        raise ModelError(f"{file.name} is not a LightGBM model ({exc})", path=str(path)) from exc


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=_json_default)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _json_default(value: object) -> object:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _swap_in(staging: Path, target: Path) -> None:
    """Replace `target` by `staging` with renames only; the old one survives until the new is in place."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
    os.replace(target, retired)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _fpi_version() -> str:
    from fpi import __version__

    return __version__
