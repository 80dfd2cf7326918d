"""Getting traces into the app: uploads, the bundled samples, kept datasets and their links, big Parquet files.

The loaded upload is validated and scored once (`fpi.scoring.frame`), cached by its content hash,
the column mapping and the model version, and put in the session state every page reads.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import streamlit as st

from fpi.analysis import aggregates
from fpi.config import SAMPLE_LABELLED, SAMPLE_UNLABELLED, Config
from fpi.data.datasets import DatasetError, DatasetStore, store_from_env
from fpi.errors import FpiError, ScoredFileError, TraceError
from fpi.model.estimator import FailurePointModel
from fpi.scoring.frame import ScoredTraces, content_hash, file_columns, mapping_suggestions, score_frame
from fpi.data.summary import dataset_fingerprint
from fpi.data.traces import check_upload_size, load_traces
from fpi.ui.text import CACHE_TTL, md_escape
from fpi.ui.state import AppState, Rejection, reset_view_widgets
from fpi.data.schema import PREDICTED_COLUMN
from fpi.ui.services.models import active_model


SAMPLES: dict[str, Path] = {"labelled": SAMPLE_LABELLED, "unlabelled": SAMPLE_UNLABELLED}
"""The bundled sample traces offered by one click."""


UPLOAD_LIMIT_MB = 1024
"""Must match `server.maxUploadSize` in .streamlit/config.toml."""


# The upload's frames are cached as resources, not data: `st.cache_data` pickles what it stores (0.1-0.5 s
# for 100k turns with their features) and unpickles a copy on every hit. Nothing changes these frames
# after they are made (pages derive new ones), so every session may share the one object.
@st.cache_resource(show_spinner=False, ttl=CACHE_TTL, max_entries=2)
def _validated(digest: str, name: str, column_map: tuple[tuple[str, str], ...], _data: bytes) -> pd.DataFrame:
    return load_traces(_data, column_map=dict(column_map) or None, name=name)


@st.cache_resource(show_spinner=False, ttl=CACHE_TTL, max_entries=2)
def _scored(
    digest: str, name: str, column_map: tuple[tuple[str, str], ...], model_version: str,
    _frame: pd.DataFrame, _model: FailurePointModel, _proba: np.ndarray | None = None,
) -> ScoredTraces:
    return score_frame(_frame, model=_model, source=name, digest=digest, proba=_proba)


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
            # Timings per step, for the benchmark: the cache's own cost shown apart.
            scored = replace(scored, seconds={"read and check": read, **scored.seconds,
                                              "cache": max(0.0, scoring - sum(scored.seconds.values()))})
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
    predictions = [c for c in scored.frame.columns if c == PREDICTED_COLUMN or str(c).startswith("p_")]
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
    kept, state.activated_scores = state.activated_scores, None
    proba = kept.proba if kept is not None and kept.fits(model.version, state.data) else None
    with st.status(f"Scoring {md_escape(state.data.source)} with model {model.version}…", expanded=False) as status:
        state.data = _scored(state.data.content_hash, state.data.source, (), model.version, state.data.raw, model,
                             proba)
        status.update(label=f"Scored with model {model.version}", state="complete")
    state.explanations = type(state.explanations)(max_items=state.explanations.max_items)


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
