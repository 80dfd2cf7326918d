"""Score a trace file of any size: in memory when it is small, in dialogue buckets when it is not.

`predict_file` is what `fpi predict` calls. Small files take the in-memory
path (`load_traces`, `FailurePointModel.score`, `write_traces`). Larger ones
(or any file, given `chunk_rows`) go out of core in two passes:

1. `fpi.scoring.partition.partition_traces` streams the file in batches, checks each,
   accumulates the upload's statistics and writes every row to the bucket of
   its dialogue (temporary Parquet files).
2. Each bucket is read whole (complete dialogues), sorted, checked for
   duplicate turns, scored with the whole file's statistics and appended to
   the output (`pyarrow.parquet.ParquetWriter` or CSV), written to a temp file
   beside the output and renamed at the end.

Predictions are identical to the in-memory path's. All or nothing holds: a
problem anywhere in the file means no output file and a `TraceError` listing
every problem. Memory is bounded by `chunk_rows`, whatever the file size.

Output order, out of core: bucket by bucket, each bucket sorted by
(dialogue_id, turn_index); so each dialogue's turns are together and in order,
but dialogues are not globally sorted (the in-memory path sorts them all).
Restoring file order or a global sort would cost another full pass over the
data, and nothing that reads fpi files depends on the order: `load_traces`
sorts, and the DuckDB aggregates (`fpi.analysis.aggregates`) don't care.
"""
from __future__ import annotations

import contextlib
import csv
import io
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from fpi.errors import TraceError
from fpi.scoring.partition import (
    DEFAULT_CHUNK_ROWS, ROW_COLUMN, DuplicateScan, Partitioned, partition_traces, read_bucket, score_bucket,
)
from fpi.data.schema import KEY_COLUMNS, PREDICTED_COLUMN
from fpi.data.write import neutralise_table, write_export
from fpi.data.files import PARQUET_MAGIC, atomic_write, format_of
from fpi.data.traces import load_traces
from fpi.data.predictions import PREDICTION_FIELDS
from fpi.progress import Progress

__all__ = ["IN_MEMORY_MAX_BYTES", "IN_MEMORY_MAX_ROWS", "PredictReport", "predict_file", "write_scored"]

IN_MEMORY_MAX_BYTES = 200_000_000
"""CSV files up to this size are scored in memory (~650k turns, ~1.4 GB peak); bigger ones in buckets."""
IN_MEMORY_MAX_ROWS = 650_000
"""The same limit for Parquet files, by their row count (Parquet is several times denser than CSV)."""


@dataclass(frozen=True)
class PredictReport:
    """What `predict_file` did."""

    output: Path
    turns: int
    seconds: float
    mode: str
    """'in memory', 'out of core' or 'dask'."""
    buckets: int = 0
    label_counts: Mapping[str, int] = field(default_factory=dict)


def predict_file(
    source: str | Path,
    output: str | Path,
    *,
    model: Any,
    column_map: Mapping[str, str] | None = None,
    chunk_rows: int | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    workdir: str | Path | None = None,
    progress: Progress | None = None,
) -> PredictReport:
    """Score every turn of `source` into `output` (.csv or .parquet); see the module for the passes.

    `chunk_rows` None picks: in memory up to `IN_MEMORY_MAX_BYTES`, else
    buckets of `DEFAULT_CHUNK_ROWS` turns. `engine` "dask" scores the buckets
    on a Dask cluster (`scheduler` address, or a local one); its workers must
    see `workdir` (temporary buckets; default: a temp dir beside the output).
    """
    source, output = Path(source), Path(output)
    fmt = format_of(output)
    report = progress or (lambda message, done: None)
    started = time.perf_counter()
    if engine not in ("local", "dask"):
        raise ValueError(f"engine must be 'local' or 'dask', got {engine!r}")
    if engine == "local" and chunk_rows is None and _small(source):
        report("reading and checking", 0.0)
        frame = load_traces(source, column_map=column_map)
        report(f"scoring {len(frame):,} turns", 0.5)
        scored = model.score(frame)
        write_export(scored, output)  # a CSV is neutralised against formulas, as every fpi CSV is
        counts = scored[PREDICTED_COLUMN].value_counts()
        return PredictReport(output, len(scored), time.perf_counter() - started, "in memory",
                             label_counts={str(k): int(v) for k, v in counts.items()})

    rows = chunk_rows or DEFAULT_CHUNK_ROWS
    with _workspace(workdir, output) as directory, contextlib.ExitStack() as stack:
        client = None
        if engine == "dask":
            from fpi.cluster import TASKS_PER_WORKER, dask_client, worker_count
            from fpi.scoring.distributed import score_on_dask

            report("connecting to the Dask cluster", 0.0)
            client = stack.enter_context(dask_client(scheduler))
        part = partition_traces(
            source, directory / "buckets", column_map=column_map, chunk_rows=rows,
            min_buckets=TASKS_PER_WORKER * worker_count(client) if client is not None else 1,
            progress=lambda message, done: report(message, 0.4 * done))
        if client is not None:
            parts, counts = score_on_dask(client, part, model, directory / "scored",
                                          progress=lambda m, d: report(m, 0.4 + 0.5 * d))
            report("writing the output", 0.9)
            atomic_write(output, lambda fh: write_scored(fh, fmt, part, _read_parts(parts)))
            mode = "dask"
        else:
            counts = {}

            def scored_buckets() -> Iterator[pa.Table]:
                scan = DuplicateScan()
                for i in range(len(part.buckets)):
                    if scan.count:  # the file will be rejected: only look for more duplicates
                        scan.add(pq.read_table(part.buckets[i], columns=[*KEY_COLUMNS, ROW_COLUMN]).to_pandas())
                        continue
                    frame, table = read_bucket(part, i)
                    if scan.add(frame):
                        continue
                    scored = score_bucket(model, part, frame, table)
                    _add_counts(counts, scored)
                    report(f"scored bucket {i + 1} of {len(part.buckets)}", 0.4 + 0.6 * (i + 1) / len(part.buckets))
                    yield scored
                problem = scan.problem()
                if problem is not None:
                    raise TraceError([problem], source=part.source)

            atomic_write(output, lambda fh: write_scored(fh, fmt, part, scored_buckets()))
            mode = "out of core"
    return PredictReport(output, part.turns, time.perf_counter() - started, mode, buckets=len(part.buckets),
                         label_counts=counts)


def write_scored(fh: IO[bytes], fmt: str, part: Partitioned, tables: Iterator[pa.Table]) -> None:
    """Append scored tables to an open file as Parquet or CSV (one header, as `write_traces` writes it)."""
    writer: pq.ParquetWriter | None = None
    header = False
    try:
        for table in tables:
            if fmt == "parquet":
                if writer is None:
                    writer = pq.ParquetWriter(fh, table.schema)
                writer.write_table(table)
                continue
            table = neutralise_table(_csv_ready(table, part.subsecond))  # spreadsheets run '=...' cells
            if not header:
                line = io.StringIO()
                csv.writer(line, lineterminator="\n").writerow(table.column_names)
                fh.write(line.getvalue().encode("utf-8"))
                header = True
            pv.write_csv(table, fh,
                         pv.WriteOptions(include_header=False, quoting_style="needed"))
        if fmt == "parquet" and writer is None:  # no turns at all is rejected earlier; keep a valid file anyway
            writer = pq.ParquetWriter(fh, pa.schema(list(PREDICTION_FIELDS)))
    finally:
        if writer is not None:
            writer.close()


def _csv_ready(table: pa.Table, subsecond: Mapping[str, bool]) -> pa.Table:
    """Timestamps as ISO-8601 in UTC, whole seconds without '.000000' (as `write_traces` does)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            column = table.column(i)
            if not subsecond.get(f.name, True):
                column = pc.cast(column, pa.timestamp("s", tz="UTC"), safe=False)
            text = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
            table = table.set_column(i, pa.field(f.name, pa.string()), text)
    return table


def _add_counts(counts: dict[str, int], table: pa.Table) -> None:
    for item in pc.value_counts(table.column(PREDICTED_COLUMN)).to_pylist():
        counts[item["values"]] = counts.get(item["values"], 0) + int(item["counts"])


def _read_parts(paths: list[Path]) -> Iterator[pa.Table]:
    for path in paths:
        yield pq.read_table(path)


def _small(path: Path) -> bool:
    """Small enough to score in memory; an unreadable file too (`load_traces` reports it)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) == PARQUET_MAGIC:
                return pq.ParquetFile(path).metadata.num_rows <= IN_MEMORY_MAX_ROWS
        return path.stat().st_size <= IN_MEMORY_MAX_BYTES
    except (OSError, pa.ArrowException):
        return True


@contextlib.contextmanager
def _workspace(workdir: str | Path | None, output: Path) -> Iterator[Path]:
    """A temp directory for buckets (beside the output unless told), removed whatever happens."""
    base = Path(workdir) if workdir is not None else output.resolve().parent
    base.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=f".{output.name}.fpi-", dir=base))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
