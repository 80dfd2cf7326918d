"""What the dashboards show, computed from a scored traces frame.

Pure functions: a scored frame (as `FailurePointModel.score` returns it: the
trace columns plus `predicted_failure_point` and `p_<label>`) in, a DataFrame or
a frozen dataclass out. The figure builders in `fpi.ui.charts` draw the results;
the Streamlit pages only call both.

A *defect* is a turn whose predicted failure point is not `correct`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fpi.data.schema import (
    DEFECT_LABELS, LABEL_COLUMN, LABELS, PREDICTED_COLUMN, PROBABILITY_COLUMNS, STAGE_LABEL, STAGES,
)

__all__ = [
    "BREAKDOWN_DIMENSIONS", "Kpis", "Overview", "SankeyData", "breakdown", "breakdown_matrix", "confidence",
    "confidence_distribution", "defect_rate_over_time", "kpis", "label_distribution", "matching_turns", "overview",
    "pick_frequency", "sankey_flows", "sankey_from_counts",
]


BREAKDOWN_DIMENSIONS: dict[str, str] = {
    "device": "device_type",
    "locale": "locale",
    "domain": "nlu_domain",
    "intent": "nlu_intent",
}
"""What the overview can slice by: name shown -> trace column."""

MISSING = "(missing)"
"""How a cohort with no value in its column is named."""

TURN_COLUMNS: tuple[str, ...] = (
    "dialogue_id", "turn_index", "timestamp", "device_type", "locale", "nlu_domain", "nlu_intent",
    "asr_text", "response_text", PREDICTED_COLUMN, "confidence", LABEL_COLUMN,
)
"""Columns of the matching-turns tables, in display order (absent ones are skipped)."""


# ---------------------------------------------------------------- filters


# ---------------------------------------------------------------- headline numbers

@dataclass(frozen=True)
class Kpis:
    turns: int
    dialogues: int
    defects: int
    defect_rate: float
    """Share of turns with a predicted defect (nan with no turns)."""
    dialogues_with_defect: int
    labelled: int
    labelled_share: float
    agreement: float | None
    """Share of labelled turns whose predicted failure point equals the label; None without labels."""


def kpis(frame: pd.DataFrame) -> Kpis:
    turns = len(frame)
    defect = (frame[PREDICTED_COLUMN] != "correct").to_numpy(dtype=bool, na_value=False)
    labels = frame[LABEL_COLUMN] if LABEL_COLUMN in frame.columns else pd.Series(pd.NA, index=frame.index)
    labelled = labels.notna().to_numpy(dtype=bool)
    agreement = None
    if labelled.any():
        agree = (frame[PREDICTED_COLUMN] == labels).to_numpy(dtype=bool, na_value=False)
        agreement = float(agree[labelled].mean())
    return Kpis(
        turns=turns,
        dialogues=int(frame["dialogue_id"].nunique()),
        defects=int(defect.sum()),
        defect_rate=float(defect.mean()) if turns else float("nan"),
        dialogues_with_defect=int(frame.loc[defect, "dialogue_id"].nunique()),
        labelled=int(labelled.sum()),
        labelled_share=float(labelled.mean()) if turns else float("nan"),
        agreement=agreement,
    )


def label_distribution(frame: pd.DataFrame) -> pd.DataFrame:
    """Turns per predicted failure point (every label, zeros included), with the human labels beside.

    Columns: label, predicted, share, labelled (human-labelled turns with that label).
    """
    predicted = frame[PREDICTED_COLUMN].value_counts().reindex(list(LABELS), fill_value=0)
    total = max(1, len(frame))
    if LABEL_COLUMN in frame.columns:
        human = frame[LABEL_COLUMN].value_counts().reindex(list(LABELS), fill_value=0)
    else:
        human = pd.Series(0, index=list(LABELS))
    return pd.DataFrame({
        "label": list(LABELS),
        "predicted": predicted.to_numpy(dtype=int),
        "share": predicted.to_numpy(dtype=float) / total,
        "labelled": human.to_numpy(dtype=int),
    })


# ---------------------------------------------------------------- pipeline flow

@dataclass(frozen=True)
class SankeyData:
    """Nodes (id, name, kind) and links (source, target, turns) of the pipeline flow.

    Every turn enters at `wake`; at each stage the turns whose failure point is
    that stage leave to the stage's failure node and the rest go on to the next
    stage; what passes `result` ends in `correct`.
    """

    nodes: pd.DataFrame
    links: pd.DataFrame


def sankey_flows(frame: pd.DataFrame, *, column: str = PREDICTED_COLUMN) -> SankeyData:
    return sankey_from_counts(frame[column].value_counts())


def sankey_from_counts(counts: pd.Series) -> SankeyData:
    """The flows for turns counted per label (index: label); what `sankey_flows` draws from a frame."""
    names = ["all turns", *STAGES, *(f"fails at {stage}" for stage in STAGES), "correct"]
    kinds = ["source", *(["stage"] * len(STAGES)), *(["failure"] * len(STAGES)), "correct"]
    labels = [None, *(None for _ in STAGES), *(STAGE_LABEL[s] for s in STAGES), "correct"]
    node_id = {name: i for i, name in enumerate(names)}
    links: list[dict[str, object]] = []
    flowing = int(counts.reindex([*LABELS]).fillna(0).sum())
    links.append({"source": node_id["all turns"], "target": node_id[STAGES[0]], "turns": flowing, "label": None})
    for i, stage in enumerate(STAGES):
        failed = int(counts.get(STAGE_LABEL[stage], 0))
        links.append({"source": node_id[stage], "target": node_id[f"fails at {stage}"], "turns": failed,
                      "label": STAGE_LABEL[stage]})
        flowing -= failed
        target = STAGES[i + 1] if i + 1 < len(STAGES) else "correct"
        links.append({"source": node_id[stage], "target": node_id[target], "turns": flowing,
                      "label": None if target != "correct" else "correct"})
    nodes = pd.DataFrame({"id": range(len(names)), "name": names, "kind": kinds, "label": labels})
    return SankeyData(nodes=nodes, links=pd.DataFrame(links))


# ---------------------------------------------------------------- over time

def pick_frequency(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """Hourly for up to two days, daily up to 120 days, weekly beyond: enough points, not too many."""
    span = end - start
    if span <= pd.Timedelta(days=2):
        return "h"
    if span <= pd.Timedelta(days=120):
        return "D"
    return "W"


def defect_rate_over_time(frame: pd.DataFrame, *, freq: str | None = None) -> pd.DataFrame:
    """Per period: turns, and the share of turns failing at each stage and in all.

    Long format with columns period, label (a defect label or "all defects"),
    turns (in the period), count, rate. Empty when the frame has no timestamps.
    """
    columns = ["period", "label", "turns", "count", "rate"]
    if "timestamp" not in frame.columns or frame["timestamp"].notna().sum() == 0:
        return pd.DataFrame(columns=columns)
    part = frame.loc[frame["timestamp"].notna(), ["timestamp", PREDICTED_COLUMN]]
    stamps = part["timestamp"]
    freq = freq or pick_frequency(stamps.min(), stamps.max())
    stamps = stamps.dt.tz_localize(None) if getattr(stamps.dt, "tz", None) is not None else stamps
    period = stamps.dt.to_period(freq).dt.start_time
    table = pd.crosstab(period, part[PREDICTED_COLUMN]).reindex(columns=list(LABELS), fill_value=0)
    turns = table.sum(axis=1)
    table["all defects"] = table[list(DEFECT_LABELS)].sum(axis=1)
    long = table[["all defects", *DEFECT_LABELS]].stack().rename("count").reset_index()
    long.columns = ["period", "label", "count"]
    long["turns"] = long["period"].map(turns).astype(int)
    long["rate"] = long["count"] / long["turns"]
    order = {label: i for i, label in enumerate(["all defects", *DEFECT_LABELS])}
    long = long.assign(_order=long["label"].map(order)).sort_values(["_order", "period"], ignore_index=True)
    return long[columns]


# ---------------------------------------------------------------- cohorts

def _cohort_values(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(MISSING, index=frame.index, dtype="str")
    return frame[column].astype("str").fillna(MISSING)


def breakdown(frame: pd.DataFrame, column: str, *, top: int = 25) -> pd.DataFrame:
    """One row per cohort (value of `column`): turns, defect rate, and its most common failure point.

    Sorted by defect rate, highest first; only the `top` largest cohorts are kept.
    Columns: cohort, turns, defects, defect_rate, top_failure_point, plus `rate_<label>` per defect label.
    """
    cohort = _cohort_values(frame, column)
    table = pd.crosstab(cohort, frame[PREDICTED_COLUMN]).reindex(columns=list(LABELS), fill_value=0)
    turns = table.sum(axis=1)
    table = table.loc[turns.sort_values(ascending=False).index[:top]]
    turns = table.sum(axis=1)
    defects = table[list(DEFECT_LABELS)].sum(axis=1)
    result = pd.DataFrame({
        "cohort": table.index.astype(str),
        "turns": turns.to_numpy(dtype=int),
        "defects": defects.to_numpy(dtype=int),
        "defect_rate": (defects / turns.clip(lower=1)).to_numpy(dtype=float),
    })
    defect_counts = table[list(DEFECT_LABELS)]
    worst = defect_counts.idxmax(axis=1).where(defects > 0, "")
    result["top_failure_point"] = worst.to_numpy(dtype=object)
    for label in DEFECT_LABELS:
        result[f"rate_{label}"] = (table[label] / turns.clip(lower=1)).to_numpy(dtype=float)
    return result.sort_values(["defect_rate", "turns"], ascending=[False, False], ignore_index=True)


def breakdown_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """The `rate_<label>` columns of a `breakdown` as a cohort x defect-label matrix (for a heatmap)."""
    matrix = table.set_index("cohort")[[f"rate_{label}" for label in DEFECT_LABELS]]
    matrix.columns = list(DEFECT_LABELS)
    return matrix


# ---------------------------------------------------------------- confidence

def confidence(frame: pd.DataFrame) -> pd.Series:
    """The model's probability of the label it predicted, per turn."""
    return frame[list(PROBABILITY_COLUMNS)].max(axis=1).rename("confidence")


def confidence_distribution(frame: pd.DataFrame) -> pd.DataFrame:
    """Quantiles of the predicted label's probability, per predicted label present.

    Columns: label, turns, q05, q25, median, q75, q95, mean; labels in pipeline order.
    """
    conf = confidence(frame)
    rows = []
    for label in LABELS:
        values = conf[(frame[PREDICTED_COLUMN] == label).to_numpy(dtype=bool, na_value=False)].to_numpy(dtype=float)
        if len(values) == 0:
            continue
        q05, q25, median, q75, q95 = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
        rows.append({"label": label, "turns": len(values), "q05": q05, "q25": q25, "median": median,
                     "q75": q75, "q95": q95, "mean": float(values.mean())})
    return pd.DataFrame(rows, columns=["label", "turns", "q05", "q25", "median", "q75", "q95", "mean"])


# ---------------------------------------------------------------- turns and dialogues

def matching_turns(
    frame: pd.DataFrame,
    *,
    predicted: str | None = None,
    cohort: tuple[str, str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The turns predicted as `predicted` and/or in `cohort` (column, value), display columns only.

    Ordered by the model's confidence, most confident first, so the clearest
    examples come first. `cohort` value `MISSING` matches an empty cell.
    """
    keep = np.ones(len(frame), dtype=bool)
    if predicted is not None:
        keep &= (frame[PREDICTED_COLUMN] == predicted).to_numpy(dtype=bool, na_value=False)
    if cohort is not None:
        column, value = cohort
        keep &= (_cohort_values(frame, column) == value).to_numpy(dtype=bool, na_value=False)
    part = frame[keep]
    part = part.assign(confidence=confidence(part))
    part = part.sort_values("confidence", ascending=False, kind="stable")
    if limit is not None:
        part = part.head(limit)
    return part[[c for c in TURN_COLUMNS if c in part.columns]].reset_index(drop=True)


# ---------------------------------------------------------------- everything the overview draws

@dataclass(frozen=True)
class Overview:
    kpis: Kpis
    distribution: pd.DataFrame
    sankey: SankeyData
    over_time: pd.DataFrame
    confidence: pd.DataFrame


def overview(frame: pd.DataFrame) -> Overview:
    """Everything on the overview page except the cohort breakdown, for one (filtered) frame."""
    return Overview(
        kpis=kpis(frame),
        distribution=label_distribution(frame),
        sankey=sankey_flows(frame),
        over_time=defect_rate_over_time(frame),
        confidence=confidence_distribution(frame),
    )
