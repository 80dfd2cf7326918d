"""Text models stacked into the failure-point model: what was asked, answered and said next.

The published system embedded the request, the assistant's response and the
turns that followed, and mixed them with the module confidences. Here each
text field gets a TF-IDF (word 1-2 grams and character 2-4 grams) and a
multinomial logistic regression; its six probabilities become features of the
LightGBM. In training they are computed out of fold, folds grouped by dialogue,
so no turn's own label ever reaches its own features. A text model is plain
arrays (vocabulary, idf, coefficients): saved as JSON and `.npz`, never pickled,
and applied by the same code after loading as before saving.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from fpi.data.schema import LABELS

__all__ = ["TEXT_FIELDS", "TextClassifier", "TextField", "TextStack", "field_of_feature", "field_texts", "readable", "fit_text_stack",
           "text_feature_names"]


@dataclass(frozen=True)
class TextField:
    """One text a turn is judged by: a column of this turn or of its neighbour in the dialogue."""

    key: str
    column: str
    offset: int
    description: str
    group: str
    """The explanation group it speaks for (a stage or `dialogue`)."""
    kind: str = "text"
    """`text`: the column as it is; `intent_words`: each word tagged with the chosen intent, so
    "umbrella" reads differently under GetWeather and AddToList; `entity_words`: each word of
    the request tagged as found in the resolved entity or not, and the entity's words the
    request lacks (a mismatch that carries over between catalogs)."""


TEXT_FIELDS: tuple[TextField, ...] = (
    TextField("asr", "asr_text", 0, "the request's text", "asr"),
    TextField("response", "response_text", 0, "the assistant's response", "result"),
    TextField("next_asr", "asr_text", +1, "the next turn's text", "dialogue"),
    TextField("next_response", "response_text", +1, "the response to the next turn", "dialogue"),
    TextField("prev_asr", "asr_text", -1, "the previous turn's text", "dialogue"),
    TextField("intent_words", "asr_text", 0, "the request's words under the chosen intent", "nlu", "intent_words"),
    TextField("entity_words", "asr_text", 0, "the request's words against the resolved entity", "er", "entity_words"),
)
FIELDS_BY_KEY: Mapping[str, TextField] = {f.key: f for f in TEXT_FIELDS}

WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 4)
MAX_TERMS = 20_000
"""Per analyzer: enough for a pipeline's vocabulary, small enough to ship (a few MB per model)."""
MIN_TURNS = 30
"""Fewer labelled turns with a text than this and the field gets no model: its features stay missing."""
MAX_TRAIN_TURNS = 60_000
"""A text model learns its words long before this; larger training sets are subsampled (seeded)."""


def text_feature_names(key: str) -> list[str]:
    return [f"text_{key}_{label}" for label in LABELS]


def field_of_feature(name: str) -> TextField:
    """The text field a `text_<field>_<label>` feature speaks for."""
    for field in sorted(TEXT_FIELDS, key=lambda f: -len(f.key)):
        if name.startswith(f"text_{field.key}_") and name[len(field.key) + 6:] in LABELS:
            return field
    raise KeyError(name)


def field_texts(frame: pd.DataFrame, field: TextField) -> list[str]:
    """The field's text per turn ("" when missing, or when the neighbour is in another dialogue)."""
    n = len(frame)
    if field.column not in frame.columns:
        return [""] * n
    values = _column(frame, field.column)
    if field.kind == "intent_words":
        intents = _column(frame, "nlu_intent")
        return [" ".join(f"{i}_{w}" for w in text.lower().split()) if i else "" for text, i in zip(values, intents)]
    if field.kind == "entity_words":
        if "er_entity" not in frame.columns:
            return [""] * n
        return [_entity_words(text, entity) for text, entity in zip(values, _column(frame, "er_entity"))]
    if field.offset == 0:
        return values.tolist()
    dialogue = frame["dialogue_id"].to_numpy(dtype=object)
    out = np.full(n, "", dtype=object)
    if n > 1 and field.offset > 0:
        same = dialogue[:-1] == dialogue[1:]
        out[:-1] = np.where(same, values[1:], "")
    elif n > 1:
        same = dialogue[1:] == dialogue[:-1]
        out[1:] = np.where(same, values[:-1], "")
    return out.tolist()


def _column(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame[column].astype(object).where(frame[column].notna(), "").astype(str).to_numpy()


def _entity_words(text: str, entity: str) -> str:
    if not entity or not text:
        return ""
    said, resolved = text.lower().split(), set(entity.lower().split())
    tokens = [f"{'in' if w in resolved else 'out'}_{w}" for w in said]
    tokens += [f"lacks_{w}" for w in sorted(resolved - set(said))]
    return " ".join(tokens)


def readable(field: TextField, term: str) -> str:
    """A term as an analyst would say it: tags of the derived fields spelt out."""
    if field.kind == "intent_words":
        return " ".join(w.split("_", 1)[-1] for w in term.split())
    if field.kind == "entity_words":
        tags = {"in": "", "out": "", "lacks": "missing "}
        return " ".join(tags.get(w.split("_", 1)[0], "") + w.split("_", 1)[-1] for w in term.split())
    return term


@dataclass(frozen=True)
class TextClassifier:
    """TF-IDF + multinomial logistic regression over one text field, as plain arrays."""

    word_terms: tuple[str, ...]
    char_terms: tuple[str, ...]
    idf: np.ndarray
    """Word idf then char idf, aligned with `terms`."""
    coef: np.ndarray
    """(classes, terms): one row per label in `LABELS` order (zeros for a label never seen)."""
    intercept: np.ndarray

    @property
    def terms(self) -> tuple[str, ...]:
        return self.word_terms + self.char_terms

    @classmethod
    def fit(cls, texts: Sequence[str], codes: np.ndarray, *, c: float = 2.0) -> TextClassifier:
        word = TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, min_df=2, max_features=MAX_TERMS,
                               sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, min_df=2, max_features=MAX_TERMS,
                               sublinear_tf=True)
        word_terms = _fit_terms(word, texts)
        char_terms = _fit_terms(char, texts)
        idf = np.concatenate([word.idf_ if word_terms else np.zeros(0), char.idf_ if char_terms else np.zeros(0)])
        empty = cls(word_terms, char_terms, idf, np.zeros((len(LABELS), len(idf))), np.zeros(len(LABELS)))
        present = np.unique(codes)
        if len(present) < 2 or len(idf) == 0:
            prior = np.bincount(codes, minlength=len(LABELS)) + 1.0
            return cls(word_terms, char_terms, idf, empty.coef, np.log(prior / prior.sum()))
        matrix = empty.transform(texts)
        # Balanced classes: the rare failure points are the ones an analyst looks for.
        model = LogisticRegression(C=c, max_iter=300, class_weight="balanced")
        with threadpool_limits(1):  # BLAS threads on tiny sparse problems are 10x slower, not faster
            model.fit(matrix, codes)
        coef = np.zeros((len(LABELS), len(idf)))
        intercept = np.full(len(LABELS), -30.0)  # a label never seen in training gets ~0 probability
        if len(model.classes_) == 2:  # binary LR keeps one row: the second class against the first
            coef[model.classes_[1]], intercept[model.classes_[1]] = model.coef_[0], model.intercept_[0]
            coef[model.classes_[0]], intercept[model.classes_[0]] = 0.0, 0.0
        else:
            coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
        return cls(word_terms, char_terms, idf, coef, intercept)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """TF-IDF rows (sublinear tf, l2 per analyzer), the same before and after saving."""
        blocks = []
        for terms, idf, analyzer, ngrams in (
            (self.word_terms, self.idf[:len(self.word_terms)], "word", WORD_NGRAMS),
            (self.char_terms, self.idf[len(self.word_terms):], "char_wb", CHAR_NGRAMS),
        ):
            if not terms:
                continue
            counter = CountVectorizer(analyzer=analyzer, ngram_range=ngrams, vocabulary={t: i for i, t in enumerate(terms)},
                                      token_pattern=r"(?u)\b\w+\b" if analyzer == "word" else None)
            counts = counter.transform(texts).astype(float).tocsr()
            counts.data = 1.0 + np.log(counts.data)
            weighted = counts.multiply(idf[None, :]).tocsr()
            norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
            norms[norms == 0] = 1.0
            blocks.append(sparse.diags(1.0 / norms) @ weighted)
        if not blocks:
            return sparse.csr_matrix((len(texts), 0))
        return sparse.hstack(blocks).tocsr()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities per label; NaN rows for empty texts (a missing text is no evidence)."""
        scores = np.asarray(self.transform(texts) @ self.coef.T) + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        proba = np.exp(scores)
        proba /= proba.sum(axis=1, keepdims=True)
        proba[np.array([not t.strip() for t in texts], dtype=bool)] = np.nan
        return proba

    def telling_terms(self, text: str, label: str, *, top: int = 3) -> list[str]:
        """The words of `text` that speak most for `label` against the other labels."""
        if not text.strip() or not len(self.idf):
            return []
        row = self.transform([text])
        k = LABELS.index(label)
        lift = self.coef[k] - self.coef.mean(axis=0)
        weights = row.multiply(lift[None, :]).tocsr()
        order = np.argsort(-weights.data)
        terms, seen = [], set()
        for j in weights.indices[order]:
            if weights[0, j] <= 0:
                break
            term = self.terms[j].strip()
            if j >= len(self.word_terms):  # a character n-gram: show the word it sits in
                term = next((w for w in text.lower().split() if term in w), term)
            # one piece of evidence once: "put" adds nothing after "i put"
            if term and not any(term in t.split() or t in term.split() for t in seen):
                seen.add(term)
                terms.append(term)
            if len(terms) == top:
                break
        return terms


@dataclass(frozen=True)
class TextStack:
    """One `TextClassifier` per text field with enough labelled text."""

    models: Mapping[str, TextClassifier]

    def features(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """`text_<field>_<label>` columns for every field (NaN where the field has no model or no text)."""
        out: dict[str, np.ndarray] = {}
        for field in TEXT_FIELDS:
            names = text_feature_names(field.key)
            model = self.models.get(field.key)
            if model is None or field.column not in frame.columns:
                proba = np.full((len(frame), len(LABELS)), np.nan)
            else:
                proba = model.predict_proba(field_texts(frame, field))
            out.update({name: proba[:, i] for i, name in enumerate(names)})
        return out

    # -- persistence: JSON for the words, npz for the numbers ------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {key: {"word_terms": list(m.word_terms), "char_terms": list(m.char_terms)}
                for key, m in self.models.items()}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for key, m in self.models.items():
            out.update({f"{key}.idf": m.idf, f"{key}.coef": m.coef.astype(np.float32),
                        f"{key}.intercept": m.intercept})
        return out

    @classmethod
    def from_saved(cls, words: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> TextStack:
        models = {}
        for key, terms in words.items():
            if key not in FIELDS_BY_KEY:
                raise ValueError(f"unknown text field {key!r}")
            models[key] = TextClassifier(
                tuple(terms["word_terms"]), tuple(terms["char_terms"]), np.asarray(arrays[f"{key}.idf"], float),
                np.asarray(arrays[f"{key}.coef"], float), np.asarray(arrays[f"{key}.intercept"], float))
            if models[key].coef.shape != (len(LABELS), len(models[key].terms)):
                raise ValueError(f"text field {key!r}: coefficients do not match its vocabulary")
        return cls(models)


def fit_text_stack(
    frame: pd.DataFrame, codes: np.ndarray, *, folds: np.ndarray, seed: int = 0,
) -> tuple[TextStack, dict[str, np.ndarray]]:
    """The stack fitted on all labelled turns, and its out-of-fold features for every turn.

    `codes` are label codes (-1 unlabelled); `folds` gives each turn's fold
    (-1 for turns no fold holds out), grouped by dialogue by the caller. A
    labelled turn's out-of-fold features come from the text model fitted without
    its fold; other turns get the full model's. Stored as float32 coefficients,
    so the out-of-fold and saved models are rounded alike.
    """
    models: dict[str, TextClassifier] = {}
    oof: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(seed)
    labelled = codes >= 0
    for field in TEXT_FIELDS:
        names = text_feature_names(field.key)
        texts = np.array(field_texts(frame, field), dtype=object)
        has_text = labelled & np.array([bool(t.strip()) for t in texts], dtype=bool)
        if has_text.sum() < MIN_TURNS or len(np.unique(codes[has_text])) < 2:
            continue
        rows = _cap_rows(has_text, rng)
        model = _rounded(TextClassifier.fit(texts[rows].tolist(), codes[rows]))
        models[field.key] = model
        proba = model.predict_proba(texts.tolist())
        for fold in np.unique(folds[folds >= 0]):
            train = has_text & (folds != fold)
            held = labelled & (folds == fold)
            if train.sum() < MIN_TURNS or len(np.unique(codes[train])) < 2 or not held.any():
                proba[held] = np.nan  # no honest out-of-fold estimate: treat as missing
                continue
            rows = _cap_rows(train, rng)
            fold_model = _rounded(TextClassifier.fit(texts[rows].tolist(), codes[rows]))
            proba[held] = fold_model.predict_proba(texts[held].tolist())
        oof.update({name: proba[:, i] for i, name in enumerate(names)})
    stack = TextStack(models)
    for field in TEXT_FIELDS:
        if field.key not in models:
            oof.update({name: np.full(len(frame), np.nan) for name in text_feature_names(field.key)})
    return stack, oof


def _fit_terms(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> tuple[str, ...]:
    try:
        vectorizer.fit(texts)
    except ValueError:  # too few documents for min_df, or no tokens at all
        return ()
    vocabulary = vectorizer.vocabulary_
    return tuple(sorted(vocabulary, key=vocabulary.__getitem__))


def _cap_rows(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows = np.flatnonzero(mask)
    if len(rows) > MAX_TRAIN_TURNS:
        rows = np.sort(rng.choice(rows, MAX_TRAIN_TURNS, replace=False))
    return rows


def _rounded(model: TextClassifier) -> TextClassifier:
    """Coefficients as saved (float32), so a model predicts the same before and after a round trip."""
    return TextClassifier(model.word_terms, model.char_terms, model.idf, model.coef.astype(np.float32).astype(float),
                          model.intercept)
