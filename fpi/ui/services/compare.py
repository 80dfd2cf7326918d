"""Caches around `fpi.analysis.compare` for the Compare page: other models' labels, stored datasets, comparisons.

Keyed by the data's key (content hash + model version), model versions and
shas, dataset fingerprints and the settings, never by a frame itself; the
statistics are in `fpi.analysis.compare`, the scoring in `fpi.model.estimator`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import streamlit as st

from fpi.analysis import compare
from fpi.data.schema import PREDICTED_COLUMN
from fpi.data.datasets import DatasetError, StoredDataset
from fpi.data.traces import load_traces
from fpi.errors import FpiError, ModelError
from fpi.model.glossary import display_name
from fpi.model.estimator import FailurePointModel
from fpi.model.persistence import load_problem
from fpi.model.registry import ModelEntry
from fpi.scoring.frame import ScoredTraces
from fpi.ui.services import loading, models
from fpi.ui.text import CACHE_TTL

BEFORE, AFTER = "_before", "_after"
"""Columns holding the two models' labels in a paired comparison's turns."""


@dataclass(frozen=True)
class Sides:
    """The turns a comparison was made on, for listing them: only turns of the loaded traces open in the drill-down.

    `paired`: the loaded turns with both models' labels (BEFORE, AFTER). `before`/`after`: for two sets of
    turns, the part of the loaded traces on that side, or None when that side is another dataset.
    """

    paired: pd.DataFrame | None = None
    before: pd.DataFrame | None = None
    after: pd.DataFrame | None = None


def model_entries() -> list[ModelEntry]:
    """Every model in the registry: the shipped default first, then trained ones, newest first."""
    return models.registry().versions()


@st.cache_data(show_spinner="Checking the model…", ttl=CACHE_TTL, max_entries=8)
def _load_problem(path: str, sha256: str) -> str | None:
    return load_problem(path)


@st.cache_resource(show_spinner="Loading the model…", ttl=CACHE_TTL, max_entries=2)
def _load_model(path: str, sha256: str) -> FailurePointModel:
    return FailurePointModel.load(path)


def load_model(entry: ModelEntry) -> FailurePointModel:
    """A registry model, checked in a child process first (as the active model is); raises `ModelError`."""
    problem = _load_problem(str(entry.path), entry.sha256)
    if problem is not None:
        raise ModelError(f"model {entry.version} cannot be loaded: {problem}")
    return _load_model(str(entry.path), entry.sha256)


@st.cache_data(show_spinner="Scoring the traces with the other model…", ttl=CACHE_TTL, max_entries=4)
def _labels(data_key: str, sha256: str, _raw: pd.DataFrame, _model: FailurePointModel) -> np.ndarray:
    return _model.score(_raw)[PREDICTED_COLUMN].to_numpy(dtype=object)


def labels_by(data: ScoredTraces, entry: ModelEntry) -> np.ndarray:
    """Each loaded turn's failure point by `entry`'s model (the loaded predictions when it scored them)."""
    if entry.sha256 and entry.sha256.startswith(data.model_version):
        return data.frame[PREDICTED_COLUMN].to_numpy(dtype=object)
    return _labels(data.key, entry.sha256, data.raw, load_model(entry))


def two_models(data: ScoredTraces, first: ModelEntry, second: ModelEntry, *, level: float,
               min_support: int) -> tuple[compare.Comparison, Sides]:
    """Both models' labels of the loaded turns, compared turn by turn."""
    frame = data.frame.assign(**{BEFORE: labels_by(data, first), AFTER: labels_by(data, second)})
    names = (f"model {first.version}", f"model {second.version}")
    result = _paired(data.key, first.sha256, second.sha256, names, level, min_support, frame)
    return result, Sides(paired=frame)


@st.cache_data(show_spinner="Comparing the two models…", ttl=CACHE_TTL, max_entries=8)
def _paired(data_key: str, first: str, second: str, names: tuple[str, str], level: float, min_support: int,
            _frame: pd.DataFrame) -> compare.Comparison:
    return compare.compare_paired(_frame, BEFORE, AFTER, names=names, level=level, min_support=min_support)


def split_at(data: ScoredTraces, day: date, *, label_column: str, level: float,
             min_support: int) -> tuple[compare.Comparison, Sides]:
    """The loaded turns before `day` (00:00 UTC) against those from it on."""
    before, after = compare.split_frame(data.frame, at=pd.Timestamp(day))
    names = (f"before {day:%Y-%m-%d}", f"from {day:%Y-%m-%d}")
    result = _unpaired(data.key, ("at", str(day)), names, label_column, level, min_support, before, after)
    return result, Sides(before=before, after=after)


def split_by(data: ScoredTraces, column: str, before_value: str, after_value: str, *, label_column: str,
             level: float, min_support: int) -> tuple[compare.Comparison, Sides]:
    """The loaded turns with `column` = `before_value` against those with `after_value` (e.g. app versions)."""
    before, after = compare.split_frame(data.frame, column=column, before_value=before_value,
                                        after_value=after_value)
    names = (f"{display_name(column)} = {before_value}", f"{display_name(column)} = {after_value}")
    result = _unpaired(data.key, ("by", column, before_value, after_value), names, label_column, level, min_support,
                       before, after)
    return result, Sides(before=before, after=after)


@st.cache_data(show_spinner="Comparing…", ttl=CACHE_TTL, max_entries=16)
def _unpaired(key: str, how: tuple[str, ...], names: tuple[str, str], label_column: str, level: float,
              min_support: int, _before: pd.DataFrame, _after: pd.DataFrame) -> compare.Comparison:
    return compare.compare_frames(_before, _after, label_column=label_column, names=names, level=level,
                                  min_support=min_support)


# ---------------------------------------------------------------- stored datasets

LOADED = "loaded"
"""Stands for the loaded traces where a stored dataset's fingerprint would go."""


def stored_datasets() -> list[StoredDataset]:
    """Every dataset kept on this server (each upload is), most recently opened first."""
    try:
        return loading.dataset_store().list()
    except (DatasetError, OSError):
        return []


@st.cache_data(show_spinner="Reading and scoring the stored dataset…", ttl=CACHE_TTL, max_entries=2)
def _stored_frame(fingerprint: str, model_version: str, _model: FailurePointModel) -> tuple[str, pd.DataFrame]:
    stored, data = loading.dataset_store().read(fingerprint)
    frame = load_traces(data, column_map=stored.column_map or None, name=stored.name)
    return stored.name, _model.score(frame)


def two_datasets(data: ScoredTraces, before: str, after: str, *, label_column: str, level: float,
                 min_support: int) -> tuple[compare.Comparison, Sides]:
    """Two sets of turns, each the loaded traces (`LOADED`) or a stored dataset (fingerprint), both scored by
    the active model."""
    if before == after:
        raise FpiError("pick two different datasets to compare")
    model = models.active_model()
    parts, names, keys = [], [], []
    for which in (before, after):
        if which == LOADED:
            parts.append(data.frame)
            names.append(f"{data.source} (loaded)")
            keys.append(data.key)
        else:
            name, frame = _stored_frame(which, model.version, model)
            parts.append(frame)
            names.append(name)
            keys.append(f"{which[:16]}-{model.version}")
    if names[0] == names[1]:
        names = [f"{names[0]} (before)", f"{names[1]} (after)"]
    result = _unpaired("|".join(keys), ("datasets",), (names[0], names[1]), label_column, level, min_support, *parts)
    return result, Sides(before=data.frame if before == LOADED else None,
                         after=data.frame if after == LOADED else None)
