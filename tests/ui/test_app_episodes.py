"""The Overview counts turns and defect episodes side by side."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from fpi.analysis.episodes import episode_summary
from fpi.model.estimator import FailurePointModel
from fpi.data.traces import load_traces
from app_files import load_sample


def _metric(at: AppTest, label: str):
    return next(m for m in at.metric if m.label == label)


def test_overview_shows_episodes_beside_turns(at: AppTest, files) -> None:
    load_sample(at)
    at.switch_page("fpi/ui/pages/overview.py").run()
    assert not at.exception, [e.value for e in at.exception]
    scored = FailurePointModel.load(files.model).score(load_traces(files.labelled))
    expected = episode_summary(scored)  # the model's predictions, as every overview figure
    per_episode = _metric(at, "Defect rate per episode")
    assert per_episode.value == f"{expected.defect_rate_per_episode:.1%}"
    assert per_episode.delta == f"{expected.episodes:,} episodes in {expected.requests:,} requests"
    assert _metric(at, "Abandoned").delta == f"{expected.abandoned:,} episodes"
    assert expected.episodes <= expected.defect_turns


def test_overview_shows_control_limits_beside_the_time_chart(at: AppTest) -> None:
    load_sample(at)
    at.switch_page("fpi/ui/pages/overview.py").run()
    assert not at.exception, [e.value for e in at.exception]
    limits = [e for e in at.expander if e.label.startswith("Control limits: ")]
    assert len(limits) == 1
    assert "Benjamini-Hochberg" in "\n".join(c.value for c in limits[0].caption)


def test_drill_down_frames_episodes_on_the_turn_strip(at: AppTest) -> None:
    load_sample(at)
    at.switch_page("fpi/ui/pages/dialogue.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("defect episode" in c.value for c in at.caption)
    strip = next(c for c in at.get("plotly_chart") if "episode: " in c.proto.spec)  # the first dialogue has a defect
    assert "dash" in strip.proto.spec
