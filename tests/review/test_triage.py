"""Triage: the queue's order and filters, verdicts combined with labels, exports, retraining from verdicts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fpi.cli import main
from fpi.config import SHIPPED_MODEL
from fpi.errors import FpiError, ModelError, NotLabelledError
from fpi.data.write import neutralise_formulas
from fpi.review.export import with_latest_verdicts
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.model.registry import DEFAULT, Registry
from fpi.review.retrain import LABEL_SOURCE, RetrainConfig, continue_training, labels_with_verdicts, retrain_from_verdicts
from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.model.splits import dialogue_bucket
from fpi.simulator.simulate import simulate
from fpi.review.store import VerdictStore
from fpi.data.summary import dataset_fingerprint
from fpi.data.traces import load_traces
from fpi.data.write import write_traces
from fpi.review.triage import (
    dialogue_context, explore_order, next_in_queue, queue_progress, triage_queue, turn_embedding, uncertainty_scores,
)

QUICK = TrainConfig(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5, seed=0, num_threads=1)


def scored_frame(probabilities: list[list[float]], **columns: list) -> pd.DataFrame:
    """A scored frame with one dialogue per row unless `dialogue_id` is given."""
    proba = np.asarray(probabilities, dtype=float)
    n = len(proba)
    frame = pd.DataFrame({
        "dialogue_id": columns.pop("dialogue_id", [f"d{i}" for i in range(n)]),
        "turn_index": columns.pop("turn_index", [0] * n),
        **columns,
    })
    frame["predicted_failure_point"] = np.asarray(LABELS, dtype=object)[proba.argmax(axis=1)]
    for i, label in enumerate(LABELS):
        frame[f"p_{label}"] = proba[:, i]
    return frame


#                 correct false_wake asr  nlu  er   result
SURE_CORRECT = [0.96, 0.01, 0.01, 0.01, 0.005, 0.005]
TORN_ASR = [0.45, 0.0, 0.46, 0.05, 0.02, 0.02]  # margin 0.01
SPREAD = [0.30, 0.0, 0.25, 0.25, 0.20, 0.0]  # margin 0.05, highest entropy
LIKELY_DEFECT = [0.05, 0.0, 0.90, 0.03, 0.01, 0.01]  # margin 0.85, defect 0.95


@pytest.fixture()
def scored() -> pd.DataFrame:
    return scored_frame([SURE_CORRECT, TORN_ASR, SPREAD, LIKELY_DEFECT],
                        device_type=["tv", "tv", "car", None])


# ---------------------------------------------------------------- the queue

@pytest.mark.parametrize(("order", "expected"), [
    ("uncertainty", ["d1", "d2", "d3", "d0"]),
    ("entropy", ["d2", "d1", "d3", "d0"]),
    ("defect_probability", ["d3", "d2", "d1", "d0"]),
])
def test_queue_orders(scored: pd.DataFrame, order: str, expected: list[str]) -> None:
    queue = triage_queue(scored, order=order)
    assert list(queue["dialogue_id"]) == expected
    assert queue["priority"].is_monotonic_decreasing
    assert list(queue.columns[:3]) == ["row", "dialogue_id", "turn_index"]
    # `row` points back into the scored frame
    assert list(scored["dialogue_id"].iloc[queue["row"]]) == expected


def skewed_scores(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Scored turns of which 90% are predicted correct; the rarest label is predicted for 1%."""
    rng = np.random.default_rng(seed)
    shares = np.array([0.90, 0.01, 0.03, 0.02, 0.02, 0.02])
    predicted = rng.choice(len(LABELS), size=n, p=shares)
    proba = rng.dirichlet(np.ones(len(LABELS)), size=n) * 0.4
    proba[np.arange(n), predicted] += 0.6
    return scored_frame(proba.tolist(), device_type=rng.choice(["tv", "car", "phone"], size=n).tolist(),
                        asr_confidence=rng.uniform(size=n).tolist())


def test_explore_is_the_default_and_covers_every_predicted_label_early() -> None:
    frame = skewed_scores()
    queue = triage_queue(frame)
    first = queue.head(30)
    assert set(first["predicted_failure_point"]) == set(LABELS)  # by margin alone, 30 turns miss labels
    assert first["predicted_failure_point"].value_counts()["correct"] == first[
        "predicted_failure_point"].value_counts().max()  # the common label still comes up most
    assert sorted(queue["row"]) == list(range(len(frame)))  # every turn once
    assert queue["priority"].is_monotonic_decreasing
    pd.testing.assert_frame_equal(queue, triage_queue(frame))  # deterministic


def test_explore_moves_away_from_judged_turns() -> None:
    frame = skewed_scores(200)
    done = {(d, 0) for d in frame["dialogue_id"].iloc[:50]}
    queue = triage_queue(frame, exclude_reviewed=done)
    assert len(queue) == 150 and not set(zip(queue["dialogue_id"], queue["turn_index"])) & done
    assert queue["row"].min() >= 50  # `row` still points into the whole frame


def test_uncertainty_scores() -> None:
    scores = uncertainty_scores(np.array([TORN_ASR, [1 / 6] * 6]))
    assert scores["margin"].tolist() == pytest.approx([0.01, 0.0])
    assert scores["entropy"].iloc[1] == pytest.approx(np.log(6))
    assert scores["defect_probability"].iloc[0] == pytest.approx(0.55)
    assert scores["confidence"].iloc[0] == pytest.approx(0.46)


def test_ties_keep_the_traces_order() -> None:
    queue = triage_queue(scored_frame([TORN_ASR] * 5), order="uncertainty")
    assert list(queue["dialogue_id"]) == [f"d{i}" for i in range(5)]


@pytest.mark.parametrize(("label", "cohort", "expected"), [
    ("asr", None, ["d1", "d3"]),
    (["correct", "asr"], None, ["d1", "d2", "d3", "d0"]),
    (None, {"device_type": "tv"}, ["d1", "d0"]),
    ("asr", {"device_type": "tv"}, ["d1"]),
    (None, {"device_type": "(missing)"}, ["d3"]),
    (None, {"device_type": "phone"}, []),
])
def test_queue_filters(scored: pd.DataFrame, label, cohort, expected: list[str]) -> None:
    assert list(triage_queue(scored, order="uncertainty", label=label, cohort=cohort)["dialogue_id"]) == expected


def test_reviewed_turns_are_left_out(scored: pd.DataFrame) -> None:
    queue = triage_queue(scored, order="uncertainty", exclude_reviewed={("d1", 0), ("d3", 0), ("d1", 5)})
    assert list(queue["dialogue_id"]) == ["d2", "d0"]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"order": "loudest"}, FpiError, "unknown queue order 'loudest'"),
    ({"label": "broken"}, FpiError, "unknown label filter"),
    ({"cohort": {"app_version": "4.12"}}, FpiError, "names column 'app_version'"),
])
def test_bad_queue_options_are_named(scored: pd.DataFrame, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        triage_queue(scored, **kwargs)


def test_an_unscored_frame_is_refused(scored: pd.DataFrame) -> None:
    with pytest.raises(ModelError, match="not scored"):
        triage_queue(scored.drop(columns=["p_er"]))


def test_next_item_and_progress_come_from_the_cached_queue(scored: pd.DataFrame) -> None:
    queue = triage_queue(scored, order="uncertainty")
    assert next_in_queue(queue, set())["dialogue_id"] == "d1"
    assert next_in_queue(queue, {("d1", 0)})["dialogue_id"] == "d2"
    assert next_in_queue(queue, {("d1", 0)}, skipped={("d2", 0)})["dialogue_id"] == "d3"
    assert next_in_queue(queue, {(f"d{i}", 0) for i in range(4)}) is None
    assert queue_progress(queue, {("d1", 0), ("x", 1)}) == (1, 4)
    assert queue_progress(queue.iloc[:0], {("d1", 0)}) == (0, 0)


def test_dialogue_context_marks_the_turn_under_review() -> None:
    frame = scored_frame([SURE_CORRECT, TORN_ASR, SPREAD], dialogue_id=["a", "a", "b"], turn_index=[1, 0, 0],
                         asr_text=["play it again", "play it", "weather"])
    context = dialogue_context(frame, "a", 1)
    assert list(context["turn_index"]) == [0, 1]
    assert list(context["this_turn"]) == [False, True]
    assert list(context["asr_text"]) == ["play it", "play it again"]
    assert context["confidence"].tolist() == pytest.approx([0.46, 0.96])


# ---------------------------------------------------------------- verdicts and labels

def verdict_rows(*rows: tuple[str, int, str], dataset: str = "f" * 64) -> pd.DataFrame:
    return pd.DataFrame([{"id": i + 1, "dataset_fingerprint": dataset, "dialogue_id": d, "turn_index": t,
                          "label": label, "analyst": "ana", "note": None,
                          "created_at": pd.Timestamp("2026-01-01", tz="UTC")}
                         for i, (d, t, label) in enumerate(rows)])


def test_verdicts_win_over_labels_in_the_data() -> None:
    frame = pd.DataFrame({"dialogue_id": ["a", "a", "b", "c"], "turn_index": [0, 1, 0, 0],
                          LABEL_COLUMN: pd.array(["correct", None, "asr", None], dtype="str")})
    combined = labels_with_verdicts(frame, verdict_rows(("a", 0, "nlu"), ("b", 0, "asr"), ("c", 0, "er"),
                                                        ("zzz", 3, "result")))
    assert combined[LABEL_COLUMN].isna().tolist() == [False, True, False, False]
    assert combined[LABEL_COLUMN].dropna().tolist() == ["nlu", "asr", "er"]
    assert combined[LABEL_SOURCE].fillna("").tolist() == ["verdict", "", "verdict", "verdict"]
    assert len(combined) == len(frame) and frame[LABEL_COLUMN].tolist()[0] == "correct"  # input untouched


def test_labels_without_a_label_column() -> None:
    frame = pd.DataFrame({"dialogue_id": ["a", "b"], "turn_index": [0, 0]})
    combined = labels_with_verdicts(frame, verdict_rows(("b", 0, "asr")))
    assert combined[LABEL_COLUMN].isna().tolist() == [True, False]
    with pytest.raises(FpiError, match="at most one verdict per"):
        labels_with_verdicts(frame, verdict_rows(("b", 0, "asr"), ("b", 0, "er")))


# ---------------------------------------------------------------- exports

def test_export_adds_the_latest_verdict_per_turn() -> None:
    frame = scored_frame([SURE_CORRECT, TORN_ASR, SPREAD], dialogue_id=["a", "a", "b"], turn_index=[0, 1, 0])
    verdicts = verdict_rows(("a", 1, "asr"), ("b", 0, "nlu"), ("elsewhere", 0, "er"))
    verdicts.loc[1, "note"] = "=bad"
    out = with_latest_verdicts(frame, verdicts)
    assert out.columns[-4:].tolist() == ["verdict_label", "verdict_analyst", "verdict_note", "verdict_at"]
    assert out["verdict_label"].tolist()[1:] == ["asr", "nlu"] and pd.isna(out["verdict_label"].iloc[0])
    assert out["verdict_note"].iloc[2] == "=bad" and neutralise_formulas(out)["verdict_note"].iloc[2] == "'=bad"
    assert str(out["verdict_at"].dt.tz) == "UTC" and len(out) == 3
    assert out["p_asr"].tolist() == frame["p_asr"].tolist()


def test_cli_export_and_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FPI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FPI_DB_URL", raising=False)
    traces = tmp_path / "t.csv"
    frame = simulate(30, seed=4)
    write_traces(frame, traces)
    dataset = dataset_fingerprint(load_traces(traces))
    with VerdictStore.from_config() as store:
        store.record(dataset=dataset, dialogue_id="d000001", turn_index=0, label="asr", analyst="@ana",
                     note="-first")
        store.record(dataset=dataset, dialogue_id="d000001", turn_index=0, label="er", analyst="bob")
    runner = CliRunner()
    history = runner.invoke(main, ["verdicts", "history", "d000001", "0"])
    assert history.exit_code == 0, history.output
    lines = history.output.strip().splitlines()
    assert len(lines) == 2 and "asr" in lines[0] and "by @ana" in lines[0] and "note: -first" in lines[0]
    assert "er" in lines[1] and "bob" in lines[1]
    assert "no verdicts" in runner.invoke(main, ["verdicts", "history", "nope", "3"]).output

    result = runner.invoke(main, ["verdicts", "export", "--all", "-o", str(tmp_path / "all.csv")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "all.csv")
    assert table["analyst"].tolist() == ["'@ana", "bob"] and table["note"].tolist()[0] == "'-first"

    out = tmp_path / "scored.parquet"
    result = runner.invoke(main, ["verdicts", "export", "--traces", str(traces), "--model", str(SHIPPED_MODEL),
                                  "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "(1 with a verdict)" in result.output
    exported = pd.read_parquet(out)
    judged = exported[exported["verdict_label"].notna()]
    assert judged[["dialogue_id", "turn_index", "verdict_label", "verdict_analyst"]].values.tolist() == [
        ["d000001", 0, "er", "bob"]]
    assert "predicted_failure_point" in exported.columns and len(exported) == len(frame)


# ---------------------------------------------------------------- retraining

@pytest.fixture(scope="module")
def active() -> FailurePointModel:
    return FailurePointModel.load(SHIPPED_MODEL)


@pytest.fixture(scope="module")
def unlabelled() -> tuple[pd.DataFrame, np.ndarray]:
    """Traces without labels, and their true labels (the simulated analyst's answers)."""
    frame = simulate(400, seed=31)
    truth = frame[LABEL_COLUMN].to_numpy(dtype=object)
    return frame.assign(**{LABEL_COLUMN: pd.array([None] * len(frame), dtype="str")}), truth


def answers(frame: pd.DataFrame, truth: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
    return verdict_rows(*((frame["dialogue_id"].iloc[r], int(frame["turn_index"].iloc[r]), truth[r]) for r in rows))


def test_too_few_labels_is_said_clearly(active, unlabelled) -> None:
    frame, truth = unlabelled
    with pytest.raises(NotLabelledError, match=r"at least 50 labelled turns; there are 12 \(0 labelled in the "
                                               r"data, 12 verdicts\)"):
        retrain_from_verdicts(frame, answers(frame, truth, np.arange(12)), active=active)


def test_retrained_candidate_is_compared_with_the_active_on_the_same_heldout_turns(
        active, unlabelled, tmp_path: Path) -> None:
    frame, truth = unlabelled
    rows = np.arange(0, len(frame), 3)  # every third turn judged: ~330 verdicts
    result = retrain_from_verdicts(frame, answers(frame, truth, rows), active=active,
                                   config=RetrainConfig(strategy="continue", folds=5, train=TrainConfig(num_threads=1)))
    systems = result.comparison["systems"]
    assert set(systems) == {"active", "candidate"}
    # every labelled turn is held out once (cross-validation by dialogue), then the candidate learns from all
    assert systems["active"]["turns"] == systems["candidate"]["turns"] == result.heldout_turns == len(rows)
    assert result.heldout_verdicts == result.heldout_turns  # only verdicts are labelled here
    assert result.training_turns == result.verdict_turns == len(rows)
    assert result.strategy == "continue" and set(result.strategy_scores) == {"continue"} and result.folds == 5
    candidate = result.candidate
    assert candidate.booster.num_trees() == active.booster.num_trees() + 30 * len(LABELS)
    assert candidate.meta["retraining"]["base_model"] == active.version
    assert candidate.meta["training_data"]["verdict_turns"] == result.training_turns

    # saved in the registry (versioned, not active), loadable, and the shipped model untouched
    shipped = {p.name: p.read_bytes() for p in SHIPPED_MODEL.iterdir()}
    registry = Registry(tmp_path / "home")
    entry = registry.save_candidate(candidate)
    assert registry.active_version() == DEFAULT
    loaded = FailurePointModel.load(entry.path)
    np.testing.assert_allclose(loaded.predict_proba(frame.head(50)), candidate.predict_proba(frame.head(50)))
    assert registry.locate(active.version).version == DEFAULT
    assert registry.locate(entry.version).path == entry.path and registry.locate("") is None
    registry.activate(entry.version)
    assert registry.rollback() == DEFAULT
    assert {p.name: p.read_bytes() for p in SHIPPED_MODEL.iterdir()} == shipped


def test_continuing_learns_what_the_verdicts_say(active, unlabelled) -> None:
    frame, truth = unlabelled
    combined = labels_with_verdicts(frame, answers(frame, truth, np.arange(len(frame))))
    # analysts who say every video request was misrouted: the candidate must learn that rule
    video = (frame["nlu_domain"] == "video").to_numpy(dtype=bool, na_value=False)
    combined[LABEL_COLUMN] = pd.array(np.where(video, "nlu", truth), dtype="str")
    candidate = continue_training(active, combined, train=np.ones(len(combined), bool),
                                  config=RetrainConfig(rounds=30, learning_rate=0.2))
    before = (active.predict(frame)[video] == "nlu").mean()
    after = (candidate.predict(frame)[video] == "nlu").mean()
    assert video.sum() > 50 and before < 0.3 and after > 0.9
    assert candidate.version == "" and candidate.temperature == active.temperature  # not saved yet


def test_scratch_strategy_trains_a_new_model(active, unlabelled) -> None:
    frame, truth = unlabelled
    result = retrain_from_verdicts(frame, answers(frame, truth, np.arange(len(frame))), active=active,
                                   config=RetrainConfig(strategy="scratch", train=QUICK, folds=2))
    assert result.candidate.meta["retraining"]["strategy"] == "scratch"
    assert result.candidate.booster.num_trees() != active.booster.num_trees()
    assert result.comparison["systems"]["candidate"]["turns"] == result.heldout_turns
    with pytest.raises(ModelError, match="unknown retraining strategy 'magic'"):
        retrain_from_verdicts(frame, answers(frame, truth, np.arange(60)), active=active,
                              config=RetrainConfig(strategy="magic"))


def test_explore_turns_to_the_models_doubts_only_after_the_first_verdicts() -> None:
    frame = skewed_scores()
    margin = uncertainty_scores(frame[[f"p_{label}" for label in LABELS]].to_numpy())["margin"].to_numpy()
    correct = np.flatnonzero(frame["predicted_failure_point"] == "correct")
    least_sure = set(correct[np.argsort(margin[correct])[:5]])
    everything = np.arange(len(frame))
    early = explore_order(frame, candidates=everything)[:40]
    later = explore_order(frame, candidates=everything, explore_first=0)[:40]
    assert len(least_sure & set(later)) >= 3 and len(least_sure & set(early)) <= 1


def simulated_upload(dialogues: int = 400, seed: int = 4) -> pd.DataFrame:
    """Simulated traces (devices, locales, confidences, dialogues) with made-up, skewed probabilities."""
    frame = simulate(dialogues, seed=seed).drop(columns=[LABEL_COLUMN])
    rng = np.random.default_rng(seed)
    predicted = rng.choice(len(LABELS), size=len(frame), p=[0.7, 0.05, 0.1, 0.05, 0.05, 0.05])
    proba = rng.dirichlet(np.ones(len(LABELS)), size=len(frame)) * 0.5
    proba[np.arange(len(frame)), predicted] += 0.5
    frame["predicted_failure_point"] = np.asarray(LABELS, dtype=object)[proba.argmax(axis=1)]
    for i, label in enumerate(LABELS):
        frame[f"p_{label}"] = proba[:, i]
    return frame


def reference_explore_order(scored: pd.DataFrame, candidates: np.ndarray, reviewed: np.ndarray, *, turns: int,
                            pool: int, explore_first: int, uncertain_every: int = 3, shortlist: int = 8,
                            power: float = 0.5) -> np.ndarray:
    """The explore rule written plainly: after every pick, each pooled turn's distance to the nearest chosen one."""
    margin = uncertainty_scores(scored[[f"p_{label}" for label in LABELS]].to_numpy())["margin"].to_numpy()
    bucket = dialogue_bucket(scored["dialogue_id"].astype("str"), seed=0) + 1e-9 * scored["turn_index"].to_numpy(
        dtype=float)
    in_play = candidates
    if len(candidates) > pool:
        in_play = np.sort(candidates[np.argsort(bucket[candidates], kind="stable")[:pool]])
    embedding = turn_embedding(scored)
    points = embedding[in_play]
    nearest = np.full(len(in_play), np.inf)
    for row in reviewed:
        nearest = np.minimum(nearest, np.sqrt(((points - embedding[row]) ** 2).sum(axis=1)))
    predicted = np.array([LABELS.index(p) for p in scored["predicted_failure_point"].iloc[in_play]])
    strata = [s for s in (np.flatnonzero(predicted == k) for k in range(len(LABELS))) if len(s)]
    by_hash = [list(s[np.argsort(bucket[in_play[s]], kind="stable")]) for s in strata]
    by_margin = [list(s[np.argsort(margin[in_play[s]], kind="stable")]) for s in strata]
    share = np.array([len(s) for s in strata], dtype=float) ** power
    share /= share.sum()
    taken = np.zeros(len(strata))
    picks: list[int] = []
    while len(picks) < min(turns, len(in_play)):
        left = np.array([len(s) for s in by_hash])
        i = int(np.argmax(np.where(left > 0, share * (len(picks) + 1) - taken, -np.inf)))
        if len(reviewed) + len(picks) >= explore_first and int(taken[i]) % uncertain_every == uncertain_every - 1:
            choice = by_margin[i][0]
        else:
            listed = by_hash[i][:shortlist]
            choice = listed[int(np.argmax(nearest[listed]))]
        picks.append(choice)
        by_hash[i].remove(choice)
        by_margin[i].remove(choice)
        taken[i] += 1
        nearest = np.minimum(nearest, np.sqrt(((points - points[choice]) ** 2).sum(axis=1)))
    picked = in_play[picks]
    rest = np.setdiff1d(candidates, picked)
    return np.concatenate([picked, rest[np.argsort(margin[rest], kind="stable")]])


@pytest.mark.parametrize(("judged", "turns", "pool", "explore_first"), [
    (0, 400, 700, 100),  # a sample of the upload in play, the rest by margin
    (60, 10_000, 700, 100),  # every turn of the sample placed by the round robin
    (250, 300, 10_000, 300),  # past the first verdicts from the start: uncertain picks too
    (0, 10_000, 10_000, 10_000),  # exploring only, every turn
])
def test_explore_order_is_the_plain_greedy_rule(judged: int, turns: int, pool: int, explore_first: int) -> None:
    frame = simulated_upload()
    reviewed = np.sort(np.random.default_rng(judged).choice(len(frame), size=judged, replace=False))
    candidates = np.setdiff1d(np.arange(len(frame)), reviewed)
    expected = reference_explore_order(frame, candidates, reviewed, turns=turns, pool=pool,
                                       explore_first=explore_first)
    ranked = explore_order(frame, candidates=candidates, reviewed=reviewed, turns=turns, pool=pool,
                           explore_first=explore_first)
    np.testing.assert_array_equal(ranked, expected)


def test_the_queue_explores_away_from_the_judged_turns_of_a_simulated_upload() -> None:
    frame = simulated_upload()
    judged_rows = np.arange(0, len(frame), 7)
    judged = set(zip(frame["dialogue_id"].iloc[judged_rows], frame["turn_index"].iloc[judged_rows]))
    queue = triage_queue(frame, exclude_reviewed=judged)
    expected = reference_explore_order(frame, np.setdiff1d(np.arange(len(frame)), judged_rows), judged_rows,
                                       turns=2000, pool=20_000, explore_first=300)
    np.testing.assert_array_equal(queue["row"].to_numpy(), expected)
