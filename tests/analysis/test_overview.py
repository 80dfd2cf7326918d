"""Both answers to the Overview's questions (pandas in memory, DuckDB on a file) checked the same way.

Every test runs once per implementation of `OverviewData`, against numbers counted here from the
scored frame with plain pandas, so a page can hold either and show the same thing.
"""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from fpi.analysis.filtering import Filters
from fpi.analysis.overview import FrameOverview, OverviewData, ParquetOverview
from fpi.data.schema import PREDICTED_COLUMN
from fpi.data.write import write_traces
from fpi.simulator.simulate import simulate


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_model):
    frame = tiny_model.score(simulate(500, seed=41))
    frame.loc[frame.index[::19], "device_type"] = None  # a "(missing)" cohort
    path = tmp_path_factory.mktemp("overview") / "scored.parquet"
    write_traces(frame, path)
    return frame, path


@pytest.fixture(params=["pandas", "duckdb"])
def source(request, scored) -> OverviewData:
    frame, path = scored
    return FrameOverview(frame) if request.param == "pandas" else ParquetOverview(str(path))


def _filters(frame: pd.DataFrame) -> list[Filters]:
    day = frame["timestamp"].dropna().min().date()
    return [Filters(), Filters(devices=("tv", "car")), Filters(predicted=("asr", "nlu")),
            Filters(date_range=(day, date.fromordinal(day.toordinal() + 2)), locales=("en-US",))]


def _passing(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if filters.devices:
        keep &= frame["device_type"].isin(filters.devices)
    if filters.locales:
        keep &= frame["locale"].isin(filters.locales)
    if filters.predicted:
        keep &= frame[PREDICTED_COLUMN].isin(filters.predicted)
    if filters.date_range:
        days = frame["timestamp"].dt.date
        keep &= (days >= filters.date_range[0]) & (days <= filters.date_range[1])
    return frame[keep.to_numpy(dtype=bool)]


def test_filter_options_offer_what_the_traces_hold(source: OverviewData, scored) -> None:
    frame, _ = scored
    options = source.filter_options()
    assert set(options.devices) == set(frame["device_type"].dropna())
    assert set(options.locales) == set(frame["locale"].dropna())
    stamps = frame["timestamp"].dropna()
    assert options.date_bounds == (stamps.min().date(), stamps.max().date())


def test_kpis_count_the_turns_that_pass_the_filters(source: OverviewData, scored) -> None:
    frame, _ = scored
    for filters in _filters(frame):
        part = _passing(frame, filters)
        kpis = source.overview(filters).kpis
        assert kpis.turns == len(part), filters
        assert kpis.dialogues == part["dialogue_id"].nunique(), filters
        assert kpis.defects == int((part[PREDICTED_COLUMN] != "correct").sum()), filters


def test_breakdown_splits_the_filtered_turns_by_cohort(source: OverviewData, scored) -> None:
    frame, _ = scored
    filters = Filters(locales=("en-US", "en-GB"))
    part = _passing(frame, filters)
    table = source.breakdown(filters, "locale").set_index("cohort")
    counts = part["locale"].value_counts()
    assert table["turns"].to_dict() == counts.to_dict()
    defects = (part[PREDICTED_COLUMN] != "correct").groupby(part["locale"]).mean()
    assert table["defect_rate"].to_dict() == pytest.approx(defects.to_dict())


def test_matching_turns_are_the_most_confident_and_counted_in_full(source: OverviewData, scored) -> None:
    frame, _ = scored
    filters = Filters(devices=("tv", "speaker"))
    part = _passing(frame, filters)
    shown, total = source.matching_turns(filters, limit=10, predicted="asr")
    assert total == int((part[PREDICTED_COLUMN] == "asr").sum())
    assert len(shown) == min(10, total) and (shown[PREDICTED_COLUMN] == "asr").all()
    assert shown["confidence"].is_monotonic_decreasing
    defects, count = source.matching_turns(filters, limit=5, defects_only=True)
    assert count == int((part[PREDICTED_COLUMN] != "correct").sum())
    assert (defects[PREDICTED_COLUMN] != "correct").all()

