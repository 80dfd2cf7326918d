"""What changed between two versions: two models on the same turns, or one pipeline before and after.

Two kinds of comparison, because they need different statistics:
- *Paired* (`compare_paired`): two label columns on the same turns (model A and
  model B). The 6x6 migration matrix counts how many turns moved from each
  failure point to each other; a rate change is tested with the exact McNemar
  test on the turns that moved, and its interval is Newcombe's paired one
  (method 10): both use the pairing, so a change of a few hundred turns out of
  a million is seen.
- *Unpaired* (`compare_frames`): two sets of turns (two uploads, or one split
  at a date or by a column with `split_frame`). Each rate change gets Newcombe's
  hybrid score interval (from two Wilson intervals) and the pooled
  two-proportion z test; there is no migration matrix, as no turn is in both.

Per failure point and in all (`defect`), overall and per cohort of one or two
`column = value` conditions (device, locale, domain, intent): every cohort x
failure point change goes into one Benjamini-Hochberg correction (the Cohorts
page's control), and significant changes are ranked most significant first:
a change seen in a big cohort outranks the same change in each of its small
two-condition parts (ranking by interval size put those slivers first).
As on the Cohorts page, a two-condition cohort must say something its
one-condition parents do not: it is kept only if its change differs
significantly (two-sided z test of the difference of changes, at the same
cut-off) from the change in the rest of EACH parent, and a cohort with the same
counts as a better-ranked one (the same turns reached by other conditions) is
dropped. The dropped ones are listed in `Comparison.redundant` with the reason.
Cohorts by a stage's own outputs (`nlu_intent` for NLU) show where failures
landed: NLU failures of PlayMusic requests are logged under the intent NLU
picked instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from fpi.analysis.cohorts import ANY_DEFECT, cohort_codes, describe, failure_point_codes
from fpi.errors import FpiError
from fpi.data.schema import DEFECT_LABELS, LABELS
from fpi.analysis.stats import (benjamini_hochberg, bh_cutoff, mcnemar_p, newcombe_interval, newcombe_paired_interval,
                       two_proportion_p)

__all__ = ["COHORT_COLUMNS", "COMPARE_COLUMNS", "REDUNDANT_COLUMNS", "Comparison", "compare_frames", "compare_paired",
           "format_comparison", "moved_turns", "split_frame"]

COMPARE_COLUMNS: tuple[str, ...] = ("device_type", "locale", "nlu_domain", "nlu_intent")
TARGETS: tuple[str, ...] = (*DEFECT_LABELS, ANY_DEFECT)
CHANGE_COLUMNS = ["cohort", "failure_point", "turns_before", "count_before", "rate_before", "turns_after",
                  "count_after", "rate_after", "change", "low", "high", "p_value", "q_value"]
COHORT_COLUMNS = [*CHANGE_COLUMNS, "conditions"]
"""A changed cohort: its change, and its conditions as ((column, value), ...) to select its turns."""
REDUNDANT_COLUMNS = [*COHORT_COLUMNS, "reason", "explained_by"]
_COUNTS = ("turns_before", "count_before", "turns_after", "count_after")
_PAIRED = ("_a", "_b", "_c", "_d")


@dataclass(frozen=True)
class Comparison:
    """Before vs after: rates per failure point, the cohorts that changed most, and (paired) the migration.

    `rates`: one row per failure point over all turns (CHANGE_COLUMNS, cohort
    "all turns"), q_value corrected over the six rows. `cohorts`: significant
    cohort x failure point changes, most significant first (COHORT_COLUMNS). `migration`:
    turns per (before label, after label), paired comparisons only.
    `redundant`: significant changes left out of `cohorts` (REDUNDANT_COLUMNS),
    with the reason and the cohort that explains them.
    """

    before: str
    after: str
    paired: bool
    rates: pd.DataFrame
    cohorts: pd.DataFrame
    migration: pd.DataFrame | None
    columns: tuple[str, ...]
    tested: int
    level: float
    threshold: float
    redundant: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REDUNDANT_COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        def records(table: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
                    for row in table.to_dict("records")]

        return {"before": self.before, "after": self.after, "paired": self.paired, "columns": list(self.columns),
                "tested": self.tested, "level": self.level, "threshold": self.threshold,
                "rates": records(self.rates), "cohorts": records(self.cohorts),
                "redundant": records(self.redundant),
                "migration": None if self.migration is None else
                {str(k): {str(c): int(v) for c, v in row.items()} for k, row in self.migration.iterrows()}}


def _hits(codes: np.ndarray, target: str) -> np.ndarray:
    return codes > 0 if target == ANY_DEFECT else codes == LABELS.index(target)


def _changes(cells: pd.DataFrame, paired: bool) -> pd.DataFrame:
    """Rate, interval and p-value per row of counts (n0, x0, n1, x1; and b, c, a, d when paired)."""
    n0, x0, n1, x1 = (cells[c].to_numpy(float) for c in ("turns_before", "count_before", "turns_after",
                                                          "count_after"))
    if paired:
        a, b, c, d = (cells[k].to_numpy(float) for k in ("_a", "_b", "_c", "_d"))
        low, high = newcombe_paired_interval(a, b, c, d)
        p = mcnemar_p(b, c)
    else:
        low, high = newcombe_interval(x0, n0, x1, n1)
        p = two_proportion_p(x0, n0, x1, n1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cells.assign(rate_before=x0 / n0, rate_after=x1 / n1, change=x1 / n1 - x0 / n0, low=low, high=high,
                            p_value=p)


def _cell_counts(
    frame: pd.DataFrame, before: np.ndarray, after: np.ndarray, side: np.ndarray | None,
    columns: Sequence[str], max_conditions: int, min_support: int,
) -> pd.DataFrame:
    """Counts per (cohort, target) for every cohort of 1..max_conditions columns with enough turns on each side.

    Unpaired: `side` says which turns are before (0) and after (1), and `before`
    = `after` holds each turn's one label. Paired: `side` is None, every turn is
    on both sides with its two labels.
    """
    rows: list[pd.DataFrame] = []
    coded = {c: cohort_codes(frame, c) for c in columns}
    sizes = {c: np.bincount(coded[c][0]) for c in columns}
    for k in range(1, max_conditions + 1):
        for combo in combinations(columns, k):
            stacked = np.stack([coded[c][0] for c in combo], axis=1)
            levels, cell = np.unique(stacked, axis=0, return_inverse=True)
            cell = cell.ravel()
            m = len(levels)
            # a combination with the same turns as one of its conditions alone adds nothing (domain = video
            # and intent = PlayVideo): same size and a subset, so the same turns
            size = np.bincount(cell, minlength=m)
            new = np.ones(m, dtype=bool) if k == 1 else np.all(
                [size != sizes[c][levels[:, j]] for j, c in enumerate(combo)], axis=0)
            for target in TARGETS:
                h0, h1 = _hits(before, target), _hits(after, target)
                if side is None:
                    n0 = n1 = np.bincount(cell, minlength=m)
                    x0, x1 = np.bincount(cell, h0, m), np.bincount(cell, h1, m)
                    extra = {"_a": np.bincount(cell, h0 & h1, m), "_b": np.bincount(cell, h0 & ~h1, m),
                             "_c": np.bincount(cell, ~h0 & h1, m), "_d": np.bincount(cell, ~h0 & ~h1, m)}
                else:
                    n0, n1 = np.bincount(cell, side == 0, m), np.bincount(cell, side == 1, m)
                    x0, x1 = np.bincount(cell, h0 & (side == 0), m), np.bincount(cell, h1 & (side == 1), m)
                    extra = {}
                keep = (n0 >= min_support) & (n1 >= min_support) & new
                if not keep.any():
                    continue
                conditions = [tuple((c, str(coded[c][1][v])) for c, v in zip(combo, level)) for level in levels[keep]]
                rows.append(pd.DataFrame({"cohort": [describe(c) for c in conditions], "_conditions": conditions,
                                          "failure_point": target, "turns_before": n0[keep],
                                          "count_before": x0[keep], "turns_after": n1[keep], "count_after": x1[keep],
                                          **{key: v[keep] for key, v in extra.items()}}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _compare(frame: pd.DataFrame, before: np.ndarray, after: np.ndarray, side: np.ndarray | None, *,
             names: tuple[str, str], columns: Sequence[str] | None, max_conditions: int, min_support: int,
             level: float) -> Comparison:
    if not 0.0 < level < 1.0:
        raise FpiError(f"level must be in (0, 1); got {level}")
    chosen = tuple(c for c in (COMPARE_COLUMNS if columns is None else columns) if c in frame.columns)
    paired = side is None
    overall = _changes(_overall_counts(before, after, side), paired)
    _, q = benjamini_hochberg(overall["p_value"].to_numpy(), level=level)
    rates = overall.assign(q_value=q)[CHANGE_COLUMNS]
    cells = _cell_counts(frame, before, after, side, chosen, max_conditions, min_support)
    redundant = pd.DataFrame(columns=REDUNDANT_COLUMNS)
    if cells.empty:
        found, tested, threshold = pd.DataFrame(columns=COHORT_COLUMNS), 0, 0.0
    else:
        cells = _changes(cells, paired)
        p = cells["p_value"].to_numpy()
        rejected, q = benjamini_hochberg(p, level=level)
        tested, threshold = len(cells), bh_cutoff(p, rejected)
        found = cells.assign(q_value=q).loc[rejected]
        found = found.assign(_size=-found["change"].abs()).sort_values(["p_value", "_size"], ignore_index=True)
        found, redundant = _drop_redundant(found, cells, paired=paired, threshold=threshold)
    migration = None
    if paired:
        migration = pd.crosstab(pd.Categorical(np.array(LABELS)[before], categories=LABELS),
                                pd.Categorical(np.array(LABELS)[after], categories=LABELS), dropna=False)
        migration.index.name, migration.columns.name = names
    return Comparison(before=names[0], after=names[1], paired=paired, rates=rates, cohorts=found, migration=migration,
                      columns=chosen, tested=tested, level=level, threshold=threshold, redundant=redundant)


def _interaction_p(child: pd.DataFrame, rest: pd.DataFrame, paired: bool) -> np.ndarray:
    """Two-sided p-value that a cohort's change differs from the change in the rest of its parent (Wald z).

    Unpaired: each change is a difference of two independent proportions.
    Paired: each change is the mean of per-turn differences (-1, 0, +1) over
    independent groups of turns. Where neither side varies, p is 1 for equal
    changes and 0 for different ones; an empty rest (no turn on a side) gives 1.
    """
    def change_and_variance(part: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n0, x0, n1, x1 = (part[c].to_numpy(float) for c in _COUNTS)
        with np.errstate(invalid="ignore", divide="ignore"):
            if paired:
                b, c = part["_b"].to_numpy(float), part["_c"].to_numpy(float)
                mean = (c - b) / n0
                return mean, ((b + c) / n0 - mean**2) / n0, n0 > 0
            p0, p1 = x0 / n0, x1 / n1
            return p1 - p0, p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1, (n0 > 0) & (n1 > 0)

    d_child, v_child, _ = change_and_variance(child)
    d_rest, v_rest, has_rest = change_and_variance(rest)
    diff, var = d_child - d_rest, v_child + v_rest
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * norm.sf(np.abs(diff) / np.sqrt(var))
    p = np.where(var > 0, p, np.where(np.isclose(diff, 0), 1.0, 0.0))
    return np.where(has_rest, p, 1.0)


def _drop_redundant(found: pd.DataFrame, cells: pd.DataFrame, *, paired: bool,
                    threshold: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, redundant): `found` (ranked) without the cohorts that say nothing more than another.

    A cohort of k >= 2 conditions whose change does not differ, at the BH
    cut-off, from the change in the rest of one of its parents (one condition
    dropped) is explained by that parent; a cohort with the same counts as one
    ranked above it is the same turns reached by other conditions (nlu_domain =
    video and nlu_intent = PlayVideo).
    """
    counts = [*_COUNTS, *(_PAIRED if paired else ())]
    by_name = cells.set_index(["cohort", "failure_point"])[counts]
    sizes = found["_conditions"].map(len).to_numpy()
    explained: list[str | None] = [None] * len(found)
    worst = np.full(len(found), -1.0)
    for d in range(int(sizes.max(initial=0))):
        rows = np.flatnonzero((sizes >= 2) & (sizes > d))
        if not len(rows):
            break
        child = found.iloc[rows]
        parents = [describe(c[:d] + c[d + 1:]) for c in child["_conditions"]]
        parent = by_name.reindex(list(zip(parents, child["failure_point"])))
        rest = pd.DataFrame(parent.to_numpy(float) - child[counts].to_numpy(float), columns=counts)
        p = _interaction_p(child[counts].reset_index(drop=True), rest, paired)
        for i, name, p_i in zip(rows, parents, p):
            if p_i > threshold and p_i > worst[i]:
                explained[i], worst[i] = name, p_i
    reasons: list[str] = []
    because: list[str | None] = []
    first: dict[tuple, str] = {}
    signatures = zip(found["failure_point"], *(found[c].astype(int) for c in counts))
    for cohort, signature, parent_name in zip(found["cohort"], signatures, explained):
        if parent_name is not None:
            reasons.append("the same change as the rest of")
            because.append(parent_name)
        elif signature in first:
            reasons.append("the same turns as")
            because.append(first[signature])
        else:
            first[signature] = str(cohort)
            reasons.append("")
            because.append(None)
    table = found.assign(reason=reasons, explained_by=because)
    table = table.rename(columns={"_conditions": "conditions"})
    kept = table.loc[table["reason"] == "", COHORT_COLUMNS].reset_index(drop=True)
    return kept, table.loc[table["reason"] != "", REDUNDANT_COLUMNS].reset_index(drop=True)


def _overall_counts(before: np.ndarray, after: np.ndarray, side: np.ndarray | None) -> pd.DataFrame:
    rows = []
    for target in TARGETS:
        h0, h1 = _hits(before, target), _hits(after, target)
        if side is None:
            rows.append({"cohort": "all turns", "failure_point": target, "turns_before": len(before),
                         "count_before": int(h0.sum()), "turns_after": len(after), "count_after": int(h1.sum()),
                         "_a": int((h0 & h1).sum()), "_b": int((h0 & ~h1).sum()), "_c": int((~h0 & h1).sum()),
                         "_d": int((~h0 & ~h1).sum())})
        else:
            rows.append({"cohort": "all turns", "failure_point": target, "turns_before": int((side == 0).sum()),
                         "count_before": int((h0 & (side == 0)).sum()), "turns_after": int((side == 1).sum()),
                         "count_after": int((h1 & (side == 1)).sum())})
    return pd.DataFrame(rows)


def compare_paired(
    frame: pd.DataFrame, before_column: str, after_column: str, *, names: tuple[str, str] | None = None,
    columns: Sequence[str] | None = None, max_conditions: int = 2, min_support: int = 100, level: float = 0.05,
) -> Comparison:
    """Two label columns on the same turns (e.g. two models' predictions): migration, rate changes, cohorts.

    Turns without a label in either column are left out.
    """
    before, after = failure_point_codes(frame, before_column), failure_point_codes(frame, after_column)
    keep = (before >= 0) & (after >= 0)
    if not keep.any():
        raise FpiError(f"no turn has a failure point in both '{before_column}' and '{after_column}'")
    return _compare(frame.loc[keep], before[keep], after[keep], None, names=names or (before_column, after_column),
                    columns=columns, max_conditions=max_conditions, min_support=min_support, level=level)


def compare_frames(
    before: pd.DataFrame, after: pd.DataFrame, *, label_column: str, names: tuple[str, str] = ("before", "after"),
    columns: Sequence[str] | None = None, max_conditions: int = 2, min_support: int = 100, level: float = 0.05,
) -> Comparison:
    """Two sets of turns (two uploads or two periods), each with its failure points in `label_column`."""
    codes = [failure_point_codes(part, label_column) for part in (before, after)]
    parts = [part.loc[c >= 0] for part, c in zip((before, after), codes)]
    for name, part in zip(names, parts):
        if part.empty:
            raise FpiError(f"{name} has no turn with a failure point in '{label_column}'")
    shared = [c for c in parts[0].columns if c in parts[1].columns]
    frame = pd.concat([p[shared] for p in parts], ignore_index=True)
    labels = np.concatenate([c[c >= 0] for c in codes])
    side = np.repeat([0, 1], [len(parts[0]), len(parts[1])])
    return _compare(frame, labels, labels, side, names=names, columns=columns, max_conditions=max_conditions,
                    min_support=min_support, level=level)


def moved_turns(
    frame: pd.DataFrame, before_column: str, after_column: str, *, moved_from: str | None = None,
    moved_to: str | None = None,
) -> pd.DataFrame:
    """The turns whose failure point differs between two label columns, optionally from and to given ones.

    Turns without a label in either column are left out, as in `compare_paired`.
    """
    for label in (moved_from, moved_to):
        if label is not None and label not in LABELS:
            raise FpiError(f"{label!r} is not a failure point; expected one of {', '.join(LABELS)}")
    before, after = failure_point_codes(frame, before_column), failure_point_codes(frame, after_column)
    keep = (before >= 0) & (after >= 0) & (before != after)
    if moved_from is not None:
        keep &= before == LABELS.index(moved_from)
    if moved_to is not None:
        keep &= after == LABELS.index(moved_to)
    return frame.loc[keep]


def split_frame(
    frame: pd.DataFrame, *, at: str | pd.Timestamp | None = None, column: str | None = None,
    before_value: str | None = None, after_value: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split one upload into before and after: at a date-time (before it / from it on), or by a column's values."""
    if (at is None) == (column is None):
        raise FpiError("split either at a date (at=...) or by a column (column=..., before_value=, after_value=)")
    if at is not None:
        if "timestamp" not in frame.columns:
            raise FpiError("splitting at a date needs a 'timestamp' column")
        try:
            cut = pd.Timestamp(at)
        except ValueError as exc:
            raise FpiError(f"cannot read {at!r} as a date-time: {exc}") from exc
        cut = cut.tz_localize("UTC") if cut.tz is None else cut.tz_convert("UTC")
        stamps = frame["timestamp"]
        stamps = stamps.dt.tz_localize("UTC") if getattr(stamps.dt, "tz", None) is None else stamps
        parts = frame.loc[stamps < cut], frame.loc[stamps >= cut]
        where = f"at {cut:%Y-%m-%d %H:%M} UTC"
    else:
        if column not in frame.columns:
            raise FpiError(f"no column {column!r} to split by")
        if before_value is None or after_value is None:
            raise FpiError(f"splitting by {column!r} needs the value before and the value after")
        values = frame[column].astype(str)
        parts = frame.loc[values == before_value], frame.loc[values == after_value]
        where = f"by {column} = {before_value} / {after_value}"
    for name, part in zip(("before", "after"), parts):
        if part.empty:
            raise FpiError(f"no turn {name} the split {where}")
    return parts


def format_comparison(result: Comparison, *, top: int = 15) -> str:
    """Rates per failure point, the migration matrix when paired, and the cohorts that changed most."""
    r = result
    head = r.rates.iloc[0]
    lines = [f"{r.before} ({int(head.turns_before):,} turns) -> {r.after} ({int(head.turns_after):,} turns)"
             + (", the same turns" if r.paired else ""), "",
             f"{'failure':<11}{'before':>9}{'after':>9}{'change':>9}{'95% interval':>20}{'p':>10}"]
    for row in r.rates.itertuples(index=False):
        lines.append(f"{row.failure_point:<11}{row.rate_before:>9.2%}{row.rate_after:>9.2%}{row.change:>+9.2%}"
                     f"{f'{row.low:+.2%} to {row.high:+.2%}':>20}{row.p_value:>10.2g}")
    lines.append("(" + ("exact McNemar test, Newcombe's paired interval" if r.paired
                        else "two-proportion z test, Newcombe's hybrid score interval") + ")")
    if r.migration is not None:
        lines += ["", f"migration (rows: {r.before}, columns: {r.after}):", r.migration.to_string()]
    lines += ["", f"cohorts ({', '.join(r.columns) or 'none'}; up to two conditions): {r.tested:,} cohort x failure "
                  f"point changes tested, false discovery rate {r.level:g} (Benjamini-Hochberg); "
                  f"{len(r.cohorts):,} significant"
                  + (f", {len(r.redundant):,} more that say nothing a simpler cohort does not" if len(r.redundant)
                     else "")]
    if not r.cohorts.empty:
        lines.append(f"{'failure':<11}{'before':>9}{'after':>9}{'change':>9}{'95% interval':>20}{'q':>10}  cohort")
        for row in r.cohorts.head(top).itertuples(index=False):
            lines.append(f"{row.failure_point:<11}{row.rate_before:>9.2%}{row.rate_after:>9.2%}{row.change:>+9.2%}"
                         f"{f'{row.low:+.2%} to {row.high:+.2%}':>20}{row.q_value:>10.2g}  {row.cohort}")
        if len(r.cohorts) > top:
            lines.append(f"... and {len(r.cohorts) - top:,} more (--json lists all)")
    return "\n".join(lines)
