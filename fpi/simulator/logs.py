"""What a simulated pipeline writes to its log: one trace row per turn, as the contract reads it.

The latent outcomes of `fpi.simulator.simulate` become confidences already (`fpi.simulator.signals`);
here they become texts (what was heard, what was replied), cohort columns, timestamps and labels.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from fpi.data.schema import LABELS
from fpi.simulator.templates import ALREADY_REPLIES, ALREADY_STATES, POOLS, WordTables
from fpi.simulator.vocabulary import (
    ENTITY_DETAILS, GARBLE_WORDS, PLAIN_REPLIES, TERSE_REPLIES, WAKE_WORDS,
)
from fpi.simulator.pipelines import (
    APP_VERSIONS, DEFAULT_PIPELINE, DEVICE_NAMES, DEVICE_STATE, ER, FW, LOCALE_NAMES, RunContext, SimConfig,
)


TIMESTAMP_UNIT = "us"  # the unit `fpi.data.traces.load_traces` gives timestamps


def trace_frame(rng: np.random.Generator, dlg: dict, t: dict[str, np.ndarray], config: SimConfig, ctx: RunContext, *,
           label_noise: float, labelled: bool, with_latent: bool) -> pd.DataFrame:
    """Turn the latent per-turn arrays into the typed trace frame: text, labels, columns."""
    order = np.lexsort((t["k"], t["dlg"]))
    t = {key: value[order] for key, value in t.items()}
    n = t["k"].size
    d = t["dlg"]
    u = rng.random((n, 8))
    w, pipe = ctx.w, ctx.profile
    quirky = pipe != DEFAULT_PIPELINE
    fw, empty, ent, e = t["label"] == FW, t["empty"], t["ent"], np.maximum(t["ent"], 0)
    slot = ent >= 0
    j = (u[:, 0] < 0.5).astype(np.int64)  # which of an entity's two mishearings or neighbours

    # What the user said, as ASR heard it.
    level = t["asr_level"]
    garbled = (level == 2) & ~slot & ~empty & w.tpl_has_garble[t["tpl"]]  # the rest are garbled generically
    words = np.where(level == 1, w.tpl_minor[t["tpl"]], w.tpl_text[t["tpl"]])
    words = np.where(garbled, w.tpl_garble[t["tpl"]], words)
    span = np.where(slot & (level == 2), w.ent_misheard[e, j], w.ent_name[e])
    span = np.where(t["substituted"], w.ent_name[t["other_ent"]], span)
    prefix = np.where(t["after_correct"], w.repeat_prefixes[(u[:, 1] * w.repeat_prefixes.size).astype(np.int64)],
                      w.prefixes[(u[:, 1] * w.prefixes.size).astype(np.int64)])
    prefix = np.where(t["reph"], prefix, "")
    heard = [p + (x.replace("{e}", s) if s is not None else x) for p, x, s in zip(prefix, words, np.where(slot, span, None))]
    asr_text = np.array(heard, dtype=object)
    asr_text = np.where(fw, w.fragments[(u[:, 2] * w.fragments.size).astype(np.int64)], asr_text)
    if quirky:
        asr_text = _pipeline_text(ctx, t, asr_text, fw & ~empty)
    asr_text = np.where(empty, None, asr_text)

    # What NLU and ER chose.
    out_int, code = t["out_int"], t["er_code"]
    entity = np.select([code == 0, code == 1, code == 3],
                       [w.ent_name[e], w.ent_similar[e, j], w.ent_name[t["other_ent"]]], None)
    entity = np.where(code == 0, np.where(slot, entity, None), entity)
    if quirky:
        entity = _pipeline_entities(ctx, entity, e, code, t["label"] == ER, w.intent_pool[np.maximum(out_int, 0)])
    unresolved_slot = slot & ~w.intent_resolved[np.maximum(out_int, 0)] & (out_int >= 0)
    resp_e = np.where(code >= 0, entity, np.where(unresolved_slot, span, None))

    # What the assistant said back.
    oi = np.maximum(out_int, 0)
    has_e = np.array([x is not None for x in resp_e])
    group = np.where(has_e[:, None], w.resp_slot[oi], w.resp_noslot[oi])
    not_found = (code == 2) & ~empty
    resp_e = np.where(not_found, np.where(fw, asr_text, span), resp_e)
    group = np.where(not_found[:, None], w.resp_not_found[w.intent_domain[oi]], group)
    group = np.where((t["res_kind"] == 2)[:, None], w.resp_failed, group)
    group = np.where(((t["res_kind"] == 3) & has_e)[:, None], w.resp_offline, group)
    unavailable = (t["label"] == 0) & t["media"] & has_e & (u[:, 3] < pipe.declines)
    group = np.where(unavailable[:, None], w.resp_unavailable, group)
    group = np.where((fw & (u[:, 4] < pipe.false_wake_replies))[:, None], w.resp_false_wake, group)
    group = np.where(empty[:, None], w.resp_didnt_catch, group)
    said = w.resp_text[group[:, 0] + (u[:, 5] * group[:, 1]).astype(np.int64)]
    silent = empty & (fw | (u[:, 6] < 0.5))
    if quirky:
        said = _pipeline_replies(ctx, said, group[:, 0], w)
    response = [None if quiet else _sentence(r, x) for quiet, r, x in zip(silent, said, resp_e)]
    if pipe.already_replies > 0:
        _already(ctx, response, t, oi, resp_e, has_e & ~silent)

    label_code = t["label"]
    shown = label_code.copy()
    flip = rng.random(n) < label_noise
    shown[flip] = (shown[flip] + rng.integers(1, len(LABELS), int(flip.sum()))) % len(LABELS)
    labels = np.array(LABELS, dtype=object)
    width = max(6, len(str(dlg["n"] - 1)))
    ids = np.array([f"d{x:0{width}d}" for x in range(dlg["n"])], dtype=object)
    start = np.datetime64(pd.Timestamp(config.start).tz_localize(None).to_datetime64(), "s")
    stamps = (start + t["clock"].astype("timedelta64[s]")).astype(f"datetime64[{TIMESTAMP_UNIT}]")

    def text(values: np.ndarray | list) -> pd.Series:
        return pd.Series(values, dtype="str")

    columns: dict[str, pd.Series] = {
        "dialogue_id": text(ids[d]),
        "turn_index": pd.Series(t["k"], dtype="int64"),
        "timestamp": pd.Series(stamps).dt.tz_localize("UTC"),
        "device_type": text(np.array(DEVICE_NAMES, dtype=object)[dlg["dev"][d]]),
        "locale": text(np.array(LOCALE_NAMES, dtype=object)[dlg["loc"][d]]),
        "wake_confidence": pd.Series(t["wake_confidence"], dtype="float64"),
        "asr_confidence": pd.Series(t["asr_confidence"], dtype="float64"),
        "asr_text": text(asr_text),
        "nlu_domain": text(np.where(out_int >= 0, w.domain_names[w.intent_domain[oi]], None)),
        "nlu_intent": text(np.where(out_int >= 0, w.intent_names[oi], None)),
        "nlu_confidence": pd.Series(t["nlu_confidence"], dtype="float64"),
        "er_entity": text(entity),
        "er_confidence": pd.Series(t["er_confidence"], dtype="float64"),
        "result_confidence": pd.Series(t["result_confidence"], dtype="float64"),
        "response_text": text(response),
        "barge_in": pd.Series(t["barge"] & ~silent, dtype="boolean"),
        "failure_point": text(labels[shown] if labelled else np.full(n, None, dtype=object)),
        "asr_nbest_margin": pd.Series(t["asr_nbest_margin"], dtype="float64"),
        "nlu_alt_margin": pd.Series(t["nlu_alt_margin"], dtype="float64"),
        "nlu_alt_domain": text(np.where(t["alt_domain"] >= 0, w.domain_names[np.maximum(t["alt_domain"], 0)], None)),
        "result_latency_ms": pd.Series(t["result_latency_ms"], dtype="float64"),
        "app_version": text(np.array(list(APP_VERSIONS), dtype=object)[dlg["app"][d]]),
    }
    for name in pipe.dropped_columns:
        del columns[name]
    if with_latent:
        i = np.maximum(t["intent"], 0)
        goal = [f"{w.domain_names[w.intent_domain[a]]}/{w.intent_names[a]}" + (f":{w.ent_name[b]}" if b >= 0 else "")
                for a, b in zip(i, ent)]
        columns.update({
            "sim_goal": text(np.where(fw, "false_wake", np.array(goal, dtype=object))),
            "sim_goal_domain": text(np.where(fw, None, w.domain_names[w.intent_domain[i]])),
            "sim_goal_intent": text(np.where(fw, None, w.intent_names[i])),
            "sim_goal_entity": text(np.where(slot, w.ent_name[e], None)),
            "sim_noise": pd.Series(dlg["noise"][d], dtype="float64"),
            "sim_asr_error": text(np.array(["none", "minor", "major"], dtype=object)[level]),
            "sim_nlu_error": pd.Series(t["nlu_error"], dtype=bool),
            "sim_nlu_misrouted": pd.Series(t["routed"], dtype=bool),
            "sim_er_error": pd.Series(t["er_error"], dtype=bool),
            "sim_result_error": pd.Series(t["result_error"], dtype=bool),
            "sim_recovered": pd.Series(t["recovered"], dtype=bool),
            "sim_unsupported": pd.Series(t["unsup"], dtype=bool),
            "sim_rephrase_of_previous": pd.Series(t["reph"], dtype=bool),
            "sim_true_label": text(labels[label_code]),
        })
    return pd.DataFrame(columns)


def _pipeline_text(ctx: RunContext, t: dict[str, np.ndarray], asr_text: np.ndarray, heard_fw: np.ndarray) -> np.ndarray:
    """What this pipeline's recogniser wrote: overheard requests, generic garbling, the wake word."""
    p, w, aux = ctx.profile, ctx.w, ctx.aux
    n = asr_text.size
    text = asr_text.copy()
    command = t["command"]
    if command.any():
        spoken = w.tpl_text[t["command_tpl"]]
        names = w.ent_name[np.maximum(t["command_ent"], 0)]
        text[command] = [x.replace("{e}", e) for x, e in zip(spoken[command], names[command])]
    u = aux.random((n, 2))
    # A major error garbles a good part of the words; a harmless one, or speech from across the room, a few.
    major = t["garbled"] & (t["asr_level"] == 2)
    rate = np.where(major & ~t["recovered"], 0.3 + 0.3 * u[:, 0], 0.0)
    unclear = heard_fw & (u[:, 1] < 0.8 * (1.0 - p.false_wake_clarity))
    rate = np.where(unclear, 0.3 + 0.3 * u[:, 0], rate)
    light = ((t["asr_level"] == 1) | heard_fw | major) & (u[:, 1] < p.garble)
    rate = np.where(light & (rate == 0), 0.1 + 0.1 * u[:, 0], rate)
    rows = np.flatnonzero((rate > 0) & np.array([x is not None for x in text]))
    if rows.size:
        draws = aux.random((rows.size, 3, _GARBLE_SPAN))
        text[rows] = [_garble(text[r], rate[r], draws[k]) for k, r in enumerate(rows)]
    if p.wake_word_in_text > 0:
        word = WAKE_WORDS[int(aux.integers(len(WAKE_WORDS)))]
        said = (aux.random(n) < p.wake_word_in_text) & np.array([x is not None for x in text])
        text[said] = [f"{word} {x}" for x in text[said]]
    return text


_GARBLE_SPAN = 12
_SOUNDS = (("th", "f"), ("v", "b"), ("ee", "i"), ("ck", "g"), ("oo", "u"), ("ai", "ay"), ("ea", "e"), ("p", "b"),
           ("m", "n"), ("c", "g"), ("r", "w"), ("ing", "in"), ("d", "t"), ("s", "th"), ("l", "r"))


def _garble(text: str, rate: float, draws: np.ndarray) -> str:
    """Substitute (a sound-alike or a common word), drop or insert words, each with probability about `rate`."""
    out: list[str] = []
    words = text.split(" ")
    for k, word in enumerate(words):
        x, y, z = draws[:, k % _GARBLE_SPAN]
        common = GARBLE_WORDS[int(z * len(GARBLE_WORDS))]
        if x < rate * 0.6:
            swaps = [word.replace(a, b, 1) for a, b in _SOUNDS if a in word]
            out.append(swaps[int(y * len(swaps))] if swaps and y < 0.6 else common)
        elif x < rate * 0.8:
            continue
        elif x < rate:
            out += [word, common]
        else:
            out.append(word)
    return " ".join(out) or GARBLE_WORDS[int(draws[2, 0] * len(GARBLE_WORDS))]


def _pipeline_entities(ctx: RunContext, entity: np.ndarray, e: np.ndarray, code: np.ndarray, er_error: np.ndarray,
                       pool: np.ndarray) -> np.ndarray:
    """Entities as this pipeline's catalog names them: versions, years or places; wrong items with the right words."""
    p, w, aux = ctx.profile, ctx.w, ctx.aux
    n = entity.size
    u = aux.random((n, 3))
    out = entity.copy()
    same = er_error & (code == 1) & (u[:, 0] < p.er_same_text)
    out[same] = w.ent_name[e[same]]
    detailed = (code >= 0) & np.array([x is not None for x in out]) & ((u[:, 1] < p.entity_details) | same)
    for row in np.flatnonzero(detailed):
        options = ENTITY_DETAILS[POOLS[pool[row]]] if pool[row] >= 0 else ("",)
        out[row] = out[row] + options[int(u[row, 2] * len(options))]
    return out


_APOLOGY_OPENER = re.compile(r"^(sorry|i'm sorry|hmm|oh)[,.!]?\s+", re.IGNORECASE)
_PLAIN_KINDS = ("not_found", "failed", "offline", "didnt_catch", "false_wake")


def _pipeline_replies(ctx: RunContext, said: np.ndarray, group: np.ndarray, w: WordTables) -> np.ndarray:
    """Replies as this pipeline words them: plainly reworded failures, apologies kept or dropped."""
    p, aux = ctx.profile, ctx.aux
    n = said.size
    u = aux.random((n, 3))
    out = said.copy()
    starts = (w.resp_not_found[:, 0], w.resp_failed[:1], w.resp_offline[:1], w.resp_didnt_catch[:1],
              w.resp_false_wake[:1])
    for name, first in zip(_PLAIN_KINDS, starts):
        rows = np.isin(group, first) & (u[:, 0] < p.plain_wording)
        options = PLAIN_REPLIES[name]
        out[rows] = [options[int(x * len(options))] for x in u[rows, 1]]
    if p.apologies < 1:
        strip = u[:, 2] >= p.apologies
        out[strip] = [_APOLOGY_OPENER.sub("", x) for x in out[strip]]
    if p.terse_replies > 0:
        failures = np.isin(group, np.concatenate([np.ravel(x) for x in (*starts, w.resp_unavailable[:1])]))
        terse = ~failures & (aux.random(n) < p.terse_replies)
        out[terse] = [TERSE_REPLIES[int(x * len(TERSE_REPLIES))] for x in aux.random(int(terse.sum()))]
    return out


def _already(ctx: RunContext, response: list, t: dict[str, np.ndarray], intent: np.ndarray, entity: np.ndarray,
             spoken: np.ndarray) -> None:
    """A device command that changed nothing says so: a stale state (`res_kind` 4), or the device really was."""
    u = ctx.aux.random((len(response), 2))
    right = (t["label"] == 0) & (u[:, 0] < ctx.profile.already_right)
    rows = np.flatnonzero(spoken & DEVICE_STATE[intent] & ((t["res_kind"] == 4) | right))
    for row in rows:
        template = ALREADY_REPLIES[int(u[row, 1] * len(ALREADY_REPLIES))]
        response[row] = _sentence(template.replace("{state}", ALREADY_STATES[str(ctx.w.intent_names[intent[row]])]),
                                  entity[row])


def _sentence(template: str, value: str | None) -> str:
    filled = template.replace("{e}", value) if value is not None else template
    return filled[:1].upper() + filled[1:]
