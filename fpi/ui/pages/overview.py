"""Overview page: where the assistant fails, for the loaded traces and the sidebar's filters."""
from __future__ import annotations

import hashlib

import streamlit as st

from fpi.ui import charts
from fpi.analysis import dashboard, filtering
from fpi.model import shift, trust
from fpi.display import (PERCENT_PRINTF, format_percent, label_from_name, label_name, labels_for_display,
                         percent_points, plural)
from fpi.errors import FpiError
from fpi.model.estimator import FailurePointModel
from fpi.model.report import unchecked_candidate_advice
from fpi.review import self_training
from fpi.analysis.monitor import overall_limits
from fpi.ui import components, nav
from fpi.ui.services import models, views
from fpi.ui.state import (AppState, Keys, clear_filters, current_filters, drill_by_cohort, drill_by_label,
                          restore_filters_from_url, write_filters_to_url)

TURNS_SHOWN = 2000


def render() -> None:
    state, model = components.page_setup()
    st.title("Overview")
    source = components.loaded_source(state, what="overview")
    if source is None:
        return
    options = source.filter_options()
    restore_filters_from_url(options)
    _sidebar(options)
    filters = current_filters(options)
    write_filters_to_url(filters)
    view = source.overview(filters)
    components.plain_line("Traces", source.name)
    if source.big is not None:
        st.caption(f"Computed with DuckDB on {components.md_escape(source.big.name)}, {source.turns:,} turns "
                   "(the file is not loaded into memory). How far to trust the labels is checked on files "
                   "loaded on the Data page, not on one opened by path.")
    else:
        _trust(state, model)

    if filters.active:
        st.caption(f"Filtered: {view.kpis.turns:,} of {plural(source.turns, 'turn')}. Every chart below uses the filter.")
    if view.kpis.turns == 0:
        st.warning("No turns match the filters. Widen them in the sidebar.")
        st.button("Clear filters", on_click=clear_filters)
        return
    _kpis(view.kpis)
    _episodes(source, filters)

    left, right = st.columns(2, gap="medium")
    with left:
        event = st.plotly_chart(charts.label_distribution_figure(view.distribution), key=Keys.LABEL_CHART,
                                on_select=drill_by_label, selection_mode="points")
        st.caption("Turns per predicted failure point; grey bars beside are the human labels where the file has "
                   "them. "
                   "Click a bar to list its turns below.")
    with right:
        st.plotly_chart(charts.confidence_distribution_figure(view.confidence), key="confidence")
        st.caption("How sure the model is of each label it gives (box: middle half of the turns, whiskers: 90%, "
                   "dashed: mean). Low-confidence turns are the ones worth a human look.")

    st.plotly_chart(charts.sankey_figure(view.sankey), key="sankey")
    st.caption("Every turn enters at wake; at each stage the turns whose first unrecovered failure is there "
               "leave the pipeline; the rest end correct.")

    if not view.over_time.empty:
        result = views.monitoring(source.key, filters, source.data.frame) if source.data is not None else None
        limits = overall_limits(result) if result is not None and result.tested else None
        st.plotly_chart(charts.defect_rate_time_figure(view.over_time, limits=limits), key="over_time")
        st.caption("Share of turns with a predicted defect per period, in all (thick) and per failing stage"
                   + ("; dotted, the all-defects control limit from the preceding periods; a red cross, a period "
                      "in which some failure point or cohort rose above its limit." if limits is not None else "."))
        _control_limits(source, filters)

    cohort_rows, column = _breakdown(source, filters)

    _matching_turns(state, source, filters, event, cohort_rows, column)


def _trust(state: AppState, model: FailurePointModel | None) -> None:
    """How far to trust the labels on this upload: F1 on its own labels, or how far it is from the training data."""
    if model is None or state.data is None:
        return
    try:
        report = models.trust_report(state.data.key, model.version, model, state.data)
    except FpiError as exc:
        st.caption(f"Could not check how far to trust the labels: {components.md_escape(exc)}")
        return
    if report.labels is not None:
        _label_trust(state, report.labels)
    elif report.shift is not None:
        _shift(state, report.shift)
    elif report.note:
        st.caption(report.note)


def _label_trust(state: AppState, result: trust.LabelTrust) -> None:
    sampled = (f" (a sample of {result.evaluated_turns:,} of them)"
               if result.evaluated_turns < result.labelled_turns else "")
    headline = (f"Model macro-F1 on your labels: **{result.model_f1:.2f}** (raw-confidence baseline "
                f"{result.baseline_f1:.2f}), on {result.labelled_turns:,} labelled turns{sampled}.")
    if result.trained_on_upload:
        st.caption(f"{headline} The active model was trained on these traces, so this is optimistic; the Model "
                   "page shows its figure on dialogues it did not see.")
        return
    if not result.warn:
        st.caption(f":material/verified: {headline} The labels on every page can be trusted about that far.")
        return
    why = []
    if "below_floor" in result.reasons:
        why.append(f"below {trust.F1_FLOOR:.2f}, so many of the labels on this page are wrong")
    if "below_baseline" in result.reasons:
        why.append("below a LightGBM that only reads the five confidences")
    st.warning(f"{headline} That is {' and '.join(why)}. Train a model on your labelled turns: it learns how "
               "your pipeline fails, and you can compare it with the current one before using it.",
               icon=":material/warning:")
    left, right = st.columns([1, 2], vertical_alignment="center")
    if state.candidate is None:
        if left.button("Train a model on these traces", type="primary"):
            try:
                models.train_candidate(state)
            except FpiError as exc:
                st.error(components.md_escape(exc))
    if state.candidate is not None:
        left.success(f"Candidate {state.candidate.version} is trained.", icon=":material/check:")
        right.page_link(nav.MODEL, label="Compare it with the active model and activate it on the Model page",
                        icon=":material/model_training:")


def _shift(state: AppState, shift: shift.ShiftScore) -> None:
    if shift.reference_kind.startswith("closest"):
        basis = f"a sample of the model's training data, the {shift.reference_kind}"
    elif shift.reference_kind == "training sample":
        basis = "a sample of the model's training data"
    else:
        basis = ("the training data's five confidences (this model keeps no sample of its training data, only "
                 "their distributions)")
    method = (f"The shift score is the cross-validated AUC of a classifier telling {shift.upload_rows:,} of your "
              f"turns from {basis}: 0.5 means it cannot tell them apart, 1.0 that it always can.")
    if not shift.warn:
        st.caption(f":material/verified: Shift score **{shift.auc:.2f}** (warns above {shift.threshold:.2f}): "
                   "your traces look like what the model was trained on.", help=method)
        return
    differ = "".join(f"\n- {components.md_escape(f.text)}" for f in shift.top)
    st.warning(f"**Your traces differ from the model's training data** (shift score {shift.auc:.2f}, above "
               f"{shift.threshold:.2f}), so the model's labels may not carry over to your pipeline."
               + (f" What differs most:{differ}" if differ else "")
               + "\n\nLabel a few hundred turns in the triage queue: they show how far to trust the model, "
               "and train one that fits your pipeline.", icon=":material/warning:")
    left, right = st.columns([1, 2], vertical_alignment="center")
    left.page_link(nav.TRIAGE, label="Label turns in the triage queue", icon=":material/checklist:")
    right.caption(method)
    _self_training(state)


def _self_training(state: AppState) -> None:
    """The way to adapt before any label: a candidate to check, never a silent replacement."""
    if state.candidate is None or not state.candidate.label_free:  # loading other traces drops the candidate
        left, right = st.columns([1, 2], vertical_alignment="center")
        if left.button("Self-train on these traces", icon=":material/model_training:",
                       help="Needs no label. The model labels your turns, a student learns its surest labels "
                            "over your pipeline's own features, and the two are mixed into a candidate."):
            try:
                models.self_train_candidate(state)
            except FpiError as exc:
                st.error(components.md_escape(exc))
            else:
                st.rerun()  # the candidate replaces the button
        right.caption(f"Or adapt the model to your traces without labels. {self_training.EVIDENCE}")
    candidate = state.candidate
    if candidate is None or not candidate.label_free:
        return
    st.caption(f"Candidate {candidate.version}, self-trained from {candidate.base_version} on these traces "
               "(no label read). Share of turns per label:")
    names = {"start": f"active ({candidate.base_version})", "candidate": f"candidate ({candidate.version})"}
    shares = percent_points(candidate.label_shares, names).assign(
        label=lambda t: t["label"].map(label_name)).rename(columns=names)
    percent = st.column_config.NumberColumn(format=PERCENT_PRINTF)
    st.dataframe(shares, hide_index=True, column_config={name: percent for name in names.values()})
    components.candidate_actions(unchecked_candidate_advice(candidate.changed, self_training.EVIDENCE),
                                 candidate.version, activate=lambda: models.activate(state, candidate.version),
                                 discard=lambda: setattr(state, "candidate", None), key="self_candidate")


def _sidebar(options: filtering.FilterOptions) -> None:
    with st.sidebar:
        st.header("Filters")
        st.caption("Apply to every chart and table on the overview.")
        if options.date_bounds:
            start, end = options.date_bounds
            st.date_input("Dates (UTC)", value=(start, end), min_value=start, max_value=end,
                          key=Keys.FILTER_DATES, persist_state="session")
        for label, values, key in (("Device", options.devices, Keys.FILTER_DEVICES),
                                   ("Locale", options.locales, Keys.FILTER_LOCALES),
                                   ("Domain", options.domains, Keys.FILTER_DOMAINS)):
            if values:
                st.multiselect(label, values, key=key, placeholder="All", persist_state="session")
        st.multiselect("Predicted failure point", options.predicted, key=Keys.FILTER_PREDICTED,
                       format_func=lambda v: components.LABEL_NAMES.get(v, v), placeholder="All",
                       persist_state="session")
        st.button("Clear filters", on_click=clear_filters, width="stretch")


def _kpis(k: dashboard.Kpis) -> None:
    cols = st.columns(5)
    quiet = dict(delta_color="off", delta_arrow="off", border=True)
    cols[0].metric("Turns", f"{k.turns:,}", border=True)
    cols[1].metric("Dialogues", f"{k.dialogues:,}", f"{k.dialogues_with_defect:,} with a defect", **quiet)
    cols[2].metric("Defect rate", format_percent(k.defect_rate), plural(k.defects, "turn"), **quiet,
                   help="Share of turns whose predicted failure point is not 'correct'.")
    cols[3].metric("Labelled", format_percent(k.labelled_share), plural(k.labelled, "turn"), **quiet)
    cols[4].metric("Label agreement", format_percent(k.agreement),
                   "no labels" if k.agreement is None else f"on {plural(k.labelled, 'turn')}", **quiet,
                   help="Share of labelled turns where the model predicts the human label.")


def _episodes(source: views.OverviewSource, filters: filtering.Filters) -> None:
    """Turns and defect episodes side by side: a failure and the user's retries of it are one experience."""
    if source.data is None:  # a big file opened by path is summarised per turn only
        return
    s = views.episode_summary(source.key, filters, source.data)
    quiet = dict(delta_color="off", delta_arrow="off", border=True)
    cols = st.columns(4)
    cols[0].metric("Defect rate per episode", f"{s.defect_rate_per_episode:.1%}",
                   f"{s.episodes:,} episodes in {s.requests:,} requests", **quiet,
                   help="A failing turn and the turns in which the user retried the same request (similar words "
                        "or a barge-in) are one episode; a request is an episode or any other turn.")
    cols[1].metric("Recovered", "—" if not s.episodes else f"{s.recovered / s.episodes:.1%}",
                   f"{s.recovered:,} episodes", **quiet, help="Episodes that ended with a correct retry.")
    cols[2].metric("Turns to recovery", "—" if not s.recovered else f"{s.mean_turns_to_recovery:.2f}",
                   "mean, recovered episodes", **quiet)
    cols[3].metric("Abandoned", "—" if not s.episodes else f"{s.abandoned_share:.1%}", f"{s.abandoned:,} episodes",
                   **quiet, help="Episodes after which the dialogue ended without a correct turn.")


def _control_limits(source: views.OverviewSource, filters: filtering.Filters) -> None:
    """The defect rate against control limits from the preceding periods, and every breach (as `fpi monitor`)."""
    if source.data is None:
        return
    result = views.monitoring(source.key, filters, source.data.frame)
    if result is None or result.tested == 0:
        return
    with st.expander(f"Control limits: {len(result.breaches):,} breach{'es' if len(result.breaches) != 1 else ''}",
                     expanded=not result.breaches.empty):
        first = result.breaches.iloc[0] if not result.breaches.empty else None
        series, label = ("all turns", "defect") if first is None else (first["series"], first["failure_point"])
        st.plotly_chart(charts.control_chart_figure(result.points, series=series, failure_point=label),
                        key="control_chart")
        st.caption(f"Each {result.by}'s rate against the preceding {result.window} {result.by}s, per failure point, "
                   "for all turns and each device and locale; a breach is a rise beyond the limit (Fisher exact "
                   f"test, Benjamini-Hochberg over all {result.tested:,} points). `fpi monitor` lists the same.")
        if first is not None:
            table = result.breaches[["period", "series", "failure_point", "turns", "count", "rate", "expected",
                                     "limit", "p_value"]]
            st.dataframe(table, hide_index=True, column_config={
                c: st.column_config.NumberColumn(format="percent") for c in ("rate", "expected", "limit")})


def _breakdown(source: views.OverviewSource, filters: filtering.Filters) -> tuple[str | None, str]:
    st.subheader("Breakdown by cohort")
    dimensions = [name for name, column in dashboard.BREAKDOWN_DIMENSIONS.items() if column in source.columns]
    if not dimensions:
        st.caption("The traces have no device, locale, domain or intent columns to break down by.")
        return None, ""
    dimension = st.segmented_control("Break down by", dimensions, default=dimensions[0],
                                     key=Keys.BREAKDOWN_DIMENSION, required=True)
    column = dashboard.BREAKDOWN_DIMENSIONS[dimension or dimensions[0]]
    table = source.breakdown(filters, column)
    left, right = st.columns([1, 1], gap="medium")
    with left:
        st.plotly_chart(charts.breakdown_heatmap_figure(dashboard.breakdown_matrix(table), dimension=dimension),
                        key="breakdown_heatmap")
        st.caption(f"Share of each {dimension}'s turns failing at each stage; worst {dimension}s first.")
    with right:
        event = st.dataframe(
            labels_for_display(table[["cohort", "turns", "defect_rate", "top_failure_point"]], ["top_failure_point"]),
            hide_index=True,
            key=f"{Keys.COHORT_TABLE}_{column}", on_select=drill_by_cohort,
            selection_mode="single-row",
            column_config={
                "cohort": st.column_config.TextColumn(dimension),
                "defect_rate": components.percent_bar_column("defect rate"),
                "top_failure_point": st.column_config.TextColumn("most common failure"),
            },
        )
        st.caption(f"Select a {dimension} to list its defective turns below.")
    rows = [r for r in (event.selection.rows if event is not None else []) if r < len(table)]
    return (str(table.iloc[rows[0]]["cohort"]) if rows else None), column


def _matching_turns(state: AppState, source: views.OverviewSource, filters: filtering.Filters, label_event,
                    cohort: str | None, column: str) -> None:
    st.subheader("Matching turns")
    points = label_event.selection.points if label_event is not None else []
    label = label_from_name(points[0]["x"]) if points else None
    if cohort is not None and (state.drill_source == "cohort" or label is None):
        st.caption(f"Defective turns of this {column.replace('_', ' ')}:")
        st.text(cohort)
        shown, total = source.matching_turns(filters, limit=TURNS_SHOWN, cohort=(column, cohort), defects_only=True)
    elif label is not None:
        st.caption(f"Turns predicted as '{label_name(label)}'.")
        shown, total = source.matching_turns(filters, limit=TURNS_SHOWN, predicted=label)
    else:
        st.caption("All predicted defects, most confident first. Click a bar above or select a cohort to narrow down.")
        shown, total = source.matching_turns(filters, limit=TURNS_SHOWN, defects_only=True)
    # A new table (new key) whenever its rows change, so a stale row selection never opens the wrong dialogue.
    digest = hashlib.sha1(f"{source.key}|{filters}|{label}|{cohort}|{state.drill_source}".encode()).hexdigest()[:10]
    components.turns_table(shown, key=f"{Keys.TURNS_TABLE}_{digest}", total=total)


if __name__ == "__main__":
    render()
