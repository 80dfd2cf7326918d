"""What training is told and starts from: the options, the labelled turns, the split, the extra rows."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd

from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.model.features import FeatureSpec, build_features, missing_column_variants
from fpi.model.splits import dialogue_bucket, grouped_split
from fpi.model.text_stack import field_of_feature

MIN_LABELLED_TURNS = 50


BoosterTrainer = Callable[..., lgb.Booster]
"""Trains a booster elsewhere (e.g. `fpi.model.dask_training.DaskTrainer`): called with the LightGBM params,
train x/y, valid x/y and class weights, and keywords names, categorical, rounds, early_stopping_rounds."""


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; every option has a seed-stable default."""

    # Small trees: on 100k simulator turns 15 leaves lose ~0.003 macro-F1 against
    # 31 leaves at lr 0.08, and explain 3x faster (bench/bench_explain.py).
    learning_rate: float = 0.15
    num_leaves: int = 15
    min_data_in_leaf: int = 30
    feature_fraction: float = 0.8
    lambda_l2: float = 1.0
    max_bin: int = 63
    """Coarser histograms: ~2x faster training, no measurable loss on confidences."""
    max_rounds: int = 600
    early_stopping_rounds: int = 40
    cv_folds: int = 5
    """Folds (grouped by dialogue) for the text models' out-of-fold features and the rounds."""
    cv_max_turns: int = 40_000
    """Up to this many labelled training turns, rounds come from cross-validation and the model
    is refitted on all of them; above, one fold is the early-stopping set (5x cheaper)."""
    cv_learning_rate: float = 0.05
    """Learning rate under cross-validation: on a few thousand turns smaller steps generalise
    better (traces from a real small speech pipeline, 5-fold: 0.05 -> 0.72 macro-F1, 0.15 -> 0.70)."""
    scale_free: bool = False
    """Leave out features read on the training pipelines' own scale (raw confidences and extras,
    and what is built from them), keeping their ranks within the upload: for a model meant to
    carry over to pipelines it never saw (the shipped one)."""
    upload_column: str | None = None
    """A column naming the upload (e.g. the simulated `pipeline`) each turn came from: upload-relative
    features are computed within each, as they will be on a customer's one upload."""
    member_column: str | None = None
    """A column splitting the training traces into groups (e.g. independently simulated `fleet`s):
    one booster per group, averaged into one model (`fpi.model.ensemble`). For a model meant to
    carry over, the average of fleets keeps what they agree on and not each fleet's quirks."""
    text_models: bool = True
    """Stack TF-IDF text models of the request, response and neighbouring turns (`fpi.model.text_stack`)."""
    class_weight_power: float = 0.5
    """0 = no weighting, 1 = fully balanced classes; 0.5 lifts rare classes without
    wrecking calibration (temperature scaling then tidies the rest)."""
    missing_column_share: float = 0.3
    """Share of dialogues seen a second time in training with optional columns removed."""
    valid_fraction: float = 0.15
    """Where the held-out part starts (`split_masks`); early stopping now uses the folds."""
    test_fraction: float = 0.15
    """Dialogues held out for the stored metrics (0: cross-validated metrics, every label trains)."""
    seed: int = 0
    num_threads: int = 0


def split_masks(frame: pd.DataFrame, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, early stopping, held-out) by dialogue; `fit` trains on the first two, tests on the third."""
    fractions = (1 - config.valid_fraction - config.test_fraction, config.valid_fraction, config.test_fraction)
    return grouped_split(frame, fractions=fractions, seed=config.seed)


def labelled_turns(frame: pd.DataFrame) -> pd.Series:
    """Boolean mask of turns that carry a label."""
    if LABEL_COLUMN not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[LABEL_COLUMN].notna()


def class_codes(labels: pd.Series | np.ndarray) -> np.ndarray:
    return pd.Categorical(np.asarray(labels, dtype=object), categories=list(LABELS)).codes.astype(int)


def missing_column_rows(
    frame: pd.DataFrame, train: np.ndarray, features: pd.DataFrame, spec: FeatureSpec, config: TrainConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extra training rows: some training dialogues again, with groups of optional columns removed.

    Real exports often lack text, timestamps, extras or cohort columns. Without
    these rows the model only ever saw such features missing where they mean
    something (a last turn has no next text), and would misread an upload
    that simply does not log them. Returns the rows, their labels and the row
    of `frame` each was made from (text features are the source rows'
    out-of-fold ones, or missing where the variant drops the text).
    """
    share = config.missing_column_share
    n_features = len(spec.features)
    none = np.zeros((0, n_features)), np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    if share <= 0:
        return none
    base_spec = replace(spec, features=tuple(c for c in spec.features if not c.startswith("text_")),
                        text=None)
    text_columns = [c for c in features.columns if c.startswith("text_")]
    rank_columns = [c for c in features.columns if c.startswith("rank_")]
    variants = missing_column_variants(spec)
    bucket = dialogue_bucket(frame["dialogue_id"], seed=config.seed + 1)
    xs, ys, sources = [], [], []
    width = share / len(variants)
    for i, dropped in enumerate(variants):
        chosen = (bucket >= i * width) & (bucket < (i + 1) * width)
        rows = np.flatnonzero(chosen)
        if len(rows) == 0:
            continue
        part = frame.iloc[rows].drop(columns=[c for c in dropped if c in frame.columns])
        keep = train[rows]
        table = build_features(part.reset_index(drop=True), base_spec)
        for column in text_columns:
            lost = field_of_feature(column).column in dropped
            table[column] = np.nan if lost else features[column].to_numpy()[rows]
        for column in rank_columns:  # ranks within the whole upload, as the source rows have them
            table[column] = features[column].to_numpy()[rows]
        xs.append(table.reindex(columns=list(spec.features)).to_numpy(dtype=float)[keep])
        ys.append(class_codes(part[LABEL_COLUMN])[keep])
        sources.append(rows[keep])
    if not xs:
        return none
    return np.vstack(xs), np.concatenate(ys), np.concatenate(sources)


REFERENCE_ROWS = 2000
REFERENCE_PER_UPLOAD = 500
REFERENCE_UPLOADS = 12
"""Uploads kept in the reference, the first ones in the training data (for a fleet ensemble, the first
fleet): checking an upload fits one classifier per reference upload, and eight fleets of twelve would
make the Overview's shift check eight times slower for the same answer."""


def reference_sample(
    frame: pd.DataFrame, features: pd.DataFrame, train: np.ndarray, config: TrainConfig,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Training feature rows to compare uploads with: `REFERENCE_ROWS` at random, or
    `REFERENCE_PER_UPLOAD` per upload for the first `REFERENCE_UPLOADS` uploads when the training
    data pooled several (an upload is then compared with the closest of them)."""
    rng = np.random.default_rng(config.seed)
    rows = np.flatnonzero(train)
    if config.upload_column is None or config.upload_column not in frame.columns:
        if len(rows) > REFERENCE_ROWS:
            rows = np.sort(rng.choice(rows, REFERENCE_ROWS, replace=False))
        return features.iloc[rows].reset_index(drop=True), None
    uploads = frame[config.upload_column].astype(str).to_numpy()
    picked = []
    for name in pd.unique(uploads[rows])[:REFERENCE_UPLOADS]:
        mine = rows[uploads[rows] == name]
        picked.append(np.sort(rng.choice(mine, min(REFERENCE_PER_UPLOAD, len(mine)), replace=False)))
    rows = np.concatenate(picked)
    return features.iloc[rows].reset_index(drop=True), uploads[rows]
