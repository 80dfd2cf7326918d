"""Data page: upload traces (or take the sample), see what was loaded or why a file was rejected."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fpi.display import format_percent, format_time, label_name
from fpi.data.schema import REQUIRED_COLUMNS
from fpi.ui import components, nav
from fpi.ui.services import loading
from fpi.ui.text import md_escape
from fpi.ui.state import AppState, Keys, Rejection

NOT_IN_FILE = "(not in the file)"


def render() -> None:
    state, model = components.page_setup(data_page=True)
    st.title("Data")
    st.caption("Load voice-assistant traces: one row per turn, in the trace contract's columns. "
               "Each accepted file is scored by the active model"
               + (f" ({model.version})." if model else "."))

    upload_col, sample_col = st.columns([3, 2], gap="large")
    with upload_col:
        uploaded = st.file_uploader(
            f"Upload traces: CSV or Parquet, up to {loading.UPLOAD_LIMIT_MB:,} MB",
            type=["csv", "parquet", "pq"], key=Keys.UPLOAD,
            help="Required columns: " + ", ".join(REQUIRED_COLUMNS) + ". Other columns are kept.",
        )
    with sample_col:
        st.markdown("**Or try the bundled sample**")
        st.caption("Simulated traces from a fleet of speakers, TVs, cars and phones.")
        left, right = st.columns(2)
        labelled = left.button("Load labelled sample", type="primary", width="stretch")
        unlabelled = right.button("Load unlabelled sample", width="stretch")

    with st.expander("Large scored file (Parquet, by path)", expanded=state.big_file is not None):
        st.caption("For a file too big to upload: score it first with `fpi predict traces.csv -o scored.parquet`, "
                   "then open the output here. The overview summarises it with DuckDB without loading it; "
                   "drill-down, cohorts, triage and the model page need a file loaded above.")
        big_path = st.text_input("Path of a scored Parquet file on this server", key=Keys.BIG_FILE_PATH,
                                 placeholder="/data/scored.parquet")
        open_big = st.button("Open", key="big_file_open")
        if state.big_file is not None:
            components.plain_line("Open", state.big_file)
            st.page_link(nav.OVERVIEW, label="Open the overview", icon=":material/dashboard:")

    if open_big and loading.open_big_file(state, big_path):
        st.rerun()  # so the page (and the expander above) show the file just opened
    if uploaded is not None and uploaded.file_id != state.handled_upload:
        state.handled_upload = uploaded.file_id
        if loading.load_into_state(state, uploaded.getvalue(), name=uploaded.name, from_upload=True):
            st.rerun()  # the sample banner drawn above must go
    if (labelled and loading.load_sample(state, "labelled")) or (unlabelled and loading.load_sample(state, "unlabelled")):
        st.rerun()  # the banner drawn above names the sample now loaded

    if state.rejection is not None:
        _rejection(state, state.rejection, uploaded)
    if state.data is not None:
        _summary(state)
    elif state.rejection is None and state.big_file is None:
        st.info("No traces loaded yet. Upload a file above, or load the labelled sample to look around.")


def _rejection(state: AppState, rejection: Rejection, uploaded: object) -> None:
    st.error(components.md_escape(rejection.message))
    st.caption("Every problem found in the file: the column, the rows (numbered as a spreadsheet shows the file: "
               "the header is row 1, the first turn row 2), the value found there and how to fix it. "
               "Nothing of this file was loaded" + (
                   "; the data loaded before stays active." if state.data is not None else "."))
    st.table(rejection_table(rejection), border="horizontal")
    if rejection.suggestions and rejection.from_upload:
        if uploaded is not None:
            _mapping_form(state, rejection, uploaded)
        else:
            st.info("Upload the file again to map its columns onto the contract's.")


REJECTION_HEADERS = {"column": "Column", "rows": "Rows (first few)", "count": "Rows in all",
                     "found": "Value found", "reason": "What is wrong and how to fix it"}


def rejection_table(rejection: Rejection) -> pd.DataFrame:
    """The rejection report as a static table: every cell in full (no truncation), escaped, because
    `st.table` renders Markdown and the values found come from the file."""
    rows = []
    for record in rejection.records:
        count = int(record.get("count") or 0)
        rows.append({REJECTION_HEADERS["column"]: md_escape(record["column"]),
                     REJECTION_HEADERS["rows"]: md_escape(record["rows"]) if count else "",
                     REJECTION_HEADERS["count"]: f"{count:,}" if count else "",
                     REJECTION_HEADERS["found"]: md_escape(record.get("found", "")),
                     REJECTION_HEADERS["reason"]: md_escape(record["reason"])})
    return pd.DataFrame(rows, columns=list(REJECTION_HEADERS.values())).set_index(REJECTION_HEADERS["column"])


def _mapping_form(state: AppState, rejection: Rejection, uploaded: object) -> None:
    st.subheader("Map your columns")
    st.caption("The file lacks some required columns. Pick which of its columns holds each one (pre-selected "
               "where a column looks like it), then load the file again.")
    spare = [c for c in rejection.columns if c not in REQUIRED_COLUMNS]
    with st.form(Keys.MAPPING_FORM):
        choices: dict[str, str] = {}
        for contract_column, suggestion in rejection.suggestions.items():
            options = [NOT_IN_FILE, *spare]
            index = options.index(suggestion) if suggestion in options else 0
            choices[contract_column] = st.selectbox(f"{contract_column} ←", options, index=index)
        apply = st.form_submit_button("Apply mapping and reload", type="primary")
    if apply:
        column_map = {source: target for target, source in choices.items() if source != NOT_IN_FILE}
        # Either way the page must show the new outcome, not the report drawn above.
        loading.load_into_state(state, uploaded.getvalue(), name=uploaded.name, column_map=column_map,
                                 from_upload=True)
        st.rerun()


def _summary(state: AppState) -> None:
    data = state.data
    assert data is not None
    summary = data.summary
    st.subheader("Loaded")
    components.plain_line("File", data.source)
    st.text(f"Scored by model: {data.model_version}")
    cols = st.columns(3)
    cols[0].metric("Turns", f"{summary.turns:,}", border=True)
    cols[1].metric("Dialogues", f"{summary.dialogues:,}", border=True)
    share = summary.labelled / summary.turns if summary.turns else 0.0
    cols[2].metric("Labelled turns", f"{summary.labelled:,}", f"{format_percent(share)} of turns", delta_color="off",
                   delta_arrow="off", border=True)
    if summary.date_range:
        start, end = summary.date_range
        st.caption(f"From {format_time(start)} to {format_time(end)}.")
    left, middle, right = st.columns(3)
    with left:
        st.caption("Labels (human)")
        st.dataframe(pd.DataFrame([(label_name(k), v) for k, v in summary.label_counts.items()],
                                  columns=["label", "turns"]), hide_index=True)
    with middle:
        st.caption("Devices")
        st.dataframe(pd.DataFrame(list(summary.devices.items()), columns=["device", "turns"]), hide_index=True)
    with right:
        st.caption("Locales")
        st.dataframe(pd.DataFrame(list(summary.locales.items()), columns=["locale", "turns"]), hide_index=True)
    st.caption("Extra stage signals (model features where the model knows them) and other columns kept as they are:")
    st.text("stage signals: " + (", ".join(summary.stage_signals) or "none")
            + "\nother columns: " + (", ".join(summary.other_extras) or "none"))
    for note in summary.unusable_signal_notes():
        st.warning(components.md_escape(note))
    with st.expander("Preview: first 50 turns"):
        st.dataframe(data.frame.head(50), hide_index=True)
    st.page_link(nav.OVERVIEW, label="Open the overview", icon=":material/dashboard:")


if __name__ == "__main__":
    render()
