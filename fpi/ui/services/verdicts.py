"""The verdict store every page shares: one engine per database URL (Triage, Team and the model log use it)."""
from __future__ import annotations

import streamlit as st

from fpi.config import Config
from fpi.review.store import VerdictStore
from fpi.ui.text import CACHE_TTL


@st.cache_resource(show_spinner=False, ttl=CACHE_TTL, max_entries=4)
def _store(url: str) -> VerdictStore:
    """One store (engine and connection pool) per database URL, shared by all sessions."""
    return VerdictStore(url)


def verdict_store() -> VerdictStore:
    """The store at FPI_DB_URL (or the SQLite file in FPI_HOME); raises `StoreError` when unusable."""
    return _store(Config.from_env().db_url)
