"""Is the model equally good for everyone? Its accuracy, macro-F1 and per-class recall per cohort.

Needs labelled turns (`failure_point`) beside the model's `predicted_failure_point`.
Accuracy and recall carry Wilson intervals and are tested cohort vs the rest
(one-sided Fisher exact test, Benjamini-Hochberg over every comparison);
macro-F1, which has no closed-form interval, is bootstrapped over dialogues,
which also respects that turns of one dialogue are correlated.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from fpi.analysis.cohorts import cohort_codes, failure_point_codes
from fpi.data.schema import LABEL_COLUMN, LABELS, PREDICTED_COLUMN
from fpi.errors import NotLabelledError
from fpi.analysis.stats import benjamini_hochberg, fisher_less, macro_f1, wilson_interval

__all__ = ["FAIRNESS_COLUMNS", "cohort_performance", "fairness", "format_fairness"]

FAIRNESS_COLUMNS: tuple[str, ...] = ("locale", "device_type")
"""The cohorts whose model performance is checked by default."""


def _labelled(frame: pd.DataFrame, label_column: str, predicted_column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask of labelled turns, true codes, predicted codes); raises when nothing is labelled."""
    truth = failure_point_codes(frame, label_column) if label_column in frame.columns else np.full(len(frame), -1)
    mask = truth >= 0
    if not mask.any():
        raise NotLabelledError(f"model performance per cohort needs labels: no turn has a '{label_column}' value")
    predicted = failure_point_codes(frame, predicted_column)
    mask &= predicted >= 0
    return mask, truth, predicted


def _bootstrap_macro_f1(dialogues: np.ndarray, cells: np.ndarray, *, n_boot: int, rng: np.random.Generator,
                        confidence: float) -> tuple[float, float, int]:
    """Percentile interval of macro-F1, resampling whole dialogues.

    Dialogues with the same (truth, prediction) counts are interchangeable, so
    a resample of n dialogues is a multinomial draw over the distinct patterns:
    exact, and cheap however many dialogues there are. `dialogues` are integer
    codes; returns (low, high, number of dialogues).
    """
    k2 = len(LABELS) ** 2
    ids, dense = np.unique(dialogues, return_inverse=True)
    per_dialogue = np.bincount(dense * k2 + cells, minlength=ids.size * k2).reshape(ids.size, k2).astype(np.int32)
    # Group identical rows by a random 64-bit hash (np.unique(axis=0) sorts 144-byte rows: seconds on 10^5
    # dialogues); two different patterns colliding has a chance of about 1e-12.
    weights = np.random.default_rng(0).integers(1, 2**63 - 1, k2, dtype=np.uint64) | np.uint64(1)
    keys = pd.factorize(per_dialogue.astype(np.uint64) @ weights)[0]
    freq = np.bincount(keys)
    patterns = per_dialogue[np.unique(keys, return_index=True)[1]]  # keys number patterns by first appearance
    draws = rng.multinomial(ids.size, freq / ids.size, size=n_boot)
    confusion = (draws @ patterns).reshape(n_boot, len(LABELS), len(LABELS))
    tail = (1 - confidence) / 2
    low, high = np.quantile(macro_f1(confusion), [tail, 1 - tail])
    return float(low), float(high), int(ids.size)


def cohort_performance(
    frame: pd.DataFrame,
    column: str,
    *,
    label_column: str = LABEL_COLUMN,
    predicted_column: str = PREDICTED_COLUMN,
    confidence: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """The model's accuracy and macro-F1 per value of `column`, on the labelled turns, with intervals.

    Accuracy: Wilson interval. Macro-F1 (over the classes present in the
    cohort's labels or predictions): percentile bootstrap over dialogues,
    `n_boot` resamples from `seed`. Columns: cohort, turns, dialogues,
    accuracy, accuracy_low, accuracy_high, macro_f1, macro_f1_low, macro_f1_high;
    largest cohort first.
    """
    mask, truth, predicted = _labelled(frame, label_column, predicted_column)
    codes, names = cohort_codes(frame, column)
    cohort = codes[mask]
    t, p = truth[mask], predicted[mask]
    dialogues = pd.factorize(frame["dialogue_id"])[0][mask]
    cells = t * len(LABELS) + p
    rng = np.random.default_rng(seed)
    rows = []
    counts = np.bincount(cohort, minlength=len(names))
    order = sorted((i for i in range(len(names)) if counts[i]), key=lambda i: (-counts[i], names[i]))
    for code in order:
        value = names[code]
        inside = cohort == code
        confusion = np.bincount(cells[inside], minlength=len(LABELS) ** 2).reshape(len(LABELS), len(LABELS))
        n = int(inside.sum())
        correct = int(np.trace(confusion))
        low, high = wilson_interval(correct, n, confidence=confidence)
        f1_low, f1_high, n_dialogues = _bootstrap_macro_f1(dialogues[inside], cells[inside], n_boot=n_boot,
                                                           rng=rng, confidence=confidence)
        rows.append({"cohort": str(value), "turns": n, "dialogues": n_dialogues,
                     "accuracy": correct / n, "accuracy_low": float(low), "accuracy_high": float(high),
                     "macro_f1": float(macro_f1(confusion)), "macro_f1_low": f1_low, "macro_f1_high": f1_high})
    return pd.DataFrame(rows, columns=["cohort", "turns", "dialogues", "accuracy", "accuracy_low", "accuracy_high",
                                       "macro_f1", "macro_f1_low", "macro_f1_high"])


FAIRNESS_RESULT = ["column", "cohort", "metric", "turns", "hits", "value", "low", "high", "rest_value", "gap",
                   "p_value", "q_value", "flagged"]


def fairness(
    frame: pd.DataFrame,
    *,
    columns: Sequence[str] = FAIRNESS_COLUMNS,
    label_column: str = LABEL_COLUMN,
    predicted_column: str = PREDICTED_COLUMN,
    level: float = 0.05,
    method: str = "bh",
    confidence: float = 0.95,
    min_turns: int = 30,
) -> pd.DataFrame:
    """Is the model worse for some cohort? Accuracy and recall of each class, cohort vs the rest.

    One row per (column, cohort, metric) with at least `min_turns` turns in the
    metric's denominator (all labelled turns for accuracy, the class's labelled
    turns for `recall:<label>`): value with Wilson interval, the rest's value,
    and a one-sided Fisher exact test (two proportions: cohort lower than its
    complement). All rows are corrected together (BH, false discovery rate
    `level`); `flagged` marks the significant ones. Flagged rows first.
    """
    mask, truth, predicted = _labelled(frame, label_column, predicted_column)
    present = [c for c in columns if c in frame.columns]
    t, p = truth[mask], predicted[mask]
    hit = t == p
    rows = []
    for column in present:
        codes, names = cohort_codes(frame, column)
        cohort = codes[mask]
        for code in sorted(np.unique(cohort), key=lambda i: names[i]):
            value = names[code]
            inside = cohort == code
            metrics = [("accuracy", np.ones(t.size, dtype=bool))]
            metrics += [(f"recall:{label}", t == i) for i, label in enumerate(LABELS)]
            for metric, base in metrics:
                n_in = int((inside & base).sum())
                n_out = int((~inside & base).sum())
                if n_in < min_turns or n_out == 0:
                    continue
                h_in = int((inside & base & hit).sum())
                h_out = int((~inside & base & hit).sum())
                rows.append({"column": column, "cohort": str(value), "metric": metric, "turns": n_in, "hits": h_in,
                             "value": h_in / n_in, "rest_value": h_out / n_out, "rest_turns": n_out,
                             "rest_hits": h_out})
    if not rows:
        return pd.DataFrame(columns=FAIRNESS_RESULT)
    table = pd.DataFrame(rows)
    low, high = wilson_interval(table["hits"].to_numpy(), table["turns"].to_numpy(), confidence=confidence)
    table["low"], table["high"] = low, high
    table["gap"] = table["value"] - table["rest_value"]
    pool = (table["turns"] + table["rest_turns"]).to_numpy()
    table["p_value"] = fisher_less(table["hits"].to_numpy(), table["turns"].to_numpy(),
                               (table["hits"] + table["rest_hits"]).to_numpy(), pool)
    flagged, q_value = benjamini_hochberg(table["p_value"].to_numpy(), level=level, method=method)
    table["q_value"], table["flagged"] = q_value, flagged
    table = table.sort_values(["flagged", "p_value"], ascending=[False, True], kind="stable", ignore_index=True)
    return table[FAIRNESS_RESULT]


def format_fairness(table: pd.DataFrame, *, level: float) -> str:
    """The flagged rows of a `fairness` table as text, or a line saying there are none."""
    flagged = table[table["flagged"]]
    head = (f"model fairness: {len(table):,} cohort x metric comparisons, cohort vs the rest, "
            f"false discovery rate {level:g}")
    if flagged.empty:
        return head + "\nno cohort is significantly worse served than the rest"
    lines = [head, f"{'metric':<18}{'turns':>8}{'value':>8}{'95% interval':>17}{'rest':>8}{'q':>10}  cohort"]
    for row in flagged.itertuples(index=False):
        lines.append(f"{row.metric:<18}{row.turns:>8,}{row.value:>8.1%}{f'{row.low:.1%}-{row.high:.1%}':>17}"
                     f"{row.rest_value:>8.1%}{row.q_value:>10.2g}  {row.column} = {row.cohort}")
    return "\n".join(lines)
