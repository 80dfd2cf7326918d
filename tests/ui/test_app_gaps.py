"""The Cohorts page splits the gap of each flagged locale and device into its failure points."""
from __future__ import annotations

import json

import pandas as pd
from streamlit.testing.v1 import AppTest

from fpi.analysis.gaps import stage_gaps
from fpi.model.glossary import cohort_name
from fpi.data.traces import load_traces
from fpi.model.estimator import FailurePointModel
from app_files import no_exception

COHORTS = "fpi/ui/pages/cohorts.py"


def test_each_flagged_locale_or_device_gets_its_stage_decomposition(at: AppTest, files) -> None:
    at.run()  # the app opens on the Overview with the labelled sample
    at.switch_page(COHORTS).run()
    no_exception(at)
    assert "Which stage drives each gap" in [s.value for s in at.subheader]
    scored = FailurePointModel.load(files.model).score(load_traces(files.labelled))
    expected = stage_gaps(scored, min_support=200)  # the page's defaults: predictions, 200 turns, FDR 0.05
    flagged = list(dict.fromkeys(cohort_name([(c, v)]) for c, v in zip(expected["column"], expected["value"])))
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")
              if c.proto.spec and "points worse than the rest" in c.proto.spec]
    assert flagged, "the sample has a locale or device that fails more often (the test needs one)"
    assert len(titles) == min(len(flagged), 8)
    sentences = [t.value for t in at.text if "points worse than the rest" in t.value]
    gaps = list(100 * expected.loc[expected["failure_point"] == "defect", "difference"])  # per cohort, in order
    # The charts stand in two columns (worst gap first, left to right); the page reads column by column.
    shown = list(range(0, len(titles), 2)) + list(range(1, len(titles), 2))
    for k, title, sentence in zip(shown, titles, sentences):
        cohort, gap = flagged[k], gaps[k]
        assert title == f"{cohort}: {gap:.1f} points worse than the rest"
        assert sentence.startswith(f"{cohort}: {gap:.1f} points worse") and "By stage: " in sentence
        assert "false_wake" not in sentence and "asr" not in sentence and "_" not in sentence  # display names


def test_the_sentence_names_the_stage_that_makes_up_the_gap() -> None:
    from fpi.ui.pages.cohorts import _gap_sentence

    def rows(parts: dict[str, float]) -> pd.DataFrame:
        whole = sum(parts.values())
        return pd.DataFrame({"failure_point": ["defect", *parts], "difference": [whole, *parts.values()],
                             "rate": 0.3, "rest_rate": 0.3 - whole})

    some = _gap_sentence(rows({"asr": 0.09, "nlu": 0.02, "er": 0.01}), "locale = en-IN")
    assert some == ("locale = en-IN: 12.0 points worse than the rest (30.0% vs 18.0%), 9.0 of them ASR.\n"
                    "By stage: ASR +9.0, NLU +2.0, ER +1.0.")
    more = _gap_sentence(rows({"asr": 0.074, "nlu": 0.008, "false_wake": -0.011}), "device = car")
    assert more.startswith("device = car: 7.1 points worse than the rest (30.0% vs 22.9%), all of it ASR (+7.4; "
                           "the other stages together -0.3).")
