"""Adapting a model to a new pipeline from a few labelled turns: candidate strategies, chosen by the data.

A candidate is built from the upload (every turn, labelled or not: features such
as `rank_*` are computed over the whole upload) and its labelled turns (the
upload's own labels and analysts' verdicts). The strategies (`keep`, `continue`, `self`,
`verdicts`, `blend`, `selfblend`, `semi`, `scratch`, `scratchblend`) are in `fpi.review.strategies`.

`select_strategy` scores every strategy by grouped (by dialogue) K-fold
cross-validation on the labelled turns: each turn is predicted by a model that
never saw its dialogue (`scratch` cross-validates itself inside
`fit`, and their out-of-fold metrics are taken as they are). The best macro-F1
wins (ties go to the simpler strategy, earlier in the list), and the winner is
refit on every labelled turn. The winner's out-of-fold metrics are also the
fair comparison with the active model.

The unlabelled turns count in four ways: ranks and the `verdicts` strategy's
feature spec are computed over the whole upload, `self` learns the starting
model's surest labels on all of it, and `semi` learns them together with the
labelled turns. Adding those pseudo-labels to the verdicts model alone (p > 0.8
or 0.9, weight 0.5 or 1) did not raise held-out macro-F1 at 100, 300 or 1000
verdicts (traces of a real small speech pipeline, 3 seeds); mixed with the
starting model as `semi` is, they did (random order, 100 verdicts: 0.500 to
0.516 over 6 seeds beside `selfblend`). `self` helps on that file, where the
starting model reads the pipeline poorly (0.461 to 0.506 on held-out dialogues,
6 seeds, no verdict used), but on 22 simulated pipelines unlike the default one
it moved macro-F1 by -0.024 to +0.035 (+0.001 on average): so it is a candidate
like the others, and the verdicts decide whether it is kept.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fpi.errors import ModelError, NotLabelledError
from fpi.model.evaluate import metrics_for
from fpi.model.calibration import softmax
from fpi.model.calibration import fit_temperature
from fpi.model.estimator import FailurePointModel
from fpi.model.training import class_codes
from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.model.splits import dialogue_bucket
from fpi.review.distilled import DISTILLED
from fpi.review.strategies import (
    BUILDERS, DERIVED, LABEL_SOURCE, SELF_VALIDATED, RetrainConfig, Scored, Upload, candidate_meta,
    continue_training, fresh_meta, verdict_mask,
)

__all__ = [
    "ADAPT_STRATEGIES", "LABEL_SOURCE", "RetrainConfig", "Selection", "continue_training", "cv_folds",
    "select_strategy", "strategy_words",
]

ADAPT_STRATEGIES: tuple[str, ...] = ("keep", "continue", "self", "verdicts", "blend", "selfblend", "semi",
                                     "scratch", "scratchblend")
"""In order of preference on a tie: the simpler first."""


def strategy_words(variant: str) -> str:
    """A strategy variant ("blend@120:0.5") as an analyst reads it."""
    name, _, detail = variant.partition("@")
    if name == "verdicts":
        return f"a new model of the labelled turns ({detail} rounds)"
    if name in ("blend", "selfblend"):
        rounds, weight = detail.split(":")
        start = "the starting model" if name == "blend" else "the starting model self-trained on this upload"
        return f"{start} ({float(weight):.0%}) mixed with a new model of the labelled turns ({rounds} rounds)"
    if name == "semi":
        return (f"the starting model ({float(detail):.0%}) mixed with a model of its own surest labels on this "
                "upload and of the labelled turns")
    if name == "scratchblend":
        return (f"the starting model self-trained and corrected by the labelled turns ({float(detail):.0%}) mixed "
                "with the full training recipe on the labelled turns")
    return {"keep": "the starting model unchanged", "continue": "the starting model with a few more rounds",
            "self": "the starting model mixed with a model of its own surest labels on this upload",
            "scratch": "the full training recipe on the labelled turns"}.get(name, variant)


def cv_folds(frame: pd.DataFrame, labelled: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """Fold number per turn (-1 for unlabelled turns), whole dialogues per fold, folds of similar size.

    Dialogues are dealt to folds in a seeded order of their ids, round robin, so
    every fold gets some even when only a few dozen dialogues are labelled.
    """
    ids = frame["dialogue_id"].astype("str")
    labelled_ids = np.unique(ids[labelled].to_numpy())
    if len(labelled_ids) < 2:
        raise NotLabelledError(
            f"the labelled turns fall in {len(labelled_ids)} dialogue; cross-validation needs labels in at least 2 "
            "dialogues (give verdicts in more dialogues)")
    k = min(folds, len(labelled_ids))
    order = np.argsort(dialogue_bucket(pd.Series(labelled_ids), seed=seed), kind="stable")
    fold_of = dict(zip(labelled_ids[order], np.arange(len(order)) % k))
    return np.where(labelled, ids.map(fold_of).fillna(-1).to_numpy(dtype=float), -1).astype(int)


def _cross_validated(model: FailurePointModel | None) -> dict[str, Any] | None:
    """The out-of-fold metrics `fit` stored, or None when it did not cross-validate."""
    metrics = (model.meta.get("metrics") or {}) if model is not None else {}
    if "cross-validation" not in str(metrics.get("evaluated_on", "")):
        return None
    return (metrics.get("systems") or {}).get("model")


def _needed(names: tuple[str, ...]) -> set[str]:
    """The strategies to score for `names`: those, and every strategy a `DERIVED` one among them is scored from."""
    needed = set(names)
    for name in reversed(list(DERIVED)):  # a derived strategy comes after those it names
        if name in needed:
            needed.update(DERIVED[name][0])
    return needed


# ---------------------------------------------------------------- the choice


@dataclass(frozen=True)
class Selection:
    """What cross-validation said, and the chosen candidate refit on every labelled turn."""

    candidate: FailurePointModel
    strategy: str
    """The winning variant, e.g. "verdicts@120"."""
    scores: dict[str, float]
    """Out-of-fold macro-F1 of every variant tried."""
    metrics: dict[str, Any]
    """The winner's out-of-fold metrics (`fpi.model.evaluate.metrics_for`) on the labelled turns."""
    folds: int
    upload_proba: np.ndarray | None = None
    """The candidate's probabilities on every turn of the upload, when training computed them anyway
    (`verdicts`, `continue`, `blend`): the page re-ranks its queue with them without scoring again."""


def select_strategy(
    frame: pd.DataFrame,
    *,
    start: FailurePointModel,
    config: RetrainConfig | None = None,
) -> Selection:
    """Cross-validate every strategy on the labelled turns of `frame`, refit the best on all of them.

    `frame` is the whole upload with `failure_point` (and, optionally,
    `label_source`) as `fpi.review.retrain.labels_with_verdicts` returns it.
    """
    config = config or RetrainConfig()
    names = config.candidates if config.strategy == "auto" else (config.strategy,)
    unknown = [n for n in names if n not in ADAPT_STRATEGIES]
    if unknown:
        raise ModelError(f"unknown retraining strategy {unknown[0]!r}; expected auto or one of "
                         f"{', '.join(ADAPT_STRATEGIES)}")
    started = time.perf_counter()
    codes = class_codes(frame[LABEL_COLUMN])
    labelled = codes >= 0
    weights = np.where(verdict_mask(frame), config.verdict_weight, 1.0)
    upload = Upload(frame=frame, codes=codes, weights=weights)
    fold = cv_folds(frame, labelled, folds=config.folds, seed=config.train.seed)
    n_folds = int(fold.max()) + 1
    needed = _needed(names)
    scored = Scored()
    for k in range(n_folds):
        train = labelled & (fold != k)
        test = fold == k
        for name in (n for n in BUILDERS if n in needed):
            for variant, (raw, _) in BUILDERS[name](upload, train, start, config, test).items():
                scored.oof.setdefault(variant, np.full((len(frame), len(LABELS)), np.nan))[test] = raw[test]
    for name in (n for n in SELF_VALIDATED if n in needed):
        model = SELF_VALIDATED[name](upload, labelled, start, config)
        if model is not None:
            scored.built[name] = model
    for name in (n for n in DERIVED if n in needed):
        scored.oof.update(DERIVED[name][1](scored, upload, labelled, config))
    truth = frame[LABEL_COLUMN].to_numpy(dtype=object)[labelled]
    metrics = {variant: metrics_for(truth, softmax(raw[labelled])) for variant, raw in scored.oof.items()
               if variant.split("@")[0] in names
               and not np.isnan(raw[labelled]).any()}  # a strategy that could not train in every fold is out
    for name in (n for n in names if n in scored.built):
        own = _cross_validated(scored.built[name])
        if own is not None:
            metrics[name] = own
    scores = {variant: float(m["macro_f1"]) for variant, m in metrics.items()}
    if not scores:
        raise NotLabelledError("no retraining strategy could learn from these labelled turns; give more verdicts")
    order = {name: i for i, name in enumerate(ADAPT_STRATEGIES)}
    best = max(scores, key=lambda v: (round(scores[v], 6), -order[v.split("@")[0]]))
    if best in scored.built:
        final = scored.built[best]
        final.meta.setdefault("retraining", {}).update({"strategy": best, "base_model": start.version,
                                                        "cv_macro_f1": scores})
        return Selection(candidate=final, strategy=best, scores=scores, metrics=metrics[best], folds=n_folds)
    raw_oof = scored.oof[best]
    strategy = best.split("@")[0]
    details: dict[str, Any] | None = None  # a new model's "retraining" meta; keep and continue carry their start's
    if strategy in DISTILLED:
        final, details, upload_proba = DISTILLED[strategy](upload, labelled, start, config, variant=best,
                                                           scored=scored)
        scale = details["mixture_temperature"]
    else:
        raw_all, make = BUILDERS[strategy](upload, labelled, start, config)[best]
        final, scale = make(), 1.0  # keep and continue: their raw scores are already scaled
        if strategy == "verdicts":
            # Out-of-fold raw scores are honest held-out scores: calibrate on them.
            final.temperature = scale = fit_temperature(raw_oof[labelled], codes[labelled])
            details = {"rounds": int(best.split("@")[1]), "num_leaves": config.verdict_num_leaves,
                       "min_data_in_leaf": config.verdict_min_data_in_leaf,
                       "learning_rate": config.verdict_learning_rate}
        upload_proba = softmax(raw_all / scale)
    if details is not None:
        final.meta = candidate_meta(fresh_meta(final), final, frame, labelled, verdict_mask(frame),
                                    time.perf_counter() - started, {
                                        "strategy": best, "base_model": start.version, "cv_macro_f1": scores,
                                        **details,
                                    })
    elif best != "keep":
        final.meta.setdefault("retraining", {}).update({"strategy": best, "base_model": start.version,
                                                        "cv_macro_f1": scores})
    proba = softmax(raw_oof[labelled] / scale)
    return Selection(candidate=final, strategy=best, scores=scores, metrics=metrics_for(truth, proba), folds=n_folds,
                     upload_proba=upload_proba)
