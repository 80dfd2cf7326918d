"""The `fpi` command end to end: every command has help, and each does its one job."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from fpi.cli import main
from fpi.data.schema import LABELS
from fpi.data.traces import load_traces
from fpi.data.write import write_traces


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model, sim_heldout) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    labelled = root / "labelled.csv"
    write_traces(sim_heldout.head(3000), labelled)
    model_dir = tiny_model.save(root / "model")
    return {"root": root, "labelled": labelled, "model": model_dir}


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert main.commands[command].help and len(main.commands[command].help.strip()) > 20


def test_predict_adds_labels_and_probabilities_and_keeps_every_column(files, tmp_path) -> None:
    out = tmp_path / "scored.parquet"
    result = CliRunner().invoke(main, ["predict", str(files["labelled"]), "--model", str(files["model"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    scored = load_traces(out)
    original = load_traces(files["labelled"])
    pd.testing.assert_frame_equal(scored[original.columns], original)
    assert set(scored["predicted_failure_point"]) <= set(LABELS)
    assert all(f"p_{label}" in scored.columns for label in LABELS)


def test_evaluate_prints_all_three_systems_and_json(files) -> None:
    args = ["evaluate", str(files["labelled"]), "--model", str(files["model"])]
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "rule cascade" in text.output and "raw confidences" in text.output
    as_json = CliRunner().invoke(main, [*args, "--json"])
    report = json.loads(as_json.output)
    assert set(report["systems"]) == {"model", "raw_confidence_lgbm", "rule_cascade"}


def test_evaluate_without_labels_says_so(files, tmp_path) -> None:
    unlabelled = tmp_path / "u.csv"
    write_traces(load_traces(files["labelled"]).assign(failure_point=pd.NA), unlabelled)
    result = CliRunner().invoke(main, ["evaluate", str(unlabelled), "--model", str(files["model"])])
    assert result.exit_code == 2
    assert "needs labels" in result.output


def test_explain_prints_each_turn_with_reasons(files) -> None:
    frame = load_traces(files["labelled"])
    dialogue = frame["dialogue_id"].value_counts().index[0]
    result = CliRunner().invoke(main, ["explain", str(files["labelled"]), "--model", str(files["model"]),
                                       "--dialogue", dialogue])
    assert result.exit_code == 0, result.output
    turns = (frame["dialogue_id"] == dialogue).sum()
    assert len(re.findall(r"^turn \d+: ", result.output, flags=re.MULTILINE)) == turns
    assert "toward" in result.output or "away from" in result.output


def test_train_writes_a_loadable_model(files, tmp_path) -> None:
    out = tmp_path / "trained"
    result = CliRunner().invoke(main, ["train", str(files["labelled"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "model.txt").is_file() and (out / "meta.json").is_file()
    assert "macro-F1" in result.output


def test_a_missing_model_is_a_clear_error(files, tmp_path) -> None:
    result = CliRunner().invoke(main, ["predict", str(files["labelled"]), "--model", str(tmp_path / "nope"),
                                       "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert "meta.json" in result.output


def test_the_shipped_samples_validate_and_the_shipped_model_scores_them() -> None:
    from fpi.config import SAMPLE_LABELLED, SAMPLE_UNLABELLED

    for sample in (SAMPLE_LABELLED, SAMPLE_UNLABELLED):
        result = CliRunner().invoke(main, ["validate", str(sample)])
        assert result.exit_code == 0, result.output
    report = CliRunner().invoke(main, ["evaluate", str(SAMPLE_LABELLED), "--json"])  # default model
    assert report.exit_code == 0, report.output
    f1 = {name: m["macro_f1"] for name, m in json.loads(report.output)["systems"].items()}
    assert f1["model"] > f1["raw_confidence_lgbm"] > f1["rule_cascade"], f1


# ---------------------------------------------------------------- the triage loop: queue and retrain

@pytest.fixture(scope="module")
def loop_files(files) -> dict[str, Path]:
    """An unlabelled copy of the labelled file, and verdicts (true labels) on every other turn."""
    root = files["root"]
    frame = load_traces(files["labelled"]).head(900)
    write_traces(frame.assign(failure_point=pd.NA), root / "unlabelled.csv")
    verdicts = frame.iloc[::2][["dialogue_id", "turn_index", "failure_point"]].rename(
        columns={"failure_point": "label"})
    verdicts.to_csv(root / "verdicts.csv", index=False)
    return {"traces": root / "unlabelled.csv", "verdicts": root / "verdicts.csv", "model": files["model"]}


def test_queue_writes_the_next_turns_with_label_probability_and_reason(loop_files, tmp_path) -> None:
    out = tmp_path / "queue.csv"
    result = CliRunner().invoke(main, ["queue", str(loop_files["traces"]), "--model", str(loop_files["model"]),
                                       "-n", "25", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, dtype={"dialogue_id": str})
    assert list(table.columns) == ["dialogue_id", "turn_index", "predicted_failure_point", "probability",
                                   "top_reason"]
    assert len(table) == 25 and table["top_reason"].str.contains("toward|away from").all()
    assert table["predicted_failure_point"].nunique() >= 4  # the explore order covers the labels early
    assert not table.duplicated(["dialogue_id", "turn_index"]).any()

    excluded = tmp_path / "rest.csv"
    result = CliRunner().invoke(main, ["queue", str(loop_files["traces"]), "--model", str(loop_files["model"]),
                                       "--exclude", str(loop_files["verdicts"]), "-n", "1000", "-o", str(excluded)])
    assert result.exit_code == 0, result.output
    rest = pd.read_csv(excluded, dtype={"dialogue_id": str})
    judged = pd.read_csv(loop_files["verdicts"], dtype={"dialogue_id": str})
    assert len(rest) == 900 - len(judged)
    assert not set(zip(rest["dialogue_id"], rest["turn_index"])) & set(zip(judged["dialogue_id"], judged["turn_index"]))


def test_retrain_prints_the_candidate_beside_the_starting_model_and_saves_it(loop_files, tmp_path) -> None:
    out = tmp_path / "candidate"
    result = CliRunner().invoke(main, ["retrain", str(loop_files["traces"]), "--verdicts", str(loop_files["verdicts"]),
                                       "--model", str(loop_files["model"]), "--strategy", "verdicts",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "strategy: verdicts@" in result.output and "starting model" in result.output
    assert "candidate" in result.output and "F1 per class" in result.output
    from fpi.model.estimator import FailurePointModel

    audit = re.search(r"Audit: 450 verdicts checked against the data, (\d+) flagged \((\d+) left out", result.output)
    assert audit is not None, result.output  # the starting model reads the simulator well: the audit may leave out
    model = FailurePointModel.load(out)
    assert model.meta["training_data"]["labelled_turns"] == 450 - int(audit.group(2))

    kept = tmp_path / "kept"
    result = CliRunner().invoke(main, ["retrain", str(loop_files["traces"]), "--verdicts", str(loop_files["verdicts"]),
                                       "--model", str(loop_files["model"]), "--strategy", "verdicts", "--no-audit",
                                       "-o", str(kept)])
    assert result.exit_code == 0, result.output
    assert "Audit:" not in result.output
    assert FailurePointModel.load(kept).meta["training_data"]["labelled_turns"] == 450


def test_retrain_offers_every_strategy_the_app_can_choose() -> None:
    from fpi.review.adapt import ADAPT_STRATEGIES

    option = next(p for p in main.commands["retrain"].params if p.name == "strategy")
    assert list(option.type.choices) == ["auto", *ADAPT_STRATEGIES]


def test_retrain_with_a_bad_verdicts_file_names_the_rows(loop_files, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("dialogue_id,turn_index,label\nd000001,0,asr\nd000001,1,wrong\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["retrain", str(loop_files["traces"]), "--verdicts", str(bad),
                                       "--model", str(loop_files["model"]), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert str(bad) in result.output and "column 'label', row 3 (1 in all): unknown label" in result.output
    assert not (tmp_path / "x").exists()


def test_a_simulated_fleet_trains_with_ranks_within_each_pipeline(tmp_path) -> None:
    traces, out = tmp_path / "fleet.csv", tmp_path / "fleet-model"
    result = CliRunner().invoke(main, ["simulate", "--dialogues", "600", "--pipelines", "3", "--seed", "4",
                                       "-o", str(traces)])
    assert result.exit_code == 0, result.output
    assert load_traces(traces)["pipeline"].nunique() == 3
    result = CliRunner().invoke(main, ["train", str(traces), "-o", str(out), "--holdout", "0",
                                       "--upload-column", "pipeline", "--no-text-models"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["train_config"]["upload_column"] == "pipeline"
    assert not meta["text_models"] and not any(f.startswith("text_") for f in meta["feature_spec"]["features"])
    assert meta["metrics"]["evaluated_on"] == "5-fold cross-validation"
    assert "5-fold cross-validation:" in result.output
    result = CliRunner().invoke(main, ["train", str(traces), "-o", str(out), "--upload-column", "nope"])
    assert result.exit_code != 0 and "nope" in result.output


def test_fleets_train_one_member_each_averaged_into_one_model(tmp_path) -> None:
    traces, out = tmp_path / "fleets.parquet", tmp_path / "fleets-model"
    result = CliRunner().invoke(main, ["simulate", "--dialogues", "1200", "--pipelines", "2", "--fleets", "2",
                                       "--seed", "4", "-o", str(traces)])
    assert result.exit_code == 0, result.output
    assert sorted(load_traces(traces)["fleet"].unique()) == ["f0", "f1"]
    result = CliRunner().invoke(main, ["train", str(traces), "-o", str(out), "--upload-column", "pipeline",
                                       "--member-column", "fleet", "--no-text-models"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["schedule"]["members"] == 2 and meta["train_config"]["member_column"] == "fleet"
    result = CliRunner().invoke(main, ["train", str(traces), "-o", str(tmp_path / "x"), "--member-column", "nope"])
    assert result.exit_code != 0 and "--member-column" in result.output and "nope" in result.output
    assert not (tmp_path / "x").exists()


def test_adapt_self_trains_without_labels_and_scores_on_labels_when_there_are_some(files, loop_files,
                                                                                    tmp_path) -> None:
    out = tmp_path / "adapted"
    result = CliRunner().invoke(main, ["adapt", str(loop_files["traces"]), "--model", str(loop_files["model"]),
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert re.search(r"changes the label of \d+\.\d% of the 900 turns", result.output), result.output
    assert "no labels to check it on" in result.output
    from fpi.model.estimator import FailurePointModel

    model = FailurePointModel.load(out)
    assert model.meta["retraining"]["strategy"] == "self" and model.meta["training_data"]["labelled_turns"] == 0

    labelled = tmp_path / "labelled.csv"
    write_traces(load_traces(files["labelled"]).head(900), labelled)
    result = CliRunner().invoke(main, ["adapt", str(labelled), "--model", str(loop_files["model"]),
                                       "-o", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    assert "on the 900 labelled turns of TRACES (never used to train)" in result.output
    assert re.search(r"candidate\s+\d\.\d{3}\s+\d\.\d{3}", result.output), result.output
    assert FailurePointModel.load(tmp_path / "again").predict_proba(load_traces(labelled)).shape == (900, len(LABELS))
