"""DuckDB aggregates on a scored Parquet file equal the dashboard's pandas numbers."""
from __future__ import annotations

import math
from dataclasses import asdict
from datetime import date

import pandas as pd
import pytest

from fpi.analysis import aggregates, cohorts, dashboard, discovery, filtering
from fpi.analysis.filtering import Filters
from fpi.errors import ScoredFileError
from fpi.simulator.simulate import simulate
from fpi.data.write import write_traces
from fpi.data.schema import PREDICTED_COLUMN


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_model):
    frame = tiny_model.score(simulate(700, seed=31))
    frame.loc[frame.index[::17], "device_type"] = None  # a "(missing)" cohort
    frame.loc[frame.index[::23], "timestamp"] = pd.NaT
    path = tmp_path_factory.mktemp("agg") / "scored.parquet"
    write_traces(frame, path)
    return frame, path


def _some_filters(frame: pd.DataFrame) -> list[Filters]:
    day = frame["timestamp"].dropna().min().date()
    return [
        Filters(),
        Filters(devices=("tv", "car")),
        Filters(locales=("en-US",), domains=("music", "video")),
        Filters(predicted=("asr", "nlu", "correct")),
        Filters(date_range=(day, date.fromordinal(day.toordinal() + 3)), devices=("speaker",)),
        Filters(devices=("boat",)),
    ]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False,
                                  check_index_type=False, rtol=1e-9, atol=1e-12)


def test_filter_options_match(scored) -> None:
    frame, path = scored
    assert aggregates.filter_options(path) == filtering.filter_options(frame)


def test_overview_matches_pandas_for_each_filter(scored) -> None:
    frame, path = scored
    for filters in _some_filters(frame):
        part = filtering.apply_filters(frame, filters)
        want, got = dashboard.overview(part), aggregates.overview(path, filters)
        expected, actual = asdict(want.kpis), asdict(got.kpis)
        for key, value in expected.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(actual[key]), key
            else:
                assert actual[key] == pytest.approx(value), (filters, key)
        _same(got.distribution, want.distribution)
        _same(got.sankey.links, want.sankey.links)
        _same(got.sankey.nodes, want.sankey.nodes)
        _same(got.confidence, want.confidence)
        if want.over_time.empty:
            assert got.over_time.empty
        else:
            _same(got.over_time.assign(period=pd.to_datetime(got.over_time["period"]).astype("datetime64[us]")),
                  want.over_time.assign(period=pd.to_datetime(want.over_time["period"]).astype("datetime64[us]")))


@pytest.mark.parametrize("freq", ["h", "D", "W"])
def test_defect_rate_over_time_matches_for_each_period(scored, freq) -> None:
    frame, path = scored
    want = dashboard.defect_rate_over_time(frame, freq=freq)
    got = aggregates.defect_rate_over_time(path, freq=freq)
    _same(got.assign(period=pd.to_datetime(got["period"]).astype("datetime64[us]")),
          want.assign(period=pd.to_datetime(want["period"]).astype("datetime64[us]")))


@pytest.mark.parametrize("column", sorted(dashboard.BREAKDOWN_DIMENSIONS.values()))
def test_breakdown_matches(scored, column) -> None:
    frame, path = scored
    for filters in _some_filters(frame)[:4]:
        want = dashboard.breakdown(filtering.apply_filters(frame, filters), column)
        got = aggregates.breakdown(path, column, filters)
        key = ["defect_rate", "turns", "cohort"]  # ties in rate and size may come in either order
        _same(got.sort_values(key, ignore_index=True), want.sort_values(key, ignore_index=True))


def test_matching_turns_are_the_most_confident(scored) -> None:
    frame, path = scored
    got = aggregates.matching_turns(path, Filters(devices=("tv",)), predicted="asr", limit=20)
    want = dashboard.matching_turns(filtering.apply_filters(frame, Filters(devices=("tv",))), predicted="asr", limit=20)
    assert list(got.columns) == list(want.columns)
    assert got["confidence"].tolist() == pytest.approx(want["confidence"].tolist())


def test_defects_only_and_the_matching_count(scored) -> None:
    frame, path = scored
    filters = Filters(devices=("tv",))
    part = filtering.apply_filters(frame, filters)
    defects = part[part[PREDICTED_COLUMN] != "correct"]
    got = aggregates.matching_turns(path, filters, defects_only=True, limit=15)
    want = dashboard.matching_turns(defects, limit=15)
    assert got["confidence"].tolist() == pytest.approx(want["confidence"].tolist())
    assert (got[PREDICTED_COLUMN] != "correct").all()
    assert aggregates.matching_count(path, filters, defects_only=True) == len(defects)
    assert aggregates.matching_count(path, filters, predicted="asr") == int((part[PREDICTED_COLUMN] == "asr").sum())
    assert aggregates.matching_count(path, filters, cohort=("locale", "en-US"), defects_only=True) == int(
        (defects["locale"] == "en-US").sum())


def test_check_scored_reads_the_row_count_and_names_missing_columns(scored, tmp_path) -> None:
    frame, path = scored
    assert aggregates.check_scored(path) == len(frame)
    unscored = tmp_path / "unscored.parquet"
    write_traces(frame.drop(columns=[PREDICTED_COLUMN, "p_asr"]), unscored)
    with pytest.raises(ScoredFileError, match="predicted_failure_point, p_asr") as info:
        aggregates.check_scored(unscored)
    assert info.value.missing == (PREDICTED_COLUMN, "p_asr")
    (tmp_path / "notes.parquet").write_text("not parquet")
    for bad in (tmp_path / "notes.parquet", tmp_path / "absent.parquet"):
        with pytest.raises(ScoredFileError, match="fpi predict"):
            aggregates.check_scored(bad)


def test_cohort_frame_reads_only_what_discovery_needs_and_finds_the_same_cohorts(scored) -> None:
    _, path = scored
    full = pd.read_parquet(path)
    compact = aggregates.cohort_frame(path)
    used, _ = cohorts.candidate_columns(full)
    assert list(compact.columns) == [*used, PREDICTED_COLUMN]
    assert not {"dialogue_id", "asr_text", "response_text", "failure_point", "p_asr"} & set(compact.columns)
    assert all(isinstance(t, pd.CategoricalDtype) for t in compact.dtypes)
    assert len(compact) == len(full)
    on_file, on_frame = discovery.discover_cohorts(compact), discovery.discover_cohorts(full)
    assert not on_frame.cohorts.empty
    assert on_file.columns == on_frame.columns
    pd.testing.assert_frame_equal(on_file.cohorts, on_frame.cohorts)
    pd.testing.assert_frame_equal(on_file.redundant, on_frame.redundant)
    pd.testing.assert_frame_equal(on_file.overall, on_frame.overall)


def test_cohort_frame_needs_predictions(scored, tmp_path) -> None:
    frame, _ = scored
    unscored = tmp_path / "unscored.parquet"
    write_traces(frame.drop(columns=[PREDICTED_COLUMN]), unscored)
    with pytest.raises(ScoredFileError, match="fpi predict"):
        aggregates.cohort_frame(unscored)
