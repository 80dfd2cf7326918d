"""What a candidate's meta.json records: what it needs to load, and how and on what it was made."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from fpi.data.schema import CONTRACT_VERSION, LABEL_COLUMN, LABELS
from fpi.model.estimator import FailurePointModel
from fpi.model.persistence import FORMAT_VERSION

LABEL_SOURCE = "label_source"
"""Column `fpi.review.retrain.labels_with_verdicts` adds: "verdict", "data" or empty."""


def fresh_meta(model: FailurePointModel) -> dict[str, Any]:
    """The parts of meta.json a model needs to load (`FailurePointModel.load` checks them)."""
    import platform

    import sklearn

    from fpi.model.persistence import fpi_version

    assert model.spec is not None
    return {
        "format_version": FORMAT_VERSION, "contract_version": CONTRACT_VERSION, "classes": list(LABELS),
        "feature_spec": model.spec.to_json(),
        "rule_cascade_thresholds": dict(model.rule.thresholds) if model.rule else {},
        "train_config": model.config.__dict__,
        "versions": {"fpi": fpi_version(), "lightgbm": lgb.__version__, "pandas": pd.__version__,
                     "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                     "python": platform.python_version()},
    }


def candidate_meta(meta: dict[str, Any], model: FailurePointModel, frame: pd.DataFrame, train: np.ndarray,
          from_verdict: np.ndarray, seconds: float, retraining: dict[str, Any]) -> dict[str, Any]:
    from fpi.data.summary import dataset_fingerprint

    counts = frame.loc[train, LABEL_COLUMN].value_counts() if LABEL_COLUMN in frame.columns else pd.Series()
    booster = model.booster
    assert booster is not None
    meta.update({
        "temperature": model.temperature,
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 2),
        "trees": int(booster.num_trees()),
        "iterations": int(booster.current_iteration()),
        "training_data": {
            "fingerprint": dataset_fingerprint(frame.drop(columns=[LABEL_SOURCE], errors="ignore")),
            "turns": int(len(frame)),
            "dialogues": int(frame["dialogue_id"].nunique()),
            "labelled_turns": int(train.sum()),
            "label_counts": {label: int(counts.get(label, 0)) for label in LABELS},
            "verdict_turns": int((train & from_verdict).sum()),
        },
        "retraining": retraining,
    })
    return meta
