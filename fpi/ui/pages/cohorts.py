"""Cohorts page: where the pipeline fails, for whom, and whether the model is equally good for everyone.

Cohort values and column names come from the traces: they are shown in
dataframes, `st.text` and escaped chart titles only, never as Markdown.
"""
from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from fpi.model import glossary
from fpi.ui import charts, components, nav
from fpi.analysis import cohorts, dashboard, discovery
from fpi.display import label_name, labels_for_display, plural
from fpi.errors import FpiError
from fpi.analysis.fairness import FAIRNESS_COLUMNS
from fpi.data.schema import LABEL_COLUMN, LABELS, PREDICTED_COLUMN
from fpi.ui.services import cohorts as cohort_services, views
from fpi.scoring.frame import ScoredTraces
from fpi.ui.state import AppState, Keys
from fpi.ui.services.loading import BigFile

SOURCES = {"model's prediction": PREDICTED_COLUMN, "human label": LABEL_COLUMN}
TURNS_SHOWN = 2000
NAMES = components.LABEL_NAMES


def render() -> None:
    state, _ = components.page_setup()
    st.title("Cohorts")
    try:
        loaded = views.loaded_source(state)
    except FpiError as exc:
        st.error(components.md_escape(exc))
        return
    if loaded is None:
        components.no_data(state, what="cohort analysis")
        return
    if loaded.big is not None:
        _big_file(loaded.big)
        return
    data = loaded.data
    assert data is not None
    frame = data.frame
    labelled = LABEL_COLUMN in frame.columns and bool(frame[LABEL_COLUMN].notna().any())
    source, columns, level, min_support, max_conditions = _settings(data.key, frame, labelled)
    st.caption("Groups of turns (a device, a locale, a domain, or a combination of up to three) that fail at one "
               "stage significantly more often than the rest, and whether the model serves every locale and "
               "device equally well.")
    components.plain_line("Traces", data.source)
    if not columns:
        st.info("No column to form cohorts from: pick at least one in the sidebar.")
    else:
        found = cohort_services.discovery(data.key, source, columns, level, min_support, max_conditions, frame)
        selected = _discovered(found, data.key, min_support)
        if selected is not None:
            _profile(data.key, frame, selected, source)
            _selected_turns(state, data, selected, source)
    _stage_gaps(data.key, frame, source, level, min_support)
    _rates(data.key, frame, source)
    _fairness(data, labelled, level)


def _big_file(big: BigFile) -> None:
    """Discovery on a large scored file: only its cohort columns and predictions are read, never its turns."""
    try:
        frame = cohort_services.big_cohort_frame(big.key, big.path)
    except FpiError as exc:
        st.error(components.md_escape(exc))
        return
    # The file's key starts with its path; hashed, it tells files apart in the widget keys' first 16 characters.
    key = hashlib.sha1(big.key.encode()).hexdigest()
    source, columns, level, min_support, max_conditions = _settings(key, frame, False)
    st.caption("Groups of turns (a device, a locale, a domain, or a combination of up to three) that the model "
               "finds failing at one stage significantly more often than the rest.")
    components.plain_line("Traces", big.path)
    st.info(f"Only a large scored file is open ({big.turns:,} turns, not loaded): its cohort columns are read "
            "for the search, but listing a cohort's turns, triage and fairness need the turns in memory.")
    if not columns:
        st.info("No column to form cohorts from: pick at least one in the sidebar.")
    else:
        found = cohort_services.discovery(key, source, columns, level, min_support, max_conditions, frame)
        selected = _discovered(found, key, min_support, lists_turns=False)
        if selected is not None:
            _profile(key, frame, selected, source)
    _stage_gaps(key, frame, source, level, min_support)
    _rates(key, frame, source)


def _settings(key: str, frame: pd.DataFrame, labelled: bool) -> tuple[str, tuple[str, ...], float, int, int]:
    with st.sidebar:
        st.header("Cohort search")
        options = list(SOURCES) if labelled else list(SOURCES)[:1]
        choice = st.radio("Failure point from", options, key=f"{Keys.COHORT_SOURCE}_{len(options)}",
                          help="The model's predicted failure point, or the human label where the traces have one.")
        source = SOURCES.get(choice or options[0], PREDICTED_COLUMN)
        candidates = cohort_services.candidate_columns(key, source, frame)
        # Keyed by the data too: another file has other columns, and a stale choice must not carry over.
        # Pills wrap onto as many lines as they need: no column name is cut off in the narrow sidebar.
        chosen = st.pills("Columns", candidates, selection_mode="multi", default=list(candidates),
                          key=f"{Keys.COHORT_COLUMNS}_{key[:16]}_{source}",
                          help="Text columns with at most 50 values; ids and free text are left out.")
        level = st.select_slider("False discovery rate", options=[0.001, 0.01, 0.05, 0.1, 0.2], value=0.05,
                                 key=Keys.COHORT_LEVEL,
                                 help="Benjamini-Hochberg over every cohort and failure point tested.")
        min_support = int(st.number_input("Minimum turns per cohort", min_value=20, value=200, step=50,
                                          key=Keys.COHORT_MIN_SUPPORT))
        max_conditions = int(st.segmented_control("Conditions at most", [1, 2, 3], default=3,
                                                  key=Keys.COHORT_MAX_CONDITIONS, required=True) or 3)
    return source, tuple(c for c in candidates if c in (chosen or [])), float(level), min_support, max_conditions


def _discovered(found: discovery.Discovery, data_key: str, min_support: int, *,
                lists_turns: bool = True) -> pd.Series | None:
    st.subheader("Cohorts that fail more often")
    st.caption(f"{found.tested:,} cohort × failure point combinations of at least {min_support:,} turns tested "
               f"against the turns outside them (one-sided Fisher exact test), false discovery rate "
               f"{found.level:g} (Benjamini-Hochberg). Ranked by the low end of the lift. A combination that is no "
               f"worse than the rest of a simpler cohort is left out ({len(found.redundant):,} here).")
    table = found.cohorts
    if table.empty:
        st.info("No cohort fails significantly more often than the rest of the turns at this level.")
        return None
    shown = table[["cohort", "failure_point", "turns", "rate", "low", "high", "overall_rate", "lift", "lift_low",
                   "q_value"]]
    # A new table (new key) whenever its rows change, so a stale selection never picks another cohort.
    rows_shown = "|".join(table["cohort"] + "/" + table["failure_point"])
    key = f"{Keys.COHORT_FOUND}_{hashlib.sha1(f'{data_key}|{rows_shown}'.encode()).hexdigest()[:10]}"
    shown = labels_for_display(shown, ["failure_point"])
    event = st.dataframe(
        shown, key=key, on_select="rerun", selection_mode="single-row", hide_index=True,
        column_config={
            "cohort": st.column_config.TextColumn("cohort", width="medium", pinned=True),
            "failure_point": st.column_config.TextColumn("fails at"),  # written as display names below
            "turns": st.column_config.NumberColumn("turns", format="%d"),
            "rate": components.percent_column("rate"),
            "low": components.percent_column("95% low"),
            "high": components.percent_column("95% high"),
            "overall_rate": components.percent_column("all turns"),
            "lift": st.column_config.NumberColumn("lift", format="%.2f×"),
            "lift_low": st.column_config.NumberColumn("lift, low end", format="%.2f×"),
            "q_value": st.column_config.NumberColumn("q (BH)", format="%.1e",
                                                     help="Benjamini-Hochberg adjusted p-value"),
        },
        # What matters first: the cohort, where it fails, how much worse, how sure; the details after.
        column_order=["cohort", "failure_point", "rate", "overall_rate", "lift", "lift_low", "q_value", "turns",
                      "low", "high"],
    )
    st.caption("Select a cohort to compare it with all turns" + (" and list its turns." if lists_turns else "."))
    rows = [r for r in (event.selection.rows if event is not None else []) if r < len(table)]
    return table.iloc[rows[0]] if rows else None


def _profile(key: str, frame: pd.DataFrame, row: pd.Series, source: str) -> None:
    st.subheader("Selected cohort")
    st.text(row["cohort"])
    profile = cohort_services.profile(key, source, tuple(row["conditions"]), frame)
    st.plotly_chart(charts.cohort_profile_figure(profile, cohort=str(row["cohort"])), key="cohort_profile")
    st.caption("Share of the cohort's turns failing at each stage (red) beside all turns (grey); "
               "bars show 95% Wilson intervals.")


def _selected_turns(state: AppState, data: ScoredTraces, row: pd.Series, source: str) -> None:
    conditions = tuple(row["conditions"])
    target = str(row["failure_point"])
    triage = getattr(nav, "TRIAGE", None)
    if st.button("Triage these turns", icon=":material/checklist:",
                 help="Open the triage queue restricted to this cohort." if triage else
                 "Restrict the triage queue to this cohort (the app has no Triage page yet)."):
        state.triage_cohort = dict(conditions)
        if triage:
            st.switch_page(triage)
        st.info("There is no Triage page in this app yet; the cohort's turns are listed below.")
    frame = data.frame
    part = frame[cohorts.cohort_mask(frame, conditions)]
    values = part[source]
    failing = values.notna() & (values != "correct" if target == cohorts.ANY_DEFECT else values == target)
    turns = dashboard.matching_turns(part[failing.to_numpy(dtype=bool, na_value=False)])
    what = "any failure" if target == cohorts.ANY_DEFECT else f"'{NAMES.get(target, target)}'"
    st.caption(f"The cohort's turns with {what} (by the {'label' if source == LABEL_COLUMN else 'model'}), "
               "most confident first.")
    digest = hashlib.sha1(f"{data.key}|{conditions}|{target}|{source}".encode()).hexdigest()[:10]
    components.turns_table(turns.head(TURNS_SHOWN), key=f"{Keys.TURNS_TABLE}_cohort_{digest}", total=len(turns))


GAPS_SHOWN = 8


def _stage_gaps(key: str, frame: pd.DataFrame, source: str, level: float, min_support: int) -> None:
    """Each locale and device that fails more than the rest, its gap split into the failure points."""
    st.subheader("Which stage drives each gap")
    try:
        table = cohort_services.stage_gaps(key, source, level, min_support, frame)
    except FpiError as exc:
        st.info(components.md_escape(exc))
        return
    if table.empty:
        st.info("No locale or device fails significantly more often than the rest of the turns at this level.")
        return
    flagged = list(dict.fromkeys(table["cohort"]))
    names = {c: glossary.cohort_name([tuple(table.loc[table["cohort"] == c, ["column", "value"]].iloc[0])])
             for c in flagged}
    st.caption(f"{plural(len(flagged), 'locale or device', 'locales and devices')} "
               f"{'fails' if len(flagged) == 1 else 'fail'} more often than the rest "
               f"(one-sided Fisher exact test, false discovery rate {level:g}, Benjamini-Hochberg), worst gap first. "
               "A turn fails at one stage, so the gap (defect rate inside minus outside) is the sum of the "
               "per-stage differences; each bar is one stage's part, with its 95% Newcombe interval.")
    shown = table[table["cohort"].isin(flagged[:GAPS_SHOWN]) & (table["failure_point"] != cohorts.ANY_DEFECT)]
    # One scale for every chart, so bars compare across cohorts.
    x_range = (100 * min(0.0, shown["low"].min()) - 0.5, 100 * shown["high"].max() + 0.5)
    columns = st.columns(2)
    for i, cohort in enumerate(flagged[:GAPS_SHOWN]):
        with columns[i % 2]:
            rows = table[table["cohort"] == cohort]
            st.plotly_chart(charts.stage_gap_figure(rows, cohort=names[cohort], x_range=x_range),
                            key=f"cohort_gap_{i}")
            st.text(_gap_sentence(rows, names[cohort]))
    if len(flagged) > GAPS_SHOWN:
        st.caption(f"The {GAPS_SHOWN} biggest gaps of {len(flagged)}; `fpi gaps` lists all.")


def _gap_sentence(rows: pd.DataFrame, name: str) -> str:
    """ "locale = en-IN: 12.0 points worse than the rest (21.3% vs 9.3%), 9.1 of them ASR. By stage: ASR +9.1, ..." """
    whole = rows[rows["failure_point"] == cohorts.ANY_DEFECT].iloc[0]
    parts = rows[rows["failure_point"] != cohorts.ANY_DEFECT].sort_values("difference", ascending=False)
    gap, top = 100 * whole.difference, 100 * parts["difference"].iloc[0]
    stage = label_name(parts["failure_point"].iloc[0])
    # Stages that fail less here than elsewhere can make the biggest part exceed the whole gap.
    share = (f", {top:.1f} of them {stage}" if 0 < top <= gap + 1e-9 else
             f", all of it {stage} (+{top:.1f}; the other stages together {gap - top:+.1f})" if top > gap else "")
    stages = ", ".join(f"{label_name(r.failure_point)} {100 * r.difference:+.1f}" for r in parts.itertuples(index=False))
    return (f"{name}: {gap:.1f} points worse than the rest ({100 * whole.rate:.1f}% vs "
            f"{100 * whole.rest_rate:.1f}%){share}.\nBy stage: {stages}.")


def _rates(key: str, frame: pd.DataFrame, source: str) -> None:
    st.subheader("Failure rates by column")
    candidates = cohort_services.candidate_columns(key, source, frame)
    if not candidates:
        st.caption("The traces have no text column to break down by.")
        return
    column = st.selectbox("Column", candidates, key=f"{Keys.COHORT_RATES_COLUMN}_{key[:16]}_{source}")
    table = cohort_services.rates(key, source, column or candidates[0], frame)
    config = {
        "cohort": st.column_config.TextColumn("value"),
        "turns": st.column_config.NumberColumn("turns", format="%d"),
        "defects": st.column_config.NumberColumn("defects", format="%d"),
    }
    for name in table.columns:
        if name.startswith(("defect_", "rate_", "low_", "high_")):
            kind, _, label = name.partition("_")
            config[name] = components.percent_column(f"{kind} {label_name(label) if label in LABELS else label}")
    st.dataframe(table, hide_index=True, column_config=config, key="cohort_rates")
    st.caption("Each value's defect rate and rate per failure point, with 95% Wilson intervals (low, high); "
               "worst defect rate first.")


def _fairness(data: ScoredTraces, labelled: bool, level: float) -> None:
    st.subheader("Is the model equally good for everyone?")
    if not labelled:
        st.info("This needs human labels (failure_point) on some turns: load labelled traces to compare the "
                "model's accuracy and recall across locales and devices.")
        return
    frame = data.frame
    present = [c for c in FAIRNESS_COLUMNS if c in frame.columns]
    if not present:
        st.caption("The traces have no locale or device column.")
        return
    column = st.segmented_control("By", present, default=present[0], key=f"{Keys.FAIRNESS_COLUMN}_{len(present)}",
                                  required=True) or present[0]
    performance = cohort_services.performance(data.key, column, frame)
    st.plotly_chart(charts.cohort_performance_figure(performance, dimension=column), key="cohort_performance")
    st.caption("Accuracy (Wilson interval) and macro-F1 (bootstrap over dialogues) on the labelled turns.")
    table = cohort_services.fairness(data.key, level, frame)
    flagged = table[table["flagged"]]
    if flagged.empty:
        st.success(f"No locale or device is served significantly worse than the rest (false discovery rate {level:g}).")
    else:
        st.warning(f"{plural(len(flagged), 'cohort × metric comparison')} "
                   f"{'is' if len(flagged) == 1 else 'are'} significantly below the rest "
                   f"(false discovery rate {level:g}); they are listed first.")
    st.dataframe(
        table, hide_index=True, key="fairness_table",
        column_config={
            "column": st.column_config.TextColumn("column", pinned=True),
            "cohort": st.column_config.TextColumn("cohort", pinned=True),
            "metric": st.column_config.TextColumn("metric"),
            "turns": st.column_config.NumberColumn("turns", format="%d"),
            "hits": st.column_config.NumberColumn("right", format="%d"),
            "value": components.percent_column("value"),
            "low": components.percent_column("95% low"),
            "high": components.percent_column("95% high"),
            "rest_value": components.percent_column("rest"),
            "gap": components.percent_column("gap"),
            "p_value": st.column_config.NumberColumn("p", format="%.1e"),
            "q_value": st.column_config.NumberColumn("q (BH)", format="%.1e"),
            "flagged": st.column_config.CheckboxColumn("worse"),
        },
    )
    st.caption("Each cohort against the rest of the labelled turns: accuracy, and recall of each class; one-sided "
               "Fisher exact test, Benjamini-Hochberg over every row.")


if __name__ == "__main__":
    render()
