"""Tests for fpi.analysis.stats: intervals, exact tests and multiple-testing correction, against scipy and by hand."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest, false_discovery_control, fisher_exact, hypergeom
from sklearn.metrics import f1_score

from fpi.analysis.stats import (
    benjamini_hochberg, bh_cutoff, fisher_greater, fisher_less, hypergeom_sf, macro_f1, mcnemar_p, newcombe_interval,
    newcombe_paired_interval, two_proportion_p, wilson_interval,
)
from fpi.data.schema import LABELS


# ---------------------------------------------------------------- proportions and their differences

@pytest.mark.parametrize(("n", "p"), [(200, 0.05), (500, 0.2), (1000, 0.01), (300, 0.08)])
def test_wilson_intervals_cover_the_true_rate_at_the_stated_level(n: int, p: float) -> None:
    rng = np.random.default_rng(0)
    hits = rng.binomial(n, p, size=2000)
    low, high = wilson_interval(hits, n, confidence=0.95)
    coverage = float(np.mean((low <= p) & (p <= high)))
    assert abs(coverage - 0.95) <= 0.02, coverage


def test_wilson_interval_known_values_and_edges() -> None:
    low, high = wilson_interval(np.array([5, 0, 10, 0]), np.array([10, 10, 10, 0]))
    assert low[0] == pytest.approx(0.2366, abs=1e-4) and high[0] == pytest.approx(0.7634, abs=1e-4)
    assert low[1] == 0.0 and 0 < high[1] < 0.35
    assert high[2] == 1.0 and 0.65 < low[2] < 1
    assert np.isnan(low[3]) and np.isnan(high[3])
    with pytest.raises(ValueError, match="confidence must be in"):
        wilson_interval(1, 2, confidence=1.5)


def test_benjamini_hochberg_by_hand() -> None:
    # sorted: .005 .01 .03 .04 .2 against k*.05/5 = .01 .02 .03 .04 .05 -> the first four pass
    rejected, adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.005, 0.2], level=0.05)
    assert rejected.tolist() == [True, True, True, True, False]
    np.testing.assert_allclose(adjusted, [0.025, 0.05, 0.05, 0.025, 0.2])
    # step-up: .02 misses its own bar (.05/3) but passes because .024 passes its bar (2 * .05/3)
    rejected, adjusted = benjamini_hochberg([0.02, 0.024, 0.5], level=0.05)
    assert rejected.tolist() == [True, True, False]
    np.testing.assert_allclose(adjusted, [0.036, 0.036, 0.5])
    # Benjamini-Yekutieli divides the level by 1 + 1/2 + 1/3
    rejected, adjusted = benjamini_hochberg([0.02, 0.024, 0.5], level=0.05, method="by")
    assert not rejected.any()
    np.testing.assert_allclose(adjusted[:2], 0.036 * 11 / 6)
    assert benjamini_hochberg([], level=0.05)[0].size == 0
    assert benjamini_hochberg([np.nan, 0.001], level=0.05)[0].tolist() == [False, True]


def test_fisher_tail_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    pool = rng.integers(1, 3000, 4000)
    bad = rng.integers(0, pool + 1)
    size = rng.integers(0, pool + 1)
    hits = rng.integers(-2, np.minimum(size, bad) + 3)
    ours = hypergeom_sf(hits, size, bad, pool)
    theirs = hypergeom.sf(hits - 1, pool, bad, size)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)
    big = hypergeom_sf(np.array([9_300, 9_000]), 100_000, 90_000, 1_000_000)  # a million turns
    np.testing.assert_allclose(big, hypergeom.sf(np.array([9_299, 8_999]), 1_000_000, 90_000, 100_000), rtol=1e-7)


def test_macro_f1_matches_scikit_learn_over_the_classes_present() -> None:
    rng = np.random.default_rng(2)
    truth = rng.choice(5, size=300, p=[0.6, 0.2, 0.1, 0.1, 0.0])  # class 4 never occurs, 5 is never predicted
    predicted = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 5, 300))
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    assert macro_f1(confusion) == pytest.approx(f1_score(truth, predicted, average="macro"))


def test_newcombe_intervals_hold_the_difference_and_pairing_narrows_them() -> None:
    # Newcombe (1998), example: 56/70 vs 48/80 -> difference 0.2, interval 0.0524 to 0.3339
    low, high = newcombe_interval(48, 80, 56, 70)
    assert (round(float(low), 4), round(float(high), 4)) == (0.0524, 0.3339)
    # 1000 pairs agreeing on 90 positives, 30 more positive only in the second
    low_p, high_p = newcombe_paired_interval(90, 0, 30, 880)
    low_u, high_u = newcombe_interval(90, 1000, 120, 1000)
    assert low_u < low_p < 0.03 < high_p < high_u
    wl, wh = wilson_interval(90, 1000)
    assert 0 < wl < 0.09 < wh


@settings(max_examples=200, deadline=None)
@given(counts=st.tuples(*(st.integers(0, 400) for _ in range(4))))
def test_intervals_hold_the_observed_change_and_stay_in_range(counts: tuple[int, int, int, int]) -> None:
    a, b, c, d = counts
    n = a + b + c + d
    if n == 0:
        return
    change = (c - b) / n  # second rate minus first
    low, high = newcombe_paired_interval(a, b, c, d)
    assert -1 - 1e-9 <= low <= change + 1e-9 and change - 1e-9 <= high <= 1 + 1e-9
    x1, x2 = a + b, a + c
    low_u, high_u = newcombe_interval(x1, n, x2, n)
    assert -1 - 1e-9 <= low_u <= change + 1e-9 <= high_u + 2e-9 <= 1 + 3e-9


def test_wilson_interval_is_scipys_and_keeps_its_arguments_shape() -> None:
    for k, n in [(0, 7), (3, 7), (7, 7), (1, 1000), (455, 1000)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
        low, high = wilson_interval(k, n, confidence=0.9)
        assert (float(low), float(high)) == pytest.approx((ci.low, ci.high), abs=1e-12)
    low, high = wilson_interval(np.array([[1, 2], [3, 4]]), 10)
    assert low.shape == high.shape == (2, 2) and (low < high).all()


def test_newcombe_interval_is_missing_where_a_sample_is_empty() -> None:
    low, high = newcombe_interval(np.array([1, 0]), np.array([10, 0]), np.array([2, 1]), np.array([10, 5]))
    assert np.isfinite([low[0], high[0]]).all() and np.isnan(low[1]) and np.isnan(high[1])


def test_paired_interval_of_identical_rates_straddles_zero() -> None:
    low, high = newcombe_paired_interval(40, 10, 10, 40)
    assert low < 0 < high and low == pytest.approx(-high)


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("table", [[[3, 7], [12, 8]], [[0, 5], [5, 0]], [[20, 20], [38, 2]], [[9, 1], [1, 9]],
                                   [[0, 0], [4, 6]]])
def test_fisher_tails_are_scipys_fisher_exact(table: list[list[int]]) -> None:
    (a, b), (c, d) = table  # cohort: a hits of a + b; the rest: c of c + d
    hits, size, pool_hits, pool = (np.array([v]) for v in (a, a + b, a + c, a + b + c + d))  # arrays, not scalars
    assert fisher_greater(hits, size, pool_hits, pool)[0] == pytest.approx(
        fisher_exact(table, alternative="greater")[1], rel=1e-9)
    assert fisher_less(hits, size, pool_hits, pool)[0] == pytest.approx(
        fisher_exact(table, alternative="less")[1], rel=1e-9)


def test_two_proportion_p_by_hand_and_where_undefined() -> None:
    # 30/100 vs 45/100: pooled 0.375, z = 0.15 / sqrt(0.375 * 0.625 * 0.02) = 2.1909, two-sided p = 0.02846
    assert float(two_proportion_p(30, 100, 45, 100)) == pytest.approx(0.02846, abs=1e-5)
    assert float(two_proportion_p(45, 100, 30, 100)) == pytest.approx(0.02846, abs=1e-5)  # symmetric
    assert two_proportion_p(np.array([0, 10]), np.array([0, 10]), np.array([0, 10]), np.array([0, 10])).tolist() == \
        [1.0, 1.0]  # no turns; everything in both (pooled rate 1): no evidence either way


def test_mcnemar_p_is_the_exact_binomial_test_of_the_discordant_pairs() -> None:
    for b, c in [(0, 5), (3, 12), (10, 10), (25, 40), (1, 0)]:
        assert float(mcnemar_p(b, c)) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
    assert float(mcnemar_p(0, 0)) == 1.0


# ---------------------------------------------------------------- false discovery rate

@settings(max_examples=100, deadline=None)
@given(p=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), method=st.sampled_from(["bh", "by"]))
def test_adjusted_p_values_are_scipys(p: list[float], method: str) -> None:
    rejected, adjusted = benjamini_hochberg(p, level=0.05, method=method)
    np.testing.assert_allclose(adjusted, false_discovery_control(p, method=method), rtol=1e-12, atol=1e-15)
    assert (rejected == (adjusted <= 0.05)).all()


def test_bh_cutoff_is_the_largest_rejected_p_value() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2])
    rejected, _ = benjamini_hochberg(p, level=0.05)
    assert bh_cutoff(p, rejected) == 0.04
    assert bh_cutoff(p, np.zeros(5, dtype=bool)) == 0.0


@pytest.mark.parametrize("kwargs", [{"method": "bonferroni"}, {"level": 0.0}, {"level": 1.0}])
def test_benjamini_hochberg_refuses_bad_options(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        benjamini_hochberg([0.1], **kwargs)
