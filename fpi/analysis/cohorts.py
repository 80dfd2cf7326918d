"""Cohorts: where the pipeline fails, and for whom.

Pure functions over a traces frame (scored or labelled); DataFrames and frozen
dataclasses out. Which failure point a turn has is read from one column, a
parameter everywhere: `predicted_failure_point` of a scored frame by default,
or the human `failure_point` where analysts want labels. Whether the model is
equally good for every cohort is `fpi.analysis.fairness`; the statistics are `fpi.analysis.stats`.
How cohorts are discovered is `fpi.analysis.discovery`.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from fpi.analysis.dashboard import MISSING
from fpi.data.schema import DEFECT_LABELS, LABEL_COLUMN, LABELS, PREDICTED_COLUMN
from fpi.errors import FpiError
from fpi.analysis.stats import wilson_interval

__all__ = [
    "ANY_DEFECT", "candidate_columns", "cohort_codes", "cohort_mask", "cohort_profile", "cohort_rates", "describe",
    "failure_point_codes", "target_counts",
]

ANY_DEFECT = "defect"
"""Target name for "any failure point but correct"."""

NEVER_COHORTS: frozenset[str] = frozenset({
    "dialogue_id", "turn_index", "timestamp", "asr_text", "response_text", LABEL_COLUMN, PREDICTED_COLUMN,
})
"""Ids, free text and labels: never cohort columns, whatever their cardinality."""

Condition = tuple[str, str]
Conditions = tuple[Condition, ...]


# ---------------------------------------------------------------- cohorts as data

def describe(conditions: Iterable[Condition]) -> str:
    """`locale = en-IN and device_type = car`; the empty conjunction is "all turns"."""
    parts = [f"{column} = {value}" for column, value in conditions]
    return " and ".join(parts) if parts else "all turns"


def _values(frame: pd.DataFrame, column: str) -> pd.Series:
    """A cohort column as text, a missing cell as `MISSING` (as the overview names it)."""
    if column not in frame.columns:
        raise FpiError(f"no column '{column}' in the traces; cohort columns present: "
                       f"{', '.join(map(str, frame.columns))}")
    return frame[column].astype("str").fillna(MISSING)


def cohort_codes(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(level code per turn, level names): a missing cell is the level `MISSING`."""
    codes, uniques = pd.factorize(_values(frame, column))
    return codes.astype(np.int64), np.asarray(uniques, dtype=object).astype(str)


def cohort_mask(frame: pd.DataFrame, conditions: Mapping[str, str] | Iterable[Condition]) -> np.ndarray:
    """Boolean mask of the turns meeting every condition (value `MISSING` matches an empty cell)."""
    pairs = conditions.items() if isinstance(conditions, Mapping) else conditions
    keep = np.ones(len(frame), dtype=bool)
    for column, value in pairs:
        keep &= (_values(frame, column) == value).to_numpy(dtype=bool, na_value=False)
    return keep


def failure_point_codes(frame: pd.DataFrame, label_column: str) -> np.ndarray:
    """Codes into LABELS per turn (-1 where the column is empty)."""
    if label_column not in frame.columns:
        hint = (" (score the traces with a model first)" if label_column == PREDICTED_COLUMN
                else " (the traces carry no labels)")
        raise FpiError(f"no column '{label_column}' to read failure points from{hint}")
    codes, uniques = pd.factorize(frame[label_column], use_na_sentinel=True)
    # each distinct value looked up once (a million-row Categorical with fixed categories is 10x slower)
    lookup = np.array([LABELS.index(u) if u in LABELS else -1 for u in uniques] + [-1], dtype=np.int64)
    return lookup[codes]


def target_counts(counts: np.ndarray, targets: Sequence[str]) -> np.ndarray:
    """Per target, hits out of a (..., len(LABELS)) count array: a label's count, or all defects."""
    columns = []
    for target in targets:
        if target == ANY_DEFECT:
            columns.append(counts[..., 1:].sum(axis=-1))
        else:
            columns.append(counts[..., LABELS.index(target)])
    return np.stack(columns, axis=-1)


def cohort_rates(
    frame: pd.DataFrame, column: str, *, label_column: str = PREDICTED_COLUMN, confidence: float = 0.95
) -> pd.DataFrame:
    """One row per value of `column`: turns, defect rate and each failure point's rate, with Wilson intervals.

    Turns whose failure point is empty (unlabelled, with `label_column="failure_point"`)
    are left out. Columns: cohort, turns, defects, defect_rate, defect_low, defect_high,
    then rate_<label>, low_<label>, high_<label> per defect label; worst defect rate first.
    """
    codes = failure_point_codes(frame, label_column)
    keep = codes >= 0
    cohort = _values(frame, column)[keep]
    table = pd.crosstab(cohort, codes[keep]).reindex(columns=range(len(LABELS)), fill_value=0)
    counts = table.to_numpy(dtype=np.int64)
    turns = counts.sum(axis=1)
    defects = turns - counts[:, 0]
    result = pd.DataFrame({"cohort": table.index.astype(str), "turns": turns, "defects": defects,
                           "defect_rate": defects / np.maximum(turns, 1)})
    result["defect_low"], result["defect_high"] = wilson_interval(defects, turns, confidence=confidence)
    for i, label in enumerate(LABELS[1:], start=1):
        result[f"rate_{label}"] = counts[:, i] / np.maximum(turns, 1)
        result[f"low_{label}"], result[f"high_{label}"] = wilson_interval(counts[:, i], turns, confidence=confidence)
    return result.sort_values(["defect_rate", "turns"], ascending=[False, False], ignore_index=True)


def cohort_profile(
    frame: pd.DataFrame,
    conditions: Mapping[str, str] | Iterable[Condition],
    *,
    label_column: str = PREDICTED_COLUMN,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """A cohort's rate of each failure point (and of any defect) beside all turns', with Wilson intervals.

    Long format for a grouped bar chart: group ("cohort" or "all turns"),
    failure_point (`defect` then the defect labels), turns, count, rate, low, high.
    """
    codes = failure_point_codes(frame, label_column)
    inside = cohort_mask(frame, conditions)
    targets = (ANY_DEFECT, *DEFECT_LABELS)
    rows = []
    for group, mask in (("cohort", inside), ("all turns", np.ones(len(frame), dtype=bool))):
        part = codes[mask & (codes >= 0)]
        counts = np.bincount(part, minlength=len(LABELS))
        hits = target_counts(counts, targets)
        low, high = wilson_interval(hits, np.full(len(targets), part.size), confidence=confidence)
        for j, target in enumerate(targets):
            rows.append({"group": group, "failure_point": target, "turns": int(part.size), "count": int(hits[j]),
                         "rate": hits[j] / part.size if part.size else np.nan, "low": low[j], "high": high[j]})
    return pd.DataFrame(rows, columns=["group", "failure_point", "turns", "count", "rate", "low", "high"])


def candidate_columns(
    frame: pd.DataFrame,
    *,
    max_levels: int = 50,
    label_column: str = PREDICTED_COLUMN,
    columns: Sequence[str] | None = None,
) -> tuple[tuple[str, ...], dict[str, str]]:
    """(usable cohort columns, {skipped column: reason}).

    Text columns with 2..`max_levels` values (a missing cell counts as a value);
    ids, free text (`asr_text`, `response_text`) and labels never. Named `columns`
    are checked the same way, so a typo or an id column is reported, not searched.
    """
    names = [str(c) for c in frame.columns] if columns is None else list(columns)
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise FpiError(f"no column {', '.join(repr(c) for c in missing)} in the traces; "
                       f"columns present: {', '.join(map(str, frame.columns))}")
    used: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        series = frame[name]
        if name in NEVER_COHORTS or name == label_column or name.startswith("p_"):
            if columns is not None:
                skipped[name] = "an id, free text or a label, not a cohort"
            continue
        if not (pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)
                or isinstance(series.dtype, pd.CategoricalDtype)):
            if columns is not None:
                skipped[name] = f"not a text column ({series.dtype})"
            continue
        # A cheap look at the head first: free text reveals itself without factorising a million strings.
        distinct = max_levels + 1 if series.head(20_000).nunique(dropna=False) > max_levels \
            else series.nunique(dropna=False)
        if distinct > max_levels:
            skipped[name] = f"more than {max_levels} values (an id or free text?)"
            continue
        if distinct < 2:
            skipped[name] = "a single value"
            continue
        used.append(name)
    return tuple(used), skipped
