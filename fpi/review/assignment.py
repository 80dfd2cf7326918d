"""Splitting a dataset's turns among named analysts, each one's progress, and the pool of skipped turns.

A split deals whole dialogues (round robin, in a seeded order of their ids, so
it does not change with the queue's order) or whole cohorts (every value of a
column, e.g. locale, to one analyst; largest values first to whoever has the
fewest turns so far). A turn its analyst skipped goes back to the pool: it is
nobody's any more, and any analyst's queue offers it after their own turns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

import numpy as np
import pandas as pd

from fpi.model.splits import dialogue_bucket
from fpi.review.names import clean_name

__all__ = ["SPLITS", "Split", "assign", "assignment_progress", "my_share", "owners_of", "parse_analysts"]

SPLITS: dict[str, str] = {"round_robin": "Round robin, by dialogue", "cohort": "By cohort (one column's values)"}
Key = tuple[str, int]


@dataclass(frozen=True)
class Split:
    """How a dataset's turns are shared out: who, and by what."""

    analysts: tuple[str, ...]
    by: str = "round_robin"
    column: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.by not in SPLITS:
            raise ValueError(f"unknown split {self.by!r}; expected one of {', '.join(SPLITS)}")
        if self.by == "cohort" and not self.column:
            raise ValueError("a split by cohort needs the column whose values are shared out")
        names = []
        for name in self.analysts:
            cleaned = clean_name(name)
            if cleaned not in names:
                names.append(cleaned)
        if not names:
            raise ValueError("a split needs at least one analyst")
        object.__setattr__(self, "analysts", tuple(names))


def assign(frame: pd.DataFrame, split: Split) -> pd.Series:
    """The analyst of each turn of `frame` (same index), by `split`."""
    ids = frame["dialogue_id"].astype("str")
    n = len(split.analysts)
    if split.by == "round_robin":
        dialogues = pd.Series(ids.unique())
        order = np.argsort(dialogue_bucket(dialogues, seed=split.seed), kind="stable")
        owner = dict(zip(dialogues.to_numpy()[order], np.arange(len(order)) % n))
        return ids.map(lambda d: split.analysts[owner[d]])
    if split.column not in frame.columns:
        raise ValueError(f"there is no column {split.column!r} in the traces to split by")
    values = frame[split.column].astype("str").fillna("(missing)")
    load = dict.fromkeys(split.analysts, 0)
    owner_of: dict[str, str] = {}
    for value, size in values.value_counts().items():
        who = min(load, key=lambda a: (load[a], split.analysts.index(a)))
        owner_of[str(value)] = who
        load[who] += int(size)
    return values.map(owner_of)


def assignment_progress(frame: pd.DataFrame, owners: pd.Series, judged: pd.DataFrame,
                        skipped: pd.DataFrame) -> pd.DataFrame:
    """Per analyst: turns assigned, judged by them, skipped back to the pool, and left.

    `judged` and `skipped` have dialogue_id, turn_index, analyst (one row per turn and analyst).
    """
    keys = list(zip(frame["dialogue_id"].astype("str"), frame["turn_index"].astype("int64")))
    table = pd.DataFrame({"key": keys, "analyst": owners.to_numpy()})
    done = {(str(d), int(t), str(a)) for d, t, a in judged[["dialogue_id", "turn_index", "analyst"]].itertuples(
        index=False)}
    gave_up = {(str(d), int(t), str(a)) for d, t, a in skipped[["dialogue_id", "turn_index", "analyst"]].itertuples(
        index=False)}
    table["judged"] = [(k[0], k[1], a) in done for k, a in zip(table["key"], table["analyst"])]
    table["skipped"] = [(k[0], k[1], a) in gave_up and not j
                        for k, a, j in zip(table["key"], table["analyst"], table["judged"])]
    out = table.groupby("analyst", sort=False).agg(assigned=("key", "size"), judged=("judged", "sum"),
                                                  skipped=("skipped", "sum")).reset_index()
    out["left"] = out["assigned"] - out["judged"] - out["skipped"]
    out["done"] = np.where(out["assigned"] > 0, out["judged"] / out["assigned"].clip(lower=1), 0.0)
    return out.astype({"judged": "int64", "skipped": "int64"})


def my_share(queue: pd.DataFrame, owners: dict[Key, str], analyst: str, *, skipped: pd.DataFrame,
             also: Collection[Key] = ()) -> pd.DataFrame:
    """The queue rows for `analyst`: their own turns (minus the ones they skipped), then the pool.

    The pool is the turns their owner skipped (and `analyst` did not), and turns with no owner. `also` are
    keys to keep whoever owns them (e.g. overlap turns waiting for a second analyst).
    """
    gave_up = {(str(d), int(t)): set() for d, t in skipped[["dialogue_id", "turn_index"]].itertuples(index=False)}
    for d, t, a in skipped[["dialogue_id", "turn_index", "analyst"]].itertuples(index=False):
        gave_up[(str(d), int(t))].add(str(a))
    keys = list(zip(queue["dialogue_id"].astype("str"), queue["turn_index"].astype("int64")))
    extra = set(also)
    mine, pool = [], []
    for i, key in enumerate(keys):
        owner = owners.get(key)
        skipped_by = gave_up.get(key, set())
        if analyst in skipped_by:
            continue
        if owner == analyst:
            mine.append(i)
        elif owner is None or owner in skipped_by or key in extra:
            pool.append(i)
    return queue.iloc[mine + pool]


def parse_analysts(text: str) -> tuple[str, ...]:
    """Names from a comma- or newline-separated list (each cleaned; blanks dropped)."""
    names = []
    for part in text.replace("\n", ",").split(","):
        try:
            names.append(clean_name(part))
        except ValueError:
            continue
    return tuple(names)


def owners_of(frame: pd.DataFrame, owners: pd.Series) -> dict[Key, str]:
    return dict(zip(zip(frame["dialogue_id"].astype("str"), frame["turn_index"].astype("int64")), owners))
