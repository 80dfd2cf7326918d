"""Text cells read as numbers or kept as text: the Arrow path gives what the pandas way of writing it gives."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fpi.data.check import as_numbers, extra_problems
from fpi.data.traces import load_traces

CELLS = [" 0.5 ", "", "   ", None, "nan", "1e-3", "abc", "\t0.25\n", "1_000", "-0", "inf", "0x10", "３", ".5", "5."]


def _pandas_numbers(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same question answered with pandas masks, cell parsing by pandas when Arrow refuses a cell."""
    stripped = s.astype("str").str.strip()
    empty = (stripped.isna() | (stripped == "")).to_numpy(bool)
    cleaned = stripped.mask(empty)
    try:
        values = pc.cast(pa.array(cleaned), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = pd.to_numeric(cleaned.astype(object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values, empty, ~empty & np.isnan(values)


@pytest.mark.parametrize("cells", [CELLS, [" 0.5 ", "", None, "1e-3", "\t0.25\n", "-0", ".5"]],
                         ids=["with bad cells", "all numbers"])
def test_numbers_in_text_cells_match_the_pandas_reading(cells):
    column = pd.Series(cells * 3, dtype="str")
    for got, expected in zip(as_numbers(column), _pandas_numbers(column)):
        np.testing.assert_array_equal(got, expected)
    values, empty, nan = as_numbers(column, locate=False)
    assert nan.all() if "abc" in cells else not nan.any()


def test_empty_text_is_missing_and_other_text_verbatim():
    column = pd.Series(["", " ", "a", None, "4.10", "x y"], dtype="str", name="app_version")
    pd.testing.assert_series_equal(extra_problems(column, numeric=False), column.mask(column == ""))
    numbers = extra_problems(pd.Series(["", " 2", "0.5", None], dtype="str"), numeric=True)
    np.testing.assert_array_equal(numbers.to_numpy(), [np.nan, 2.0, 0.5, np.nan])


def test_a_file_with_blank_and_padded_cells_loads_as_the_pandas_way_reads_it():
    csv = ("dialogue_id,turn_index,wake_confidence,asr_confidence,asr_text,nlu_confidence,er_confidence,"
           "result_confidence,response_text,er_entity,asr_nbest_margin\n"
           "d1,0, 0.9 ,0.8,play jazz,0.7,,0.5,,jazz, 0.1\n"
           "d1,1,0.9,,  ,0.7,0.6, 1 ,okay,, \n"
           "d2,0,,0.3,\"call, mom\",0.2,0.1,0.0,sorry,mom,0.3\n").encode()
    frame = load_traces(csv)
    assert frame["asr_text"].tolist()[:2] == ["play jazz", "  "] and pd.isna(frame["asr_text"]).sum() == 0
    assert pd.isna(frame.loc[0, "response_text"]) and pd.isna(frame.loc[1, "er_entity"])
    np.testing.assert_array_equal(frame["wake_confidence"].to_numpy(), [0.9, 0.9, np.nan])
    np.testing.assert_array_equal(frame["result_confidence"].to_numpy(), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(frame["asr_nbest_margin"].to_numpy(), [0.1, np.nan, 0.3])
    assert frame["asr_text"].dtype == "str" and frame["er_entity"].dtype == "str"
