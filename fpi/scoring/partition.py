"""Split a trace file of any size into dialogue buckets: the first pass of out-of-core scoring.

Rows may come in any order, so a dialogue's turns can be anywhere in the file.
One streaming pass (`partition_traces`) reads the file in batches, checks each
batch against the contract, adds the batch to the upload's statistics
(`fpi.model.features.UploadStats`, what `rank_*` features rank against) and appends
each row to bucket `hash(dialogue_id) % K`, a temporary Parquet file. Every
turn of a dialogue lands in the same bucket, so a bucket read back whole
(`read_bucket`) and sorted holds complete dialogues: context features come out
exactly as in memory, and duplicate turns can be found bucket by bucket.

Memory stays bounded by the batch size and one bucket, whatever the file size;
K is chosen so a bucket holds about `chunk_rows` turns. `score_bucket` scores one bucket,
in this process or on a Dask worker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fpi.errors import Problem, TraceError
from fpi.model.features import UploadStats, build_features
from fpi.data.schema import COLUMNS_BY_NAME, CONFIDENCE_COLUMNS, KEY_COLUMNS, Kind, is_stage_signal
from fpi.data.stream import TraceBatch, TraceStream, merge_problems
from fpi.data.check import duplicate_problems, extra_problems, as_numbers
from fpi.progress import Progress
from fpi.data.predictions import append_predictions

__all__ = ["DEFAULT_CHUNK_ROWS", "Partitioned", "bucket_of", "duplicate_turns", "partition_traces", "read_bucket"]

DEFAULT_CHUNK_ROWS = 200_000
"""Turns per batch and (about) per bucket: ~1 GB of working memory when scoring."""

ROW_COLUMN = "__fpi_row__"
"""Spreadsheet row of each turn in the source file, kept in the buckets for error reports."""

BUCKET_MARGIN = 1.25
"""More buckets than the estimate asks for: a CSV's row count is estimated from its first batch."""

DUPLICATE_TURNS_KEPT = 50
"""Duplicate turns remembered per bucket for the report (the count is always complete)."""

_ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.TURN_INDEX: pa.int64(),
    Kind.PROBABILITY: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
    Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    Kind.LABEL: pa.string(),
}


@dataclass(frozen=True)
class Partitioned:
    """A checked trace file, split into bucket files of whole dialogues."""

    source: str
    directory: Path
    buckets: tuple[Path, ...]
    turns: int
    columns: tuple[str, ...]
    """The trace columns in output order: the contract's present columns, then the extras in file order."""
    numeric_signals: tuple[str, ...]
    """Stage signals read as text whose every cell is a number: float64, as `load_traces` makes them."""
    subsecond: Mapping[str, bool]
    """Per timestamp column: whether any value has a fraction of a second (CSV output keeps it)."""
    upload: UploadStats

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        """A bucket's schema as the scored output has it (row number gone, numeric signals as float64)."""
        fields = [pa.field(f.name, pa.float64()) if f.name in self.numeric_signals else f
                  for f in schema if f.name != ROW_COLUMN]
        return pa.schema(fields)


def bucket_of(dialogue_ids: pd.Series, buckets: int) -> np.ndarray:
    """The bucket of each dialogue id: a stable hash (same in every process and run) modulo `buckets`."""
    hashes = pd.util.hash_pandas_object(dialogue_ids.astype("str"), index=False).to_numpy()
    return (hashes % np.uint64(buckets)).astype(np.int64)


def partition_traces(
    path: str | Path,
    directory: str | Path,
    *,
    column_map: Mapping[str, str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    buckets: int | None = None,
    min_buckets: int = 1,
    fmt: str | None = None,
    progress: Progress | None = None,
) -> Partitioned:
    """Pass 1: check `path` batch by batch and write its rows to bucket files in `directory`.

    `buckets` fixes their number; by default there are enough for about
    `chunk_rows` turns each, and at least `min_buckets` (e.g. tasks for every
    Dask worker). Raises `TraceError` with every problem of the file (duplicate turns
    included) once the whole file was read; `directory` is the caller's to
    remove either way.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    report = progress or (lambda message, done: None)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stream = TraceStream(Path(path), column_map=dict(column_map or {}), batch_rows=chunk_rows, fmt=fmt)
    writer = _BucketWriter(directory, buckets)
    problems: list[Problem] = []
    stats: UploadStats | None = None
    numeric: set[str] | None = None
    subsecond: dict[str, bool] = {}
    seen_rows = 0
    try:
        for batch in stream:
            checked = batch.checked
            problems.extend(checked.problems)
            problems = merge_problems(problems)
            seen_rows += len(batch.rows)
            if writer.count is None:
                wanted = stream.estimated_rows(batch) * BUCKET_MARGIN / chunk_rows
                writer.count = buckets or max(1, min_buckets, math.ceil(wanted))
            if numeric is None:
                numeric = {n for n in checked.columns if is_stage_signal(n) and stream.fmt == "csv"}
            numeric = {n for n in numeric if not as_numbers(checked.columns[n], locate=False)[2].any()}
            if all(c in checked.columns for c in CONFIDENCE_COLUMNS):
                batch_stats = UploadStats.of(pd.DataFrame({c: checked.columns[c] for c in CONFIDENCE_COLUMNS}))
                stats = batch_stats if stats is None else stats.merge(batch_stats)
            if all(k in checked.columns for k in KEY_COLUMNS):
                table = _bucket_table(batch)
                for name in table.column_names:
                    if pa.types.is_timestamp(table.schema.field(name).type):
                        subsecond[name] = subsecond.get(name, False) or _has_subsecond(table.column(name))
                writer.write(table)
            report(f"reading and checking: {seen_rows:,} turns", stream.fraction_read)
    finally:
        writer.close()
    problems = merge_problems([*stream.file_problems(), *problems])
    if seen_rows == 0:
        problems.insert(0, Problem(None, "no turns: there are column names but no rows", "empty_file"))
    part = Partitioned(
        source=stream.source, directory=directory, buckets=writer.paths(), turns=writer.rows,
        columns=tuple(c for c in writer.columns if c != ROW_COLUMN), numeric_signals=tuple(sorted(numeric or ())),
        subsecond=subsecond, upload=stats if stats is not None else UploadStats.of(_empty_confidences()),
    )
    if problems:  # the report should be complete: look for duplicate turns too before giving up
        duplicate = duplicate_turns(part)
        raise TraceError([*problems, *([duplicate] if duplicate else [])], source=stream.source)
    return part


def read_bucket(part: Partitioned, index: int) -> tuple[pd.DataFrame, pa.Table]:
    """Bucket `index` sorted by (dialogue_id, turn_index): as `load_traces` types it, and as stored.

    The frame has the row-number column; the table is what the output keeps of each turn.
    """
    table = pq.read_table(part.buckets[index])
    order = pc.sort_indices(table, sort_keys=[("dialogue_id", "ascending"), ("turn_index", "ascending")])
    table = table.take(order)
    frame = table.to_pandas()
    if "barge_in" in frame.columns:
        frame["barge_in"] = frame["barge_in"].astype("boolean")
    for name in part.numeric_signals:
        frame[name] = extra_problems(frame[name], numeric=True)
    out = table.drop_columns([ROW_COLUMN])
    for name in part.numeric_signals:
        position = out.schema.get_field_index(name)
        out = out.set_column(position, pa.field(name, pa.float64()), pa.array(frame[name].to_numpy(), pa.float64(), from_pandas=True))
    return frame, out


@dataclass
class DuplicateScan:
    """Duplicate turns found bucket by bucket, gathered into one problem."""

    involved: list[pd.DataFrame] = field(default_factory=list)
    count: int = 0

    def add(self, frame: pd.DataFrame) -> bool:
        """Look at one bucket's turns (any order; dialogue_id, turn_index and row columns); True if any repeat."""
        keys = frame[list(KEY_COLUMNS)]
        dup = keys.duplicated(keep=False).to_numpy()
        if not dup.any():
            return False
        part = frame.loc[dup, [*KEY_COLUMNS, ROW_COLUMN]]
        self.count += int(dup.sum())
        first = part.groupby(list(KEY_COLUMNS), sort=False)[ROW_COLUMN].transform("min")
        part = part.assign(_first=first).sort_values(["_first", ROW_COLUMN])
        kept_turns = part["_first"].drop_duplicates().head(DUPLICATE_TURNS_KEPT)
        self.involved.append(part[part["_first"].isin(kept_turns)].drop(columns="_first"))
        return True

    def problem(self) -> Problem | None:
        if not self.count:
            return None
        rows = pd.concat(self.involved, ignore_index=True)
        found = duplicate_problems({k: rows[k] for k in KEY_COLUMNS}, rows[ROW_COLUMN].to_numpy(),
                            np.ones(len(rows), bool))
        return replace(found, count=self.count) if found is not None else None


def duplicate_turns(part: Partitioned) -> Problem | None:
    """The duplicate-turn problem of the whole file, reading only the key columns of each bucket."""
    scan = DuplicateScan()
    for path in part.buckets:
        scan.add(pq.read_table(path, columns=[*KEY_COLUMNS, ROW_COLUMN]).to_pandas())
    return scan.problem()


# ------------------------------------------------------------------ internals

def _bucket_table(batch: TraceBatch) -> pa.Table:
    """The batch's rows with a usable key: contract columns typed, extras as read, and the row number."""
    checked = batch.checked
    keep = ~checked.bad_key
    arrays: dict[str, pa.Array] = {}
    for name, series in checked.columns.items():
        column = COLUMNS_BY_NAME.get(name)
        if column is not None:
            arrays[name] = pa.array(series, type=_ARROW_TYPES[column.kind], from_pandas=True)
        elif name in batch.raw.column_names:
            arrays[name] = batch.raw.column(name).combine_chunks()
        else:  # a name the column map made ambiguous: the file is rejected anyway
            arrays[name] = pa.array(series, from_pandas=True)
    arrays[ROW_COLUMN] = pa.array(batch.rows, type=pa.int64())
    table = pa.table(arrays)
    if not keep.all():
        table = table.filter(pa.array(keep))
    return table


def _has_subsecond(column: pa.ChunkedArray) -> bool:
    micros = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)
    micros = micros[~np.isnan(micros)] if micros.dtype.kind == "f" else micros
    return bool(np.any(micros % 1_000_000 != 0))


def _empty_confidences() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in CONFIDENCE_COLUMNS})


class _BucketWriter:
    """One Parquet file per bucket, opened on first use; rows go to bucket hash(dialogue_id) % count."""

    def __init__(self, directory: Path, count: int | None) -> None:
        self.directory = directory
        self.count = count
        self.rows = 0
        self.columns: tuple[str, ...] = ()
        self._schema: pa.Schema | None = None
        self._writers: dict[int, pq.ParquetWriter] = {}

    def path(self, index: int) -> Path:
        return self.directory / f"bucket-{index:05d}.parquet"

    def paths(self) -> tuple[Path, ...]:
        return tuple(self.path(i) for i in sorted(self._writers))

    def write(self, table: pa.Table) -> None:
        assert self.count is not None
        if self._schema is None:
            self._schema = table.schema
            self.columns = tuple(table.column_names)
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        if table.num_rows == 0:
            return
        ids = table.column("dialogue_id").to_pandas()
        bucket = bucket_of(ids, self.count)
        order = np.argsort(bucket, kind="stable")
        sorted_buckets = bucket[order]
        table = table.take(pa.array(order))
        bounds = np.flatnonzero(np.diff(sorted_buckets)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(order)]])
        for start, end in zip(starts, ends):
            index = int(sorted_buckets[start])
            if index not in self._writers:
                self._writers[index] = pq.ParquetWriter(self.path(index), self._schema, compression="lz4")
            self._writers[index].write_table(table.slice(start, end - start))
        self.rows += table.num_rows

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


def score_bucket(model: Any, part: Partitioned, frame: pd.DataFrame, table: pa.Table) -> pa.Table:
    """One bucket's turns (from `read_bucket`) with the predictions appended, as the output stores them."""
    features = build_features(frame.drop(columns=[ROW_COLUMN]), model.spec, upload=part.upload)
    return append_predictions(table, model.predict_proba_from_features(features))
