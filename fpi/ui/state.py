"""The app's session state behind one key and one typed accessor.

Pages never read or write `st.session_state` directly: they call `get_state()`
for the `AppState` of this browser session, and use the widget keys below
(Streamlit identifies widgets by string keys; they all live here).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import streamlit as st

from fpi.analysis.filtering import FILTER_PARAMS, FilterOptions, Filters, filters_from_params, filters_to_params
from fpi.model.explain import ExplanationCache
from fpi.review.audit import AuditResult
from fpi.scoring.frame import ScoredTraces

STATE_KEY = "fpi_app_state"


class Keys:
    """Widget keys, in one place so no two pages collide and state can be reset by group."""

    UPLOAD = "w_upload"
    BIG_FILE_PATH = "w_big_file_path"
    MAPPING_FORM = "w_mapping_form"
    FILTER_DATES = "w_filter_dates"
    FILTER_DEVICES = "w_filter_devices"
    FILTER_LOCALES = "w_filter_locales"
    FILTER_DOMAINS = "w_filter_domains"
    FILTER_PREDICTED = "w_filter_predicted"
    BREAKDOWN_DIMENSION = "w_breakdown_dimension"
    LABEL_CHART = "w_label_chart"
    COHORT_TABLE = "w_cohort_table"
    TURNS_TABLE = "w_turns_table"
    DIALOGUE_SEARCH = "w_dialogue_search"
    DIALOGUE_SELECT = "w_dialogue_select"
    DEFECTS_ONLY = "w_defects_only"
    EXPLAIN_TURN = "w_explain_turn"
    TURN_PAGE = "w_turn_page"
    SHAP_CLASS = "w_shap_class"
    ACTIVATE_VERSION = "w_activate_version"
    COHORT_SOURCE = "w_cohort_source"
    COHORT_COLUMNS = "w_cohort_columns"
    COHORT_LEVEL = "w_cohort_level"
    COHORT_MIN_SUPPORT = "w_cohort_min_support"
    COHORT_MAX_CONDITIONS = "w_cohort_max_conditions"
    COHORT_FOUND = "w_cohort_found"
    COHORT_RATES_COLUMN = "w_cohort_rates_column"
    FAIRNESS_COLUMN = "w_fairness_column"
    TRIAGE_ORDER = "w_triage_order"
    TRIAGE_LABEL = "w_triage_label"
    TRIAGE_SKIP_REVIEWED = "w_triage_skip_reviewed"
    TRIAGE_NOTE = "w_triage_note"
    TRIAGE_NAME_FORM = "w_triage_name_form"
    TRIAGE_NAME = "w_triage_name"
    TRIAGE_OTHER_UPLOADS = "w_triage_other_uploads"
    COMPARE_MODE = "w_compare_mode"
    COMPARE_SOURCE = "w_compare_source"
    COMPARE_LEVEL = "w_compare_level"
    COMPARE_MIN_SUPPORT = "w_compare_min_support"
    COMPARE_MODELS = "w_compare_models"
    COMPARE_DATE = "w_compare_date"
    COMPARE_COLUMN = "w_compare_column"
    COMPARE_VALUES = "w_compare_values"
    COMPARE_DATASETS = "w_compare_datasets"
    COMPARE_COHORTS = "w_compare_cohorts"
    COMPARE_MOVED = "w_compare_moved"
    COMPARE_MOVED_FROM = "w_compare_moved_from"
    COMPARE_MOVED_TO = "w_compare_moved_to"
    MAINTAINER_FORM = "w_maintainer_form"
    MAINTAINER_NAME = "w_maintainer_name"
    MAINTAINER_TOKEN = "w_maintainer_token"
    TEAM_ADJUDICATE = "w_team_adjudicate"
    TEAM_AUDIT = "w_team_audit"
    TEAM_ANALYSTS = "w_team_analysts"
    TEAM_SPLIT_BY = "w_team_split_by"
    TEAM_SPLIT_COLUMN = "w_team_split_column"
    TEAM_SPLIT_FORM = "w_team_split_form"

    FILTERS = (FILTER_DATES, FILTER_DEVICES, FILTER_LOCALES, FILTER_DOMAINS, FILTER_PREDICTED)


@dataclass(frozen=True)
class Rejection:
    """What is kept of a rejected file: its report and header, never its rows."""

    source: str
    message: str
    records: tuple[dict[str, Any], ...]
    columns: tuple[str, ...]
    suggestions: dict[str, str | None]
    from_upload: bool
    """True when the file came from the uploader (so a mapping can re-read it from there)."""


@dataclass(frozen=True)
class KeptScores:
    """One model's probabilities on one loaded upload, kept so that activating it needs no second scoring."""

    model_version: str
    content_hash: str
    proba: Any
    """(turns, labels) array in the upload's row order."""

    def fits(self, model_version: str, data: ScoredTraces) -> bool:
        return (self.model_version == model_version and self.content_hash == data.content_hash
                and len(self.proba) == len(data.frame))


@dataclass(frozen=True)
class Candidate:
    """The model this session trained and saved in the registry, waiting to be activated or dropped.

    One at a time: trained on the loaded labels (Model page), or retrained from labels plus verdicts
    (Triage page), which also says how it adapted (`strategy` set) and what the audit found.
    """

    version: str
    comparison: dict[str, Any]
    """`evaluate_predictions` report: active and candidate on the same held-out turns."""
    heldout_turns: int
    strategy: str | None = None
    """How it was retrained from verdicts (`fpi.review.adapt`); None for one trained on the labels alone or
    self-trained without labels."""
    base_version: str | None = None
    heldout_verdicts: int = 0
    training_turns: int = 0
    verdict_turns: int = 0
    audit: str | None = None
    """What the audit before retraining found (`AuditResult.summary`), None when it could not run."""
    held_back: int = 0
    """Turns left out because their analysts disagree and nobody adjudicated them yet."""
    upload_scores: KeptScores | None = field(default=None, compare=False, repr=False)
    """Its probabilities on the loaded upload, computed while it trained (None when they were not)."""
    label_shares: Any = field(default=None, compare=False, repr=False)
    """Self-trained without labels (Overview): per label, the share of turns the active model and the
    candidate give it (`SelfTrained.label_shares`); None for a candidate that learnt from labels."""
    changed: float = 0.0
    """Self-trained: the share of the upload's turns whose label it changes."""

    @property
    def from_verdicts(self) -> bool:
        return self.strategy is not None

    @property
    def label_free(self) -> bool:
        """Self-trained on the upload with no label read: nothing to compare it on."""
        return self.label_shares is not None


@dataclass
class TriageProgress:
    """Which turns of one dataset (by fingerprint) have verdicts, kept so the next item comes at once."""

    dataset: str | None = None
    analyst: str | None = None
    """Whose queue: an overlap turn judged by someone else is still open for another analyst."""
    reviewed: set[tuple[str, int]] = field(default_factory=set)
    """Turns with a verdict in the store (read once per dataset, then added to as verdicts are given)."""
    this_session: set[tuple[str, int]] = field(default_factory=set)
    skipped: set[tuple[str, int]] = field(default_factory=set)
    error: str | None = None
    """Why the last verdict could not be saved (shown once)."""


@dataclass
class AppState:
    data: ScoredTraces | None = None
    rejection: Rejection | None = None
    handled_upload: str | None = None
    """file_id of the last upload processed, so a rerun does not load it again."""
    dialogue_id: str | None = None
    drill_source: str | None = None
    """Which overview control the user touched last: "label" (bar) or "cohort" (table row)."""
    candidate: Candidate | None = None
    activated_scores: KeptScores | None = None
    """The just-activated candidate's kept probabilities, used once by the rescoring that follows."""
    notice: str | None = None
    """A one-time success message shown on the next page render."""
    explanations: ExplanationCache = field(default_factory=lambda: ExplanationCache(max_items=2000))
    triage_cohort: dict[str, str] | None = None
    """Conditions (column -> value) the triage queue is restricted to, set from the Cohorts page."""
    analyst: str | None = None
    """Who gives verdicts in this session when the app has no login configured (typed once)."""
    triage: TriageProgress = field(default_factory=TriageProgress)
    big_file: str | None = None
    """Path of a large scored Parquet file the overview summarises with DuckDB instead of `data`."""
    dataset: str | None = None
    """Fingerprint under which the loaded data is kept in FPI_HOME/datasets (what `?dataset=` names)."""
    sample: str | None = None
    """Which bundled sample ("labelled", "unlabelled") is the loaded data, None for the user's own file."""
    link_read: bool = False
    """The URL the session started with was read (a `?dataset=` in it is opened once)."""
    sample_offered: bool = False
    """The labelled sample was opened (or tried) for a session that started with nothing loaded: once only."""
    filters_from_url_done: bool = False
    """The URL's overview filters were applied (once per session and dataset)."""
    confirm_activation: str | None = None
    """A candidate version whose "Activate anyway" was clicked: the page asks to confirm it."""
    action_error: str | None = None
    """Why the last action run from a button callback failed (shown once, as an error)."""
    audit: AuditResult | None = None
    """The Team page's last audit of the loaded traces' verdicts (flagged verdicts to confirm or relabel)."""
    maintainer_token: str | None = None
    """Without login: the maintainer token this session typed (checked on every model change, never shown)."""


def get_state() -> AppState:
    """This session's state, created on first use."""
    if STATE_KEY not in st.session_state:
        st.session_state[STATE_KEY] = AppState()
    return st.session_state[STATE_KEY]


def drill_by_label() -> None:
    """Callback of the overview's clickable label chart: the matching turns follow the bar clicked."""
    get_state().drill_source = "label"


def drill_by_cohort() -> None:
    """Callback of the overview's cohort table: the matching turns follow the row selected."""
    get_state().drill_source = "cohort"


def reset_view_widgets() -> None:
    """Forget filter and selection widgets (values from one file may not exist in the next)."""
    prefixes = (*Keys.FILTERS, Keys.LABEL_CHART, Keys.COHORT_TABLE, Keys.TURNS_TABLE, Keys.DIALOGUE_SELECT,
                Keys.DIALOGUE_SEARCH, Keys.EXPLAIN_TURN, Keys.TURN_PAGE)
    for key in [k for k in st.session_state.keys() if str(k).startswith(prefixes)]:
        del st.session_state[key]


def show_dialogue(dialogue_id: str | None) -> None:
    """Make `dialogue_id` the drill-down's dialogue: state, its selectbox and the URL agree.

    Used as the callback of the previous/next buttons and of the dialogue selectbox.
    """
    if dialogue_id is None:
        return
    get_state().dialogue_id = dialogue_id
    st.session_state[Keys.DIALOGUE_SELECT] = dialogue_id
    st.session_state.pop(Keys.EXPLAIN_TURN, None)
    st.session_state.pop(Keys.TURN_PAGE, None)
    st.query_params["dialogue"] = dialogue_id
    st.query_params.pop("turn", None)  # the turn of the previous dialogue means nothing here


def show_selected_dialogue() -> None:
    """Callback of the dialogue selectbox."""
    show_dialogue(st.session_state.get(Keys.DIALOGUE_SELECT))


def widget_value(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def set_widget_value(key: str, value: Any) -> None:
    """Set a widget's value before it is drawn in this run (e.g. from a button above it)."""
    st.session_state[key] = value


def current_filters(options: FilterOptions) -> Filters:
    """The sidebar filters as a `Filters`, ignoring stale values and a full date range."""
    dates = widget_value(Keys.FILTER_DATES)
    date_range: tuple[date, date] | None = None
    if options.date_bounds and isinstance(dates, (tuple, list)) and len(dates) == 2:
        start, end = dates
        if (start, end) != tuple(options.date_bounds):
            date_range = (start, end)

    def chosen(key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v for v in (widget_value(key) or ()) if v in allowed)

    return Filters(
        date_range=date_range,
        devices=chosen(Keys.FILTER_DEVICES, options.devices),
        locales=chosen(Keys.FILTER_LOCALES, options.locales),
        domains=chosen(Keys.FILTER_DOMAINS, options.domains),
        predicted=chosen(Keys.FILTER_PREDICTED, options.predicted),
    )


def restore_filters_from_url(options: FilterOptions) -> None:
    """A fresh view opened from a link: the URL's filters become the sidebar's (once, before its widgets)."""
    state = get_state()
    if state.filters_from_url_done:
        return
    state.filters_from_url_done = True
    if any(key in st.session_state for key in Keys.FILTERS):
        return
    params = {name: st.query_params.get_all(name) for name in FILTER_PARAMS}
    filters = filters_from_params(params, options)
    if filters.date_range:
        st.session_state[Keys.FILTER_DATES] = filters.date_range
    for key, values in ((Keys.FILTER_DEVICES, filters.devices), (Keys.FILTER_LOCALES, filters.locales),
                        (Keys.FILTER_DOMAINS, filters.domains), (Keys.FILTER_PREDICTED, filters.predicted)):
        if values:
            st.session_state[key] = list(values)


def write_filters_to_url(filters: Filters) -> None:
    """The URL carries the overview's filters, so the filtered view can be shared and bookmarked."""
    params = filters_to_params(filters)
    for name in FILTER_PARAMS:
        if name in params:
            if st.query_params.get_all(name) != params[name]:
                st.query_params[name] = params[name]
        elif name in st.query_params:
            del st.query_params[name]


def clear_filters() -> None:
    """Callback of the "Clear filters" button."""
    for key in Keys.FILTERS:
        st.session_state.pop(key, None)
