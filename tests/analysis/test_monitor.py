"""Monitoring: a planted one-day spike is found, clean traces raise nothing, limits come from the past."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fpi.cli import main
from fpi.cli.common import EXIT_BREACH
from fpi.errors import FpiError
from fpi.analysis.monitor import format_monitoring, monitor
from fpi.simulator.pipelines import CohortEffect, SimConfig
from fpi.simulator.simulate import simulate
from fpi.data.write import write_traces

SPIKE_DAY = pd.Timestamp("2026-10-22")


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return simulate(6000, seed=104, config=SimConfig(days=30))


@pytest.fixture(scope="module")
def spiked(clean) -> pd.DataFrame:
    """The clean month, with 22 October replaced by a day on which car ASR fails four times as often."""
    effect = CohortEffect(conditions={"device_type": "car"}, stage="asr", factor=4.0)
    day = simulate(200, seed=204, config=SimConfig(days=1, start=f"{SPIKE_DAY:%Y-%m-%d}", cohort_effects=(effect,)))
    day["dialogue_id"] = "spike-" + day["dialogue_id"]
    on_day = clean["timestamp"].dt.tz_localize(None).dt.floor("D").eq(SPIKE_DAY)
    dropped = on_day.groupby(clean["dialogue_id"]).transform("any")
    return pd.concat([clean[~dropped], day], ignore_index=True)


def test_the_planted_spike_is_found_and_only_it(spiked) -> None:
    result = monitor(spiked, label_column="failure_point")
    assert not result.breaches.empty
    top = result.breaches.iloc[0]
    assert (top["series"], top["failure_point"], top["period"]) == ("device_type = car", "asr", SPIKE_DAY)
    assert top["rate"] > top["limit"] > top["expected"]
    # whatever else breaches is the same spike seen as "any defect"
    assert set(result.breaches["series"]) == {"device_type = car"}
    assert set(result.breaches["period"]) == {SPIKE_DAY}
    assert set(result.breaches["failure_point"]) <= {"asr", "defect"}
    assert "device_type = car" in format_monitoring(result)


def test_no_breach_on_a_clean_month(clean) -> None:
    result = monitor(clean, label_column="failure_point")
    assert result.periods in (30, 31)  # a dialogue that starts late on the 30th may end after midnight
    assert result.tested > 1000  # six targets x eleven series x the 23 days that have a history
    assert result.breaches.empty
    assert "no breach" in format_monitoring(result)


def test_limits_come_only_from_the_preceding_window(spiked) -> None:
    """Cutting the file after the spike changes nothing before it; a period never sits in its own baseline."""
    full = monitor(spiked, label_column="failure_point").points
    stamps = spiked["timestamp"].dt.tz_localize(None)
    cut = monitor(spiked[stamps < SPIKE_DAY], label_column="failure_point").points
    before = full[full["period"] < SPIKE_DAY]
    keys = ["series", "failure_point", "period"]
    merged = before.merge(cut, on=keys, suffixes=("", "_cut"))
    assert len(merged) == len(before) == len(cut)
    np.testing.assert_allclose(merged["expected"], merged["expected_cut"])
    np.testing.assert_allclose(merged["p_value"], merged["p_value_cut"])
    day = full[(full["period"] == SPIKE_DAY) & (full["series"] == "device_type = car")
               & (full["failure_point"] == "asr")].iloc[0]
    assert day["expected"] < 0.2 < day["rate"]  # the spike did not raise its own expectation


def test_hours_and_weeks_and_a_short_window(clean) -> None:
    weekly = monitor(clean, label_column="failure_point", by="week", window=2, min_history=1)
    assert weekly.periods in (5, 6) and weekly.tested > 0
    assert (weekly.points["period"].dt.day_of_week == 0).all()  # weeks start on Monday
    hourly = monitor(clean, label_column="failure_point", by="hour", min_turns=5)
    assert hourly.tested > 0 and hourly.window == 168


def test_without_timestamps_or_a_good_period_it_says_so(clean) -> None:
    with pytest.raises(FpiError, match="timestamp"):
        monitor(clean.drop(columns="timestamp"), label_column="failure_point")
    with pytest.raises(FpiError, match="--by"):
        monitor(clean, label_column="failure_point", by="month")


def test_cli_exits_4_on_the_spike_and_0_on_clean_traces(spiked, clean, tmp_path) -> None:
    spiked_file, clean_file = tmp_path / "spiked.parquet", tmp_path / "clean.parquet"
    write_traces(spiked, spiked_file)
    write_traces(clean, clean_file)
    found = CliRunner().invoke(main, ["monitor", str(spiked_file), "--labels"])
    assert found.exit_code == EXIT_BREACH == 4, found.output
    assert "device_type = car" in found.output and "2026-10-22" in found.output
    as_json = CliRunner().invoke(main, ["monitor", str(spiked_file), "--labels", "--json"])
    assert as_json.exit_code == 4
    report = json.loads(as_json.output)
    assert report["breaches"][0]["series"] == "device_type = car"
    assert report["breaches"][0]["period"].startswith("2026-10-22")
    quiet = CliRunner().invoke(main, ["monitor", str(clean_file), "--labels", "--cohort", "nlu_domain"])
    assert quiet.exit_code == 0, quiet.output
    assert "each nlu_domain" in quiet.output and "no breach" in quiet.output


def test_cli_names_a_missing_cohort_column(clean, tmp_path) -> None:
    path = tmp_path / "clean.parquet"
    write_traces(clean.head(2000), path)
    result = CliRunner().invoke(main, ["monitor", str(path), "--labels", "--cohort", "app_versio"])
    assert result.exit_code == 2 and "app_versio" in result.output


def test_cli_scores_with_the_model_when_the_traces_have_no_predictions(tiny_model, tmp_path) -> None:
    path = tmp_path / "month.csv"
    write_traces(simulate(1500, seed=105, config=SimConfig(days=30)), path)
    model = tiny_model.save(tmp_path / "model")
    result = CliRunner().invoke(main, ["monitor", str(path), "--model", str(model)])
    assert result.exit_code in (0, EXIT_BREACH), result.output
    assert "failure point from 'predicted_failure_point'" in result.output


def test_the_control_chart_marks_the_breach_on_its_day(spiked) -> None:
    from fpi.ui.charts import control_chart_figure

    result = monitor(spiked, label_column="failure_point")
    figure = control_chart_figure(result.points, series="device_type = car", failure_point="asr")
    traces = {trace.name: trace for trace in figure.data}
    assert set(traces) == {"upper control limit", "expected (preceding window)", "asr rate", "breach"}
    assert [pd.Timestamp(x) for x in traces["breach"].x] == [SPIKE_DAY]
    assert len(traces["asr rate"].x) == len(traces["upper control limit"].x) > 20


def test_the_overview_time_chart_draws_the_limit_and_crosses_the_breach_day(spiked, clean) -> None:
    from fpi.ui.charts import defect_rate_time_figure
    from fpi.analysis.dashboard import defect_rate_over_time
    from fpi.analysis.monitor import overall_limits

    def chart(frame: pd.DataFrame):
        scored = frame.assign(predicted_failure_point=frame["failure_point"])
        limits = overall_limits(monitor(scored))
        return limits, {t.name: t for t in defect_rate_time_figure(defect_rate_over_time(scored, freq="D"),
                                                                    limits=limits).data}

    limits, traces = chart(spiked)
    assert list(limits.loc[limits["breaches"] > 0, "period"]) == [SPIKE_DAY]
    assert len(traces["control limit (all defects)"].x) == len(limits) > 20
    assert [pd.Timestamp(x) for x in traces["breach (see Control limits)"].x] == [SPIKE_DAY]
    _, traces = chart(clean)
    assert "control limit (all defects)" in traces and "breach (see Control limits)" not in traces
