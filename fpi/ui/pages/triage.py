"""Triage: judge the turns the queue puts first (every label, diverse, unsure), one at a time, then retrain.

Keys 1-6 give the six labels (Streamlit button shortcuts; ignored while typing
in the note), S skips. Trace text is shown with `st.text` and dataframes only.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from fpi.ui import model_charts
from fpi.review import triage
from fpi.errors import FpiError
from fpi.model.report import advise_candidate, metrics_table, per_class_table
from fpi.display import format_time, labels_for_display, stage_name, times_for_display
from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.review.adapt import strategy_words
from fpi.review.names import clean_name
from fpi.ui import components, identity
from fpi.ui.services import models
from fpi.ui.services import triage as ts
from fpi.ui.state import AppState, Keys

NAMES = components.LABEL_NAMES
PERCENT = st.column_config.NumberColumn(format="%.3f")
# Label -> keyboard key: 1 correct, 2 false wake, 3 ASR, 4 NLU, 5 ER, 6 result (pipeline order).
# (Comments, not docstrings: Streamlit's magic would print a bare string in a page.)
SHORTCUTS: dict[str, str] = {label: str(i + 1) for i, label in enumerate(LABELS)}
TRACE_FIELDS: tuple[tuple[str, str], ...] = (
    ("device_type", "device"), ("locale", "locale"), ("timestamp", "time"), ("nlu_domain", "domain"),
    ("nlu_intent", "intent"), ("er_entity", "entity"), ("barge_in", "barge-in"),
)


def render() -> None:
    state, model = components.page_setup()
    st.title("Triage")
    if state.data is None:
        components.no_data(state, what="triage queue")
        return
    if model is None:
        return
    analyst = identity.analyst(state)
    if analyst is None:
        _ask_name(state)
        return
    try:
        store = ts.verdict_store()
        dataset = ts.fingerprint(state.data)
        progress = ts.progress(state, store, dataset, analyst)
    except FpiError as exc:
        st.error(f"The verdict store can't be used: {components.md_escape(exc)}")
        return
    _who(state, analyst)
    if progress.error:
        st.error(f"The last verdict was not saved: {components.md_escape(progress.error)}")
        progress.error = None
    item = _next_item(state, dataset, analyst)
    if item is not None:
        _review(state, model, item, dataset, analyst)
    _retraining(state, model, dataset, store)
    _export(state, dataset)


def _ask_name(state: AppState) -> None:
    st.info("Verdicts are recorded with who gave them. Type your name (or e-mail) to start; "
            "it is kept for this browser session.")
    with st.form(Keys.TRIAGE_NAME_FORM):
        name = st.text_input("Your name", key=Keys.TRIAGE_NAME, max_chars=320, placeholder="e.g. Ana Lima")
        start = st.form_submit_button("Start triage", type="primary")
    if start:
        try:
            state.analyst = clean_name(name)
        except ValueError as exc:
            st.warning(f"Type a name first: verdicts are never anonymous ({exc}).")
            return
        st.rerun()


def _who(state: AppState, analyst: str) -> None:
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption("Verdicts are recorded as:")
    left.text(analyst)
    if identity.login_required():
        right.button("Log out", on_click=st.logout, width="stretch")
    elif right.button("Change name", width="stretch"):
        state.analyst = None
        st.rerun()


def _next_item(state: AppState, dataset: str, analyst: str) -> pd.Series | None:
    """The filters, the progress bar and the queue's next turn to judge (None when there is none)."""
    data = state.data
    assert data is not None
    left, middle, right = st.columns([2, 2, 1], vertical_alignment="bottom")
    order = left.selectbox("Order", list(triage.ORDERS), key=Keys.TRIAGE_ORDER, format_func=triage.ORDERS.get)
    label = middle.selectbox("Predicted label", [None, *LABELS], key=Keys.TRIAGE_LABEL,
                             format_func=lambda v: "any" if v is None else NAMES[v])
    skip_reviewed = right.toggle("Skip judged turns", value=True, key=Keys.TRIAGE_SKIP_REVIEWED,
                                 help="Off: turns with a verdict from earlier sessions come up again.")
    cohort = state.triage_cohort
    if cohort:
        text_col, button_col = st.columns([4, 1], vertical_alignment="center")
        text_col.caption("Only the turns of the cohort chosen on the Cohorts page:")
        text_col.text(" and ".join(f"{column} = {value}" for column, value in cohort.items()))
        if button_col.button("Whole data", width="stretch", help="Drop the cohort filter."):
            state.triage_cohort = None
            st.rerun()
    try:
        queue = ts.queue(data.key, order, label, tuple(sorted(cohort.items())) if cohort else None, data.frame)
    except FpiError as exc:
        st.warning(components.md_escape(exc))
        return None
    queue, share = ts.my_queue(queue, data, dataset, analyst)
    if share:
        st.caption(components.md_escape(share))
    progress = state.triage
    reviewed = progress.reviewed if skip_reviewed else progress.this_session
    done, size = triage.queue_progress(queue, progress.reviewed)
    bar, refresh = st.columns([5, 1], vertical_alignment="bottom")
    bar.progress(done / size if size else 1.0,
                 text=f"{done:,} of {size:,} turns in this queue have a verdict "
                      f"({len(progress.this_session):,} given in this session)")
    refresh.button("Refresh", on_click=ts.refresh, args=(state,), width="stretch",
                   help="Read the verdicts again, e.g. to skip turns other analysts judged meanwhile.")
    item = triage.next_in_queue(queue, reviewed, skipped=progress.skipped)
    if item is None:
        st.success("Nothing left in this queue." if size else "No turns match these filters.")
        if progress.skipped and st.button("Show the skipped turns again"):
            progress.skipped.clear()
            st.rerun()
        return None
    return item


def _review(state: AppState, model, item: pd.Series, dataset: str, analyst: str) -> None:
    data = state.data
    assert data is not None
    row = int(item["row"])
    turn = data.frame.iloc[row]
    dialogue, index = str(item["dialogue_id"]), int(item["turn_index"])
    predicted = str(item["predicted_failure_point"])
    with st.container(border=True):
        st.caption(f"Turn {index} of dialogue")
        st.text(dialogue)
        left, right = st.columns([3, 2], gap="medium")
        with left:
            components.plain("User said (ASR)", turn.get("asr_text"))
            components.plain("Assistant said", turn.get("response_text"))
            fields = {name: format_time(turn.get(column)) if column == "timestamp" else turn.get(column)
                      for column, name in TRACE_FIELDS if column in data.frame.columns}
            st.dataframe(pd.DataFrame([fields]), hide_index=True, placeholder="—")
            confidences = {stage_name(stage): turn.get(f"{stage}_confidence")
                           for stage in ("wake", "asr", "nlu", "er", "result")}
            st.caption("Stage confidences")
            st.dataframe(pd.DataFrame([confidences]), hide_index=True, placeholder="—",
                         column_config={k: st.column_config.NumberColumn(format="%.2f") for k in confidences})
        with right:
            st.markdown(f"**Predicted: {NAMES[predicted]}** (p = {float(item['confidence']):.2f}, "
                        f"margin to the runner-up {float(item['margin']):.2f})")
            st.caption(" · ".join(f"{NAMES[label]} {float(turn[f'p_{label}']):.2f}" for label in LABELS))
            human = turn.get(LABEL_COLUMN)
            if human is not None and not pd.isna(human) and str(human) in LABELS:
                st.markdown(f"Label in the data: **{NAMES[str(human)]}**")
            explanation = models.explain(state, model, [row])[0]
            st.caption("Top reasons for the prediction")
            st.text("\n".join(("▲ " if r.contribution > 0 else "▼ ") + r.text for r in explanation.reasons)
                    or "No feature moved this turn's score.")
        st.caption("The dialogue (this turn ticked)")
        context = triage.dialogue_context(data.frame, dialogue, index)
        context = labels_for_display(context, ["predicted_failure_point", LABEL_COLUMN])
        st.dataframe(context, hide_index=True, placeholder="—", column_config={
            "this_turn": st.column_config.CheckboxColumn("this"),
            "turn_index": st.column_config.NumberColumn("turn", format="%d"),
            "asr_text": st.column_config.TextColumn("user said (ASR)", width="large"),
            "response_text": st.column_config.TextColumn("assistant said", width="large"),
            "predicted_failure_point": st.column_config.TextColumn("predicted"),
            "confidence": st.column_config.NumberColumn("p", format="%.2f"),
            LABEL_COLUMN: st.column_config.TextColumn("label in data"),
        })
    _verdict_buttons(state, item, dataset, analyst, model.version)
    with st.expander("Verdict history of this turn"):
        history = ts.history(dataset, dialogue, index)
        if not history.empty and analyst not in set(history["analyst"]):
            # Blind: another analyst's verdict would anchor this one, and agreement would mean nothing.
            st.caption(f"{len(history):,} verdict(s) by other analysts, shown once you have given yours.")
        elif history.empty:
            st.caption("No verdicts yet.")
        else:
            shown = history[["created_at", "analyst", "label", "note", "predicted_label", "model_version"]]
            shown = times_for_display(labels_for_display(shown, ["label", "predicted_label"]), ["created_at"])
            st.dataframe(shown, hide_index=True, placeholder="—",
                         column_config={"created_at": st.column_config.TextColumn("time (UTC)")})


def _verdict_buttons(state: AppState, item: pd.Series, dataset: str, analyst: str, model_version: str) -> None:
    st.markdown("**Your verdict**: where did this turn first fail? (keys 1-6; S skips)")
    st.caption("Judge from the trace and the dialogue; the model's prediction above is only a hint.")
    st.text_input("Note (optional)", key=Keys.TRIAGE_NOTE, max_chars=4000,
                  placeholder="e.g. ASR heard 'play' as 'pay'")
    payload: dict[str, Any] = {
        "dataset": dataset, "dialogue_id": str(item["dialogue_id"]), "turn_index": int(item["turn_index"]),
        "predicted": str(item["predicted_failure_point"]), "model_version": model_version,
    }
    columns = st.columns(len(LABELS) + 1)
    for column, label in zip(columns, LABELS):
        # Every button looks the same: highlighting the model's guess would nudge the analyst to agree,
        # and the model then learns its own mistakes back. The prediction is shown as text above.
        column.button(NAMES[label], key=f"w_triage_verdict_{label}", shortcut=SHORTCUTS[label], width="stretch",
                      type="secondary", on_click=ts.record_verdict, args=(state, payload, label, analyst),
                      help=f"Failure point: {NAMES[label]} (key {SHORTCUTS[label]})")
    columns[-1].button("Skip", key="w_triage_skip", shortcut="S", width="stretch", on_click=ts.skip,
                       args=(state, payload, analyst),
                       help="Leave this turn for later in this session; it goes back to the team's pool.")


def _retraining(state: AppState, model, dataset: str, store) -> None:
    data = state.data
    assert data is not None
    st.subheader("Retrain from verdicts")
    verdicts = store.count(dataset=dataset)
    st.caption(f"Verdicts on these traces: {verdicts:,}; turns labelled in the data: {data.summary.labelled:,}. "
               "Verdicts win over the data's labels. Several ways of adapting are tried (the active model as it is, "
               "the active model mixed with a model of its own surest labels on these traces, a small model of "
               "these labels alone, that small model mixed with either of the first two, and full training with "
               "text models, alone or mixed with the second of those mixes) and the one with "
               "the best macro-F1 in cross-validation by dialogue is refit on every labelled turn; it is "
               "compared with the active model on the same turns, each predicted by a fold model that never saw "
               "its dialogue. It is saved, not used, until you activate it.")
    other = st.checkbox("Also use verdicts given on other uploads of the same dialogues",
                        key=Keys.TRIAGE_OTHER_UPLOADS,
                        help="Matched by dialogue_id and turn_index; only if the ids mean the same dialogues.")
    if st.button("Train a candidate", type="primary"):
        try:
            why_not = ts.retrain(state, model, data, dataset, other_uploads=other)
            if why_not:
                st.info(components.md_escape(why_not))
        except FpiError as exc:
            st.warning(components.md_escape(exc))
    candidate = state.candidate
    if candidate is not None and candidate.from_verdicts:
        st.caption(f"Candidate {candidate.version} ({strategy_words(candidate.strategy)}, starting from "
                   f"{candidate.base_version}, {candidate.training_turns:,} labelled turns of which "
                   f"{candidate.verdict_turns:,} verdicts) "
                   f"beside the active model {model.version}, on the same {candidate.heldout_turns:,} held-out "
                   f"turns ({candidate.heldout_verdicts:,} of them verdicts), cross-validated by dialogue:")
        st.dataframe(metrics_table(candidate.comparison), hide_index=True,
                     column_config={"accuracy": PERCENT, "macro_f1": PERCENT, "ece": PERCENT})
        if candidate.audit or candidate.held_back:
            st.caption(" ".join(filter(None, [
                (candidate.audit + ".") if candidate.audit else None,
                f"{candidate.held_back:,} turns the analysts disagree on wait for adjudication." if candidate.held_back
                else None,
                "Flagged verdicts and disagreements are confirmed or relabelled on the Team page."])))
        left, right = st.columns(2, gap="medium")
        with left:
            st.plotly_chart(model_charts.candidate_comparison_figure(candidate.comparison), key="verdict_candidate")
        with right:
            both = per_class_table(candidate.comparison["systems"]["active"])[["label", "f1", "support"]].merge(
                per_class_table(candidate.comparison["systems"]["candidate"])[["label", "f1"]],
                on="label", suffixes=(" active", " candidate"))
            st.dataframe(labels_for_display(both, ["label"]), hide_index=True,
                         column_config={"f1 active": PERCENT, "f1 candidate": PERCENT})
        advice = advise_candidate(candidate.comparison,
                                  what="labelled turns, each predicted by a fold model that never saw its dialogue")
        components.candidate_actions(advice, candidate.version,
                                     activate=lambda: models.activate(state, candidate.version),
                                     discard=lambda: setattr(state, "candidate", None),
                                     key="verdict_candidate")
    if models.registry().history():
        if st.button("Roll back to the previous model", help="Re-activate the model that was active before."):
            try:
                models.rollback(state)
                st.rerun()
            except FpiError as exc:
                st.error(components.md_escape(exc))


def _export(state: AppState, dataset: str) -> None:
    data = state.data
    assert data is not None
    st.subheader("Export")
    st.caption("The traces with the model's predictions and the latest verdict per turn (verdict_label, "
               "verdict_analyst, verdict_note, verdict_at). In the CSV, text that a spreadsheet would run as a "
               "formula starts with a quote.")
    left, right, _ = st.columns([1, 1, 2])
    stem = "fpi-verdicts"
    left.download_button("Download CSV", data=ts.export_maker(data, dataset, "csv"), file_name=f"{stem}.csv",
                         mime="text/csv", on_click="ignore", width="stretch")
    right.download_button("Download Parquet", data=ts.export_maker(data, dataset, "parquet"),
                          file_name=f"{stem}.parquet", mime="application/octet-stream", on_click="ignore",
                          width="stretch")


if __name__ == "__main__":
    render()
