"""The confidences a pipeline logs, given what really happened at each stage.

Right and wrong outcomes overlap as in real logs: confident-wrong stages, low-confidence
right ones, and per-pipeline calibration on top.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

import numpy as np

from fpi.simulator.pipelines import (
    DEFAULT_PIPELINE, DEV_THRESHOLD, LATENCY, LOC_SHIFT, Calibration, RunContext, SimConfig,
)


def stage_signals(rng: np.random.Generator, o: dict[str, np.ndarray], dev: np.ndarray, loc: np.ndarray,
             noise: np.ndarray, fw: np.ndarray, asr_fail: np.ndarray, nlu_err: np.ndarray, er_err: np.ndarray,
             er_runs: np.ndarray, asr_err: np.ndarray, i: np.ndarray, config: SimConfig,
             k: int, ctx: RunContext) -> dict[str, np.ndarray]:
    """Confidences and stage extras, drawn given the latent outcomes, with realistic overlap."""
    m = i.size
    c = rng.random((m, 6))
    empty, level, label = o["empty"], o["asr_level"], o["label"]
    sure = c[:, 0] < 0.25  # the stage was wrong and confident about it
    notices = c[:, 1] < 0.5  # a downstream stage is unsettled by the upstream mess

    thr = DEV_THRESHOLD[dev]
    wake = thr + (1 - thr) * np.where(fw, rng.beta(1.4, 3.0, m), rng.beta(5.0 - 3.0 * noise, 1.6))
    follow_up = (k > 0) & ~fw & (c[:, 2] < 0.12)  # no wake word: the device kept listening
    wake = np.where(follow_up, rng.beta(2.5, 2.0, m), wake)

    asr_ab = np.select([fw[:, None], empty[:, None], ((level == 2) & ~sure)[:, None], (level == 2)[:, None],
                        (level == 1)[:, None]], [[3.0, 2.5], [1.0, 6.0], [2.0, 3.2], [6.0, 1.8], [3.5, 2.0]], [7.0, 1.5])
    shift = LOC_SHIFT[loc] - 1.2 * noise + config.asr_confidence_shift
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
    latency = np.where(slow, rng.uniform(3500, 8000, m), np.exp(rng.normal(np.log(LATENCY[i]), 0.35)))
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
               ctx: RunContext) -> dict[str, np.ndarray]:
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
