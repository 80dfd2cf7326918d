"""Team: do the analysts agree, which turns need a final word, and who reviews what.

The numbers come from `fpi.review.agreement`; this page lays them out and
records adjudications.
"""
from __future__ import annotations

import math

import streamlit as st

from fpi.config import Config
from fpi.data.schema import LABELS
from fpi.display import labels_for_display
from fpi.errors import FpiError
from fpi.ui import charts, components, identity
from fpi.ui.services import team_review as tr
from fpi.ui.services import triage as ts
from fpi.ui.state import AppState, Keys

NAMES = components.LABEL_NAMES
KAPPA = st.column_config.NumberColumn(format="%.2f")


def render() -> None:
    state, _model = components.page_setup()
    st.title("Team")
    share = Config.from_env().overlap_share
    st.caption(f"{share:.0%} of the queue's turns (FPI_OVERLAP_SHARE) go to a second analyst, who does not see the "
               "first verdict; the turns judged by two or more analysts measure how far the team agrees.")
    dataset = None
    if state.data is not None:
        try:
            fingerprint = ts.fingerprint(state.data)
        except FpiError:
            fingerprint = None
        if fingerprint and st.toggle("Only verdicts on the loaded traces", value=True):
            dataset = fingerprint
    try:
        report = tr.team_agreement(dataset)
    except FpiError as exc:
        st.error(f"The verdict store can't be read: {components.md_escape(exc)}")
        return
    _agreement(report)
    _disagreements(state, report)


def _fmt(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.2f}"


def _agreement(report) -> None:
    st.subheader("Agreement")
    if report.method == "none":
        st.info("No turn has verdicts from two analysts yet. Agreement shows here once the overlap turns of the "
                "queue have been judged by a second analyst.")
        return
    overall = report.overall
    cols = st.columns(3)
    name = "Cohen's kappa" if report.method == "cohen" else "Fleiss' kappa"
    cols[0].metric(name, _fmt(overall.value), f"95% interval {_fmt(overall.low)} to {_fmt(overall.high)}",
                   delta_color="off", delta_arrow="off", border=True)
    cols[1].metric("Turns judged by two or more", f"{report.overlap_turns:,}", border=True)
    cols[2].metric("Analysts", f"{len(report.analysts):,}", border=True)
    st.caption("Kappa is agreement beyond chance: 1 always agree, 0 no better than chance; above 0.8 is strong, "
               "below 0.6 means the labels need a clearer definition. Intervals are bootstrapped over turns.")
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.plotly_chart(charts.kappa_figure(report.per_label, overall=overall.value, method=report.method),
                        key="team_kappa")
    with right:
        st.caption("Per failure point (this label or not)")
        st.dataframe(labels_for_display(report.per_label, ["label"]), hide_index=True, placeholder="—",
                     column_config={"kappa": KAPPA, "low": KAPPA, "high": KAPPA})
    st.caption("Each analyst against the consensus: the adjudicated label, else the label all the other analysts "
               "of the turn gave (turns where the others disagree are left out).")
    st.dataframe(report.per_analyst, hide_index=True, placeholder="—", column_config={
        "agreement": st.column_config.ProgressColumn("agrees with consensus", format="percent", min_value=0,
                                                     max_value=1),
        "kappa": KAPPA, "low": KAPPA, "high": KAPPA})


def _disagreements(state: AppState, report) -> None:
    st.subheader("Disagreements to adjudicate")
    table = report.disagreements
    if table.empty:
        st.caption("No turn has verdicts that disagree.")
        return
    open_ = int((table["status"] == "open").sum())
    st.caption(f"{open_:,} open, {len(table) - open_:,} adjudicated. Until a turn is adjudicated, retraining "
               "leaves it out: neither label teaches the model. Pick a row to give the final label.")
    shown = labels_for_display(table.drop(columns=["dataset_fingerprint"]), ["adjudicated"])
    picked = st.dataframe(shown, hide_index=True, placeholder="—", key=Keys.TEAM_ADJUDICATE,
                          on_select="rerun", selection_mode="single-row",
                          column_config={"turn_index": st.column_config.NumberColumn("turn", format="%d")})
    rows = picked.selection.rows if picked is not None else []
    if not rows:
        return
    row = table.iloc[rows[0]].to_dict()
    who = identity.analyst(state)
    if who is None:
        st.info("Give your name on the Triage page first: adjudications are recorded with who made them.")
        return
    st.text(f"{row['dialogue_id']} turn {int(row['turn_index'])}: {row['verdicts']}")
    with st.form(f"{Keys.TEAM_ADJUDICATE}_form"):
        label = st.selectbox("Final label", list(LABELS), key=Keys.TEAM_ADJUDICATE_LABEL,
                             format_func=lambda v: NAMES.get(v, v))
        note = st.text_input("Why (optional)", key=Keys.TEAM_ADJUDICATE_NOTE, max_chars=4000)
        go = st.form_submit_button("Record the final label", type="primary")
    if go:
        try:
            tr.adjudicate(row, label, who, note)
        except FpiError as exc:
            st.error(components.md_escape(exc))
            return
        state.notice = f"Adjudicated: {row['dialogue_id']} turn {int(row['turn_index'])} is {NAMES[label]}."
        st.rerun()


if __name__ == "__main__":
    render()
