"""Features of a turn: its own stage signals, its cascade, its text and its dialogue.

Everything here is a pure function of a validated traces frame (sorted by
`(dialogue_id, turn_index)`, as `fpi.data.traces.load_traces` returns it) and a
`FeatureSpec` learned once from training data. The spec pins the feature list,
the categorical levels and the reference distributions, so that a model
applied to any later upload sees exactly the columns it was trained on.

Context features only look inside a turn's own dialogue; upload-relative
features (`rank_*`) describe where a confidence sits among the upload's turns,
which makes the model robust to a pipeline whose scores are calibrated
differently from the training data.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
from rapidfuzz import fuzz

from fpi.data.columns import text_values
from fpi.data.schema import CONFIDENCE_COLUMNS, STAGES, is_stage_signal
from fpi.model.text_measures import entity_coverages, pairwise_similarity, pattern_matches, word_counts

if TYPE_CHECKING:
    from fpi.model.text_stack import TextStack

CATEGORICAL_COLUMNS: tuple[str, ...] = ("device_type", "locale", "nlu_domain", "nlu_intent")
MAX_LEVELS = 200
"""Levels beyond the most frequent MAX_LEVELS of a categorical are treated as unseen."""

MIN_UPLOAD_FOR_RANKS = 200
"""Below this many scored turns an upload is too small to rank within; the
training reference distribution is used instead."""

CASCADE_QUANTILE = 0.10
"""A stage is "low" when its confidence falls below this quantile of training turns."""

QUANTILE_GRID = np.linspace(0.0, 1.0, 101)

APOLOGY = r"\b(sorry|can't|cannot|couldn't|could not|unable|don't know|didn't|not sure|went wrong|try again)\b"
NO_CHANGE = r"\b(already|no change|nothing to (change|do))\b"
"""A reply saying the command changed nothing: the assistant's state and the user's belief disagree."""

# Feature groups, so explanations can sum contributions per stage or context.
GROUP_CONTEXT = "dialogue"
GROUP_COHORT = "device/locale"


@dataclass(frozen=True)
class FeatureSpec:
    """What a model was trained on: feature names, categorical levels, references."""

    features: tuple[str, ...]
    categorical: tuple[str, ...]
    levels: Mapping[str, tuple[str, ...]]
    stage_signals: tuple[str, ...]
    reference_quantiles: Mapping[str, tuple[float, ...]]
    cascade_thresholds: Mapping[str, float]
    text: TextStack | None = field(default=None, compare=False, repr=False)
    """The text models whose out-of-fold probabilities are `text_*` features; saved beside the
    spec as arrays (`fpi.model.estimator`), not in its JSON."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(replace(self, text=None))
        data.pop("text")
        data["levels"] = {k: list(v) for k, v in self.levels.items()}
        data["reference_quantiles"] = {k: list(v) for k, v in self.reference_quantiles.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            features=tuple(data["features"]),
            categorical=tuple(data["categorical"]),
            levels={k: tuple(v) for k, v in data["levels"].items()},
            stage_signals=tuple(data["stage_signals"]),
            reference_quantiles={k: tuple(float(x) for x in v) for k, v in data["reference_quantiles"].items()},
            cascade_thresholds={k: float(v) for k, v in data["cascade_thresholds"].items()},
        )


RANK_RESOLUTION = 10_000
"""Confidences are ranked at 1e-4 resolution: exact enough, and the counts merge
across chunks, so a file scored in pieces gets the same ranks as in one go."""


@dataclass(frozen=True)
class UploadStats:
    """Histogram of each confidence over a whole upload: what `rank_*` features rank against."""

    counts: Mapping[str, np.ndarray]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> UploadStats:
        counts = {}
        for column in CONFIDENCE_COLUMNS:
            values = frame[column].to_numpy(dtype=float, na_value=np.nan)
            bins = _rank_bins(values[~np.isnan(values)])
            counts[column] = np.bincount(bins, minlength=RANK_RESOLUTION + 1)
        return cls(counts)

    def merge(self, other: UploadStats) -> UploadStats:
        return UploadStats({c: self.counts[c] + other.counts[c] for c in CONFIDENCE_COLUMNS})


def fit_feature_spec(frame: pd.DataFrame) -> FeatureSpec:
    """Learn levels, stage signals and reference distributions from training traces."""
    levels: dict[str, tuple[str, ...]] = {}
    for column in CATEGORICAL_COLUMNS:
        if column in frame.columns:
            counts = frame[column].dropna().astype(str).value_counts()
            # Sort by count then name so the level order is deterministic.
            ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_LEVELS]
            levels[column] = tuple(name for name, _ in ordered)
        else:
            levels[column] = ()
    signals = tuple(
        c for c in frame.columns if is_stage_signal(c) and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    )
    quantiles: dict[str, tuple[float, ...]] = {}
    thresholds: dict[str, float] = {}
    for column in CONFIDENCE_COLUMNS:
        values = frame[column].to_numpy(dtype=float)
        values = values[~np.isnan(values)]
        if len(values) == 0:
            values = np.array([0.0, 1.0])
        quantiles[column] = tuple(float(q) for q in np.quantile(values, QUANTILE_GRID))
        thresholds[column] = float(np.quantile(values, CASCADE_QUANTILE))
    probe = _feature_table(frame.head(2), signals, quantiles, thresholds, UploadStats.of(frame.head(2)))
    return FeatureSpec(
        features=tuple(probe),
        categorical=CATEGORICAL_COLUMNS,
        levels=levels,
        stage_signals=signals,
        reference_quantiles=quantiles,
        cascade_thresholds=thresholds,
    )


def build_features(frame: pd.DataFrame, spec: FeatureSpec, *, upload: UploadStats | None = None) -> pd.DataFrame:
    """The model's input for every turn of `frame`, in the spec's column order.

    Categoricals come out as float codes into the spec's levels (NaN for
    missing or unseen), so the same matrix feeds LightGBM, SHAP and the UI.
    `upload` is the whole upload's statistics when `frame` is one chunk of it;
    by default `frame` is the whole upload.
    """
    stats = upload if upload is not None else UploadStats.of(frame)
    columns = _feature_table(frame, spec.stage_signals, spec.reference_quantiles, spec.cascade_thresholds, stats)
    for column in spec.categorical:
        columns[column] = _codes(frame, column, spec.levels.get(column, ()))
    if spec.text is not None:
        columns.update(spec.text.features(frame))
    # One float block, filled column by column (Fortran order: each column is contiguous) and wrapped
    # without a copy: building a frame from ~90 arrays, reindexing it and taking `.to_numpy()` again
    # cost three copies of the matrix (~0.3 s on 100k turns).
    matrix = np.empty((len(frame), len(spec.features)), dtype=float, order="F")
    for j, name in enumerate(spec.features):
        matrix[:, j] = columns[name] if name in columns else np.nan
    return pd.DataFrame(matrix, index=frame.index, columns=list(spec.features), copy=False)


def pipeline_scaled(name: str, spec: FeatureSpec) -> bool:
    """A feature read on one pipeline's own scale (a raw confidence or extra, or built from them),
    which another pipeline's calibration changes; ranks, text and behaviour mean the same anywhere."""
    if name in CONFIDENCE_COLUMNS or name in spec.stage_signals:
        return True
    if name.startswith(("next_", "prev_")) and name.split("_", 1)[1] in CONFIDENCE_COLUMNS:
        return True
    return name.startswith(("cascade_", "drop_"))


def build_features_by_upload(frame: pd.DataFrame, spec: FeatureSpec, column: str | None) -> pd.DataFrame:
    """`build_features` with each value of `column` treated as its own upload (ranks within it).

    Training data pooled from several pipelines must be ranked pipeline by
    pipeline, as each customer's upload will be; ranking the pool would teach
    the model ranks that no single upload has.
    """
    if column is None or column not in frame.columns or frame[column].nunique(dropna=False) < 2:
        return build_features(frame, spec)
    parts = [build_features(part, spec) for _, part in frame.groupby(column, sort=False, dropna=False)]
    return pd.concat(parts).loc[frame.index]


def missing_column_variants(spec: FeatureSpec) -> tuple[tuple[str, ...], ...]:
    """Groups of optional columns a real export may not have, one variant per group, then all."""
    text = ("asr_text", "response_text", "er_entity")
    cohort = ("device_type", "locale", "nlu_domain", "nlu_intent")
    behaviour = ("timestamp", "barge_in")
    extras = tuple(spec.stage_signals)
    every = (*text, *cohort, *behaviour, *extras)
    return tuple(v for v in (text, cohort, behaviour, extras, every) if v)


def feature_group(name: str) -> str:
    """The stage (wake, asr, nlu, er, result), `dialogue` or `device/locale` a feature speaks for."""
    if name in ("device_type", "locale"):
        return GROUP_COHORT
    if name.startswith(("prev_", "next_", "dialogue_", "turn_position", "is_last", "is_first", "gap_")):
        return GROUP_CONTEXT
    if name in ("barge_in",):
        return GROUP_CONTEXT
    if name.startswith(("cascade_", "rank_cascade_")):
        return "cascade"
    if name.startswith("rank_drop_"):
        return name[len("rank_drop_"):]
    if name.startswith("text_"):
        from fpi.model.text_stack import field_of_feature

        return field_of_feature(name).group
    for stage in STAGES:
        if name.startswith((f"{stage}_", f"rank_{stage}_", f"missing_{stage}_", f"drop_{stage}")):
            return stage
    if name in ("nlu_domain", "nlu_intent"):
        return "nlu"
    if name.startswith("entity_"):
        return "er"
    if name.startswith("response_"):
        return "result"
    return "other"


# --- internals -----------------------------------------------------------------


def _feature_table(
    frame: pd.DataFrame,
    signals: Sequence[str],
    quantiles: Mapping[str, Sequence[float]],
    thresholds: Mapping[str, float],
    upload: UploadStats,
) -> dict[str, np.ndarray]:
    """Every feature but the categorical codes and text, by name (categoricals as NaN placeholders)."""
    n = len(frame)
    out: dict[str, np.ndarray] = {}
    conf = {c: frame[c].to_numpy(dtype=float, na_value=np.nan) for c in CONFIDENCE_COLUMNS}

    # Turn: raw confidences, missingness, rank within the upload.
    for column in CONFIDENCE_COLUMNS:
        out[column] = conf[column]
    for column in CONFIDENCE_COLUMNS:
        out[f"missing_{column}"] = np.isnan(conf[column]).astype(float)
    for column in CONFIDENCE_COLUMNS:
        out[f"rank_{column}"] = _upload_rank(conf[column], upload.counts[column], quantiles[column])

    # The cascade again on upload ranks: the same shape of evidence, in any pipeline's scale.
    ranks = np.column_stack([out[f"rank_{c}"] for c in CONFIDENCE_COLUMNS]) if n else np.zeros((0, len(STAGES)))
    rank_min = np.minimum.accumulate(np.where(np.isnan(ranks), np.inf, ranks), axis=1)
    rank_min[np.isinf(rank_min)] = np.nan
    for i, stage in enumerate(STAGES[1:], start=1):
        out[f"rank_cascade_min_to_{stage}"] = rank_min[:, i]
        out[f"rank_drop_{stage}"] = ranks[:, i - 1] - ranks[:, i]

    # Cascade along wake -> asr -> nlu -> er -> result.
    matrix = np.column_stack([conf[c] for c in CONFIDENCE_COLUMNS]) if n else np.zeros((0, len(STAGES)))
    filled = np.where(np.isnan(matrix), np.inf, matrix)
    running_min = np.minimum.accumulate(filled, axis=1)
    running_min[np.isinf(running_min)] = np.nan
    for i, stage in enumerate(STAGES[1:], start=1):
        out[f"cascade_min_to_{stage}"] = running_min[:, i]
    lowest = np.argmin(filled, axis=1).astype(float) if n else np.zeros(0)
    lowest[np.all(np.isinf(filled), axis=1)] = np.nan
    out["cascade_lowest_stage"] = lowest
    threshold_row = np.array([thresholds[c] for c in CONFIDENCE_COLUMNS])
    below = np.where(np.isnan(matrix), False, matrix < threshold_row)
    first_below = np.where(below.any(axis=1), below.argmax(axis=1), len(STAGES)).astype(float)
    out["cascade_first_low_stage"] = first_below
    out["cascade_n_low"] = below.sum(axis=1).astype(float)
    for i in range(1, len(STAGES)):
        out[f"drop_{STAGES[i]}"] = matrix[:, i - 1] - matrix[:, i]

    # Stage-prefixed numeric extras (absent in this upload -> NaN).
    for column in signals:
        if column in frame.columns:
            out[column] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        else:
            out[column] = np.full(n, np.nan)

    # Text of this turn.
    asr_text = _text(frame, "asr_text")
    response = _text(frame, "response_text")
    entity = _text(frame, "er_entity")
    has_asr = "asr_text" in frame.columns
    words = word_counts(asr_text) if has_asr else np.full(n, np.nan)
    out["asr_word_count"] = words
    out["asr_text_empty"] = (words == 0).astype(float) if has_asr else np.full(n, np.nan)
    if "er_entity" in frame.columns and has_asr:
        score = pairwise_similarity(entity, asr_text, fuzz.partial_ratio)
        score[[e == "" for e in entity]] = np.nan
        out["entity_in_text"] = score
        out["entity_words_heard"], out["entity_covers_request"] = entity_coverages(entity, asr_text)
    else:
        out["entity_in_text"] = np.full(n, np.nan)
        out["entity_words_heard"] = np.full(n, np.nan)
        out["entity_covers_request"] = np.full(n, np.nan)
    has_response = "response_text" in frame.columns
    out["response_word_count"] = word_counts(response) if has_response else np.full(n, np.nan)
    out["response_apology"] = pattern_matches(response, APOLOGY) if has_response else np.full(n, np.nan)
    out["response_no_change"] = pattern_matches(response, NO_CHANGE) if has_response else np.full(n, np.nan)

    # Dialogue context: neighbours inside the same dialogue only.
    dialogue = frame["dialogue_id"].to_numpy(dtype=object)
    has_next = np.zeros(n, dtype=bool)
    has_prev = np.zeros(n, dtype=bool)
    if n:
        has_next[:-1] = dialogue[:-1] == dialogue[1:]
        has_prev[1:] = dialogue[1:] == dialogue[:-1]
    position = frame.groupby("dialogue_id", sort=False).cumcount().to_numpy(dtype=float)
    length = frame.groupby("dialogue_id", sort=False)["dialogue_id"].transform("size").to_numpy(dtype=float)
    out["turn_position"] = position
    out["dialogue_length"] = length
    out["dialogue_turns_after"] = length - position - 1
    out["is_last_turn"] = (~has_next).astype(float)

    for column in ("asr_confidence", "nlu_confidence", "er_confidence", "result_confidence", "wake_confidence"):
        out[f"next_{column}"] = _neighbour(conf[column], has_next, +1)
        out[f"prev_{column}"] = _neighbour(conf[column], has_prev, -1)
        out[f"next_rank_{column}"] = _neighbour(out[f"rank_{column}"], has_next, +1)
        out[f"prev_rank_{column}"] = _neighbour(out[f"rank_{column}"], has_prev, -1)

    if has_asr:
        # Each turn beside the next, once: the token-set ratio is symmetric, so the score of (i, i+1) is
        # turn i's similarity to the next and turn i+1's to the previous (half the fuzzy matching).
        adjacent = pairwise_similarity(asr_text[:-1], asr_text[1:], fuzz.token_set_ratio) if n > 1 else np.zeros(0)
        sim_next = np.full(n, np.nan)
        sim_prev = np.full(n, np.nan)
        sim_next[:-1][has_next[:-1]] = adjacent[has_next[:-1]]
        sim_prev[1:][has_prev[1:]] = adjacent[has_prev[1:]]
        out["next_text_similarity"] = sim_next
        out["prev_text_similarity"] = sim_prev
        out["next_asr_word_count"] = _neighbour(words, has_next, +1)
    else:
        out["next_text_similarity"] = np.full(n, np.nan)
        out["prev_text_similarity"] = np.full(n, np.nan)
        out["next_asr_word_count"] = np.full(n, np.nan)

    for column, name in (("nlu_intent", "intent"), ("nlu_domain", "domain"), ("er_entity", "entity")):
        same = _same_as_next(frame, column, has_next)
        out[f"next_same_{name}"] = same
        out[f"prev_same_{name}"] = _neighbour(same, has_prev, -1)

    if "timestamp" in frame.columns:
        seconds = _epoch_seconds(frame["timestamp"])
        gap_next = _neighbour(seconds, has_next, +1) - seconds
        gap_prev = seconds - _neighbour(seconds, has_prev, -1)
        out["gap_to_next_s"] = gap_next
        out["gap_from_prev_s"] = gap_prev
    else:
        out["gap_to_next_s"] = np.full(n, np.nan)
        out["gap_from_prev_s"] = np.full(n, np.nan)

    if "barge_in" in frame.columns:
        barge = frame["barge_in"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    else:
        barge = np.full(n, np.nan)
    out["barge_in"] = barge
    out["next_barge_in"] = _neighbour(barge, has_next, +1)
    out["prev_barge_in"] = _neighbour(barge, has_prev, -1)
    out["next_response_apology"] = _neighbour(out["response_apology"], has_next, +1)

    for column in CATEGORICAL_COLUMNS:
        out[column] = np.full(n, np.nan)
    return out


def _text(frame: pd.DataFrame, column: str) -> list[str]:
    if column not in frame.columns:
        return [""] * len(frame)
    return text_values(frame[column])


def _neighbour(values: np.ndarray, present: np.ndarray, step: int) -> np.ndarray:
    shifted = np.full(len(values), np.nan)
    if len(values) > 1:
        if step > 0:
            shifted[:-1] = values[1:]
        else:
            shifted[1:] = values[:-1]
    shifted[~present] = np.nan
    return shifted


def _same_as_next(frame: pd.DataFrame, column: str, has_next: np.ndarray) -> np.ndarray:
    """1.0 where a turn's value equals the next turn's, 0.0 where it differs, NaN where either is missing
    or there is no next turn. Compared as factorized codes (equal values, equal codes): no Python objects.

    Equality is symmetric, so the next turn's "same as previous" is this shifted by one.
    """
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    codes, _ = pd.factorize(frame[column], use_na_sentinel=True)
    same = np.full(len(codes), np.nan)
    if len(codes) > 1:
        known = has_next[:-1] & (codes[:-1] >= 0) & (codes[1:] >= 0)
        same[:-1][known] = (codes[:-1][known] == codes[1:][known]).astype(float)
    return same


def _epoch_seconds(series: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(series, utc=True)
    seconds = (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    return seconds.to_numpy(dtype=float, na_value=np.nan)


def _rank_bins(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * RANK_RESOLUTION), 0, RANK_RESOLUTION).astype(np.int64)


def _upload_rank(values: np.ndarray, counts: np.ndarray, reference: Sequence[float]) -> np.ndarray:
    """Percentile of each value among the upload's values (or the training reference if few)."""
    present = ~np.isnan(values)
    ranks = np.full(len(values), np.nan)
    total = int(counts.sum())
    if total >= MIN_UPLOAD_FOR_RANKS:
        # Mid-rank percentile (below + half of ties) / n: unchanged when the upload is duplicated.
        below = np.concatenate([[0], np.cumsum(counts)[:-1]])
        bins = _rank_bins(values[present])
        ranks[present] = (below[bins] + 0.5 * counts[bins]) / total
    elif present.any():
        grid = np.asarray(reference, dtype=float)
        ranks[present] = np.interp(values[present], grid, QUANTILE_GRID, left=0.0, right=1.0)
    return ranks


def _codes(frame: pd.DataFrame, column: str, levels: Sequence[str]) -> np.ndarray:
    if column not in frame.columns or not levels:
        return np.full(len(frame), np.nan)
    codes = pd.Index(list(levels)).get_indexer(frame[column].astype(object)).astype(float)
    codes[codes < 0] = np.nan  # missing or a level the model never saw
    return codes
