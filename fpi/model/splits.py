"""Splits grouped by dialogue: the turns of one dialogue never sit on both sides.

Context features read the neighbouring turns, so a split that cut a dialogue in
two would leak the held-out turns' evidence into training.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def dialogue_bucket(dialogue_ids: pd.Series, *, seed: int) -> np.ndarray:
    """A stable number in [0, 1) per dialogue id, independent of row order and of other rows."""
    salt = f"{seed}:".encode()
    inverse, unique = pd.factorize(dialogue_ids.astype(str).to_numpy(), use_na_sentinel=False)  # hashed, not sorted
    values = np.array(
        [int.from_bytes(hashlib.blake2b(salt + u.encode(), digest_size=8).digest(), "big") for u in unique],
        dtype=np.uint64,
    )
    return (values / np.float64(2**64))[inverse]


def grouped_split(
    frame: pd.DataFrame, *, fractions: tuple[float, ...], seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Boolean masks, one per fraction (summing to 1), that never split a dialogue.

    Assignment depends only on the dialogue id and the seed, so adding other
    dialogues to the frame never moves a dialogue to another side.
    """
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    bucket = dialogue_bucket(frame["dialogue_id"], seed=seed)
    edges = np.concatenate([[0.0], np.cumsum(fractions)])
    edges[-1] = 1.0 + 1e-12
    return tuple((bucket >= lo) & (bucket < hi) for lo, hi in zip(edges[:-1], edges[1:]))
