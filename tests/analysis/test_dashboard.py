"""The dashboard's numbers on a handmade frame whose answers are known."""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from fpi.ui import charts
from fpi.analysis import dashboard, filtering, navigation
from fpi.analysis.filtering import Filters
from fpi.data.schema import LABELS, STAGES

# 4 dialogues, 10 turns: predicted defects on 4 turns (asr x2, nlu, false_wake), 6 labelled.
ROWS = [
    # dialogue, turn, day, device, locale, domain, intent, predicted, label, asr_text
    ("a", 0, 1, "tv", "en-US", "music", "PlayMusic", "asr", "asr", "play jazz"),
    ("a", 1, 1, "tv", "en-US", "music", "PlayMusic", "correct", "correct", "play jazz music"),
    ("b", 0, 1, "car", "en-GB", "weather", "GetWeather", "correct", "correct", "weather today"),
    ("b", 1, 2, "car", "en-GB", "weather", "GetWeather", "nlu", "asr", "and tomorrow"),
    ("b", 2, 2, "car", "en-GB", None, None, "false_wake", None, None),
    ("c", 0, 2, "tv", "en-IN", "video", "PlayVideo", "correct", None, "play the news"),
    ("c", 1, 3, "tv", "en-IN", "video", "PlayVideo", "correct", "correct", "louder"),
    ("d", 0, 3, "speaker", "en-US", "music", "PlayMusic", "asr", None, "play abba"),
    ("d", 1, 3, "speaker", "en-US", "music", "PlayMusic", "correct", "correct", "play abba please"),
    ("d", 2, 3, "speaker", "en-US", "music", "Stop", "correct", None, "stop"),
]


@pytest.fixture()
def frame() -> pd.DataFrame:
    columns = ["dialogue_id", "turn_index", "day", "device_type", "locale", "nlu_domain", "nlu_intent",
               "predicted_failure_point", "failure_point", "asr_text"]
    df = pd.DataFrame(ROWS, columns=columns)
    df["timestamp"] = pd.to_datetime([f"2024-05-0{d}T12:00:00Z" for d in df.pop("day")], utc=True)
    rng = np.random.default_rng(0)
    for stage in STAGES:
        df[f"{stage}_confidence"] = rng.uniform(0.2, 1.0, len(df))
    # the predicted label gets 0.7, the rest share 0.3
    for label in LABELS:
        df[f"p_{label}"] = np.where(df["predicted_failure_point"] == label, 0.7, 0.3 / 5)
    return df


def test_kpis_on_known_numbers(frame: pd.DataFrame) -> None:
    k = dashboard.kpis(frame)
    assert (k.turns, k.dialogues, k.defects) == (10, 4, 4)
    assert k.defect_rate == pytest.approx(0.4)
    assert k.dialogues_with_defect == 3  # a, b, d
    assert k.labelled == 6 and k.labelled_share == pytest.approx(0.6)
    assert k.agreement == pytest.approx(5 / 6)  # b/1 is labelled asr, predicted nlu


def test_kpis_without_labels_have_no_agreement(frame: pd.DataFrame) -> None:
    k = dashboard.kpis(frame.drop(columns=["failure_point"]))
    assert k.agreement is None and k.labelled == 0


def test_label_distribution_lists_every_label(frame: pd.DataFrame) -> None:
    dist = dashboard.label_distribution(frame)
    assert list(dist["label"]) == list(LABELS)
    assert dict(zip(dist["label"], dist["predicted"])) == {
        "correct": 6, "false_wake": 1, "asr": 2, "nlu": 1, "er": 0, "result": 0}
    assert dist["share"].sum() == pytest.approx(1.0)
    assert dict(zip(dist["label"], dist["labelled"]))["asr"] == 2


@pytest.mark.parametrize(
    ("filters", "expected_turns"),
    [
        (Filters(), 10),
        (Filters(devices=("tv",)), 4),
        (Filters(devices=("tv",), locales=("en-IN",)), 2),
        (Filters(domains=("music",)), 5),
        (Filters(predicted=("asr", "nlu")), 3),
        (Filters(date_range=(date(2024, 5, 2), date(2024, 5, 2))), 3),
        (Filters(date_range=(date(2024, 5, 2), date(2024, 5, 3))), 7),
        (Filters(devices=("boat",)), 0),
    ],
)
def test_filters(frame: pd.DataFrame, filters: Filters, expected_turns: int) -> None:
    assert len(filtering.apply_filters(frame, filters)) == expected_turns


def test_filters_change_kpis(frame: pd.DataFrame) -> None:
    tv = dashboard.kpis(filtering.apply_filters(frame, Filters(devices=("tv",))))
    assert (tv.turns, tv.defects) == (4, 1)


def test_filter_options(frame: pd.DataFrame) -> None:
    options = filtering.filter_options(frame)
    assert options.date_bounds == (date(2024, 5, 1), date(2024, 5, 3))
    assert options.devices == ("car", "speaker", "tv")
    assert options.predicted == ("correct", "false_wake", "asr", "nlu")


def test_sankey_conserves_turns(frame: pd.DataFrame) -> None:
    flows = dashboard.sankey_flows(frame)
    links, nodes = flows.links, flows.nodes
    ids = dict(zip(nodes["name"], nodes["id"]))
    assert links.loc[links["source"] == ids["all turns"], "turns"].sum() == len(frame)
    for stage in STAGES:
        entering = links.loc[links["target"] == ids[stage], "turns"].sum()
        leaving = links.loc[links["source"] == ids[stage], "turns"].sum()
        assert entering == leaving, stage
    assert links.loc[links["target"] == ids["fails at asr"], "turns"].item() == 2
    assert links.loc[links["target"] == ids["fails at wake"], "turns"].item() == 1
    assert links.loc[links["target"] == ids["correct"], "turns"].item() == 6
    ends = links[links["target"].isin([ids[n] for n in nodes["name"] if n.startswith("fails") or n == "correct"])]
    assert ends["turns"].sum() == len(frame)


def test_defect_rate_over_time(frame: pd.DataFrame) -> None:
    table = dashboard.defect_rate_over_time(frame, freq="D")
    overall = table[table["label"] == "all defects"].set_index("period")
    assert list(overall["turns"]) == [3, 3, 4]
    assert list(overall["count"]) == [1, 2, 1]
    assert overall["rate"].iloc[1] == pytest.approx(2 / 3)
    assert dashboard.defect_rate_over_time(frame.drop(columns=["timestamp"])).empty


def test_pick_frequency() -> None:
    t0 = pd.Timestamp("2024-01-01")
    assert dashboard.pick_frequency(t0, t0 + pd.Timedelta(hours=30)) == "h"
    assert dashboard.pick_frequency(t0, t0 + pd.Timedelta(days=30)) == "D"
    assert dashboard.pick_frequency(t0, t0 + pd.Timedelta(days=400)) == "W"


def test_breakdown_by_device(frame: pd.DataFrame) -> None:
    table = dashboard.breakdown(frame, "device_type").set_index("cohort")
    assert table.loc["car", "defects"] == 2 and table.loc["car", "defect_rate"] == pytest.approx(2 / 3)
    assert table.loc["tv", "top_failure_point"] == "asr"
    assert table.index[0] == "car"  # worst first
    matrix = dashboard.breakdown_matrix(table.reset_index())
    assert matrix.loc["speaker", "asr"] == pytest.approx(1 / 3)


def test_breakdown_names_missing_values(frame: pd.DataFrame) -> None:
    table = dashboard.breakdown(frame, "nlu_domain")
    assert dashboard.MISSING in set(table["cohort"])


def test_confidence_distribution(frame: pd.DataFrame) -> None:
    dist = dashboard.confidence_distribution(frame).set_index("label")
    assert dist.loc["asr", "turns"] == 2
    assert dist.loc["correct", "median"] == pytest.approx(0.7)
    assert list(dist.index) == ["correct", "false_wake", "asr", "nlu"]


def test_matching_turns_by_label_and_cohort(frame: pd.DataFrame) -> None:
    asr = dashboard.matching_turns(frame, predicted="asr")
    assert set(asr["dialogue_id"]) == {"a", "d"} and "confidence" in asr.columns
    car_defects = dashboard.matching_turns(frame[frame["predicted_failure_point"] != "correct"],
                                           cohort=("device_type", "car"))
    assert list(car_defects["turn_index"]) == [1, 2]
    missing_domain = dashboard.matching_turns(frame, cohort=("nlu_domain", dashboard.MISSING))
    assert list(missing_domain["dialogue_id"]) == ["b"]


def test_defect_navigation(frame: pd.DataFrame) -> None:
    ids = navigation.defect_dialogues(frame)
    assert list(ids) == ["a", "b", "d"]
    assert navigation.neighbour_dialogue(ids, "a", step=1) == "b"
    assert navigation.neighbour_dialogue(ids, "c", step=1) == "d"  # c itself has no defect
    assert navigation.neighbour_dialogue(ids, "c", step=-1) == "b"
    assert navigation.neighbour_dialogue(ids, "d", step=1) is None
    assert navigation.neighbour_dialogue(ids, "a", step=-1) is None
    assert navigation.neighbour_dialogue([], "a", step=1) is None


def test_search_dialogues(frame: pd.DataFrame) -> None:
    assert navigation.search_dialogues(frame, "abba") == ["d"]
    assert navigation.search_dialogues(frame, "B") == ["b", "d"]  # id "b", and "abba"
    assert navigation.search_dialogues(frame, "") == ["a", "b", "c", "d"]


def test_stage_strip_flags_the_predicted_stage(frame: pd.DataFrame) -> None:
    strip = navigation.stage_strip(navigation.dialogue_turns(frame, "b"))
    assert len(strip) == 3 * len(STAGES)
    failing = strip[strip["failing"]]
    assert list(zip(failing["turn_index"], failing["stage"])) == [(1, "nlu"), (2, "wake")]


def test_figures_build(frame: pd.DataFrame) -> None:
    view = dashboard.overview(frame)
    figures = [
        charts.label_distribution_figure(view.distribution),
        charts.sankey_figure(view.sankey),
        charts.defect_rate_time_figure(view.over_time),
        charts.breakdown_heatmap_figure(dashboard.breakdown_matrix(dashboard.breakdown(frame, "locale")),
                                        dimension="locale"),
        charts.confidence_distribution_figure(view.confidence),
        charts.confidence_strip_figure(navigation.stage_strip(navigation.dialogue_turns(frame, "a"))),
    ]
    assert all(len(f.data) >= 1 for f in figures)
    # every turn flows somewhere in the drawn Sankey too
    sankey = figures[1].data[0]
    assert sum(sankey.link.value) >= len(frame)


def test_heatmap_escapes_cohort_names(frame: pd.DataFrame) -> None:
    frame = frame.assign(device_type=frame["device_type"].replace("tv", "<b>tv</b>"))
    matrix = dashboard.breakdown_matrix(dashboard.breakdown(frame, "device_type"))
    fig = charts.breakdown_heatmap_figure(matrix, dimension="device")
    assert "&lt;b&gt;tv&lt;/b&gt;" in fig.data[0].y


def test_filters_survive_a_round_trip_through_the_url() -> None:
    from datetime import date

    from fpi.analysis.filtering import FilterOptions, Filters, filters_from_params, filters_to_params

    options = FilterOptions(date_bounds=(date(2026, 1, 1), date(2026, 1, 31)), devices=("car", "tv"),
                            locales=("en-US",), domains=("music",), predicted=("asr", "correct"))
    filters = Filters(date_range=(date(2026, 1, 5), date(2026, 1, 9)), devices=("tv",), predicted=("asr",))
    params = filters_to_params(filters)
    assert params == {"from": ["2026-01-05"], "to": ["2026-01-09"], "device": ["tv"], "predicted": ["asr"]}
    assert filters_from_params(params, options) == filters
    stale = {"device": ["tv", "fridge"], "from": ["2025-12-01"], "to": ["2026-02-01"], "locale": ["xx"]}
    assert filters_from_params(stale, options) == Filters(devices=("tv",))  # unknown values and full range dropped
