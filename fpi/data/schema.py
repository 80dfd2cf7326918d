"""The trace contract (version 1) in code: columns, types, stages and labels.

This module is the "what"; `fpi.data.traces` is the "how" that checks a file against
it. The prose contract lives in `docs/trace-schema.md`; change both together.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import Enum

CONTRACT_VERSION = 1

STAGES: tuple[str, ...] = ("wake", "asr", "nlu", "er", "result")
"""Pipeline stages, in the order a turn passes through them."""

STAGE_LABEL: dict[str, str] = {
    "wake": "false_wake",
    "asr": "asr",
    "nlu": "nlu",
    "er": "er",
    "result": "result",
}
"""The label a turn gets when this stage is its failure point."""

LABELS: tuple[str, ...] = ("correct", "false_wake", "asr", "nlu", "er", "result")
"""Legal non-empty values of `failure_point`, pipeline order after `correct`."""

DEFECT_LABELS: tuple[str, ...] = LABELS[1:]

CONFIDENCE_COLUMNS: tuple[str, ...] = tuple(f"{stage}_confidence" for stage in STAGES)

STAGE_PREFIXES: tuple[str, ...] = tuple(f"{stage}_" for stage in STAGES)

MAX_ID_CHARS = 255
"""Longest dialogue_id: what the verdict store (any SQL database) keeps in an indexed column."""
MAX_TEXT_CHARS = 10_000
"""Longest value of any other text column of the contract: far beyond speech, and a bound on what
one cell can cost the text features and the app."""

LABEL_COLUMN = "failure_point"
KEY_COLUMNS: tuple[str, str] = ("dialogue_id", "turn_index")

PREDICTED_COLUMN = "predicted_failure_point"
"""The model's label for a turn, beside the human one (`LABEL_COLUMN`); scored frames and files carry it."""
PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"p_{label}" for label in LABELS)
"""The model's probability of each label, in `LABELS` order."""
PREDICTION_COLUMNS: tuple[str, ...] = (PREDICTED_COLUMN, *PROBABILITY_COLUMNS)


class Kind(str, Enum):
    """How a column's cells are read and checked."""

    STRING = "string"
    TURN_INDEX = "turn_index"  # integer >= 0
    PROBABILITY = "probability"  # float in [0, 1], empty = missing
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"
    LABEL = "label"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("dialogue_id", Kind.STRING, True, "one dialogue (session) of one user with one device"),
    Column("turn_index", Kind.TURN_INDEX, True, "position in the dialogue; unique within a dialogue"),
    Column("timestamp", Kind.TIMESTAMP, False, "when the turn started (ISO-8601)"),
    Column("device_type", Kind.STRING, False, "speaker, speaker_screen, tv, car, phone, ..."),
    Column("locale", Kind.STRING, False, "BCP-47 tag of the user's language variety"),
    Column("wake_confidence", Kind.PROBABILITY, True, "voice-trigger score"),
    Column("asr_confidence", Kind.PROBABILITY, True, "confidence of the ASR 1-best hypothesis"),
    Column("asr_text", Kind.STRING, False, "ASR 1-best hypothesis"),
    Column("nlu_domain", Kind.STRING, False, "music, video, books, smart_home, weather, ..."),
    Column("nlu_intent", Kind.STRING, False, "PlayMusic, TurnOn, ..."),
    Column("nlu_confidence", Kind.PROBABILITY, True, "confidence of the chosen interpretation"),
    Column("er_entity", Kind.STRING, False, "the resolved entity"),
    Column("er_confidence", Kind.PROBABILITY, True, "entity resolution score"),
    Column("result_confidence", Kind.PROBABILITY, True, "confidence of the subsystem that acted or answered"),
    Column("response_text", Kind.STRING, False, "what the assistant said"),
    Column("barge_in", Kind.BOOLEAN, False, "the user interrupted the response"),
    Column(LABEL_COLUMN, Kind.LABEL, False, "failure point label; empty means unlabeled"),
)

COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
CONTRACT_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS)

TRUE_STRINGS = frozenset({"true", "1", "yes", "t", "y"})
FALSE_STRINGS = frozenset({"false", "0", "no", "f", "n"})


def stage_of(column: str) -> str | None:
    """The stage whose prefix starts `column`, or None."""
    for stage in STAGES:
        if column.startswith(f"{stage}_"):
            return stage
    return None


FEATURE_NAME_FORBIDDEN = frozenset('[]{},:"')
"""Characters LightGBM refuses in a feature name (its model file is partly JSON)."""


def feature_name_problem(column: str) -> str | None:
    """Why `column` cannot be a model feature under its own name, or None when it can.

    LightGBM refuses `[ ] { } , : "` and silently turns whitespace into `_`, so a
    model trained on such a name could never be loaded again; control characters
    would garble its text file.
    """
    for char in column:
        if char in FEATURE_NAME_FORBIDDEN:
            return f"the name contains {char!r}, which a LightGBM feature name cannot"
        if char.isspace() or unicodedata.category(char).startswith("C"):
            return f"the name contains whitespace or a control character ({char!r})"
    return None


def safe_feature_name(column: str) -> str:
    """`column` with every character `feature_name_problem` objects to replaced by `_` (for the fix)."""
    return "".join("_" if (c in FEATURE_NAME_FORBIDDEN or c.isspace() or unicodedata.category(c).startswith("C"))
                   else c for c in column)


def is_stage_signal(column: str) -> bool:
    """True for a stage-prefixed extra column (not one of the contract's own) that can be a model feature.

    A stage-prefixed name LightGBM cannot store (`feature_name_problem`) is an ordinary
    extra column: passed through, never a feature, and named in the summary with the fix.
    """
    return (column not in COLUMNS_BY_NAME and stage_of(column) is not None
            and feature_name_problem(column) is None)


def is_unusable_stage_signal(column: str) -> bool:
    """A stage-prefixed extra whose name keeps it from being a model feature."""
    return (column not in COLUMNS_BY_NAME and stage_of(column) is not None
            and feature_name_problem(column) is not None)
