"""An audit of verdicts before they teach the model: the ones the data disagrees with strongly.

Confident learning (Northcutt et al., 2021), in its simplest form. Every
labelled turn (data labels and verdicts) gets an out-of-fold probability per
label from a small LightGBM on the active model's features, trained on the
other dialogues' labels (folds by dialogue). Each label's typical confidence is
the mean probability of that label over the turns carrying it. A verdict is
flagged when

- the probability of its own label is below `ratio` times that label's
  typical confidence (far below, not merely unsure), and
- another label is at least as probable as its own typical confidence, i.e.
  the data points somewhere else with confidence.

A flagged verdict is left out of the retraining until a person confirms it
(an adjudication, `VerdictStore.adjudicate`, with the same or another label);
a confirmed one is kept. Data labels are audited by nobody here: they are the
reference the verdicts are checked against.

The data only overrules a person where it reads the pipeline well: when its
out-of-fold labels agree with fewer than `min_agreement` of the labelled turns,
or hardly beyond chance (Cohen's kappa under `min_kappa`: a model that always
says the commonest label agrees with every turn that carries it), the flags are
shown for checking but nothing is left out. Confident learning assumes a good
model; a weak one flags its own errors, and on a new pipeline those are the
rare, hard turns adaptation needs most.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import lightgbm as lgb
import numpy as np
import pandas as pd

from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.errors import NotLabelledError
from fpi.model.calibration import softmax
from fpi.model.estimator import FailurePointModel
from fpi.model.training import class_codes
from fpi.review.adapt import LABEL_SOURCE, cv_folds
from fpi.review.agreement import cohen_kappa
from fpi.review.retrain import labels_with_verdicts

__all__ = ["AuditConfig", "AuditResult", "audit_verdicts", "out_of_fold_proba"]

FLAG_COLUMNS = ["dialogue_id", "turn_index", "label", "analyst", "p_label", "typical", "suggested", "p_suggested",
                "status"]


@dataclass(frozen=True)
class AuditConfig:
    folds: int = 5
    rounds: int = 100
    learning_rate: float = 0.1
    num_leaves: int = 15
    min_data_in_leaf: int = 10
    ratio: float = 0.5
    """A verdict is "far below" when its label's probability is under ratio x that label's typical confidence."""
    min_agreement: float = 0.8
    """Out-of-fold accuracy on the labelled turns below which flagged verdicts are kept. With one
    verdict in ten planted wrong, the flags were mostly right (61-91% of them) wherever the audit
    model agreed with 81% or more of the labels (simulated traces, the bundled sample), and mostly
    wrong (19-45%) wherever it agreed with 76% or fewer (the same at 100-300 verdicts, and traces
    from a real small speech pipeline). There, with only right verdicts (100 / 300 / 1,000), it
    agreed with 63% / 70% / 71% of them and flagged a fifth to a quarter; leaving those out cost 0.03-0.13
    held-out macro-F1 after retraining."""
    min_kappa: float = 0.5
    """Cohen's kappa of the out-of-fold labels against the labels below which flagged verdicts are kept."""
    seed: int = 0
    num_threads: int = 2


@dataclass(frozen=True)
class AuditResult:
    flags: pd.DataFrame
    """One row per flagged verdict (`FLAG_COLUMNS`); status "excluded", "confirmed", or "kept" (the data
    reads this pipeline too poorly to overrule an analyst: see `AuditConfig.min_agreement`)."""
    checked: int
    """Verdicts audited."""
    typical: dict[str, float]
    """Each label's typical out-of-fold confidence (NaN for a label no turn carries)."""
    agreement: float = float("nan")
    """Share of the labelled turns (data labels and verdicts) whose out-of-fold top label is theirs."""
    kappa: float = float("nan")
    """The same agreement corrected for chance (Cohen's kappa)."""
    min_agreement: float = AuditConfig.min_agreement
    min_kappa: float = AuditConfig.min_kappa

    @property
    def trusted(self) -> bool:
        """Whether the data reads this pipeline well enough to leave flagged verdicts out."""
        return _reads_well(self.agreement, self.kappa, self.min_agreement, self.min_kappa)

    @property
    def flagged(self) -> int:
        return len(self.flags)

    @property
    def excluded(self) -> int:
        return int((self.flags["status"] == "excluded").sum())

    @property
    def confirmed(self) -> int:
        return int((self.flags["status"] == "confirmed").sum())

    def kept(self, verdicts: pd.DataFrame) -> pd.DataFrame:
        """`verdicts` without the excluded ones (flagged and not confirmed)."""
        out = self.flags[self.flags["status"] == "excluded"]
        if out.empty or verdicts.empty:
            return verdicts
        drop = pd.MultiIndex.from_frame(out[["dialogue_id", "turn_index"]].astype({"turn_index": "int64"}))
        keys = pd.MultiIndex.from_frame(verdicts[["dialogue_id", "turn_index"]].astype(
            {"dialogue_id": "str", "turn_index": "int64"}))
        return verdicts[~keys.isin(drop)].reset_index(drop=True)

    def summary(self) -> str:
        head = f"Audit: {self.checked:,} verdicts checked against the data, {self.flagged:,} flagged"
        agrees = f"out of fold the data agrees with {self.agreement:.0%} of the labels (kappa {self.kappa:.2f})"
        if self.flagged and not self.trusted:
            return (f"{head}, none left out: {agrees}, too few to overrule an analyst (it needs "
                    f"{self.min_agreement:.0%} and kappa {self.min_kappa:g})")
        how = "" if np.isnan(self.agreement) else f"; {agrees}"
        return (f"{head} ({self.excluded:,} left out until someone confirms them, {self.confirmed:,} confirmed and "
                f"kept{how})")

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "flagged": self.flagged, "excluded": self.excluded,
                "confirmed": self.confirmed, "agreement": self.agreement, "kappa": self.kappa, "trusted": self.trusted,
                "typical": self.typical,
                "flags": self.flags.to_dict(orient="records")}


def _reads_well(agreement: float, kappa: float, min_agreement: float, min_kappa: float) -> bool:
    return bool(agreement >= min_agreement and kappa >= min_kappa)  # False when either is NaN


def out_of_fold_proba(frame: pd.DataFrame, *, model: FailurePointModel, config: AuditConfig | None = None
                      ) -> np.ndarray:
    """(turns x labels) probabilities; each labelled turn's from a model that never saw its dialogue, NaN
    for unlabelled turns. `frame` carries the labels to learn (`failure_point`)."""
    config = config or AuditConfig()
    codes = class_codes(frame[LABEL_COLUMN])
    labelled = codes >= 0
    fold = cv_folds(frame, labelled, folds=config.folds, seed=config.seed)
    features = model.features(frame)
    matrix = features.to_numpy(dtype=float)
    categorical = [c for c in (model.spec.categorical if model.spec is not None else []) if c in features.columns]
    params = {"objective": "multiclass", "num_class": len(LABELS), "learning_rate": config.learning_rate,
              "num_leaves": config.num_leaves, "min_data_in_leaf": config.min_data_in_leaf, "seed": config.seed,
              "deterministic": True, "force_row_wise": True, "num_threads": config.num_threads, "verbosity": -1}
    proba = np.full((len(frame), len(LABELS)), np.nan)
    for k in range(int(fold.max()) + 1):
        train, test = labelled & (fold != k), fold == k
        dataset = lgb.Dataset(matrix[train], label=codes[train], feature_name=list(features.columns),
                              categorical_feature=categorical, free_raw_data=False)
        booster = lgb.train(params, dataset, num_boost_round=config.rounds)
        proba[test] = softmax(np.asarray(booster.predict(matrix[test], raw_score=True)))
    return proba


def audit_verdicts(frame: pd.DataFrame, verdicts: pd.DataFrame, *, model: FailurePointModel,
                   confirmed: Iterable[tuple[str, int]] = (), config: AuditConfig | None = None) -> AuditResult:
    """Flag the verdicts (one per turn, as retraining takes them) that the data disagrees with strongly.

    `confirmed` are (dialogue_id, turn_index) keys a person has confirmed (adjudicated): flagged, but kept.
    Raises `NotLabelledError` when the labels fall in fewer than two dialogues (nothing to cross-validate).
    """
    config = config or AuditConfig()
    combined = labels_with_verdicts(frame, verdicts)
    is_verdict = (combined[LABEL_SOURCE] == "verdict").to_numpy(dtype=bool, na_value=False)
    if not is_verdict.any():
        return AuditResult(pd.DataFrame(columns=FLAG_COLUMNS), 0, {label: float("nan") for label in LABELS})
    codes = class_codes(combined[LABEL_COLUMN])
    if len(np.unique(combined["dialogue_id"].astype("str")[codes >= 0])) < 2:
        raise NotLabelledError("the audit needs labels in at least 2 dialogues")
    proba = out_of_fold_proba(combined, model=model, config=config)
    labelled = codes >= 0
    predicted = proba[labelled].argmax(axis=1)
    agreement = float(np.mean(predicted == codes[labelled]))
    kappa = cohen_kappa(predicted, codes[labelled], categories=len(LABELS))
    trusted = _reads_well(agreement, kappa, config.min_agreement, config.min_kappa)
    typical = np.array([np.nanmean(proba[labelled & (codes == j), j]) if np.any(labelled & (codes == j)) else np.nan
                        for j in range(len(LABELS))])
    rows = np.flatnonzero(is_verdict)
    own = proba[rows, codes[rows]]
    confident = proba[rows] >= np.nan_to_num(typical, nan=np.inf)
    confident[np.arange(len(rows)), codes[rows]] = False
    elsewhere = np.where(confident, proba[rows], -1.0)
    suggested = elsewhere.argmax(axis=1)
    flag = (own < config.ratio * typical[codes[rows]]) & confident.any(axis=1)
    picked = rows[flag]
    who = verdicts.astype({"dialogue_id": "str", "turn_index": "int64"}).set_index(
        ["dialogue_id", "turn_index"])["analyst"] if "analyst" in verdicts.columns else None
    keys = list(zip(combined["dialogue_id"].astype("str").to_numpy()[picked],
                    combined["turn_index"].astype("int64").to_numpy()[picked]))
    sure = {(str(d), int(t)) for d, t in confirmed}
    flags = pd.DataFrame({
        "dialogue_id": [k[0] for k in keys], "turn_index": [int(k[1]) for k in keys],
        "label": np.asarray(LABELS, dtype=object)[codes[picked]],
        "analyst": [who.get(k) if who is not None else None for k in keys],
        "p_label": own[flag], "typical": typical[codes[picked]],
        "suggested": np.asarray(LABELS, dtype=object)[suggested[flag]],
        "p_suggested": proba[picked, suggested[flag]],
        "status": ["confirmed" if k in sure else "excluded" if trusted else "kept" for k in keys],
    }, columns=FLAG_COLUMNS)
    return AuditResult(flags.sort_values("p_label").reset_index(drop=True), int(is_verdict.sum()),
                       {label: float(t) for label, t in zip(LABELS, typical)}, agreement, kappa,
                       config.min_agreement, config.min_kappa)
