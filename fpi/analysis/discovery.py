"""Cohort discovery: which cohorts fail more than the rest, tested, corrected and ranked.

Why it is built this way:
- A cohort is compared with the turns OUTSIDE it (one-sided Fisher exact
  test). Against the overall rate it would be compared with a sample that
  contains it: a cohort of 40% of the turns pulls the overall rate towards
  itself, and the test has no valid null distribution. Inside vs outside is the
  two-sample question "is this failure more likely here than elsewhere".
  Lift is still reported against the overall rate, which is what people read.
- Every (cohort, failure point) pair tested goes into one Benjamini-Hochberg
  correction (false discovery rate `level`); `method="by"` gives
  Benjamini-Yekutieli, valid under any dependence between the tests.
- A cohort with k >= 2 conditions is kept only if it is "productive": its rate
  is significantly above the rest of EACH of its k parents (one condition
  dropped), at the same BH cut-off. `locale = en-IN and device_type = car and
  app_version = 4.12` is dropped when 4.12 is no worse than the rest of en-IN
  cars; it is listed in `Discovery.redundant` with the parent that explains it.
- Ranking: by the lower end of the lift (Wilson lower bound / overall rate),
  a conservative effect size: a small cohort needs a large, well-supported
  excess to rank high, and a huge cohort cannot rank high on significance alone.
- A failure point is tested only in cohorts defined before its stage ran
  (`upstream_only`): a stage's own outputs (`nlu_domain` for `nlu`) are its
  symptoms, not a group of users or requests.
- Intervals and tests treat turns as independent. Turns of one dialogue are
  correlated (a noisy car stays noisy), so for dialogue-level columns (device,
  locale) the intervals are somewhat narrow.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from fpi.analysis.dashboard import MISSING
from fpi.data.schema import DEFECT_LABELS, LABELS, PREDICTED_COLUMN, STAGE_LABEL, STAGES, stage_of
from fpi.errors import NotLabelledError
from fpi.analysis.stats import CORRECTIONS, benjamini_hochberg, bh_cutoff, fisher_greater, wilson_interval
from fpi.analysis.cohorts import (
    ANY_DEFECT, Conditions, candidate_columns, describe, failure_point_codes, target_counts,
)

__all__ = ["Discovery", "discover_cohorts", "format_discovery"]

_TARGET_STAGE: dict[str, int] = {ANY_DEFECT: 0, **{STAGE_LABEL[s]: i for i, s in enumerate(STAGES)}}
"""Pipeline position of the stage each target fails at; any defect may start at wake."""


def _stage_index(column: str) -> int:
    """Position of the stage that wrote `column` (by prefix), -1 for a column of no stage."""
    stage = stage_of(column)
    return -1 if stage is None else STAGES.index(stage)


def _check_targets(targets: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(DEFECT_LABELS) if targets is None else tuple(targets)
    unknown = [t for t in chosen if t != ANY_DEFECT and t not in LABELS]
    if unknown or not chosen:
        raise ValueError(f"targets must be labels from {LABELS} or {ANY_DEFECT!r}; got {list(chosen)}")
    return chosen


@dataclass(frozen=True)
class Discovery:
    """Cohorts whose rate of a failure point is significantly above the rest of the turns.

    `cohorts`, ranked best first (columns: cohort, conditions, size, failure_point,
    turns, count, rate, low, high, overall_rate, rest_rate, lift, lift_low,
    p_value, q_value); `redundant`: significant cohorts left out, with `reason`
    ("no worse than the rest of" a parent, or "the same turns as" a listed
    cohort) and `explained_by` (that cohort's conditions); `overall`: per
    failure point, its turns, count and rate over all turns.
    """

    cohorts: pd.DataFrame
    redundant: pd.DataFrame
    overall: pd.DataFrame
    columns: tuple[str, ...]
    skipped: Mapping[str, str]
    """Columns not used as cohorts, with the reason."""
    turns: int
    tested: int
    """Number of (cohort, failure point) hypotheses tested, i.e. the multiple-testing family."""
    level: float
    threshold: float
    """The largest raw p-value the correction let through (0 when nothing was significant)."""
    label_column: str
    method: str = "bh"
    """The correction: "bh" (Benjamini-Hochberg) or "by" (Benjamini-Yekutieli)."""
    seconds: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: cohorts as records, conditions as {column: value}."""
        def records(table: pd.DataFrame) -> list[dict[str, Any]]:
            out = []
            for row in table.to_dict("records"):
                row["conditions"] = dict(row["conditions"])
                if "explained_by" in row:
                    row["explained_by"] = dict(row["explained_by"])
                out.append({k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
            return out

        return {
            "label_column": self.label_column, "turns": self.turns, "tested": self.tested, "level": self.level,
            "correction": CORRECTIONS[self.method],
            "threshold": self.threshold, "columns": list(self.columns), "skipped": dict(self.skipped),
            "overall": self.overall.to_dict("records"), "cohorts": records(self.cohorts),
            "redundant": records(self.redundant), "seconds": dict(self.seconds),
        }


RESULT_COLUMNS = ["cohort", "conditions", "size", "failure_point", "turns", "count", "rate", "low", "high",
                  "overall_rate", "rest_rate", "lift", "lift_low", "p_value", "q_value"]


@dataclass
class _Cells:
    """Supported cells of the lattice: which columns, which level codes, support and label counts."""

    combos: list[tuple[int, ...]] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)
    support: list[np.ndarray] = field(default_factory=list)
    counts: list[np.ndarray] = field(default_factory=list)

    def add(self, combo: tuple[int, ...], codes: np.ndarray, support: np.ndarray, counts: np.ndarray) -> None:
        self.combos.append(combo)
        self.codes.append(codes)
        self.support.append(support)
        self.counts.append(counts)


def count_lattice(
    codes: list[np.ndarray],
    allowed: list[np.ndarray],
    labels: np.ndarray,
    *,
    max_conditions: int,
    min_support: int,
) -> _Cells:
    """Label counts of every conjunction of up to `max_conditions` conditions with support >= `min_support`.

    `codes[j]` are column j's level codes per turn, `allowed[j]` which of its
    levels may be a condition. Depth-first over column combinations in index
    order, so each conjunction is counted once. A child is counted only on the
    turns of supported cells of its parent (Apriori: a child's support never
    exceeds its parent's), as one `np.bincount` over (parent cell, level, label) keys.
    """
    k_labels = len(LABELS)
    levels = [len(a) for a in allowed]
    keyed = [c * k_labels + labels for c in codes]  # level * K + label: one gather and one multiply-add per child
    cells = _Cells()

    def expand(combo: tuple[int, ...], rows: np.ndarray | None, parent: np.ndarray | None,
               parent_codes: np.ndarray) -> None:
        for j in range(combo[-1] + 1 if combo else 0, len(codes)):
            width = levels[j] * k_labels
            part = keyed[j] if rows is None else keyed[j][rows]
            key = part if parent is None else parent * width + part
            n_parent = len(parent_codes)
            table = np.bincount(key, minlength=n_parent * width).reshape(n_parent * levels[j], k_labels)
            support = table.sum(axis=1)
            kept = np.flatnonzero((support >= min_support) & np.tile(allowed[j], n_parent))
            if kept.size == 0:
                continue
            child_codes = np.column_stack([parent_codes[kept // levels[j]], kept % levels[j]])
            cells.add((*combo, j), child_codes, support[kept], table[kept])
            if len(combo) + 1 < max_conditions:
                lookup = np.full(n_parent * levels[j], -1, dtype=np.int64)
                lookup[kept] = np.arange(kept.size)
                cell = lookup[key // k_labels]
                inside = cell >= 0
                if inside.all():
                    expand((*combo, j), rows, cell, child_codes)
                else:
                    base = np.flatnonzero(inside) if rows is None else rows[inside]
                    expand((*combo, j), base, cell[inside], child_codes)

    expand((), None, None, np.zeros((1, 0), dtype=np.int64))
    return cells


def discover_cohorts(
    frame: pd.DataFrame,
    *,
    label_column: str = PREDICTED_COLUMN,
    columns: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    max_conditions: int = 3,
    min_support: int = 200,
    max_levels: int = 50,
    level: float = 0.05,
    method: str = "bh",
    min_lift: float = 1.2,
    include_missing: bool = False,
    upstream_only: bool = True,
    confidence: float = 0.95,
) -> Discovery:
    """Conjunctions of up to `max_conditions` column = value conditions whose rate of a failure point
    is significantly above the rate outside them.

    Every cohort with >= `min_support` turns is tested for every target (the
    defect labels by default; `"defect"` = any) with a one-sided Fisher exact
    test against the turns outside it; all tests are corrected together
    (`method` "bh" or "by", false discovery rate `level`). The significant
    cohorts with lift >= `min_lift` that are productive over each parent are
    ranked by the lower end of their lift (Wilson lower bound / overall rate),
    then p-value, then fewer conditions. Cohorts with exactly the same turn and
    label counts (`nlu_domain = video` and `nlu_intent = PlayVideo` when the
    one implies the other) are listed once, the simplest first.

    With `upstream_only`, a failure point is only tested in cohorts defined by
    what was known before its stage ran: a column a stage wrote (`nlu_domain`,
    `er_entity`: by their stage prefix) is a condition only for later stages'
    failures. Where NLU failed, `nlu_domain = video` is the symptom, not the
    cohort; for ER failures it is a fair place to look. Columns of no stage
    (device, locale, app version) are conditions for every failure point.
    An empty cell is not a condition unless `include_missing`: a missing NLU
    domain is the symptom of an empty transcript, not a group of users.
    """
    if max_conditions < 1:
        raise ValueError(f"max_conditions must be at least 1, got {max_conditions}")
    if min_support < 1:
        raise ValueError(f"min_support must be at least 1, got {min_support}")
    if method not in CORRECTIONS or not 0.0 < level < 1.0:
        raise ValueError(f"method must be one of {list(CORRECTIONS)} and level in (0, 1); got {method!r}, {level}")
    targets = _check_targets(targets)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    used, skipped = candidate_columns(frame, max_levels=max_levels, label_column=label_column, columns=columns)
    labels = failure_point_codes(frame, label_column)
    labelled = labels >= 0
    if not labelled.any():
        raise NotLabelledError(f"no turn has a value in '{label_column}' to look for cohorts in")
    level_names: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    allowed: list[np.ndarray] = []
    for name in used:
        series = frame[name]
        code, uniques = pd.factorize(series[labelled] if not labelled.all() else series, use_na_sentinel=True)
        level_names.append(np.append(np.asarray(uniques, dtype=object).astype(str), MISSING))
        codes.append(np.where(code < 0, len(uniques), code).astype(np.int64))
        allowed.append(np.append(np.ones(len(uniques), dtype=bool), include_missing))
    y = labels[labelled]
    seconds["factorise"] = time.perf_counter() - started

    t0 = time.perf_counter()
    cells = count_lattice(codes, allowed, y, max_conditions=max_conditions, min_support=min_support)
    seconds["count"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    total = int(y.size)
    totals = target_counts(np.bincount(y, minlength=len(LABELS)), targets)
    overall = pd.DataFrame({"failure_point": list(targets), "turns": total, "count": totals, "rate": totals / total})
    testable = np.flatnonzero(totals > 0)
    if not cells.combos or testable.size == 0:
        empty = pd.DataFrame(columns=RESULT_COLUMNS)
        return Discovery(cohorts=empty, redundant=empty.assign(reason=[], explained_by=[]), overall=overall,
                         columns=used, skipped=skipped, turns=total, tested=0, level=level, threshold=0.0,
                         label_column=label_column, method=method, seconds=seconds)

    # One hypothesis per (cell, target)
    cell_combo = np.concatenate([np.full(len(s), i) for i, s in enumerate(cells.support)])
    cell_offsets = np.cumsum([0, *(len(s) for s in cells.support)])
    support = np.concatenate(cells.support)
    counts = np.concatenate(cells.counts)
    target_hits = target_counts(counts, targets)
    n_cells = len(support)
    cell_idx = np.repeat(np.arange(n_cells), testable.size)
    target_idx = np.tile(testable, n_cells)
    if upstream_only:
        column_stage = [_stage_index(name) for name in used]
        combo_stage = np.array([max(column_stage[c] for c in combo) for combo in cells.combos])
        target_stage = np.array([_TARGET_STAGE[t] for t in targets])
        valid = combo_stage[cell_combo[cell_idx]] < target_stage[target_idx]
        cell_idx, target_idx = cell_idx[valid], target_idx[valid]
    hits = target_hits[cell_idx, target_idx]
    size = support[cell_idx]
    pool_hits = totals[target_idx]
    p_value = fisher_greater(hits, size, pool_hits, total)
    rejected, q_value = benjamini_hochberg(p_value, level=level, method=method)
    threshold = bh_cutoff(p_value, rejected)
    seconds["test"] = time.perf_counter() - t0

    t0 = time.perf_counter()

    def conditions_of(cell: int) -> Conditions:
        combo_id = int(cell_combo[cell])
        row = cells.codes[combo_id][cell - cell_offsets[combo_id]]
        return tuple((used[c], str(level_names[c][v])) for c, v in zip(cells.combos[combo_id], row))

    overall_rate = pool_hits / total
    lift = hits / size / overall_rate
    chosen = np.flatnonzero(rejected & (lift >= min_lift))
    conditions = [conditions_of(int(cell_idx[r])) for r in chosen]

    # Productivity: a child must beat the rest of every parent, at the same cut-off.
    explained: list[Conditions | None] = [None] * len(chosen)
    explained_p = np.full(len(chosen), -1.0)
    pairs = [(i, cond[:d] + cond[d + 1:]) for i, cond in enumerate(conditions) if len(cond) > 1
             for d in range(len(cond))]
    if pairs:
        index = {conditions_of(c): c for c in range(n_cells) if len(cells.combos[cell_combo[c]]) < max_conditions}
        child = np.array([i for i, _ in pairs])
        parent = np.array([index[p] for _, p in pairs])
        rows = chosen[child]
        p_parent = fisher_greater(hits[rows], size[rows], target_hits[parent, target_idx[rows]], support[parent])
        for i, (_, cond), p in zip(child, pairs, p_parent):
            if p > threshold and p > explained_p[i]:
                explained[i], explained_p[i] = cond, p
    low, high = wilson_interval(hits[chosen], size[chosen], confidence=confidence)
    table = pd.DataFrame({
        "cohort": [describe(c) for c in conditions],
        "conditions": conditions,
        "size": [len(c) for c in conditions],
        "failure_point": [targets[int(t)] for t in target_idx[chosen]],
        "turns": size[chosen].astype(np.int64),
        "count": hits[chosen].astype(np.int64),
        "rate": hits[chosen] / size[chosen],
        "low": low,
        "high": high,
        "overall_rate": overall_rate[chosen],
        "rest_rate": (pool_hits[chosen] - hits[chosen]) / np.maximum(total - size[chosen], 1),
        "lift": lift[chosen],
        "lift_low": low / overall_rate[chosen],
        "p_value": p_value[chosen],
        "q_value": q_value[chosen],
    }, columns=RESULT_COLUMNS)
    table["explained_by"] = explained
    # Same target, support and label counts: the same turns reached by other conditions.
    table["signature"] = [(int(t), *counts[cell_idx[r]].tolist()) for t, r in zip(target_idx[chosen], chosen)]
    table = table.sort_values(["lift_low", "p_value", "size"], ascending=[False, True, True], kind="stable",
                              ignore_index=True)
    reasons: list[str] = []
    because: list[Conditions | None] = []
    first: dict[tuple[int, ...], Conditions] = {}
    for cond, parent_cond, sig in zip(table["conditions"], table["explained_by"], table["signature"]):
        if parent_cond is not None:
            reasons.append("no worse than the rest of")
            because.append(parent_cond)
        elif sig in first:
            reasons.append("the same turns as")
            because.append(first[sig])
        else:
            first[sig] = cond
            reasons.append("")
            because.append(None)
    table = table.drop(columns=["signature", "explained_by"]).assign(reason=reasons, explained_by=because)
    redundant = table[table["reason"] != ""].reset_index(drop=True)
    kept = table[table["reason"] == ""].drop(columns=["reason", "explained_by"]).reset_index(drop=True)
    seconds["rank"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    return Discovery(cohorts=kept, redundant=redundant, overall=overall, columns=used, skipped=skipped, turns=total,
                     tested=int(hits.size), level=level, threshold=threshold, label_column=label_column,
                     method=method, seconds=seconds)


def format_discovery(discovery: Discovery, *, top: int = 20) -> str:
    """A text table of the top cohorts, with the family size and correction."""
    d = discovery
    lines = [f"{d.turns:,} turns, failure point from '{d.label_column}'; cohort columns: "
             + (", ".join(d.columns) or "none")]
    if d.skipped:
        lines.append("skipped: " + "; ".join(f"{c} ({why})" for c, why in d.skipped.items()))
    lines.append(f"{d.tested:,} cohort x failure point hypotheses tested, false discovery rate {d.level:g} "
                 f"({CORRECTIONS[d.method]}); {len(d.cohorts):,} significant cohorts"
                 + (f", {len(d.redundant):,} more explained by a parent" if len(d.redundant) else ""))
    if d.cohorts.empty:
        lines.append("no cohort fails significantly more often than the rest")
        return "\n".join(lines)
    lines += ["", f"{'#':>3}  {'failure':<10}{'turns':>9}{'rate':>8}{'95% interval':>17}{'overall':>9}"
                  f"{'lift':>7}{'lift low':>9}{'q':>10}  cohort"]
    for i, row in enumerate(d.cohorts.head(top).itertuples(index=False), start=1):
        lines.append(f"{i:>3}  {row.failure_point:<10}{row.turns:>9,}{row.rate:>8.1%}"
                     f"{f'{row.low:.1%}-{row.high:.1%}':>17}{row.overall_rate:>9.1%}{row.lift:>7.2f}"
                     f"{row.lift_low:>9.2f}{row.q_value:>10.2g}  {row.cohort}")
    if len(d.cohorts) > top:
        lines.append(f"... and {len(d.cohorts) - top:,} more (--json lists all)")
    return "\n".join(lines)
