"""What the Triage page calls: the verdict store, the cached queue, verdicts, retraining and exports.

As in `fpi.ui.services`: caches and the few actions that change session state;
the work is in `fpi.review.store`, `fpi.review.triage`, `fpi.review.retrain` and `fpi.review.export`.
The queue is ranked once per (data, model, order, filters) and cached; after a
verdict the page takes the next unreviewed turn of the cached queue, so the
next item comes up at once.
"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import streamlit as st

from fpi.ui.text import CACHE_TTL
from fpi.review import triage
from fpi.config import Config
from fpi.display import label_name
from fpi.errors import NotLabelledError, StoreError
from fpi.data.write import export_bytes
from fpi.review.export import with_latest_verdicts
from fpi.model.estimator import FailurePointModel
from fpi.review.retrain import RetrainConfig, retrain_from_verdicts
from fpi.scoring.frame import ScoredTraces
from fpi.review.agreement import in_overlap, reviewed_for, training_verdicts
from fpi.review.assignment import SPLITS, Split, assign, my_share, owners_of
from fpi.review.audit import AuditResult, audit_verdicts
from fpi.review.store import VerdictStore, resolve_verdicts
from fpi.data.summary import dataset_fingerprint
from fpi.ui.services import models, team
from fpi.ui.services.verdicts import verdict_store
from fpi.ui.state import AppState, Keys, TriageProgress, Candidate, KeptScores

RETRAIN_CONFIG = RetrainConfig()
"""How the Triage page retrains (tests may swap in a quicker one)."""


@st.cache_data(show_spinner="Fingerprinting the traces…", ttl=CACHE_TTL, max_entries=8)
def _fingerprint(content_hash: str, columns: tuple[str, ...], _data: ScoredTraces) -> str:
    return dataset_fingerprint(_data.raw)


def fingerprint(data: ScoredTraces) -> str:
    """The dataset fingerprint verdicts on these traces are filed under."""
    return _fingerprint(data.content_hash, tuple(str(c) for c in data.frame.columns), data)


def progress(state: AppState, store: VerdictStore, dataset: str, analyst: str | None = None) -> TriageProgress:
    """This session's view of which turns are done; read from the store once per dataset and analyst.

    For an analyst, a turn someone else judged stays open while it is an overlap turn waiting for its
    second, blind verdict (`fpi.review.agreement`).
    """
    if state.triage.dataset != dataset or state.triage.analyst != analyst:
        reviewed = (store.reviewed(dataset=dataset) if analyst is None else
                    reviewed_for(analyst, store.judged(dataset=dataset), share=Config.from_env().overlap_share))
        state.triage = TriageProgress(dataset=dataset, analyst=analyst, reviewed=reviewed)
    return state.triage


def refresh(state: AppState) -> None:
    """Callback: read the reviewed turns again (to see other analysts' verdicts)."""
    state.triage = TriageProgress()


@st.cache_data(show_spinner="Ranking the turns…", ttl=CACHE_TTL, max_entries=16)
def queue(data_key: str, order: str, label: str | None, cohort: tuple[tuple[str, str], ...] | None,
          _frame: pd.DataFrame) -> pd.DataFrame:
    return triage.triage_queue(_frame, order=order, label=label, cohort=dict(cohort) if cohort else None)


def record_verdict(state: AppState, item: dict[str, Any], label: str, analyst: str) -> None:
    """Callback of a label button: save the verdict (with the note typed), then the next turn shows."""
    key = (str(item["dialogue_id"]), int(item["turn_index"]))
    note = st.session_state.get(Keys.TRIAGE_NOTE)
    try:
        verdict_store().record(
            dataset=str(item["dataset"]), dialogue_id=key[0], turn_index=key[1], label=label, analyst=analyst,
            note=note if isinstance(note, str) else None, predicted_label=str(item["predicted"]),
            model_version=str(item["model_version"]),
        )
    except StoreError as exc:
        state.triage.error = str(exc)
        return
    state.triage.reviewed.add(key)
    state.triage.this_session.add(key)
    state.triage.skipped.discard(key)
    st.session_state[Keys.TRIAGE_NOTE] = ""
    state.notice = f"Saved: {key[0]} turn {key[1]} is {label_name(label)}."


def skip(state: AppState, item: dict[str, Any], analyst: str | None = None) -> None:
    """Callback of "Skip": leave this turn for later in this session, and give it back to the team's pool."""
    key = (str(item["dialogue_id"]), int(item["turn_index"]))
    state.triage.skipped.add(key)
    if analyst:
        try:
            verdict_store().skip(dataset=str(item["dataset"]), dialogue_id=key[0], turn_index=key[1], analyst=analyst)
        except StoreError as exc:
            state.triage.error = str(exc)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=8)
def _owners(data_key: str, analysts: tuple[str, ...], by: str, column: str | None,
            _frame: pd.DataFrame) -> dict[tuple[str, int], str]:
    return owners_of(_frame, assign(_frame, Split(analysts=analysts, by=by, column=column)))


def my_queue(queue: pd.DataFrame, data: ScoredTraces, dataset: str, analyst: str) -> tuple[pd.DataFrame, str | None]:
    """The analyst's share of `queue` when the team has split this dataset (else the queue as it is), and a
    sentence saying so."""
    store = verdict_store()
    split = store.split(dataset=dataset)
    if split is None or analyst not in split["analysts"]:
        return queue, None
    try:
        owners = _owners(data.key, tuple(split["analysts"]), split["by"], split["column"], data.frame)
    except ValueError:
        return queue, None  # a split by a column these traces lack: everyone sees everything
    overlap = queue[in_overlap(queue["dialogue_id"], queue["turn_index"], share=Config.from_env().overlap_share)]
    also = set(zip(overlap["dialogue_id"].astype("str"), overlap["turn_index"].astype("int64")))
    mine = my_share(queue, owners, analyst, skipped=store.skips(dataset=dataset), also=also)
    how = SPLITS[split["by"]].lower() + (f" ({split['column']})" if split["column"] else "")
    return mine, (f"Your share of the team's split ({how}, among {', '.join(split['analysts'])}), then turns "
                  "others skipped and overlap turns for a second opinion.")


def history(dataset: str, dialogue_id: str, turn_index: int) -> pd.DataFrame:
    return verdict_store().history(dialogue_id, turn_index, dataset=dataset)


def _base_model(model: FailurePointModel) -> FailurePointModel:
    """The model `model` was continued from, if it was retrained from verdicts and is still there."""
    base_version = (model.meta.get("retraining") or {}).get("base_model")
    entry = models.registry().locate(str(base_version)) if base_version else None
    return FailurePointModel.load(entry.path) if entry is not None else model


def retrain(state: AppState, model: FailurePointModel, data: ScoredTraces, dataset: str, *,
            other_uploads: bool) -> str | None:
    """Train a candidate from the data's labels plus verdicts, save it, and keep its comparison in the state.

    Returns why there is no candidate when cross-validation prefers the model as it is (else None).
    Raises `NotLabelledError` (too few labels) and other `FpiError`s for the page to show.
    """
    who = team.require(state, "train")
    store = verdict_store()
    # Adjudicated labels win; turns the analysts disagree on and nobody adjudicated teach nothing.
    verdicts, held = training_verdicts(store.all(dataset=None if other_uploads else dataset), store.adjudications())
    if other_uploads:
        verdicts = resolve_verdicts(verdicts, prefer_dataset=dataset)
    audit = audit_before_retraining(data, verdicts, model, dataset=None if other_uploads else dataset)
    if audit is not None:
        verdicts = audit.kept(verdicts)
    why_held = (f" {len(held):,} turns the analysts disagree on wait for adjudication (Team page)."
                if len(held) else "")
    base = _base_model(model)
    with st.spinner("Choosing how to adapt (cross-validation on the labelled turns) and training a candidate…"):
        result = retrain_from_verdicts(data.raw, verdicts, active=model, base=base, config=RETRAIN_CONFIG)
        if result.strategy == "keep":
            state.candidate = None
            return (f"No candidate: on {result.heldout_turns:,} labelled turns, cross-validated by dialogue, "
                            f"no way of retraining beat the model {base.version} "
                            f"(macro-F1 {result.strategy_scores.get('keep', float('nan')):.3f}). "
                            "Give more verdicts, then try again. "
                            + (audit.summary() + "." if audit is not None else "") + why_held)
        entry = models.registry().save_candidate(result.candidate)
        team.done(who, "train", entry.version)
    state.candidate = Candidate(
        version=entry.version, comparison=result.comparison, heldout_turns=result.heldout_turns,
        heldout_verdicts=result.heldout_verdicts, training_turns=result.training_turns,
        verdict_turns=result.verdict_turns, strategy=result.strategy, base_version=base.version,
        audit=audit.summary() if audit is not None else None, held_back=len(held),
        upload_scores=None if result.upload_proba is None else KeptScores(entry.version, data.content_hash,
                                                                          result.upload_proba),
    )
    return None


def audit_before_retraining(data: ScoredTraces, verdicts: pd.DataFrame, model: FailurePointModel, *,
                            dataset: str | None) -> AuditResult | None:
    """The audit of `verdicts` against the data (None when there are too few labels to run it)."""
    adjudicated = verdict_store().adjudications(dataset=dataset)
    confirmed = zip(adjudicated["dialogue_id"].astype("str"), adjudicated["turn_index"].astype("int64"))
    try:
        with st.spinner("Auditing the verdicts against the data…"):
            return audit_verdicts(data.raw, verdicts, model=model, confirmed=list(confirmed))
    except NotLabelledError:
        return None


def export_maker(data: ScoredTraces, dataset: str, fmt: str) -> Callable[[], bytes]:
    """A no-argument function building the export (run by the download button when clicked)."""
    store = verdict_store()
    frame = data.frame

    def make() -> bytes:
        return export_bytes(with_latest_verdicts(frame, store.latest(dataset=dataset)), fmt=fmt)

    return make


__all__ = [
    "RETRAIN_CONFIG", "audit_before_retraining", "export_maker", "fingerprint", "history", "my_queue",
    "progress", "queue", "record_verdict", "refresh", "retrain", "skip", "verdict_store",
]
