"""How far to trust the model's labels on an upload.

Two questions, answered from what the upload has:

- With labels (at least `MIN_LABELLED_TURNS`): how good is the model on them,
  beside the LightGBM on raw confidences it ships with? Below `F1_FLOOR`, or
  below that baseline, training on the upload is the better bet.
- Without labels: does the upload look like the model's training data? A small
  classifier is trained to tell a sample of the upload from a sample of the
  training features; its grouped cross-validated AUC is the shift score (0.5:
  indistinguishable, 1.0: told apart every time). Above `SHIFT_AUC_THRESHOLD`
  the labels may not carry over, and verdicts in the triage queue are the fix.

Upload-relative features (`rank_*`) are never compared: they are uniform in any
upload by construction. Cohort codes are left out too: a different mix of
devices or locales is what the Cohorts page is for, not a reason to distrust
the labels; the pipeline's own signals and the dialogues' behaviour are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from fpi.model.training import MIN_LABELLED_TURNS
from fpi.data.schema import LABEL_COLUMN, LABELS, PREDICTION_COLUMNS
from fpi.data.summary import dataset_fingerprint
from fpi.model.shift import MIN_SHIFT_ROWS, closest_upload_shift, model_threshold, shift_score, ShiftScore

__all__ = [
    "F1_FLOOR", "LabelTrust", "TrustReport", "assess", "label_trust", "label_verdict", "model_reference", "trained_on",
]

F1_FLOOR = 0.70
"""Below this macro-F1 on the upload's own labels the dashboards are too often wrong to lean on."""


MAX_EVAL_TURNS = 20_000
"""Labelled turns scored beside the baseline; a larger upload is sampled by dialogue (F1 +-0.005)."""


@dataclass(frozen=True)
class LabelTrust:
    """The model beside its raw-confidence baseline on the upload's labelled turns."""

    labelled_turns: int
    """Labelled turns in the upload."""
    evaluated_turns: int
    """Labelled turns scored here (all of them, or a sample of dialogues of a very large upload)."""
    model_f1: float
    baseline_f1: float
    classes: tuple[str, ...]
    """Labels present among the evaluated turns; macro-F1 averages over these."""
    warn: bool
    reasons: tuple[str, ...]
    """Why it warns: "below_floor" and/or "below_baseline"."""
    trained_on_upload: bool
    """The model was trained on exactly these traces, so its F1 here is optimistic."""


@dataclass(frozen=True)
class TrustReport:
    """What the Overview says about trusting the labels: one of the two, or neither."""

    labels: LabelTrust | None
    shift: ShiftScore | None
    note: str | None = None
    """Why neither could be computed (e.g. too few turns)."""


# ---------------------------------------------------------------- labelled uploads


def label_verdict(model_f1: float, baseline_f1: float, *, floor: float = F1_FLOOR) -> tuple[str, ...]:
    """Reasons to warn: "below_floor" under `floor`, "below_baseline" when the raw-confidence LightGBM does better."""
    reasons = []
    if model_f1 < floor:
        reasons.append("below_floor")
    if model_f1 < baseline_f1:
        reasons.append("below_baseline")
    return tuple(reasons)


def macro_f1(truth: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> float:
    """Macro-F1 over `classes` (the labels present): an upload that never labels a class is not
    penalised for it, but predicting that class wrongly still costs recall of the true one."""
    # On label codes, not strings: the same counts, without sklearn sorting Python objects (7x faster).
    codes = pd.Categorical(np.asarray(truth, dtype=object), categories=list(LABELS)).codes  # -1: not a label
    predicted = np.asarray(proba).argmax(axis=1)
    return float(f1_score(codes, predicted, labels=[LABELS.index(c) for c in classes], average="macro",
                          zero_division=0))


def trained_on(model: Any, frame: pd.DataFrame) -> bool:
    """Whether `model` learnt the labels of exactly these traces (predictions in `frame` are ignored).

    A model self-trained on them without reading a label (`fpi adapt`) did not: its F1 on their
    labels is an honest test.
    """
    training = (getattr(model, "meta", None) or {}).get("training_data") or {}
    return training.get("labelled_turns") != 0 and _same_traces(training, frame)


def self_trained_on(model: Any, frame: pd.DataFrame) -> str | None:
    """The model `model` was self-trained from on exactly these traces, without a label; else None."""
    meta = getattr(model, "meta", None) or {}
    retraining = meta.get("retraining") or {}
    if retraining.get("strategy") != "self" or retraining.get("labels_read") != 0:
        return None
    return str(retraining.get("base_model")) if _same_traces(meta.get("training_data") or {}, frame) else None


def _same_traces(training: Mapping[str, Any], frame: pd.DataFrame) -> bool:
    expected = training.get("fingerprint")
    if not expected:
        return False
    if training.get("turns") is not None and int(training["turns"]) != len(frame):
        return False  # another number of turns is another fingerprint: no need to hash the upload
    return bool(expected == dataset_fingerprint(frame.drop(columns=[c for c in PREDICTION_COLUMNS if c in frame])))


def label_trust(
    model: Any, scored: pd.DataFrame, *, trained_on_upload: bool | None = None, max_turns: int = MAX_EVAL_TURNS,
    seed: int = 0,
) -> LabelTrust | None:
    """The model's macro-F1 on the labelled turns of `scored` beside its raw-confidence baseline.

    `scored` is a validated traces frame, with the model's `p_<label>` columns when it was scored
    already (they are used as they are: features over the whole upload); otherwise the model scores
    it. None when fewer than `MIN_LABELLED_TURNS` turns carry a label. `trained_on_upload` (by
    default: `trained_on`) keeps a model from being judged on its own training data.
    """
    if LABEL_COLUMN not in scored.columns:
        return None
    mask = scored[LABEL_COLUMN].notna().to_numpy()
    labelled = int(mask.sum())
    if labelled < MIN_LABELLED_TURNS:
        return None
    probability_columns = [f"p_{label}" for label in LABELS]
    if set(probability_columns) <= set(scored.columns):
        proba = scored[probability_columns].to_numpy(dtype=float)
    else:
        proba = model.predict_proba(scored)
    chosen = _dialogue_sample(scored, mask, max_turns=max_turns, seed=seed)
    subset = scored.loc[chosen]
    # The raw-confidence baseline reads each turn's own five confidences only, so scoring the
    # chosen turns alone gives exactly what it gives them inside the whole upload.
    baseline = model.baseline_probas(subset)["raw_confidence_lgbm"]
    truth = subset[LABEL_COLUMN].to_numpy(dtype=object)
    classes = tuple(label for label in LABELS if (truth == label).any())
    model_f1 = macro_f1(truth, proba[chosen], classes)
    baseline_f1 = macro_f1(truth, baseline, classes)
    reasons = label_verdict(model_f1, baseline_f1)
    if trained_on_upload is None:
        trained_on_upload = trained_on(model, scored)
    return LabelTrust(
        labelled_turns=labelled, evaluated_turns=int(chosen.sum()), model_f1=model_f1, baseline_f1=baseline_f1,
        classes=classes, warn=bool(reasons) and not trained_on_upload, reasons=reasons,
        trained_on_upload=trained_on_upload,
    )


def _dialogue_sample(frame: pd.DataFrame, mask: np.ndarray, *, max_turns: int, seed: int) -> np.ndarray:
    """`mask`, or the labelled turns of a stable random share of dialogues when there are more than `max_turns`."""
    total = int(mask.sum())
    if total <= max_turns:
        return mask
    from fpi.model.splits import dialogue_bucket

    bucket = dialogue_bucket(frame["dialogue_id"], seed=seed + 7)
    return mask & (bucket < max_turns / total)


# ---------------------------------------------------------------- the shift score


def model_reference(model: Any) -> pd.DataFrame | None:
    """Rows of the model's training features saved with it (`model.reference`), if it has them."""
    reference = getattr(model, "reference", None)
    return reference if isinstance(reference, pd.DataFrame) and len(reference) else None


# ---------------------------------------------------------------- which features differ, in words


# ---------------------------------------------------------------- both


def assess(
    model: Any,
    scored: pd.DataFrame,
    features: pd.DataFrame,
    *,
    reference: pd.DataFrame | None = None,
    trained_on_upload: bool | None = None,
    seed: int = 0,
) -> TrustReport:
    """Label trust when the upload has enough labels, else its shift score against the training data.

    `scored` is the upload (with or without predictions), `features` the model's features of it,
    `reference` a sample of the training features (default: `model.reference`, when it has one;
    else the training quantiles of the five confidences stand in).
    """
    labels = label_trust(model, scored, trained_on_upload=trained_on_upload, seed=seed)
    if labels is not None:
        return TrustReport(labels=labels, shift=None)
    base = self_trained_on(model, scored)
    if base is not None:  # its training data is this upload: a shift score would say nothing
        return TrustReport(labels=None, shift=None, note=(
            f"The active model was self-trained from model {base} on these traces without reading a label, so "
            "no comparison with its training data can say how far to trust it. Label a few hundred turns in "
            "the triage queue to find out."))
    uploads = getattr(model, "reference_uploads", None) if reference is None else None
    reference = reference if reference is not None else model_reference(model)
    quantiles = model.spec.reference_quantiles if model.spec is not None else None
    if uploads is not None and reference is not None:
        shift = closest_upload_shift(features, scored["dialogue_id"], reference, np.asarray(uploads, dtype=str),
                                     threshold=model_threshold(model), seed=seed)
    else:
        shift = shift_score(features, dialogue_ids=scored["dialogue_id"], reference=reference, quantiles=quantiles,
                            threshold=model_threshold(model), seed=seed)
    if shift is None:
        return TrustReport(labels=None, shift=None,
                           note=f"Too few turns to compare with the training data (at least {MIN_SHIFT_ROWS} needed).")
    return TrustReport(labels=None, shift=shift)
