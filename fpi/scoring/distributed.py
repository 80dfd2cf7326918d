"""Scoring on a Dask cluster (`fpi.cluster`).

Scoring reuses the out-of-core partitioning (`fpi.scoring.partition`): the client
streams and checks the file once into dialogue buckets, then each bucket is
one task on a worker, which reads it, scores it with the whole file's upload
statistics and writes a scored part; the client writes the parts into the
output in bucket order, so the output is the same file the single-process
out-of-core path writes. The workers read and write the bucket directory, so
on a real cluster it must be on storage they share (`fpi predict --workdir`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from fpi.errors import TraceError
from fpi.scoring.partition import DuplicateScan, Partitioned, read_bucket, score_bucket
from fpi.data.schema import PREDICTED_COLUMN
from fpi.progress import Progress

__all__ = ["score_on_dask"]


def score_on_dask(
    client: Any, part: Partitioned, model: Any, directory: Path, *, progress: Progress | None = None,
) -> tuple[list[Path], dict[str, int]]:
    """Score every bucket on the cluster; the scored parts in bucket order and the label counts.

    Raises `TraceError` when a bucket holds duplicate turns (nothing is kept).
    """
    from distributed import as_completed

    report = progress or (lambda message, done: None)
    directory.mkdir(parents=True, exist_ok=True)
    model_future = client.scatter(model, broadcast=True)
    part_future = client.scatter(part, broadcast=True)
    futures = client.map(_score_task, range(len(part.buckets)), part=part_future, model=model_future,
                         directory=str(directory), pure=False)
    results: dict[int, dict[str, Any]] = {}
    for done, future in enumerate(as_completed(futures), start=1):
        result = future.result()
        results[result["index"]] = result
        report(f"scored bucket {done} of {len(futures)} on the cluster", done / len(futures))
    scan = DuplicateScan()
    counts: dict[str, int] = {}
    for index in sorted(results):
        result = results[index]
        if result["duplicates"] is not None:
            scan.involved.append(result["duplicates"])
            scan.count += result["duplicate_count"]
        for label, n in result["counts"].items():
            counts[label] = counts.get(label, 0) + n
    problem = scan.problem()
    if problem is not None:
        raise TraceError([problem], source=part.source)
    return [Path(results[i]["path"]) for i in sorted(results)], counts


def _score_task(index: int, *, part: Partitioned, model: Any, directory: str) -> dict[str, Any]:
    """On a worker: one bucket read, checked for duplicate turns, scored and written as a part."""

    frame, table = read_bucket(part, index)
    scan = DuplicateScan()
    if scan.add(frame):
        return {"index": index, "path": None, "counts": {}, "duplicates": pd.concat(scan.involved),
                "duplicate_count": scan.count}
    scored = score_bucket(model, part, frame, table)
    path = Path(directory) / f"scored-{index:05d}.parquet"
    pq.write_table(scored, path, compression="lz4")
    counts = scored.column(PREDICTED_COLUMN).to_pandas().value_counts()
    return {"index": index, "path": str(path), "counts": {str(k): int(v) for k, v in counts.items()},
            "duplicates": None, "duplicate_count": 0}
