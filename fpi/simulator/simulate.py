"""Realistic voice-assistant traces from a causal model of the pipeline.

Labels are not drawn at random: each turn has a user goal, each stage (wake,
ASR, NLU, ER, result) succeeds or fails given device, accent, noise and domain,
and `failure_point` is derived as the first stage whose failure the rest of the
pipeline did not recover from. Confidences, text, barge-ins and the user's next
turn are drawn conditionally on those latent outcomes, with the overlap real
logs show (confident-wrong stages, low-confidence correct ones, accents whose
ASR is calibrated lower), so the difficulty comes from the data, not from noise.

A `PipelineProfile` (in `SimConfig.pipeline`) describes one pipeline's quirks:
saturated wake scores, per-stage calibration, false wakes that carry requests,
ER errors with the right words, error mix, users, replies, logged columns. The
default profile is the original pipeline, frame for frame; `random_profile`
draws others and `simulate_fleet` mixes many (domain randomisation), so a model
trained on the fleet learns cues that carry over to a pipeline it never saw.

Everything is vectorised over dialogues and stepped over turn positions, so a
quarter of a million dialogues take seconds; one seeded numpy generator makes
a seed always give the same frame (a profile's quirks draw from a second one).
The words live in `fpi.simulator.templates`.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from fpi.data.schema import STAGES
from fpi.simulator.templates import DOMAINS, INTENT_NAMES, WordTables, WORDS as W
from fpi.simulator.logs import trace_frame
from fpi.simulator.pipelines import (
    APP_VERSIONS, ASR, ASR_BASE, BARGE, DEFAULT_PIPELINE, DEV_ASR, DEV_FALSE_WAKE, DEV_NOISE_A, DEV_NOISE_B, DEV_VIDEO,
    DEVICE_NAMES, ER, FW, GOAL_CDF, GOALS_PER_DIALOGUE, LOC_ASR, LOCALE_NAMES, MAX_TURNS, MEDIA, NLU, NLU_BASE, OFFLINE,
    POOL_ER_RATES, RES, RES_BASE, DEVICE_STATE, RunContext, SimConfig, fleet_configs, pipeline_words,
)
from fpi.simulator.signals import stage_signals


def simulate(
    n_dialogues: int,
    *,
    seed: int,
    label_noise: float = 0.0,
    labelled: bool = True,
    config: SimConfig | None = None,
    with_latent: bool = False,
) -> pd.DataFrame:
    """Generate `n_dialogues` dialogues of traces, typed as `fpi.data.traces.load_traces` returns them.

    `label_noise` flips that share of labels to another label, as annotators do;
    `with_latent` adds the hidden `sim_*` columns (goal, stage errors, true label) for tests.
    """
    config = config or SimConfig()
    _check(n_dialogues, label_noise, config)
    rng = np.random.default_rng(seed)
    # A pipeline's own quirks draw from a second stream, so the default pipeline keeps its frames.
    ctx = RunContext(config.pipeline, pipeline_words(config.pipeline), np.random.default_rng([seed, 7919]))
    dlg = _dialogues(rng, n_dialogues, config)
    turns = _run(rng, dlg, config, ctx)
    return trace_frame(rng, dlg, turns, config, ctx, label_noise=label_noise, labelled=labelled, with_latent=with_latent)


def simulate_fleet(
    n_dialogues: int,
    *,
    seed: int,
    n_pipelines: int = 12,
    with_default: bool = True,
    label_noise: float = 0.0,
    labelled: bool = True,
    with_latent: bool = False,
    n_fleets: int = 1,
) -> pd.DataFrame:
    """Traces from `n_pipelines` pipelines, the dialogues shared out evenly, one frame.

    Pipeline k is `fleet_configs(...)[k]`; its dialogue ids start with `pKK-` and a
    `pipeline` column names it (a string extra: passed through, good for slicing and
    for leaving one pipeline out). Columns a pipeline does not log are empty on its rows.
    `n_fleets` > 1 draws that many fleets independently (the first is the one fleet of
    `seed`), shares the dialogues out evenly between them and names each in a `fleet`
    column (`f0`, `f1`, ...; pipelines `fK-pJJ`): what `TrainConfig.member_column` averages over.
    """
    if n_fleets > 1:
        return _fleets(n_dialogues, seed=seed, n_fleets=n_fleets, n_pipelines=n_pipelines, with_default=with_default,
                       label_noise=label_noise, labelled=labelled, with_latent=with_latent)
    configs = fleet_configs(n_pipelines, seed=seed, with_default=with_default)
    if n_dialogues < n_pipelines:
        raise ValueError(f"n_dialogues ({n_dialogues}) must be at least n_pipelines ({n_pipelines})")
    sizes = np.full(n_pipelines, n_dialogues // n_pipelines)
    sizes[: n_dialogues % n_pipelines] += 1
    frames = []
    for k, (config, size) in enumerate(zip(configs, sizes)):
        part = simulate(int(size), seed=int(np.random.SeedSequence([seed, k]).generate_state(1)[0]),
                        label_noise=label_noise, labelled=labelled, config=config, with_latent=with_latent)
        name = config.pipeline.name
        part["dialogue_id"] = (name + "-") + part["dialogue_id"]
        part["pipeline"] = pd.Series(name, index=part.index, dtype="str")
        frames.append(part)
    fleet = pd.concat(frames, ignore_index=True)
    # Every column the default pipeline logs, in its order, even if no drawn pipeline logged it.
    reference = simulate(1, seed=0, with_latent=with_latent)
    for column in reference.columns:
        if column not in fleet.columns:
            fleet[column] = pd.Series(np.nan, index=fleet.index).astype(reference[column].dtype)
        elif fleet[column].dtype != reference[column].dtype:
            fleet[column] = fleet[column].astype(reference[column].dtype)
    return fleet[[*reference.columns, "pipeline"]]


def _fleets(n_dialogues: int, *, seed: int, n_fleets: int, **options: Any) -> pd.DataFrame:
    if n_dialogues < n_fleets * options["n_pipelines"]:
        raise ValueError(f"n_dialogues ({n_dialogues}) must be at least n_fleets x n_pipelines "
                         f"({n_fleets * options['n_pipelines']})")
    frames = []
    for k in range(n_fleets):
        fleet_seed = seed if k == 0 else int(np.random.SeedSequence([seed, 29, k]).generate_state(1)[0])
        part = simulate_fleet(n_dialogues // n_fleets + (k < n_dialogues % n_fleets), seed=fleet_seed, **options)
        for column in ("pipeline", "dialogue_id"):
            part[column] = f"f{k}-" + part[column]
        part["fleet"] = pd.Series(f"f{k}", index=part.index, dtype="str")
        frames.append(part)
    return pd.concat(frames, ignore_index=True)


def _check(n_dialogues: int, label_noise: float, config: SimConfig) -> None:
    """Reject what the model cannot honour, naming the bad value."""
    if n_dialogues < 1:
        raise ValueError(f"n_dialogues must be at least 1, got {n_dialogues}")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {label_noise}")
    if config.days < 1 or config.error_scale < 0:
        raise ValueError(f"days must be >= 1 and error_scale >= 0, got {config.days} and {config.error_scale}")
    for name, weights, known in (("device", config.device_weights, DEVICE_NAMES), ("locale", config.locale_weights, LOCALE_NAMES)):
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
    dev, _ = _pick(rng, config.device_weights, DEVICE_NAMES, n)
    loc, _ = _pick(rng, config.locale_weights, LOCALE_NAMES, n)
    app, _ = _pick(rng, APP_VERSIONS, tuple(APP_VERSIONS), n)
    noise = rng.beta(DEV_NOISE_A[dev], DEV_NOISE_B[dev])
    evening = rng.random(n) < 0.6
    hour = np.where(evening, rng.normal(19.0, 2.5, n), rng.normal(8.0, 1.5, n)) % 24.0
    start = rng.integers(0, config.days, n) * 86_400 + (hour * 3600).astype(np.int64)
    tilt = config.pipeline.dialogue_length
    goal_mix = GOALS_PER_DIALOGUE * np.exp(tilt * np.arange(MAX_TURNS))
    goals = rng.choice(MAX_TURNS, size=n, p=GOALS_PER_DIALOGUE if tilt == 0 else goal_mix / goal_mix.sum()) + 1
    noise = noise + config.pipeline.extra_noise * (1.0 - noise)
    codes = {"device_type": (dev, DEVICE_NAMES), "locale": (loc, LOCALE_NAMES), "app_version": (app, tuple(APP_VERSIONS))}
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
    pipe = config.pipeline
    mult *= np.array([pipe.false_wakes, pipe.asr_errors, pipe.nlu_errors, pipe.er_errors, pipe.result_errors])
    fw = rng.random(n) < np.minimum(DEV_FALSE_WAKE[dev] * config.error_scale * mult[:, 0], 1.0)
    return {"n": n, "dev": dev, "loc": loc, "app": app, "noise": noise, "start": start, "goals": goals,
            "mult": mult, "by_domain": by_domain, "fw": fw}


def _run(rng: np.random.Generator, dlg: dict, config: SimConfig, ctx: RunContext) -> dict[str, np.ndarray]:
    """Step every live dialogue through turn positions 0..5; returns per-turn arrays."""
    n, p = dlg["n"], ctx.profile
    intent, ent, tpl = np.zeros(n, np.int64), np.full(n, -1, np.int64), np.zeros(n, np.int64)
    prev_label = np.zeros(n, np.int64)
    kind = np.where(dlg["fw"], 2, 0)  # 0 new goal, 1 rephrase or repeat, 2 false wake
    resume = np.full(n, -1, np.int64)  # after a false wake in mid-dialogue: the kind of turn that comes next
    if p.false_wake_then_request > 0:
        resume = np.where(dlg["fw"] & (ctx.aux.random(n) < p.false_wake_then_request), 0, resume)
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
        g_int, g_tpl, g_ent = _new_goals(rng, dev, ctx.w)
        cur_int = np.where(new, g_int, intent[live])
        cur_ent = np.where(new, g_ent, ent[live])
        r_tpl = _rephrase_template(rng, cur_int, tpl[live], cur_ent >= 0, prev_label[live], ctx.w)
        cur_tpl = np.where(new, g_tpl, r_tpl)
        cur_int, cur_ent = np.where(fw, -1, cur_int), np.where(fw, -1, cur_ent)
        goals_left[live] -= new
        mult = dlg["mult"][live].copy()
        for mask, domain, stage, factor in dlg["by_domain"]:
            mult[mask[live] & ~fw & (W.intent_domain[np.maximum(cur_int, 0)] == domain), stage] *= factor
        out = _stages(rng, dev, dlg["loc"][live], dlg["noise"][live], cur_int, cur_ent, cur_tpl, fw, reph,
                      mult, config, k, ctx)
        label = out["label"]
        # The user's reaction: interrupt a wrong answer, try again, move on, or give up.
        u = rng.random((m, 4))
        defect = (label != 0) & ~fw
        unsup = cur_int == W.unsupported
        p_barge = np.where(fw, p.false_wake_barge_in,
                           np.where(defect, np.minimum(0.36 * p.barge_in, 0.95), BARGE[np.maximum(cur_int, 0)]))
        barge = u[:, 0] < p_barge
        p_again = np.where(defect, np.minimum(np.where(barge, 0.62, 0.48) * p.rephrase, 0.95),
                           np.where(unsup, 0.25, 0.035))
        again = ~fw & (u[:, 1] < p_again) & (k < MAX_TURNS - 1)
        give_up = defect & ~again & (u[:, 2] < 0.25 * p.give_up / (1 - p_again))
        onward = ~fw & ~again & ~give_up & (goals_left[live] > 0)
        late_fw = ~fw & ~again & ~onward & (u[:, 3] < DEV_FALSE_WAKE[dev] * 0.12 * mult[:, 0] * config.error_scale)
        chunks.append({"dlg": live, "k": np.full(m, k), "clock": clock[live].copy(), "intent": cur_int,
                       "ent": cur_ent, "tpl": cur_tpl, "reph": reph, "barge": barge,
                       "after_correct": prev_label[live] == 0, **out})
        gap = np.where(again, rng.integers(2, 9, m),
                       np.where(onward, np.exp(rng.uniform(np.log(10), np.log(120), m)), rng.integers(20, 600, m)))
        if p.retry_gap != DEFAULT_PIPELINE.retry_gap or p.pace != 1:
            gap = np.where(again, ctx.aux.uniform(p.retry_gap[0], p.retry_gap[1], m), gap * p.pace)
        following = np.where(again, 1, np.where(onward, 0, 2))
        stay = again | onward | late_fw
        if p.false_wake_midstream > 0 or p.false_wake_then_request > 0:
            # Background speech between two turns: a false wake, after which the dialogue goes on as planned.
            back = fw & (resume[live] >= 0)
            gap = np.where(back, np.exp(ctx.aux.uniform(np.log(5), np.log(120), m)) * p.pace, gap)
            following, stay = np.where(back, resume[live], following), stay | back
            rate = p.false_wake_midstream * DEV_FALSE_WAKE[dev] / DEV_FALSE_WAKE.mean() * mult[:, 0]
            interrupt = (again | onward) & (k < MAX_TURNS - 2) & (ctx.aux.random(m) < rate)
            resume[live] = np.where(interrupt, following, -1)
            following = np.where(interrupt, 2, following)
        clock[live] += gap.astype(np.int64)
        # A false wake leaves the user's goal where it was.
        intent[live] = np.where(fw, intent[live], cur_int)
        ent[live] = np.where(fw, ent[live], cur_ent)
        tpl[live] = np.where(fw, tpl[live], cur_tpl)
        prev_label[live] = np.where(fw, prev_label[live], label)
        kind[live] = following
        live = live[stay]
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def _new_goals(rng: np.random.Generator, dev: np.ndarray, w: WordTables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fresh goal per row: intent from the device's mix, any phrasing, an entity if it has a slot."""
    u = rng.random((dev.size, 3))
    intent = (u[:, :1] > GOAL_CDF[dev]).sum(axis=1).clip(max=len(INTENT_NAMES) - 1)
    # The first phrasing ("play X") is the habitual one; the rest share the remainder.
    pick = np.where(u[:, 1] < 0.3, 0.0, (u[:, 1] - 0.3) / 0.7)
    tpl = w.tpl_start[intent] + (pick * w.tpl_count[intent]).astype(np.int64)
    pool = w.intent_pool[intent]
    ent = w.pool_start[pool] + (u[:, 2] * w.pool_size[pool]).astype(np.int64)
    return intent, tpl, np.where(w.tpl_slot[tpl] & (pool >= 0), ent, -1)


def _rephrase_template(rng: np.random.Generator, intent: np.ndarray, tpl: np.ndarray, slot: np.ndarray,
                       prev_label: np.ndarray, w: WordTables) -> np.ndarray:
    """The second try: often the same words, else another phrasing; explicit after a misroute."""
    u = rng.random((intent.size, 3))
    i = np.maximum(intent, 0)
    start = np.where(slot, w.slot_start[i], w.noslot_start[i])
    count = np.where(slot, w.slot_count[i], w.noslot_count[i])
    explicit = slot & (w.explicit_count[i] > 0) & (u[:, 2] < np.where(prev_label == NLU, 0.75, 0.25))
    start = np.where(explicit, w.explicit_start[i], start)
    count = np.where(explicit, w.explicit_count[i], count)
    other = start + (u[:, 1] * np.maximum(count, 1)).astype(np.int64)
    return np.where((u[:, 0] < 0.4) & ~explicit, tpl, other)


def _stages(rng: np.random.Generator, dev: np.ndarray, loc: np.ndarray, noise: np.ndarray, intent: np.ndarray,
            ent: np.ndarray, tpl: np.ndarray, fw: np.ndarray, reph: np.ndarray, mult: np.ndarray,
            config: SimConfig, k: int, ctx: RunContext) -> dict[str, np.ndarray]:
    """Latent stage outcomes of one turn per row, the label they imply, and the logged signals."""
    u = rng.random((intent.size, 16))
    p, w, m = ctx.profile, ctx.w, intent.size
    # Generic garbling lets a major ASR error hit any phrasing, not only those with a known mishearing.
    garbled = ctx.aux.random(m) < p.garble if p.garble > 0 else np.zeros(m, dtype=bool)
    scale = config.error_scale
    i, e = np.maximum(intent, 0), np.maximum(ent, 0)
    unsup, slot = intent == w.unsupported, ent >= 0
    resolved = slot & w.intent_resolved[i]
    easier = np.where(reph, 0.75, 1.0)  # a second try is said more carefully

    # ASR: minor slips are absorbed downstream; major ones hit the entity or a key word.
    p_asr = (ASR_BASE * DEV_ASR[dev] * LOC_ASR[loc] * (0.45 + 1.3 * noise) * scale * mult[:, 1]
             * np.where(resolved, 1.3, np.where(slot, 1.0, 0.7)) * np.where(reph, 0.85, 1.0))
    asr_err = ~fw & (u[:, 0] < p_asr)
    major = asr_err & ~unsup & (slot | w.tpl_has_garble[tpl] | garbled) & (u[:, 1] < np.where(slot, 0.64, 0.4))
    empty = ((major & (u[:, 2] < (0.08 + 0.15 * noise) * p.empty_hypotheses))
             | (fw & (u[:, 2] < 0.3 * p.empty_hypotheses)))
    # ER fuzzy-matches a misheard title back; parsers rarely rescue a misheard number.
    recovered = major & ~empty & (u[:, 3] < np.where(resolved, 0.28, np.where(slot, 0.08, 0.2)) * p.asr_recovery)
    asr_fail = major & ~recovered
    ok = ~fw & ~asr_fail

    # NLU: general confusions, plus titles that are both film and book, routed by device.
    shared = slot & w.ent_shared[e] & ~w.tpl_explicit[tpl]
    to_video = DEV_VIDEO[dev]
    p_route = np.where(shared & (intent == w.books), 0.8 * to_video,
                       np.where(shared & (intent == w.video), 0.6 * (1 - to_video), 0.0))
    routed = ok & (u[:, 4] < p_route * easier * mult[:, 2] * scale)
    p_nlu = NLU_BASE[i] * _factor(p.nlu_by_intent, i) * scale * mult[:, 2] * easier * np.where(asr_err, 1.6, 1.0)
    nlu_err = ok & (routed | (u[:, 5] < p_nlu))
    confused = w.confusable[i, (u[:, 6] * w.n_confusable[i]).astype(np.int64)]
    drift = asr_fail & (u[:, 7] < p.asr_fail_drift)
    out_int = np.where(routed, np.where(intent == w.books, w.video, w.books),
                       np.where(nlu_err | drift, confused, intent))
    out_int = np.where(fw, (u[:, 6] * (len(INTENT_NAMES) - 1)).astype(np.int64), out_int)
    # Overheard speech that sounds like a request is read as one: its intent, its entity.
    command = fw & ~empty & (ctx.aux.random(m) < p.false_wake_commands) if p.false_wake_commands > 0 else fw & False
    c_int, c_tpl, c_ent = _new_goals(ctx.aux, dev, w) if command.any() else (i, tpl, ent)
    out_int = np.where(command, c_int, out_int)
    out_int = np.where(empty, -1, out_int)
    ok &= ~nlu_err

    # ER resolves the heard span in the chosen intent's catalog.
    oi = np.maximum(out_int, 0)
    out_pool = w.intent_pool[oi]
    er_runs = (out_int >= 0) & w.intent_resolved[oi] & np.where(fw, np.where(command, c_ent >= 0, u[:, 8] < 0.5), slot)
    p_er = (POOL_ER_RATES[w.intent_pool[i]] * _factor(p.er_by_catalog, w.intent_pool[i]) * scale * mult[:, 3] * easier
            * np.where(asr_err, 1.4, 1.0))
    er_err = ok & er_runs & ~recovered & (u[:, 9] < p_er)  # a recovery was ER matching correctly
    # er_code: 0 the right entity, 1 a similar item, 2 nothing found, 3 some other catalog item
    er_code = np.where(er_err, np.where(u[:, 10] < 0.7, 1, 2), 0)
    er_code = np.where(asr_fail, np.where(u[:, 10] < p.asr_fail_not_found, 2, 3), er_code)
    er_code = np.where(nlu_err & (out_pool != w.intent_pool[i]), np.where(u[:, 10] < 0.5, 2, 3), er_code)
    er_code = np.where(fw, np.where(u[:, 10] < 0.5, 2, 3), er_code)
    er_code = np.where(er_runs, er_code, -1)
    other_ent = w.pool_start[out_pool] + (u[:, 11] * w.pool_size[out_pool]).astype(np.int64)
    er_code = np.where(command & er_runs, 3, er_code)
    other_ent = np.where(command & er_runs, c_ent, other_ent)
    substituted = np.zeros(m, dtype=bool)
    if p.asr_substitutes > 0:
        pool = w.intent_pool[i]
        substituted = asr_fail & er_runs & (out_pool == pool) & (ctx.aux.random(m) < p.asr_substitutes)
        step = 1 + (ctx.aux.random(m) * (w.pool_size[pool] - 1)).astype(np.int64)  # any item but the one said
        heard_as = w.pool_start[pool] + (e - w.pool_start[pool] + step) % w.pool_size[pool]
        er_code = np.where(substituted, 3, er_code)
        other_ent = np.where(substituted, heard_as, other_ent)
    ok &= ~er_err

    # Result: wrong version or answer (looks normal), a timeout, or an offline device.
    res_err = ok & (u[:, 12] < RES_BASE[i] * _factor(p.result_by_intent, i) * scale * mult[:, 4]
                    * np.where(reph, 0.8, 1.0))
    res_kind = np.where(res_err, np.where(u[:, 13] < 0.58, 1, np.where((u[:, 13] < 0.82) | ~OFFLINE[i], 2, 3)), 0)
    if p.already_replies > 0:  # 4: a stale device state; nothing done, "it is already on"
        res_kind = np.where(res_err & DEVICE_STATE[i] & (ctx.aux.random(m) < p.already_replies), 4, res_kind)

    label = np.select([fw, asr_fail, nlu_err, er_err, res_err], [FW, ASR, NLU, ER, RES], 0)
    upstream = fw | asr_fail | nlu_err | er_err
    alt = _alt_domain(u[:, 14:16], intent, out_int, nlu_err, fw)
    out = {"label": label, "asr_level": np.where(major, 2, asr_err.astype(np.int64)), "empty": empty,
           "recovered": asr_err & (label == 0), "out_int": out_int, "routed": routed,
           "nlu_error": (out_int != intent) & ~fw, "er_code": er_code, "other_ent": other_ent,
           "er_error": er_runs & (er_code > 0) & ~fw, "res_kind": res_kind, "result_error": upstream | res_err,
           "unsup": unsup, "alt_domain": alt, "media": MEDIA[i] & ~fw, "garbled": garbled & (major | asr_err),
           "command": command, "command_tpl": np.where(command, c_tpl, 0), "command_ent": np.where(command, c_ent, -1),
           "substituted": substituted}
    out.update(stage_signals(rng, out, dev, loc, noise, fw, asr_fail, nlu_err, er_err, er_runs, asr_err, i, config, k,
                        ctx))
    return out


def _factor(factors: tuple[float, ...], index: np.ndarray) -> np.ndarray | float:
    """A pipeline's factor per intent or catalog (index -1: none), or 1 when it has none."""
    if not factors:
        return 1.0
    return np.append(np.asarray(factors, dtype=float), 1.0)[index]


def _alt_domain(u: np.ndarray, intent: np.ndarray, out_int: np.ndarray, nlu_err: np.ndarray,
                fw: np.ndarray) -> np.ndarray:
    """The runner-up domain NLU logs: often the right one when it chose wrong."""
    oi = np.maximum(out_int, 0)
    runner_up = W.intent_domain[W.neighbours[oi, (u[:, 0] * W.n_neighbours[oi]).astype(np.int64)]]
    alt = np.where(nlu_err & (u[:, 1] < 0.7), W.intent_domain[np.maximum(intent, 0)], runner_up)
    alt = np.where(fw, (u[:, 1] * len(DOMAINS)).astype(np.int64), alt)
    return np.where(out_int < 0, -1, alt)
