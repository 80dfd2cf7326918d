"""Every model feature in words: a display name, a one-line meaning, and its value as a person reads it.

The SHAP waterfall, the importance and beeswarm charts, the reasons in words and the glossary
expanders on the drill-down and Model pages all take their words from here, so a feature has one
name wherever it shows. Names are built for whole families (`rank_*`, `drop_*`,
`cascade_min_to_*`, `next_*`/`prev_*`, `text_<field>`, stage-prefixed extras), so a feature
added to `fpi.model.features` or a new stage signal in an upload still gets a sensible entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from fpi.display import LABEL_NAMES, label_name, stage_name
from fpi.data.schema import LABELS, STAGES

NOT_LOGGED = "not logged"

STAGE_DOING: Mapping[str, str] = {
    "wake": "the voice trigger's score that someone spoke to the device",
    "asr": "speech recognition's confidence in the text it heard",
    "nlu": "language understanding's confidence in the domain and intent it chose",
    "er": "entity resolution's score for the catalog entity it matched",
    "result": "the confidence of the subsystem that acted or answered",
}

CATEGORICAL: Mapping[str, tuple[str, str]] = {
    "device_type": ("device", "The kind of device the turn was spoken to (speaker, TV, car, ...)."),
    "locale": ("locale", "The user's language variety (e.g. en-US, en-IN)."),
    "nlu_domain": ("NLU domain", "The domain language understanding chose (music, weather, ...)."),
    "nlu_intent": ("NLU intent", "The intent language understanding chose (PlayMusic, TurnOn, ...)."),
}

_NEIGHBOUR = {"next": "next turn", "prev": "previous turn"}

FIXED: Mapping[str, tuple[str, str]] = {
    "cascade_lowest_stage": ("least confident stage", "The stage with the lowest confidence on this turn."),
    "cascade_first_low_stage": ("first unusually low stage",
                                "The first stage, in pipeline order, whose confidence is below what 9 in 10 "
                                "training turns reach; 'none' when every stage is above."),
    "cascade_n_low": ("stages unusually low", "How many stages have a confidence below what 9 in 10 training "
                                              "turns reach."),
    "asr_word_count": ("words in the request", "How many words speech recognition heard."),
    "asr_text_empty": ("empty request text", "Speech recognition returned no words at all."),
    "entity_in_text": ("entity heard in the request",
                       "How closely the resolved entity's name matches the request's text (0-100)."),
    "entity_words_heard": ("entity words in the request",
                           "Share of the resolved entity's words that were in the request."),
    "entity_covers_request": ("request words in the entity",
                              "Share of the request's words that are part of the resolved entity."),
    "response_word_count": ("words in the response", "How many words the assistant's response has."),
    "response_apology": ("response apologises", "The response apologises or refuses ('sorry', 'can't', ...)."),
    "response_no_change": ("response: nothing to change", "The response says the command changed nothing "
                                                          "('already on'): the assistant and the user disagree."),
    "turn_position": ("position in the dialogue", "Which turn of the dialogue this is (0 = the first)."),
    "dialogue_length": ("turns in the dialogue", "How many turns the whole dialogue has."),
    "dialogue_turns_after": ("turns after this one", "How many turns of the dialogue follow this one."),
    "is_last_turn": ("last turn of the dialogue", "No turn follows this one: the user gave up or was done."),
    "next_text_similarity": ("next turn repeats the request",
                             "How similar the next turn's text is to this one's (0-100): a rephrase or "
                             "repeat suggests this turn failed."),
    "prev_text_similarity": ("repeats the previous turn",
                             "How similar this turn's text is to the previous one's (0-100)."),
    "next_asr_word_count": ("words in the next request", "How many words the next turn's request has."),
    "gap_to_next_s": ("seconds to the next turn", "Time from this turn to the next one: a quick retry suggests "
                                                  "a failure."),
    "gap_from_prev_s": ("seconds since the previous turn", "Time from the previous turn to this one."),
    "barge_in": ("user interrupted", "The user interrupted the assistant's response on this turn."),
    "next_barge_in": ("user interrupted the next turn", "The user interrupted the response to the next turn."),
    "prev_barge_in": ("user interrupted the previous turn",
                      "The user interrupted the response to the previous turn."),
    "next_response_apology": ("next response apologises",
                              "The response to the next turn apologises or refuses."),
}

STAGE_CODES: tuple[str, ...] = STAGES
"""What `cascade_lowest_stage` and `cascade_first_low_stage` count: 0 = wake ... 4 = result (5 = none)."""


@dataclass(frozen=True)
class Entry:
    feature: str
    name: str
    """Display name, e.g. "ASR confidence, rank in this upload"."""
    meaning: str
    """One line: what the number is and why the model reads it."""


def _conf_stage(column: str) -> str | None:
    for stage in STAGES:
        if column == f"{stage}_confidence":
            return stage
    return None


def _text_entry(name: str) -> Entry | None:
    from fpi.model.text_stack import FIELDS_BY_KEY

    if not name.startswith("text_"):
        return None
    rest = name[len("text_"):]
    if rest in FIELDS_BY_KEY:
        field = FIELDS_BY_KEY[rest]
        return Entry(name, f"text model: {field.description}",
                     f"A word model reading {field.description}: how strongly its words point at the label "
                     "explained (the probability it gives that label).")
    for label in sorted(LABELS, key=len, reverse=True):
        key = rest[: -len(label) - 1] if rest.endswith(f"_{label}") else None
        if key in FIELDS_BY_KEY:
            field = FIELDS_BY_KEY[key]
            return Entry(name, f"text model: {field.description} → {label_name(label)}",
                         f"The probability a word model reading {field.description} gives "
                         f"'{label_name(label)}'.")
    return None


def entry(name: str) -> Entry:
    """The glossary entry of any feature name the models use (families included)."""
    found = _entry(name)
    text = found.meaning
    return Entry(found.feature, found.name, text[:1].upper() + text[1:])


def _entry(name: str) -> Entry:
    if name in CATEGORICAL:
        display, meaning = CATEGORICAL[name]
        return Entry(name, display, meaning)
    if name in FIXED:
        display, meaning = FIXED[name]
        return Entry(name, display, meaning)
    text = _text_entry(name)
    if text is not None:
        return text
    stage = _conf_stage(name)
    if stage:
        return Entry(name, f"{stage_name(stage)} confidence", f"As logged: {STAGE_DOING[stage]} (0-1).")
    if name.startswith("missing_") and _conf_stage(name[len("missing_"):]):
        stage = _conf_stage(name[len("missing_"):])
        return Entry(name, f"{stage_name(stage)} confidence not logged",
                     f"The trace has no {stage_name(stage)} confidence: the stage did not run or was not logged.")
    if name.startswith("rank_") and _conf_stage(name[len("rank_"):]):
        stage = _conf_stage(name[len("rank_"):])
        return Entry(name, f"{stage_name(stage)} confidence, rank in this upload",
                     f"Where this turn's {stage_name(stage)} confidence sits among all turns of the upload "
                     "(0 = lowest, 1 = highest): the same evidence on any pipeline's scale.")
    for prefix, scale in (("rank_cascade_min_to_", "rank"), ("cascade_min_to_", "confidence")):
        if name.startswith(prefix) and name[len(prefix):] in STAGES:
            stage = name[len(prefix):]
            shown = f"lowest {scale} from wake to {stage_name(stage)}"
            return Entry(name, shown, f"The lowest {'upload rank of the confidences' if scale == 'rank' else 'confidence'} "
                                      f"of the stages from wake through {stage_name(stage)}: a weak link "
                                      "anywhere up to that stage.")
    for prefix, scale in (("rank_drop_", "rank"), ("drop_", "confidence")):
        if name.startswith(prefix) and name[len(prefix):] in STAGES:
            stage = name[len(prefix):]
            before = STAGES[STAGES.index(stage) - 1]
            return Entry(name, f"{scale} drop into {stage_name(stage)}",
                         f"{stage_name(before)}'s {scale} minus {stage_name(stage)}'s: positive when "
                         f"{stage_name(stage)} is less sure than the stage before it.")
    for side, words in _NEIGHBOUR.items():
        if name.startswith(f"{side}_rank_") and _conf_stage(name[len(side) + 6:]):
            stage = _conf_stage(name[len(side) + 6:])
            return Entry(name, f"{words}: {stage_name(stage)} confidence rank",
                         f"The {words}'s {stage_name(stage)} confidence, ranked within the upload (0-1).")
        if name.startswith(f"{side}_") and _conf_stage(name[len(side) + 1:]):
            stage = _conf_stage(name[len(side) + 1:])
            return Entry(name, f"{words}: {stage_name(stage)} confidence",
                         f"The {words}'s {stage_name(stage)} confidence (0-1); empty when there is no {words}.")
        if name.startswith(f"{side}_same_"):
            what = name[len(side) + 6:]
            return Entry(name, f"{words} has the same {what}",
                         f"The {words} has the same {what} as this one (a retry of the same request).")
    for stage in STAGES:
        if name.startswith(f"{stage}_"):
            rest = name[len(stage) + 1:].replace("_", " ")
            return Entry(name, f"{stage_name(stage)}: {rest}",
                         f"A further {stage_name(stage)} signal from the traces (column {name}).")
    return Entry(name, name.replace("_", " "), f"Column {name} of the traces.")


def display_name(name: str) -> str:
    return entry(name).name


def cohort_name(conditions: Iterable[tuple[str, str]]) -> str:
    """ "device = car and NLU domain = video": a cohort in words, each column by its display name, each value
    as in the traces (so it is user data: show it as text, never as Markdown)."""
    parts = [f"{display_name(column)} = {value}" for column, value in conditions]
    return " and ".join(parts) if parts else "all turns"


def meaning(name: str) -> str:
    return entry(name).meaning


def glossary_table(names: Iterable[str]) -> pd.DataFrame:
    """One row per feature, in the order given: feature (as in the model), name, meaning."""
    seen = list(dict.fromkeys(names))
    return pd.DataFrame([{"name": e.name, "meaning": e.meaning, "feature": e.feature} for e in map(entry, seen)],
                        columns=["name", "meaning", "feature"])


def format_value(name: str, value: float, *, levels: Mapping[str, Sequence[str]] | None = None) -> str:
    """The value as a person reads it: a category by name, a missing value as "not logged", flags as yes/no."""
    if value is None or np.isnan(value):
        return NOT_LOGGED
    if levels and name in levels:
        names = levels[name]
        code = int(value)
        return str(names[code]) if 0 <= code < len(names) else "a value not seen in training"
    if name in CATEGORICAL:
        return f"category {value:.0f}"
    if name in ("cascade_lowest_stage", "cascade_first_low_stage"):
        code = int(value)
        return stage_name(STAGE_CODES[code]) if 0 <= code < len(STAGE_CODES) else "none"
    if name in ("asr_text_empty", "response_apology", "response_no_change", "is_last_turn",
                "barge_in", "next_barge_in", "prev_barge_in", "next_response_apology") or name.startswith(
                    ("missing_", "next_same_", "prev_same_")):
        return "yes" if value else "no"
    if name.startswith("text_") and _text_entry(name) is not None:
        return f"p {value:.2f}"
    if name in ("asr_word_count", "response_word_count", "next_asr_word_count", "turn_position",
                "dialogue_length", "dialogue_turns_after", "cascade_n_low"):
        return f"{value:.0f}"
    if name in ("gap_to_next_s", "gap_from_prev_s"):
        return f"{value:.0f} s"
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def labelled_value(name: str, value: float, *, levels: Mapping[str, Sequence[str]] | None = None) -> str:
    """ "NLU intent = PlayAudiobook", "ER confidence = not logged": a chart's row label."""
    return f"{display_name(name)} = {format_value(name, value, levels=levels)}"


__all__ = ["Entry", "NOT_LOGGED", "display_name", "entry", "format_value", "glossary_table", "labelled_value",
           "meaning", "LABEL_NAMES"]
