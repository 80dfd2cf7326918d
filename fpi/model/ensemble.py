"""Members trained on independent groups of the training traces, averaged into one booster.

A model trained on one simulated fleet of pipelines also learns that fleet's
quirks; models of independently drawn fleets disagree on the quirks and agree
on what carries over, so their average transfers better to a pipeline none of
them saw. Averaging raw scores is exact inside LightGBM's own format: the
members' trees side by side, every leaf scaled by 1/K. The result is one plain
booster, so saving, SHAP and compiled scoring treat it like any other.
"""
from __future__ import annotations

import re
from typing import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd

from fpi.errors import ModelError

__all__ = ["average_boosters", "ensemble_out_of_fold", "member_codes"]

_SCALED = ("leaf_value=", "internal_value=")


def member_codes(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    """Which member trains each turn: 0, 1, ... by the sorted values of `column` (all 0 without one)."""
    if column is None:
        return np.zeros(len(frame), dtype=int)
    if column not in frame.columns:
        raise ModelError(f"the traces have no column {column!r} to split the training into members")
    missing = np.flatnonzero(frame[column].isna().to_numpy())
    if len(missing):
        rows = ", ".join(str(r) for r in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise ModelError(f"column {column!r} is empty on {len(missing):,} rows ({rows}): every turn needs a member")
    return pd.factorize(frame[column].astype(str), sort=True)[0].astype(int)


def average_boosters(boosters: Sequence[lgb.Booster]) -> lgb.Booster:
    """One booster whose raw scores are the mean of the members' (same features, same classes)."""
    if not boosters:
        raise ValueError("no boosters to average")
    if len(boosters) == 1:
        return boosters[0]
    texts = [b.model_to_string() for b in boosters]
    headers, trees = [], []
    for text in texts:
        head, _, rest = text.partition("\nTree=")
        body, _, _ = ("Tree=" + rest).partition("end of trees")
        headers.append(head)
        trees.extend(block for block in re.split(r"\n\n+(?=Tree=)", body.strip()) if block)
    shape = [_header_value(h, key) for h in headers for key in ("num_class", "feature_names")]
    if len(set(shape[0::2])) != 1 or len(set(shape[1::2])) != 1:
        raise ValueError("boosters to average must share their classes and features")
    factor = 1.0 / len(boosters)
    blocks = [_renumbered(_scaled(block, factor), i) for i, block in enumerate(trees)]
    # Without tree_sizes LightGBM finds the trees by their `Tree=` lines; it writes fresh sizes when saved.
    header = "\n".join(line for line in headers[0].splitlines() if not line.startswith("tree_sizes="))
    footer = texts[0][texts[0].index("end of trees"):]
    merged = lgb.Booster(model_str=header + "\n\n" + "\n\n".join(blocks) + "\n\n" + footer)
    return lgb.Booster(model_str=merged.model_to_string())


def ensemble_out_of_fold(boosters: Sequence[lgb.Booster], member_oof: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Raw scores of the average that no part of it saw in training: a row held out by its own
    member keeps that member's out-of-fold score beside the other members' (which never trained on
    it). Rows without an out-of-fold score stay NaN."""
    out = np.full_like(member_oof[0], np.nan)
    for k, oof in enumerate(member_oof):
        rows = ~np.isnan(oof).any(axis=1)
        if not rows.any():
            continue
        total = oof[rows].copy()
        for j, booster in enumerate(boosters):
            if j != k:
                total += booster.predict(x[rows], raw_score=True)
        out[rows] = total / len(boosters)
    return out


def _header_value(header: str, key: str) -> str:
    match = re.search(rf"^{key}=(.*)$", header, flags=re.MULTILINE)
    return match.group(1) if match else ""


def _scaled(block: str, factor: float) -> str:
    lines = block.splitlines()
    for i, line in enumerate(lines):
        for key in _SCALED:
            if line.startswith(key):
                values = line[len(key):].split()
                lines[i] = key + " ".join(repr(float(v) * factor) for v in values)
    return "\n".join(lines)


def _renumbered(block: str, index: int) -> str:
    return re.sub(r"^Tree=\d+", f"Tree={index}", block, count=1)
