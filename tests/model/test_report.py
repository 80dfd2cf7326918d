"""The candidate advice: keep or activate, from macro-F1 on the same turns."""
from __future__ import annotations

import numpy as np
import pytest

from fpi.model.evaluate import evaluate_predictions
from fpi.model.report import advise_candidate
from fpi.data.schema import LABELS


def _proba(labels: list[str]) -> np.ndarray:
    out = np.full((len(labels), len(LABELS)), 0.02)
    for i, label in enumerate(labels):
        out[i, LABELS.index(label)] = 0.9
    return out


TRUTH = np.array(list(LABELS) * 10, dtype=object)
RIGHT = list(TRUTH)
WRONG_HALF = [label if i % 2 else "correct" for i, label in enumerate(TRUTH)]


@pytest.mark.parametrize("active, candidate, verdict", [
    (WRONG_HALF, RIGHT, "better"), (RIGHT, WRONG_HALF, "worse"), (RIGHT, RIGHT, "same"),
])
def test_advice_follows_macro_f1_on_the_same_turns(active, candidate, verdict) -> None:
    report = evaluate_predictions(TRUTH, {"active (v1)": _proba(active), "candidate (v2)": _proba(candidate)})
    advice = advise_candidate(report, what="held-out turns")
    assert advice.verdict == verdict
    assert advice.turns == len(TRUTH)
    assert advice.activate_first == (verdict == "better")
    assert advice.confirm_activation == (verdict == "worse")
    assert f"on the same {len(TRUTH)} held-out turns" in advice.text
    if verdict == "worse":
        assert "Keep the active model" in advice.text
        assert f"{advice.candidate_f1:.3f} against {advice.active_f1:.3f}" in advice.text


def test_advice_reads_the_triage_pages_system_names() -> None:
    report = evaluate_predictions(TRUTH, {"active": _proba(RIGHT), "candidate": _proba(WRONG_HALF)})
    assert advise_candidate(report).verdict == "worse"
