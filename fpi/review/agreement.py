"""Agreement between analysts: overlap, kappa with intervals, consensus, disagreements and adjudication.

A share of the queue's turns (`in_overlap`, default 10%, chosen by a seeded hash
of the turn, so every session agrees on it) stays in the queue until two
analysts have judged it, each without seeing the other's verdict. On the turns
judged by two or more analysts (each analyst's newest verdict counts):

- two analysts in all: Cohen's kappa; more: Fleiss' kappa (the form that allows
  a different number of raters per turn). Per label, the same kappa on "this
  label or not". Intervals are percentile bootstraps over turns (seeded).
- each analyst against the consensus: on every turn they judged, the
  adjudicated label, else the label all the other analysts of that turn agree
  on; the share of agreement and Cohen's kappa with an interval.
- disagreements: turns whose analysts gave different labels, with the
  adjudication when there is one.

For retraining (`training_verdicts`), an adjudicated turn takes the adjudicated
label, a turn the analysts agree on takes its newest verdict, and a turn they
disagree on with no adjudication is held back: neither label teaches the model.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd

from fpi.data.schema import LABELS

__all__ = [
    "Agreement", "Kappa", "agreement", "analyst_labels", "cohen_kappa", "fleiss_kappa", "in_overlap",
    "reviewed_for", "training_verdicts",
]

TURN = ["dataset_fingerprint", "dialogue_id", "turn_index"]
BOOTSTRAP = 1000
LEVEL = 0.95


def in_overlap(dialogue_ids: Iterable[object], turn_indices: Iterable[object], *, share: float,
               seed: int = 0) -> np.ndarray:
    """Whether each turn is one of the `share` that a second analyst judges too (stable across sessions)."""
    out = []
    for dialogue, turn in zip(dialogue_ids, turn_indices):
        digest = hashlib.sha256(f"{seed}\x1f{dialogue}\x1f{int(turn)}".encode()).digest()
        out.append(int.from_bytes(digest[:8], "big") / 2.0**64 < share)
    return np.asarray(out, dtype=bool)


def analyst_labels(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Each analyst's newest verdict per turn: columns TURN + analyst, label, id."""
    if verdicts.empty:
        return pd.DataFrame(columns=[*TURN, "analyst", "label", "id"])
    newest = verdicts.sort_values("id").drop_duplicates([*TURN, "analyst"], keep="last")
    return newest[[*TURN, "analyst", "label", "id"]].reset_index(drop=True)


def reviewed_for(analyst: str, judged: pd.DataFrame, *, share: float, seed: int = 0) -> set[tuple[str, int]]:
    """The (dialogue_id, turn_index) keys that are done for `analyst` in the queue of one dataset.

    `judged` has one row per (dialogue_id, turn_index, analyst) with a verdict. A turn is done when the
    analyst judged it, or someone else did and it is not an overlap turn still waiting for its second analyst.
    """
    if judged.empty:
        return set()
    keys = judged.assign(dialogue_id=judged["dialogue_id"].astype("str"),
                         turn_index=judged["turn_index"].astype("int64"))
    grouped = keys.groupby(["dialogue_id", "turn_index"])["analyst"].agg(lambda a: set(a))
    index = grouped.index.to_frame(index=False)
    overlap = in_overlap(index["dialogue_id"], index["turn_index"], share=share, seed=seed)
    done = set()
    for (dialogue, turn), who, wants_second in zip(grouped.index, grouped.to_numpy(), overlap):
        if analyst in who or not wants_second or len(who) >= 2:
            done.add((str(dialogue), int(turn)))
    return done


# ---------------------------------------------------------------- kappa

def cohen_kappa(first: np.ndarray, second: np.ndarray, *, categories: int) -> float:
    """Cohen's kappa of two raters' category codes (0..categories-1); NaN when chance agreement is 1."""
    n = len(first)
    if n == 0:
        return float("nan")
    table = np.bincount(first * categories + second, minlength=categories * categories).reshape(
        categories, categories) / n
    observed = float(np.trace(table))
    expected = float(table.sum(axis=1) @ table.sum(axis=0))
    return float("nan") if expected >= 1.0 else (observed - expected) / (1.0 - expected)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of a (turns x categories) matrix of how many raters chose each category.

    Turns may have different numbers of raters (at least 2 each): per-turn agreement is
    sum n_ij (n_ij - 1) / (n_i (n_i - 1)); chance agreement uses the pooled category shares.
    """
    counts = np.asarray(counts, dtype=float)
    raters = counts.sum(axis=1)
    keep = raters >= 2
    counts, raters = counts[keep], raters[keep]
    if len(counts) == 0:
        return float("nan")
    observed = float(np.mean((counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))))
    shares = counts.sum(axis=0) / counts.sum()
    expected = float(np.sum(shares**2))
    return float("nan") if expected >= 1.0 else (observed - expected) / (1.0 - expected)


@dataclass(frozen=True)
class Kappa:
    value: float
    low: float
    high: float
    turns: int


def _interval(statistic, n: int, *, seed: int, draws: int = BOOTSTRAP) -> tuple[float, float]:
    """Percentile bootstrap over turns of `statistic(indices)`; NaN when it cannot be estimated."""
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(draws)])
    values = values[~np.isnan(values)]
    if len(values) < draws // 2:
        return float("nan"), float("nan")
    tail = (1 - LEVEL) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def _cohen(first: np.ndarray, second: np.ndarray, categories: int, seed: int) -> Kappa:
    value = cohen_kappa(first, second, categories=categories)
    low, high = _interval(lambda i: cohen_kappa(first[i], second[i], categories=categories), len(first), seed=seed)
    return Kappa(value, low, high, len(first))


def _fleiss(counts: np.ndarray, seed: int) -> Kappa:
    value = fleiss_kappa(counts)
    low, high = _interval(lambda i: fleiss_kappa(counts[i]), len(counts), seed=seed)
    return Kappa(value, low, high, len(counts))


# ---------------------------------------------------------------- the report

@dataclass(frozen=True)
class Agreement:
    method: str
    """"cohen" (two analysts), "fleiss" (more) or "none" (no turn judged by two analysts yet)."""
    analysts: tuple[str, ...]
    overall: Kappa
    per_label: pd.DataFrame
    """label, kappa, low, high, turns (overlap turns where at least one analyst chose the label)."""
    per_analyst: pd.DataFrame
    """analyst, turns, agreement (share equal to the consensus), kappa, low, high."""
    disagreements: pd.DataFrame
    """TURN, verdicts ("analyst: label; ..."), labels, pairs ([(analyst, label), ...]), adjudicated (label or
    None), adjudicated_by, status ("open" or "adjudicated")."""
    overlap_turns: int

    def to_dict(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
                    for row in frame.to_dict(orient="records")]
        overall = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in asdict(self.overall).items()}
        return {"method": self.method, "analysts": list(self.analysts), "overlap_turns": self.overlap_turns,
                "overall": overall, "per_label": records(self.per_label),
                "per_analyst": records(self.per_analyst), "disagreements": records(self.disagreements)}


def _latest_adjudications(adjudications: pd.DataFrame) -> pd.DataFrame:
    if adjudications.empty:
        return pd.DataFrame(columns=[*TURN, "label", "analyst"])
    return adjudications.sort_values("id").drop_duplicates(TURN, keep="last")[[*TURN, "label", "analyst"]]


def agreement(verdicts: pd.DataFrame, adjudications: pd.DataFrame | None = None, *, seed: int = 0) -> Agreement:
    """How far the analysts agree, from every verdict (`VerdictStore.all()`) and the adjudications."""
    codes = {label: i for i, label in enumerate(LABELS)}
    k = len(LABELS)
    per = analyst_labels(verdicts)
    per = per.assign(code=per["label"].map(codes))
    raters = per.groupby(TURN)["analyst"].transform("nunique") if not per.empty else pd.Series(dtype=int)
    shared = per[raters >= 2] if not per.empty else per
    analysts = tuple(sorted(shared["analyst"].unique())) if not shared.empty else ()
    adjudicated = _latest_adjudications(adjudications if adjudications is not None else pd.DataFrame())
    empty_label = pd.DataFrame({"label": list(LABELS), "kappa": np.nan, "low": np.nan, "high": np.nan, "turns": 0})
    empty_analyst = pd.DataFrame(columns=["analyst", "turns", "agreement", "kappa", "low", "high"])
    nothing = Kappa(float("nan"), float("nan"), float("nan"), 0)
    if shared.empty:
        return Agreement("none", (), nothing, empty_label, empty_analyst, _disagreements(per, adjudicated), 0)
    turns = shared[TURN].drop_duplicates().reset_index(drop=True)
    if len(analysts) == 2:
        method = "cohen"
        wide = shared.pivot_table(index=TURN, columns="analyst", values="code", aggfunc="first").dropna()
        first, second = (wide[a].to_numpy(dtype=int) for a in analysts)
        overall = _cohen(first, second, k, seed)
        rows = []
        for label, code in codes.items():
            a, b = (first == code).astype(int), (second == code).astype(int)
            kappa = _cohen(a, b, 2, seed)
            rows.append({"label": label, "kappa": kappa.value, "low": kappa.low, "high": kappa.high,
                         "turns": int(np.sum((a + b) > 0))})
    else:
        method = "fleiss"
        counts = pd.crosstab([shared[c] for c in TURN], shared["code"]).reindex(columns=range(k), fill_value=0)
        matrix = counts.to_numpy()
        overall = _fleiss(matrix, seed)
        rows = []
        for label, code in codes.items():
            binary = np.column_stack([matrix[:, code], matrix.sum(axis=1) - matrix[:, code]])
            kappa = _fleiss(binary, seed)
            rows.append({"label": label, "kappa": kappa.value, "low": kappa.low, "high": kappa.high,
                         "turns": int(np.sum(matrix[:, code] > 0))})
    return Agreement(method, analysts, overall, pd.DataFrame(rows),
                     _against_consensus(shared, adjudicated, k, seed), _disagreements(per, adjudicated), len(turns))


def _against_consensus(shared: pd.DataFrame, adjudicated: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """Each analyst against the adjudicated label, else the label every other analyst of the turn gave."""
    codes = {label: i for i, label in enumerate(LABELS)}
    final = {tuple(r[:3]): codes[r[3]] for r in adjudicated[[*TURN, "label"]].itertuples(index=False)}
    by_turn: dict[tuple, dict[str, int]] = {}
    for row in shared[[*TURN, "analyst", "code"]].itertuples(index=False):
        by_turn.setdefault(tuple(row[:3]), {})[row[3]] = int(row[4])
    rows = []
    for analyst in sorted(shared["analyst"].unique()):
        own, consensus = [], []
        for turn, given in by_turn.items():
            if analyst not in given:
                continue
            others = {code for who, code in given.items() if who != analyst}
            target = final.get(turn, next(iter(others)) if len(others) == 1 else None)
            if target is not None:
                own.append(given[analyst])
                consensus.append(target)
        first, second = np.asarray(own, dtype=int), np.asarray(consensus, dtype=int)
        kappa = _cohen(first, second, k, seed)
        rows.append({"analyst": analyst, "turns": len(first),
                     "agreement": float(np.mean(first == second)) if len(first) else float("nan"),
                     "kappa": kappa.value, "low": kappa.low, "high": kappa.high})
    return pd.DataFrame(rows, columns=["analyst", "turns", "agreement", "kappa", "low", "high"])


def _disagreements(per: pd.DataFrame, adjudicated: pd.DataFrame) -> pd.DataFrame:
    columns = [*TURN, "verdicts", "labels", "pairs", "adjudicated", "adjudicated_by", "status"]
    if per.empty:
        return pd.DataFrame(columns=columns)
    split = per.groupby(TURN).filter(lambda g: g["label"].nunique() > 1)
    if split.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for turn, group in split.sort_values("id").groupby(TURN, sort=False):
        rows.append({**dict(zip(TURN, turn)),
                     "verdicts": "; ".join(f"{a}: {l}" for a, l in zip(group["analyst"], group["label"])),
                     "labels": ", ".join(sorted(group["label"].unique())),
                     "pairs": list(zip(group["analyst"], group["label"]))})
    out = pd.DataFrame(rows).merge(adjudicated.rename(columns={"label": "adjudicated", "analyst": "adjudicated_by"}),
                                   on=TURN, how="left")
    out["status"] = np.where(out["adjudicated"].notna(), "adjudicated", "open")
    out = out.astype({"adjudicated": "object", "adjudicated_by": "object"})
    out = out.where(out.notna(), None)
    return out.sort_values(["status", "dialogue_id", "turn_index"], ascending=[False, True, True])[columns].reset_index(
        drop=True)


def training_verdicts(verdicts: pd.DataFrame, adjudications: pd.DataFrame | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the verdict that teaches the model per turn, the turns held back awaiting adjudication).

    From every verdict (`VerdictStore.all()`) and the adjudications: an adjudicated turn takes the
    adjudicated label (as its newest verdict, relabelled, by the adjudicator); a turn whose analysts
    agree takes its newest verdict; a turn they disagree on without adjudication is held back. The
    first frame has the store's verdict columns, one row per (dataset, dialogue, turn), like `latest()`.
    """
    if verdicts.empty:
        return verdicts.copy(), pd.DataFrame(columns=TURN)
    per = analyst_labels(verdicts)
    labels_per_turn = per.groupby(TURN)["label"].nunique()
    newest = verdicts.sort_values("id").drop_duplicates(TURN, keep="last").set_index(TURN)
    adjudicated = _latest_adjudications(adjudications if adjudications is not None else pd.DataFrame()).set_index(TURN)
    final = newest.copy()
    decided = final.index.isin(adjudicated.index)
    if decided.any():
        chosen = adjudicated.reindex(final.index[decided])
        final.loc[decided, "label"] = chosen["label"].to_numpy()
        final.loc[decided, "analyst"] = chosen["analyst"].to_numpy()
    split = labels_per_turn.reindex(final.index).to_numpy() > 1
    held = split & ~decided
    kept = final[~held].reset_index()[list(verdicts.columns)].sort_values("id").reset_index(drop=True)
    return kept, final[held].reset_index()[TURN].reset_index(drop=True)
