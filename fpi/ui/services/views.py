"""What the Overview and the drill-down show of the loaded traces, cached by upload, model and filters.

`OverviewSource` is the session's one scored source; it asks `fpi.analysis.overview` (pandas on an upload
in memory, DuckDB on a large scored Parquet file) and caches the answers, so no page asks which it has.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from fpi.analysis import dashboard, filtering, navigation
from fpi.ui import charts
from fpi.analysis.episodes import EpisodeSummary, Similarity, episode_summary as summarize_episodes
from fpi.analysis.monitor import Monitoring, monitor
from fpi.model.text_measures import SIMILARITY_MAX_CHARS
from fpi.scoring.frame import ScoredTraces
from fpi.ui.text import CACHE_TTL
from fpi.ui.services.loading import BigFile, big_file
from fpi.ui.state import AppState
from fpi.analysis.overview import FrameOverview, OverviewData, ParquetOverview


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
def episode_summary(data_key: str, filters: filtering.Filters, _data: ScoredTraces) -> EpisodeSummary:
    """Unfiltered, the retries' text similarity is the one the features already computed."""
    features = _data.features
    similarity = (Similarity(features["prev_text_similarity"], max_chars=SIMILARITY_MAX_CHARS)
                  if "prev_text_similarity" in features.columns else None)
    return summarize_episodes(filtering.apply_filters(_data.frame, filters), similarity=similarity)


def filtered(data: ScoredTraces, filters: filtering.Filters) -> pd.DataFrame:
    return filtering.apply_filters(data.frame, filters)


@st.cache_data(show_spinner="Summarising…", ttl=CACHE_TTL, max_entries=128)
def _answer(key: str, question: str, args: tuple[Any, ...], options: tuple[tuple[str, Any], ...],
            _answers: OverviewData) -> Any:
    """One question of `OverviewData`, cached by the source's key and the question with its arguments."""
    return getattr(_answers, question)(*args, **dict(options))


@dataclass(frozen=True)
class OverviewSource:
    """The scored traces the pages read: the upload in memory, or a large scored file summarised by DuckDB.

    Pages get it from `loaded_source` and ask it what they show; the answers come from
    `fpi.analysis.overview` (pandas or DuckDB, the same tables either way), cached here.
    """

    key: str
    turns: int
    columns: frozenset[str]
    big: BigFile | None
    data: ScoredTraces | None

    @classmethod
    def in_memory(cls, data: ScoredTraces) -> OverviewSource:
        return cls(key=data.key, turns=len(data.frame), columns=frozenset(data.frame.columns), big=None, data=data)

    @property
    def name(self) -> str:
        """Where the traces came from, as the pages show it."""
        return self.big.path if self.big is not None else self.data.source  # type: ignore[union-attr]

    @property
    def answers(self) -> OverviewData:
        if self.big is not None:
            return ParquetOverview(self.big.path)
        assert self.data is not None
        return FrameOverview(self.data.frame)

    def filter_options(self) -> filtering.FilterOptions:
        return _answer(self.key, "filter_options", (), (), self.answers)

    def overview(self, filters: filtering.Filters) -> dashboard.Overview:
        return _answer(self.key, "overview", (filters,), (), self.answers)

    def breakdown(self, filters: filtering.Filters, column: str) -> pd.DataFrame:
        return _answer(self.key, "breakdown", (filters, column), (), self.answers)

    def matching_turns(self, filters: filtering.Filters, *, limit: int, predicted: str | None = None,
                       cohort: tuple[str, str] | None = None, defects_only: bool = False) -> tuple[pd.DataFrame, int]:
        options = (("limit", limit), ("predicted", predicted), ("cohort", cohort), ("defects_only", defects_only))
        return _answer(self.key, "matching_turns", (filters,), options, self.answers)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=32)
def strip_figure(data_key: str, dialogue_id: str, page: int, _turns: pd.DataFrame,
                 _episodes: pd.DataFrame | None = None) -> go.Figure:
    """The turn strip of one page of a dialogue (its episodes framed), built once per (data, dialogue, page)."""
    return charts.confidence_strip_figure(navigation.stage_strip(_turns), episodes=_episodes)


def loaded_source(state: AppState) -> OverviewSource | None:
    """The one scored source of the session, or None: a large file opened by path, else the upload.

    Opening either unloads the other (`loading.open_big_file`, `loading.load_into_state`), so
    every page that reads the source sees the same traces. Raises `FpiError` when the large
    file cannot be read any more.
    """
    if state.big_file is not None:
        big = big_file(state.big_file)
        return OverviewSource(key=big.key, turns=big.turns, columns=big.columns, big=big, data=None)
    if state.data is not None:
        return OverviewSource.in_memory(state.data)
    return None
