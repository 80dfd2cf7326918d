"""Honest numbers: the model beside both baselines on labelled turns.

Metrics are plain dicts of floats and lists (JSON-ready), computed from labels
and probability matrices whose columns follow `LABELS`.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fpi.errors import NotLabelledError
from fpi.data.schema import LABEL_COLUMN, LABELS

ECE_BINS = 15
SYSTEM_NAMES = {
    "model": "fpi model (context)",
    "raw_confidence_lgbm": "LightGBM, raw confidences",
    "rule_cascade": "rule cascade",
}


def expected_calibration_error(truth_codes: np.ndarray, proba: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Top-label ECE: |accuracy - confidence| per confidence bin, weighted by bin size."""
    if len(truth_codes) == 0:
        return float("nan")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == truth_codes).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total)


def calibration_table(truth: np.ndarray, proba: np.ndarray, *, bins: int = 10) -> pd.DataFrame:
    """Reliability-diagram data: per confidence bin, mean confidence, accuracy and count."""
    codes = pd.Categorical(np.asarray(truth, dtype=object), categories=list(LABELS)).codes
    keep = codes >= 0
    confidence = proba[keep].max(axis=1)
    correct = (proba[keep].argmax(axis=1) == codes[keep]).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "confidence": confidence, "correct": correct})
    table = frame.groupby("bin").agg(confidence=("confidence", "mean"), accuracy=("correct", "mean"),
                                     turns=("correct", "size")).reset_index()
    table["bin_low"] = edges[table["bin"]]
    table["bin_high"] = edges[table["bin"] + 1]
    return table


def metrics_for(truth: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class P/R/F1, confusion matrix and ECE for one system."""
    codes = pd.Categorical(np.asarray(truth, dtype=object), categories=list(LABELS)).codes
    keep = codes >= 0
    codes, proba = codes[keep], proba[keep]
    predicted = proba.argmax(axis=1)
    labels = list(range(len(LABELS)))
    precision, recall, f1, support = precision_recall_fscore_support(
        codes, predicted, labels=labels, zero_division=0
    )
    return {
        "turns": int(len(codes)),
        "accuracy": float((predicted == codes).mean()) if len(codes) else float("nan"),
        "macro_f1": float(np.mean(f1)),
        "ece": expected_calibration_error(codes, proba),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(LABELS)
        },
        "confusion": confusion_matrix(codes, predicted, labels=labels).tolist(),
    }


def evaluate_predictions(truth: np.ndarray, systems: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Metrics for several systems on the same labelled turns."""
    return {
        "labels": list(LABELS),
        "systems": {name: metrics_for(truth, proba) for name, proba in systems.items()},
    }


def evaluate_model(model: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """The model and both of its baselines on the labelled turns of `frame`.

    Context features use every turn (labelled or not); metrics use labelled turns only.
    """
    if LABEL_COLUMN not in frame.columns or frame[LABEL_COLUMN].notna().sum() == 0:
        raise NotLabelledError(
            "evaluation needs labels: the traces have no failure_point values "
            "(label some turns, or evaluate on a labelled file)"
        )
    mask = frame[LABEL_COLUMN].notna().to_numpy()
    truth = frame[LABEL_COLUMN].to_numpy(dtype=object)[mask]
    systems = {"model": model.predict_proba(frame)[mask]}
    systems.update({name: proba[mask] for name, proba in model.baseline_probas(frame).items()})
    result = evaluate_predictions(truth, systems)
    result["model_version"] = model.version
    return result


def format_report(report: Mapping[str, Any]) -> str:
    """A text table: headline metrics side by side, then per-class F1 and the confusion matrix."""
    systems: Mapping[str, Any] = report["systems"]
    names = list(systems)
    width = max(len(SYSTEM_NAMES.get(n, n)) for n in names) + 2
    lines = [f"{'system':<{width}}{'accuracy':>10}{'macro-F1':>10}{'ECE':>8}{'turns':>9}"]
    for name in names:
        m = systems[name]
        lines.append(
            f"{SYSTEM_NAMES.get(name, name):<{width}}{m['accuracy']:>10.3f}{m['macro_f1']:>10.3f}"
            f"{m['ece']:>8.3f}{m['turns']:>9,}"
        )
    lines += ["", "F1 per class:", f"{'class':<12}" + "".join(f"{n[:18]:>20}" for n in names)]
    for label in LABELS:
        row = "".join(f"{systems[n]['per_class'][label]['f1']:>20.3f}" for n in names)
        lines.append(f"{label:<12}{row}")
    if "model" in systems:
        model = systems["model"]
        lines += ["", "model confusion matrix (rows = label, columns = predicted):"]
        lines.append(f"{'':<12}" + "".join(f"{label[:10]:>11}" for label in LABELS))
        for label, row in zip(LABELS, model["confusion"]):
            lines.append(f"{label:<12}" + "".join(f"{v:>11,}" for v in row))
        lines += ["", "model precision / recall per class:"]
        for label in LABELS:
            c = model["per_class"][label]
            lines.append(f"  {label:<12} P={c['precision']:.3f}  R={c['recall']:.3f}  n={c['support']:,}")
    return "\n".join(lines)
