"""Turning raw scores into probabilities one can read as chances: softmax with a fitted temperature."""
from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar


def softmax(raw: np.ndarray) -> np.ndarray:
    shifted = raw - raw.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(raw: np.ndarray, codes: np.ndarray) -> float:
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


def matching_temperature(raw: np.ndarray, confidence: float) -> float:
    """Temperature at which the mean top probability of `raw` is `confidence` (keeps the argmax).

    With no label to fit on, a model self-trained on its own surest labels is made as sure, on
    average, as the model it learnt from: learning its own labels makes it surer, not righter.
    """
    def excess(t: float) -> float:
        return float(softmax(raw / t).max(axis=1).mean() - confidence)

    low, high = 0.25, 4.0
    if excess(low) <= 0:
        return low
    if excess(high) >= 0:
        return high
    return float(brentq(excess, low, high, xtol=1e-4))
