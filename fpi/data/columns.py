"""Column names: matching a file's headers to the contract's, and hinting at near misses."""
from __future__ import annotations

import difflib
import re

import pandas as pd

from fpi.data.schema import (
    COLUMNS_BY_NAME, is_stage_signal,
)


_ABBREVIATIONS = {
    "conf": "confidence", "confid": "confidence", "cnf": "confidence", "score": "confidence",
    "prob": "confidence", "idx": "index", "dialog": "dialogue", "dlg": "dialogue",
    "session": "dialogue", "conversation": "dialogue", "ts": "timestamp", "time": "timestamp",
    "ww": "wake", "vt": "wake", "wakeword": "wake", "res": "result",
}


def normalise_column_name(name: str) -> str:
    """`name` in a canonical spelling: lower case, '_' between words, abbreviations spelled out.

    Two column names with the same canonical spelling are near misses of each other.
    """
    tokens = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_").split("_")
    return "_".join(_ABBREVIATIONS.get(t, t) for t in tokens)


def near_columns(name: str, candidates: list[str]) -> list[str]:
    """Candidates that look like `name` up to case, spacing, '-' vs '_' and common abbreviations."""
    target = normalise_column_name(name)
    exact = [c for c in candidates if normalise_column_name(c) == target]
    if exact:
        return exact
    by_normal = {normalise_column_name(c): c for c in candidates}
    return [by_normal[m] for m in difflib.get_close_matches(target, list(by_normal), n=2, cutoff=0.8)]


def missing_hint(name: str, extras: list[str]) -> str:
    near = near_columns(name, [e for e in extras if e not in COLUMNS_BY_NAME])
    if near:
        return (f"Did you mean '{near[0]}'? Map it with --map '{near[0]}={name}' "
                f"(column_map={{'{near[0]}': '{name}'}})")
    return f"Add the column, or map the column that holds it with --map SOURCE={name} (column_map)"


def missing_web_hint(name: str, extras: list[str]) -> str:
    """The same advice for someone uploading in the app, where the mapping form replaces `--map`."""
    near = near_columns(name, [e for e in extras if e not in COLUMNS_BY_NAME])
    if near:
        return (f"The file has a column '{near[0]}' that looks like it: choose it for {name} in the "
                "'Map your columns' form below and load the file again")
    spare = [e for e in extras if e not in COLUMNS_BY_NAME]
    add = f"Add a '{name}' column to the file (its values may be empty where the stage was not logged)"
    if not spare:
        return add
    return f"{add}, or, if another column holds these values, choose it in the 'Map your columns' form below"


def is_number_dtype(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def text_values(values: pd.Series) -> list[str]:
    """A text column as Python strings, "" for a gap: what fuzzy matching reads. Text as `load_traces`
    gives it (a string dtype) only needs its gaps filled."""
    if isinstance(values.dtype, pd.StringDtype):
        return values.fillna("").tolist()
    return values.astype(object).where(values.notna(), "").astype(str).tolist()


def stage_signal_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric extra columns named after a stage (e.g. asr_nbest_margin): later model features."""
    return [str(c) for c in frame.columns if is_stage_signal(str(c)) and is_number_dtype(frame[c])]
