"""What the Overview and the drill-down show of the loaded traces, cached by upload, model and filters.

An upload in memory is summarised with pandas (`fpi.analysis.dashboard`); a big scored Parquet file
with DuckDB (`fpi.analysis.aggregates`); `OverviewSource` hides which one the page reads.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from fpi.analysis import aggregates, dashboard, filtering, navigation
from fpi.ui import charts
from fpi.analysis.episodes import EpisodeSummary, episode_summary as summarize_episodes
from fpi.analysis.monitor import Monitoring, monitor
from fpi.scoring.frame import ScoredTraces
from fpi.ui.text import CACHE_TTL
from fpi.data.schema import PREDICTED_COLUMN
from fpi.ui.services.loading import BigFile


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
        frame = frame[frame[PREDICTED_COLUMN] != "correct"]
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
