"""Model page: the active model's card, its accuracy on the loaded data, what drives it, and retraining."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fpi.ui import model_charts
from fpi.errors import FpiError
from fpi.model.training import MIN_LABELLED_TURNS
from fpi.model.report import advise_candidate, display_names, metrics_table, model_card, per_class_table
from fpi.model.registry import DEFAULT
from fpi.review.adapt import strategy_words
from fpi.display import format_time, labels_for_display, times_for_display
from fpi.data.schema import LABELS
from fpi.ui import components, identity
from fpi.ui.services import models
from fpi.ui.services import team
from fpi.ui.state import AppState, Keys

NAMES = components.LABEL_NAMES
PERCENT = st.column_config.NumberColumn(format="%.3f")


def render() -> None:
    state, model = components.page_setup()
    st.title("Model")
    registry = models.registry()
    if model is None:
        st.info("Roll back or activate another version below (the configured default is `default`). "
                "Or train a model with `fpi train TRACES -o models/mine` and set FPI_MODEL to it.")
        _registry(state, registry)  # always offered: the way out of an unloadable active model
        _changes(state)
        return
    _card(model, registry.active_version())
    _registry(state, registry)
    _changes(state)
    if state.data is None:
        components.no_data(state, what="model evaluation")
        return
    labelled = state.data.summary.labelled
    if labelled == 0:
        st.info("The loaded traces have no labels (failure_point is empty), so the model can't be scored "
                "against people here. Load labelled traces to see its accuracy, or the labelled sample.")
    else:
        _current_data(state, model)
    _global_shap(state, model)
    _training(state, labelled)


def _card(model, active_version: str) -> None:
    card = model_card(model.meta, version=model.version)
    st.subheader("Active model")
    cols = st.columns([1.5, 1, 1, 1])  # a 12-character version needs the room
    quiet = dict(delta_color="off", delta_arrow="off", border=True)
    cols[0].metric("Version", card.version, border=True)
    trained = format_time(card.trained_at)
    cols[1].metric("Trained", trained[:10], trained[11:] if len(trained) > 11 else None, **quiet)
    cols[2].metric("Training turns", f"{card.turns:,}" if card.turns else "—",
                   f"{card.labelled_turns:,} labelled" if card.labelled_turns else None, **quiet)
    cols[3].metric("Trees", f"{card.trees:,}" if card.trees else "—",
                   f"average of {card.members} models" if card.members > 1 else None, **quiet)
    where = "the configured default model" if active_version == DEFAULT else f"registry version {active_version}"
    st.caption(f"Loaded from {where}. Classes: " + ", ".join(NAMES.get(c, c) for c in card.classes) + ".")
    st.caption(f"Scoring: {components.md_escape(model.compiled.status.describe())}. Predictions are the same "
               "either way; compiled trees are several times faster.")
    st.caption("Training data fingerprint (sha256 of the training traces):")
    st.code(card.fingerprint or "unknown", language=None)
    if card.self_trained_from is not None:
        st.caption(f"Self-trained from model {card.self_trained_from} on {card.turns or 0:,} unlabelled turns (no "
                   "label read), so it has neither training labels nor held-out figures of its own. Its accuracy "
                   "shows below on labelled traces, or on the Triage page once there are verdicts.")
        return
    left, right = st.columns([2, 3], gap="medium")
    with left:
        st.caption("Labels it was trained on")
        st.dataframe(labels_for_display(card.label_counts, ["label"]), hide_index=True)
    with right:
        st.caption("Held-out dialogues at training time: the model beside its two baselines"
                   + (f". It averages {card.members} models, one per training fleet, so each fleet's held-out"
                      " dialogues are judged mostly by models that never saw that fleet." if card.members > 1 else ""))
        st.dataframe(card.heldout, hide_index=True,
                     column_config={"accuracy": PERCENT, "macro_f1": PERCENT, "ece": PERCENT})


def _registry(state: AppState, registry) -> None:
    with st.expander("Model versions"):
        entries = registry.versions()
        table = pd.DataFrame([
            {"version": e.version, "active": e.active, "trained": format_time(e.trained_at),
             "training turns": (e.meta.get("training_data") or {}).get("turns"),
             "held-out macro-F1": ((e.meta.get("metrics") or {}).get("systems", {}).get("model", {}) or {}).get("macro_f1"),
             "path": str(e.path)}
            for e in entries
        ])
        st.dataframe(table, hide_index=True, column_config={"held-out macro-F1": PERCENT})
        st.caption("Models trained here are saved under FPI_HOME/models/<version>; `default` is the shipped "
                   "(or FPI_MODEL) model and is never overwritten.")
        versions = [e.version for e in entries]
        left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
        chosen = left.selectbox("Version", versions, key=Keys.ACTIVATE_VERSION)
        if middle.button("Activate", width="stretch"):
            try:
                models.activate(state, chosen)
                st.rerun()
            except FpiError as exc:
                st.error(components.md_escape(exc))
        if right.button("Roll back", width="stretch", disabled=not registry.history(),
                        help="Re-activate the model that was active before this one."):
            try:
                models.rollback(state)
                st.rerun()
            except FpiError as exc:
                st.error(components.md_escape(exc))


def _changes(state: AppState) -> None:
    with st.expander("Who may change the model, and the log of changes"):
        identity.role_panel(state)
        try:
            log = team.model_log()
        except FpiError as exc:
            st.error(f"The model log can't be read: {components.md_escape(exc)}")
            return
        if log.empty:
            st.caption("No model has been trained, activated or rolled back here yet.")
            return
        shown = times_for_display(log[["created_at", "actor", "role", "action", "from_version", "to_version",
                                       "allowed", "detail"]], ["created_at"])
        st.dataframe(shown, hide_index=True, placeholder="—", column_config={
            "created_at": st.column_config.TextColumn("time (UTC)"),
            "actor": st.column_config.TextColumn("who"),
            "from_version": st.column_config.TextColumn("from"),
            "to_version": st.column_config.TextColumn("to"),
            "allowed": st.column_config.CheckboxColumn("done"),
        })
        st.caption("Every attempt to train, activate or roll back a model, newest first; refused attempts are "
                   "kept too (done unticked).")


def _current_data(state: AppState, model) -> None:
    data = state.data
    st.subheader("On the loaded traces")
    try:
        report, calibration = models.evaluation(data.key, model.version, model, data)
    except FpiError as exc:
        st.error(components.md_escape(exc))
        return
    st.caption(f"{data.summary.labelled:,} labelled turns of the loaded traces. If the model was trained on "
               "these traces, these numbers are optimistic: the held-out ones above are the honest ones.")
    st.dataframe(metrics_table(report), hide_index=True,
                 column_config={"accuracy": PERCENT, "macro_f1": PERCENT, "ece": PERCENT})
    left, right = st.columns(2, gap="medium")
    with left:
        st.plotly_chart(model_charts.confusion_figure(report["systems"]["model"]["confusion"],
                                                title="Confusion matrix (rows: human label)"), key="confusion")
        st.caption("Counts per (label, prediction); colour is the share of the row.")
    with right:
        st.plotly_chart(model_charts.metric_comparison_figure(display_names(report)), key="f1_compare")
        st.caption("F1 per failure point: the model against a LightGBM on raw confidences and a rule cascade.")
    left, right = st.columns(2, gap="medium")
    with left:
        st.caption("Precision, recall and F1 per label (model)")
        st.dataframe(labels_for_display(per_class_table(report["systems"]["model"]), ["label"]), hide_index=True,
                     column_config={"precision": PERCENT, "recall": PERCENT, "f1": PERCENT})
    with right:
        st.plotly_chart(model_charts.calibration_figure(calibration), key="calibration")
        st.caption("When a system says p = 0.8, is it right 80% of the time? On the diagonal is well calibrated.")


def _global_shap(state: AppState, model) -> None:
    data = state.data
    st.subheader("What drives each label")
    label = st.segmented_control("Label", list(LABELS), default="asr", key=Keys.SHAP_CLASS,
                                 format_func=lambda v: NAMES.get(v, v), required=True) or "asr"
    importance = models.importance(data.key, model.version, model, data)
    points = models.beeswarm(data.key, model.version, label, model, data)
    left, right = st.columns(2, gap="medium")
    with left:
        st.plotly_chart(model_charts.importance_figure(importance, label=label), key="importance")
        st.caption("Mean |SHAP| on a sample of up to 2,000 turns, every predicted label represented.")
    with right:
        st.plotly_chart(model_charts.beeswarm_figure(points, label=label), key="beeswarm")
        st.caption("One dot per turn (sample of 1,000): right pushes toward the label; red = high feature value.")
    top = importance[importance["class"] == label].nlargest(15, "mean_abs_shap")["feature"].tolist()
    rest = [f for f in dict.fromkeys(importance["feature"]) if f not in top]
    components.glossary_expander([*top, *rest], title="What the features mean (the chart's first, then every "
                                                      "other feature the model reads)")


def _training(state: AppState, labelled: int) -> None:
    st.subheader("Train a new model on the loaded traces")
    if labelled < MIN_LABELLED_TURNS:
        st.caption(f"Training needs at least {MIN_LABELLED_TURNS} labelled turns; the loaded traces have {labelled:,}.")
        return
    st.caption(f"Uses the {labelled:,} labelled turns; 15% of dialogues are held out for early stopping and 15% "
               "for the comparison below. The new model is saved but not used until you activate it.")
    if st.button("Train a model", type="primary"):
        try:
            models.train_candidate(state)
        except FpiError as exc:
            st.error(components.md_escape(exc))
    candidate = state.candidate
    if candidate is None or candidate.label_free:  # self-trained without labels: shown on the Overview
        return
    if candidate.from_verdicts:  # retrained on the Triage page: the one candidate of the session, shown here too
        st.caption(f"Candidate {candidate.version}, retrained from verdicts on the Triage page "
                   f"({strategy_words(candidate.strategy)}), "
                   f"beside the active model, on the same {candidate.heldout_turns:,} held-out turns:")
        held_out = "labelled turns, each predicted by a fold model that never saw its dialogue"
    else:
        st.caption(f"Candidate {candidate.version} beside the active model, on the same "
                   f"{candidate.heldout_turns:,} held-out labelled turns:")
        held_out = "held-out labelled turns (dialogues the candidate never saw)"
    st.dataframe(metrics_table(candidate.comparison), hide_index=True,
                 column_config={"accuracy": PERCENT, "macro_f1": PERCENT, "ece": PERCENT})
    st.plotly_chart(model_charts.candidate_comparison_figure(candidate.comparison), key="candidate_compare")
    advice = advise_candidate(candidate.comparison, what=held_out)
    components.candidate_actions(advice, candidate.version,
                                 activate=lambda: models.activate(state, candidate.version),
                                 discard=lambda: setattr(state, "candidate", None), key="model_candidate")


if __name__ == "__main__":
    render()
