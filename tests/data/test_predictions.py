"""Tests for fpi.data.predictions: one rule for the prediction columns of a frame and of an Arrow table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fpi.data.predictions import PREDICTION_FIELDS, append_predictions, predicted_labels, with_predictions
from fpi.data.schema import LABELS, PREDICTED_COLUMN, PREDICTION_COLUMNS, PROBABILITY_COLUMNS

PROBA = np.array([
    [0.90, 0.02, 0.02, 0.02, 0.02, 0.02],
    [0.10, 0.00, 0.60, 0.30, 0.00, 0.00],
    [0.00, 0.00, 0.00, 0.00, 0.00, 1.00],
    [0.30, 0.30, 0.10, 0.10, 0.10, 0.10],  # a tie: the first label
])


def _turns(n: int) -> pd.DataFrame:
    return pd.DataFrame({"dialogue_id": [f"d{i}" for i in range(n)], "turn_index": np.zeros(n, dtype=np.int64)})


def test_the_most_probable_label_is_predicted() -> None:
    assert predicted_labels(PROBA).tolist() == ["correct", "asr", "result", "correct"]


def test_the_columns_are_named_by_the_contract() -> None:
    assert [f.name for f in PREDICTION_FIELDS] == list(PREDICTION_COLUMNS)
    assert PREDICTION_COLUMNS == (PREDICTED_COLUMN, *(f"p_{label}" for label in LABELS))


def test_with_predictions_adds_the_columns_to_a_copy() -> None:
    frame = _turns(4).set_index(pd.Index([10, 11, 12, 13]))
    scored = with_predictions(frame, PROBA)
    assert scored.columns.tolist() == [*frame.columns, *PREDICTION_COLUMNS]
    assert frame.columns.tolist() == ["dialogue_id", "turn_index"]  # the input is left alone
    assert scored.index.tolist() == [10, 11, 12, 13]
    np.testing.assert_array_equal(scored[list(PROBABILITY_COLUMNS)].to_numpy(), PROBA)
    assert scored[PREDICTED_COLUMN].tolist() == ["correct", "asr", "result", "correct"]
    assert pd.api.types.is_string_dtype(scored[PREDICTED_COLUMN].dtype)


def test_append_predictions_stores_them_with_the_arrow_types() -> None:
    table = pa.table({"dialogue_id": ["a", "b", "c", "d"]})
    scored = append_predictions(table, PROBA)
    assert list(scored.schema) == [table.schema.field(0), *PREDICTION_FIELDS]
    assert scored.column(PREDICTED_COLUMN).to_pylist() == ["correct", "asr", "result", "correct"]
    assert table.num_columns == 1


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(0, 12), st.just(len(LABELS))),
              elements=st.floats(0.0, 1.0, allow_nan=False, width=32)))
def test_the_pandas_and_arrow_forms_agree(proba: np.ndarray) -> None:
    frame = _turns(len(proba))
    in_pandas = with_predictions(frame, proba)
    in_arrow = append_predictions(pa.Table.from_pandas(frame, preserve_index=False), proba).to_pandas()
    pd.testing.assert_frame_equal(in_arrow, in_pandas, check_dtype=False)
    if len(proba):
        assert in_pandas[PREDICTED_COLUMN].tolist() == [LABELS[i] for i in proba.argmax(axis=1)]

