"""Compare page: what changed between two versions, and for whom.

Two models on the loaded traces (turn by turn: where each turn moved), or two
sets of turns: the loaded traces split at a date or by a column's values, or
two datasets kept on this server. The statistics are `fpi.analysis.compare`;
cohort names, file names and column values come from the traces and are shown
in dataframes, `st.text` and escaped chart titles only.
"""
from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from fpi.analysis import cohorts, compare, dashboard
from fpi.data.schema import LABEL_COLUMN, LABELS, PREDICTED_COLUMN
from fpi.model import glossary
from fpi.display import label_name, labels_for_display, percent_points, plural
from fpi.errors import FpiError
from fpi.model.registry import ModelEntry
from fpi.scoring.frame import ScoredTraces
from fpi.ui import charts, components
from fpi.ui.services import cohorts as cohort_services, compare as compare_services, views
from fpi.ui.services.compare import Sides
from fpi.ui.state import Keys, get_state

MODELS, DATE, COLUMN, DATASETS = "Two models", "Before and after a date", "Two values of a column", "Two datasets"
MODES = (MODELS, DATE, COLUMN, DATASETS)
SOURCES = {"model's prediction": PREDICTED_COLUMN, "human label": LABEL_COLUMN}
COHORTS_SHOWN = 50
TURNS_SHOWN = 2000
ANY = "any"
POINTS = ("change", "low", "high")  # changes and their intervals in percentage points ("+4.9 pt"), not shares
SPLIT_COLUMN = "app_version"  # offered first for a split by values: releases are what analysts compare most


def render() -> None:
    state, _ = components.page_setup()
    st.title("Compare")
    if state.data is None:
        components.no_data(state, what="comparison")
        return
    data = state.data
    st.caption("What changed between two versions: two models on the same turns, the turns before and after a "
               "release (a date, or a column such as the app version), or two datasets. Each failure point's rate "
               "change with a 95% interval and a test, and the cohorts whose rate changed most.")
    components.plain_line("Traces", data.source)
    mode = st.segmented_control("Compare", MODES, default=MODELS, key=Keys.COMPARE_MODE, required=True) or MODELS
    labelled = LABEL_COLUMN in data.frame.columns and bool(data.frame[LABEL_COLUMN].notna().any())
    label_column, level, min_support = _settings(labelled, paired=mode == MODELS)
    try:
        if mode == MODELS:
            found = _two_models(data, level, min_support)
        elif mode == DATE:
            found = _date_split(data, label_column, level, min_support)
        elif mode == COLUMN:
            found = _column_split(data, label_column, level, min_support)
        else:
            found = _two_datasets(data, label_column, level, min_support)
    except FpiError as exc:
        st.error(components.md_escape(exc))
        return
    if found is None:
        return
    result, sides = found
    _summary(result)
    if result.migration is not None and sides.paired is not None:
        _migration(data, result, sides.paired)
    _rates(result)
    _cohorts(data, result, sides, label_column)


def _settings(labelled: bool, *, paired: bool) -> tuple[str, float, int]:
    with st.sidebar:
        st.header("Comparison")
        if paired:
            source = PREDICTED_COLUMN  # two models: their predictions are what is compared
        else:
            options = list(SOURCES) if labelled else list(SOURCES)[:1]
            choice = st.radio("Failure point from", options, key=f"{Keys.COMPARE_SOURCE}_{len(options)}",
                              help="The active model's predicted failure point, or the human label where the "
                                   "traces have one.")
            source = SOURCES.get(choice or options[0], PREDICTED_COLUMN)
        level = st.select_slider("False discovery rate", options=[0.001, 0.01, 0.05, 0.1, 0.2], value=0.05,
                                 key=Keys.COMPARE_LEVEL,
                                 help="Benjamini-Hochberg over every cohort and failure point tested.")
        min_support = int(st.number_input("Minimum turns per cohort and side", min_value=20, value=100, step=50,
                                          key=Keys.COMPARE_MIN_SUPPORT))
    return source, float(level), min_support


# ---------------------------------------------------------------- choosing what to compare

def _two_models(data: ScoredTraces, level: float, min_support: int) -> tuple[compare.Comparison, Sides] | None:
    entries = compare_services.model_entries()
    if len(entries) < 2:
        st.info("The registry has one model only. Train a candidate on the Model page (it is kept without being "
                "activated), then compare it with the active model here.")
        return None
    by_name = {_model_name(e): e for e in entries}
    names = list(by_name)
    active = next((i for i, e in enumerate(entries) if e.active), 0)
    other = next(i for i in range(len(entries)) if i != active)
    left, right = st.columns(2)
    first = left.selectbox("Before: model", names, index=active, key=f"{Keys.COMPARE_MODELS}_before")
    second = right.selectbox("After: model", names, index=other, key=f"{Keys.COMPARE_MODELS}_after")
    if first == second:
        st.info("Pick two different models.")
        return None
    return compare_services.two_models(data, by_name[first], by_name[second], level=level, min_support=min_support)


def _model_name(entry: ModelEntry) -> str:
    when = f", trained {entry.trained_at[:10]}" if entry.trained_at else ""
    return f"{entry.version}{' (active)' if entry.active else ''}{when}"


def _date_split(data: ScoredTraces, label_column: str, level: float,
                min_support: int) -> tuple[compare.Comparison, Sides] | None:
    bounds = views.OverviewSource.in_memory(data).filter_options().date_bounds
    if not bounds or bounds[0] >= bounds[1]:
        st.info("The loaded traces have no timestamps over more than one day to split at.")
        return None
    first, last = bounds
    middle = first + (last - first) / 2
    day = st.date_input("Split at (00:00 UTC): turns before this day against turns from it on", value=middle,
                        min_value=first + timedelta(days=1), max_value=last, format="YYYY-MM-DD",
                        key=f"{Keys.COMPARE_DATE}_{data.key[:16]}")
    if not isinstance(day, date):
        return None
    return compare_services.split_at(data, day, label_column=label_column, level=level, min_support=min_support)


def _column_split(data: ScoredTraces, label_column: str, level: float,
                  min_support: int) -> tuple[compare.Comparison, Sides] | None:
    columns = list(cohort_services.candidate_columns(data.key, label_column, data.frame))
    if not columns:
        st.info("The traces have no text column with a few values (such as app_version) to split by.")
        return None
    if SPLIT_COLUMN in columns:
        columns.remove(SPLIT_COLUMN)
        columns.insert(0, SPLIT_COLUMN)
    key = f"{Keys.COMPARE_COLUMN}_{data.key[:16]}"
    left, middle, right = st.columns(3)
    column = left.selectbox("Column", columns, format_func=glossary.display_name, key=key) or columns[0]
    values = sorted(data.frame[column].dropna().astype(str).unique())
    if len(values) < 2:
        st.info("That column has one value only.")
        return None
    before = middle.selectbox("Before: value", values, index=len(values) - 2,
                              key=f"{Keys.COMPARE_VALUES}_{data.key[:16]}_{column}_before")
    after = right.selectbox("After: value", values, index=len(values) - 1,
                            key=f"{Keys.COMPARE_VALUES}_{data.key[:16]}_{column}_after")
    if before == after:
        st.info("Pick two different values.")
        return None
    return compare_services.split_by(data, column, str(before), str(after), label_column=label_column, level=level,
                                     min_support=min_support)


def _two_datasets(data: ScoredTraces, label_column: str, level: float,
                  min_support: int) -> tuple[compare.Comparison, Sides] | None:
    state_dataset = get_state().dataset
    stored = [d for d in compare_services.stored_datasets() if d.fingerprint != state_dataset]
    if not stored:
        st.info("No other dataset is kept on this server. Every file loaded on the Data page is kept: load the "
                "other version there (it replaces the loaded traces, and both stay kept), then compare them here.")
        return None
    options = {compare_services.LOADED: f"the loaded traces: {data.source}"}
    options.update({d.fingerprint: f"{d.name}, {d.turns:,} turns, kept {d.saved_at[:10]}" for d in stored})
    keys = list(options)
    left, right = st.columns(2)
    before = left.selectbox("Before", keys, index=1, format_func=options.__getitem__,
                            key=f"{Keys.COMPARE_DATASETS}_before")
    after = right.selectbox("After", keys, index=0, format_func=options.__getitem__,
                            key=f"{Keys.COMPARE_DATASETS}_after")
    if before == after:
        st.info("Pick two different datasets.")
        return None
    st.caption("Both are scored by the active model (each file as a whole, as when it is loaded).")
    return compare_services.two_datasets(data, str(before), str(after), label_column=label_column, level=level,
                                         min_support=min_support)


# ---------------------------------------------------------------- what changed

def _summary(result: compare.Comparison) -> None:
    head = result.rates.iloc[0]
    st.subheader("Before and after")
    st.text(f"{result.before} → {result.after}\n"
            f"{plural(head.turns_before, 'turn')} → {plural(head.turns_after, 'turn')}"
            + ("\nThe same turns, labelled by each model." if result.paired else ""))
    if not result.paired:
        st.caption("These are different turns, so no turn can be followed from one failure point to another: the "
                   "migration matrix needs the same turns labelled twice (compare two models for it).")


def _migration(data: ScoredTraces, result: compare.Comparison, frame: pd.DataFrame) -> None:
    matrix = result.migration
    assert matrix is not None
    moved = int(matrix.to_numpy().sum() - matrix.to_numpy().trace())
    st.subheader("Where turns moved")
    st.plotly_chart(charts.migration_figure(matrix, before=result.before, after=result.after),
                    key="compare_migration")
    st.caption(f"{plural(moved, 'turn')} of {int(matrix.to_numpy().sum()):,} got another failure point from the "
               "second model: rows are the first model's failure point, columns the second's; the grey diagonal "
               "counts the turns both models agree on.")
    names = {ANY: ANY, **{label: label_name(label) for label in LABELS}}
    left, right, _ = st.columns([1, 1, 2])
    moved_from = left.selectbox("Moved from", list(names), format_func=names.__getitem__,
                                key=Keys.COMPARE_MOVED_FROM)
    moved_to = right.selectbox("to", list(names), format_func=names.__getitem__, key=Keys.COMPARE_MOVED_TO)
    turns = compare.moved_turns(frame, compare_services.BEFORE, compare_services.AFTER,
                                moved_from=None if moved_from == ANY else moved_from,
                                moved_to=None if moved_to == ANY else moved_to)
    _moved_table(data, result, turns)


def _moved_table(data: ScoredTraces, result: compare.Comparison, turns: pd.DataFrame) -> None:
    if turns.empty:
        st.info("No turn moved that way.")
        return
    before, after = compare_services.BEFORE, compare_services.AFTER
    shown = turns.sort_values(["dialogue_id", "turn_index"]).head(TURNS_SHOWN)
    columns = [c for c in ("dialogue_id", "turn_index", before, after, "asr_text", "response_text", "device_type",
                           "locale", "nlu_domain", "nlu_intent", "failure_point", "timestamp") if c in shown.columns]
    shown = labels_for_display(shown[columns], [before, after, "failure_point"]).reset_index(drop=True)
    config = components.turn_table_config()
    config[before] = st.column_config.TextColumn(f"by {result.before}")
    config[after] = st.column_config.TextColumn(f"by {result.after}")
    st.caption(f"{plural(len(turns), 'turn')} moved"
               + (f"; the first {len(shown):,} are listed" if len(turns) > len(shown) else "")
               + ". Select a row to open its dialogue in the drill-down.")
    digest = hashlib.sha1(f"{data.key}|{result.before}|{result.after}|{len(turns)}".encode()).hexdigest()[:10]
    event = st.dataframe(shown, key=f"{Keys.COMPARE_MOVED}_{digest}", on_select="rerun",
                         selection_mode="single-row", hide_index=True, placeholder="—", column_config=config,
                         height=min(420, 38 + 35 * len(shown)))
    rows = [r for r in (event.selection.rows if event is not None else []) if r < len(shown)]
    if rows:
        components.open_dialogue(str(shown.iloc[rows[0]]["dialogue_id"]))


def _rates(result: compare.Comparison) -> None:
    st.subheader("Rate change per failure point")
    st.plotly_chart(charts.rate_change_figure(result.rates, before=result.before, after=result.after),
                    key="compare_rates")
    rates = pd.concat([result.rates[result.rates["failure_point"] == cohorts.ANY_DEFECT],
                       result.rates[result.rates["failure_point"] != cohorts.ANY_DEFECT]])
    table = percent_points(rates, POINTS).assign(
        failure_point=["all defects" if fp == cohorts.ANY_DEFECT else label_name(fp) for fp in rates["failure_point"]])
    st.dataframe(
        table, hide_index=True, key="compare_rates_table",
        column_order=["failure_point", "rate_before", "rate_after", "change", "low", "high", "p_value", "q_value",
                      "count_before", "count_after"],
        column_config={
            "failure_point": st.column_config.TextColumn("fails at", pinned=True),
            "rate_before": components.percent_column("before"),
            "rate_after": components.percent_column("after"),
            **_points_columns(),
            "p_value": st.column_config.NumberColumn("p", format="%.1e"),
            "q_value": st.column_config.NumberColumn("q (BH)", format="%.1e",
                                                     help="Benjamini-Hochberg adjusted over the six rows"),
            "count_before": st.column_config.NumberColumn("failing before", format="%d",
                                                          help="Turns failing there, before"),
            "count_after": st.column_config.NumberColumn("failing after", format="%d",
                                                         help="Turns failing there, after"),
        },
    )
    how = ("exact McNemar test on the turns that moved, Newcombe's paired interval" if result.paired else
           "two-proportion z test, Newcombe's hybrid score interval")
    st.caption(f"Share of turns failing at each stage before and after, and the change (after minus before) with "
               f"its 95% interval; {how}. Red: the interval is above zero (the rate rose), blue: below zero (it "
               f"fell), grey: it holds zero. q corrects p for testing six failure points.")


def _points_columns() -> dict[str, object]:
    return {"change": st.column_config.NumberColumn("change", format="%+.2f pt", help="After minus before, in "
                                                                                      "percentage points"),
            "low": st.column_config.NumberColumn("95% low", format="%+.2f pt"),
            "high": st.column_config.NumberColumn("95% high", format="%+.2f pt")}


def _cohorts(data: ScoredTraces, result: compare.Comparison, sides: Sides, label_column: str) -> None:
    st.subheader("Cohorts whose rate changed")
    st.caption(f"{result.tested:,} cohort × failure point changes tested (device, locale, domain, intent; up to two "
               f"conditions; at least the minimum turns on each side), false discovery rate {result.level:g} "
               f"(Benjamini-Hochberg); most significant first. A combination whose change is no different from the "
               f"rest of a simpler cohort, or the same turns as one, is left out ({len(result.redundant):,} here).")
    table = result.cohorts
    if table.empty:
        st.info("No cohort's rate changed significantly at this level.")
        return
    shown = table.head(COHORTS_SHOWN)
    shown = percent_points(shown, POINTS).assign(
        cohort=[glossary.cohort_name(c) for c in shown["conditions"]],
        failure_point=["all defects" if fp == "defect" else label_name(fp) for fp in shown["failure_point"]])
    lists = sides.paired is None and (sides.before is not None or sides.after is not None)
    rows_shown = "|".join(shown["cohort"] + "/" + shown["failure_point"])
    key = f"{Keys.COMPARE_COHORTS}_{hashlib.sha1(f'{data.key}|{result.before}|{rows_shown}'.encode()).hexdigest()[:10]}"
    event = st.dataframe(
        shown.drop(columns=["conditions"]), hide_index=True, key=key,
        on_select="rerun" if lists else "ignore", selection_mode="single-row",
        column_order=["cohort", "failure_point", "rate_before", "rate_after", "change", "low", "high", "q_value",
                      "turns_before", "turns_after"],
        column_config={
            "cohort": st.column_config.TextColumn("cohort", width="medium", pinned=True),
            "failure_point": st.column_config.TextColumn("fails at"),
            "rate_before": components.percent_column("before"),
            "rate_after": components.percent_column("after"),
            **_points_columns(),
            "q_value": st.column_config.NumberColumn("q (BH)", format="%.1e",
                                                     help="Benjamini-Hochberg adjusted p-value"),
            "turns_before": st.column_config.NumberColumn("turns before", format="%d"),
            "turns_after": st.column_config.NumberColumn("turns after", format="%d"),
        },
    )
    if len(table) > len(shown):
        st.caption(f"The {len(shown):,} most significant of {len(table):,}; `fpi compare --json` lists all.")
    if not lists:
        if sides.paired is not None:
            st.caption("The turns of a cohort that moved are in the table above: pick where they moved from and to.")
        return
    st.caption("Select a cohort to list its failing turns in the loaded traces and open one in the drill-down.")
    rows = [r for r in (event.selection.rows if event is not None else []) if r < len(shown)]
    if rows:
        _cohort_turns(data, table.iloc[rows[0]], sides, label_column)


def _cohort_turns(data: ScoredTraces, row: pd.Series, sides: Sides, label_column: str) -> None:
    """The selected cohort's turns failing at its failure point, on the after side when it is loaded."""
    side, part = ("after", sides.after) if sides.after is not None else ("before", sides.before)
    assert part is not None
    conditions = tuple(tuple(c) for c in row["conditions"])
    target = str(row["failure_point"])
    inside = part[cohorts.cohort_mask(part, conditions)]
    values = inside[label_column]
    failing = values.notna() & (values != "correct" if target == cohorts.ANY_DEFECT else values == target)
    turns = dashboard.matching_turns(inside[failing.to_numpy(dtype=bool, na_value=False)])
    what = "fail at any stage" if target == cohorts.ANY_DEFECT else f"fail at {label_name(target)}"
    st.text(glossary.cohort_name(conditions))
    st.caption(f"The cohort's turns on the {side} side that {what} (by the "
               f"{'label' if label_column == LABEL_COLUMN else 'model'}), most confident first.")
    digest = hashlib.sha1(f"{data.key}|{conditions}|{target}|{side}|{label_column}".encode()).hexdigest()[:10]
    components.turns_table(turns.head(TURNS_SHOWN), key=f"{Keys.TURNS_TABLE}_compare_{digest}", total=len(turns))


if __name__ == "__main__":
    render()
