"""Realistic voice-assistant traces from a causal model of the pipeline.

Labels are not drawn at random: each turn has a user goal, each stage (wake,
ASR, NLU, ER, result) succeeds or fails given device, accent, noise and domain,
and `failure_point` is derived as the first stage whose failure the rest of the
pipeline did not recover from. Confidences, text, barge-ins and the user's next
turn are drawn conditionally on those latent outcomes, with the overlap real
logs show (confident-wrong stages, low-confidence correct ones, accents whose
ASR is calibrated lower), so the difficulty comes from the data, not from noise.

Everything is vectorised over dialogues and stepped over turn positions, so a
quarter of a million dialogues take seconds; one seeded numpy generator makes
a seed always give the same frame. The words live in `fpi.simulate_templates`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd

from fpi.schema import LABELS, STAGES
from fpi.simulate_templates import DOMAINS, INTENT_NAMES, POOLS, WORDS as W

MAX_TURNS = 6
TIMESTAMP_UNIT = "us"  # the unit `fpi.traces.load_traces` gives timestamps
COHORT_KEYS: tuple[str, ...] = ("device_type", "locale", "app_version", "domain")

# device -> wake threshold, noise Beta(a, b), ASR error factor, false-wake dialogue
# rate, and how often NLU sends a title that is both film and book to video.
DEVICES: Mapping[str, tuple[float, float, float, float, float, float]] = MappingProxyType({
    "speaker": (0.50, 1.5, 5.0, 1.00, 0.055, 0.05),
    "speaker_screen": (0.50, 1.6, 4.5, 1.05, 0.075, 0.75),
    "tv": (0.60, 2.6, 3.0, 1.25, 0.170, 0.88),
    "car": (0.55, 3.2, 2.6, 1.45, 0.060, 0.05),
    "phone": (0.50, 1.3, 5.0, 0.90, 0.030, 0.25),
})
# locale -> ASR error factor (accent), logit shift of ASR confidence (calibration)
LOCALES: Mapping[str, tuple[float, float]] = MappingProxyType({
    "en-US": (0.85, 0.35), "en-CA": (0.95, 0.15), "en-GB": (1.05, 0.0), "en-AU": (1.30, -0.35),
    "en-IN": (1.55, -1.0), "en-IE": (1.15, -0.1), "en-NZ": (1.20, -0.25), "en-ZA": (1.30, -0.4),
})
APP_VERSIONS: Mapping[str, float] = MappingProxyType({"4.11": 0.2, "4.12": 0.33, "4.13": 0.42, "5.0-beta": 0.05})
GOAL_MIX: Mapping[str, tuple[float, ...]] = MappingProxyType({
    # PlayMusic Video Book On Off Open Close Temp Weather SetTimer CancelTimer AddToList Buy Unsupported
    "speaker": (0.20, 0.02, 0.07, 0.09, 0.08, 0.03, 0.03, 0.03, 0.14, 0.10, 0.04, 0.08, 0.04, 0.05),
    "speaker_screen": (0.15, 0.14, 0.09, 0.07, 0.06, 0.02, 0.02, 0.02, 0.12, 0.12, 0.04, 0.07, 0.03, 0.05),
    "tv": (0.10, 0.46, 0.09, 0.05, 0.05, 0.01, 0.01, 0.02, 0.07, 0.02, 0.01, 0.03, 0.03, 0.05),
    "car": (0.30, 0.01, 0.14, 0.02, 0.01, 0.07, 0.06, 0.02, 0.17, 0.02, 0.01, 0.07, 0.03, 0.07),
    "phone": (0.18, 0.08, 0.10, 0.08, 0.07, 0.03, 0.03, 0.03, 0.14, 0.09, 0.03, 0.06, 0.03, 0.06),
})
# intent -> NLU error rate, result error rate, median latency (ms), barge-in rate when right
INTENT_RATES: Mapping[str, tuple[float, float, float, float]] = MappingProxyType({
    "PlayMusic": (0.05, 0.09, 700, 0.03), "PlayVideo": (0.04, 0.07, 900, 0.03),
    "PlayAudiobook": (0.05, 0.06, 800, 0.04), "TurnOn": (0.03, 0.08, 1100, 0.02),
    "TurnOff": (0.03, 0.08, 1100, 0.02), "Open": (0.03, 0.08, 1300, 0.02), "Close": (0.03, 0.08, 1300, 0.02),
    "SetTemperature": (0.05, 0.07, 1100, 0.02), "GetWeather": (0.03, 0.07, 600, 0.07),
    "SetTimer": (0.02, 0.04, 350, 0.02), "CancelTimer": (0.05, 0.05, 350, 0.02),
    "AddToList": (0.05, 0.04, 900, 0.03), "Buy": (0.05, 0.08, 1000, 0.06), "Unsupported": (0.15, 0.01, 300, 0.08),
})
POOL_ER = MappingProxyType({"music": 0.09, "video": 0.07, "books": 0.08, "device": 0.07, "door": 0.05,
                            "city": 0.06, "item": 0.09, "duration": 0.0, "temperature": 0.0})
ASR_BASE = 0.16
GOALS_PER_DIALOGUE = np.array([0.25, 0.24, 0.20, 0.14, 0.10, 0.07])  # goals a user brings, 1..6


def _default_devices() -> Mapping[str, float]:
    return MappingProxyType({"speaker": 0.36, "speaker_screen": 0.17, "tv": 0.15, "car": 0.13, "phone": 0.19})


def _default_locales() -> Mapping[str, float]:
    return MappingProxyType({"en-US": 0.44, "en-GB": 0.17, "en-IN": 0.16, "en-AU": 0.10, "en-CA": 0.13})


@dataclass(frozen=True)
class CohortEffect:
    """A planted weak spot: in the cohort matching `conditions`, `stage` fails `factor` times as often.

    Condition keys are dialogue attributes (`device_type`, `locale`, `app_version`)
    or `domain`, the domain of the user's goal on the turn.
    """

    conditions: Mapping[str, str]
    stage: str
    factor: float


@dataclass(frozen=True)
class SimConfig:
    """The population and pipeline being simulated; the defaults are a plausible fleet."""

    device_weights: Mapping[str, float] = field(default_factory=_default_devices)
    locale_weights: Mapping[str, float] = field(default_factory=_default_locales)
    asr_confidence_shift: float = 0.0
    error_scale: float = 1.0
    cohort_effects: tuple[CohortEffect, ...] = ()
    start: str = "2026-10-01"
    days: int = 14


def _column(values: Mapping[str, tuple[float, ...]], keys: tuple[str, ...], j: int) -> np.ndarray:
    return np.array([values[k][j] for k in keys], dtype=float)


_DEV = tuple(DEVICES)
_LOC = tuple(LOCALES)
_DEV_THR, _DEV_NA, _DEV_NB, _DEV_ASR, _DEV_FW, _DEV_VIDEO = (_column(DEVICES, _DEV, j) for j in range(6))
_LOC_ASR, _LOC_SHIFT = (_column(LOCALES, _LOC, j) for j in range(2))
_NLU_BASE, _RES_BASE, _LATENCY, _BARGE = (_column(INTENT_RATES, INTENT_NAMES, j) for j in range(4))
_GOAL_CDF = np.cumsum([np.array(GOAL_MIX[d]) / sum(GOAL_MIX[d]) for d in _DEV], axis=1)
_POOL_ER = np.array([POOL_ER[p] for p in POOLS] + [0.0])  # index -1: no pool
_OFFLINE = W.intent_domain == DOMAINS.index("smart_home")
_MEDIA = np.isin(W.intent_domain, [DOMAINS.index(d) for d in ("music", "video", "books")])
_FW, _ASR, _NLU, _ER, _RES = (LABELS.index(x) for x in ("false_wake", "asr", "nlu", "er", "result"))


def simulate(
    n_dialogues: int,
    *,
    seed: int,
    label_noise: float = 0.0,
    labelled: bool = True,
    config: SimConfig | None = None,
    with_latent: bool = False,
) -> pd.DataFrame:
    """Generate `n_dialogues` dialogues of traces, typed as `fpi.traces.load_traces` returns them.

    `label_noise` flips that share of labels to another label, as annotators do;
    `with_latent` adds the hidden `sim_*` columns (goal, stage errors, true label) for tests.
    """
    config = config or SimConfig()
    _check(n_dialogues, label_noise, config)
    rng = np.random.default_rng(seed)
    dlg = _dialogues(rng, n_dialogues, config)
    turns = _run(rng, dlg, config)
    return _frame(rng, dlg, turns, config, label_noise=label_noise, labelled=labelled, with_latent=with_latent)


def _check(n_dialogues: int, label_noise: float, config: SimConfig) -> None:
    """Reject what the model cannot honour, naming the bad value."""
    if n_dialogues < 1:
        raise ValueError(f"n_dialogues must be at least 1, got {n_dialogues}")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {label_noise}")
    if config.days < 1 or config.error_scale < 0:
        raise ValueError(f"days must be >= 1 and error_scale >= 0, got {config.days} and {config.error_scale}")
    for name, weights, known in (("device", config.device_weights, _DEV), ("locale", config.locale_weights, _LOC)):
        if not weights or set(weights) - set(known) or min(weights.values()) < 0 or sum(weights.values()) <= 0:
            raise ValueError(f"{name} weights must be non-negative, not all zero, over {list(known)}; got {dict(weights)}")
    allowed = {"device_type": list(config.device_weights), "locale": list(config.locale_weights),
               "app_version": list(APP_VERSIONS), "domain": list(DOMAINS)}
    for effect in config.cohort_effects:
        if effect.stage not in STAGES or effect.factor < 0:
            raise ValueError(f"a cohort effect needs a stage in {STAGES} and a factor >= 0; got {effect}")
        if effect.stage == "wake" and "domain" in effect.conditions:
            raise ValueError(f"a false wake has no goal domain, so a wake effect cannot condition on it; got {effect}")
        for key, value in effect.conditions.items():
            if value not in allowed.get(key, ()):
                raise ValueError(f"cohort condition {key}={value!r} is not possible; keys and values: {allowed}")


def _pick(rng: np.random.Generator, weights: Mapping[str, float], known: tuple[str, ...], n: int) -> tuple[np.ndarray, list[str]]:
    names = list(weights)
    p = np.array([weights[k] for k in names], dtype=float)
    local = rng.choice(len(names), size=n, p=p / p.sum())
    return np.array([known.index(x) for x in names])[local], names


def _dialogues(rng: np.random.Generator, n: int, config: SimConfig) -> dict[str, np.ndarray]:
    """Per-dialogue attributes: who, on what device, how noisy, when, how many goals, which cohorts."""
    dev, _ = _pick(rng, config.device_weights, _DEV, n)
    loc, _ = _pick(rng, config.locale_weights, _LOC, n)
    app, _ = _pick(rng, APP_VERSIONS, tuple(APP_VERSIONS), n)
    noise = rng.beta(_DEV_NA[dev], _DEV_NB[dev])
    evening = rng.random(n) < 0.6
    hour = np.where(evening, rng.normal(19.0, 2.5, n), rng.normal(8.0, 1.5, n)) % 24.0
    start = rng.integers(0, config.days, n) * 86_400 + (hour * 3600).astype(np.int64)
    goals = rng.choice(MAX_TURNS, size=n, p=GOALS_PER_DIALOGUE) + 1
    codes = {"device_type": (dev, _DEV), "locale": (loc, _LOC), "app_version": (app, tuple(APP_VERSIONS))}
    mult = np.ones((n, len(STAGES)))
    by_domain = []  # (dialogue mask, domain, stage, factor): applied per turn, by goal
    for effect in config.cohort_effects:
        mask = np.ones(n, dtype=bool)
        for key, value in effect.conditions.items():
            if key in codes:
                mask &= codes[key][0] == codes[key][1].index(value)
        stage = STAGES.index(effect.stage)
        if "domain" in effect.conditions:
            by_domain.append((mask, DOMAINS.index(effect.conditions["domain"]), stage, effect.factor))
        else:
            mult[mask, stage] *= effect.factor
    fw = rng.random(n) < np.minimum(_DEV_FW[dev] * config.error_scale * mult[:, 0], 1.0)
    return {"n": n, "dev": dev, "loc": loc, "app": app, "noise": noise, "start": start, "goals": goals,
            "mult": mult, "by_domain": by_domain, "fw": fw}


def _run(rng: np.random.Generator, dlg: dict, config: SimConfig) -> dict[str, np.ndarray]:
    """Step every live dialogue through turn positions 0..5; returns per-turn arrays."""
    n = dlg["n"]
    intent, ent, tpl = np.zeros(n, np.int64), np.full(n, -1, np.int64), np.zeros(n, np.int64)
    prev_label = np.zeros(n, np.int64)
    kind = np.where(dlg["fw"], 2, 0)  # 0 new goal, 1 rephrase or repeat, 2 false wake
    goals_left = dlg["goals"].copy()
    clock = dlg["start"].copy()
    live = np.arange(n)
    chunks: list[dict[str, np.ndarray]] = []
    for k in range(MAX_TURNS):
        if live.size == 0:
            break
        m, dev = live.size, dlg["dev"][live]
        kd = kind[live]
        new, reph, fw = kd == 0, kd == 1, kd == 2
        g_int, g_tpl, g_ent = _new_goals(rng, dev)
        cur_int = np.where(new, g_int, intent[live])
        cur_ent = np.where(new, g_ent, ent[live])
        r_tpl = _rephrase_template(rng, cur_int, tpl[live], cur_ent >= 0, prev_label[live])
        cur_tpl = np.where(new, g_tpl, r_tpl)
        cur_int, cur_ent = np.where(fw, -1, cur_int), np.where(fw, -1, cur_ent)
        goals_left[live] -= new
        mult = dlg["mult"][live].copy()
        for mask, domain, stage, factor in dlg["by_domain"]:
            mult[mask[live] & ~fw & (W.intent_domain[np.maximum(cur_int, 0)] == domain), stage] *= factor
        out = _stages(rng, dev, dlg["loc"][live], dlg["noise"][live], cur_int, cur_ent, cur_tpl, fw, reph,
                      mult, config, k)
        label = out["label"]
        # The user's reaction: interrupt a wrong answer, try again, move on, or give up.
        u = rng.random((m, 4))
        defect = (label != 0) & ~fw
        unsup = cur_int == W.unsupported
        p_barge = np.where(fw, 0.12, np.where(defect, 0.36, _BARGE[np.maximum(cur_int, 0)]))
        barge = u[:, 0] < p_barge
        p_again = np.where(defect, np.where(barge, 0.62, 0.48), np.where(unsup, 0.25, 0.035))
        again = ~fw & (u[:, 1] < p_again) & (k < MAX_TURNS - 1)
        give_up = defect & ~again & (u[:, 2] < 0.25 / (1 - p_again))
        onward = ~fw & ~again & ~give_up & (goals_left[live] > 0)
        late_fw = ~fw & ~again & ~onward & (u[:, 3] < _DEV_FW[dev] * 0.12 * mult[:, 0] * config.error_scale)
        chunks.append({"dlg": live, "k": np.full(m, k), "clock": clock[live].copy(), "intent": cur_int,
                       "ent": cur_ent, "tpl": cur_tpl, "reph": reph, "barge": barge,
                       "after_correct": prev_label[live] == 0, **out})
        gap = np.where(again, rng.integers(2, 9, m),
                       np.where(onward, np.exp(rng.uniform(np.log(10), np.log(120), m)), rng.integers(20, 600, m)))
        clock[live] += gap.astype(np.int64)
        intent[live], ent[live], tpl[live], prev_label[live] = cur_int, cur_ent, cur_tpl, label
        kind[live] = np.where(again, 1, np.where(onward, 0, 2))
        live = live[again | onward | late_fw]
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def _new_goals(rng: np.random.Generator, dev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fresh goal per row: intent from the device's mix, any phrasing, an entity if it has a slot."""
    u = rng.random((dev.size, 3))
    intent = (u[:, :1] > _GOAL_CDF[dev]).sum(axis=1).clip(max=len(INTENT_NAMES) - 1)
    # The first phrasing ("play X") is the habitual one; the rest share the remainder.
    pick = np.where(u[:, 1] < 0.3, 0.0, (u[:, 1] - 0.3) / 0.7)
    tpl = W.tpl_start[intent] + (pick * W.tpl_count[intent]).astype(np.int64)
    pool = W.intent_pool[intent]
    ent = W.pool_start[pool] + (u[:, 2] * W.pool_size[pool]).astype(np.int64)
    return intent, tpl, np.where(W.tpl_slot[tpl] & (pool >= 0), ent, -1)


def _rephrase_template(rng: np.random.Generator, intent: np.ndarray, tpl: np.ndarray, slot: np.ndarray,
                       prev_label: np.ndarray) -> np.ndarray:
    """The second try: often the same words, else another phrasing; explicit after a misroute."""
    u = rng.random((intent.size, 3))
    i = np.maximum(intent, 0)
    start = np.where(slot, W.slot_start[i], W.noslot_start[i])
    count = np.where(slot, W.slot_count[i], W.noslot_count[i])
    explicit = slot & (W.explicit_count[i] > 0) & (u[:, 2] < np.where(prev_label == _NLU, 0.75, 0.25))
    start = np.where(explicit, W.explicit_start[i], start)
    count = np.where(explicit, W.explicit_count[i], count)
    other = start + (u[:, 1] * np.maximum(count, 1)).astype(np.int64)
    return np.where((u[:, 0] < 0.4) & ~explicit, tpl, other)


def _stages(rng: np.random.Generator, dev: np.ndarray, loc: np.ndarray, noise: np.ndarray, intent: np.ndarray,
            ent: np.ndarray, tpl: np.ndarray, fw: np.ndarray, reph: np.ndarray, mult: np.ndarray,
            config: SimConfig, k: int) -> dict[str, np.ndarray]:
    """Latent stage outcomes of one turn per row, the label they imply, and the logged signals."""
    u = rng.random((intent.size, 16))
    scale = config.error_scale
    i, e = np.maximum(intent, 0), np.maximum(ent, 0)
    unsup, slot = intent == W.unsupported, ent >= 0
    resolved = slot & W.intent_resolved[i]
    easier = np.where(reph, 0.75, 1.0)  # a second try is said more carefully

    # ASR: minor slips are absorbed downstream; major ones hit the entity or a key word.
    p_asr = (ASR_BASE * _DEV_ASR[dev] * _LOC_ASR[loc] * (0.45 + 1.3 * noise) * scale * mult[:, 1]
             * np.where(resolved, 1.3, np.where(slot, 1.0, 0.7)) * np.where(reph, 0.85, 1.0))
    asr_err = ~fw & (u[:, 0] < p_asr)
    major = asr_err & ~unsup & (slot | W.tpl_has_garble[tpl]) & (u[:, 1] < np.where(slot, 0.64, 0.4))
    empty = (major & (u[:, 2] < 0.08 + 0.15 * noise)) | (fw & (u[:, 2] < 0.3))
    # ER fuzzy-matches a misheard title back; parsers rarely rescue a misheard number.
    recovered = major & ~empty & (u[:, 3] < np.where(resolved, 0.28, np.where(slot, 0.08, 0.2)))
    asr_fail = major & ~recovered
    ok = ~fw & ~asr_fail

    # NLU: general confusions, plus titles that are both film and book, routed by device.
    shared = slot & W.ent_shared[e] & ~W.tpl_explicit[tpl]
    to_video = _DEV_VIDEO[dev]
    p_route = np.where(shared & (intent == W.books), 0.8 * to_video,
                       np.where(shared & (intent == W.video), 0.6 * (1 - to_video), 0.0))
    routed = ok & (u[:, 4] < p_route * easier * mult[:, 2] * scale)
    p_nlu = _NLU_BASE[i] * scale * mult[:, 2] * easier * np.where(asr_err, 1.6, 1.0)
    nlu_err = ok & (routed | (u[:, 5] < p_nlu))
    confused = W.confusable[i, (u[:, 6] * W.n_confusable[i]).astype(np.int64)]
    drift = asr_fail & (u[:, 7] < 0.35)
    out_int = np.where(routed, np.where(intent == W.books, W.video, W.books),
                       np.where(nlu_err | drift, confused, intent))
    out_int = np.where(fw, (u[:, 6] * (len(INTENT_NAMES) - 1)).astype(np.int64), out_int)
    out_int = np.where(empty, -1, out_int)
    ok &= ~nlu_err

    # ER resolves the heard span in the chosen intent's catalog.
    oi = np.maximum(out_int, 0)
    out_pool = W.intent_pool[oi]
    er_runs = (out_int >= 0) & W.intent_resolved[oi] & np.where(fw, u[:, 8] < 0.5, slot)
    p_er = _POOL_ER[W.intent_pool[i]] * scale * mult[:, 3] * easier * np.where(asr_err, 1.4, 1.0)
    er_err = ok & er_runs & ~recovered & (u[:, 9] < p_er)  # a recovery was ER matching correctly
    # er_code: 0 the right entity, 1 a similar item, 2 nothing found, 3 some other catalog item
    er_code = np.where(er_err, np.where(u[:, 10] < 0.7, 1, 2), 0)
    er_code = np.where(asr_fail, np.where(u[:, 10] < 0.45, 2, 3), er_code)
    er_code = np.where(nlu_err & (out_pool != W.intent_pool[i]), np.where(u[:, 10] < 0.5, 2, 3), er_code)
    er_code = np.where(fw, np.where(u[:, 10] < 0.5, 2, 3), er_code)
    er_code = np.where(er_runs, er_code, -1)
    other_ent = W.pool_start[out_pool] + (u[:, 11] * W.pool_size[out_pool]).astype(np.int64)
    ok &= ~er_err

    # Result: wrong version or answer (looks normal), a timeout, or an offline device.
    res_err = ok & (u[:, 12] < _RES_BASE[i] * scale * mult[:, 4] * np.where(reph, 0.8, 1.0))
    res_kind = np.where(res_err, np.where(u[:, 13] < 0.58, 1, np.where((u[:, 13] < 0.82) | ~_OFFLINE[i], 2, 3)), 0)

    label = np.select([fw, asr_fail, nlu_err, er_err, res_err], [_FW, _ASR, _NLU, _ER, _RES], 0)
    upstream = fw | asr_fail | nlu_err | er_err
    alt = _alt_domain(u[:, 14:16], intent, out_int, nlu_err, fw)
    out = {"label": label, "asr_level": np.where(major, 2, asr_err.astype(np.int64)), "empty": empty,
           "recovered": asr_err & (label == 0), "out_int": out_int, "routed": routed,
           "nlu_error": (out_int != intent) & ~fw, "er_code": er_code, "other_ent": other_ent,
           "er_error": er_runs & (er_code > 0) & ~fw, "res_kind": res_kind, "result_error": upstream | res_err,
           "unsup": unsup, "alt_domain": alt, "media": _MEDIA[i] & ~fw}
    out.update(_signals(rng, out, dev, loc, noise, fw, asr_fail, nlu_err, er_err, er_runs, asr_err, i, config, k))
    return out


def _alt_domain(u: np.ndarray, intent: np.ndarray, out_int: np.ndarray, nlu_err: np.ndarray,
                fw: np.ndarray) -> np.ndarray:
    """The runner-up domain NLU logs: often the right one when it chose wrong."""
    oi = np.maximum(out_int, 0)
    runner_up = W.intent_domain[W.neighbours[oi, (u[:, 0] * W.n_neighbours[oi]).astype(np.int64)]]
    alt = np.where(nlu_err & (u[:, 1] < 0.7), W.intent_domain[np.maximum(intent, 0)], runner_up)
    alt = np.where(fw, (u[:, 1] * len(DOMAINS)).astype(np.int64), alt)
    return np.where(out_int < 0, -1, alt)


def _signals(rng: np.random.Generator, o: dict[str, np.ndarray], dev: np.ndarray, loc: np.ndarray,
             noise: np.ndarray, fw: np.ndarray, asr_fail: np.ndarray, nlu_err: np.ndarray, er_err: np.ndarray,
             er_runs: np.ndarray, asr_err: np.ndarray, i: np.ndarray, config: SimConfig,
             k: int) -> dict[str, np.ndarray]:
    """Confidences and stage extras, drawn given the latent outcomes, with realistic overlap."""
    m = i.size
    c = rng.random((m, 6))
    empty, level, label = o["empty"], o["asr_level"], o["label"]
    sure = c[:, 0] < 0.25  # the stage was wrong and confident about it
    notices = c[:, 1] < 0.5  # a downstream stage is unsettled by the upstream mess

    thr = _DEV_THR[dev]
    wake = thr + (1 - thr) * np.where(fw, rng.beta(1.4, 3.0, m), rng.beta(5.0 - 3.0 * noise, 1.6))
    follow_up = (k > 0) & ~fw & (c[:, 2] < 0.12)  # no wake word: the device kept listening
    wake = np.where(follow_up, rng.beta(2.5, 2.0, m), wake)

    asr_ab = np.select([fw[:, None], empty[:, None], ((level == 2) & ~sure)[:, None], (level == 2)[:, None],
                        (level == 1)[:, None]], [[3.0, 2.5], [1.0, 6.0], [2.0, 3.2], [6.0, 1.8], [3.5, 2.0]], [7.0, 1.5])
    shift = _LOC_SHIFT[loc] - 1.2 * noise + config.asr_confidence_shift
    asr = _logit_shift(rng.beta(asr_ab[:, 0], asr_ab[:, 1]), shift)
    # The margin mostly agrees with the confidence on whether to be sure; now and then it knows better.
    second_look = c[:, 3] < 0.15
    nbest_ab = np.select([fw[:, None], ((level == 2) & (~sure | second_look))[:, None], (level == 1)[:, None]],
                         [[2.0, 3.0], [1.3, 5.0], [2.5, 3.0]], [5.0, 2.5])
    # A margin moves with its stage's confidence; only part of it is a second opinion.
    nbest = np.where(empty, np.nan, 0.5 * asr + 0.5 * rng.beta(nbest_ab[:, 0], nbest_ab[:, 1]))

    routed_sure = o["routed"] & (c[:, 4] < 0.35)
    nlu_ab = np.select([fw[:, None], (nlu_err & (sure | routed_sure))[:, None], nlu_err[:, None],
                        (asr_fail & notices)[:, None], o["unsup"][:, None]],
                       [[2.0, 3.5], [7.0, 2.0], [1.8, 4.0], [3.0, 2.5], [3.0, 2.0]], [8.0, 1.6])
    nlu = np.where(empty, np.nan, rng.beta(nlu_ab[:, 0], nlu_ab[:, 1]))
    alt_ab = np.select([fw[:, None], (nlu_err & (~(sure | routed_sure) | second_look))[:, None], o["routed"][:, None],
                        (asr_fail & notices)[:, None]], [[1.5, 4.0], [1.2, 6.0], [2.0, 4.0], [2.0, 3.0]], [4.0, 2.0])
    alt = np.where(empty, np.nan, 0.5 * nlu + 0.5 * rng.beta(alt_ab[:, 0], alt_ab[:, 1]))

    code = o["er_code"]
    er_ab = np.select([fw[:, None], (er_err & sure)[:, None], (code == 2)[:, None], (code > 0)[:, None],
                       ((asr_err & ~asr_fail) | (nlu_err & notices))[:, None]],
                      [[1.5, 4.0], [7.0, 2.0], [1.2, 6.0], [1.8, 4.0], [4.0, 2.5]], [8.0, 1.5])
    er = np.where(er_runs, rng.beta(er_ab[:, 0], er_ab[:, 1]), np.nan)

    kind = o["res_kind"]
    upstream = fw | asr_fail | nlu_err | er_err
    res_ab = np.select([fw[:, None], (kind == 2)[:, None], ((kind > 0) & sure)[:, None], (kind > 0)[:, None],
                        (upstream & notices)[:, None]], [[5.0, 2.0], [1.0, 5.0], [8.0, 1.8], [1.8, 4.0], [3.0, 3.0]],
                       [9.0, 1.5])
    res = np.where(empty, np.nan, rng.beta(res_ab[:, 0], res_ab[:, 1]))
    slow = (kind == 2) | ((label == 0) & (c[:, 5] < 0.02))
    latency = np.where(slow, rng.uniform(3500, 8000, m), np.exp(rng.normal(np.log(_LATENCY[i]), 0.35)))
    return {"wake_confidence": wake, "asr_confidence": asr, "asr_nbest_margin": nbest, "nlu_confidence": nlu,
            "nlu_alt_margin": alt, "er_confidence": er, "result_confidence": res,
            "result_latency_ms": np.where(empty, np.nan, np.round(latency))}


def _logit_shift(p: np.ndarray, shift: np.ndarray | float) -> np.ndarray:
    """Move a probability in logit space: how a differently calibrated model would report it."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + shift)))


def _frame(rng: np.random.Generator, dlg: dict, t: dict[str, np.ndarray], config: SimConfig, *,
           label_noise: float, labelled: bool, with_latent: bool) -> pd.DataFrame:
    """Turn the latent per-turn arrays into the typed trace frame: text, labels, columns."""
    order = np.lexsort((t["k"], t["dlg"]))
    t = {key: value[order] for key, value in t.items()}
    n = t["k"].size
    d = t["dlg"]
    u = rng.random((n, 8))
    fw, empty, ent, e = t["label"] == _FW, t["empty"], t["ent"], np.maximum(t["ent"], 0)
    slot = ent >= 0
    j = (u[:, 0] < 0.5).astype(np.int64)  # which of an entity's two mishearings or neighbours

    # What the user said, as ASR heard it.
    level = t["asr_level"]
    garbled = (level == 2) & ~slot & ~empty
    words = np.where(level == 1, W.tpl_minor[t["tpl"]], W.tpl_text[t["tpl"]])
    words = np.where(garbled, W.tpl_garble[t["tpl"]], words)
    span = np.where(slot & (level == 2), W.ent_misheard[e, j], W.ent_name[e])
    prefix = np.where(t["after_correct"], W.repeat_prefixes[(u[:, 1] * W.repeat_prefixes.size).astype(np.int64)],
                      W.prefixes[(u[:, 1] * W.prefixes.size).astype(np.int64)])
    prefix = np.where(t["reph"], prefix, "")
    heard = [p + (w.replace("{e}", s) if s is not None else w) for p, w, s in zip(prefix, words, np.where(slot, span, None))]
    asr_text = np.array(heard, dtype=object)
    asr_text = np.where(fw, W.fragments[(u[:, 2] * W.fragments.size).astype(np.int64)], asr_text)
    asr_text = np.where(empty, None, asr_text)

    # What NLU and ER chose.
    out_int, code = t["out_int"], t["er_code"]
    entity = np.select([code == 0, code == 1, code == 3],
                       [W.ent_name[e], W.ent_similar[e, j], W.ent_name[t["other_ent"]]], None)
    entity = np.where(code == 0, np.where(slot, entity, None), entity)
    unresolved_slot = slot & ~W.intent_resolved[np.maximum(out_int, 0)] & (out_int >= 0)
    resp_e = np.where(code >= 0, entity, np.where(unresolved_slot, span, None))

    # What the assistant said back.
    oi = np.maximum(out_int, 0)
    has_e = np.array([x is not None for x in resp_e])
    group = np.where(has_e[:, None], W.resp_slot[oi], W.resp_noslot[oi])
    not_found = (code == 2) & ~empty
    resp_e = np.where(not_found, np.where(fw, asr_text, span), resp_e)
    group = np.where(not_found[:, None], W.resp_not_found[W.intent_domain[oi]], group)
    group = np.where((t["res_kind"] == 2)[:, None], W.resp_failed, group)
    group = np.where(((t["res_kind"] == 3) & has_e)[:, None], W.resp_offline, group)
    unavailable = (t["label"] == 0) & t["media"] & has_e & (u[:, 3] < 0.015)
    group = np.where(unavailable[:, None], W.resp_unavailable, group)
    group = np.where((fw & (u[:, 4] < 0.5))[:, None], W.resp_false_wake, group)
    group = np.where(empty[:, None], W.resp_didnt_catch, group)
    said = W.resp_text[group[:, 0] + (u[:, 5] * group[:, 1]).astype(np.int64)]
    silent = empty & (fw | (u[:, 6] < 0.5))
    response = [None if quiet else _sentence(r, x) for quiet, r, x in zip(silent, said, resp_e)]

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
        "device_type": text(np.array(_DEV, dtype=object)[dlg["dev"][d]]),
        "locale": text(np.array(_LOC, dtype=object)[dlg["loc"][d]]),
        "wake_confidence": pd.Series(t["wake_confidence"], dtype="float64"),
        "asr_confidence": pd.Series(t["asr_confidence"], dtype="float64"),
        "asr_text": text(asr_text),
        "nlu_domain": text(np.where(out_int >= 0, W.domain_names[W.intent_domain[oi]], None)),
        "nlu_intent": text(np.where(out_int >= 0, W.intent_names[oi], None)),
        "nlu_confidence": pd.Series(t["nlu_confidence"], dtype="float64"),
        "er_entity": text(entity),
        "er_confidence": pd.Series(t["er_confidence"], dtype="float64"),
        "result_confidence": pd.Series(t["result_confidence"], dtype="float64"),
        "response_text": text(response),
        "barge_in": pd.Series(t["barge"] & ~silent, dtype="boolean"),
        "failure_point": text(labels[shown] if labelled else np.full(n, None, dtype=object)),
        "asr_nbest_margin": pd.Series(t["asr_nbest_margin"], dtype="float64"),
        "nlu_alt_margin": pd.Series(t["nlu_alt_margin"], dtype="float64"),
        "nlu_alt_domain": text(np.where(t["alt_domain"] >= 0, W.domain_names[np.maximum(t["alt_domain"], 0)], None)),
        "result_latency_ms": pd.Series(t["result_latency_ms"], dtype="float64"),
        "app_version": text(np.array(list(APP_VERSIONS), dtype=object)[dlg["app"][d]]),
    }
    if with_latent:
        i = np.maximum(t["intent"], 0)
        goal = [f"{W.domain_names[W.intent_domain[a]]}/{W.intent_names[a]}" + (f":{W.ent_name[b]}" if b >= 0 else "")
                for a, b in zip(i, ent)]
        columns.update({
            "sim_goal": text(np.where(fw, "false_wake", np.array(goal, dtype=object))),
            "sim_goal_domain": text(np.where(fw, None, W.domain_names[W.intent_domain[i]])),
            "sim_goal_intent": text(np.where(fw, None, W.intent_names[i])),
            "sim_goal_entity": text(np.where(slot, W.ent_name[e], None)),
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


def _sentence(template: str, value: str | None) -> str:
    filled = template.replace("{e}", value) if value is not None else template
    return filled[:1].upper() + filled[1:]
