"""The statistics behind cohorts and fairness: intervals, exact tests, multiple-testing correction.

- Wilson score intervals for proportions: unlike the normal ("Wald") interval
  they keep their coverage for rare failure points and small cohorts and never
  leave [0, 1].
- One-sided Fisher exact tests (the hypergeometric tail given both margins):
  the two-proportion comparison of a cohort with the turns outside it that
  stays valid for the small counts of a 200-turn cohort.
- Benjamini-Hochberg (or, for any dependence, Benjamini-Yekutieli) over a
  whole family of tests, controlling the false discovery rate.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import betaln
from scipy.stats import binom, norm

__all__ = [
    "CORRECTIONS", "benjamini_hochberg", "bh_cutoff", "fisher_greater", "fisher_less", "hypergeom_sf", "macro_f1",
    "mcnemar_p", "newcombe_interval", "newcombe_paired_interval", "two_proportion_p", "wilson_interval",
]


def wilson_interval(
    successes: np.ndarray | float, trials: np.ndarray | float, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Wilson score interval of `successes / trials`, elementwise; nan where trials == 0."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    z = float(norm.ppf(0.5 + confidence / 2))
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    valid = n > 0
    # exact at the edges, where rounding would leave 1e-17 or 0.9999999999999999
    low = np.where(valid, np.where(x <= 0, 0.0, np.clip(centre - half, 0.0, 1.0)), np.nan)
    high = np.where(valid, np.where(x >= n, 1.0, np.clip(centre + half, 0.0, 1.0)), np.nan)
    return low, high


def benjamini_hochberg(
    p_values: Sequence[float] | np.ndarray, *, level: float = 0.05, method: str = "bh"
) -> tuple[np.ndarray, np.ndarray]:
    """(rejected, adjusted p-values) of the step-up false-discovery-rate procedure.

    `method="bh"`: Benjamini-Hochberg (independent or positively dependent tests);
    `"by"`: Benjamini-Yekutieli (any dependence; divides `level` by sum 1/i).
    A missing p-value counts as 1.
    """
    if method not in ("bh", "by"):
        raise ValueError(f"method must be 'bh' or 'by', got {method!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    p = np.nan_to_num(np.asarray(p_values, dtype=float).ravel(), nan=1.0)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    order = np.argsort(p, kind="stable")
    factor = float(np.sum(1.0 / np.arange(1, m + 1))) if method == "by" else 1.0
    ranked = p[order] * m * factor / np.arange(1, m + 1)
    adjusted_sorted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted <= level, adjusted


CORRECTIONS = {"bh": "Benjamini-Hochberg", "by": "Benjamini-Yekutieli"}


def bh_cutoff(p: np.ndarray, rejected: np.ndarray) -> float:
    """The largest raw p-value the procedure rejected (0 when nothing was)."""
    return float(p[rejected].max()) if rejected.any() else 0.0


def _log_choose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -np.log1p(a) - betaln(a - b + 1.0, b + 1.0)


def hypergeom_sf(x: np.ndarray, n: np.ndarray, k: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """P(X >= x) for X ~ Hypergeometric(`pool` turns, `k` of them failing, `n` drawn), elementwise.

    The exact tail, summed term by term from x away from the mode (upward when x
    is above the mean, downward for the complement when not), all elements at
    once. scipy's `hypergeom.sf` gives the same numbers but costs ~0.1 ms per
    call for populations under ~10^5 (Boost's prime-factorisation path); this
    costs microseconds at any size.
    """
    shape = np.broadcast(x, n, k, pool).shape  # scalars in, a scalar (0-d array) out
    x, n, k, pool = (np.atleast_1d(np.asarray(a, dtype=float)) for a in np.broadcast_arrays(x, n, k, pool))
    lo = np.maximum(0.0, n - (pool - k))
    hi = np.minimum(n, k)
    out = np.where(x <= lo, 1.0, 0.0)
    inner = (x > lo) & (x <= hi)
    upper = inner & (x * pool > n * k)  # above the mean: the tail itself is small
    lower = inner & ~upper  # below: sum P(X <= x - 1) instead, and subtract
    start = np.where(upper, x, x - 1.0)
    log_total = _log_choose(pool, n)
    s = np.where(inner, start, lo)
    log_pmf = _log_choose(k, s) + _log_choose(pool - k, n - s) - log_total
    term = np.where(inner, np.exp(log_pmf), 0.0)
    total = term.copy()
    for mask, step in ((upper, 1.0), (lower, -1.0)):
        active = np.flatnonzero(mask & (term > 0))
        edge = hi if step > 0 else lo
        while active.size:
            j = s[active]
            kk, nn, pp = k[active], n[active], pool[active]
            if step > 0:
                ratio = (kk - j) * (nn - j) / ((j + 1) * (pp - kk - nn + j + 1))
            else:
                ratio = j * (pp - kk - nn + j) / ((kk - j + 1) * (nn - j + 1))
            t = term[active] * ratio
            s[active] = j + step
            term[active] = t
            total[active] += t
            done = (t <= total[active] * 1e-15) | (s[active] == edge[active])
            active = active[~done]
    out = np.where(upper, total, out)
    out = np.where(lower, 1.0 - total, out)
    return np.clip(out, 0.0, 1.0).reshape(shape)


def fisher_greater(hits: np.ndarray, size: np.ndarray, pool_hits: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """One-sided Fisher exact p: P(at least `hits` of `size` turns drawn from `pool` fail),
    `pool_hits` of the pool failing. The pool is the cohort plus what it is compared with."""
    return hypergeom_sf(hits, size, pool_hits, pool)


def fisher_less(hits: np.ndarray, size: np.ndarray, pool_hits: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """One-sided Fisher exact p of the other tail: at most `hits` successes (at least size - hits misses)."""
    size, pool = np.asarray(size), np.asarray(pool)
    return hypergeom_sf(size - np.asarray(hits), size, pool - np.asarray(pool_hits), pool)


def macro_f1(confusion: np.ndarray) -> np.ndarray:
    """Macro-F1 of (..., K, K) confusion counts (rows truth), over the classes present in truth or prediction.

    As scikit-learn's `f1_score(average="macro")` without `labels`: a class no turn has and
    nobody predicted does not count as an F1 of 0.
    """
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(float)
    truth = confusion.sum(axis=-1)
    predicted = confusion.sum(axis=-2)
    present = (truth + predicted) > 0
    f1 = np.where(present, 2 * tp / np.maximum(truth + predicted, 1), 0.0)
    return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def newcombe_interval(
    x1: np.ndarray | float, n1: np.ndarray | float, x2: np.ndarray | float, n2: np.ndarray | float,
    *, confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of the difference x2/n2 - x1/n1 of two independent proportions (Newcombe's hybrid score).

    Built from the two Wilson intervals, so it inherits their coverage for rare
    failure points where the Wald interval of a difference undercovers.
    """
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    l1, u1 = wilson_interval(x1, n1, confidence=confidence)
    l2, u2 = wilson_interval(x2, n2, confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = x1 / n1, x2 / n2
    diff = p2 - p1
    return diff - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), diff + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)


def newcombe_paired_interval(
    a: np.ndarray | float, b: np.ndarray | float, c: np.ndarray | float, d: np.ndarray | float,
    *, confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of p2 - p1 for paired proportions (Newcombe 1998, method 10).

    The 2x2 table of the same turns: a in both, b only in the first, c only in
    the second, d in neither; p1 = (a + b) / n, p2 = (a + c) / n. The Wilson
    intervals of both are combined with the correlation phi of the pairs, so the
    interval is narrower than the unpaired one when the two agree on most turns.
    """
    a, b, c, d = (np.asarray(v, dtype=float) for v in (a, b, c, d))
    n = a + b + c + d
    l1, u1 = wilson_interval(a + b, n, confidence=confidence)
    l2, u2 = wilson_interval(a + c, n, confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = (a + b) / n, (a + c) / n
        denom = np.sqrt((a + b) * (c + d) * (a + c) * (b + d))
        phi = np.where(denom > 0, (a * d - b * c) / np.where(denom > 0, denom, 1.0), 0.0)
    diff = p2 - p1
    down = np.sqrt(np.maximum((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2, 0.0))
    up = np.sqrt(np.maximum((u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2, 0.0))
    return diff - down, diff + up


def two_proportion_p(
    x1: np.ndarray | float, n1: np.ndarray | float, x2: np.ndarray | float, n2: np.ndarray | float
) -> np.ndarray:
    """Two-sided p-value of the pooled two-proportion z test (independent samples); 1 where undefined."""
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        z = (x2 / n2 - x1 / n1) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p = 2 * norm.sf(np.abs(z))
    return np.where(np.isfinite(p), p, 1.0)


def mcnemar_p(b: np.ndarray | float, c: np.ndarray | float) -> np.ndarray:
    """Two-sided exact McNemar p-value: of the b + c discordant pairs, is the split unlike a fair coin's?"""
    b, c = np.asarray(b, dtype=float), np.asarray(c, dtype=float)
    p = 2 * binom.cdf(np.minimum(b, c), b + c, 0.5)
    return np.where(b + c > 0, np.minimum(p, 1.0), 1.0)
