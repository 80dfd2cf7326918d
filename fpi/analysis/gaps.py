"""Which stage drives a cohort's gap: "en-IN is 12 points worse" becomes "9 of them are ASR".

A turn has one failure point, so a cohort's defect rate is the sum of its
per-stage rates, and its gap to the rest of the turns (defect rate inside minus
outside) is exactly the sum of the per-stage differences. Each difference gets
Newcombe's hybrid score interval (`fpi.analysis.stats.newcombe_interval`); the parts do
not need a correction of their own, they describe a gap that was found.

A cohort is decomposed when its defect rate is above the rest's: one-sided
Fisher exact test (as the Cohorts page), Benjamini-Hochberg over every value of
every column.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from fpi.analysis.cohorts import ANY_DEFECT, cohort_codes, failure_point_codes
from fpi.data.schema import DEFECT_LABELS, LABEL_COLUMN, LABELS, PREDICTED_COLUMN
from fpi.errors import FpiError
from fpi.analysis.stats import benjamini_hochberg, fisher_greater, newcombe_interval

__all__ = ["GAP_COLUMNS", "format_gaps", "stage_gaps"]

GAP_COLUMNS = ["cohort", "column", "value", "turns", "q_value", "failure_point", "rate", "rest_rate", "difference",
               "low", "high"]


def stage_gaps(
    frame: pd.DataFrame, *, label_column: str | None = None, columns: Sequence[str] = ("locale", "device_type"),
    level: float = 0.05, min_support: int = 100,
) -> pd.DataFrame:
    """Per flagged cohort (one value of one of `columns`), its gap split by failure point (columns GAP_COLUMNS).

    One row per cohort and failure point, plus a `defect` row holding the whole
    gap (the sum of the others); cohorts in order of their gap, biggest first.
    """
    label_column = label_column or (PREDICTED_COLUMN if PREDICTED_COLUMN in frame.columns else LABEL_COLUMN)
    fp = failure_point_codes(frame, label_column)
    keep = fp >= 0
    if not keep.any():
        raise FpiError(f"no turn has a failure point in '{label_column}'")
    part, fp = frame.loc[keep], fp[keep]
    total = len(part)
    onehot = np.eye(len(LABELS), dtype=np.int64)[fp]
    candidates = []
    for column in (c for c in columns if c in part.columns):
        codes, names = cohort_codes(part, column)
        counts = np.zeros((len(names), len(LABELS)), dtype=np.int64)
        np.add.at(counts, codes, onehot)
        for i, name in enumerate(names):
            candidates.append((column, str(name), counts[i]))
    candidates = [c for c in candidates if min_support <= c[2].sum() <= total - min_support]
    if not candidates:
        return pd.DataFrame(columns=GAP_COLUMNS)
    all_counts = onehot.sum(axis=0)
    inside = np.array([c[2] for c in candidates])
    outside = all_counts - inside
    n_in, n_out = inside.sum(axis=1), outside.sum(axis=1)
    d_in, d_out = inside[:, 1:].sum(axis=1), outside[:, 1:].sum(axis=1)
    p = fisher_greater(d_in, n_in, d_in + d_out, n_in + n_out)
    rejected, q = benjamini_hochberg(p, level=level)
    rows = []
    for k in np.flatnonzero(rejected):
        column, value, _ = candidates[k]
        for target in (ANY_DEFECT, *DEFECT_LABELS):
            x_in = d_in[k] if target == ANY_DEFECT else inside[k, LABELS.index(target)]
            x_out = d_out[k] if target == ANY_DEFECT else outside[k, LABELS.index(target)]
            low, high = newcombe_interval(x_out, n_out[k], x_in, n_in[k])
            rows.append({"cohort": f"{column} = {value}", "column": column, "value": value, "turns": int(n_in[k]),
                         "q_value": float(q[k]), "failure_point": target, "rate": x_in / n_in[k],
                         "rest_rate": x_out / n_out[k], "difference": x_in / n_in[k] - x_out / n_out[k],
                         "low": float(low), "high": float(high)})
    table = pd.DataFrame(rows, columns=GAP_COLUMNS)
    if table.empty:
        return table
    gap = table.loc[table["failure_point"] == ANY_DEFECT].set_index("cohort")["difference"]
    order = {cohort: i for i, cohort in enumerate(gap.sort_values(ascending=False).index)}
    return table.assign(_o=table["cohort"].map(order)).sort_values("_o", kind="stable", ignore_index=True)[GAP_COLUMNS]


def format_gaps(table: pd.DataFrame) -> str:
    """One line per flagged cohort: its gap in points, then each failure point's share of it."""
    if table.empty:
        return "no locale or device fails significantly more often than the rest"
    lines = []
    for cohort, rows in table.groupby("cohort", sort=False):
        whole = rows.iloc[0]
        parts = rows.iloc[1:].sort_values("difference", ascending=False)
        shares = ", ".join(f"{r.failure_point} {100 * r.difference:+.1f} ({100 * r.low:+.1f} to {100 * r.high:+.1f})"
                           for r in parts.itertuples(index=False))
        lines.append(f"{cohort}: {100 * whole.difference:.1f} points worse than the rest "
                     f"({100 * whole.rate:.1f}% vs {100 * whole.rest_rate:.1f}%, {whole.turns:,} turns); {shares}")
    return "\n".join(lines)
