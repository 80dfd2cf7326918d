"""Finding and paging through dialogues: search, the next defect, the turns of one page, the stage strip."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from fpi.data.schema import PREDICTED_COLUMN, STAGE_LABEL, STAGES

__all__ = ["defect_dialogues", "default_dialogue", "dialogue_ids", "dialogue_turns", "neighbour_dialogue", "page_count",
           "search_dialogues", "stage_strip", "turns_page"]


def dialogue_ids(frame: pd.DataFrame) -> np.ndarray:
    """Dialogue ids in the frame's order (sorted, as loaded), each once."""
    return pd.unique(frame["dialogue_id"].to_numpy(dtype=object))


def search_dialogues(frame: pd.DataFrame, query: str = "", *, limit: int | None = 500) -> list[str]:
    """Ids of dialogues whose id, or any of whose ASR texts, contains `query` (any case); sorted, at most `limit`
    (None: all of them, so a page can say how many match)."""
    query = query.strip().lower()
    if not query:
        return [str(i) for i in dialogue_ids(frame)[:limit]]
    ids = frame["dialogue_id"].astype("str")
    hit = ids.str.lower().str.contains(query, regex=False).to_numpy(dtype=bool, na_value=False)
    if "asr_text" in frame.columns:
        text = frame["asr_text"].astype("str").str.lower().str.contains(query, regex=False)
        hit = hit | text.to_numpy(dtype=bool, na_value=False)
    return [str(i) for i in pd.unique(ids[hit].to_numpy(dtype=object))[:limit]]


def defect_dialogues(frame: pd.DataFrame) -> np.ndarray:
    """Ids of the dialogues with at least one predicted defect, sorted."""
    defect = (frame[PREDICTED_COLUMN] != "correct").to_numpy(dtype=bool, na_value=False)
    return np.sort(pd.unique(frame.loc[defect, "dialogue_id"].to_numpy(dtype=object)).astype(str))


def neighbour_dialogue(candidates: Sequence[str] | np.ndarray, current: str | None, *, step: int) -> str | None:
    """The next (step=1) or previous (step=-1) id of sorted `candidates` after `current`, or None.

    `current` need not be a candidate itself (e.g. a dialogue with no defect):
    the neighbour is found by sort position.
    """
    ids = np.asarray(candidates, dtype=object).astype(str)
    if len(ids) == 0:
        return None
    if current is None:
        return str(ids[0] if step > 0 else ids[-1])
    if step > 0:
        i = int(np.searchsorted(ids, current, side="right"))
        return str(ids[i]) if i < len(ids) else None
    i = int(np.searchsorted(ids, current, side="left")) - 1
    return str(ids[i]) if i >= 0 else None


MAX_DEFAULT_TURNS = 200
"""The drill-down opens on its own only a dialogue up to this long; a longer one only when asked for."""


TURNS_PER_PAGE = 100
"""Turns the drill-down draws at once; a longer dialogue is paged."""


def default_dialogue(frame: pd.DataFrame, defect_ids: Sequence[str] | np.ndarray, *,
                     max_turns: int = MAX_DEFAULT_TURNS) -> str | None:
    """The dialogue the drill-down opens when none is asked for: the first defective one of at most
    `max_turns` turns, else the first such dialogue of any kind, else the shortest.

    A 10,000-turn dialogue must not be what a page opens by default: drawing it is the user's choice.
    """
    if frame.empty:
        return None
    sizes = frame.groupby("dialogue_id", sort=True, observed=True).size()
    short = sizes[sizes <= max_turns]
    defects = [d for d in np.asarray(defect_ids, dtype=object).astype(str) if d in short.index]
    if defects:
        return str(defects[0])
    if len(short):
        return str(short.index[0])
    return str(sizes.idxmin())


def page_count(turns: int, per_page: int = TURNS_PER_PAGE) -> int:
    return max(1, -(-turns // per_page))


def turns_page(turns: pd.DataFrame, page: int, per_page: int = TURNS_PER_PAGE) -> pd.DataFrame:
    """Page `page` (0-based, clipped to the last) of a dialogue's turns."""
    page = min(max(0, page), page_count(len(turns), per_page) - 1)
    return turns.iloc[page * per_page: (page + 1) * per_page]


def dialogue_turns(frame: pd.DataFrame, dialogue_id: str) -> pd.DataFrame:
    """The turns of one dialogue, in order; positions in `frame` kept as the index."""
    part = frame[(frame["dialogue_id"] == dialogue_id).to_numpy(dtype=bool, na_value=False)]
    return part.sort_values("turn_index", kind="stable")


def stage_strip(turns: pd.DataFrame) -> pd.DataFrame:
    """Long table of the five stage confidences per turn, the predicted failing stage flagged.

    Columns: turn_index, stage, confidence (nan when not logged), failing (bool).
    """
    rows = []
    label_stage = {label: stage for stage, label in STAGE_LABEL.items()}
    for turn_index, predicted, *values in turns[["turn_index", PREDICTED_COLUMN, *(f"{s}_confidence" for s in STAGES)]].itertuples(index=False):
        failing_stage = label_stage.get(str(predicted))
        for stage, value in zip(STAGES, values):
            rows.append({"turn_index": int(turn_index), "stage": stage,
                         "confidence": float(value) if pd.notna(value) else float("nan"),
                         "failing": stage == failing_stage})
    return pd.DataFrame(rows, columns=["turn_index", "stage", "confidence", "failing"])
