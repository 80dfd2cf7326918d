"""Turning raw scores into probabilities one can read as chances: softmax with a fitted temperature."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar


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
