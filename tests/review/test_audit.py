"""The audit before retraining: planted wrong verdicts are flagged, right ones mostly not; confirmed ones kept;
nothing left out when the data reads the pipeline too poorly to overrule an analyst."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.review.audit import audit_verdicts


def planted(frame: pd.DataFrame, *, n: int, wrong: int, seed: int) -> tuple[pd.DataFrame, set[tuple[str, int]]]:
    """`n` verdicts on labelled turns, `wrong` of them with another label than the true one."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(np.flatnonzero(frame[LABEL_COLUMN].notna().to_numpy()), n, replace=False)
    picked = frame.iloc[rows]
    labels = picked[LABEL_COLUMN].astype(str).to_numpy().copy()
    bad = rng.choice(n, wrong, replace=False)
    for i in bad:
        labels[i] = rng.choice([label for label in LABELS if label != labels[i]])
    verdicts = pd.DataFrame({"dialogue_id": picked["dialogue_id"].astype(str).to_numpy(),
                             "turn_index": picked["turn_index"].astype("int64").to_numpy(), "label": labels,
                             "analyst": "Ana"})
    wrong_keys = {(str(verdicts.loc[i, "dialogue_id"]), int(verdicts.loc[i, "turn_index"])) for i in bad}
    return verdicts, wrong_keys


@pytest.mark.parametrize("unlabelled", [False, True], ids=["labelled data", "verdicts only"])
def test_most_planted_wrong_verdicts_are_flagged_and_few_right_ones(sim_small, tiny_model, unlabelled: bool) -> None:
    frame = sim_small
    verdicts, wrong = planted(frame, n=600, wrong=60, seed=1)
    if unlabelled:  # the usual case: traces without labels, everything known comes from verdicts
        frame = frame.assign(**{LABEL_COLUMN: pd.array([None] * len(frame), dtype="str")})
    result = audit_verdicts(frame, verdicts, model=tiny_model)
    flagged = set(zip(result.flags["dialogue_id"], result.flags["turn_index"]))
    caught = len(flagged & wrong) / len(wrong)
    false_flags = len(flagged - wrong) / (len(verdicts) - len(wrong))
    assert result.checked == 600
    assert result.trusted, f"the audit model agreed with only {result.agreement:.0%} of the labels"
    assert caught >= 0.6, f"caught {caught:.0%} of the planted errors"
    assert false_flags <= 0.05, f"flagged {false_flags:.1%} of the right verdicts"
    assert result.excluded == result.flagged and result.confirmed == 0
    assert f"the data agrees with {result.agreement:.0%} of the labels" in result.summary()
    assert len(result.kept(verdicts)) == 600 - result.flagged


def test_a_confirmed_verdict_is_flagged_but_kept(sim_small, tiny_model) -> None:
    verdicts, wrong = planted(sim_small, n=300, wrong=30, seed=2)
    first = audit_verdicts(sim_small, verdicts, model=tiny_model)
    sure = first.flags.head(2)[["dialogue_id", "turn_index"]].itertuples(index=False)
    again = audit_verdicts(sim_small, verdicts, model=tiny_model, confirmed=[tuple(k) for k in sure])
    assert again.flagged == first.flagged and again.confirmed == 2 and again.excluded == first.flagged - 2
    assert len(again.kept(verdicts)) == 300 - again.excluded
    assert "flagged" in again.summary() and again.to_dict()["confirmed"] == 2


def test_a_model_that_reads_the_labels_poorly_flags_but_leaves_nothing_out(sim_small, tiny_model) -> None:
    """Labels the features cannot predict (shuffled among the turns): the data's disagreement is its own error."""
    verdicts, _ = planted(sim_small, n=300, wrong=0, seed=3)
    verdicts["label"] = np.random.default_rng(3).permutation(verdicts["label"].to_numpy())
    frame = sim_small.assign(**{LABEL_COLUMN: pd.array([None] * len(sim_small), dtype="str")})
    result = audit_verdicts(frame, verdicts, model=tiny_model)
    assert result.kappa < 0.2 and not result.trusted
    assert result.flagged > 0 and result.excluded == 0 and set(result.flags["status"]) == {"kept"}
    assert len(result.kept(verdicts)) == 300
    assert "none left out" in result.summary() and result.to_dict()["trusted"] is False
