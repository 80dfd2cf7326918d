"""What the pages call: caches around the package, and the few actions that change session state.

Caching, as Streamlit recommends: `st.cache_resource` for models (shared, never
mutated), `st.cache_data` for frames and tables (keyed by the upload's content
hash, the column mapping and the model version, never by the frame itself).
Nothing here computes: the work is in `fpi.scoring.frame`, `fpi.analysis.dashboard`,
`fpi.model.explain`, `fpi.model.report` and `fpi.model.registry`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from fpi.analysis import aggregates, filtering, navigation
from fpi.ui import charts
from fpi.analysis import dashboard
from fpi.model import trust
from fpi.config import SAMPLE_LABELLED, SAMPLE_UNLABELLED, Config
from fpi.data.datasets import DatasetError, DatasetStore, store_from_env
from fpi.analysis.episodes import EpisodeSummary
from fpi.analysis.episodes import episode_summary as summarize_episodes
from fpi.errors import FpiError, ModelError, ScoredFileError, TraceError
from fpi.model.explain import TurnExplanation, beeswarm_data, global_importance
from fpi.model.estimator import FailurePointModel
from fpi.model.persistence import load_problem
from fpi.model.training import TrainConfig
from fpi.model.report import compare_models, current_data_report, heldout_mask
from fpi.analysis.monitor import Monitoring, monitor
from fpi.model.registry import Registry, read_meta
from fpi.scoring.frame import ScoredTraces, content_hash, file_columns, mapping_suggestions, score_frame
from fpi.data.summary import dataset_fingerprint
from fpi.data.traces import check_upload_size, load_traces
from fpi.ui.text import CACHE_TTL, md_escape
from fpi.ui.state import AppState, Candidate, Rejection, reset_view_widgets

SAMPLES: dict[str, Path] = {"labelled": SAMPLE_LABELLED, "unlabelled": SAMPLE_UNLABELLED}
"""The bundled sample traces offered by one click."""

TRAIN_CONFIG = TrainConfig()
"""How the Model page trains a candidate (the package defaults; tests use a quicker one)."""

UPLOAD_LIMIT_MB = 1024
"""Must match `server.maxUploadSize` in .streamlit/config.toml."""


# ---------------------------------------------------------------- model

def registry() -> Registry:
    return Registry.from_config()


@st.cache_resource(show_spinner="Loading the model…", ttl=CACHE_TTL, max_entries=4)
def _load_model(path: str, sha256: str) -> FailurePointModel:
    """One loaded model per (directory, model sha): a retrained directory loads afresh."""
    return FailurePointModel.load(path)


@st.cache_data(show_spinner="Checking the model…", ttl=CACHE_TTL, max_entries=16)
def _load_problem(path: str, sha256: str) -> str | None:
    """Why the model cannot be loaded, found in a child process (a crafted model.txt can crash
    LightGBM's parser: it must cost a child, not the server); once per (directory, model sha)."""
    return load_problem(path)


def active_model() -> FailurePointModel:
    """The registry's active model (raises `ModelError` with the reason when it can't be loaded).

    Its trees are compiled in a background thread the first time it is active (after
    activation, or at start), once per model: scoring uses `Booster.predict` until then.
    """
    path = registry().active_path()
    sha = str(read_meta(path).get("model_sha256", ""))
    problem = _load_problem(str(path), sha)
    if problem is not None:
        raise ModelError(problem)
    model = _load_model(str(path), sha)
    model.compiled.build(background=True)  # a no-op once built, building, switched off or impossible
    return model


# ---------------------------------------------------------------- loading and scoring

@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=2)
def _validated(digest: str, name: str, column_map: tuple[tuple[str, str], ...], _data: bytes) -> pd.DataFrame:
    return load_traces(_data, column_map=dict(column_map) or None, name=name)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=2)
def _scored(
    digest: str, name: str, column_map: tuple[tuple[str, str], ...], model_version: str,
    _frame: pd.DataFrame, _model: FailurePointModel,
) -> ScoredTraces:
    return score_frame(_frame, model=_model, source=name, digest=digest)


def load_into_state(
    state: AppState, data: bytes, *, name: str, column_map: Mapping[str, str] | None = None, from_upload: bool,
    sample: str | None = None, dataset: str | None = None,
) -> bool:
    """Check and score a file with a visible progress; on success it becomes the active data.

    A rejected file leaves the previous data active and only its report (and
    header, for the mapping form) in the state. A file over the row or decompressed-size
    limit (`Config.max_upload_rows`, `max_upload_bytes`) is refused before any value is read.
    """
    mapping = tuple(sorted((column_map or {}).items()))
    digest = content_hash(data)
    label = md_escape(name)
    with st.status(f"Loading {label}…", expanded=True) as status:
        bar = st.progress(0.0, text="reading and checking the file")
        try:
            config = Config.from_env()  # the limits first: a file over them is refused unread
            check_upload_size(data, max_rows=config.max_upload_rows, max_bytes=config.max_upload_bytes, source=name)
            model = active_model()
            started = time.perf_counter()
            frame = _validated(digest, name, mapping, data)
            read = time.perf_counter() - started
            bar.progress(0.35, text=f"scoring {len(frame):,} turns with model {model.version}")
            started = time.perf_counter()
            scored = _scored(digest, name, mapping, model.version, frame, model)
            scoring = time.perf_counter() - started
            # Timings per step, for the benchmark: st.cache_data's own cost (pickling) shown apart.
            scored = replace(scored, seconds={"read and check": read, **scored.seconds,
                                              "cache (pickle)": max(0.0, scoring - sum(scored.seconds.values()))})
        except TraceError as exc:
            columns = tuple(file_columns(data))
            state.rejection = Rejection(
                source=name, message=exc.report().splitlines()[0], records=tuple(exc.web_records()),
                columns=columns, suggestions=mapping_suggestions(exc, columns, keep_unmatched=from_upload), from_upload=from_upload,
            )
            status.update(label=f"{label} was rejected" + ("; the previous data stays active" if state.data else ""),
                          state="error")
            return False
        except FpiError as exc:
            status.update(label=f"{label} could not be scored", state="error")
            st.error(md_escape(exc))
            return False
        bar.progress(1.0, text="done")
        status.update(label=f"Loaded {label}: {len(scored.frame):,} turns scored", state="complete", expanded=False)
    state.data, state.rejection, state.candidate = scored, None, None
    state.sample = sample
    state.dataset = keep_dataset(scored, data, name=name, column_map=dict(mapping), fingerprint=dataset)
    state.big_file = None
    state.dialogue_id = None
    state.notice = f"Loaded {name}: {len(scored.frame):,} turns in {scored.summary.dialogues:,} dialogues."
    reset_view_widgets()
    return True


def load_sample(state: AppState, which: str) -> bool:
    path = SAMPLES[which]
    if not path.is_file():
        st.error(f"The {which} sample is missing at {md_escape(path)}. Create it with "
                 f"`fpi simulate --dialogues 2000 --seed 1 -o {path}` or upload a file.")
        return False
    return load_into_state(state, path.read_bytes(), name=f"{path.name} (sample)", from_upload=False, sample=which)


# ---------------------------------------------------------------- datasets kept for links

def dataset_store() -> DatasetStore:
    return store_from_env(Config.from_env().home)


@st.cache_data(show_spinner="Fingerprinting the traces…", ttl=CACHE_TTL, max_entries=8)
def _dataset_fingerprint(content_hash: str, column_map: tuple[tuple[str, str], ...], _raw: pd.DataFrame) -> str:
    return dataset_fingerprint(_raw)


def keep_dataset(scored: ScoredTraces, data: bytes, *, name: str, column_map: dict[str, str],
                 fingerprint: str | None = None) -> str | None:
    """Keep the file on the server so links to it work in any session; its fingerprint, or None when it
    could not be kept (the data still works in this session, only links to it don't)."""
    fingerprint = fingerprint or _dataset_fingerprint(scored.content_hash, tuple(sorted(column_map.items())),
                                                      scored.raw)
    predictions = [c for c in scored.frame.columns if c == dashboard.PREDICTED or str(c).startswith("p_")]
    try:
        dataset_store().save(data, fingerprint=fingerprint, name=name, column_map=column_map,
                             scores=scored.frame[["dialogue_id", "turn_index", *predictions]].reset_index(drop=True),
                             model_version=scored.model_version)
    except (DatasetError, OSError) as exc:
        st.warning(f"These traces work in this session, but links to them won't: they could not be kept on the "
                   f"server ({md_escape(exc)}).")
        return None
    return fingerprint


def open_linked_dataset(state: AppState) -> None:
    """A link names a dataset (`?dataset=<fingerprint>`): open it from the server.

    Only the URL a session starts with is a link; after that the app writes the URL itself, and a
    `dataset` left in it from before an upload must not load the old data back.
    """
    if state.link_read:
        return
    state.link_read = True
    linked = st.query_params.get("dataset")
    if not linked or linked == state.dataset:
        return
    state.sample_offered = True  # the link decides what is open, not the sample
    try:
        stored, data = dataset_store().read(linked)
    except DatasetError as exc:
        st.warning(f"The link names a dataset that is not on this server: {md_escape(exc)}. "
                   "Ask for the file, or load it on the Data page.")
        del st.query_params["dataset"]
        return
    dialogue, turn = st.query_params.get("dialogue"), st.query_params.get("turn")
    load_into_state(state, data, name=stored.name, column_map=stored.column_map, from_upload=False,
                    sample=stored.name.split(".")[0] if stored.name.endswith(" (sample)") else None,
                    dataset=stored.fingerprint)
    state.notice = f"Opened {stored.name} from a link."
    state.filters_from_url_done = False  # the link's overview filters apply to the data it opened
    if dialogue:  # loading resets the view; the link's dialogue and turn come back
        state.dialogue_id = dialogue
        st.query_params["dialogue"] = dialogue
    if turn:
        st.query_params["turn"] = turn
    st.rerun()  # draw the page afresh, without the loading box


def sync_dataset_param(state: AppState) -> None:
    """Every view's URL names its dataset, so copying it gives a colleague the same data."""
    if state.data is not None and state.dataset and st.query_params.get("dataset") != state.dataset:
        st.query_params["dataset"] = state.dataset


def open_sample_once(state: AppState) -> None:
    """A session that starts with nothing loaded gets the labelled sample, so every page is populated at once.

    Only once per session: after the user replaces it, opens a large file or a file is rejected,
    nothing is loaded behind their back.
    """
    if state.sample_offered:
        return
    state.sample_offered = True
    if state.data is None and state.big_file is None and state.rejection is None and SAMPLES["labelled"].is_file():
        if load_sample(state, "labelled"):
            state.notice = None  # the banner says what is open
            st.rerun()  # draw the first screen afresh, without the loading box


def rescore_if_model_changed(state: AppState) -> None:
    """After another model was activated, score the loaded data with it (once)."""
    if state.data is None:
        return
    model = active_model()
    if state.data.model_version == model.version:
        return
    with st.status(f"Scoring {md_escape(state.data.source)} with model {model.version}…", expanded=False) as status:
        state.data = _scored(state.data.content_hash, state.data.source, (), model.version, state.data.raw, model)
        status.update(label=f"Scored with model {model.version}", state="complete")
    state.explanations = type(state.explanations)(max_items=state.explanations.max_items)


# ---------------------------------------------------------------- dashboards

@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=8)
def filter_options(data_key: str, _frame: pd.DataFrame) -> filtering.FilterOptions:
    return filtering.filter_options(_frame)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=32)
def overview(data_key: str, filters: filtering.Filters, _frame: pd.DataFrame) -> dashboard.Overview:
    return dashboard.overview(filtering.apply_filters(_frame, filters))


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=32)
def monitoring(data_key: str, filters: filtering.Filters, _frame: pd.DataFrame) -> Monitoring | None:
    """Control limits of the filtered turns, by hour, day or week as the time chart; None without timestamps."""
    frame = filtering.apply_filters(_frame, filters)
    stamps = frame["timestamp"].dropna() if "timestamp" in frame.columns else pd.Series(dtype=object)
    if stamps.empty:
        return None
    by = {"h": "hour", "D": "day", "W": "week"}[dashboard.pick_frequency(stamps.min(), stamps.max())]
    return monitor(frame, by=by)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=32)
def episode_summary(data_key: str, filters: filtering.Filters, _frame: pd.DataFrame) -> EpisodeSummary:
    return summarize_episodes(filtering.apply_filters(_frame, filters))


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=64)
def breakdown(data_key: str, filters: filtering.Filters, column: str, _frame: pd.DataFrame) -> pd.DataFrame:
    return dashboard.breakdown(filtering.apply_filters(_frame, filters), column)


def filtered(data: ScoredTraces, filters: filtering.Filters) -> pd.DataFrame:
    return filtering.apply_filters(data.frame, filters)


# ---------------------------------------------------------------- a large scored file, summarised by DuckDB

@dataclass(frozen=True)
class BigFile:
    """A scored Parquet file opened by path: never loaded, every number comes from `fpi.analysis.aggregates`."""

    path: str
    key: str
    """Path, size and modification time: a rewritten file is summarised afresh."""
    turns: int
    columns: frozenset[str]

    @property
    def name(self) -> str:
        return Path(self.path).name


def big_file(path: str) -> BigFile:
    """The opened file's footer facts (raises `ScoredFileError` when it is gone or not scored)."""
    turns = aggregates.check_scored(path, root=Config.from_env().data_dir)
    path = str(Path(path).expanduser().resolve())  # checked above: resolves without error
    stat = Path(path).stat()
    return BigFile(path=path, key=f"{path}|{stat.st_size}|{stat.st_mtime_ns}", turns=turns,
                   columns=frozenset(aggregates.scored_columns(path)))


def open_big_file(state: AppState, path: str) -> bool:
    """Make a scored Parquet file the overview's data, after checking its schema; else show why not."""
    path = path.strip()
    if not path:
        st.error("Give the path of a Parquet file scored by `fpi predict`.")
        return False
    try:
        info = big_file(path)
    except ScoredFileError as exc:
        st.error(md_escape(exc))
        return False
    state.big_file = info.path
    state.data, state.sample, state.candidate = None, None, None  # the big file is the data now
    state.dialogue_id = None
    state.notice = f"Opened {info.name}: {info.turns:,} scored turns (summarised with DuckDB, not loaded)."
    reset_view_widgets()
    return True


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=8)
def big_filter_options(key: str, path: str) -> filtering.FilterOptions:
    return aggregates.filter_options(path)


@st.cache_data(show_spinner="Summarising with DuckDB…", ttl=CACHE_TTL, max_entries=32)
def big_overview(key: str, path: str, filters: filtering.Filters) -> dashboard.Overview:
    return aggregates.overview(path, filters)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=64)
def big_breakdown(key: str, path: str, filters: filtering.Filters, column: str) -> pd.DataFrame:
    return aggregates.breakdown(path, column, filters)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=32)
def big_matching_turns(key: str, path: str, filters: filtering.Filters, predicted: str | None,
                       cohort: tuple[str, str] | None, defects_only: bool, limit: int) -> tuple[pd.DataFrame, int]:
    """The `limit` most confident matching turns and how many match in all."""
    options = dict(predicted=predicted, cohort=cohort, defects_only=defects_only)
    return (aggregates.matching_turns(path, filters, limit=limit, **options),
            aggregates.matching_count(path, filters, **options))


def matching_turns(data: ScoredTraces, filters: filtering.Filters, *, predicted: str | None = None,
                   cohort: tuple[str, str] | None = None, defects_only: bool = False,
                   limit: int) -> tuple[pd.DataFrame, int]:
    """As `big_matching_turns`, for the data in memory."""
    frame = filtered(data, filters)
    if defects_only:
        frame = frame[frame[dashboard.PREDICTED] != "correct"]
    turns = dashboard.matching_turns(frame, predicted=predicted, cohort=cohort)
    return turns.head(limit), len(turns)


@dataclass(frozen=True)
class OverviewSource:
    """What the overview shows: the data in memory, or a large scored file summarised by DuckDB."""

    key: str
    turns: int
    columns: frozenset[str]
    big: BigFile | None
    data: ScoredTraces | None

    def breakdown(self, filters: filtering.Filters, column: str) -> pd.DataFrame:
        if self.big is not None:
            return big_breakdown(self.big.key, self.big.path, filters, column)
        assert self.data is not None
        return breakdown(self.data.key, filters, column, self.data.frame)

    def matching_turns(self, filters: filtering.Filters, *, limit: int, predicted: str | None = None,
                       cohort: tuple[str, str] | None = None, defects_only: bool = False) -> tuple[pd.DataFrame, int]:
        if self.big is not None:
            return big_matching_turns(self.big.key, self.big.path, filters, predicted, cohort, defects_only, limit)
        assert self.data is not None
        return matching_turns(self.data, filters, predicted=predicted, cohort=cohort, defects_only=defects_only,
                              limit=limit)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=32)
def strip_figure(data_key: str, dialogue_id: str, page: int, _turns: pd.DataFrame,
                 _episodes: pd.DataFrame | None = None) -> go.Figure:
    """The turn strip of one page of a dialogue (its episodes framed), built once per (data, dialogue, page)."""
    return charts.confidence_strip_figure(navigation.stage_strip(_turns), episodes=_episodes)


# ---------------------------------------------------------------- explanations

def explain(state: AppState, model: FailurePointModel, rows: list[int]) -> list[TurnExplanation]:
    """Explanations of the given rows, computed once per (model, data, turn) in this session."""
    assert state.data is not None
    return state.explanations.explain(model, state.data.features, rows, data_key=state.data.key,
                                      frame=state.data.frame)


@st.cache_data(show_spinner="Computing SHAP values on a sample…", ttl=CACHE_TTL, max_entries=8)
def importance(data_key: str, model_version: str, _model: FailurePointModel, _data: ScoredTraces) -> pd.DataFrame:
    predicted = _data.frame[dashboard.PREDICTED].to_numpy(dtype=object)
    return global_importance(_model, _data.features, predicted=predicted, sample_size=2000)


@st.cache_data(show_spinner="Computing SHAP values on a sample…", ttl=CACHE_TTL, max_entries=32)
def beeswarm(data_key: str, model_version: str, label: str, _model: FailurePointModel, _data: ScoredTraces) -> pd.DataFrame:
    predicted = _data.frame[dashboard.PREDICTED].to_numpy(dtype=object)
    return beeswarm_data(_model, _data.features, label=label, predicted=predicted, sample_size=1000)


@st.cache_data(show_spinner="Evaluating on the labelled turns…", ttl=CACHE_TTL, max_entries=8)
def evaluation(data_key: str, model_version: str, _model: FailurePointModel, _data: ScoredTraces
               ) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    return current_data_report(_model, _data.frame)


@st.cache_data(show_spinner="Checking how far the labels can be trusted…", ttl=CACHE_TTL, max_entries=8)
def trust_report(data_key: str, model_version: str, _model: FailurePointModel, _data: ScoredTraces
                 ) -> trust.TrustReport:
    """`fpi.model.trust.assess` on the loaded data: F1 on its labels, or its shift from the training data."""
    return trust.assess(_model, _data.frame, _data.features)


# ---------------------------------------------------------------- training

def train_candidate(state: AppState) -> None:
    """Train on the loaded data's labelled turns with a progress bar, save it, compare it with the active model."""
    assert state.data is not None
    from fpi.ui.services import team  # team builds on this module

    who = team.require(state, "train")
    frame = state.data.raw
    bar = st.progress(0.0, text="starting")
    model = FailurePointModel(config=TRAIN_CONFIG).fit(
        frame, progress=lambda message, done: bar.progress(min(1.0, max(0.0, done)), text=message))
    entry = registry().save_candidate(model)
    bar.progress(1.0, text=f"saved as {entry.version}")
    team.done(who, "train", entry.version)
    active = active_model()
    mask = heldout_mask(frame, model.config)
    comparison = compare_models({f"active ({active.version})": active, f"candidate ({entry.version})": model},
                                frame, mask=mask)
    state.candidate = Candidate(version=entry.version, comparison=comparison, heldout_turns=int(np.sum(mask)))


def activate(state: AppState, version: str) -> None:
    """Activate as the session's actor: only a maintainer may; logged either way (`fpi.review.roles`)."""
    from fpi.ui.services import team  # team builds on this module

    team.activate(state, version)
    state.candidate = None


def rollback(state: AppState) -> str:
    from fpi.ui.services import team  # team builds on this module

    version = team.rollback(state)
    state.candidate = None
    return version
