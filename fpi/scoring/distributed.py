"""Scoring and training on a Dask cluster.

Scoring reuses the out-of-core partitioning (`fpi.scoring.partition`): the client
streams and checks the file once into dialogue buckets, then each bucket is
one task on a worker, which reads it, scores it with the whole file's upload
statistics and writes a scored part; the client writes the parts into the
output in bucket order, so the output is the same file the single-process
out-of-core path writes. The workers read and write the bucket directory, so
on a real cluster it must be on storage they share (`fpi predict --workdir`).

Training runs the booster on the cluster with LightGBM's Dask interface
(`lightgbm.dask.DaskLGBMClassifier`, data parallel) through the
`FailurePointModel` trainer hook; everything around it (features, split,
temperature, baselines, metrics, the saved files) is the single-process code,
so the saved model is the usual LightGBM text file plus meta.json. The Dask
interface has no early stopping: all rounds are trained and the model is cut
at the iteration plain early stopping would have picked (same validation loss,
same patience).

Without a scheduler address a `LocalCluster` is started (2 worker processes
of 1 thread, no dashboard), so the same command works on a laptop.
"""
from __future__ import annotations

import contextlib
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fpi.errors import FpiError, ModelError, TraceError
from fpi.scoring.partition import DuplicateScan, Partitioned, read_bucket
from fpi.data.schema import LABELS

__all__ = ["DaskTrainer", "dask_client", "score_on_dask", "worker_count"]

LOCAL_WORKERS = 2
TASKS_PER_WORKER = 2
"""At least this many buckets per worker when scoring, so every worker has work."""

Progress = Callable[[str, float], None]


@contextlib.contextmanager
def dask_client(address: str | None = None, *, n_workers: int = LOCAL_WORKERS) -> Iterator[Any]:
    """A `distributed.Client` for `address`, or for a new local cluster closed on exit."""
    from distributed import Client, LocalCluster

    if address:
        try:
            client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise FpiError(f"cannot reach the Dask scheduler at {address} ({exc}); check the address "
                           "(e.g. tcp://host:8786) and that the scheduler is running") from exc
        with client:
            yield client
        return
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        yield client


def worker_count(client: Any) -> int:
    return max(1, len(client.scheduler_info(n_workers=-1)["workers"]))


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
    from fpi.scoring.file import score_bucket

    frame, table = read_bucket(part, index)
    scan = DuplicateScan()
    if scan.add(frame):
        return {"index": index, "path": None, "counts": {}, "duplicates": pd.concat(scan.involved),
                "duplicate_count": scan.count}
    scored = score_bucket(model, part, frame, table)
    path = Path(directory) / f"scored-{index:05d}.parquet"
    pq.write_table(scored, path, compression="lz4")
    counts = scored.column("predicted_failure_point").to_pandas().value_counts()
    return {"index": index, "path": str(path), "counts": {str(k): int(v) for k, v in counts.items()},
            "duplicates": None, "duplicate_count": 0}


class DaskTrainer:
    """`FailurePointModel` trainer hook: the booster trained by `lightgbm.dask.DaskLGBMClassifier`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __call__(
        self,
        params: dict[str, Any],
        train_x: np.ndarray,
        train_y: np.ndarray,
        valid_x: np.ndarray,
        valid_y: np.ndarray,
        class_weights: np.ndarray,
        *,
        names: list[str],
        categorical: list[str],
        rounds: int,
        early_stopping_rounds: int,
    ) -> lgb.Booster:
        from lightgbm.dask import DaskLGBMClassifier

        missing = sorted(set(range(len(LABELS))) - set(np.unique(train_y).tolist()))
        if missing:
            raise ModelError("training on Dask needs every label among the training turns; missing: "
                             + ", ".join(LABELS[i] for i in missing) + " (train without --engine dask)")
        x, y, w = self._arrays(train_x, train_y, class_weights[train_y])
        renamed = {"min_data_in_leaf": "min_child_samples", "feature_fraction": "colsample_bytree",
                   "lambda_l2": "reg_lambda", "seed": "random_state"}
        kwargs = {renamed.get(k, k): v for k, v in params.items()
                  if k not in ("objective", "num_class", "num_threads")}
        classifier = DaskLGBMClassifier(client=self.client, objective="multiclass", n_estimators=rounds, **kwargs)
        with warnings.catch_warnings():  # "n_jobs will be ignored": Dask sets the threads per worker
            warnings.filterwarnings("ignore", message="Parameter .* will be ignored", category=UserWarning)
            classifier.fit(x, y, sample_weight=w, feature_name=names, categorical_feature=categorical or "auto")
        booster = classifier.to_local().booster_
        best = best_iteration(booster, valid_x, valid_y, class_weights[valid_y], patience=early_stopping_rounds)
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))

    def _arrays(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[Any, Any, Any]:
        """Row blocks spread over the workers (one or more per worker), as Dask arrays."""
        import dask.array as da

        blocks = max(1, min(len(x), worker_count(self.client) * TASKS_PER_WORKER))
        edges = np.linspace(0, len(x), blocks + 1).astype(int)
        pieces = [(x[a:b], y[a:b], w[a:b]) for a, b in zip(edges[:-1], edges[1:]) if b > a]
        futures = self.client.scatter([p for piece in pieces for p in piece])
        xs, ys, ws = [], [], []
        for i, (px, py, pw) in enumerate(pieces):
            fx, fy, fw = futures[3 * i: 3 * i + 3]
            xs.append(da.from_delayed(fx, shape=px.shape, dtype=px.dtype))
            ys.append(da.from_delayed(fy, shape=py.shape, dtype=py.dtype))
            ws.append(da.from_delayed(fw, shape=pw.shape, dtype=pw.dtype))
        return da.concatenate(xs), da.concatenate(ys), da.concatenate(ws)


def best_iteration(booster: lgb.Booster, x: np.ndarray, y: np.ndarray, weights: np.ndarray, *, patience: int) -> int:
    """The iteration early stopping picks: weighted multi-logloss on (x, y), stopping after `patience` rounds without gain."""
    total = booster.current_iteration()
    if len(x) == 0 or total == 0:
        return total
    raw = np.zeros((len(x), len(LABELS)))
    best, best_loss = 0, math.inf
    rows = np.arange(len(y))
    for i in range(total):
        raw += booster.predict(x, raw_score=True, start_iteration=i, num_iteration=1).reshape(len(x), -1)
        shifted = raw - raw.max(axis=1, keepdims=True)
        log_p = shifted[rows, y] - np.log(np.exp(shifted).sum(axis=1))
        loss = float(-(weights * log_p).sum() / weights.sum())
        if loss < best_loss:
            best, best_loss = i + 1, loss
        elif i + 1 - best >= patience:
            break
    return best
