"""Small UI pieces the pages share: page setup, the no-data notice, safe text, the turns table.

Text that comes from traces (utterances, responses, ids, cohort names) is only
ever shown through `st.text`, `st.code`, dataframes or escaped chart labels,
never through Markdown or HTML, so `<script>` or `**bold**` shows as typed.
"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import streamlit as st

from fpi import display
from fpi.model import glossary
from fpi.errors import FpiError
from fpi.model.estimator import FailurePointModel
from fpi.model.report import CandidateAdvice
from fpi.ui import nav
from fpi.ui.services import loading, models
from fpi.ui.text import md_escape
from fpi.ui.state import AppState, get_state

LABEL_NAMES = display.LABEL_NAMES
"""How the app names labels (one spelling everywhere: `fpi.display`)."""


def percent_column(label: str, **kwargs: Any) -> Any:
    """A share (0-1) shown as a percentage with one decimal, like every percentage in the app."""
    return st.column_config.NumberColumn(label, format="percent", step=0.001, **kwargs)


def percent_bar_column(label: str, **kwargs: Any) -> Any:
    """A share (0-1) as a bar with its percentage (one decimal)."""
    return st.column_config.ProgressColumn(label, min_value=0.0, max_value=1.0, format="percent", step=0.001,
                                           **kwargs)


def time_column(label: str, **kwargs: Any) -> Any:
    """A UTC time in the app's one format."""
    return st.column_config.DatetimeColumn(label, format=display.TIME_FORMAT_MOMENT, **kwargs)


def page_setup(*, data_page: bool = False) -> tuple[AppState, FailurePointModel | None]:
    """State and active model for a page; shows pending notices and rescoring after a model switch."""
    state = get_state()
    model = None
    try:
        model = models.active_model()
        loading.rescore_if_model_changed(state)
    except FpiError as exc:
        st.error(f"No usable model: {md_escape(exc)}. To fix it, open the Model page and roll back or "
                 "activate another version (or set FPI_MODEL to a model directory and restart).")
    if model is not None:
        loading.open_linked_dataset(state)
        loading.open_sample_once(state)
        loading.sync_dataset_param(state)
    if state.notice:
        st.toast(md_escape(state.notice))
        state.notice = None
    sample_banner(state, data_page=data_page)
    return state, model


def sample_banner(state: AppState, *, data_page: bool = False) -> None:
    """Say plainly when the data on screen is the bundled sample, with one click to replace it."""
    if state.data is None or state.sample is None:
        return
    text = (f"You are looking at the bundled **{state.sample} sample**: simulated traces shipped with fpi, "
            "opened so every page has something to show. ")
    if data_page:
        st.info(text + "Upload a file below to replace it.", icon=":material/science:")
        return
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.info(text + "Upload your own traces to replace it.", icon=":material/science:")
    right.page_link(nav.DATA, label="Upload your own traces", icon=":material/upload_file:")


def no_data(state: AppState, *, what: str) -> None:
    """The empty state of a page: what to do, with a button that loads the sample.

    With only a large scored file open (summarised on the overview, never loaded) the page says so.
    """
    if state.big_file is not None:
        st.info(f"Only a large scored file is open; it is summarised on the Overview, not loaded into memory, "
                f"so there is no {what} for it. Open a smaller file or the sample for the {what}.")
        left, right, _ = st.columns([1, 1, 2])
        with left:
            if st.button("Load the labelled sample", key=f"bigfile_sample_{what}"):
                if loading.load_sample(state, "labelled"):
                    st.rerun()
        with right:
            st.page_link(nav.OVERVIEW, label="Open the overview", icon=":material/dashboard:")
        return
    st.info(f"No traces are loaded yet, so there is no {what} to show. "
            "Load the bundled sample (labelled) to look around, or upload your own traces on the Data page.")
    left, right, _ = st.columns([1, 1, 2])
    with left:
        if st.button("Load the labelled sample", type="primary", key=f"nodata_sample_{what}"):
            if loading.load_sample(state, "labelled"):
                st.rerun()
    with right:
        st.page_link(nav.DATA, label="Go to the Data page", icon=":material/upload_file:")


TURN_COLUMNS: tuple[str, ...] = (
    "dialogue_id", "turn_index", "predicted_failure_point", "confidence", "failure_point", "asr_text",
    "response_text", "timestamp", "device_type", "locale", "nlu_domain", "nlu_intent",
)
"""The turns table's columns, what matters first: which turn, the model's label, how sure, the human label."""
PINNED = ("dialogue_id", "turn_index")


def turn_table_config() -> dict[str, Any]:
    return {
        "dialogue_id": st.column_config.TextColumn("dialogue", pinned=True),
        "turn_index": st.column_config.NumberColumn("turn", format="%d", pinned=True),
        "timestamp": time_column("time (UTC)"),
        "device_type": st.column_config.TextColumn("device"),
        "nlu_domain": st.column_config.TextColumn("domain"),
        "nlu_intent": st.column_config.TextColumn("intent"),
        "asr_text": st.column_config.TextColumn("user said (ASR)", width="medium"),
        "response_text": st.column_config.TextColumn("assistant said", width="medium"),
        "predicted_failure_point": st.column_config.TextColumn("predicted"),
        "confidence": st.column_config.ProgressColumn("p(predicted)", min_value=0.0, max_value=1.0, format="%.2f",
                                                      width="small"),
        "failure_point": st.column_config.TextColumn("human label"),
    }


def turns_table(turns: pd.DataFrame, *, key: str, total: int | None = None) -> None:
    """A table of turns, key columns first and pinned; selecting a row opens that dialogue in the drill-down."""
    if turns.empty:
        st.info("No turns match.")
        return
    if total is not None and total > len(turns):
        st.caption(f"Showing the {len(turns):,} most confident of {display.plural(total, 'matching turn')}. "
                   "Select a row to open its dialogue.")
    else:
        st.caption(f"{display.plural(len(turns), 'matching turn')}. Select a row to open its dialogue.")
    shown = display.labels_for_display(turns, ["predicted_failure_point", "failure_point"])
    order = [c for c in TURN_COLUMNS if c in shown.columns] + [c for c in shown.columns if c not in TURN_COLUMNS]
    event = st.dataframe(shown, key=key, on_select="rerun", selection_mode="single-row", hide_index=True,
                         placeholder="—", column_order=order, column_config=turn_table_config(),
                         height=min(420, 38 + 35 * len(turns)))
    rows = event.selection.rows if event is not None else []
    if rows:
        open_dialogue(str(turns.iloc[rows[0]]["dialogue_id"]))


def open_dialogue(dialogue_id: str) -> None:
    state = get_state()
    state.dialogue_id = dialogue_id
    st.switch_page(nav.DIALOGUE, query_params={"dialogue": dialogue_id, **({"dataset": state.dataset}
                                                                          if state.dataset else {})})


def _verbatim(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "—"
    return str(value)


def plain(caption: str, value: object) -> None:
    """A caption of ours above a value from the traces, shown verbatim."""
    st.caption(caption)
    st.text(_verbatim(value))


def plain_line(name: str, value: object) -> None:
    """'name: value' on one line, the value from the traces shown verbatim."""
    st.text(f"{name}: {_verbatim(value)}")


def glossary_expander(features: list[str], *, title: str, expanded: bool = False) -> None:
    """The meaning of each feature named on the page, in a static table (every line in full).

    Feature names of stage signals come from the traces' columns, so every cell is escaped.
    """
    with st.expander(title, expanded=expanded, icon=":material/menu_book:"):
        table = glossary.glossary_table(features)
        shown = pd.DataFrame({"Name": [md_escape(v) for v in table["name"]],
                              "What it means": [md_escape(v) for v in table["meaning"]],
                              "Column in the model": [md_escape(v) for v in table["feature"]]})
        st.table(shown.set_index("Name"), border="horizontal")


def _run_action(state: AppState, action: Callable[[], None]) -> None:
    """Callback wrapper: run `action`, keep a failure as data for the page to show."""
    state.confirm_activation = None
    try:
        action()
    except FpiError as exc:
        state.action_error = str(exc)


def _ask_confirmation(state: AppState, version: str) -> None:
    state.confirm_activation = version


def _cancel_confirmation(state: AppState) -> None:
    state.confirm_activation = None


def candidate_actions(advice: CandidateAdvice, version: str, *, activate: Callable[[], None],
                      discard: Callable[[], None], key: str) -> None:
    """Recommend, then activate a trained candidate or keep the active model (Model and Triage pages).

    The recommended action is the primary button; a candidate that scored worse is activated only
    after a confirmation.
    """
    state = get_state()
    if state.action_error:
        st.error(md_escape(state.action_error))
        state.action_error = None
    show = st.success if advice.verdict == "better" else st.warning if advice.verdict == "worse" else st.info
    show(advice.text, icon=":material/thumb_up:" if advice.verdict == "better" else ":material/warning:"
         if advice.verdict == "worse" else ":material/info:")
    if state.confirm_activation == version:
        st.warning(f"Activate {version} anyway? It scored worse than the active model (macro-F1 "
                   f"{advice.candidate_f1:.3f} against {advice.active_f1:.3f}); every page would then show its "
                   "labels. You can roll back later.", icon=":material/help:")
        left, right, _ = st.columns([1, 1, 2])
        left.button(f"Yes, activate {version}", key=f"{key}_confirm", width="stretch",
                    on_click=_run_action, args=(state, activate))
        right.button("Cancel", key=f"{key}_cancel", type="primary", width="stretch",
                     on_click=_cancel_confirmation, args=(state,))
        return
    left, right, _ = st.columns([1, 1, 2])
    keep = right if advice.activate_first else left
    go = left if advice.activate_first else right
    keep.button("Keep the active model", key=f"{key}_keep", width="stretch",
                type="secondary" if advice.activate_first else "primary",
                on_click=_run_action, args=(state, discard))
    if advice.confirm_activation:
        go.button(f"Activate {version} anyway", key=f"{key}_activate", width="stretch",
                  on_click=_ask_confirmation, args=(state, version))
    else:
        go.button(f"Activate {version}", key=f"{key}_activate", width="stretch",
                  type="primary" if advice.activate_first else "secondary",
                  on_click=_run_action, args=(state, activate))
