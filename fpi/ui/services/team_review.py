"""What the Team page calls: agreement, disagreements and adjudication, cached by the store's size.

The work is in `fpi.review.agreement`; here only reads of the shared store and the cache.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fpi.model.estimator import FailurePointModel
from fpi.review.agreement import Agreement, agreement, training_verdicts
from fpi.review.assignment import Split, assign, assignment_progress
from fpi.review.audit import AuditResult
from fpi.scoring.frame import ScoredTraces
from fpi.ui.state import AppState
from fpi.ui.services import triage as ts
from fpi.ui.services.verdicts import verdict_store
from fpi.ui.text import CACHE_TTL


@st.cache_data(show_spinner="Comparing the analysts…", ttl=CACHE_TTL, max_entries=8)
def _agreement(dataset: str | None, verdicts: int, adjudications: int, _all: pd.DataFrame,
               _adjudicated: pd.DataFrame) -> Agreement:
    return agreement(_all, _adjudicated)


def team_agreement(dataset: str | None) -> Agreement:
    """Agreement on one dataset's verdicts (None: all); recomputed when a verdict or adjudication is added."""
    store = verdict_store()
    verdicts = store.all(dataset=dataset)
    adjudicated = store.adjudications(dataset=dataset)
    return _agreement(dataset, len(verdicts), len(adjudicated), verdicts, adjudicated)


def adjudicate(row: dict[str, object], label: str, analyst: str, note: str | None) -> None:
    verdict_store().adjudicate(dataset=str(row["dataset_fingerprint"]), dialogue_id=str(row["dialogue_id"]),
                                  turn_index=int(row["turn_index"]), label=label, analyst=analyst, note=note)


def audit(state: AppState, model: FailurePointModel) -> AuditResult | None:
    """Audit the loaded traces' verdicts as retraining would take them (None: too few labels to audit)."""
    assert state.data is not None
    dataset = ts.fingerprint(state.data)
    verdicts, _held = training_verdicts(verdict_store().all(dataset=dataset),
                                        verdict_store().adjudications(dataset=dataset))
    return ts.audit_before_retraining(state.data, verdicts, model, dataset=dataset)


def assignment(data: ScoredTraces, dataset: str) -> tuple[dict | None, pd.DataFrame | None]:
    """The dataset's split and each analyst's progress on it (None, None when it has no split)."""
    store = verdict_store()
    split = store.split(dataset=dataset)
    if split is None:
        return None, None
    try:
        owners = assign(data.frame, Split(analysts=tuple(split["analysts"]), by=split["by"], column=split["column"]))
    except ValueError:
        return split, None
    return split, assignment_progress(data.frame, owners, store.judged(dataset=dataset), store.skips(dataset=dataset))


def save_split(dataset: str, analysts: tuple[str, ...], by: str, column: str | None, created_by: str) -> None:
    """Check the split (names, column) and store it; raises `ValueError` or `StoreError` saying what is wrong."""
    checked = Split(analysts=analysts, by=by, column=column if by == "cohort" else None)
    verdict_store().save_split(dataset=dataset, analysts=checked.analysts, by=checked.by, column=checked.column,
                                  created_by=created_by)
