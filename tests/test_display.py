"""One way to write labels, times, percentages and counts (`fpi.display`)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from fpi import display
from fpi.ui import charts, model_charts
from fpi.data.schema import LABELS


def test_every_label_has_one_display_name_and_it_maps_back() -> None:
    assert display.label_name("false_wake") == "false wake" and display.label_name("asr") == "ASR"
    for label in LABELS:
        assert display.label_from_name(display.label_name(label)) == label
    assert display.label_name(None) == display.label_name(float("nan")) == "—"


def test_times_are_utc_in_one_format() -> None:
    paris = timezone(timedelta(hours=2))
    assert display.format_time(datetime(2026, 3, 1, 16, 5, 9, tzinfo=paris)) == "2026-03-01 14:05:09 UTC"
    assert display.format_time("2026-03-01T14:05:09+00:00") == "2026-03-01 14:05:09 UTC"
    assert display.format_time(pd.Timestamp("2026-03-01 14:05:09")) == "2026-03-01 14:05:09 UTC"  # naive = UTC
    assert display.format_time(None) == display.format_time(pd.NaT) == "—"
    frame = pd.DataFrame({"created_at": pd.to_datetime(["2026-03-01T14:05:09Z", None], utc=True)})
    shown = display.times_for_display(frame, ["created_at"])
    assert shown["created_at"].iloc[0] == "2026-03-01 14:05:09 UTC" and shown["created_at"].iloc[1] is None


def test_percentages_have_one_decimal_and_counts_their_plural() -> None:
    assert display.format_percent(0.12345) == "12.3%" and display.format_percent(1) == "100.0%"
    assert display.format_percent(None) == "—"
    assert display.plural(1, "turn") == "1 turn" and display.plural(0, "turn") == "0 turns"
    assert display.plural(2345, "match", "matches") == "2,345 matches"


def test_charts_write_labels_by_their_display_names() -> None:
    distribution = pd.DataFrame({"label": list(LABELS), "predicted": [50, 5, 10, 8, 6, 4],
                                 "share": [0.6, 0.06, 0.12, 0.1, 0.07, 0.05], "labelled": [40, 6, 9, 9, 5, 4]})
    fig = charts.label_distribution_figure(distribution)
    assert list(fig.data[0].x) == [display.label_name(label) for label in LABELS]
    assert list(fig.data[0].text) == ["60.0%", "6.0%", "12.0%", "10.0%", "7.0%", "5.0%"]
    assert fig.data[1].type == "bar"  # human labels beside the bars, not markers over their percentages
    confusion = model_charts.confusion_figure(np.eye(len(LABELS), dtype=int).tolist())
    assert "false wake" in list(confusion.data[0].x) and "false_wake" not in list(confusion.data[0].x)
