"""Monitoring over time: which failure point rose, for whom, and when.

Per failure point (and any defect) and per cohort (all turns, each device, each
locale; optionally each NLU domain) the share of turns failing in each period
(hour, day or week) is compared with the preceding `window` periods of the
same series.

Why this design:
- A p-chart (a rate against limits from the past) rather than CUSUM: a
  quality team asks "was yesterday worse than the two weeks before?", a
  p-chart answers with one number per day that can be drawn against its limit,
  and it reacts to a one-day spike at once. CUSUM finds small lasting drifts
  sooner but flags the day a sum crossed a threshold, not the day things broke.
- The limits come from the preceding window only (never from the period
  itself or the future), so a spike cannot hide by raising its own limit, and a
  slow change of the fleet moves the baseline along with it.
- The test of a period against its window is the one-sided Fisher exact test
  (`fpi.analysis.stats.fisher_greater`, the cohorts' test): the baseline rate is itself
  estimated from a finite window, which a plain binomial p-chart ignores (it
  treats the window's rate as known and flags too much for small cohorts).
  Only rises are tested: a drop of a defect rate is not an alert.
- Many series x many periods are tested at once (six failure points x a dozen
  cohorts x every period is over a thousand tests); one Benjamini-Hochberg
  correction over all of them keeps the expected share of false alerts at
  `level`, and when nothing changed at all that is also the chance of a single
  false alarm in the whole report.
- `limit` is the upper control limit at the per-test threshold the correction
  used (normal approximation, for drawing); the breach itself is decided by the
  exact test.
- Turns are treated as independent. Turns of one dialogue are correlated, so
  `min_turns` keeps tiny periods out of the family.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from fpi.analysis.cohorts import ANY_DEFECT, cohort_codes, failure_point_codes
from fpi.data.schema import DEFECT_LABELS, LABEL_COLUMN, LABELS, PREDICTED_COLUMN
from fpi.errors import FpiError
from fpi.analysis.stats import benjamini_hochberg, bh_cutoff, fisher_greater

__all__ = ["FREQUENCIES", "MONITOR_COLUMNS", "Monitoring", "format_monitoring", "monitor", "overall_limits"]

FREQUENCIES: dict[str, str] = {"hour": "h", "day": "D", "week": "W"}
"""Period names the CLI takes -> pandas period frequency."""

DEFAULT_WINDOW: dict[str, int] = {"hour": 168, "day": 14, "week": 8}
"""Preceding periods a limit is estimated from: a week of hours, two weeks of days, two months of weeks."""

MONITOR_COLUMNS: tuple[str, ...] = ("device_type", "locale")
"""Cohort columns monitored by default; `nlu_domain` can be added."""

ALL_TURNS = "all turns"

POINT_COLUMNS = ["series", "column", "value", "failure_point", "period", "turns", "count", "rate", "expected",
                 "limit", "z", "p_value", "q_value", "breach", "history_turns"]


@dataclass(frozen=True)
class Monitoring:
    """Every tested (series, period) point and the breaches among them.

    `points` (columns POINT_COLUMNS): series ("device_type = car"), column and
    value of the cohort (None, "all turns" for everything), failure_point (a
    defect label or "defect"), period start, turns, count and rate in the
    period, expected (the preceding window's rate), limit (upper control limit),
    z (two-proportion z of the period against its window), p_value (one-sided
    Fisher exact), q_value (Benjamini-Hochberg adjusted), breach, history_turns.
    `breaches`: the breaching points, most significant first.
    """

    points: pd.DataFrame
    breaches: pd.DataFrame
    by: str
    window: int
    level: float
    tested: int
    threshold: float
    """The per-test p-value the correction used: its largest rejected p, or level / tested when none was."""
    label_column: str
    columns: tuple[str, ...]
    periods: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the settings and the breaches as records (periods as ISO text, UTC)."""
        def records(table: pd.DataFrame) -> list[dict[str, Any]]:
            out = table.assign(period=table["period"].map(lambda t: t.isoformat()))
            return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
                    for row in out.to_dict("records")]

        return {"by": self.by, "window": self.window, "level": self.level, "tested": self.tested,
                "threshold": self.threshold, "label_column": self.label_column, "columns": list(self.columns),
                "periods": self.periods, "breaches": records(self.breaches)}


def _periods(frame: pd.DataFrame, freq: str) -> pd.Series:
    if "timestamp" not in frame.columns or frame["timestamp"].notna().sum() == 0:
        raise FpiError("monitoring needs timestamps: the traces have no 'timestamp' column or it is empty")
    stamps = frame["timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        raise FpiError(f"column 'timestamp' is not a date-time column (dtype {stamps.dtype})")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.dt.to_period(freq)


def _window_sums(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over the `window` periods before each period (axis 0), not counting the period itself."""
    cs = np.concatenate([np.zeros((1, *values.shape[1:]), dtype=values.dtype), np.cumsum(values, axis=0)])
    ends = np.arange(values.shape[0])
    starts = np.maximum(ends - window, 0)
    return cs[ends] - cs[starts]


def monitor(
    frame: pd.DataFrame,
    *,
    label_column: str | None = None,
    by: str = "day",
    window: int | None = None,
    min_history: int | None = None,
    columns: Sequence[str] = MONITOR_COLUMNS,
    level: float = 0.05,
    min_turns: int = 20,
) -> Monitoring:
    """Test every (failure point, cohort, period) defect rate against its preceding `window` periods.

    `label_column`: where the failure point is read; default the model's
    `predicted_failure_point` when present, else the labels `failure_point`.
    A period is tested when it has `min_turns` turns of the series and the
    window before it has data in at least `min_history` periods (default half
    the window), so the first periods of a file only build the baseline.
    Turns without a failure point (unlabelled) or without a timestamp are left out.
    """
    if by not in FREQUENCIES:
        raise FpiError(f"--by must be one of {', '.join(FREQUENCIES)}; got {by!r}")
    window = DEFAULT_WINDOW[by] if window is None else window
    if window < 1:
        raise FpiError(f"the window must be at least one period; got {window}")
    min_history = max(1, window // 2) if min_history is None else min_history
    if not 0.0 < level < 1.0:
        raise FpiError(f"level must be in (0, 1); got {level}")
    if label_column is None:
        label_column = PREDICTED_COLUMN if PREDICTED_COLUMN in frame.columns else LABEL_COLUMN
    fp = failure_point_codes(frame, label_column)
    period = _periods(frame, FREQUENCIES[by])
    keep = (fp >= 0) & period.notna().to_numpy()
    if not keep.any():
        raise FpiError(f"no turn has both a timestamp and a failure point in '{label_column}'")
    part = frame.loc[keep]
    fp = fp[keep]
    period = period[keep]
    grid = pd.period_range(period.min(), period.max(), freq=period.dtype.freq)
    p_code = (period.array.asi8 - grid[0].ordinal).astype(np.int64)  # periods since the first (ordinals count them)
    n_periods = len(grid)
    targets = (*DEFECT_LABELS, ANY_DEFECT)
    present = tuple(c for c in columns if c in part.columns)

    series: list[tuple[str | None, np.ndarray, np.ndarray]] = [(None, np.zeros(len(part), np.int64),
                                                                np.array([ALL_TURNS]))]
    series += [(column, *cohort_codes(part, column)) for column in present]

    blocks: list[pd.DataFrame] = []
    for column, codes, names in series:
        n_levels = len(names)
        counts = np.zeros((n_periods, n_levels, len(LABELS)), dtype=np.int64)
        np.add.at(counts, (p_code, codes, fp), 1)
        turns = counts.sum(axis=-1)  # (P, V)
        hits = np.stack([counts[..., 1:].sum(axis=-1) if t == ANY_DEFECT else counts[..., LABELS.index(t)]
                         for t in targets], axis=-1)  # (P, V, T)
        hist_turns = _window_sums(turns, window)
        hist_hits = _window_sums(hits, window)
        hist_periods = _window_sums((turns > 0).astype(np.int64), window)
        tested = (turns >= min_turns) & (hist_periods >= min_history) & (hist_turns > 0)
        pi, vi = np.nonzero(tested)
        if pi.size == 0:
            continue
        n = np.repeat(turns[pi, vi], len(targets))
        nh = np.repeat(hist_turns[pi, vi], len(targets))
        x = hits[pi, vi].ravel()
        xh = hist_hits[pi, vi].ravel()
        value = names[vi]
        label = np.tile(np.array(targets, dtype=object), pi.size)
        blocks.append(pd.DataFrame({
            "series": np.repeat([ALL_TURNS if column is None else f"{column} = {v}" for v in value], len(targets)),
            "column": column, "value": np.repeat(value, len(targets)), "failure_point": label,
            "period": np.repeat(grid[pi].start_time, len(targets)),
            "turns": n, "count": x, "history_turns": nh, "history_count": xh,
        }))
    if not blocks:
        points = pd.DataFrame(columns=POINT_COLUMNS)
        return Monitoring(points=points, breaches=points.copy(), by=by, window=window, level=level, tested=0,
                          threshold=0.0, label_column=label_column, columns=present, periods=n_periods)
    points = pd.concat(blocks, ignore_index=True)
    n, x = points["turns"].to_numpy(float), points["count"].to_numpy(float)
    nh, xh = points["history_turns"].to_numpy(float), points["history_count"].to_numpy(float)
    p = fisher_greater(x, n, x + xh, n + nh)
    rejected, adjusted = benjamini_hochberg(p, level=level)
    threshold = bh_cutoff(p, rejected) if rejected.any() else level / len(p)
    expected = xh / nh
    pooled = (x + xh) / (n + nh)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x / n - expected) / np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / nh))
    z = np.where(np.isfinite(z), z, 0.0)
    floor = np.maximum(expected, 0.5 / nh)  # a baseline of zero failures still has some spread
    limit = expected + norm.isf(threshold) * np.sqrt(floor * (1 - floor) * (1 / n + 1 / nh))
    points = points.assign(rate=x / n, expected=expected, limit=np.minimum(limit, 1.0), z=z, p_value=p,
                           q_value=adjusted, breach=rejected)[POINT_COLUMNS]
    breaches = points.loc[points["breach"]].sort_values(["p_value", "z"], ascending=[True, False],
                                                       ignore_index=True)
    return Monitoring(points=points, breaches=breaches, by=by, window=window, level=level, tested=len(points),
                      threshold=float(threshold), label_column=label_column, columns=present, periods=n_periods)


def overall_limits(result: Monitoring) -> pd.DataFrame:
    """Per period: the all-turns defect rate's upper control limit, whether it breached, and how many
    series (any failure point, any cohort) breached then: what the Overview's time chart overlays."""
    points = result.points
    overall = points[(points["series"] == ALL_TURNS) & (points["failure_point"] == "defect")]
    table = overall[["period", "limit", "breach"]].rename(columns={"breach": "overall_breach"})
    counts = points[points["breach"].astype(bool)].groupby("period").size().rename("breaches")
    table = table.merge(counts, left_on="period", right_index=True, how="left")
    table["breaches"] = table["breaches"].fillna(0).astype(int)
    return table.sort_values("period", ignore_index=True)


def _period_text(stamp: pd.Timestamp, by: str) -> str:
    return f"{stamp:%Y-%m-%d %H:00}" if by == "hour" else (f"week of {stamp:%Y-%m-%d}" if by == "week"
                                                             else f"{stamp:%Y-%m-%d}")


def format_monitoring(result: Monitoring, *, top: int = 30) -> str:
    """The breaches as a text table, with what was tested and the correction."""
    r = result
    lines = [f"{r.tested:,} series x {r.by} points tested ({r.periods:,} {r.by}s; failure point from "
             f"'{r.label_column}'; cohorts: all turns" + "".join(f", each {c}" for c in r.columns)
             + f"); limits from the preceding {r.window} {r.by}s; false discovery rate {r.level:g} "
             f"(Benjamini-Hochberg, per-test p < {r.threshold:.2g})"]
    if r.breaches.empty:
        lines.append("no breach: no defect rate rose above its control limit")
        return "\n".join(lines)
    lines += [f"{len(r.breaches):,} breach{'es' if len(r.breaches) != 1 else ''}:", "",
              f"{'period':<17}{'failure':<11}{'turns':>7}{'count':>7}{'rate':>8}{'expected':>10}{'limit':>8}"
              f"{'z':>7}{'p':>10}  series"]
    for row in r.breaches.head(top).itertuples(index=False):
        lines.append(f"{_period_text(row.period, r.by):<17}{row.failure_point:<11}{row.turns:>7,}{row.count:>7,}"
                     f"{row.rate:>8.1%}{row.expected:>10.1%}{row.limit:>8.1%}{row.z:>7.1f}{row.p_value:>10.2g}"
                     f"  {row.series}")
    if len(r.breaches) > top:
        lines.append(f"... and {len(r.breaches) - top:,} more (--json lists all)")
    return "\n".join(lines)
