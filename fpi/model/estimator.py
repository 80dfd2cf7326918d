"""The failure-point model: LightGBM multiclass over turn, cascade and dialogue features.

Training and scoring live here; what a saved model directory holds, and how it is checked
when read back, is `fpi.model.persistence`.
"""
from __future__ import annotations

import platform
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import lightgbm as lgb
import numpy as np
import pandas as pd

from fpi.model.baselines import RuleCascade
from fpi.model.compiled import CompiledScoring
from fpi.model.ensemble import average_boosters, ensemble_out_of_fold, member_codes
from fpi.config import Config
from fpi.errors import ModelError, NotLabelledError
from fpi.model.features import (
    FeatureSpec, build_features, build_features_by_upload, fit_feature_spec, pipeline_scaled,
)
from fpi.data.schema import (
    CONFIDENCE_COLUMNS, CONTRACT_VERSION, LABEL_COLUMN, LABELS, feature_name_problem, safe_feature_name,
)
from fpi.model.calibration import fit_temperature, softmax
from fpi.model.persistence import FORMAT_VERSION, fpi_version, read_model, write_model
from fpi.model.splits import dialogue_bucket
from fpi.model.text_stack import FIELDS_BY_KEY as FIELDS, fit_text_stack
from fpi.model.training import (
    MIN_LABELLED_TURNS, BoosterTrainer, TrainConfig, class_codes, labelled_turns, missing_column_rows, reference_sample, split_masks,
)
from fpi.progress import Progress
from fpi.data.predictions import with_predictions


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
        self.out_of_fold: np.ndarray | None = None
        """After `fit`: each turn's raw scores at the model's temperature from the fold models that did not
        see its dialogue (NaN where there are none); what a mixture with another model is weighed on. Not saved."""
        self._compiled: dict[str, tuple[lgb.Booster, CompiledScoring]] = {}
        """Per booster ('model', 'baseline'): the compiled scoring made for that booster object."""
        self._saved: dict[str, lgb.Booster] = {}
        """The boosters `meta['<name>_sha256']` vouches for (saved or loaded); compiled builds are keyed by it."""

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for Dask workers: the compiled forest is machine code of this process; a worker finds its own.
        Scoring needs no out-of-fold scores of training turns (tens of MB after a large fit)."""
        state = dict(self.__dict__)
        state["_compiled"], state["out_of_fold"] = {}, None
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
        self.reference, self.reference_uploads = reference_sample(frame, features, train, cfg)

        report("training the model", 0.2)
        matrix = features.to_numpy(dtype=float)
        extra_x, extra_y, extra_rows = missing_column_rows(frame, train, features, spec, self.config)
        all_x, all_folds = np.vstack([matrix, extra_x]), np.concatenate([folds, folds[extra_rows]])
        members = member_codes(frame, cfg.member_column)
        members = np.concatenate([members, members[extra_rows]])
        n_members = int(members.max()) + 1
        boosters, member_oof, rounds = [], [], 0
        for k in range(n_members):
            booster, oof, member_rounds = self._train_scheduled(
                all_x, np.concatenate([codes, extra_y]), np.where(members == k, all_folds, -1), weights,
                names=list(features.columns), categorical=[c for c in spec.categorical if c in spec.features],
                progress=lambda done, k=k: report("training the model", 0.2 + 0.55 * (k + done) / n_members),
            )
            boosters.append(booster)
            member_oof.append(oof)
            rounds += member_rounds
        self.booster = average_boosters(boosters)
        oof_raw = ensemble_out_of_fold(boosters, member_oof, all_x)[: len(frame)]
        self.temperature = fit_temperature(oof_raw[train], codes[train])
        self.out_of_fold = oof_raw / self.temperature

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
        self.meta = self._build_meta(frame, mask, train, test, held, metrics, time.perf_counter() - started, rounds,
                                     n_members)
        report("done", 1.0)
        return self

    def _class_weights(self, codes: np.ndarray) -> np.ndarray:
        counts = np.bincount(codes[codes >= 0], minlength=len(LABELS)).astype(float)
        present = counts > 0
        weights = np.ones(len(LABELS))
        weights[present] = (np.median(counts[present]) / counts[present]) ** self.config.class_weight_power
        return weights

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
        metrics: Mapping[str, Any], seconds: float, rounds: int, members: int,
    ) -> dict[str, Any]:
        from fpi.data.summary import dataset_fingerprint

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
                "members": members,
            },
            "text_models": {key: {"terms": len(m.terms), "field": FIELDS[key].description}
                            for key, m in (spec.text.models.items() if spec.text else ())},
            "train_config": self.config.__dict__,
            "trees": int(booster.num_trees()),
            "iterations": int(booster.current_iteration()),
            "metrics": metrics,
            "versions": {
                "fpi": fpi_version(),
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
        target, meta = write_model(
            directory, booster=booster, meta=self.meta, baseline_booster=self.baseline_booster,
            text=self.spec.text if self.spec is not None else None,
            reference=self.reference, reference_uploads=self.reference_uploads,
        )
        self.meta, self.path, self._compiled = meta, target, {}
        self._saved = {"model": booster, **({"baseline": self.baseline_booster} if self.baseline_booster else {})}
        return target

    @classmethod
    def load(cls, directory: str | Path) -> FailurePointModel:
        """Read a model directory, refusing one that was edited or is for another contract."""
        saved = read_model(directory)
        model = cls(config=TrainConfig(**saved.meta.get("train_config", {})))
        model.booster, model.baseline_booster, model.spec = saved.booster, saved.baseline_booster, saved.spec
        model.reference, model.reference_uploads = saved.reference, saved.reference_uploads
        model.rule, model.temperature = saved.rule, saved.temperature
        model.meta, model.path = saved.meta, saved.path
        model._saved = {"model": model.booster,
                        **({"baseline": model.baseline_booster} if model.baseline_booster is not None else {})}
        return model


def _require_storable_names(features: tuple[str, ...] | list[str]) -> None:
    """Refuse, before any training, feature names LightGBM would reject or rename on saving."""
    bad = [(name, problem) for name in features if (problem := feature_name_problem(name))]
    if bad:
        raise ModelError("cannot train on feature names LightGBM would change: "
                         + "; ".join(f"'{n}': {p} (rename the column to '{safe_feature_name(n)}')" for n, p in bad))


def _confidences(frame: pd.DataFrame) -> np.ndarray:
    """The five raw confidences: what the raw-confidence baseline reads."""
    return np.column_stack([frame[c].to_numpy(dtype=float, na_value=np.nan) for c in CONFIDENCE_COLUMNS])
