"""What the Model page shows about a model: its card, its numbers on the current data, a comparison.

Pure functions over a model's `meta` dict, `fpi.evaluate` reports and scored
frames; tables come back as DataFrames for the UI to show as they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from fpi.evaluate import SYSTEM_NAMES, calibration_table, evaluate_predictions
from fpi.schema import LABEL_COLUMN, LABELS
from fpi.splits import grouped_split

__all__ = [
    "ModelCard", "calibration_tables", "compare_models", "current_data_report", "display_names", "heldout_mask",
    "metrics_table", "model_card", "per_class_table",
]


@dataclass(frozen=True)
class ModelCard:
    version: str
    trained_at: str
    training_seconds: float | None
    turns: int | None
    dialogues: int | None
    labelled_turns: int | None
    fingerprint: str
    label_counts: pd.DataFrame
    """label, turns"""
    classes: tuple[str, ...]
    trees: int | None
    heldout: pd.DataFrame
    """system, accuracy, macro_f1, ece, turns: the metrics stored at training time."""
    versions: dict[str, str]


def model_card(meta: Mapping[str, Any], *, version: str) -> ModelCard:
    data = meta.get("training_data", {}) or {}
    counts = data.get("label_counts", {}) or {}
    metrics = meta.get("metrics")
    return ModelCard(
        version=version,
        trained_at=str(meta.get("trained_at", "unknown")),
        training_seconds=meta.get("training_seconds"),
        turns=data.get("turns"),
        dialogues=data.get("dialogues"),
        labelled_turns=data.get("labelled_turns"),
        fingerprint=str(data.get("fingerprint", "")),
        label_counts=pd.DataFrame({"label": [label for label in LABELS if label in counts],
                                   "turns": [int(counts[label]) for label in LABELS if label in counts]}),
        classes=tuple(meta.get("classes", ())),
        trees=meta.get("trees"),
        heldout=metrics_table(metrics) if metrics else pd.DataFrame(columns=["system", "accuracy", "macro_f1", "ece", "turns"]),
        versions={str(k): str(v) for k, v in (meta.get("versions", {}) or {}).items()},
    )


def metrics_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """One row per system: accuracy, macro-F1, ECE and turns."""
    rows = [
        {"system": SYSTEM_NAMES.get(name, name), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
         "ece": m["ece"], "turns": m["turns"]}
        for name, m in report["systems"].items()
    ]
    return pd.DataFrame(rows, columns=["system", "accuracy", "macro_f1", "ece", "turns"])


def display_names(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report with systems under their display names (for legends)."""
    return {**report, "systems": {SYSTEM_NAMES.get(k, k): v for k, v in report["systems"].items()}}


def per_class_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """One row per label: precision, recall, F1, support (for one system)."""
    return pd.DataFrame([
        {"label": label, **{k: metrics["per_class"][label][k] for k in ("precision", "recall", "f1", "support")}}
        for label in LABELS
    ])


def _probabilities(scored: pd.DataFrame) -> np.ndarray:
    return scored[[f"p_{label}" for label in LABELS]].to_numpy(dtype=float)


def current_data_report(model: Any, scored: pd.DataFrame) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """The model (its predictions already in `scored`) and both baselines on the labelled turns.

    Returns the `evaluate_predictions` report and a calibration table per system.
    Raises `NotLabelledError` (from `fpi.evaluate`) style errors to the caller when there are no labels.
    """
    mask = scored[LABEL_COLUMN].notna().to_numpy() if LABEL_COLUMN in scored.columns else np.zeros(len(scored), bool)
    truth = scored[LABEL_COLUMN].to_numpy(dtype=object)[mask]
    systems = {"model": _probabilities(scored)[mask]}
    systems.update({name: proba[mask] for name, proba in model.baseline_probas(scored).items()})
    report = evaluate_predictions(truth, systems)
    report["model_version"] = model.version
    return report, calibration_tables(truth, systems)


def calibration_tables(truth: np.ndarray, systems: Mapping[str, np.ndarray]) -> dict[str, pd.DataFrame]:
    return {SYSTEM_NAMES.get(name, name): calibration_table(truth, proba) for name, proba in systems.items()}


def heldout_mask(frame: pd.DataFrame, config: Any) -> np.ndarray:
    """The labelled turns of the dialogues a model trained on `frame` with `config` never saw."""
    fractions = (1 - config.valid_fraction - config.test_fraction, config.valid_fraction, config.test_fraction)
    _, valid, test = grouped_split(frame, fractions=fractions, seed=config.seed)
    held = test if test.any() else valid
    labelled = frame[LABEL_COLUMN].notna().to_numpy() if LABEL_COLUMN in frame.columns else np.zeros(len(frame), bool)
    return held & labelled


def compare_models(models: Mapping[str, Any], frame: pd.DataFrame, *, mask: np.ndarray) -> dict[str, Any]:
    """Several models on the same turns (`mask`), each with features over the whole frame."""
    truth = frame[LABEL_COLUMN].to_numpy(dtype=object)[mask]
    return evaluate_predictions(truth, {name: model.predict_proba(frame)[mask] for name, model in models.items()})
