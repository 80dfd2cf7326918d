"""How fpi writes things for people: label names, UTC times, percentages and counts, one way everywhere.

The app, the charts and the explanations all call these, so `false_wake` is "false wake" on
every page, a time is "2026-03-01 14:05:09 UTC" wherever it shows, a share is "12.3%", and
"1 turn" is never "1 turns". Plain functions, no Streamlit.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping

import pandas as pd


LABEL_NAMES: Mapping[str, str] = {
    "correct": "correct",
    "false_wake": "false wake",
    "asr": "ASR",
    "nlu": "NLU",
    "er": "ER",
    "result": "result",
}
"""Each label of the contract as people read it (a closed set: safe in Markdown)."""

_BY_NAME = {name: label for label, name in LABEL_NAMES.items()}

STAGE_NAMES: Mapping[str, str] = {"wake": "wake", "asr": "ASR", "nlu": "NLU", "er": "ER", "result": "result"}
"""Pipeline stages as people read them; the evidence groups beyond the stages keep their own names."""


def stage_name(stage: object) -> str:
    """ "asr" -> "ASR"; other names (e.g. the "context" evidence group) as they are."""
    return STAGE_NAMES.get(str(stage), str(stage))

TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
"""strftime format of every time the app writes."""
TIME_FORMAT_MOMENT = "YYYY-MM-DD HH:mm:ss [UTC]"
"""The same format for a Streamlit `DatetimeColumn` (moment.js syntax; times are UTC already)."""
DATE_FORMAT = "%Y-%m-%d"

PERCENT_DIGITS = 1
PERCENT_PRINTF = "%.1f%%"
"""Printf format for a column of percentage points (`percent_points`)."""
PERCENT_D3 = ".1%"
"""d3 format of a share in plotly charts (tick labels, hover text)."""

MISSING = "—"


def label_name(label: object) -> str:
    """ "false_wake" -> "false wake"; anything that is not a label comes back as text, missing as "—"."""
    if label is None or (isinstance(label, float) and pd.isna(label)) or label is pd.NA:
        return MISSING
    return LABEL_NAMES.get(str(label), str(label))


def label_from_name(name: object) -> str:
    """The label behind a display name (charts report what they show); a raw label is returned as is."""
    text = str(name)
    return _BY_NAME.get(text, text)


def label_names(labels: Iterable[object]) -> list[str]:
    return [label_name(label) for label in labels]


def labels_for_display(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """A copy of `frame` with the given label columns written as display names (missing stays missing)."""
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = pd.Series([None if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v))
                                     else label_name(v) for v in out[column]], index=out.index, dtype=object)
    return out


def to_utc(value: object) -> pd.Timestamp | None:
    """`value` as a UTC timestamp (naive times are UTC, as in the trace contract); None when missing."""
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(stamp):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def format_time(value: object) -> str:
    """ "2026-03-01 14:05:09 UTC" for any datetime, ISO string or timestamp; "—" when missing."""
    stamp = to_utc(value)
    return MISSING if stamp is None else stamp.strftime(TIME_FORMAT)


def format_date(value: object) -> str:
    stamp = to_utc(value)
    return MISSING if stamp is None else stamp.strftime(DATE_FORMAT)


def times_for_display(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """A copy of `frame` with the given time columns as UTC text in the one format (no "+00:00")."""
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = pd.Series([None if to_utc(v) is None else format_time(v) for v in out[column]],
                                    index=out.index, dtype=object)
    return out


def format_percent(share: float | None) -> str:
    """0.1234 -> "12.3%" (one decimal everywhere); "—" when missing."""
    if share is None or pd.isna(share):
        return MISSING
    return f"{float(share):.{PERCENT_DIGITS}%}"


def percent_points(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """A copy of `frame` with shares (0-1) turned into percentage points (0-100), for `PERCENT_PRINTF`."""
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce") * 100.0
    return out


def plural(count: int | float, singular: str, plural_form: str | None = None) -> str:
    """ "1 turn", "0 turns", "2,345 turns": the count with thousands separators and the right form."""
    n = int(count)
    word = singular if n == 1 else (plural_form or f"{singular}s")
    return f"{n:,} {word}"


def datetime_now_text(now: datetime | None = None) -> str:
    """The current time in the one format (for notices)."""
    return format_time(now or pd.Timestamp.now(tz="UTC"))
