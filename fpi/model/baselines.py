"""Simple baselines, so every evaluation shows what the dialogue context buys.

- `RuleCascade`: the first stage whose confidence is below its threshold is the
  failure point, else `correct`; thresholds tuned on training data.
- A LightGBM on the five raw confidences only (built by `fpi.model.estimator`, which
  trains it next to the full model on the same split).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from fpi.data.schema import CONFIDENCE_COLUMNS, LABELS, STAGE_LABEL, STAGES

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


@dataclass(frozen=True)
class RuleCascade:
    """First stage below its threshold, else `correct`."""

    thresholds: Mapping[str, float] = field(default_factory=lambda: {c: 0.5 for c in CONFIDENCE_COLUMNS})

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        n = len(frame)
        labels = np.full(n, "correct", dtype=object)
        decided = np.zeros(n, dtype=bool)
        for stage, column in zip(STAGES, CONFIDENCE_COLUMNS):
            values = frame[column].to_numpy(dtype=float, na_value=np.nan)
            low = ~decided & ~np.isnan(values) & (values < self.thresholds[column])
            labels[low] = STAGE_LABEL[stage]
            decided |= low
        return labels

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """One-hot probabilities: a rule is certain of what it says."""
        predicted = self.predict(frame)
        return (predicted[:, None] == np.array(LABELS, dtype=object)[None, :]).astype(float)

    @classmethod
    def fit(cls, frame: pd.DataFrame, labels: np.ndarray, *, rounds: int = 3) -> RuleCascade:
        """Coordinate ascent on macro-F1, one stage's threshold at a time."""
        matrix = np.column_stack([frame[c].to_numpy(dtype=float, na_value=np.nan) for c in CONFIDENCE_COLUMNS])
        matrix = np.where(np.isnan(matrix), np.inf, matrix)  # a stage that did not run is never "low"
        truth = pd.Categorical(labels, categories=list(LABELS)).codes
        thresholds = np.full(len(STAGES), 0.5)
        best = _fast_macro_f1(truth, _cascade_codes(matrix, thresholds))
        for _ in range(rounds):
            improved = False
            for i in range(len(STAGES)):
                for value in THRESHOLD_GRID:
                    trial = thresholds.copy()
                    trial[i] = value
                    score = _fast_macro_f1(truth, _cascade_codes(matrix, trial))
                    if score > best + 1e-9:
                        best, thresholds, improved = score, trial, True
            if not improved:
                break
        return cls({c: float(t) for c, t in zip(CONFIDENCE_COLUMNS, thresholds)})


def _cascade_codes(matrix: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Label codes (index into LABELS) of the cascade; stage i has label code i + 1."""
    low = matrix < thresholds[None, :]
    return np.where(low.any(axis=1), low.argmax(axis=1) + 1, 0)


def _fast_macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 over LABELS from integer codes; unlabelled rows (code -1) are skipped."""
    keep = truth >= 0
    k = len(LABELS)
    confusion = np.bincount(truth[keep] * k + predicted[keep], minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    return float(f1.mean())
