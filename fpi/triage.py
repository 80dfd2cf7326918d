"""The triage queue: which turns an analyst should judge first, and the context to judge them by.

Pure functions of a scored frame (trace columns plus `predicted_failure_point`
and `p_<label>`, as `FailurePointModel.score` returns it). A turn teaches the
model most when the model cannot decide, so the default order is by the margin
between the two most likely labels (smallest first); entropy is the same idea
over all six labels, and defect probability (1 - p_correct) puts the likeliest
defects first for a team that wants to find failures rather than to teach.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Iterable

import numpy as np
import pandas as pd

from fpi.dashboard import MISSING, PREDICTED, PROBABILITY_COLUMNS
from fpi.errors import FpiError, ModelError
from fpi.schema import LABEL_COLUMN, LABELS

__all__ = [
    "CONTEXT_COLUMNS", "ORDERS", "QUEUE_COLUMNS", "cohort_mask", "dialogue_context", "next_in_queue",
    "queue_progress", "triage_queue", "uncertainty_scores",
]

ORDERS: dict[str, str] = {
    "uncertainty": "Least sure first (top-two margin)",
    "entropy": "Least sure first (entropy)",
    "defect_probability": "Likeliest defects first",
}
"""The queue orders, with how the page names them."""

QUEUE_COLUMNS: tuple[str, ...] = (
    "row", "dialogue_id", "turn_index", PREDICTED, "confidence", "margin", "entropy", "defect_probability",
    "priority",
)

CONTEXT_COLUMNS: tuple[str, ...] = (
    "turn_index", "asr_text", "response_text", "nlu_intent", "barge_in", PREDICTED, "confidence", LABEL_COLUMN,
)
"""The compact view of a turn's dialogue shown beside it (absent columns are skipped)."""

Key = tuple[str, int]


def _probabilities(scored: pd.DataFrame) -> np.ndarray:
    missing = [c for c in PROBABILITY_COLUMNS if c not in scored.columns]
    if missing:
        raise ModelError(f"the traces are not scored (no {', '.join(missing)}); score them with a model first")
    return scored[list(PROBABILITY_COLUMNS)].to_numpy(dtype=float)


def uncertainty_scores(proba: np.ndarray) -> pd.DataFrame:
    """Per turn: top probability, margin between the top two, entropy (nats), and 1 - p(correct)."""
    ordered = np.sort(proba, axis=1)
    clipped = np.clip(proba, 1e-12, 1.0)
    return pd.DataFrame({
        "confidence": ordered[:, -1],
        "margin": ordered[:, -1] - ordered[:, -2],
        "entropy": -(proba * np.log(clipped)).sum(axis=1),
        "defect_probability": 1.0 - proba[:, LABELS.index("correct")],
    })


def cohort_mask(frame: pd.DataFrame, cohort: Mapping[str, str] | None) -> np.ndarray:
    """Turns whose every `column: value` of `cohort` matches; `(missing)` matches an empty cell.

    The same rule as `fpi.cohorts.cohort_mask`, so a cohort found there lists the same turns here.
    """
    keep = np.ones(len(frame), dtype=bool)
    for column, value in (cohort or {}).items():
        if column not in frame.columns:
            raise FpiError(f"the cohort filter names column '{column}', which the loaded traces do not have; "
                           "clear the cohort filter or load the traces the cohort was found in")
        values = frame[column].astype("str").fillna(MISSING)
        keep &= (values == str(value)).to_numpy(dtype=bool, na_value=False)
    return keep


def triage_queue(
    scored: pd.DataFrame,
    *,
    order: str = "uncertainty",
    label: str | Collection[str] | None = None,
    cohort: Mapping[str, str] | None = None,
    exclude_reviewed: Iterable[Key] = (),
) -> pd.DataFrame:
    """The turns to review, most worth a verdict first.

    `label` keeps turns predicted as that label (or any of several); `cohort`
    keeps turns matching every `column: value`; `exclude_reviewed` drops turns
    by (dialogue_id, turn_index). Ties keep the traces' order, so the queue is
    deterministic. Columns: `QUEUE_COLUMNS`, `row` being the turn's position in
    `scored` (for features and explanations).
    """
    if order not in ORDERS:
        raise FpiError(f"unknown queue order {order!r}; expected one of {', '.join(ORDERS)}")
    scores = uncertainty_scores(_probabilities(scored))
    priority = {
        "uncertainty": 1.0 - scores["margin"],
        "entropy": scores["entropy"],
        "defect_probability": scores["defect_probability"],
    }[order]
    queue = pd.DataFrame({
        "row": np.arange(len(scored), dtype=np.int64),
        "dialogue_id": scored["dialogue_id"].astype("str").to_numpy(dtype=object),
        "turn_index": scored["turn_index"].to_numpy(dtype=np.int64),
        PREDICTED: scored[PREDICTED].to_numpy(dtype=object),
    })
    queue = pd.concat([queue, scores.assign(priority=priority.to_numpy())], axis=1)
    keep = cohort_mask(scored, cohort)
    if label is not None:
        labels = {label} if isinstance(label, str) else set(label)
        unknown = labels - set(LABELS)
        if unknown:
            raise FpiError(f"unknown label filter {sorted(unknown)}; expected labels from {', '.join(LABELS)}")
        keep &= queue[PREDICTED].isin(labels).to_numpy(dtype=bool)
    reviewed = set(exclude_reviewed)
    if reviewed:
        keys = pd.MultiIndex.from_arrays([queue["dialogue_id"], queue["turn_index"]])
        keep &= ~keys.isin(list(reviewed))
    queue = queue[keep]
    # Stable sort on -priority: equal priorities stay in (dialogue_id, turn_index) order.
    queue = queue.iloc[np.argsort(-queue["priority"].to_numpy(), kind="stable")]
    return queue[list(QUEUE_COLUMNS)].reset_index(drop=True)


def next_in_queue(queue: pd.DataFrame, reviewed: Collection[Key], *, skipped: Collection[Key] = ()) -> pd.Series | None:
    """The first turn of a (cached) queue without a verdict and not skipped, or None when done.

    Scans the queue in order instead of rebuilding it, so the next item is
    immediate after each verdict.
    """
    done = set(reviewed) | set(skipped)
    for i, (dialogue, turn) in enumerate(zip(queue["dialogue_id"], queue["turn_index"])):
        if (str(dialogue), int(turn)) not in done:
            return queue.iloc[i]
    return None


def queue_progress(queue: pd.DataFrame, reviewed: Collection[Key]) -> tuple[int, int]:
    """(turns of the queue with a verdict, queue size)."""
    if queue.empty or not reviewed:
        return 0, len(queue)
    keys = pd.MultiIndex.from_arrays([queue["dialogue_id"].astype("str"), queue["turn_index"].astype("int64")])
    return int(keys.isin(list(set(reviewed))).sum()), len(queue)


def dialogue_context(scored: pd.DataFrame, dialogue_id: str, turn_index: int) -> pd.DataFrame:
    """The turns of `dialogue_id`, compact, with `this_turn` marking the one under review."""
    part = scored[(scored["dialogue_id"] == dialogue_id).to_numpy(dtype=bool, na_value=False)]
    part = part.sort_values("turn_index", kind="stable")
    if all(c in part.columns for c in PROBABILITY_COLUMNS):
        part = part.assign(confidence=part[list(PROBABILITY_COLUMNS)].max(axis=1))
    columns = [c for c in CONTEXT_COLUMNS if c in part.columns]
    context = part[columns].reset_index(drop=True)
    context.insert(0, "this_turn", (part["turn_index"] == turn_index).to_numpy())
    return context
