"""Measures of a turn's texts that mean the same in any pipeline: word counts and fuzzy similarity.

Vectorised in Arrow and rapidfuzz: they run on every turn of every upload.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import process

__all__ = ["SIMILARITY_MAX_CHARS", "entity_coverages", "pairwise_similarity", "pattern_matches", "word_counts"]

SIMILARITY_MAX_CHARS = 500
"""Texts are compared (rephrase, entity in request) on their first this many characters: the
fuzzy scores cost the square of the length, and spoken requests are far shorter."""


def entity_coverages(entities: list[str], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per turn: (share of the entity's words the request has, share of the request's words in the entity).

    A wrong catalog item often shares one word with the request ("shadow" ->
    "velvet shadow"); fuzzy similarity calls that a match, word coverage does not.
    NaN where either has no words. Computed once per distinct (entity, request) pair: requests
    and catalog entities repeat, so there are far fewer pairs than turns.
    """
    entity_codes, entity_values = pd.factorize(np.asarray(entities, dtype=object))
    text_codes, text_values = pd.factorize(np.asarray(texts, dtype=object))
    width = max(1, len(text_values))
    pairs, inverse = np.unique(entity_codes.astype(np.int64) * width + text_codes, return_inverse=True)
    heard = np.full(len(pairs), np.nan)
    covers = np.full(len(pairs), np.nan)
    for k, pair in enumerate(pairs.tolist()):
        entity, text = entity_values[pair // width], text_values[pair % width]
        said, resolved = set(text.lower().split()), set(entity.lower().split())
        if said and resolved:  # a blank request or entity ("  ") has no words to cover: NaN, as an empty one
            common = len(said & resolved)
            heard[k] = common / len(resolved)
            covers[k] = common / len(said)
    return heard[inverse], covers[inverse]


def pairwise_similarity(left: list[str], right: list[str], scorer: Any) -> np.ndarray:
    """Elementwise similarity in [0, 1]; NaN when either side is empty.

    Each text is cut to `SIMILARITY_MAX_CHARS` first: fuzzy matching costs the product of
    the two lengths (two 6,000-character texts took 1 s with `partial_ratio`, 40k words
    13 s), and a request or entity longer than that is not speech anyway.
    """
    if not left:
        return np.zeros(0)
    left, right = _capped(left), _capped(right)
    scores = process.cpdist(left, right, scorer=scorer, workers=-1, dtype=np.float32).astype(float) / 100.0
    empty = (_lengths(left) == 0) | (_lengths(right) == 0)
    scores[empty] = np.nan
    return scores


def _capped(texts: list[str]) -> list[str]:
    if not texts or max(map(len, texts)) <= SIMILARITY_MAX_CHARS:  # the usual case, without a Python loop
        return texts
    return [t if len(t) <= SIMILARITY_MAX_CHARS else t[:SIMILARITY_MAX_CHARS] for t in texts]


def _lengths(texts: list[str]) -> np.ndarray:
    return pc.utf8_length(pa.array(texts, type=pa.string())).to_numpy(zero_copy_only=False)


def word_counts(texts: list[str]) -> np.ndarray:
    """Whitespace-separated words per text, vectorised in Arrow."""
    array = pc.utf8_trim_whitespace(pa.array(texts, type=pa.string()))
    counts = pc.list_value_length(pc.utf8_split_whitespace(array)).to_numpy(zero_copy_only=False).astype(float)
    counts[pc.utf8_length(array).to_numpy(zero_copy_only=False) == 0] = 0.0  # Arrow splits "" into [""]
    return counts


def pattern_matches(texts: list[str], pattern: str) -> np.ndarray:
    """1.0 where the text contains a match of the regular expression (case ignored), else 0.0."""
    found = pc.match_substring_regex(pa.array(texts, type=pa.string()), pattern, ignore_case=True)
    return found.to_numpy(zero_copy_only=False).astype(float)
