"""Does an upload look like the model's training data? A shift score, and the features that differ, in words.

A small classifier is trained to tell a sample of the upload from a sample of the
training features; its grouped cross-validated AUC is the shift score (0.5:
indistinguishable, 1.0: told apart every time). Above `SHIFT_AUC_THRESHOLD`
the labels may not carry over, and verdicts in the triage queue are the fix.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from fpi.model.features import CATEGORICAL_COLUMNS, QUANTILE_GRID
from fpi.data.schema import CONFIDENCE_COLUMNS

__all__ = [
    "SHIFT_AUC_THRESHOLD", "FeatureShift", "ShiftScore", "closest_upload_shift", "compared_features", "describe_shift",
    "model_threshold", "shift_score", "synthetic_reference",
]


SHIFT_AUC_THRESHOLD = 0.75
"""Shift scores above this warn. Two samples of one simulator config score 0.47-0.55 (0.43-0.57 for
uploads of ~100 turns). Recalibrating the ASR confidences of a simulated pipeline by 0.5 / 1 / 1.5 /
2.5 logits scores 0.62 / 0.76 / 0.86 / 0.96 against a training sample (0.58 / 0.68 / 0.77 / 0.89
against the training quantiles), and a model that reads confidences as calibrated (the raw-confidence
LightGBM) loses 0.01 / 0.04 / 0.07 / 0.15 macro-F1 there: above 0.75 the loss is no longer small.
fpi's own model loses less (it also ranks confidences within the upload), hence "may" in the warning.
Read as a probability, 0.75 means a random upload turn looks more like the upload than a random
training turn does three times in four: a difference an analyst sees in a histogram."""


SAMPLE_ROWS = 2000
"""Rows per side for the shift score: enough for a stable AUC (+-0.02), about a second of CPU."""


MIN_SHIFT_ROWS = 100
"""Fewer upload turns than this give an AUC too noisy to act on."""


FOLDS = 5


_BOOSTER_PARAMS: Mapping[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "lambda_l2": 1.0,
    "max_bin": 63,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbosity": -1,
}


_ROUNDS = 60


@dataclass(frozen=True)
class FeatureShift:
    """One feature that differs between the upload and the training data, in words."""

    feature: str
    score: float
    """0 (same) to 1 (fully apart): twice |AUC - 0.5| of the values, or the gap in missing share."""
    upload_value: float
    reference_value: float
    text: str


@dataclass(frozen=True)
class ShiftScore:
    """How well a classifier tells the upload from the model's training data."""

    auc: float
    threshold: float
    warn: bool
    upload_rows: int
    reference_rows: int
    reference_kind: str
    """"training sample" (rows of the training features saved with the model) or
    "training quantiles" (drawn from the five confidences' quantiles: marginals only)."""
    compared: tuple[str, ...]
    top: tuple[FeatureShift, ...]
    """The features that differ most, strongest first (at most three)."""


def model_threshold(model: Any) -> float:
    """The shift score above which to warn: the model's own (`meta["shift_auc_threshold"]`), else the default.

    A model trained on a family of simulated pipelines should carry its own, measured at training
    time as the shift score of a held-out pipeline of the family against the rest: any single
    pipeline is told apart from a mixture of many (AUC about 1 - 1/(2K) for K distinct pipelines),
    so the default, right for a model of one pipeline, would warn on every upload.
    """
    value = (getattr(model, "meta", None) or {}).get("shift_auc_threshold")
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        return SHIFT_AUC_THRESHOLD
    return threshold if 0.5 < threshold < 1.0 else SHIFT_AUC_THRESHOLD


def compared_features(names: Sequence[str]) -> tuple[str, ...]:
    """The features that describe the traces: not upload-relative ranks, not cohort codes."""
    return tuple(n for n in names if not n.startswith("rank_") and n not in CATEGORICAL_COLUMNS)


def synthetic_reference(
    quantiles: Mapping[str, Sequence[float]], *, rows: int = SAMPLE_ROWS, seed: int = 0
) -> pd.DataFrame:
    """Draws from each confidence's training distribution by inverse-CDF sampling of its 101 quantiles.

    Columns are drawn independently: this reference knows the marginals only, and is
    compared with an upload whose columns are shuffled independently too (`shift_score`).
    """
    rng = np.random.default_rng(seed)
    grid = np.asarray(QUANTILE_GRID, dtype=float)
    return pd.DataFrame({
        column: np.interp(rng.random(rows), grid, np.asarray(quantiles[column], dtype=float))
        for column in CONFIDENCE_COLUMNS if column in quantiles
    })


def shift_score(
    upload: pd.DataFrame,
    *,
    dialogue_ids: pd.Series | np.ndarray,
    reference: pd.DataFrame | None,
    quantiles: Mapping[str, Sequence[float]] | None = None,
    threshold: float = SHIFT_AUC_THRESHOLD,
    rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> ShiftScore | None:
    """Grouped cross-validated AUC of a classifier telling `upload` rows from `reference` rows.

    `upload` is the model's feature matrix of the upload (as `model.features` returns it) and
    `dialogue_ids` its dialogues, so no dialogue is split between folds (its turns share context
    features). `reference` is a sample of the training features; without one, `quantiles`
    (`model.spec.reference_quantiles`) give a synthetic reference of the five confidences.
    None when the upload has fewer than `MIN_SHIFT_ROWS` turns or nothing to compare.
    """
    if len(upload) < MIN_SHIFT_ROWS:
        return None
    rng = np.random.default_rng(seed)
    dialogues = np.asarray(dialogue_ids, dtype=object)
    picked = np.sort(rng.choice(len(upload), min(rows, len(upload)), replace=False))
    up = upload.iloc[picked].reset_index(drop=True)
    groups_up = pd.factorize(dialogues[picked])[0]
    if reference is not None and len(reference):
        kind = "training sample"
        ref = reference.iloc[np.sort(rng.choice(len(reference), min(rows, len(reference)), replace=False))]
        ref = ref.reset_index(drop=True)
        columns = [c for c in compared_features(up.columns) if c in ref.columns
                   and up[c].notna().any() and ref[c].notna().any()]
        # A column the upload does not log at all (no timestamps, no text) is a missing column, which
        # the model was trained to expect, not a shift: it is left out rather than counted.
    elif quantiles:
        kind = "training quantiles"
        ref = synthetic_reference(quantiles, rows=rows, seed=seed + 1)
        columns = [c for c in ref.columns if c in up.columns and up[c].notna().sum() >= MIN_SHIFT_ROWS // 2]
        # The synthetic side has independent columns and no missing values (the quantiles know
        # neither). Make the two alike: each upload column shuffled on its own (a permutation, so no
        # value lands in two folds), and the reference missing at the upload's rate per column.
        up = pd.DataFrame({c: rng.permutation(up[c].to_numpy(dtype=float)) for c in columns})
        ref = ref[columns].copy()
        for c in columns:
            ref.loc[rng.random(len(ref)) < up[c].isna().mean(), c] = np.nan
        groups_up = np.arange(len(up))
    else:
        return None
    if not columns:
        return None
    # Both sides at float32, the precision a saved reference keeps: otherwise a value like 1/3 is told
    # apart by its last bits alone.
    x = np.vstack([up[columns].to_numpy(dtype=np.float32), ref[columns].to_numpy(dtype=np.float32)]).astype(float)
    y = np.concatenate([np.ones(len(up), dtype=int), np.zeros(len(ref), dtype=int)])
    # Reference rows are a random sample of a large training set: one group each.
    groups = np.concatenate([groups_up, groups_up.max(initial=-1) + 1 + np.arange(len(ref))])
    oof = _out_of_fold(x, y, groups, columns, seed=seed)
    auc = float(roc_auc_score(y, oof))
    top = describe_shift(up[columns], ref[columns])
    return ShiftScore(
        auc=auc, threshold=threshold, warn=auc > threshold, upload_rows=len(up), reference_rows=len(ref),
        reference_kind=kind, compared=tuple(columns), top=top,
    )


def closest_upload_shift(
    features: pd.DataFrame, dialogue_ids: pd.Series, reference: pd.DataFrame, uploads: np.ndarray, *,
    threshold: float = SHIFT_AUC_THRESHOLD, seed: int = 0,
) -> ShiftScore | None:
    """The shift score against the closest of the uploads a model was trained on.

    A model trained on a family of pipelines has seen each of them, not their average: any one
    pipeline, the family's own included, is told apart from the pool almost perfectly. What
    matters is whether some pipeline it learnt from looks like this upload.
    """
    scores = []
    for name in pd.unique(uploads):
        part = reference[uploads == name]
        if len(part) >= MIN_SHIFT_ROWS:
            score = shift_score(features, dialogue_ids=dialogue_ids, reference=part, threshold=threshold, seed=seed)
            if score is not None:
                scores.append((score.auc, str(name), score))
    if not scores:
        return shift_score(features, dialogue_ids=dialogue_ids, reference=reference, threshold=threshold, seed=seed)
    auc, name, best = min(scores, key=lambda item: item[0])
    return replace(best, reference_kind=f"closest of {len(scores)} training pipelines ({name})")


def _out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, names: list[str], *, seed: int) -> np.ndarray:
    folds = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    oof = np.zeros(len(y))
    params = {**_BOOSTER_PARAMS, "seed": seed}
    for train, test in folds.split(x, y, groups):
        data = lgb.Dataset(x[train], label=y[train], feature_name=names, free_raw_data=True)
        booster = lgb.train(params, data, num_boost_round=_ROUNDS)
        oof[test] = booster.predict(x[test])
    return oof


_NOUNS: Mapping[str, str] = {
    "wake_confidence": "wake-word confidence",
    "asr_confidence": "ASR confidence",
    "nlu_confidence": "NLU confidence",
    "er_confidence": "entity-resolution confidence",
    "result_confidence": "result confidence",
    "asr_nbest_margin": "margin between the ASR's top two hypotheses",
    "nlu_alt_margin": "margin between the NLU's top two interpretations",
    "result_latency_ms": "result latency (ms)",
    "asr_word_count": "words per request",
    "asr_text_empty": "requests with empty ASR text",
    "entity_in_text": "match between the resolved entity and the request",
    "response_word_count": "words per response",
    "response_apology": "responses that apologise or refuse",
    "response_no_change": "responses saying nothing changed ('already on')",
    "turn_position": "position of the turn in its dialogue",
    "dialogue_length": "dialogue length (turns)",
    "dialogue_turns_after": "turns left in the dialogue",
    "is_last_turn": "turns that end their dialogue",
    "next_text_similarity": "similarity of the next request to this one",
    "prev_text_similarity": "similarity of the request to the previous one",
    "next_same_intent": "next turns with the same intent",
    "prev_same_intent": "turns with the previous turn's intent",
    "next_same_domain": "next turns in the same domain",
    "prev_same_domain": "turns in the previous turn's domain",
    "next_same_entity": "next turns asking for the same entity",
    "prev_same_entity": "turns asking for the previous turn's entity",
    "gap_to_next_s": "seconds to the next turn",
    "gap_from_prev_s": "seconds since the previous turn",
    "barge_in": "turns where the user interrupted the response",
}


def feature_noun(name: str) -> str:
    """What a feature measures, in an analyst's words."""
    return _NOUNS.get(name, name.replace("_", " "))


def _described(names: Sequence[str]) -> list[str]:
    """Features worth naming: not ones derived from another compared feature (a neighbour's copy,
    a cascade minimum, a drop between stages, a missing flag), which would name one difference thrice."""
    present = set(names)
    derived_prefixes = ("cascade_", "drop_", "missing_")
    out = []
    for name in names:
        if name.startswith(derived_prefixes):
            continue
        if name.startswith(("next_", "prev_")) and name.split("_", 1)[1] in present:
            continue
        out.append(name)
    return out


MIN_FEATURE_SHIFT = 0.1
"""Features that differ less than this (AUC within 0.45-0.55, missing shares within 10 points) are not named."""


def describe_shift(upload: pd.DataFrame, reference: pd.DataFrame, *, top: int = 3) -> tuple[FeatureShift, ...]:
    """The `top` features whose distributions differ most between the two samples, in words.

    Per feature, the larger of: twice |AUC - 0.5| of its present values (how well the value alone
    tells the two apart), and the gap in the share of turns where it is missing. Features below
    `MIN_FEATURE_SHIFT` are left out, so two samples of the same traces name none.
    """
    shifts = []
    for name in _described(list(upload.columns)):
        a = upload[name].to_numpy(dtype=float)
        b = reference[name].to_numpy(dtype=float)
        a_present, b_present = a[~np.isnan(a)], b[~np.isnan(b)]
        missing_gap = abs(np.isnan(a).mean() - np.isnan(b).mean()) if len(a) and len(b) else 0.0
        value_score = 0.0
        if len(a_present) >= 20 and len(b_present) >= 20:
            y = np.concatenate([np.ones(len(a_present)), np.zeros(len(b_present))])
            value_score = 2 * abs(roc_auc_score(y, np.concatenate([a_present, b_present])) - 0.5)
        if max(value_score, missing_gap) < MIN_FEATURE_SHIFT:
            continue
        if missing_gap > value_score:
            up, ref = float(np.isnan(a).mean()), float(np.isnan(b).mean())
            text = f"{_capital(feature_noun(name))}: missing on {up:.0%} of your turns, {ref:.0%} in training"
            shifts.append(FeatureShift(name, float(missing_gap), up, ref, text))
            continue
        binary = set(np.unique(a_present)) <= {0.0, 1.0} and set(np.unique(b_present)) <= {0.0, 1.0}
        if binary:
            up, ref = float(a_present.mean()), float(b_present.mean())
            text = f"{_capital(feature_noun(name))}: {up:.0%} of your turns, {ref:.0%} in training"
        else:
            # Counts (words, turns) often share a median; their means still show the difference.
            up, ref, statistic = float(np.median(a_present)), float(np.median(b_present)), "median"
            if _number(up) == _number(ref):
                up, ref, statistic = float(np.mean(a_present)), float(np.mean(b_present)), "mean"
            direction = "higher" if _upper_share(a_present, b_present) > 0.5 else "lower"
            text = (f"{_capital(feature_noun(name))} is {direction} in your traces: "
                    f"{statistic} {_number(up)}, {_number(ref)} in training")
        shifts.append(FeatureShift(name, float(value_score), up, ref, text))
    shifts.sort(key=lambda s: -s.score)
    return tuple(shifts[:top])


def _upper_share(a: np.ndarray, b: np.ndarray) -> float:
    """P(a random value of `a` exceeds one of `b`), ties half: which side is higher, beyond medians."""
    y = np.concatenate([np.ones(len(a)), np.zeros(len(b))])
    return float(roc_auc_score(y, np.concatenate([a, b])))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _number(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 10 else f"{value:,.0f}"
