"""Feature names in words (`fpi.model.glossary`), and the explanations that use them."""
from __future__ import annotations

import numpy as np
import pytest

from fpi.model import glossary
from fpi.ui import model_charts
from fpi.config import SAMPLE_LABELLED, SHIPPED_MODEL
from fpi.model.explain import explain_rows
from fpi.model.estimator import FailurePointModel
from fpi.model.text_stack import TEXT_FIELDS, text_feature_names
from fpi.data.traces import load_traces


@pytest.fixture(scope="module")
def shipped() -> FailurePointModel:
    if not (SHIPPED_MODEL / "meta.json").is_file():
        pytest.skip("needs the shipped model")
    return FailurePointModel.load(SHIPPED_MODEL)


def test_every_feature_of_the_shipped_model_has_a_name_and_a_meaning(shipped: FailurePointModel) -> None:
    names = list(shipped.spec.features)
    table = glossary.glossary_table(names)
    assert list(table["feature"]) == names
    assert not [n for n in names if glossary.meaning(n).startswith("Column ")]  # no fallback entry
    assert table["name"].is_unique  # one name per feature: a chart never merges two rows
    assert all(m[0].isupper() and m.endswith((".", ")")) for m in table["meaning"])


@pytest.mark.parametrize("feature, words", [
    ("drop_asr", "confidence drop into ASR"),
    ("rank_drop_nlu", "rank drop into NLU"),
    ("cascade_min_to_er", "lowest confidence from wake to ER"),
    ("rank_cascade_min_to_result", "lowest rank from wake to result"),
    ("rank_asr_confidence", "ASR confidence, rank in this upload"),
    ("missing_er_confidence", "ER confidence not logged"),
    ("next_rank_nlu_confidence", "next turn: NLU confidence rank"),
    ("asr_nbest_margin", "ASR: nbest margin"),
    ("text_next_asr", "text model: the next turn's text"),
    ("text_next_asr_false_wake", "text model: the next turn's text → false wake"),
])
def test_prefixed_families_get_names(feature: str, words: str) -> None:
    assert glossary.display_name(feature) == words
    assert glossary.meaning(feature)


def test_every_text_feature_has_an_entry() -> None:
    for field in TEXT_FIELDS:
        for name in [f"text_{field.key}", *text_feature_names(field.key)]:
            assert glossary.display_name(name).startswith("text model: "), name


def test_values_read_by_name_and_missing_as_not_logged() -> None:
    levels = {"nlu_intent": ["PlayMusic", "PlayAudiobook"]}
    assert glossary.format_value("nlu_intent", 1.0, levels=levels) == "PlayAudiobook"
    assert glossary.format_value("er_confidence", np.nan) == "not logged"
    assert glossary.format_value("cascade_lowest_stage", 1.0) == "ASR"
    assert glossary.format_value("barge_in", 1.0) == "yes"
    assert glossary.labelled_value("nlu_intent", 1.0, levels=levels) == "NLU intent = PlayAudiobook"


def test_waterfall_and_reasons_speak_the_same_words(shipped: FailurePointModel) -> None:
    frame = load_traces(SAMPLE_LABELLED).head(400)
    features = shipped.features(frame)
    checked = 0
    for explanation in explain_rows(shipped, features.iloc[:60], frame=frame):
        rows = list(model_charts.waterfall_figure(explanation).data[0].y)
        text = " ".join(rows)
        assert "nan" not in text.lower().replace("nance", "")
        # No internal names (drop_asr, cascade_min_to_er, nlu_intent); values keep theirs (smart_home).
        assert not [name for name in features.columns if "_" in name and name in text]
        for reason in explanation.reasons[:3]:  # the reasons open with the chart's label of their bar
            assert any(row.strip() == reason.phrase for row in rows)
            assert reason.text.startswith(reason.phrase)
        for category in ("device_type", "locale", "nlu_domain", "nlu_intent"):
            for reason in explanation.evidence[:10]:
                if reason.feature == category and not np.isnan(reason.value):
                    assert reason.phrase.endswith(shipped.spec.levels[category][int(reason.value)])
                    checked += 1
    assert checked, "no categorical feature among the top evidence of 60 turns"


def test_stage_bar_labels_are_signed_and_not_clipped(shipped: FailurePointModel) -> None:
    frame = load_traces(SAMPLE_LABELLED).head(200)
    explanation = explain_rows(shipped, shipped.features(frame).iloc[:20], frame=frame)[5]
    bar = model_charts.stage_group_figure(explanation).data[0]
    assert bar.textposition == "outside" and bar.cliponaxis is False
    for value, text in zip(bar.x, bar.text):
        assert text == f"{value:+.2f}".replace("-", "\u2212")
    low, high = model_charts.stage_group_figure(explanation).layout.xaxis.range
    assert low < min(0, min(bar.x)) and high > max(0, max(bar.x))


def test_a_cohort_is_named_with_the_columns_display_names() -> None:
    from fpi.model.glossary import cohort_name

    assert cohort_name([("device_type", "car"), ("nlu_domain", "video")]) == "device = car and NLU domain = video"
    assert cohort_name([("app_version", "4.13")]) == "app version = 4.13"
    assert cohort_name([]) == "all turns"
