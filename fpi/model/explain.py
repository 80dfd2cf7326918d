"""Why a turn got its label: exact TreeSHAP contributions, per feature and per stage.

Contributions are in the model's raw-score (log-odds) space for one class:
base value + sum of contributions = that class's raw score, exactly. (The
probabilities the app shows are softmax(raw / temperature); temperature scaling
rescales every score alike and never changes which label wins.)

LightGBM computes TreeSHAP itself (`predict(pred_contrib=True)`); it gives the
same values as `shap.TreeExplainer` with no extra conversion of the model, so
it is what this module uses (see `bench/bench_explain.py` for the comparison).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from fpi.display import label_name, plural
from fpi.model.glossary import NOT_LOGGED, display_name, labelled_value
from fpi.model.features import GROUP_CONTEXT, GROUP_COHORT, feature_group
from fpi.model.calibration import softmax
from fpi.data.schema import LABELS, STAGES
from fpi.model.text_stack import FIELDS_BY_KEY, TEXT_FIELDS, field_texts, readable, text_feature_names

GROUPS: tuple[str, ...] = (*STAGES, "cascade", GROUP_CONTEXT, GROUP_COHORT, "other")


@dataclass(frozen=True)
class Reason:
    feature: str
    value: float
    contribution: float
    text: str
    """The phrase, the direction and the strength: "ASR confidence = 0.21 (...) -> toward ASR (+1.40)"."""
    phrase: str = ""
    """The feature and its value in words, as the waterfall labels its bar: "ASR confidence = 0.21 (...)"."""


@dataclass(frozen=True)
class TurnExplanation:
    """One turn's evidence for one class (by default the predicted one)."""

    row: int
    label: str
    predicted: str
    probability: float
    base_value: float
    raw_score: float
    contributions: pd.Series
    values: pd.Series
    groups: pd.Series
    reasons: tuple[Reason, ...]
    evidence: tuple[Reason, ...] = ()
    """Every piece of evidence (a text model's six numbers as one), strongest first, in the reasons' words:
    what the waterfall draws, so chart and reasons read the same."""


def contributions(model: Any, features: pd.DataFrame) -> np.ndarray:
    """SHAP values, shape (turns, classes, features + 1); the last column is the base value."""
    matrix = features.to_numpy(dtype=float)
    raw = np.asarray(model.booster.predict(matrix, pred_contrib=True))
    return raw.reshape(len(features), len(LABELS), features.shape[1] + 1)


def group_contributions(values: np.ndarray, feature_names: Sequence[str]) -> pd.DataFrame:
    """Sum contributions (turns x features) into stage groups (turns x GROUPS)."""
    groups = np.array([feature_group(name) for name in feature_names])
    summed = {g: values[:, groups == g].sum(axis=1) for g in GROUPS}
    return pd.DataFrame(summed)


def explain_rows(
    model: Any, features: pd.DataFrame, *, label: str | None = None, top: int = 5,
    frame: pd.DataFrame | None = None,
) -> list[TurnExplanation]:
    """Explanations for every row of a feature matrix (rows are independent of each other).

    Give `frame`, the traces the features were built from (same index), and the
    text models' reasons name their most telling words.
    """
    texts = row_texts(model, frame, features.index) if frame is not None else {}
    shap = contributions(model, features)
    raw = shap.sum(axis=2)
    proba = softmax(raw / model.temperature)
    names = list(features.columns)
    values = features.to_numpy(dtype=float)
    explanations = []
    for i in range(len(features)):
        predicted = int(proba[i].argmax())
        k = predicted if label is None else LABELS.index(label)
        contrib = shap[i, k, :-1]
        contrib_series = pd.Series(contrib, index=names)
        value_series = pd.Series(values[i], index=names)
        evidence = top_reasons(contrib_series, value_series, label=LABELS[k], top=len(names),
                               levels=model.spec.levels if model.spec else None,
                               words=_telling_words(model, texts, i, LABELS[k]))
        explanations.append(
            TurnExplanation(
                row=int(features.index[i]) if isinstance(features.index[i], (int, np.integer)) else i,
                label=LABELS[k],
                predicted=LABELS[predicted],
                probability=float(proba[i, k]),
                base_value=float(shap[i, k, -1]),
                raw_score=float(raw[i, k]),
                contributions=contrib_series,
                values=value_series,
                groups=group_contributions(contrib[None, :], names).iloc[0],
                reasons=evidence[:top],
                evidence=evidence,
            )
        )
    return explanations


def row_texts(model: Any, frame: pd.DataFrame, index: pd.Index) -> dict[str, list[str]]:
    """Each text field's text for the given rows of `frame` (neighbours read from the whole frame)."""
    stack = getattr(model.spec, "text", None) if model.spec is not None else None
    if stack is None:
        return {}
    rows = frame.loc[frame.index.intersection(index)]
    dialogues = frame[frame["dialogue_id"].isin(rows["dialogue_id"]).to_numpy(dtype=bool)]  # neighbours too
    where = dialogues.index.get_indexer(index)
    out = {}
    for field in TEXT_FIELDS:
        if field.key in stack.models:
            texts = field_texts(dialogues, field)
            out[field.key] = [texts[j] if j >= 0 else "" for j in where]
    return out


def _telling_words(model: Any, texts: Mapping[str, list[str]], i: int, label: str) -> dict[str, list[str]]:
    stack = model.spec.text if texts else None
    if stack is None:
        return {}
    return {key: [readable(FIELDS_BY_KEY[key], term) for term in stack.models[key].telling_terms(values[i], label)]
            for key, values in texts.items()}


def reason_columns(name: str) -> list[str]:
    """The feature columns behind a reason: one, or a text model's six."""
    if name.startswith("text_") and name[5:] in FIELDS_BY_KEY:
        return text_feature_names(name[5:])
    return [name]


def merge_text_features(contrib: pd.Series, values: pd.Series, label: str) -> tuple[pd.Series, pd.Series]:
    """One `text_<field>` entry per text model: its six probabilities' contributions summed, and the
    probability it gives `label` as the value. Six numbers of one model are one piece of evidence."""
    contrib, values = contrib.copy(), values.copy()
    for field in TEXT_FIELDS:
        names = [n for n in text_feature_names(field.key) if n in contrib.index]
        if not names:
            continue
        contrib[f"text_{field.key}"] = contrib[names].sum()
        values[f"text_{field.key}"] = values.get(f"text_{field.key}_{label}", np.nan)
        contrib, values = contrib.drop(names), values.drop(names)
    return contrib, values


def top_reasons(
    contrib: pd.Series, values: pd.Series, *, label: str, top: int = 5,
    levels: Mapping[str, Sequence[str]] | None = None, words: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Reason, ...]:
    """The largest contributions as short sentences, strongest first."""
    contrib, values = merge_text_features(contrib, values, label)
    order = contrib.abs().sort_values(ascending=False).index[:top]
    return tuple(
        Reason(name, float(values[name]), float(contrib[name]),
               reason_text(name, values, float(contrib[name]), label, levels=levels, words=words),
               phrase=describe(name, values, label, levels=levels, words=words))
        for name in order
        if abs(contrib[name]) > 1e-9
    )


def describe(
    name: str, values: pd.Series, label: str, *, levels: Mapping[str, Sequence[str]] | None = None,
    words: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """A (merged) feature and its value in words, without the direction."""
    value = float(values[name])
    if name.startswith("text_") and name[5:] in FIELDS_BY_KEY:
        return describe_text(name[5:], value, label, (words or {}).get(name[5:], ()))
    return describe_feature(name, value, values, levels=levels)


def reason_text(
    name: str, values: pd.Series, contribution: float, label: str,
    *, levels: Mapping[str, Sequence[str]] | None = None, words: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """e.g. "asr_confidence = 0.21 (lower than 92% of turns) -> toward asr (+1.40)"."""
    value = float(values[name])
    target = f"toward {label_name(label)}" if contribution > 0 else f"away from {label_name(label)}"
    described = describe(name, values, label, levels=levels, words=words)
    return f"{described} -> {target} ({contribution:+.2f})"


def describe_text(key: str, probability: float, label: str, words: Sequence[str]) -> str:
    """e.g. "the next turn's text ('no', 'i said') reads as asr with p 0.71"."""
    field = FIELDS_BY_KEY[key]
    if np.isnan(probability):
        return f"{field.description}: none"
    quoted = f" ({', '.join(repr(w) for w in words)})" if words else ""
    return f"{field.description}{quoted} reads as {label_name(label)} with p {probability:.2f}"


def describe_feature(
    name: str, value: float, values: pd.Series, *, levels: Mapping[str, Sequence[str]] | None = None
) -> str:
    """A feature and its value in an analyst's words (names from `fpi.model.glossary`, categories by name,
    a missing value as "not logged")."""
    shown = display_name(name)
    if np.isnan(value):
        return f"{shown}: {NOT_LOGGED}"
    if levels and name in levels:
        return labelled_value(name, value, levels=levels)
    if name.endswith("_confidence") and not name.startswith(("next_", "prev_", "missing_", "rank_")):
        rank = values.get(f"rank_{name}", np.nan)
        if not np.isnan(rank):
            side = f"lower than {1 - rank:.0%} of turns" if rank < 0.5 else f"higher than {rank:.0%} of turns"
            return f"{shown} = {value:.2f} ({side})"
        return f"{shown} = {value:.2f}"
    if name.startswith("rank_") and name.endswith("_confidence"):
        return f"{display_name(name[5:])} at the {value:.0%} percentile of this upload"
    phrases = {
        "next_text_similarity": lambda v: (
            f"next turn repeats this request (similarity {v:.2f})" if v >= 0.6
            else f"next turn is a different request (similarity {v:.2f})"
        ),
        "prev_text_similarity": lambda v: (
            f"this turn repeats the previous one (similarity {v:.2f})" if v >= 0.6
            else f"this turn differs from the previous one (similarity {v:.2f})"
        ),
        "barge_in": lambda v: "the user interrupted the response" if v else "the user let the response finish",
        "next_barge_in": lambda v: "the user interrupted the next response" if v else "no interruption on the next turn",
        "is_last_turn": lambda v: "no follow-up turn in this dialogue" if v else "the dialogue goes on after this turn",
        "asr_text_empty": lambda v: "the ASR text is empty" if v else "the ASR text is not empty",
        "asr_word_count": lambda v: f"the request has {plural(round(v), 'word')}",
        "gap_to_next_s": lambda v: f"next turn came {v:.0f} s later",
        "gap_from_prev_s": lambda v: f"this turn came {v:.0f} s after the previous one",
        "next_same_intent": lambda v: "next turn has the same intent" if v else "next turn has another intent",
        "next_same_entity": lambda v: "next turn asks for the same entity" if v else "next turn asks for another entity",
        "entity_in_text": lambda v: f"the resolved entity matches the ASR text {v:.0%}",
        "entity_words_heard": lambda v: f"{v:.0%} of the resolved entity's words were in the request",
        "entity_covers_request": lambda v: f"{v:.0%} of the request's words are in the resolved entity",
        "response_apology": lambda v: "the response apologises or refuses" if v else "the response does not apologise",
        "response_no_change": lambda v: ("the response says nothing changed ('already on')" if v
                                         else "the response does not say nothing changed"),
        "dialogue_length": lambda v: f"the dialogue has {plural(round(v), 'turn')}",
        "turn_position": lambda v: f"turn {v:.0f} of the dialogue (0-based)",
    }
    if name in phrases:
        return phrases[name](value)
    return labelled_value(name, value, levels=levels)


def global_importance(
    model: Any, features: pd.DataFrame, *, predicted: np.ndarray | None = None, sample_size: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Mean |SHAP| per feature per class on a sample stratified by predicted label.

    Long format: feature, group, class, mean_abs_shap.
    """
    sample = stratified_sample(features, predicted, sample_size=sample_size, seed=seed)
    shap = contributions(model, sample)[:, :, :-1]
    mean_abs = np.abs(shap).mean(axis=0)  # classes x features
    names = list(features.columns)
    rows = [
        {"feature": name, "group": feature_group(name), "class": LABELS[k], "mean_abs_shap": float(mean_abs[k, j])}
        for k in range(len(LABELS))
        for j, name in enumerate(names)
    ]
    return pd.DataFrame(rows).sort_values(["class", "mean_abs_shap"], ascending=[True, False], ignore_index=True)


def beeswarm_data(
    model: Any, features: pd.DataFrame, *, label: str, predicted: np.ndarray | None = None,
    sample_size: int = 1000, top: int = 12, seed: int = 0,
) -> pd.DataFrame:
    """Per-point data for a beeswarm: feature, shap, value, and value as a percentile (for colour)."""
    sample = stratified_sample(features, predicted, sample_size=sample_size, seed=seed)
    k = LABELS.index(label)
    shap = contributions(model, sample)[:, k, :-1]
    names = np.array(features.columns)
    order = np.argsort(-np.abs(shap).mean(axis=0))[:top]
    parts = []
    for j in order:
        column = sample.iloc[:, j]
        parts.append(pd.DataFrame({
            "feature": names[j],
            "shap": shap[:, j],
            "value": column.to_numpy(dtype=float),
            "value_pct": column.rank(pct=True).to_numpy(dtype=float),
        }))
    return pd.concat(parts, ignore_index=True)


def stratified_sample(
    features: pd.DataFrame, predicted: np.ndarray | None, *, sample_size: int, seed: int
) -> pd.DataFrame:
    """Up to `sample_size` rows with every predicted label represented (rare ones fully, if small)."""
    if len(features) <= sample_size:
        return features
    rng = np.random.default_rng(seed)
    if predicted is None:
        return features.iloc[np.sort(rng.choice(len(features), sample_size, replace=False))]
    predicted = np.asarray(predicted, dtype=object)
    classes = [c for c in LABELS if (predicted == c).any()]
    per_class = max(1, sample_size // max(1, len(classes)))
    chosen = []
    for c in classes:
        idx = np.flatnonzero(predicted == c)
        chosen.append(idx if len(idx) <= per_class else rng.choice(idx, per_class, replace=False))
    return features.iloc[np.sort(np.concatenate(chosen))]


class ExplanationCache:
    """Explanations computed lazily for what is on screen, kept per (model, data, turn).

    Bounded (least recently used first out) so a long session cannot grow without limit.
    """

    def __init__(self, *, max_items: int = 5000) -> None:
        self._items: OrderedDict[Hashable, TurnExplanation] = OrderedDict()
        self.max_items = max_items
        self.hits = 0
        self.misses = 0

    def explain(
        self, model: Any, features: pd.DataFrame, rows: Sequence[int], *, data_key: str, label: str | None = None,
        frame: pd.DataFrame | None = None,
    ) -> list[TurnExplanation]:
        """Explanations for the given positional rows of `features`, computing only the missing ones."""
        keys = [(model.version, data_key, int(r), label) for r in rows]
        missing = [r for r, key in zip(rows, keys) if key not in self._items]
        self.misses += len(missing)
        self.hits += len(rows) - len(missing)
        if missing:
            fresh = explain_rows(model, features.iloc[list(missing)], label=label, frame=frame)
            for r, explanation in zip(missing, fresh):
                self._items[(model.version, data_key, int(r), label)] = explanation
        result = []
        for key in keys:
            self._items.move_to_end(key)
            result.append(self._items[key])
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return result
