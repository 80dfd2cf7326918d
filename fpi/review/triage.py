"""The triage queue: which turns an analyst should judge first, and the context to judge them by.

Pure functions of a scored frame (trace columns plus `predicted_failure_point`
and `p_<label>`, as `FailurePointModel.score` returns it).

The default order, `explore`, is for a model that may not know the pipeline
yet: on a new pipeline the turns a miscalibrated model is unsure about are not
the informative ones, and a queue of them can miss whole labels. So it takes
the predicted labels in turn (each label's share of the picks growing with the
square root of its size, so rare ones come up early), and within a label picks
representative turns unlike every turn already picked or judged (farthest point
among a pseudo-random shortlist, over probabilities, upload-relative ranks of
the confidences and the device/locale cohort); after the first 300 verdicts,
every third pick of a label is the one the model is least sure of (top-two
margin). The first few hundred verdicts then cover every label, cohort and
kind of turn. `uncertainty` (top-two margin
only), `entropy` (the same over all six labels) and `defect_probability`
(1 - p_correct: the likeliest defects first, to find failures rather than to
teach) stay selectable.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Iterable

import numpy as np
import pandas as pd

from fpi.analysis.dashboard import MISSING
from fpi.data.schema import CONFIDENCE_COLUMNS, LABEL_COLUMN, LABELS, PREDICTED_COLUMN, PROBABILITY_COLUMNS
from fpi.errors import FpiError, ModelError
from fpi.model.splits import dialogue_bucket

__all__ = [
    "CONTEXT_COLUMNS", "ORDERS", "QUEUE_COLUMNS", "cohort_mask", "dialogue_context", "explore_order",
    "next_in_queue", "queue_progress", "triage_queue", "turn_embedding", "uncertainty_scores",
]

ORDERS: dict[str, str] = {
    "explore": "Explore: every predicted label, diverse turns, then least sure",
    "uncertainty": "Least sure first (top-two margin)",
    "entropy": "Least sure first (entropy)",
    "defect_probability": "Likeliest defects first",
}
"""The queue orders, with how the page names them."""

QUEUE_COLUMNS: tuple[str, ...] = (
    "row", "dialogue_id", "turn_index", PREDICTED_COLUMN, "confidence", "margin", "entropy", "defect_probability",
    "priority",
)

CONTEXT_COLUMNS: tuple[str, ...] = (
    "turn_index", "asr_text", "response_text", "nlu_intent", "barge_in", PREDICTED_COLUMN, "confidence", LABEL_COLUMN,
)
"""The compact view of a turn's dialogue shown beside it (absent columns are skipped)."""

Key = tuple[str, int]

EXPLORE_FIRST = 300
"""explore: the first this many verdicts (judged turns included) are all exploring picks; a model
that does not know the pipeline yet is unsure about the wrong turns (bench/bench_transfer.py)."""
EXPLORE_TURNS = 2000
"""explore: how many turns are placed by the round robin (the rest follow by margin)."""
EXPLORE_CANDIDATES = 20_000
"""explore: at most this many turns (a seeded sample of dialogues) compete in the round robin,
so ranking a million-turn upload stays a matter of seconds."""
COHORT_COLUMNS: tuple[str, ...] = ("device_type", "locale")


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

    The same rule as `fpi.analysis.cohorts.cohort_mask`, so a cohort found there lists the same turns here.
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
    order: str = "explore",
    label: str | Collection[str] | None = None,
    cohort: Mapping[str, str] | None = None,
    exclude_reviewed: Iterable[Key] = (),
) -> pd.DataFrame:
    """The turns to review, most worth a verdict first.

    `label` keeps turns predicted as that label (or any of several); `cohort`
    keeps turns matching every `column: value`; `exclude_reviewed` drops turns
    by (dialogue_id, turn_index) (for `explore`, they also count as already
    picked, so the queue moves away from them). Ties keep the traces' order, so
    the queue is deterministic. Columns: `QUEUE_COLUMNS`, `row` being the turn's position in
    `scored` (for features and explanations).
    """
    if order not in ORDERS:
        raise FpiError(f"unknown queue order {order!r}; expected one of {', '.join(ORDERS)}")
    scores = uncertainty_scores(_probabilities(scored))
    priority = {
        "explore": 1.0 - scores["margin"],  # replaced by the explore rank below
        "uncertainty": 1.0 - scores["margin"],
        "entropy": scores["entropy"],
        "defect_probability": scores["defect_probability"],
    }[order]
    queue = pd.DataFrame({
        "row": np.arange(len(scored), dtype=np.int64),
        "dialogue_id": scored["dialogue_id"].astype("str").to_numpy(dtype=object),
        "turn_index": scored["turn_index"].to_numpy(dtype=np.int64),
        PREDICTED_COLUMN: scored[PREDICTED_COLUMN].to_numpy(dtype=object),
    })
    queue = pd.concat([queue, scores.assign(priority=priority.to_numpy())], axis=1)
    keep = cohort_mask(scored, cohort)
    if label is not None:
        labels = {label} if isinstance(label, str) else set(label)
        unknown = labels - set(LABELS)
        if unknown:
            raise FpiError(f"unknown label filter {sorted(unknown)}; expected labels from {', '.join(LABELS)}")
        keep &= queue[PREDICTED_COLUMN].isin(labels).to_numpy(dtype=bool)
    reviewed = set(exclude_reviewed)
    judged = _reviewed_mask(queue, reviewed) if reviewed else np.zeros(len(queue), dtype=bool)
    keep &= ~judged
    if order == "explore":
        reviewed_rows = np.flatnonzero(judged)
        ranked = explore_order(scored, candidates=np.flatnonzero(keep), reviewed=reviewed_rows)
        queue = queue.iloc[ranked].assign(priority=np.arange(len(ranked), 0, -1, dtype=float) / max(len(ranked), 1))
        return queue[list(QUEUE_COLUMNS)].reset_index(drop=True)
    queue = queue[keep]
    # Stable sort on -priority: equal priorities stay in (dialogue_id, turn_index) order.
    queue = queue.iloc[np.argsort(-queue["priority"].to_numpy(), kind="stable")]
    return queue[list(QUEUE_COLUMNS)].reset_index(drop=True)


def _reviewed_mask(queue: pd.DataFrame, reviewed: set[Key]) -> np.ndarray:
    keys = pd.MultiIndex.from_arrays([queue["dialogue_id"], queue["turn_index"]])
    return np.asarray(keys.isin(list(reviewed)), dtype=bool)


def turn_embedding(scored: pd.DataFrame) -> np.ndarray:
    """What makes turns alike for `explore`: probabilities, confidence ranks, cohort; unit scale per block."""
    proba = _probabilities(scored)
    blocks = [proba * np.sqrt(2.0)]  # probability vectors differ by at most sqrt(2)
    ranks = []
    for column in CONFIDENCE_COLUMNS:
        if column in scored.columns:
            values = pd.to_numeric(scored[column], errors="coerce")
            # Upload-relative: the same in a pipeline whose confidences are calibrated differently.
            ranks.append(values.rank(pct=True).fillna(-0.5).to_numpy(dtype=float))
    if ranks:
        blocks.append(np.column_stack(ranks) / np.sqrt(len(ranks)))
    for column in COHORT_COLUMNS:
        if column in scored.columns:
            codes = pd.factorize(scored[column].astype("str").fillna(MISSING), sort=True)[0]
            blocks.append(np.eye(codes.max() + 1)[codes] * 0.5)
    return np.hstack(blocks)


def explore_order(scored: pd.DataFrame, *, candidates: np.ndarray, reviewed: np.ndarray = np.zeros(0, int),
                  turns: int = EXPLORE_TURNS, pool: int = EXPLORE_CANDIDATES, uncertain_every: int = 3,
                  shortlist: int = 8, power: float = 0.5, explore_first: int = EXPLORE_FIRST) -> np.ndarray:
    """`candidates` (rows of `scored`) in `explore` order; `reviewed` rows count as picked.

    Strata are the predicted labels. Each pick goes to the stratum furthest
    behind its share of the picks, shares being proportional to (stratum
    size) ** `power` (0.5: rare predicted labels come up more often than their
    size alone would give, common ones still most). Until `explore_first`
    turns are judged or picked, all picks explore: the model that ranks them
    may not know this pipeline yet, and its doubts are not the informative
    ones. Later, within a stratum, every `uncertain_every`-th pick is the
    smallest top-two margin; the others take
    the next `shortlist` turns of a seeded hash order of the dialogues (a fixed
    pseudo-random sample, so representative rather than outlying) and keep the
    one farthest from every turn picked or reviewed (`turn_embedding`). After
    `turns` picks, or for candidates outside the seeded sample of `pool` turns,
    the rest follow by margin. Deterministic: no random draw, ties go to the
    earlier row.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if len(candidates) == 0:
        return candidates
    reviewed = np.asarray(reviewed, dtype=np.int64)
    margin = uncertainty_scores(_probabilities(scored))["margin"].to_numpy()
    bucket = dialogue_bucket(scored["dialogue_id"].astype("str"), seed=0) + 1e-9 * scored["turn_index"].to_numpy(
        dtype=float, na_value=0.0)
    in_play = candidates
    if len(candidates) > pool:
        in_play = np.sort(candidates[np.argsort(bucket[candidates], kind="stable")[:pool]])
    embedding = turn_embedding(scored)
    points = embedding[in_play]
    picks = np.zeros(min(turns, len(in_play)), dtype=np.int64)
    # Every turn is compared with the reviewed turns, then with each pick: `centres`. nearest[r] covers
    # centres[:seen[r]], and a turn is brought up to date only when it is shortlisted, since only
    # shortlisted turns are ever compared (not every turn of the pool after every pick).
    centres = np.vstack([embedding[reviewed], np.zeros((len(picks), embedding.shape[1]))])
    nearest = np.full(len(in_play), np.inf)
    seen = np.zeros(len(in_play), dtype=np.int64)
    predicted = pd.Categorical(scored[PREDICTED_COLUMN].iloc[in_play].astype("str"), categories=list(LABELS)).codes
    # Each stratum's members in hash order (the representative order) and by margin (the uncertain order).
    strata = [np.flatnonzero(predicted == k) for k in range(-1, len(LABELS))]
    strata = [s for s in strata if len(s)]
    by_hash = [s[np.argsort(bucket[in_play[s]], kind="stable")] for s in strata]
    by_margin = [s[np.argsort(margin[in_play[s]], kind="stable")] for s in strata]
    share = np.array([len(s) for s in strata], dtype=float) ** power
    share /= share.sum()
    taken = np.zeros(len(strata))
    left = np.array([len(s) for s in strata])
    cursor_hash, cursor_margin = [0] * len(strata), [0] * len(strata)
    available = np.ones(len(in_play), dtype=bool)
    for n in range(len(picks)):
        deficit = np.where(left > 0, share * (n + 1) - taken, -np.inf)
        i = int(np.argmax(deficit))
        exploring = len(reviewed) + n < explore_first
        if not exploring and int(taken[i]) % uncertain_every == uncertain_every - 1:
            order, cursor = by_margin[i], cursor_margin
            while not available[order[cursor[i]]]:
                cursor[i] += 1
            choice = order[cursor[i]]
        else:
            order, cursor = by_hash[i], cursor_hash
            while not available[order[cursor[i]]]:
                cursor[i] += 1
            listed = _next_available(order, cursor[i], available, shortlist)
            _catch_up(nearest, seen, listed, points, centres[:len(reviewed) + n])
            choice = listed[int(np.argmax(nearest[listed]))]  # inf (nothing near yet) wins; ties: hash order
        picks[n] = choice
        centres[len(reviewed) + n] = points[choice]
        available[choice] = False
        taken[i] += 1
        left[i] -= 1
    picked = in_play[picks]
    rest = np.setdiff1d(candidates, picked, assume_unique=True)
    rest = rest[np.argsort(margin[rest], kind="stable")]
    return np.concatenate([picked, rest]).astype(np.int64)


def _next_available(order: np.ndarray, start: int, available: np.ndarray, count: int) -> np.ndarray:
    """The first `count` available entries of `order` from `start`, looking at a few more at a time."""
    window = 4 * count
    while True:
        part = order[start:start + window]
        listed = part[available[part]]
        if len(listed) >= count or start + window >= len(order):
            return listed[:count]
        window *= 4


def _catch_up(nearest: np.ndarray, seen: np.ndarray, rows: np.ndarray, points: np.ndarray,
              centres: np.ndarray) -> None:
    """Lower `nearest[rows]` by the distance to each of `centres` a row has not been compared with yet."""
    for start in np.unique(seen[rows]):  # rows listed together: a new one compares with every centre
        if start < len(centres):
            group = rows[seen[rows] == start]
            nearest[group] = np.minimum(nearest[group], _distances(points[group], centres[start:]).min(axis=1))
    seen[rows] = len(centres)


def _distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    squared = (points ** 2).sum(axis=1)[:, None] + (centres ** 2).sum(axis=1)[None, :] - 2 * points @ centres.T
    return np.sqrt(np.maximum(squared, 0.0))


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
