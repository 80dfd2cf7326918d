"""The simulator: deterministic, on contract, and causal (labels follow from latent stage outcomes)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

from fpi.data.schema import CONFIDENCE_COLUMNS, CONTRACT_COLUMNS, LABELS
from fpi.simulator.pipelines import (
    Calibration, CohortEffect, PipelineProfile, SimConfig, fleet_configs, random_profile,
)
from fpi.simulator.simulate import simulate, simulate_fleet
from fpi.simulator.templates import SHARED_TITLES
from fpi.simulator.vocabulary import TERSE_REPLIES

EXTRAS = ["asr_nbest_margin", "nlu_alt_margin", "nlu_alt_domain", "result_latency_ms", "app_version"]
SCREENS = ["tv", "speaker_screen"]


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    """Large enough for rates to settle within a few points; well under a second to make."""
    return simulate(6000, seed=5, with_latent=True)


def _next(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.groupby("dialogue_id", sort=False)[column].shift(-1)


# ---------------------------------------------------------------- determinism and contract

def test_same_seed_gives_the_same_frame() -> None:
    pd.testing.assert_frame_equal(simulate(300, seed=7, with_latent=True), simulate(300, seed=7, with_latent=True))


def test_different_seeds_give_different_frames() -> None:
    a, b = simulate(300, seed=7), simulate(300, seed=8)
    assert not a.head(len(b)).reset_index(drop=True).equals(b.head(len(a)).reset_index(drop=True))
    assert not np.allclose(a["asr_confidence"].to_numpy()[:100], b["asr_confidence"].to_numpy()[:100])


def test_columns_and_dtypes_are_the_loaders() -> None:
    frame = simulate(200, seed=1)
    assert list(frame.columns) == [*CONTRACT_COLUMNS, *EXTRAS]
    strings = ["dialogue_id", "device_type", "locale", "asr_text", "nlu_domain", "nlu_intent", "er_entity",
               "response_text", "failure_point", "nlu_alt_domain", "app_version"]
    for name in strings:
        assert frame[name].dtype == "str", name
    for name in [*CONFIDENCE_COLUMNS, "asr_nbest_margin", "nlu_alt_margin", "result_latency_ms"]:
        assert frame[name].dtype == "float64", name
    assert frame["turn_index"].dtype == "int64"
    assert frame["barge_in"].dtype == "boolean"
    assert str(frame["timestamp"].dtype).startswith("datetime64") and str(frame["timestamp"].dt.tz) == "UTC"
    assert isinstance(frame.index, pd.RangeIndex)
    assert not any(c.startswith("sim_") for c in frame.columns)


def test_validate_traces_accepts_it_unchanged() -> None:
    from fpi.data.check import validate_traces

    frame = simulate(400, seed=2)
    pd.testing.assert_frame_equal(validate_traces(frame), frame)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_file_round_trip_is_lossless(tmp_path, suffix: str) -> None:
    from fpi.data.traces import load_traces
    from fpi.data.write import write_traces

    frame = simulate(300, seed=3)
    write_traces(frame, tmp_path / f"t{suffix}")
    pd.testing.assert_frame_equal(load_traces(tmp_path / f"t{suffix}"), frame, check_exact=False, rtol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 60), seed=st.integers(0, 2**32 - 1))
def test_invariants_hold_for_any_seed(n: int, seed: int) -> None:
    frame = simulate(n, seed=seed)
    assert frame["dialogue_id"].nunique() == n
    keys = frame[["dialogue_id", "turn_index"]]
    assert keys.equals(keys.sort_values(["dialogue_id", "turn_index"]))
    grouped = frame.groupby("dialogue_id")
    assert (grouped["turn_index"].max() + 1 == grouped.size()).all()  # 0..n-1, no gaps
    assert grouped.size().between(1, 6).all()
    assert (grouped["timestamp"].diff().dropna() > pd.Timedelta(0)).all()
    assert (grouped[["device_type", "locale", "app_version"]].nunique() == 1).all().all()
    values = frame[list(CONFIDENCE_COLUMNS)].to_numpy()
    assert np.nanmin(values) >= 0 and np.nanmax(values) <= 1
    assert frame["wake_confidence"].notna().all() and frame["asr_confidence"].notna().all()
    assert frame["failure_point"].isin(LABELS).all()
    assert frame["dialogue_id"].str.fullmatch(r"d\d{6}").all()


# ---------------------------------------------------------------- label rates and causal structure

def test_label_rates_are_realistic(sim: pd.DataFrame) -> None:
    share = sim["failure_point"].value_counts(normalize=True)
    bounds = {"correct": (0.65, 0.78), "asr": (0.06, 0.11), "nlu": (0.04, 0.075), "er": (0.035, 0.065),
              "result": (0.035, 0.065), "false_wake": (0.015, 0.05)}
    for label, (low, high) in bounds.items():
        assert low <= share.get(label, 0.0) <= high, (label, share.get(label))
    assert 2.4 <= len(sim) / sim["dialogue_id"].nunique() <= 3.6
    sizes = sim.groupby("dialogue_id").size()
    assert (sizes <= 3).mean() > 0.6


def test_unsupported_requests_are_correct_but_declined(sim: pd.DataFrame) -> None:
    unsupported = sim[sim["sim_unsupported"] & (sim["nlu_intent"] == "Unsupported")]
    assert len(unsupported) > 50
    assert (unsupported["sim_true_label"] == "correct").mean() > 0.95
    assert unsupported["response_text"].str.contains("can't|don't know").mean() > 0.9


def test_recovered_asr_errors_are_correct_and_unrecovered_major_ones_are_asr(sim: pd.DataFrame) -> None:
    genuine = sim["sim_true_label"] != "false_wake"
    recovered = sim[sim["sim_recovered"]]
    assert (recovered["sim_asr_error"] != "none").all()
    assert (recovered["sim_true_label"] == "correct").all()
    assert (recovered["sim_asr_error"] == "major").sum() > 20  # ER matched a misheard title back
    major = sim[genuine & (sim["sim_asr_error"] == "major") & ~sim["sim_recovered"]]
    assert (major["sim_true_label"] == "asr").mean() > 0.95  # the rest recovered and then failed later
    assert (major["sim_true_label"] == "asr").sum() == (sim["sim_true_label"] == "asr").sum()
    cascade = major[major["sim_er_error"] & (major["sim_true_label"] == "asr")]
    assert len(cascade) > 30  # ER failed too, yet the failure point is the first stage
    minor = sim[genuine & (sim["sim_asr_error"] == "minor")]
    assert (minor["sim_true_label"] != "asr").all()


def test_every_defect_has_its_stage_wrong(sim: pd.DataFrame) -> None:
    label = sim["sim_true_label"]
    assert sim.loc[label == "nlu", "sim_nlu_error"].all()
    assert sim.loc[label == "er", "sim_er_error"].all()
    assert sim.loc[label.isin(["asr", "nlu", "er", "result"]), "sim_result_error"].all()
    assert not sim.loc[label == "correct", ["sim_nlu_error", "sim_er_error", "sim_result_error"]].any().any()


def test_wrong_stages_are_usually_but_not_always_less_confident(sim: pd.DataFrame) -> None:
    label = sim["sim_true_label"]
    for stage in ["asr", "nlu", "er", "result"]:
        wrong = sim.loc[label == stage, f"{stage}_confidence"]
        right = sim.loc[label == "correct", f"{stage}_confidence"]
        assert wrong.mean() < right.mean() - 0.2, stage
        assert 0.12 < (wrong >= 0.5).mean() < 0.5, stage  # some are confidently wrong
        assert (right < 0.5).mean() > 0.002, stage  # some right ones are unsure


def test_accents_differ_in_error_rate_and_calibration(sim: pd.DataFrame) -> None:
    correct = sim[sim["sim_true_label"] == "correct"]
    conf = correct.groupby("locale")["asr_confidence"].mean()
    assert conf["en-IN"] < conf["en-US"] - 0.1  # same outcome, lower score: one global threshold is wrong
    asr_rate = (sim["sim_true_label"] == "asr").groupby(sim["locale"]).mean()
    assert asr_rate["en-IN"] > asr_rate["en-US"] * 1.3
    assert asr_rate["en-AU"] > asr_rate["en-US"]


def test_rephrases_follow_defects(sim: pd.DataFrame) -> None:
    label = sim["sim_true_label"]
    defect = label.isin(["asr", "nlu", "er", "result"])
    rephrased = _next(sim, "sim_rephrase_of_previous").fillna(False).astype(bool)
    assert 0.4 < rephrased[defect].mean() < 0.65
    assert rephrased[label == "correct"].mean() < 0.1
    similar = pd.Series(cpdist(sim["asr_text"].fillna("").tolist(), _next(sim, "asr_text").fillna("").tolist(),
                               scorer=fuzz.token_set_ratio), index=sim.index)
    assert (similar[defect] > 60).mean() > (similar[label == "correct"] > 60).mean() + 0.3
    assert 0.25 < sim.loc[defect, "barge_in"].mean() < 0.45
    assert sim.loc[label == "correct", "barge_in"].mean() < 0.08
    gap = (_next(sim, "timestamp") - sim["timestamp"]).dt.total_seconds()
    assert gap[rephrased].max() <= 8 and gap[rephrased].min() >= 2
    assert gap[~rephrased].dropna().median() > 15
    again = sim[sim["sim_rephrase_of_previous"]]
    assert (again["sim_true_label"] == "correct").mean() > (label == "correct").mean()  # the second try usually works


def test_false_wakes_are_lower_confidence_and_isolated(sim: pd.DataFrame) -> None:
    fw = sim["sim_true_label"] == "false_wake"
    assert sim.loc[fw, "wake_confidence"].mean() < sim.loc[~fw, "wake_confidence"].mean() - 0.05
    followed = _next(sim, "turn_index").notna()
    assert not followed[fw].any()  # nobody answers a device they did not address
    assert followed[~fw].mean() > 0.4
    rate = fw.groupby(sim["device_type"]).mean()
    assert rate.idxmax() == "tv"
    assert sim.loc[fw, "asr_text"].isna().mean() > 0.1  # some heard nothing usable


def test_screens_route_shared_titles_to_video(sim: pd.DataFrame) -> None:
    titles = {e.name for e in SHARED_TITLES}
    asked = sim[(sim["sim_goal_intent"] == "PlayAudiobook") & sim["sim_goal_entity"].isin(titles)]
    to_video = (asked["nlu_domain"] == "video").groupby(asked["device_type"]).mean()
    assert to_video[SCREENS].min() > to_video[["speaker", "car"]].max() + 0.15
    misrouted = asked[asked["nlu_domain"] == "video"]
    assert (misrouted["sim_true_label"] == "nlu").mean() > 0.8  # the rest: ASR failed first
    other_nlu = sim[(sim["sim_true_label"] == "nlu") & ~sim["sim_nlu_misrouted"]]
    assert (misrouted["nlu_confidence"] >= 0.5).mean() > (other_nlu["nlu_confidence"] >= 0.5).mean()


def test_er_errors_show_in_the_text(sim: pd.DataFrame) -> None:
    er = sim[(sim["sim_true_label"] == "er") & sim["er_entity"].notna()]
    assert len(er) > 50
    assert not er.apply(lambda r: r["er_entity"] in r["asr_text"], axis=1).all()
    right = sim[(sim["sim_true_label"] == "correct") & sim["er_entity"].notna()]
    assert right.apply(lambda r: r["er_entity"] in r["asr_text"], axis=1).mean() > 0.8


# ---------------------------------------------------------------- options

def test_label_noise_flips_about_that_share() -> None:
    frame = simulate(3000, seed=4, label_noise=0.2, with_latent=True)
    flipped = frame["failure_point"] != frame["sim_true_label"]
    assert 0.17 < flipped.mean() < 0.23
    assert frame["failure_point"].isin(LABELS).all()
    clean = simulate(3000, seed=4, label_noise=0.0, with_latent=True)
    assert (clean["failure_point"] == clean["sim_true_label"]).all()


def test_unlabelled_leaves_failure_point_empty() -> None:
    frame = simulate(200, seed=4, labelled=False)
    assert frame["failure_point"].isna().all() and frame["failure_point"].dtype == "str"
    assert frame.drop(columns="failure_point").equals(simulate(200, seed=4).drop(columns="failure_point"))


def test_cohort_effect_raises_the_planted_stage_in_that_cohort() -> None:
    base = SimConfig(device_weights={"car": 1, "speaker": 1}, locale_weights={"en-IN": 1, "en-US": 1})
    planted = SimConfig(device_weights=base.device_weights, locale_weights=base.locale_weights,
                        cohort_effects=(CohortEffect({"locale": "en-IN", "device_type": "car"}, "er", 3.0),))
    before, after = simulate(5000, seed=6, config=base), simulate(5000, seed=6, config=planted)

    def er_rate(frame: pd.DataFrame, inside: bool) -> float:
        cohort = (frame["locale"] == "en-IN") & (frame["device_type"] == "car")
        return float((frame.loc[cohort == inside, "failure_point"] == "er").mean())

    assert 2.0 < er_rate(after, True) / er_rate(before, True) < 3.6
    assert er_rate(after, False) == pytest.approx(er_rate(before, False), rel=0.25)  # untouched outside


def test_domain_cohort_effect() -> None:
    effect = CohortEffect({"domain": "weather"}, "result", 4.0)
    frame = simulate(4000, seed=6, config=SimConfig(cohort_effects=(effect,)), with_latent=True)
    rate = (frame["sim_true_label"] == "result").groupby(frame["sim_goal_domain"] == "weather").mean()
    assert rate[True] > 2.5 * rate[False]


def test_asr_confidence_shift_moves_asr_confidence_in_logit_space() -> None:
    base = simulate(500, seed=9)
    shifted = simulate(500, seed=9, config=SimConfig(asr_confidence_shift=1.0))

    def logit(p: pd.Series) -> np.ndarray:
        p = p.to_numpy().clip(1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    assert np.allclose(logit(shifted["asr_confidence"]) - logit(base["asr_confidence"]), 1.0, atol=1e-3)
    assert shifted.drop(columns=["asr_confidence", "asr_nbest_margin"]).equals(
        base.drop(columns=["asr_confidence", "asr_nbest_margin"]))


def test_error_scale_zero_is_a_perfect_pipeline() -> None:
    frame = simulate(500, seed=10, config=SimConfig(error_scale=0.0))
    assert (frame["failure_point"] == "correct").all()
    noisier = simulate(3000, seed=10, config=SimConfig(error_scale=1.5))
    assert (noisier["failure_point"] == "correct").mean() < 0.65


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label_noise": 1.5}, "label_noise"),
        ({"config": SimConfig(device_weights={"toaster": 1.0})}, "device weights"),
        ({"config": SimConfig(cohort_effects=(CohortEffect({"locale": "fr-FR"}, "asr", 2.0),))}, "fr-FR"),
        ({"config": SimConfig(cohort_effects=(CohortEffect({"locale": "en-IN"}, "tts", 2.0),))}, "stage"),
        ({"config": SimConfig(cohort_effects=(CohortEffect({"domain": "music"}, "wake", 2.0),))}, "goal domain"),
    ],
)
def test_bad_options_are_rejected_with_the_value(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simulate(10, seed=0, **kwargs)


# ---------------------------------------------------------------- pipeline profiles and the fleet

def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability a positive scores below a negative (low confidence flags the error)."""
    from scipy.stats import mannwhitneyu

    pos, neg = scores[positive & ~np.isnan(scores)], scores[~positive & ~np.isnan(scores)]
    return float(mannwhitneyu(neg, pos).statistic / (len(pos) * len(neg)))


def test_a_renamed_default_profile_changes_nothing() -> None:
    """Every quirk is off at its default: the profile machinery itself must not move a value."""
    quirky_path = SimConfig(pipeline=PipelineProfile(name="same-as-default"))
    pd.testing.assert_frame_equal(simulate(800, seed=12, config=quirky_path), simulate(800, seed=12))


def test_random_profiles_are_deterministic_per_seed() -> None:
    assert random_profile(np.random.default_rng(5)) == random_profile(np.random.default_rng(5))
    assert random_profile(np.random.default_rng(5)) != random_profile(np.random.default_rng(6))
    assert fleet_configs(5, seed=3) == fleet_configs(5, seed=3)
    a, b = simulate_fleet(600, seed=3, n_pipelines=4), simulate_fleet(600, seed=3, n_pipelines=4)
    pd.testing.assert_frame_equal(a, b)
    assert not simulate_fleet(600, seed=4, n_pipelines=4).equals(a)


def test_fleet_is_on_contract_with_one_prefix_per_pipeline() -> None:
    from fpi.data.check import validate_traces

    fleet = simulate_fleet(900, seed=2, n_pipelines=5)
    assert fleet["pipeline"].nunique() == 5 and fleet["dialogue_id"].nunique() == 900
    assert (fleet["dialogue_id"].str.split("-").str[0] == fleet["pipeline"]).all()
    pd.testing.assert_frame_equal(validate_traces(fleet), fleet)
    assert fleet["failure_point"].isin(LABELS).all()
    default = fleet[fleet["pipeline"] == "p00"].drop(columns="pipeline").reset_index(drop=True)
    assert default["asr_nbest_margin"].notna().any()  # the default pipeline is one of the fleet


def test_fleets_are_drawn_independently_and_the_first_is_the_seeds_own_fleet() -> None:
    fleets = simulate_fleet(1200, seed=2, n_pipelines=3, n_fleets=3)
    assert sorted(fleets["fleet"].unique()) == ["f0", "f1", "f2"]
    assert fleets.groupby("fleet")["dialogue_id"].nunique().tolist() == [400, 400, 400]
    assert (fleets["pipeline"].str[:2] == fleets["fleet"]).all()
    assert (fleets["dialogue_id"].str.rsplit("-", n=1).str[0] == fleets["pipeline"]).all()
    first = fleets[fleets["fleet"] == "f0"].drop(columns="fleet").reset_index(drop=True)
    for column in ("pipeline", "dialogue_id"):
        first[column] = first[column].str.removeprefix("f0-")
    pd.testing.assert_frame_equal(first, simulate_fleet(400, seed=2, n_pipelines=3))
    # Each fleet draws its own pipelines: the same slot calibrates its confidences differently.
    asr = fleets[fleets["pipeline"].str.endswith("p01")].groupby("fleet")["asr_confidence"].mean()
    assert asr.nunique() == 3
    with pytest.raises(ValueError, match="n_fleets x n_pipelines"):
        simulate_fleet(5, seed=2, n_pipelines=3, n_fleets=2)


def test_saturated_wake_scores_hide_false_wakes() -> None:
    profile = PipelineProfile(wake_saturated=True, wake_floor=0.6, wake_sharpness=20.0, false_wakes=3.0)
    frame = simulate(3000, seed=13, config=SimConfig(pipeline=profile), with_latent=True)
    fw = (frame["sim_true_label"] == "false_wake").to_numpy()
    wake = frame["wake_confidence"].to_numpy()
    assert fw.sum() > 100
    assert wake.min() >= 0.6 and wake.max() <= 1.0
    assert np.median(wake[fw]) > 0.95  # only triggered turns are logged
    assert abs(wake[fw].mean() - wake[~fw].mean()) < 0.01
    default = simulate(3000, seed=13, config=SimConfig(pipeline=PipelineProfile(false_wakes=3.0)), with_latent=True)
    informative = (default["sim_true_label"] == "false_wake").to_numpy()
    assert _auc(default["wake_confidence"].to_numpy(), informative) > 0.75 > _auc(wake, fw) + 0.15


@pytest.mark.parametrize(("informativeness", "low", "high"), [(1.0, 0.8, 1.0), (0.05, 0.4, 0.62)])
def test_calibration_informativeness_controls_what_a_score_says(informativeness: float, low: float,
                                                                high: float) -> None:
    profile = PipelineProfile(asr=Calibration(scale=2.0, shift=-1.0, informativeness=informativeness, decimals=2))
    frame = simulate(3000, seed=14, config=SimConfig(pipeline=profile), with_latent=True)
    asr = frame["asr_confidence"].to_numpy()
    assert np.allclose(asr, np.round(asr, 2))
    assert low < _auc(asr, (frame["sim_true_label"] == "asr").to_numpy()) < high


def test_false_wakes_can_carry_requests_and_come_mid_dialogue() -> None:
    profile = PipelineProfile(false_wakes=3.0, false_wake_commands=1.0, false_wake_midstream=0.3,
                              false_wake_then_request=0.8, empty_hypotheses=0.0)
    frame = simulate(3000, seed=15, config=SimConfig(pipeline=profile), with_latent=True)
    fw = frame[frame["sim_true_label"] == "false_wake"]
    assert fw["nlu_intent"].notna().all() and fw["asr_text"].notna().all()
    with_entity = fw[fw["er_entity"].notna()]
    assert len(with_entity) > 30
    assert with_entity.apply(lambda r: r["er_entity"] in r["asr_text"], axis=1).all()  # heard and resolved
    followed = _next(frame, "turn_index").notna()
    assert followed[fw.index].mean() > 0.3  # the user goes on after background speech


def test_er_errors_can_match_the_text() -> None:
    profile = PipelineProfile(er_errors=3.0, er_same_text=1.0, vocabulary="broad")
    frame = simulate(4000, seed=16, config=SimConfig(pipeline=profile), with_latent=True)
    er = frame[(frame["sim_true_label"] == "er") & frame["er_entity"].notna() & frame["asr_text"].notna()]
    assert len(er) > 50
    name_heard = er.apply(lambda r: r["er_entity"].split(" (")[0].split(",")[0] in r["asr_text"], axis=1)
    assert name_heard.mean() > 0.6  # unlike the default pipeline (test_er_errors_show_in_the_text)


def test_profile_quirks_in_text_replies_and_columns() -> None:
    profile = PipelineProfile(vocabulary="broad", apologies=0.0, wake_word_in_text=1.0, garble=0.9,
                              asr_errors=3.0, dropped_columns=("asr_nbest_margin", "timestamp"))
    frame = simulate(2000, seed=17, config=SimConfig(pipeline=profile))
    assert "asr_nbest_margin" not in frame.columns and "timestamp" not in frame.columns
    replies = frame["response_text"].dropna()
    assert not replies.str.match(r"(?i)sorry,").any()
    assert frame["asr_text"].dropna().str.split(" ").str[0].nunique() <= 2  # one wake word (two-word ones too)
    default = simulate(2000, seed=17)
    assert replies.str.match(r"(?i)sorry,").sum() == 0 < default["response_text"].dropna().str.match("Sorry,").sum()


def test_terse_pipelines_acknowledge_what_they_act_on_and_still_word_failures() -> None:
    frame = simulate(2000, seed=19, config=SimConfig(pipeline=PipelineProfile(terse_replies=1.0)))
    replies = frame["response_text"].fillna("")
    terse = replies.isin(TERSE_REPLIES)
    correct = (frame["failure_point"] == "correct") & ~replies.str.contains("(?i)can't|isn't|sorry|don't")
    assert terse[correct & (replies != "")].all()
    # A short reply no longer singles out false wakes: wrongly acted-on turns get it too.
    assert terse[frame["failure_point"].isin(["er", "result"])].mean() > 0.3
    assert replies.str.contains("(?i)couldn't find|not sure|didn't").sum() > 20  # failure replies kept
    assert not simulate(2000, seed=19)["response_text"].isin(TERSE_REPLIES[1:]).any()


def test_a_stale_device_state_answers_already_and_is_a_result_error() -> None:
    profile = PipelineProfile(already_replies=1.0, already_right=0.05, result_errors=3.0)
    frame = simulate(3000, seed=23, config=SimConfig(pipeline=profile))
    already = frame["response_text"].fillna("").str.contains(" already ")
    labels = frame.loc[already, "failure_point"]
    assert set(labels) == {"result", "correct"} and (labels == "result").sum() > 30
    assert frame.loc[already, "nlu_intent"].isin(["TurnOn", "TurnOff", "Open", "Close"]).all()
    commands = frame["nlu_intent"].isin(["TurnOn", "TurnOff", "Open", "Close"]) & frame["er_entity"].notna()
    assert already[commands & (frame["failure_point"] == "result")].mean() > 0.9
    assert already[commands & (frame["failure_point"] == "correct")].mean() < 0.15
    assert not simulate(3000, seed=23)["response_text"].fillna("").str.contains(" already ").any()


def test_invented_catalogs_differ_per_pipeline_and_repeat_per_seed() -> None:
    def entities(catalog_seed: int) -> set[str]:
        profile = PipelineProfile(vocabulary="invented", catalog_seed=catalog_seed)
        return set(simulate(1500, seed=18, config=SimConfig(pipeline=profile))["er_entity"].dropna())

    assert entities(1) == entities(1)
    shared = entities(1) & entities(2)
    assert len(shared) < 0.8 * min(len(entities(1)), len(entities(2)))
    assert entities(1) - set(simulate(1500, seed=18, config=SimConfig(pipeline=PipelineProfile(vocabulary="broad")))
                             ["er_entity"].dropna())  # names no fixed catalog has


def test_a_model_trained_on_some_pipelines_carries_over_to_another() -> None:
    """Leave one pipeline family out: trained on drawn pipelines, scored on one it never saw."""
    from fpi.model.evaluate import metrics_for
    from fpi.model.estimator import FailurePointModel
    from fpi.model.training import TrainConfig

    fleet = simulate_fleet(2000, seed=21, n_pipelines=5, with_default=False)
    held = fleet["pipeline"] == "p04"
    model = FailurePointModel(config=TrainConfig(max_rounds=150, early_stopping_rounds=20))
    model.fit(fleet.loc[~held].reset_index(drop=True))
    unseen = fleet.loc[held].reset_index(drop=True)
    truth = unseen["failure_point"].to_numpy(dtype=object)
    score = metrics_for(truth, model.predict_proba(unseen))["macro_f1"]
    shares = unseen["failure_point"].value_counts(normalize=True).reindex(list(LABELS), fill_value=0.0).to_numpy()
    chance = metrics_for(truth, np.tile(shares, (len(unseen), 1)))["macro_f1"]  # always the commonest label
    assert score > 0.4 and score > chance + 0.25, (score, chance)
