"""The Model page's services, and the model every page scores with: load, check, train, activate, roll back.

Caching, as Streamlit recommends: `st.cache_resource` for models (shared, never mutated),
`st.cache_data` for tables (keyed by the upload's content hash and the model version).
The work is in `fpi.model.registry`, `fpi.model.explain`, `fpi.model.report` and `fpi.model.trust`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from fpi.model import trust
from fpi.errors import ModelError
from fpi.model.explain import TurnExplanation, beeswarm_data, global_importance
from fpi.model.estimator import FailurePointModel
from fpi.model.persistence import load_problem
from fpi.model.training import TrainConfig
from fpi.model.report import compare_models, current_data_report, heldout_mask
from fpi.model.registry import Registry, read_meta
from fpi.scoring.frame import ScoredTraces
from fpi.ui.services import team
from fpi.ui.text import CACHE_TTL
from fpi.review.self_training import self_train
from fpi.ui.state import AppState, Candidate, KeptScores
from fpi.data.schema import PREDICTED_COLUMN


TRAIN_CONFIG = TrainConfig()
"""How the Model page trains a candidate (the package defaults; tests use a quicker one)."""


def registry() -> Registry:
    return Registry.from_config()


@st.cache_resource(show_spinner="Loading the model…", ttl=CACHE_TTL, max_entries=4)
def _load_model(path: str, sha256: str) -> FailurePointModel:
    """One loaded model per (directory, model sha): a retrained directory loads afresh."""
    return FailurePointModel.load(path)


@st.cache_data(show_spinner="Checking the model…", ttl=CACHE_TTL, max_entries=16)
def _load_problem(path: str, sha256: str) -> str | None:
    """Why the model cannot be loaded, found in a child process (a crafted model.txt can crash
    LightGBM's parser: it must cost a child, not the server); once per (directory, model sha)."""
    return load_problem(path)


def active_model() -> FailurePointModel:
    """The registry's active model (raises `ModelError` with the reason when it can't be loaded).

    Its trees are compiled in a background thread the first time it is active (after
    activation, or at start), once per model: scoring uses `Booster.predict` until then.
    """
    path = registry().active_path()
    sha = str(read_meta(path).get("model_sha256", ""))
    problem = _load_problem(str(path), sha)
    if problem is not None:
        raise ModelError(problem)
    model = _load_model(str(path), sha)
    model.compiled.build(background=True)  # a no-op once built, building, switched off or impossible
    return model


def explain(state: AppState, model: FailurePointModel, rows: list[int]) -> list[TurnExplanation]:
    """Explanations of the given rows, computed once per (model, data, turn) in this session."""
    assert state.data is not None
    return state.explanations.explain(model, state.data.features, rows, data_key=state.data.key,
                                      frame=state.data.frame)


@st.cache_data(show_spinner="Computing SHAP values on a sample…", ttl=CACHE_TTL, max_entries=8)
def importance(data_key: str, model_version: str, _model: FailurePointModel, _data: ScoredTraces) -> pd.DataFrame:
    predicted = _data.frame[PREDICTED_COLUMN].to_numpy(dtype=object)
    return global_importance(_model, _data.features, predicted=predicted, sample_size=2000)


@st.cache_data(show_spinner="Computing SHAP values on a sample…", ttl=CACHE_TTL, max_entries=32)
def beeswarm(data_key: str, model_version: str, label: str, _model: FailurePointModel, _data: ScoredTraces) -> pd.DataFrame:
    predicted = _data.frame[PREDICTED_COLUMN].to_numpy(dtype=object)
    return beeswarm_data(_model, _data.features, label=label, predicted=predicted, sample_size=1000)


@st.cache_data(show_spinner="Evaluating on the labelled turns…", ttl=CACHE_TTL, max_entries=8)
def evaluation(data_key: str, model_version: str, _model: FailurePointModel, _data: ScoredTraces
               ) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    return current_data_report(_model, _data.frame)


@st.cache_data(show_spinner="Checking how far the labels can be trusted…", ttl=CACHE_TTL, max_entries=8)
def trust_report(data_key: str, model_version: str, _model: FailurePointModel, _data: ScoredTraces
                 ) -> trust.TrustReport:
    """`fpi.model.trust.assess` on the loaded data: F1 on its labels, or its shift from the training data."""
    return trust.assess(_model, _data.frame, _data.features)


def train_candidate(state: AppState) -> None:
    """Train on the loaded data's labelled turns with a progress bar, save it, compare it with the active model."""
    assert state.data is not None
    who = team.require(state, "train")
    frame = state.data.raw
    bar = st.progress(0.0, text="starting")
    model = FailurePointModel(config=TRAIN_CONFIG).fit(
        frame, progress=lambda message, done: bar.progress(min(1.0, max(0.0, done)), text=message))
    entry = registry().save_candidate(model)
    bar.progress(1.0, text=f"saved as {entry.version}")
    team.done(who, "train", entry.version)
    active = active_model()
    mask = heldout_mask(frame, model.config)
    comparison = compare_models({f"active ({active.version})": active, f"candidate ({entry.version})": model},
                                frame, mask=mask)
    state.candidate = Candidate(version=entry.version, comparison=comparison, heldout_turns=int(np.sum(mask)))


def self_train_candidate(state: AppState) -> None:
    """Self-train the active model on the loaded upload (no label read), save it, keep its summary."""
    assert state.data is not None
    who = team.require(state, "train")
    active = active_model()
    with st.spinner("Self-training the model on these traces (the model labels them, a student learns its "
                    "surest labels)…"):
        result = self_train(state.data.raw, active)
        entry = registry().save_candidate(result.candidate)
    team.done(who, "train", entry.version)
    state.candidate = Candidate(
        version=entry.version, comparison={}, heldout_turns=0, base_version=active.version,
        upload_scores=KeptScores(entry.version, state.data.content_hash, result.proba),
        label_shares=result.label_shares(), changed=result.changed,
    )


def activate(state: AppState, version: str) -> None:
    """Activate as the session's actor: only a maintainer may; logged either way (`fpi.review.roles`)."""
    team.activate(state, registry(), version)
    kept = state.candidate.upload_scores if state.candidate is not None else None
    state.activated_scores = kept if kept is not None and kept.model_version == version else None
    state.candidate = None


def rollback(state: AppState) -> str:
    version = team.rollback(state, registry())
    state.candidate = None
    return version
