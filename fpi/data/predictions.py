"""The prediction columns of a scored frame or file, from the model's probabilities.

One rule for both forms a scored upload takes: a pandas frame in memory, an Arrow table
written bucket by bucket. The column names are the contract's (`fpi.data.schema`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from fpi.data.schema import LABELS, PREDICTED_COLUMN, PROBABILITY_COLUMNS

PREDICTION_FIELDS: tuple[pa.Field, ...] = (
    pa.field(PREDICTED_COLUMN, pa.string()),
    *(pa.field(column, pa.float64()) for column in PROBABILITY_COLUMNS),
)
"""The prediction columns as an Arrow schema stores them."""


def predicted_labels(proba: np.ndarray) -> np.ndarray:
    """The most probable label of each row."""
    return np.asarray(LABELS, dtype=object)[proba.argmax(axis=1)]


def with_predictions(frame: pd.DataFrame, proba: np.ndarray) -> pd.DataFrame:
    """Add `predicted_failure_point` and one `p_<label>` column per label to a copy of `frame`."""
    scored = frame.copy()
    scored[PREDICTED_COLUMN] = pd.array(predicted_labels(proba), dtype="str")
    for i, column in enumerate(PROBABILITY_COLUMNS):
        scored[column] = proba[:, i]
    return scored


def append_predictions(table: pa.Table, proba: np.ndarray) -> pa.Table:
    """The same columns appended to an Arrow table, as a scored file stores them."""
    columns = [pa.array(predicted_labels(proba), type=pa.string()), *(pa.array(proba[:, i]) for i in range(len(LABELS)))]
    for field, column in zip(PREDICTION_FIELDS, columns):
        table = table.append_column(field, column)
    return table
