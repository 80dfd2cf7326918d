"""Team: do the analysts agree, which turns need a final word, and who reviews what.

The numbers come from `fpi.review.agreement`; this page lays them out and
records adjudications.
"""
from __future__ import annotations

import math

import streamlit as st

from fpi.config import Config
from fpi.data.schema import LABELS
from fpi.display import label_name, labels_for_display
from fpi.errors import FpiError
from fpi.review.assignment import SPLITS, parse_analysts
from fpi.review.audit import AuditConfig
from fpi.ui import components, identity, team_charts
from fpi.ui.services import team_review as tr
from fpi.ui.services import triage as ts
from fpi.ui.state import AppState, Keys

NAMES = components.LABEL_NAMES
KAPPA = st.column_config.NumberColumn(format="%.2f")


def render() -> None:
    state, model = components.page_setup()
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
    _assignment(state)
    _agreement(report)
    _disagreements(state, report)
    _audit(state, model)


SPLIT_COLUMNS = ("locale", "device_type", "nlu_domain", "device_firmware", "pipeline_version")


def _assignment(state: AppState) -> None:
    st.subheader("Who reviews what")
    data = state.data
    if data is None:
        st.caption("Load traces to share their turns among analysts.")
        return
    dataset = ts.fingerprint(data)
    try:
        split, progress = tr.assignment(data, dataset)
    except FpiError as exc:
        st.error(components.md_escape(exc))
        return
    if split is None:
        st.caption("The loaded traces are not split among analysts: everyone's queue is the whole queue.")
    else:
        how = SPLITS[split["by"]].lower() + (f" ({split['column']})" if split["column"] else "")
        st.caption(f"Split {how} among {len(split['analysts'])} analysts by "
                   f"{components.md_escape(split['created_by'])}. Each analyst's "
                   "Triage queue starts with their own turns; a skipped turn goes back to the pool for the others.")
        if progress is not None:
            st.dataframe(progress, hide_index=True, column_config={
                "done": st.column_config.ProgressColumn("done", format="percent", min_value=0, max_value=1),
                "skipped": st.column_config.NumberColumn("skipped (back in the pool)")})
    who = identity.analyst(state)
    with st.expander("Split the turns among analysts" if split is None else "Change the split"):
        if who is None:
            st.info("Give your name on the Triage page first: the split is recorded with who made it.")
            return
        columns = [c for c in SPLIT_COLUMNS if c in data.frame.columns]
        with st.form(Keys.TEAM_SPLIT_FORM):
            names = st.text_area("Analysts (one per line, or separated by commas)", key=Keys.TEAM_ANALYSTS,
                                 value="\n".join(split["analysts"]) if split else "")
            by = st.radio("Split", list(SPLITS), format_func=SPLITS.get, key=Keys.TEAM_SPLIT_BY, horizontal=True)
            column = st.selectbox("Cohort column (for a split by cohort)", columns, key=Keys.TEAM_SPLIT_COLUMN)
            go = st.form_submit_button("Share out the turns", type="primary")
        if go:
            try:
                tr.save_split(dataset, parse_analysts(names), by, column, who)
            except (ValueError, FpiError) as exc:
                st.error(components.md_escape(exc))
                return
            state.notice = "The turns are shared out."
            st.rerun()


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
        st.plotly_chart(team_charts.kappa_figure(report.per_label, overall=overall.value, method=report.method),
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
    shown = labels_for_display(table.drop(columns=["dataset_fingerprint", "labels", "pairs"]), ["adjudicated"])
    shown["verdicts"] = ["; ".join(f"{who}: {label_name(label)}" for who, label in pairs) for pairs in table["pairs"]]
    picked = st.dataframe(shown, hide_index=True, placeholder="—", key=Keys.TEAM_ADJUDICATE,
                          on_select="rerun", selection_mode="single-row",
                          column_config={"turn_index": st.column_config.NumberColumn("turn", format="%d"),
                                         "adjudicated_by": st.column_config.TextColumn("adjudicated by")})
    rows = picked.selection.rows if picked is not None else []
    if rows:
        row = table.iloc[rows[0]].to_dict()
        said = "; ".join(f"{who}: {label_name(label)}" for who, label in row["pairs"])
        _final_label(state, row, f"{row['dialogue_id']} turn {int(row['turn_index'])}: {said}",
                     key=Keys.TEAM_ADJUDICATE)


def _final_label(state: AppState, row: dict, what: str, *, key: str, default: str | None = None) -> None:
    """The form that records the final label of one turn (an adjudication) under this session's name."""
    who = identity.analyst(state)
    if who is None:
        st.info("Give your name on the Triage page first: final labels are recorded with who gave them.")
        return
    st.text(what)
    with st.form(f"{key}_form"):
        options = list(LABELS)
        label = st.selectbox("Final label", options, key=f"{key}_label", format_func=lambda v: NAMES.get(v, v),
                             index=options.index(default) if default in options else 0)
        note = st.text_input("Why (optional)", key=f"{key}_note", max_chars=4000)
        go = st.form_submit_button("Record the final label", type="primary")
    if go:
        try:
            tr.adjudicate(row, label, who, note)
        except FpiError as exc:
            st.error(components.md_escape(exc))
            return
        state.audit = None  # a confirmation changes what the audit leaves out
        state.notice = f"Recorded: {row['dialogue_id']} turn {int(row['turn_index'])} is {NAMES[label]}."
        st.rerun()


def _audit(state: AppState, model) -> None:
    st.subheader("Verdicts the data disagrees with")
    data = state.data
    if data is None or model is None:
        st.caption("Load traces to audit their verdicts.")
        return
    st.caption("Before retraining, each verdict is checked against a model of all the other dialogues' labels. "
               "A verdict whose label is far less likely than usual for that label, while another label is "
               "confidently likely, is flagged and left out of retraining until someone confirms it here "
               "(keep the label) or relabels it. The data only overrules an analyst where it reads the "
               f"pipeline well: when it agrees with fewer than {AuditConfig.min_agreement:.0%} of the labels (or "
               f"Cohen's kappa is under {AuditConfig.min_kappa:g}), flagged verdicts are shown here but kept.")
    if st.button("Audit the verdicts on the loaded traces"):
        try:
            state.audit = tr.audit(state, model)
            if state.audit is None:
                st.info("Too few labelled turns to audit: the labels must fall in at least two dialogues.")
        except FpiError as exc:
            st.warning(components.md_escape(exc))
    result = state.audit
    if result is None:
        return
    st.caption(result.summary() + ".")
    if result.flags.empty:
        return
    shown = labels_for_display(result.flags, ["label", "suggested"])
    picked = st.dataframe(shown, hide_index=True, placeholder="—", key=Keys.TEAM_AUDIT, on_select="rerun",
                          selection_mode="single-row", column_config={
                              "turn_index": st.column_config.NumberColumn("turn", format="%d"),
                              "p_label": st.column_config.NumberColumn("p(label)", format="%.2f"),
                              "typical": st.column_config.NumberColumn("typical p", format="%.2f"),
                              "p_suggested": st.column_config.NumberColumn("p(suggested)", format="%.2f")})
    rows = picked.selection.rows if picked is not None else []
    if rows:
        row = {**result.flags.iloc[rows[0]].to_dict(), "dataset_fingerprint": ts.fingerprint(data)}
        _final_label(state, row, f"{row['dialogue_id']} turn {int(row['turn_index'])}: {row['analyst']} said "
                                 f"{NAMES[row['label']]}; the data suggests {NAMES[row['suggested']]}",
                     key=Keys.TEAM_AUDIT, default=str(row["label"]))


if __name__ == "__main__":
    render()
