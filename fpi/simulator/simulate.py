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

import functools
import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd

from fpi.data.schema import LABELS, STAGES
from fpi.simulator.templates import (BROAD_WORDS, DOMAINS, ENTITY_DETAILS, GARBLE_WORDS, INTENT_NAMES, PLAIN_REPLIES,
                                    POOLS, TERSE_REPLIES, WAKE_WORDS, WordTables, WORDS as W, invented_words)

MAX_TURNS = 6
TIMESTAMP_UNIT = "us"  # the unit `fpi.data.traces.load_traces` gives timestamps
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
class Calibration:
    """How one stage reports its confidence, relative to a well-calibrated score of the same outcome.

    In logit space the logged score is `scale * (informativeness * z + (1 - informativeness) * noise) + shift`,
    where `noise` is the logit of a score drawn as if the stage were right: at informativeness 0
    the score says nothing about the outcome. `decimals` rounds what is logged.
    """

    scale: float = 1.0
    shift: float = 0.0
    informativeness: float = 1.0
    decimals: int | None = None


OPTIONAL_EXTRAS: tuple[str, ...] = ("asr_nbest_margin", "nlu_alt_margin", "nlu_alt_domain", "result_latency_ms",
                                    "app_version", "barge_in", "timestamp")
"""Columns a pipeline may not log (`PipelineProfile.dropped_columns`); text columns are always logged."""


@dataclass(frozen=True)
class PipelineProfile:
    """One pipeline's quirks: how it logs, how its stages fail and report, how its users and replies read.

    The defaults are the simulator's original single pipeline, so `SimConfig()` gives the
    same frames as before. `random_profile` draws others; `simulate_fleet` mixes many.
    Rates named after a stage (`asr_errors`, ...) multiply that stage's error rate.
    """

    name: str = "default"
    # Wake: only triggered turns are logged, so in many pipelines every score sits near 1.
    wake_saturated: bool = False
    wake_floor: float = 0.5
    """The trigger threshold a saturated pipeline logs at or above."""
    wake_sharpness: float = 1.0
    """Saturated scores are 1 - (1 - floor) * Beta(1, sharpness): 1 is uniform, 30 piles up at 1."""
    wake: Calibration = Calibration()
    asr: Calibration = Calibration()
    nlu: Calibration = Calibration()
    er: Calibration = Calibration()
    result: Calibration = Calibration()
    margins: Calibration = Calibration()
    """The n-best and runner-up margins (extras), on top of their stage's calibration: often another scale."""
    latency_scale: float = 1.0
    """Multiplies result latencies (another backend, another clock)."""
    # How often each stage fails.
    false_wakes: float = 1.0
    asr_errors: float = 1.0
    nlu_errors: float = 1.0
    er_errors: float = 1.0
    result_errors: float = 1.0
    asr_recovery: float = 1.0
    """Multiplies how often ER matches a misheard title back (a recovered ASR error)."""
    empty_hypotheses: float = 1.0
    """Multiplies how often ASR returns nothing; 0: it always returns some words."""
    extra_noise: float = 0.0
    """Moves every dialogue's acoustic noise this share of the way to the loudest."""
    # What the text looks like.
    vocabulary: str = "narrow"
    """"narrow": the original phrasings; "broad": more phrasings, catalog items, background speech, replies;
    "invented": broad, with half of each named catalog replaced by names made up from `catalog_seed`."""
    catalog_seed: int = 0
    garble: float = 0.0
    """Share of ASR errors that garble the words generically, beyond the catalog's known mishearings."""
    wake_word_in_text: float = 0.0
    """Share of turns whose hypothesis starts with the wake word (one-pass recognisers)."""
    false_wake_commands: float = 0.0
    """Share of false wakes that overheard command-like speech, which NLU and ER then read as a request."""
    false_wake_midstream: float = 0.0
    """Chance, between two turns of a dialogue, that background speech triggers the device; the user goes on."""
    false_wake_replies: float = 0.5
    """Share of false wakes answered with a don't-know reply rather than acted on."""
    false_wake_clarity: float = 1.0
    """How clearly overheard speech is recognised: 1 as today; towards 0 garbled words and low ASR scores."""
    false_wake_barge_in: float = 0.12
    """Share of false wakes whose reply is talked over (the television goes on)."""
    false_wake_then_request: float = 0.0
    """Share of sessions opened by a false wake in which the user then asks for something."""
    asr_fail_not_found: float = 0.45
    """Share of unrecovered ASR errors on an entity that ER finds nothing for (else it picks some item)."""
    asr_fail_drift: float = 0.35
    """Share of unrecovered ASR errors that also move NLU to another intent."""
    asr_substitutes: float = 0.0
    """Share of unrecovered ASR errors on an entity that hear another real item of the catalog, which ER
    then resolves faithfully: the text, the entity and the reply all look right."""
    er_always: bool = False
    """ER scores every understood turn, with or without an entity (fuzzy matchers do), so its score is never empty."""
    er_same_text: float = 0.0
    """Share of ER errors that pick another item with the same words (another version, year or place)."""
    entity_details: float = 0.0
    """Share of resolved entities logged with their version, year or place, right or wrong."""
    # How users react.
    rephrase: float = 1.0
    barge_in: float = 1.0
    give_up: float = 1.0
    dialogue_length: float = 0.0
    """Tilts the number of goals per dialogue: negative shorter, positive longer."""
    retry_gap: tuple[float, float] = (2.0, 9.0)
    """Seconds from a turn to the user's second try (uniform in this range)."""
    pace: float = 1.0
    """Multiplies every other gap between turns (slow replies, long media, users who pause)."""
    nlu_by_intent: tuple[float, ...] = ()
    """Per intent (INTENT_NAMES order), a factor on NLU errors: what this pipeline's NLU finds hard."""
    result_by_intent: tuple[float, ...] = ()
    """Per intent, a factor on result errors: which backends are flaky here."""
    er_by_catalog: tuple[float, ...] = ()
    """Per catalog (POOLS order), a factor on ER errors."""
    # How the assistant answers.
    apologies: float = 1.0
    """Share of failure replies that keep their apology ("Sorry, ...")."""
    plain_wording: float = 0.0
    """Share of failure replies worded plainly, in another way than the usual apology."""
    declines: float = 0.015
    """Share of right media turns answered "isn't available" (correct, yet sounds like a failure)."""
    terse_replies: float = 0.0
    """Share of requests acted on that are answered with a bare acknowledgement ("OK.", "Done."):
    in such a pipeline a short reply says nothing about whether the turn failed."""
    dropped_columns: tuple[str, ...] = ()
    """Optional columns this pipeline does not log, from OPTIONAL_EXTRAS."""


DEFAULT_PIPELINE = PipelineProfile()


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
    pipeline: PipelineProfile = DEFAULT_PIPELINE


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
    """Generate `n_dialogues` dialogues of traces, typed as `fpi.data.traces.load_traces` returns them.

    `label_noise` flips that share of labels to another label, as annotators do;
    `with_latent` adds the hidden `sim_*` columns (goal, stage errors, true label) for tests.
    """
    config = config or SimConfig()
    _check(n_dialogues, label_noise, config)
    rng = np.random.default_rng(seed)
    # A pipeline's own quirks draw from a second stream, so the default pipeline keeps its frames.
    ctx = _Context(config.pipeline, _words(config.pipeline), np.random.default_rng([seed, 7919]))
    dlg = _dialogues(rng, n_dialogues, config)
    turns = _run(rng, dlg, config, ctx)
    return _frame(rng, dlg, turns, config, ctx, label_noise=label_noise, labelled=labelled, with_latent=with_latent)


def _words(profile: PipelineProfile) -> WordTables:
    if profile.vocabulary == "invented":
        return _invented(profile.catalog_seed)
    return BROAD_WORDS if profile.vocabulary == "broad" else W


@functools.lru_cache(maxsize=64)
def _invented(seed: int) -> WordTables:
    return invented_words(seed)


@dataclass(frozen=True)
class _Context:
    """What one run needs besides the main random stream: the pipeline, its words, its own stream."""

    profile: PipelineProfile
    w: WordTables
    aux: np.random.Generator


def random_profile(rng: np.random.Generator, *, name: str = "random") -> PipelineProfile:
    """Draw one pipeline's quirks: wide ranges, so a model trained on many draws learns what they share.

    The ranges are chosen to be broad, not to resemble any one real pipeline: wake
    scores saturated or informative; each stage's score rescaled, shifted and
    sometimes barely informative; error rates from half to several times the
    default; false wakes that carry requests; ER errors with the right words;
    users, replies and logged columns that differ.
    """

    def log_uniform(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    def calibration(*, scale: tuple[float, float] = (0.4, 2.5), shift: float = 2.0) -> Calibration:
        weak = rng.random() < 0.3
        return Calibration(
            scale=log_uniform(*scale), shift=float(rng.uniform(-shift, shift)),
            informativeness=float(rng.uniform(0.05, 0.35) if weak else rng.uniform(0.35, 1.0)),
            decimals=[None, None, 4, 2, 1][int(rng.integers(5))],
        )

    saturated = bool(rng.random() < 0.5)
    apologies = [1.0, float(rng.uniform(0, 1)), 0.0][int(rng.integers(3))]
    dropped = tuple(c for c in OPTIONAL_EXTRAS
                    if rng.random() < (0.15 if c in ("timestamp", "barge_in") else 0.5))
    return PipelineProfile(
        name=name,
        wake_saturated=saturated,
        wake_floor=float(rng.uniform(0.3, 0.9)),
        wake_sharpness=log_uniform(1.0, 40.0),
        wake=calibration(scale=(0.5, 2.0), shift=1.0),
        asr=calibration(), nlu=calibration(), er=calibration(), result=calibration(),
        margins=Calibration(scale=log_uniform(0.3, 2.0), shift=float(rng.uniform(-6.0, 2.0))),
        latency_scale=log_uniform(0.2, 5.0),
        false_wakes=log_uniform(0.5, 4.0),
        asr_errors=log_uniform(0.5, 6.0),
        nlu_errors=log_uniform(0.5, 3.0),
        er_errors=log_uniform(0.5, 3.0),
        result_errors=log_uniform(0.5, 3.0),
        asr_recovery=float(rng.uniform(0.3, 1.5)),
        empty_hypotheses=float(rng.uniform(0.0, 1.5)),
        extra_noise=float(rng.uniform(0.0, 0.5)),
        vocabulary=["narrow", "broad", "invented", "invented"][int(rng.integers(4))],
        catalog_seed=int(rng.integers(2**31)),
        garble=float(rng.uniform(0.0, 0.9)),
        wake_word_in_text=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.35 else 0.0,
        false_wake_commands=float(rng.uniform(0.0, 0.8)),
        false_wake_midstream=float(rng.uniform(0.0, 0.3)),
        false_wake_replies=float(rng.uniform(0.0, 0.7)),
        false_wake_clarity=float(rng.uniform(0.0, 1.0)),
        false_wake_barge_in=float(rng.uniform(0.0, 0.5)),
        false_wake_then_request=float(rng.uniform(0.0, 0.8)),
        asr_fail_not_found=float(rng.uniform(0.1, 0.7)),
        asr_fail_drift=float(rng.uniform(0.2, 0.7)),
        asr_substitutes=float(rng.uniform(0.0, 0.7)),
        er_always=bool(rng.random() < 0.4),
        er_same_text=float(rng.uniform(0.0, 0.8)),
        entity_details=float(rng.uniform(0.0, 0.8)) if rng.random() < 0.5 else 0.0,
        rephrase=float(rng.uniform(0.4, 1.4)),
        barge_in=log_uniform(0.2, 2.0),
        give_up=float(rng.uniform(0.5, 2.0)),
        dialogue_length=float(rng.uniform(-0.4, 0.3)),
        retry_gap=(float(rng.uniform(1.0, 10.0)), float(rng.uniform(10.0, 60.0))),
        pace=log_uniform(0.2, 3.0),
        nlu_by_intent=tuple(float(x) for x in np.exp(rng.normal(0.0, 0.6, len(INTENT_NAMES)))),
        result_by_intent=tuple(float(x) for x in np.exp(rng.normal(0.0, 0.6, len(INTENT_NAMES)))),
        er_by_catalog=tuple(float(x) for x in np.exp(rng.normal(0.0, 0.6, len(POOLS)))),
        apologies=apologies,
        plain_wording=float(rng.uniform(0.0, 1.0)),
        declines=log_uniform(0.005, 0.08),
        dropped_columns=dropped,
        terse_replies=float(rng.uniform(0.2, 1.0)) if rng.random() < 0.5 else 0.0,
    )


def random_config(rng: np.random.Generator, *, name: str = "random") -> SimConfig:
    """A randomly drawn pipeline (`random_profile`) with its own device and locale mix and dates."""
    devices = rng.dirichlet(np.ones(len(_DEV)))
    chosen = rng.permutation(len(_LOC))[: int(rng.integers(1, len(_LOC) + 1))]
    locales = rng.dirichlet(np.ones(chosen.size))
    return SimConfig(
        device_weights=MappingProxyType({d: float(x) for d, x in zip(_DEV, devices)}),
        locale_weights=MappingProxyType({_LOC[c]: float(x) for c, x in zip(chosen, locales)}),
        start=str(np.datetime64("2026-01-01") + int(rng.integers(0, 300))),
        pipeline=random_profile(rng, name=name),
    )


def fleet_configs(n_pipelines: int, *, seed: int, with_default: bool = True) -> tuple[SimConfig, ...]:
    """The pipelines `simulate_fleet` mixes: the default one first (if asked), then random draws."""
    if n_pipelines < 1:
        raise ValueError(f"n_pipelines must be at least 1, got {n_pipelines}")
    configs = []
    for k in range(n_pipelines):
        name = f"p{k:02d}"
        if k == 0 and with_default:
            configs.append(SimConfig(pipeline=replace(DEFAULT_PIPELINE, name=name)))
        else:
            configs.append(random_config(np.random.default_rng([seed, 17, k]), name=name))
    return tuple(configs)


def simulate_fleet(
    n_dialogues: int,
    *,
    seed: int,
    n_pipelines: int = 12,
    with_default: bool = True,
    label_noise: float = 0.0,
    labelled: bool = True,
    with_latent: bool = False,
) -> pd.DataFrame:
    """Traces from `n_pipelines` pipelines, the dialogues shared out evenly, one frame.

    Pipeline k is `fleet_configs(...)[k]`; its dialogue ids start with `pKK-` and a
    `pipeline` column names it (a string extra: passed through, good for slicing and
    for leaving one pipeline out). Columns a pipeline does not log are empty on its rows.
    """
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
    tilt = config.pipeline.dialogue_length
    goal_mix = GOALS_PER_DIALOGUE * np.exp(tilt * np.arange(MAX_TURNS))
    goals = rng.choice(MAX_TURNS, size=n, p=GOALS_PER_DIALOGUE if tilt == 0 else goal_mix / goal_mix.sum()) + 1
    noise = noise + config.pipeline.extra_noise * (1.0 - noise)
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
    pipe = config.pipeline
    mult *= np.array([pipe.false_wakes, pipe.asr_errors, pipe.nlu_errors, pipe.er_errors, pipe.result_errors])
    fw = rng.random(n) < np.minimum(_DEV_FW[dev] * config.error_scale * mult[:, 0], 1.0)
    return {"n": n, "dev": dev, "loc": loc, "app": app, "noise": noise, "start": start, "goals": goals,
            "mult": mult, "by_domain": by_domain, "fw": fw}


def _run(rng: np.random.Generator, dlg: dict, config: SimConfig, ctx: _Context) -> dict[str, np.ndarray]:
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
                           np.where(defect, np.minimum(0.36 * p.barge_in, 0.95), _BARGE[np.maximum(cur_int, 0)]))
        barge = u[:, 0] < p_barge
        p_again = np.where(defect, np.minimum(np.where(barge, 0.62, 0.48) * p.rephrase, 0.95),
                           np.where(unsup, 0.25, 0.035))
        again = ~fw & (u[:, 1] < p_again) & (k < MAX_TURNS - 1)
        give_up = defect & ~again & (u[:, 2] < 0.25 * p.give_up / (1 - p_again))
        onward = ~fw & ~again & ~give_up & (goals_left[live] > 0)
        late_fw = ~fw & ~again & ~onward & (u[:, 3] < _DEV_FW[dev] * 0.12 * mult[:, 0] * config.error_scale)
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
            rate = p.false_wake_midstream * _DEV_FW[dev] / _DEV_FW.mean() * mult[:, 0]
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
    intent = (u[:, :1] > _GOAL_CDF[dev]).sum(axis=1).clip(max=len(INTENT_NAMES) - 1)
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
    explicit = slot & (w.explicit_count[i] > 0) & (u[:, 2] < np.where(prev_label == _NLU, 0.75, 0.25))
    start = np.where(explicit, w.explicit_start[i], start)
    count = np.where(explicit, w.explicit_count[i], count)
    other = start + (u[:, 1] * np.maximum(count, 1)).astype(np.int64)
    return np.where((u[:, 0] < 0.4) & ~explicit, tpl, other)


def _stages(rng: np.random.Generator, dev: np.ndarray, loc: np.ndarray, noise: np.ndarray, intent: np.ndarray,
            ent: np.ndarray, tpl: np.ndarray, fw: np.ndarray, reph: np.ndarray, mult: np.ndarray,
            config: SimConfig, k: int, ctx: _Context) -> dict[str, np.ndarray]:
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
    p_asr = (ASR_BASE * _DEV_ASR[dev] * _LOC_ASR[loc] * (0.45 + 1.3 * noise) * scale * mult[:, 1]
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
    to_video = _DEV_VIDEO[dev]
    p_route = np.where(shared & (intent == w.books), 0.8 * to_video,
                       np.where(shared & (intent == w.video), 0.6 * (1 - to_video), 0.0))
    routed = ok & (u[:, 4] < p_route * easier * mult[:, 2] * scale)
    p_nlu = _NLU_BASE[i] * _factor(p.nlu_by_intent, i) * scale * mult[:, 2] * easier * np.where(asr_err, 1.6, 1.0)
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
    p_er = (_POOL_ER[w.intent_pool[i]] * _factor(p.er_by_catalog, w.intent_pool[i]) * scale * mult[:, 3] * easier
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
    res_err = ok & (u[:, 12] < _RES_BASE[i] * _factor(p.result_by_intent, i) * scale * mult[:, 4]
                    * np.where(reph, 0.8, 1.0))
    res_kind = np.where(res_err, np.where(u[:, 13] < 0.58, 1, np.where((u[:, 13] < 0.82) | ~_OFFLINE[i], 2, 3)), 0)

    label = np.select([fw, asr_fail, nlu_err, er_err, res_err], [_FW, _ASR, _NLU, _ER, _RES], 0)
    upstream = fw | asr_fail | nlu_err | er_err
    alt = _alt_domain(u[:, 14:16], intent, out_int, nlu_err, fw)
    out = {"label": label, "asr_level": np.where(major, 2, asr_err.astype(np.int64)), "empty": empty,
           "recovered": asr_err & (label == 0), "out_int": out_int, "routed": routed,
           "nlu_error": (out_int != intent) & ~fw, "er_code": er_code, "other_ent": other_ent,
           "er_error": er_runs & (er_code > 0) & ~fw, "res_kind": res_kind, "result_error": upstream | res_err,
           "unsup": unsup, "alt_domain": alt, "media": _MEDIA[i] & ~fw, "garbled": garbled & (major | asr_err),
           "command": command, "command_tpl": np.where(command, c_tpl, 0), "command_ent": np.where(command, c_ent, -1),
           "substituted": substituted}
    out.update(_signals(rng, out, dev, loc, noise, fw, asr_fail, nlu_err, er_err, er_runs, asr_err, i, config, k,
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


def _signals(rng: np.random.Generator, o: dict[str, np.ndarray], dev: np.ndarray, loc: np.ndarray,
             noise: np.ndarray, fw: np.ndarray, asr_fail: np.ndarray, nlu_err: np.ndarray, er_err: np.ndarray,
             er_runs: np.ndarray, asr_err: np.ndarray, i: np.ndarray, config: SimConfig,
             k: int, ctx: _Context) -> dict[str, np.ndarray]:
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
    signals = {"wake_confidence": wake, "asr_confidence": asr, "asr_nbest_margin": nbest, "nlu_confidence": nlu,
               "nlu_alt_margin": alt, "er_confidence": er, "result_confidence": res,
               "result_latency_ms": np.where(empty, np.nan, np.round(latency))}
    if ctx.profile.er_always:
        # A matcher that always runs scores a turn with nothing to match low, but not always.
        spare = np.isnan(er) & (o["out_int"] >= 0)
        signals["er_confidence"] = np.where(spare, ctx.aux.beta(1.5, 1.5, m), er)
    return signals if ctx.profile == DEFAULT_PIPELINE else _as_logged(signals, o["command"], o["substituted"], fw, ctx)


# The score a stage gives when it is right: the reference an uninformative score is drawn from.
_RIGHT_SCORE: Mapping[str, tuple[float, float]] = MappingProxyType({
    "asr_confidence": (7.0, 1.5), "asr_nbest_margin": (5.0, 2.5), "nlu_confidence": (8.0, 1.6),
    "nlu_alt_margin": (4.0, 2.0), "er_confidence": (8.0, 1.5), "result_confidence": (9.0, 1.5),
})


def _as_logged(signals: dict[str, np.ndarray], command: np.ndarray, substituted: np.ndarray, fw: np.ndarray,
               ctx: _Context) -> dict[str, np.ndarray]:
    """What this pipeline logs: command-like false wakes scored as requests, saturated wakes, recalibrated stages."""
    p, aux = ctx.profile, ctx.aux
    out = dict(signals)
    m = command.size
    if command.any():
        # Speech from a television reads as a request to every stage after the wake, as sure as it was clear.
        for column, (a, b) in _RIGHT_SCORE.items():
            if column != "result_confidence":
                drawn = aux.beta(a * (0.4 + 0.6 * p.false_wake_clarity), b, m)
                out[column] = np.where(command & ~np.isnan(out[column]), drawn, out[column])
    if substituted.any():
        # A real item was heard: NLU and ER are as sure as on a right turn; ASR often is too.
        for column in ("nlu_confidence", "nlu_alt_margin", "er_confidence", "result_confidence", "asr_confidence"):
            a, b = _RIGHT_SCORE[column]
            drawn = aux.beta(a * (0.5 if column == "asr_confidence" else 1.0), b, m)
            out[column] = np.where(substituted & ~np.isnan(out[column]), drawn, out[column])
    if p.false_wake_clarity < 1:
        clarity = p.false_wake_clarity
        heard = aux.beta(2.0 + 4.0 * clarity, 3.0 - 1.5 * clarity, m)
        out["asr_confidence"] = np.where(fw & ~np.isnan(out["asr_confidence"]), heard, out["asr_confidence"])
    if p.wake_saturated:
        # Only triggered turns are logged: every score is at or above the threshold, false wakes included.
        out["wake_confidence"] = 1.0 - (1.0 - p.wake_floor) * aux.beta(1.0, p.wake_sharpness, m)
    else:
        out["wake_confidence"] = _calibrate(aux, out["wake_confidence"], p.wake, (5.0, 1.6))
    for stage, columns in (("asr", ("asr_confidence", "asr_nbest_margin")), ("nlu", ("nlu_confidence", "nlu_alt_margin")),
                           ("er", ("er_confidence",)), ("result", ("result_confidence",))):
        for column in columns:
            out[column] = _calibrate(aux, out[column], getattr(p, stage), _RIGHT_SCORE[column])
    for column in ("asr_nbest_margin", "nlu_alt_margin"):
        out[column] = _calibrate(aux, out[column], p.margins, _RIGHT_SCORE[column])
    out["result_latency_ms"] = np.round(out["result_latency_ms"] * p.latency_scale)
    if p.wake.decimals is not None:
        out["wake_confidence"] = np.round(out["wake_confidence"], p.wake.decimals)
    return out


def _calibrate(aux: np.random.Generator, values: np.ndarray, cal: Calibration, right: tuple[float, float]) -> np.ndarray:
    """Report `values` as a stage calibrated like `cal` would: mixed with noise, rescaled, shifted, rounded."""
    if cal == Calibration():
        return values
    v = np.clip(values, 1e-4, 1 - 1e-4)
    z = np.log(v / (1 - v))
    if cal.informativeness < 1:
        q = np.clip(aux.beta(right[0], right[1], values.size), 1e-4, 1 - 1e-4)
        z = cal.informativeness * z + (1 - cal.informativeness) * np.log(q / (1 - q))
    out = 1.0 / (1.0 + np.exp(-(cal.scale * z + cal.shift)))
    if cal.decimals is not None:
        out = np.round(out, cal.decimals)
    return np.where(np.isnan(values), np.nan, out)


def _logit_shift(p: np.ndarray, shift: np.ndarray | float) -> np.ndarray:
    """Move a probability in logit space: how a differently calibrated model would report it."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + shift)))


def _frame(rng: np.random.Generator, dlg: dict, t: dict[str, np.ndarray], config: SimConfig, ctx: _Context, *,
           label_noise: float, labelled: bool, with_latent: bool) -> pd.DataFrame:
    """Turn the latent per-turn arrays into the typed trace frame: text, labels, columns."""
    order = np.lexsort((t["k"], t["dlg"]))
    t = {key: value[order] for key, value in t.items()}
    n = t["k"].size
    d = t["dlg"]
    u = rng.random((n, 8))
    w, pipe = ctx.w, ctx.profile
    quirky = pipe != DEFAULT_PIPELINE
    fw, empty, ent, e = t["label"] == _FW, t["empty"], t["ent"], np.maximum(t["ent"], 0)
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
        entity = _pipeline_entities(ctx, entity, e, code, t["label"] == _ER, w.intent_pool[np.maximum(out_int, 0)])
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


def _pipeline_text(ctx: _Context, t: dict[str, np.ndarray], asr_text: np.ndarray, heard_fw: np.ndarray) -> np.ndarray:
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


def _pipeline_entities(ctx: _Context, entity: np.ndarray, e: np.ndarray, code: np.ndarray, er_error: np.ndarray,
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


def _pipeline_replies(ctx: _Context, said: np.ndarray, group: np.ndarray, w: WordTables) -> np.ndarray:
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


def _sentence(template: str, value: str | None) -> str:
    filled = template.replace("{e}", value) if value is not None else template
    return filled[:1].upper() + filled[1:]
