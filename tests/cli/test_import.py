"""`fpi verdicts import` and `fpi verdicts agreement`: a good file is stored, a bad row stores nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fpi.cli import main
from fpi.data.summary import dataset_fingerprint
from fpi.data.traces import load_traces
from fpi.data.write import write_traces
from fpi.review.store import VerdictStore
from fpi.simulator.simulate import simulate


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("FPI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FPI_DB_URL", raising=False)
    traces = tmp_path / "traces.csv"
    write_traces(simulate(20, seed=5), traces)
    return {"traces": traces, "db": tmp_path / "home" / "fpi.sqlite3", "root": tmp_path}


def turns_of(traces: Path, n: int) -> list[tuple[str, int]]:
    frame = load_traces(traces)
    return list(zip(frame["dialogue_id"].astype(str), frame["turn_index"].astype(int)))[:n]


def stored(db: Path):
    with VerdictStore(f"sqlite:///{db}") as store:
        return store.all()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_is_stored_with_the_analyst_and_notes(env) -> None:
    (d0, t0), (d1, t1), (d2, t2) = turns_of(env["traces"], 3)
    csv = write(env["root"] / "mine.csv", "dialogue_id,turn_index,label,note,extra\n"
                f"{d0},{t0},asr,misheard,x\n{d1},{t1}, NLU ,,y\n{d2},{t2},correct,,z\n")
    result = CliRunner().invoke(main, ["verdicts", "import", str(csv), "--analyst", " Ana Lima ",
                                       "--traces", str(env["traces"])])
    assert result.exit_code == 0, result.output
    assert "stored 3 verdicts by Ana Lima" in result.output
    table = stored(env["db"])
    assert list(table["label"]) == ["asr", "nlu", "correct"]
    assert set(table["analyst"]) == {"Ana Lima"} and table["note"].tolist()[0] == "misheard"
    assert set(table["dataset_fingerprint"]) == {dataset_fingerprint(load_traces(env["traces"]))}


def test_a_bad_row_is_reported_with_its_row_number_and_nothing_is_stored(env) -> None:
    (d0, t0), (d1, t1), (d2, t2) = turns_of(env["traces"], 3)
    csv = write(env["root"] / "bad.csv", "dialogue_id,turn_index,label\n"
                f"{d0},{t0},asr\n{d1},1.5,nlu\n{d2},{t2},wrong_label\nnot-a-dialogue,0,er\n{d0},{t0},nlu\n")
    result = CliRunner().invoke(main, ["verdicts", "import", str(csv), "--analyst", "Ana",
                                       "--traces", str(env["traces"])])
    assert result.exit_code == 1
    out = result.output
    assert "column 'turn_index', row 3" in out and "not a whole number" in out and "'1.5'" in out
    assert "column 'label', row 4" in out and "'wrong_label'" in out
    assert "column 'dialogue_id', row 5" in out and "no such turn in the traces" in out
    assert "rows 2, 6" in out and "more than once" in out
    assert not env["db"].exists() or stored(env["db"]).empty


@pytest.mark.parametrize("analyst", ["\u200b", "   "])
def test_an_invisible_analyst_name_is_refused(env, analyst: str) -> None:
    (d0, t0), = turns_of(env["traces"], 1)
    csv = write(env["root"] / "mine.csv", f"dialogue_id,turn_index,label\n{d0},{t0},asr\n")
    result = CliRunner().invoke(main, ["verdicts", "import", str(csv), "--analyst", analyst,
                                       "--dataset", "a" * 64])
    assert result.exit_code == 1 and "no visible character" in result.output


def test_a_missing_column_and_exactly_one_target_are_asked_for(env) -> None:
    csv = write(env["root"] / "cols.csv", "dialogue,turn_index,label\nd,0,asr\n")
    result = CliRunner().invoke(main, ["verdicts", "import", str(csv), "--analyst", "Ana", "--dataset", "a" * 64])
    assert result.exit_code == 1 and "column 'dialogue_id'" in result.output and "missing required column" in result.output
    result = CliRunner().invoke(main, ["verdicts", "import", str(csv), "--analyst", "Ana"])
    assert result.exit_code == 2 and "exactly one of --traces" in result.output


def test_agreement_from_two_imports(env) -> None:
    turns = turns_of(env["traces"], 10)
    labels_a = ["asr", "nlu", "er", "correct", "asr", "nlu", "er", "correct", "asr", "nlu"]
    labels_b = ["asr", "nlu", "er", "correct", "asr", "nlu", "er", "correct", "nlu", "asr"]
    for who, labels in (("Ana", labels_a), ("Bo", labels_b)):
        csv = write(env["root"] / f"{who}.csv", "dialogue_id,turn_index,label\n" + "".join(
            f"{d},{t},{label}\n" for (d, t), label in zip(turns, labels)))
        assert CliRunner().invoke(main, ["verdicts", "import", str(csv), "--analyst", who,
                                         "--traces", str(env["traces"])]).exit_code == 0
    result = CliRunner().invoke(main, ["verdicts", "agreement"])
    assert result.exit_code == 0, result.output
    assert "Cohen's kappa" in result.output and "on 10 turns judged by 2 analysts: Ana, Bo" in result.output
    assert "disagreements: 2 open, 0 adjudicated" in result.output
    report = json.loads(CliRunner().invoke(main, ["verdicts", "agreement", "--json"]).output)
    # p_o = 0.8; marginals per rater asr .3 nlu .3 er .2 correct .2 -> p_e = 0.26; kappa = 0.54 / 0.74
    assert report["method"] == "cohen" and report["overall"]["value"] == pytest.approx(0.54 / 0.74)
    assert len(report["disagreements"]) == 2


@pytest.mark.parametrize("command", ["agreement", "import", "audit"])
def test_the_team_commands_have_help(command: str) -> None:
    result = CliRunner().invoke(main, ["verdicts", command, "--help"])
    assert result.exit_code == 0 and len(main.commands["verdicts"].commands[command].help.strip()) > 20
