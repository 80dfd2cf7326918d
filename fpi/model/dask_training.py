"""Training the booster on a Dask cluster.

LightGBM's Dask interface (`lightgbm.dask.DaskLGBMClassifier`, data parallel) runs
through the `FailurePointModel` trainer hook; everything around it (features, split,
temperature, baselines, metrics, the saved files) is the single-process code,
so the saved model is the usual LightGBM text file plus meta.json. The Dask
interface has no early stopping: all rounds are trained and the model is cut
at the iteration plain early stopping would have picked (same validation loss,
same patience). The cluster itself is `fpi.cluster`.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import lightgbm as lgb
import numpy as np

from fpi.errors import ModelError
from fpi.data.schema import LABELS
from fpi.cluster import TASKS_PER_WORKER, worker_count

__all__ = ["DaskTrainer", "best_iteration"]


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
