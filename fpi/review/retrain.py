"""Retraining from verdicts: the traces' own labels plus analysts' verdicts, a candidate, a fair comparison.

Verdicts win over labels in the data. How the candidate is made is chosen by
the data (`fpi.review.adapt.select_strategy`): the starting model unchanged, boosted
further from its own scores, a small model trained on the labelled turns alone,
or the full training recipe, each scored by grouped (by dialogue)
cross-validation on the labelled turns; the best is refit on all of them.

The comparison with the active model uses the same cross-validation: every
labelled turn is predicted by a fold model that never saw its dialogue, and the
active model is scored on those turns. (The winner is picked on the
same folds, so its figure is slightly optimistic when several strategies are
close; `keep` is always among them, so a candidate the data does not support
is the starting model itself.)

Fewer than `MIN_LABELLED_TURNS` labelled turns is a `NotLabelledError`, not a junk model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fpi.review.adapt import ADAPT_STRATEGIES, LABEL_SOURCE, RetrainConfig, continue_training, select_strategy
from fpi.errors import FpiError, ModelError, NotLabelledError, Problem, TraceError
from fpi.model.evaluate import evaluate_predictions
from fpi.model.estimator import FailurePointModel
from fpi.model.training import MIN_LABELLED_TURNS
from fpi.data.schema import LABEL_COLUMN, LABELS

__all__ = [
    "LABEL_SOURCE", "STRATEGIES", "RetrainConfig", "RetrainResult", "continue_training", "labels_with_verdicts",
    "read_verdicts", "retrain_from_verdicts",
]

STRATEGIES: tuple[str, ...] = ("auto", *ADAPT_STRATEGIES)


@dataclass(frozen=True)
class RetrainResult:
    candidate: FailurePointModel
    comparison: dict[str, Any]
    """`evaluate_predictions` report with systems "active" and "candidate", on the held-out turns:
    every labelled turn, each predicted by a cross-validation fold model that did not see its dialogue."""
    heldout_turns: int
    heldout_verdicts: int
    training_turns: int
    """Labelled turns the candidate learnt from (all of them: it is refit after the cross-validation)."""
    verdict_turns: int
    """How many of all labelled turns carry a verdict."""
    strategy: str
    """The strategy chosen (e.g. "verdicts@120", "continue", "keep")."""
    strategy_scores: dict[str, float] = field(default_factory=dict)
    """Cross-validated macro-F1 of every strategy tried."""
    folds: int = 0
    upload_proba: np.ndarray | None = None
    """The candidate's probabilities on every turn of `frame`, in its order, when training computed them."""


def labels_with_verdicts(frame: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """`frame` with `failure_point` from the verdict where a turn has one, else from the data.

    `verdicts` has at most one row per (dialogue_id, turn_index), e.g.
    `VerdictStore.latest(dataset=...)` or `latest_by_turn()`; verdicts on turns
    the frame lacks are ignored. Adds `label_source`: "verdict", "data" or empty.
    """
    if not verdicts.empty and verdicts.duplicated(["dialogue_id", "turn_index"]).any():
        raise FpiError("labels_with_verdicts needs at most one verdict per (dialogue_id, turn_index); "
                       "pass VerdictStore.latest(dataset=...) or latest_by_turn()")
    out = frame.copy()
    data_labels = out[LABEL_COLUMN] if LABEL_COLUMN in out.columns else pd.Series(pd.NA, index=out.index, dtype="str")
    keys = out[["dialogue_id", "turn_index"]].astype({"dialogue_id": "str", "turn_index": "int64"})
    picked = verdicts[["dialogue_id", "turn_index", "label"]].astype(
        {"dialogue_id": "str", "turn_index": "int64", "label": "str"})
    verdict = keys.merge(picked, on=["dialogue_id", "turn_index"], how="left")["label"].to_numpy(dtype=object)
    has_verdict = pd.notna(verdict)
    labels = np.where(has_verdict, verdict, data_labels.to_numpy(dtype=object))
    out[LABEL_COLUMN] = pd.array(labels, dtype="str")
    source = np.where(has_verdict, "verdict", np.where(data_labels.notna().to_numpy(), "data", None))
    out[LABEL_SOURCE] = pd.array(source, dtype="str")
    return out


def read_verdicts(path: str | Path) -> pd.DataFrame:
    """Verdicts from a CSV or Parquet file: one row per (dialogue_id, turn_index) with its label.

    Reads a plain table (dialogue_id, turn_index, label), the verdicts table of
    `fpi verdicts export` (the newest verdict per turn counts, by `created_at`,
    else the last row) and its traces export (`verdict_label`; turns without a
    verdict are skipped). Raises `TraceError` naming the file, columns and rows
    (1-based as a spreadsheet shows them) of every problem.
    """
    path = Path(path)
    try:
        table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(
            path, dtype={"dialogue_id": "str"}, keep_default_na=True, encoding="utf-8-sig")
    except FileNotFoundError:
        raise TraceError([Problem(None, "no such file", "missing_file")], source=str(path)) from None
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise TraceError([Problem(None, f"not a readable CSV or Parquet file ({exc})", "unreadable")],
                         source=str(path)) from None
    label = "label" if "label" in table.columns else "verdict_label" if "verdict_label" in table.columns else None
    missing = [c for c in ("dialogue_id", "turn_index") if c not in table.columns] + (
        ["label"] if label is None else [])
    if missing:
        raise TraceError([Problem(c, "missing required column", "missing_column",
                                  hint="a verdicts file has dialogue_id, turn_index and label (or the verdict_label "
                                       "of `fpi verdicts export --traces`)") for c in missing], source=str(path))
    table = table.assign(_row=np.arange(len(table)) + 2)
    if label == "verdict_label":
        table = table[table[label].notna()]
    problems = []
    for column in ("dialogue_id", label):
        empty = table[column].isna() | (table[column].astype("str").str.strip() == "")
        if empty.any():
            rows = tuple(int(r) for r in table.loc[empty, "_row"])
            problems.append(Problem(column, "empty value", "empty", rows=rows, count=len(rows)))
    turn = pd.to_numeric(table["turn_index"], errors="coerce")
    bad_turn = turn.isna() | (turn < 0) | (turn != turn.round())
    if bad_turn.any():
        rows = tuple(int(r) for r in table.loc[bad_turn, "_row"])
        problems.append(Problem("turn_index", "not a whole number >= 0", "not_integer", rows=rows, count=len(rows),
                                examples=tuple(str(v) for v in table.loc[bad_turn, "turn_index"].head(3))))
    values = _unquote(table[label].astype("str").str.strip())
    unknown = table[label].notna() & ~values.isin(LABELS)
    if unknown.any():
        rows = tuple(int(r) for r in table.loc[unknown, "_row"])
        problems.append(Problem(label, "unknown label", "unknown_label", rows=rows, count=len(rows),
                                examples=tuple(dict.fromkeys(values[unknown]))[:3],
                                hint=f"expected one of {', '.join(LABELS)}"))
    if problems:
        raise TraceError(problems, source=str(path))
    out = pd.DataFrame({"dialogue_id": _unquote(table["dialogue_id"].astype("str")).to_numpy(),
                        "turn_index": turn.astype("int64").to_numpy(), "label": values.to_numpy()})
    if "created_at" in table.columns:
        out = out.iloc[np.argsort(pd.to_datetime(table["created_at"], utc=True, errors="coerce").to_numpy(),
                                  kind="stable")]
    return out.drop_duplicates(["dialogue_id", "turn_index"], keep="last").reset_index(drop=True)


def _unquote(values: pd.Series) -> pd.Series:
    """Undo the quote a CSV export puts before text that a spreadsheet would run as a formula."""
    from fpi.data.write import FORMULA_PREFIXES

    quoted = values.str.startswith("'") & values.str[1:].str.startswith(FORMULA_PREFIXES)
    return values.where(~quoted.fillna(False).astype(bool), values.str[1:])


def retrain_from_verdicts(
    frame: pd.DataFrame,
    verdicts: pd.DataFrame,
    *,
    active: FailurePointModel,
    base: FailurePointModel | None = None,
    config: RetrainConfig | None = None,
) -> RetrainResult:
    """Combine the labels of `frame` with `verdicts`, build a candidate, compare it with `active`.

    The candidate starts from `base` (default: `active`). Pass the model the
    active one was itself retrained from, so that retraining again refits all
    verdicts once instead of stacking trees fitted to the same verdicts.

    Raises `NotLabelledError` when fewer than `MIN_LABELLED_TURNS` turns are
    labelled (data plus verdicts), or when they fall in too few dialogues to
    cross-validate: a comparison on nothing would be a guess.
    """
    config = config or RetrainConfig()
    if config.strategy not in STRATEGIES:
        raise ModelError(f"unknown retraining strategy {config.strategy!r}; expected one of {', '.join(STRATEGIES)}")
    combined = labels_with_verdicts(frame, verdicts)
    labelled = combined[LABEL_COLUMN].notna().to_numpy()
    from_verdict = (combined[LABEL_SOURCE] == "verdict").to_numpy(dtype=bool, na_value=False)
    n_labelled, n_verdicts = int(labelled.sum()), int(from_verdict.sum())
    if n_labelled < MIN_LABELLED_TURNS:
        raise NotLabelledError(
            f"retraining needs at least {MIN_LABELLED_TURNS} labelled turns; there are {n_labelled} "
            f"({n_labelled - n_verdicts} labelled in the data, {n_verdicts} verdicts). "
            "Give more verdicts in the queue, or load traces with a filled failure_point column")
    selection = select_strategy(combined, start=base or active, config=config)
    truth = combined[LABEL_COLUMN].to_numpy(dtype=object)[labelled]
    comparison = evaluate_predictions(truth, {"active": active.predict_proba(combined)[labelled]})
    comparison["systems"]["candidate"] = selection.metrics
    candidate = selection.candidate
    if candidate is not (base or active):
        candidate.meta["metrics"] = {"labels": list(LABELS), "systems": {"model": selection.metrics},
                                     "evaluated_on": f"{selection.folds}-fold cross-validation"}
    return RetrainResult(candidate=candidate, comparison=comparison, heldout_turns=n_labelled,
                         heldout_verdicts=n_verdicts, training_turns=n_labelled, verdict_turns=n_verdicts,
                         strategy=selection.strategy, strategy_scores=selection.scores, folds=selection.folds,
                         upload_proba=selection.upload_proba)
