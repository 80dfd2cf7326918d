"""Which stage drives a cohort's gap: the parts add up to the gap, and a planted ASR weakness is named."""
from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from fpi.cli import main
from fpi.analysis.gaps import format_gaps, stage_gaps
from fpi.simulator.pipelines import CohortEffect, SimConfig
from fpi.simulator.simulate import simulate
from fpi.data.write import write_traces


def test_a_hand_made_gap_splits_into_exact_parts() -> None:
    labels = (["asr"] * 60 + ["nlu"] * 20 + ["correct"] * 120) + (["asr"] * 40 + ["nlu"] * 40 + ["correct"] * 720)
    frame = pd.DataFrame({"locale": ["en-IN"] * 200 + ["en-US"] * 800, "failure_point": labels})
    raw = stage_gaps(frame, label_column="failure_point", columns=("locale",))
    table = raw.set_index("failure_point")
    assert set(table["cohort"]) == {"locale = en-IN"}
    assert table.loc["defect", "difference"] == pytest.approx(0.30)
    assert table.loc["asr", "difference"] == pytest.approx(0.25)
    assert table.loc["nlu", "difference"] == pytest.approx(0.05)
    assert table.loc[["false_wake", "er", "result"], "difference"].abs().max() == 0
    assert (table["low"] <= table["difference"]).all() and (table["difference"] <= table["high"]).all()
    assert format_gaps(raw).startswith("locale = en-IN: 30.0 points worse than the rest (40.0% vs 10.0%, 200 turns); "
                                       "asr +25.0")


def test_a_planted_asr_weakness_is_named_as_the_main_part_of_the_gap() -> None:
    effect = CohortEffect(conditions={"locale": "en-IN", "device_type": "car"}, stage="asr", factor=3.0)
    frame = simulate(5000, seed=8, config=SimConfig(cohort_effects=(effect,)))
    table = stage_gaps(frame, label_column="failure_point")
    for cohort in ("locale = en-IN", "device_type = car"):
        rows = table[table["cohort"] == cohort].set_index("failure_point")
        parts = rows.drop(index="defect")
        assert parts["difference"].sum() == pytest.approx(rows.loc["defect", "difference"])  # the parts add up
        assert parts["difference"].idxmax() == "asr" and parts.loc["asr", "low"] > 0
        assert parts.loc["asr", "difference"] > rows.loc["defect", "difference"] / 2


def test_cli_prints_each_flagged_cohort_with_its_parts(tmp_path) -> None:
    path = tmp_path / "traces.csv"
    effect = CohortEffect(conditions={"locale": "en-IN"}, stage="asr", factor=3.0)
    write_traces(simulate(2000, seed=9, config=SimConfig(cohort_effects=(effect,))), path)
    result = CliRunner().invoke(main, ["gaps", str(path), "--labels"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("locale = en-IN"))
    assert "points worse than the rest" in line and line.split("; ")[1].startswith("asr +")
