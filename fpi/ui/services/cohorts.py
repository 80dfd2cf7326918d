"""Caches around `fpi.analysis.cohorts` and `fpi.analysis.fairness` for the Cohorts page (the same pattern as `fpi.ui.services`).

Keyed by the data's key (content hash + model version) and the settings, never
by the frame itself; nothing here computes.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fpi.ui.text import CACHE_TTL
from fpi.analysis import aggregates
from fpi.analysis import cohorts
from fpi.analysis import fairness as model_fairness
from fpi.analysis import gaps
from fpi.analysis.discovery import Discovery, discover_cohorts


@st.cache_data(show_spinner="Reading the cohort columns…", ttl=CACHE_TTL, max_entries=2)
def big_cohort_frame(key: str, path: str) -> pd.DataFrame:
    """A large scored file's cohort columns and predictions (categoricals, a few MB per million turns)."""
    return aggregates.cohort_frame(path)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=8)
def candidate_columns(data_key: str, label_column: str, _frame: pd.DataFrame) -> tuple[str, ...]:
    return cohorts.candidate_columns(_frame, label_column=label_column)[0]


@st.cache_data(show_spinner="Searching for cohorts…", ttl=CACHE_TTL, max_entries=16)
def discovery(data_key: str, label_column: str, columns: tuple[str, ...], level: float, min_support: int,
              max_conditions: int, _frame: pd.DataFrame) -> Discovery:
    return discover_cohorts(_frame, label_column=label_column, columns=columns, level=level,
                            min_support=min_support, max_conditions=max_conditions)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=64)
def profile(data_key: str, label_column: str, conditions: tuple[tuple[str, str], ...],
            _frame: pd.DataFrame) -> pd.DataFrame:
    return cohorts.cohort_profile(_frame, conditions, label_column=label_column)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=32)
def rates(data_key: str, label_column: str, column: str, _frame: pd.DataFrame) -> pd.DataFrame:
    return cohorts.cohort_rates(_frame, column, label_column=label_column)


@st.cache_data(show_spinner="Bootstrapping macro-F1 over dialogues…", ttl=CACHE_TTL, max_entries=16)
def performance(data_key: str, column: str, _frame: pd.DataFrame) -> pd.DataFrame:
    return model_fairness.cohort_performance(_frame, column)


@st.cache_data(show_spinner=False, ttl=CACHE_TTL, max_entries=16)
def fairness(data_key: str, level: float, _frame: pd.DataFrame) -> pd.DataFrame:
    return model_fairness.fairness(_frame, level=level)


@st.cache_data(show_spinner="Splitting the gaps by stage…", ttl=CACHE_TTL, max_entries=16)
def stage_gaps(data_key: str, label_column: str, level: float, min_support: int, _frame: pd.DataFrame) -> pd.DataFrame:
    return gaps.stage_gaps(_frame, label_column=label_column, level=level, min_support=min_support)
