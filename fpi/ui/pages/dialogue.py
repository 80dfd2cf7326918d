"""Dialogue drill-down: one dialogue turn by turn, what the model blames on each turn, and why.

Deep link: `?dialogue=ID`. Trace text is shown with `st.text` only (see `fpi.ui.components`).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fpi.ui import model_charts, components
from fpi.analysis import navigation
from fpi.analysis.episodes import episodes
from fpi.display import format_time, label_name, plural
from fpi.data.schema import LABEL_COLUMN, LABELS, PREDICTED_COLUMN
from fpi.ui.services import models, views
from fpi.ui.state import AppState, Keys, current_filters, set_widget_value, show_dialogue, show_selected_dialogue

NAMES = components.LABEL_NAMES
SELECTOR_LIMIT = 500


def render() -> None:
    state, model = components.page_setup()
    st.title("Dialogue drill-down")
    if state.data is None:
        components.no_data(state, what="dialogue")
        return
    data = state.data
    frame = data.frame
    known = set(navigation.dialogue_ids(frame))
    filters = current_filters(views.OverviewSource.in_memory(data).filter_options())
    defect_ids = navigation.defect_dialogues(views.filtered(data, filters))

    linked = st.query_params.get("dialogue")
    if linked and linked != state.dialogue_id:
        if linked in known:
            state.dialogue_id = linked
        else:
            st.warning("The linked dialogue is not in the loaded traces; showing another one. The link asked for:")
            st.text(linked)
    if state.dialogue_id not in known:  # never a huge dialogue by default: drawing one is the user's choice
        state.dialogue_id = navigation.default_dialogue(frame, defect_ids)
    current = state.dialogue_id
    st.query_params["dialogue"] = current

    _navigation(state, views.filtered(data, filters), defect_ids, filters.active)
    turns = navigation.dialogue_turns(frame, current)
    _header(turns)
    pages = navigation.page_count(len(turns))
    page = 0
    if pages > 1:
        page = int(st.number_input(f"Turns page (of {pages:,}; {navigation.TURNS_PER_PAGE} turns a page)",
                                   min_value=1, max_value=pages, step=1, key=Keys.TURN_PAGE)) - 1
    shown = navigation.turns_page(turns, page)
    st.plotly_chart(views.strip_figure(data.key, current, page, shown, episodes(turns)), key="strip")
    st.caption("Stage confidences per turn (red low, green high; — not logged). "
               "The black box marks the stage the model names as the failure point; a dashed red frame, a defect "
               "episode (a failure and the user's retries of it).")
    for _, turn in shown.iterrows():
        _turn(turn)
    if model is not None:
        _explanation(state, model, shown)


def _navigation(state: AppState, frame: pd.DataFrame, defect_ids, filtered: bool) -> None:
    """Previous/next defect, search and the dialogue selector, all within the overview's filters (`frame`)."""
    current = state.dialogue_id
    previous = navigation.neighbour_dialogue(defect_ids, current, step=-1)
    following = navigation.neighbour_dialogue(defect_ids, current, step=1)
    left, middle, right = st.columns([1, 3, 1], vertical_alignment="bottom")
    left.button("◀ Previous defect", on_click=show_dialogue, args=(previous,), disabled=previous is None,
                width="stretch", help="The previous dialogue with a predicted defect"
                + (" (within the overview's filters)." if filtered else "."))
    right.button("Next defect ▶", on_click=show_dialogue, args=(following,), disabled=following is None,
                 width="stretch", help="The next dialogue with a predicted defect"
                 + (" (within the overview's filters)." if filtered else "."))
    with middle:
        search_col, select_col = st.columns([1, 2])
        query = search_col.text_input("Search id or words", key=Keys.DIALOGUE_SEARCH,
                                      placeholder="e.g. d000123 or 'play'")
        matches = navigation.search_dialogues(frame, query, limit=None)
        options = matches[:SELECTOR_LIMIT]
        if current not in options:
            options = [current, *options]
        set_widget_value(Keys.DIALOGUE_SELECT, current)
        where = " within the filters" if filtered else ""
        listed = f"; the first {SELECTOR_LIMIT:,} listed" if len(matches) > SELECTOR_LIMIT else ""
        select_col.selectbox(f"Dialogue ({plural(len(matches), 'match', 'matches')}{where}{listed})", options,
                             key=Keys.DIALOGUE_SELECT, on_change=show_selected_dialogue)
    has = "has" if len(defect_ids) == 1 else "have"
    st.caption(f"{plural(len(defect_ids), 'dialogue')} {has} a predicted defect"
               + (" within the overview's filters." if filtered else "."))


def _header(turns: pd.DataFrame) -> None:
    first = turns.iloc[0]
    info = {"dialogue": first["dialogue_id"], "turns": len(turns)}
    for column, name in (("device_type", "device"), ("locale", "locale"), ("timestamp", "started")):
        if column in turns.columns:
            info[name] = format_time(first[column]) if column == "timestamp" else first[column]
    defects = int((turns[PREDICTED_COLUMN] != "correct").sum())
    info["predicted defects"] = defects
    st.dataframe(pd.DataFrame([info]), hide_index=True, placeholder="—")


def _turn(turn: pd.Series) -> None:
    predicted = str(turn[PREDICTED_COLUMN])
    probability = float(turn[f"p_{predicted}"])
    with st.container(border=True):
        left, right = st.columns([3, 2], gap="medium")
        with left:
            when = turn.get("timestamp")
            bits = [f"Turn {int(turn['turn_index'])}"]
            if when is not None and not pd.isna(when):
                bits.append(format_time(when))
            barge = turn.get("barge_in")
            if barge is not None and not pd.isna(barge) and bool(barge):
                bits.append("the user interrupted the response (barge-in)")
            st.caption(" · ".join(bits))
            components.plain("User said (ASR)", turn.get("asr_text"))
            components.plain("Assistant said", turn.get("response_text"))
        with right:
            verdict = "correct" if predicted == "correct" else f"fails at {NAMES[predicted]}"
            st.markdown(f"**Predicted: {verdict}** (p = {probability:.2f})")
            human = turn.get(LABEL_COLUMN)
            if human is not None and not pd.isna(human) and str(human) in LABELS:
                agree = "agrees" if str(human) == predicted else "differs"
                st.markdown(f"Human label: **{NAMES[str(human)]}** ({agree})")
            probs = " · ".join(f"{NAMES[label]} {float(turn[f'p_{label}']):.2f}" for label in LABELS)
            st.caption(probs)


def _explanation(state: AppState, model, turns: pd.DataFrame) -> None:
    st.subheader("Why the model says so")
    indices = [int(i) for i in turns["turn_index"]]
    defective = [int(t) for t, p in zip(turns["turn_index"], turns[PREDICTED_COLUMN]) if p != "correct"]
    default = defective[0] if defective else indices[0]
    linked = st.query_params.get("turn")
    if linked is not None and linked.isdigit() and int(linked) in indices:
        default = int(linked)  # a link names the turn to explain
    choice = st.segmented_control("Explain turn", indices, default=default, key=Keys.EXPLAIN_TURN,
                                  format_func=lambda t: f"turn {t}", required=True)
    chosen = default if choice is None else int(choice)
    st.query_params["turn"] = str(chosen)
    row = int(turns.index[indices.index(chosen)])
    explanation = models.explain(state, model, [row])[0]
    st.caption(f"Evidence for '{label_name(explanation.label)}' on turn {chosen}, in log-odds: "
               "red pushes toward the label, blue away from it.")
    st.text("\n".join(("▲ " if r.contribution > 0 else "▼ ") + r.text for r in explanation.reasons)
            or "No feature moved this turn's score.")
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.plotly_chart(model_charts.waterfall_figure(explanation), key="waterfall")
    with right:
        st.plotly_chart(model_charts.stage_group_figure(explanation), key="stage_groups")
        st.caption("The same evidence summed per pipeline stage and context group.")
    st.caption("Hover a bar for what its feature means; every feature of the chart and the reasons is explained "
               "below.")
    components.glossary_expander([r.feature for r in explanation.evidence[:10]],
                                 title="What these features mean")


if __name__ == "__main__":
    render()
