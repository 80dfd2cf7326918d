"""What the Model page shows about a model: its card, its numbers on the current data, a comparison.

Pure functions over a model's `meta` dict, `fpi.model.evaluate` reports and scored
frames; tables come back as DataFrames for the UI to show as they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from fpi.model.evaluate import SYSTEM_NAMES, calibration_table, evaluate_predictions
from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.model.training import split_masks, TrainConfig

__all__ = [
    "CandidateAdvice", "ModelCard", "advise_candidate", "calibration_tables", "compare_models", "current_data_report", "display_names", "heldout_mask",
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
    members: int
    """Boosters averaged into the model (one per training fleet; 1 for a plain model)."""
    heldout: pd.DataFrame
    """system, accuracy, macro_f1, ece, turns: the metrics stored at training time."""
    versions: dict[str, str]
    self_trained_from: str | None = None
    """The model it was self-trained from without reading a label (`fpi adapt`); None otherwise."""


def model_card(meta: Mapping[str, Any], *, version: str) -> ModelCard:
    data = meta.get("training_data", {}) or {}
    counts = data.get("label_counts", {}) or {}
    metrics = meta.get("metrics")
    retraining = meta.get("retraining") or {}
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
        members=int((meta.get("schedule") or {}).get("members", 1)),
        heldout=metrics_table(metrics) if metrics else pd.DataFrame(columns=["system", "accuracy", "macro_f1", "ece", "turns"]),
        versions={str(k): str(v) for k, v in (meta.get("versions", {}) or {}).items()},
        self_trained_from=(str(retraining.get("base_model")) if retraining.get("strategy") == "self"
                           and retraining.get("labels_read") == 0 else None),
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
    Raises `NotLabelledError` (from `fpi.model.evaluate`) style errors to the caller when there are no labels.
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


def heldout_mask(frame: pd.DataFrame, config: TrainConfig) -> np.ndarray:
    """The labelled turns of the dialogues a model trained on `frame` with `config` never saw."""
    _, valid, test = split_masks(frame, config)
    held = test if test.any() else valid
    labelled = frame[LABEL_COLUMN].notna().to_numpy() if LABEL_COLUMN in frame.columns else np.zeros(len(frame), bool)
    return held & labelled


def compare_models(models: Mapping[str, Any], frame: pd.DataFrame, *, mask: np.ndarray) -> dict[str, Any]:
    """Several models on the same turns (`mask`), each with features over the whole frame."""
    truth = frame[LABEL_COLUMN].to_numpy(dtype=object)[mask]
    return evaluate_predictions(truth, {name: model.predict_proba(frame)[mask] for name, model in models.items()})


@dataclass(frozen=True)
class CandidateAdvice:
    """Whether to activate a candidate, from its macro-F1 beside the active model's on the same turns.

    The pages show `text`, make the recommended action the primary button and ask for
    confirmation before activating a candidate that scored worse.
    """

    verdict: str
    """"better", "worse" or "same" (macro-F1 equal to three decimals); "unchecked" with no labels."""
    active_f1: float
    candidate_f1: float
    turns: int
    text: str

    @property
    def activate_first(self) -> bool:
        """Activating is the recommended (primary) action only for a better candidate."""
        return self.verdict == "better"

    @property
    def confirm_activation(self) -> bool:
        """Activating a worse candidate needs a second, deliberate click."""
        return self.verdict == "worse"


def unchecked_candidate_advice(changed: float, evidence: str) -> CandidateAdvice:
    """Advice on a candidate no label can score (self-trained on unlabelled traces): keeping comes first."""
    return CandidateAdvice(
        "unchecked", float("nan"), float("nan"), 0,
        f"No label shows whether the candidate is better: it changes the label of {changed:.1%} of the turns. "
        f"{evidence} Label a few hundred turns in the triage queue to check it; or activate it now and roll back "
        "on the Model page if its labels look worse.")


def _system(report: Mapping[str, Any], role: str) -> Mapping[str, Any]:
    """The system named `role` or `role (version)` in an `evaluate_predictions` report."""
    for name, metrics in report["systems"].items():
        if name == role or str(name).startswith(f"{role} ("):
            return metrics
    raise KeyError(f"no '{role}' system in the comparison: {list(report['systems'])}")


def advise_candidate(comparison: Mapping[str, Any], *, what: str = "held-out turns") -> CandidateAdvice:
    """Recommend keeping or activating a candidate from a comparison of systems "active" and "candidate".

    Both were scored on the same turns, so their macro-F1 can be compared directly; a difference
    below 0.0005 (what the page shows as equal) counts as the same.
    """
    active, candidate = _system(comparison, "active"), _system(comparison, "candidate")
    a, c = float(active["macro_f1"]), float(candidate["macro_f1"])
    turns = int(candidate.get("turns", active.get("turns", 0)) or 0)
    on = f"on the same {turns:,} {what}"
    if round(c, 3) > round(a, 3):
        return CandidateAdvice("better", a, c, turns,
                               f"The candidate is better than the active model {on}: macro-F1 {c:.3f} against "
                               f"{a:.3f}. Activate it to use it on every page.")
    if round(c, 3) < round(a, 3):
        return CandidateAdvice("worse", a, c, turns,
                               f"The candidate is worse than the active model {on}: macro-F1 {c:.3f} against "
                               f"{a:.3f}. Keep the active model; activating the candidate would make the labels "
                               "on every page less accurate.")
    return CandidateAdvice("same", a, c, turns,
                           f"The candidate scores the same as the active model {on} (macro-F1 {c:.3f}). "
                           "Nothing is gained by switching; keep the active model unless you have another reason.")
