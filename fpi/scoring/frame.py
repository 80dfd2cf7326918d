"""From uploaded bytes to scored turns, in steps that report progress.

The app, the benchmark and the tests share this path: read and check the file
(`fpi.data.traces.load_traces`), build the model's features once over the whole
upload, score, summarise. The features are kept beside the scored frame because
explanations need the same matrix (ranks are relative to the upload).
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import io
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fpi.errors import TraceError
from fpi.data.predictions import with_predictions
from fpi.data.schema import COLUMNS_BY_NAME, PREDICTION_COLUMNS, REQUIRED_COLUMNS
from fpi.data.columns import normalise_column_name
from fpi.data.files import PARQUET_MAGIC
from fpi.data.summary import TraceSummary, summarize_traces
from fpi.data.traces import load_traces
from fpi.progress import Progress, quiet

__all__ = [
    "ScoredTraces", "content_hash", "file_columns", "load_and_score",
    "mapping_suggestions", "score_frame",
]


@dataclass(frozen=True)
class ScoredTraces:
    """One accepted upload, scored by one model."""

    frame: pd.DataFrame
    """The validated turns plus `predicted_failure_point` and `p_<label>`."""
    features: pd.DataFrame
    """The model's features for every turn (same row order as `frame`)."""
    summary: TraceSummary
    source: str
    content_hash: str
    model_version: str
    seconds: Mapping[str, float] = field(default_factory=dict)
    """Wall time per step (read, features, score, summary), for the benchmark."""
    kept_probabilities: bool = False
    """True when the probabilities came from the model's training (`score_frame(proba=...)`), not a new scoring."""

    @property
    def key(self) -> str:
        """Identifies this data under this model, for caches of anything derived from it."""
        return f"{self.content_hash[:16]}-{self.model_version}"

    @property
    def raw(self) -> pd.DataFrame:
        """The turns without the predictions, to score again with another model."""
        return self.frame.drop(columns=[c for c in PREDICTION_COLUMNS if c in self.frame.columns])


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_and_score(
    data: bytes,
    *,
    model: Any,
    name: str,
    column_map: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> ScoredTraces:
    """Check and score an uploaded file; raises `TraceError` (nothing loaded) on a bad one."""
    report = progress or quiet
    report(f"reading and checking {name}", 0.0)
    started = time.perf_counter()
    frame = load_traces(data, column_map=column_map, name=name)
    read_seconds = time.perf_counter() - started
    scored = score_frame(frame, model=model, source=name, digest=content_hash(data), progress=report)
    return replace(scored, seconds={"read": read_seconds, **scored.seconds})


def score_frame(
    frame: pd.DataFrame, *, model: Any, source: str, digest: str, progress: Progress | None = None,
    proba: np.ndarray | None = None,
) -> ScoredTraces:
    """Score a validated frame (predictions already in it are replaced).

    `proba`: the model's probabilities on `frame`, when they are already known (a candidate
    retrained from verdicts scored its upload while it trained), so they are not computed twice.
    """
    report = progress or quiet
    frame = frame.drop(columns=[c for c in PREDICTION_COLUMNS if c in frame.columns])
    seconds: dict[str, float] = {}
    report(f"computing features for {len(frame):,} turns", 0.3)
    started = time.perf_counter()
    features = model.features(frame)
    seconds["features"] = time.perf_counter() - started
    report("scoring with the model", 0.6)
    started = time.perf_counter()
    kept = proba is not None and len(proba) == len(frame)
    if not kept:
        proba = model.predict_proba_from_features(features)
    scored = with_predictions(frame, proba)
    seconds["score"] = time.perf_counter() - started
    report("summarising", 0.9)
    started = time.perf_counter()
    summary = summarize_traces(frame)
    seconds["summary"] = time.perf_counter() - started
    report("done", 1.0)
    return ScoredTraces(frame=scored, features=features, summary=summary, source=source,
                        content_hash=digest, model_version=model.version, seconds=seconds,
                        kept_probabilities=kept)


# ---------------------------------------------------------------- column mapping

def file_columns(data: bytes) -> list[str]:
    """The column names of a CSV or Parquet file, from its header only; [] if unreadable."""
    if data[:4] == PARQUET_MAGIC:
        try:
            return [str(n) for n in pq.read_schema(pa.BufferReader(data)).names]
        except (pa.ArrowException, OSError):
            return []
    head = data[:65536]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return []
    rows = list(csv.reader(io.StringIO(text)))
    return [name.strip() for name in rows[0]] if rows else []


def mapping_suggestions(error: TraceError, columns: Sequence[str], *, keep_unmatched: bool = False
                        ) -> dict[str, str | None]:
    """For each required column the file lacks: the file column that most looks like it, or None.

    Only columns the contract does not already use are offered. Empty when no
    required column is missing or the file has no spare columns to map, so the
    UI shows a mapping form only where one can help. With `keep_unmatched`, missing columns without
    a look-alike are kept (as None) as long as the file has spare columns to pick from.
    """
    missing = [p.column for p in error.problems if p.code == "missing_column" and p.column in REQUIRED_COLUMNS]
    spare = [c for c in columns if c not in COLUMNS_BY_NAME]
    if not missing or not spare:
        return {}
    by_normal = {normalise_column_name(c): c for c in spare}
    suggestions: dict[str, str | None] = {}
    taken: set[str] = set()
    for name in missing:
        target = normalise_column_name(name)
        exact = [c for c in spare if normalise_column_name(c) == target and c not in taken]
        if exact:
            choice: str | None = exact[0]
        else:
            close = difflib.get_close_matches(target, [n for n, c in by_normal.items() if c not in taken], n=1, cutoff=0.6)
            choice = by_normal[close[0]] if close else None
        if choice:
            taken.add(choice)
        suggestions[str(name)] = choice
    if not any(suggestions.values()) and not keep_unmatched:
        return {}
    return suggestions
