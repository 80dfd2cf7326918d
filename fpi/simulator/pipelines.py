"""What is simulated: the population of users and devices, and each pipeline's quirks.

`PipelineProfile` describes one pipeline (calibration, error mix, replies, logged columns);
`SimConfig` the users and devices it serves; `random_profile` and `fleet_configs` draw
many of them (domain randomisation). The tables at the end are the same numbers as arrays,
indexed the way the simulator draws.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

import numpy as np

from fpi.data.schema import LABELS
from fpi.simulator.templates import ALREADY_STATES, DOMAINS, INTENT_NAMES, POOLS, WordTables, WORDS as W
from fpi.simulator.vocabulary import (
    BROAD_WORDS, invented_words,
)


MAX_TURNS = 6
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
    already_replies: float = 0.0
    """Share of result errors on a device command that come from a stale device state: nothing is done
    and the reply says the device is already so ("The lamp is already on.")."""
    already_right: float = 0.0
    """Share of right device commands answered that way too (the device really was in that state)."""


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


def random_profile(rng: np.random.Generator, *, name: str = "random") -> PipelineProfile:
    """Draw one pipeline's quirks: wide ranges, so a model trained on many draws learns what they share.

    The ranges are chosen to be broad, not to resemble any one real pipeline: wake
    scores saturated or informative; each stage's score rescaled, shifted and
    sometimes barely informative; error rates from half to several times the
    default; false wakes that carry requests; ER errors with the right words;
    device commands that find a stale state and answer "already on"; users,
    replies and logged columns that differ.
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
        # Drawn last, so that the draws above (and the pipelines of earlier fleets) stay as they were.
        **_later_quirks(rng),
    )


def _later_quirks(rng: np.random.Generator) -> dict[str, float]:
    stale = rng.random() < 0.5
    return {
        "already_replies": float(rng.uniform(0.2, 1.0)) if stale else 0.0,
        "already_right": float(rng.uniform(0.0, 0.05)) if stale else 0.0,
    }


def random_config(rng: np.random.Generator, *, name: str = "random") -> SimConfig:
    """A randomly drawn pipeline (`random_profile`) with its own device and locale mix and dates."""
    devices = rng.dirichlet(np.ones(len(DEVICE_NAMES)))
    chosen = rng.permutation(len(LOCALE_NAMES))[: int(rng.integers(1, len(LOCALE_NAMES) + 1))]
    locales = rng.dirichlet(np.ones(chosen.size))
    return SimConfig(
        device_weights=MappingProxyType({d: float(x) for d, x in zip(DEVICE_NAMES, devices)}),
        locale_weights=MappingProxyType({LOCALE_NAMES[c]: float(x) for c, x in zip(chosen, locales)}),
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


def pipeline_words(profile: PipelineProfile) -> WordTables:
    if profile.vocabulary == "invented":
        return _invented(profile.catalog_seed)
    return BROAD_WORDS if profile.vocabulary == "broad" else W


@functools.lru_cache(maxsize=64)
def _invented(seed: int) -> WordTables:
    return invented_words(seed)


@dataclass(frozen=True)
class RunContext:
    """What one run needs besides the main random stream: the pipeline, its words, its own stream."""

    profile: PipelineProfile
    w: WordTables
    aux: np.random.Generator


def _column(values: Mapping[str, tuple[float, ...]], keys: tuple[str, ...], j: int) -> np.ndarray:
    return np.array([values[k][j] for k in keys], dtype=float)


DEVICE_NAMES = tuple(DEVICES)
LOCALE_NAMES = tuple(LOCALES)
DEV_THRESHOLD, DEV_NOISE_A, DEV_NOISE_B, DEV_ASR, DEV_FALSE_WAKE, DEV_VIDEO = (_column(DEVICES, DEVICE_NAMES, j) for j in range(6))
LOC_ASR, LOC_SHIFT = (_column(LOCALES, LOCALE_NAMES, j) for j in range(2))
NLU_BASE, RES_BASE, LATENCY, BARGE = (_column(INTENT_RATES, INTENT_NAMES, j) for j in range(4))
GOAL_CDF = np.cumsum([np.array(GOAL_MIX[d]) / sum(GOAL_MIX[d]) for d in DEVICE_NAMES], axis=1)
POOL_ER_RATES = np.array([POOL_ER[p] for p in POOLS] + [0.0])  # index -1: no pool
OFFLINE = W.intent_domain == DOMAINS.index("smart_home")
DEVICE_STATE = np.isin(W.intent_names, list(ALREADY_STATES))
"""Intents that set a device's state, which a stale state can report as already set."""
MEDIA = np.isin(W.intent_domain, [DOMAINS.index(d) for d in ("music", "video", "books")])
FW, ASR, NLU, ER, RES = (LABELS.index(x) for x in ("false_wake", "asr", "nlu", "er", "result"))
