"""What the Team page calls: agreement, disagreements and adjudication, cached by the store's size.

The work is in `fpi.review.agreement`; here only reads of the shared store and the cache.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fpi.model.estimator import FailurePointModel
from fpi.review.agreement import Agreement, agreement, training_verdicts
from fpi.review.audit import AuditResult
from fpi.ui.state import AppState
from fpi.ui.services import triage as ts
from fpi.ui.text import CACHE_TTL


@st.cache_data(show_spinner="Comparing the analysts…", ttl=CACHE_TTL, max_entries=8)
def _agreement(dataset: str | None, verdicts: int, adjudications: int, _all: pd.DataFrame,
               _adjudicated: pd.DataFrame) -> Agreement:
    return agreement(_all, _adjudicated)


def team_agreement(dataset: str | None) -> Agreement:
    """Agreement on one dataset's verdicts (None: all); recomputed when a verdict or adjudication is added."""
    store = ts.verdict_store()
    verdicts = store.all(dataset=dataset)
    adjudicated = store.adjudications(dataset=dataset)
    return _agreement(dataset, len(verdicts), len(adjudicated), verdicts, adjudicated)


def adjudicate(row: dict[str, object], label: str, analyst: str, note: str | None) -> None:
    ts.verdict_store().adjudicate(dataset=str(row["dataset_fingerprint"]), dialogue_id=str(row["dialogue_id"]),
                                  turn_index=int(row["turn_index"]), label=label, analyst=analyst, note=note)


def audit(state: AppState, model: FailurePointModel) -> AuditResult | None:
    """Audit the loaded traces' verdicts as retraining would take them (None: too few labels to audit)."""
    assert state.data is not None
    dataset = ts.fingerprint(state.data)
    verdicts, _held = training_verdicts(ts.verdict_store().all(dataset=dataset),
                                        ts.verdict_store().adjudications(dataset=dataset))
    return ts.audit_before_retraining(state.data, verdicts, model, dataset=dataset)
