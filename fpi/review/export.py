"""Exports for review: traces with the latest verdict on each turn (`with_latest_verdicts`).

Writing them, CSV with formula-looking text neutralised, is `fpi.data.write.write_export`.
"""
from __future__ import annotations


import pandas as pd

from fpi.errors import FpiError

__all__ = ["VERDICT_EXPORT_COLUMNS", "with_latest_verdicts"]


VERDICT_EXPORT_COLUMNS: dict[str, str] = {
    "label": "verdict_label",
    "analyst": "verdict_analyst",
    "note": "verdict_note",
    "created_at": "verdict_at",
}
"""Verdict store column -> export column."""


def with_latest_verdicts(frame: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """`frame` plus verdict_label, verdict_analyst, verdict_note, verdict_at, matched by (dialogue_id, turn_index).

    `verdicts` holds at most one verdict per turn (e.g. `VerdictStore.latest(dataset=...)`
    or `latest_by_turn()`); turns without one get empty cells. Row order is kept.
    """
    if verdicts.duplicated(["dialogue_id", "turn_index"]).any():
        raise FpiError("with_latest_verdicts needs at most one verdict per (dialogue_id, turn_index); "
                       "pass VerdictStore.latest(dataset=...) or latest_by_turn()")
    picked = verdicts[["dialogue_id", "turn_index", *VERDICT_EXPORT_COLUMNS]].rename(columns=VERDICT_EXPORT_COLUMNS)
    picked = picked.astype({"dialogue_id": "str", "turn_index": "int64"})
    base = frame.drop(columns=[c for c in VERDICT_EXPORT_COLUMNS.values() if c in frame.columns])
    keys = base[["dialogue_id", "turn_index"]].astype({"dialogue_id": "str", "turn_index": "int64"})
    matched = keys.merge(picked, on=["dialogue_id", "turn_index"], how="left", validate="many_to_one")
    out = base.copy()
    for column in VERDICT_EXPORT_COLUMNS.values():
        out[column] = matched[column].to_numpy()
    out["verdict_at"] = pd.to_datetime(out["verdict_at"], utc=True)
    for column in ("verdict_label", "verdict_analyst", "verdict_note"):
        out[column] = out[column].astype("str")
    return out


