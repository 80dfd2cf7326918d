"""Issue 17's bad-input corpus: one bad file, name or value must not break fpi for everyone.

Each test names the case of the issue it covers; all use real files, real models and real DuckDB.
"""
from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpi.errors import ModelError
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.data.schema import feature_name_problem, is_stage_signal, safe_feature_name
from fpi.simulator.simulate import simulate
from fpi.data.summary import summarize_traces
from fpi.data.traces import load_traces
from fpi.data.write import write_traces

QUICK = TrainConfig(learning_rate=0.3, max_rounds=30, early_stopping_rounds=10, seed=0, num_threads=1,
                    text_models=False, cv_max_turns=100)


@pytest.fixture(scope="module")
def small_traces() -> pd.DataFrame:
    return simulate(250, seed=5)


# ---------------------------------------------------------------- feature names LightGBM changes

@pytest.mark.parametrize("name", ["asr_foo bar", "asr_a[0]", "nlu_{x}", "er_a,b", "result_a:b", 'wake_"q"',
                                  "asr_tab\there"])
def test_a_stage_signal_lightgbm_cannot_store_is_kept_but_not_a_feature(small_traces, tmp_path, name) -> None:
    frame = small_traces.assign(**{name: np.linspace(0, 1, len(small_traces))})
    path = tmp_path / "t.csv"
    write_traces(frame, path)
    loaded = load_traces(path)
    assert name in loaded.columns  # passed through unchanged
    summary = summarize_traces(loaded)
    assert name not in summary.stage_signals and name in summary.unusable_signals
    note = summary.unusable_signal_notes()[0]
    assert repr(name)[1:-1] in note or name in note
    assert f"rename it to '{safe_feature_name(name)}'" in note

    model = FailurePointModel(config=QUICK).fit(loaded)
    assert name not in model.spec.features
    model.save(tmp_path / "m")
    again = FailurePointModel.load(tmp_path / "m")  # failed before: saved, but never loadable
    np.testing.assert_allclose(again.predict_proba(loaded), model.predict_proba(loaded))


def test_a_model_that_could_not_be_loaded_again_is_never_saved(small_traces, tmp_path) -> None:
    model = FailurePointModel(config=QUICK).fit(small_traces)
    spec = model.meta["feature_spec"]  # what LightGBM's renaming did: model.txt and meta.json disagree
    spec["features"] = [*spec["features"][:-1], spec["features"][-1] + " renamed"]
    with pytest.raises(ModelError, match="could not be loaded again"):
        model.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert not [p for p in tmp_path.iterdir()]  # no staging left behind


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_every_name_said_to_be_storable_survives_a_lightgbm_round_trip(suffix: str) -> None:
    name = "asr_" + suffix
    if feature_name_problem(name) is not None:
        assert not is_stage_signal(name)
        assert feature_name_problem(safe_feature_name(name)) is None
        return
    x = np.random.default_rng(0).random((40, 2))
    booster = lgb.train({"objective": "binary", "verbosity": -1, "min_data_in_leaf": 5},
                        lgb.Dataset(x, (x[:, 0] > 0.5).astype(int), feature_name=["f0", name]), num_boost_round=1)
    assert lgb.Booster(model_str=booster.model_to_string()).feature_name() == ["f0", name]


# ---------------------------------------------------------------- an unloadable active model in the app

def _broken_copy(model_dir: Path, target: Path) -> Path:
    """A copy of a good model whose meta.json names a feature model.txt does not have (LightGBM's renaming)."""
    import shutil

    shutil.copytree(model_dir, target)
    meta = json.loads((target / "meta.json").read_text())
    features = meta["feature_spec"]["features"]
    features[-1] = features[-1] + " renamed"
    (target / "meta.json").write_text(json.dumps(meta))
    return target


def test_the_registry_never_activates_a_model_that_cannot_be_loaded(files, tmp_path) -> None:
    from fpi.model.registry import Registry

    registry = Registry(tmp_path / "home", default_model=files.model)
    _broken_copy(files.model, registry.root / "broken")
    with pytest.raises(ModelError, match="cannot be loaded, so it was not activated"):
        registry.activate("broken")
    assert registry.active_version() == "default"


def test_the_app_recovers_from_an_unloadable_active_model(at, files, home) -> None:
    from fpi.model.registry import ACTIVE_FILE

    _broken_copy(files.model, home / "models" / "broken")
    (home / "models" / ACTIVE_FILE).write_text(json.dumps({"version": "broken", "history": ["default"]}))
    at.run()
    at.switch_page("fpi/ui/pages/overview.py").run()
    assert not at.exception
    message = "\n".join(e.value for e in at.error)
    assert "No usable model" in message and "Model page" in message and "roll back" in message
    at.switch_page("fpi/ui/pages/model.py").run()
    assert not at.exception
    labels = {b.label: b for b in at.button}
    assert "Activate" in labels and "Roll back" in labels and not labels["Roll back"].disabled
    labels["Roll back"].click().run()
    assert not at.exception
    assert not [e.value for e in at.error if "No usable model" in e.value]
    assert json.loads((home / "models" / ACTIVE_FILE).read_text())["version"] == "default"


# ---------------------------------------------------------------- uploads that unpack to gigabytes

def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_a_small_parquet_file_of_many_turns_is_refused_before_reading(small_traces) -> None:
    from fpi.errors import TraceError
    from fpi.data.traces import check_upload_size

    many = pd.concat([small_traces] * 40, ignore_index=True)
    data = _parquet_bytes(many)
    assert len(data) < len(many) * 40  # a few bytes a turn: the compressed size says nothing
    with pytest.raises(TraceError) as caught:
        check_upload_size(data, max_rows=len(many) - 1, max_bytes=10**12, source="big.parquet")
    problem = caught.value.problems[0]
    assert problem.code == "too_large" and f"{len(many):,} turns" in problem.reason
    assert "fpi predict" in problem.hint
    assert check_upload_size(data, max_rows=len(many), max_bytes=10**12).rows == len(many)


def test_a_parquet_file_whose_values_unpack_past_the_limit_is_refused() -> None:
    from fpi.errors import TraceError
    from fpi.data.traces import check_upload_size

    data = _parquet_bytes(pd.DataFrame({"asr_text": ["x" * 100_000] * 50}))
    with pytest.raises(TraceError, match="MB once decompressed"):
        check_upload_size(data, max_rows=10**9, max_bytes=1_000_000)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from('ab,"\n\r x'), max_size=8), min_size=1, max_size=30))
def test_the_csv_row_estimate_never_undercounts(cells: list[str]) -> None:
    import io

    from fpi.data.traces import upload_size

    buffer = io.StringIO()
    pd.DataFrame({"c": cells}).to_csv(buffer, index=False)
    assert upload_size(buffer.getvalue().encode()).rows >= len(cells)


def test_the_app_refuses_an_upload_over_the_row_limit_and_keeps_the_data(at, files, monkeypatch) -> None:
    from app_files import load_sample, metric

    load_sample(at)
    before = metric(at, "Turns")
    monkeypatch.setenv("FPI_MAX_UPLOAD_ROWS", "100")
    data = _parquet_bytes(load_traces(files.unlabelled))
    at.file_uploader[0].set_value(("many.parquet", data, "application/octet-stream")).run()
    assert not at.exception
    assert "was rejected" in "\n".join(str(e.value) for e in at.error)
    from fpi.ui.pages.data import REJECTION_HEADERS

    header = REJECTION_HEADERS["reason"]
    reasons = [r for t in at.table if header in t.value.columns for r in t.value[header]]
    assert any("the app loads at most 100" in r and "fpi predict" in r for r in reasons), reasons
    assert metric(at, "Turns") == before


def test_every_app_cache_is_bounded_in_entries_and_time() -> None:
    import ast

    root = Path(__file__).resolve().parent.parent / "fpi" / "ui"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("cache_data", "cache_resource"):
                keywords = {k.arg for k in node.keywords}
                assert {"max_entries", "ttl"} <= keywords, (path.name, node.lineno)


# ---------------------------------------------------------------- one long dialogue

def _long_dialogue(frame: pd.DataFrame, turns: int, dialogue_id: str = "a-long") -> pd.DataFrame:
    """`turns` turns of other dialogues, made into one dialogue that sorts first."""
    picked = frame.head(turns).copy()
    picked["dialogue_id"] = dialogue_id
    picked["turn_index"] = np.arange(len(picked))
    return pd.concat([picked, frame], ignore_index=True)


def test_the_turn_strip_is_one_trace_for_any_number_of_defective_turns() -> None:
    from fpi.ui import charts

    n = 2000
    strip = pd.DataFrame({"turn_index": np.repeat(np.arange(n), 5),
                          "stage": np.tile(["wake", "asr", "nlu", "er", "result"], n),
                          "confidence": np.linspace(0, 1, 5 * n),
                          "failing": np.tile([False, True, False, False, True], n) & (np.repeat(np.arange(n), 5) % 2 == 0)})
    fig = charts.confidence_strip_figure(strip)
    assert len(fig.layout.shapes) == 0  # was one shape per failing cell
    assert len(fig.data) == 2
    boxes = fig.data[1]
    assert np.isnan(np.asarray(boxes.x, dtype=float)).sum() == int(strip["failing"].sum())


def test_the_drilldown_does_not_open_a_huge_dialogue_by_default(small_traces) -> None:
    from fpi.analysis import navigation

    frame = _long_dialogue(small_traces, 600)
    assert navigation.default_dialogue(frame, ["a-long", "d000002"], max_turns=200) == "d000002"
    assert navigation.default_dialogue(frame, ["a-long"], max_turns=200) != "a-long"
    only_long = frame[frame["dialogue_id"] == "a-long"]
    assert navigation.default_dialogue(only_long, ["a-long"]) == "a-long"  # nothing else to open
    assert navigation.page_count(600) == 6 and len(navigation.turns_page(only_long, 9)) == 100


def test_a_long_dialogue_is_paged_in_the_app(at, files, tmp_path) -> None:
    from app_files import load_sample, upload

    frame = _long_dialogue(load_traces(files.unlabelled), 450)
    path = tmp_path / "long.csv"
    write_traces(frame, path)
    load_sample(at)
    upload(at, "long.csv", path.read_bytes())
    at.switch_page("fpi/ui/pages/dialogue.py").run()
    assert not at.exception
    assert at.query_params["dialogue"] != ["a-long"]
    at.query_params["dialogue"] = "a-long"
    at.switch_page("fpi/ui/pages/dialogue.py").run()
    assert not at.exception
    assert [n.value for n in at.number_input] == [1]
    assert len([c for c in at.caption if str(c.value).startswith("Turn ")]) == 100
    at.number_input[0].set_value(5).run()
    assert not at.exception
    shown = [str(c.value) for c in at.caption if str(c.value).startswith("Turn ")]
    assert len(shown) == 50 and shown[0].startswith("Turn 400")


# ---------------------------------------------------------------- very long texts

def test_texts_are_compared_on_their_capped_length(small_traces) -> None:
    from fpi.model.features import build_features, fit_feature_spec
    from fpi.model.text_measures import SIMILARITY_MAX_CHARS

    frame = small_traces[small_traces["dialogue_id"] == small_traces["dialogue_id"].iloc[0]].head(2).copy()
    common = "play the song " * (SIMILARITY_MAX_CHARS // 14 + 1)
    frame["asr_text"] = [common + "one two three", common + "four five six " * 3000]
    frame["er_entity"] = [common + "x", "y" * 50_000]
    features = build_features(frame, fit_feature_spec(small_traces))
    # beyond the cap nothing counts: the two long requests compare as equal
    assert features["next_text_similarity"].iloc[0] == pytest.approx(1.0)
    assert features["entity_in_text"].iloc[0] == pytest.approx(1.0)


# ---------------------------------------------------------------- formula cells in every CSV fpi writes

FORMULA = '=HYPERLINK("http://evil.example","click")'


def _live_formula_cells(path: Path) -> list[str]:
    """Cells (header included) a spreadsheet would run: text starting with = + - @ tab or CR."""
    import csv

    from fpi.data.write import FORMULA_PREFIXES

    live = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            for cell in row:
                if cell.startswith(FORMULA_PREFIXES):
                    try:
                        float(cell)
                    except ValueError:
                        live.append(cell)
    return live


def _formula_traces(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.loc[out.index[0], "asr_text"] = FORMULA
    out[FORMULA] = "a column whose name is a formula"
    out["@payload"] = [b"=cmd|' /C calc'!A0"] + [b"fine"] * (len(out) - 1)  # a binary column
    return out


def test_exports_neutralise_headers_and_binary_cells(small_traces, tmp_path) -> None:
    from fpi.data.write import write_export

    path = write_export(_formula_traces(small_traces), tmp_path / "out.csv")
    assert _live_formula_cells(path) == []
    text = path.read_text()
    assert "'" + FORMULA.replace('"', '""') in text and "'=cmd" in text


@pytest.mark.parametrize("chunk", [None, "200"])
def test_fpi_predict_writes_no_live_formula_to_csv(small_traces, files, tmp_path, chunk) -> None:
    from click.testing import CliRunner

    from fpi.cli import main

    source = tmp_path / "in.parquet"
    _formula_traces(small_traces).to_parquet(source, index=False)
    out = tmp_path / "scored.csv"
    args = ["predict", str(source), "--model", str(files.model), "-o", str(out)]
    result = CliRunner().invoke(main, args + (["--chunk-rows", chunk] if chunk else []))
    assert result.exit_code == 0, result.output
    assert _live_formula_cells(out) == []
    assert len(pd.read_csv(out)) == len(small_traces)


# (that the Arrow and pandas neutralisers agree is tested in tests/data/test_write.py)


def test_the_app_offers_no_unneutralised_table_download_and_no_tracebacks() -> None:
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True
    assert config["client"]["showErrorDetails"] == "none"


# ---------------------------------------------------------------- the data folder and DuckDB's globs

@pytest.fixture(scope="module")
def scored_small(small_traces, files, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scored") / "scored.parquet"
    FailurePointModel.load(files.model).score(small_traces).to_parquet(path, index=False)
    return path


def test_a_file_named_like_a_glob_cannot_pull_in_files_outside_the_data_folder(scored_small, tmp_path) -> None:
    import shutil

    from fpi.analysis import aggregates
    from fpi.errors import ScoredFileError

    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir(), outside.mkdir()
    secret = outside / "secret.parquet"
    shutil.copy(scored_small, secret)
    (data / "link.parquet").symlink_to(secret)
    shutil.copy(scored_small, data / "*.parquet")
    with pytest.raises(ScoredFileError, match="DuckDB would expand"):
        aggregates.check_scored(data / "*.parquet", root=data)
    for read in (aggregates.kpis, aggregates.filter_options):  # every DuckDB path refuses it too
        with pytest.raises(ScoredFileError, match="DuckDB would expand"):
            read(data / "*.parquet")
    with pytest.raises(ScoredFileError, match="outside the data folder"):
        aggregates.check_scored(data / "link.parquet", root=data)


@pytest.mark.parametrize("kind", ["nul", "long", "loop", "glob"])
def test_bad_paths_in_the_path_box_are_messages_not_tracebacks(at, tmp_path, scored_small, monkeypatch, kind) -> None:
    import shutil

    monkeypatch.setenv("FPI_DATA_DIR", str(tmp_path))
    if kind == "nul":
        path = str(tmp_path / "a\x00b.parquet")
    elif kind == "long":
        path = str(tmp_path / ("x" * 5000 + ".parquet"))
    elif kind == "loop":
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
        path = str(tmp_path / "loop")
    else:
        shutil.copy(scored_small, tmp_path / "[a].parquet")
        path = str(tmp_path / "[a].parquet")
    at.run()
    at.switch_page("fpi/ui/pages/data.py").run()  # the app opens on the Overview
    next(t for t in at.text_input if t.label.startswith("Path of a scored Parquet")).set_value(path)
    next(b for b in at.button if b.label == "Open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = "\n".join(e.value for e in at.error)
    assert "Give the path" in errors or "Rename the file" in errors, errors
    assert at.session_state["fpi_app_state"].big_file is None
    assert len(errors) < 1000


# ---------------------------------------------------------------- a hand-edited meta.json

EDITS = {
    "temperature zero": lambda m: m.update(temperature=0),
    "temperature text": lambda m: m.update(temperature="hot"),
    "temperature NaN": lambda m: m.update(temperature=float("nan")),
    "unknown train_config key": lambda m: m["train_config"].update(speed=3),
    "train_config wrong type": lambda m: m["train_config"].update(num_leaves="many"),
    "features not a list": lambda m: m["feature_spec"].update(features="asr"),
    "levels not lists": lambda m: m["feature_spec"].update(levels={"locale": 3}),
    "quantiles not numbers": lambda m: m["feature_spec"]["reference_quantiles"].update(asr_confidence=["x"]),
    "spec missing": lambda m: m.pop("feature_spec"),
    "thresholds text": lambda m: m.update(rule_cascade_thresholds={"asr_confidence": "low"}),
    "top level a list": lambda m: None,
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_hand_edited_meta_json_is_refused_with_the_field(files, tmp_path, edit) -> None:
    import shutil

    target = tmp_path / "m"
    shutil.copytree(files.model, target)
    meta = json.loads((target / "meta.json").read_text())
    EDITS[edit](meta)
    (target / "meta.json").write_text(json.dumps([meta] if edit == "top level a list" else meta))
    with pytest.raises(ModelError, match="meta.json field '[^']+' must be"):
        FailurePointModel.load(target)


# ---------------------------------------------------------------- Parquet columns no check can read

def _parquet_with(frame: pd.DataFrame, tmp_path: Path, column: str, values) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    array = values if isinstance(values, pa.Array) else pa.array(values)
    if column in table.column_names:
        table = table.set_column(table.column_names.index(column), column, array)
    else:
        table = table.append_column(column, array)
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("case", ["struct id", "list extra", "struct extra", "binary id"])
def test_parquet_columns_no_check_can_read_are_named(small_traces, tmp_path, case) -> None:
    import pyarrow as pa

    from fpi.scoring.file import predict_file
    from fpi.errors import TraceError

    n = len(small_traces)
    column, values = {
        "struct id": ("dialogue_id", [{"a": 1}] * n),
        "list extra": ("asr_alternatives", [["a", "b"]] * n),
        "struct extra": ("device_info", [{"os": "x"}] * n),
        "binary id": ("dialogue_id", pa.array([b"\xff\xfe" + str(i).encode() for i in range(n)], pa.binary())),
    }[case]
    path = _parquet_with(small_traces, tmp_path, column, values)
    with pytest.raises(TraceError) as caught:
        load_traces(path)
    assert [p.column for p in caught.value.problems] == [column]
    if case == "binary id":
        assert caught.value.problems[0].rows[:2] == (2, 3)
    else:  # out of core too: the schema is checked before any row is read
        with pytest.raises(TraceError) as streamed:
            predict_file(path, tmp_path / "out.csv", model=None, chunk_rows=100)
        assert [p.column for p in streamed.value.problems] == [column]


# ---------------------------------------------------------------- a large scored file of the wrong shape

@pytest.mark.parametrize("case", ["no dialogue_id", "text confidence", "numeric locale"])
def test_a_scored_file_of_the_wrong_shape_is_refused_before_the_overview(scored_small, tmp_path, case) -> None:
    from fpi.analysis import aggregates
    from fpi.errors import ScoredFileError

    frame = pd.read_parquet(scored_small)
    column = {"no dialogue_id": "dialogue_id", "text confidence": "asr_confidence", "numeric locale": "locale"}[case]
    if case == "no dialogue_id":
        frame = frame.drop(columns=column)
    elif case == "text confidence":
        frame[column] = frame[column].astype(str)
    else:
        frame[column] = np.arange(len(frame))
    path = tmp_path / "scored.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(ScoredFileError, match=f"'{column}'"):
        aggregates.check_scored(path)
    aggregates.check_scored(scored_small)  # the real thing passes


# ---------------------------------------------------------------- the terminal

def test_the_cli_never_prints_terminal_escapes_from_trace_values(small_traces, tmp_path) -> None:
    from click.testing import CliRunner

    from fpi.cli import main

    frame = small_traces.copy()
    frame["device_type"] = "tv\x1b]0;pwned\x07\x1b[2J"
    path = tmp_path / "t.csv"
    write_traces(frame, path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "tv\\x1b]0;pwned\\x07" in result.output


def test_a_system_error_while_writing_is_a_message_not_a_stack_trace(small_traces, files, tmp_path) -> None:
    from click.testing import CliRunner

    from fpi.cli import main

    source = tmp_path / "t.csv"
    write_traces(small_traces, source)
    result = CliRunner().invoke(main, ["predict", str(source), "--model", str(files.model),
                                       "-o", "/proc/fpi-cannot-write-here/out.csv"])
    assert result.exit_code == 2
    assert "\nerror: " in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------- ids and cells bounded by the contract

@pytest.mark.parametrize("column, limit", [("dialogue_id", 255), ("asr_text", 10_000)])
def test_ids_and_texts_longer_than_the_contract_allows_are_rejected_with_rows(small_traces, tmp_path, column,
                                                                             limit) -> None:
    from fpi.errors import TraceError

    frame = small_traces.copy()
    at_limit = frame.copy()
    at_limit.loc[at_limit.index[:2], column] = "x" * limit  # turns 0 and 1 of one dialogue: ids stay unique
    write_traces(at_limit, tmp_path / "ok.csv")
    assert len(load_traces(tmp_path / "ok.csv")) == len(frame)
    frame.loc[frame.index[3], column] = "y" * (limit + 1)
    write_traces(frame, tmp_path / "bad.csv")
    with pytest.raises(TraceError) as caught:
        load_traces(tmp_path / "bad.csv")
    problem = next(p for p in caught.value.problems if p.code == "too_long")
    assert problem.column == column and problem.rows == (5,) and f"{limit:,} characters" in problem.reason


def test_a_verdict_can_be_recorded_on_the_longest_id_the_contract_allows(tmp_path) -> None:
    from fpi.data.schema import MAX_ID_CHARS
    from fpi.review.store import VerdictStore

    store = VerdictStore(f"sqlite:///{tmp_path / 'v.sqlite3'}")
    long_id = "d" * MAX_ID_CHARS
    store.record(dataset="f" * 64, dialogue_id=long_id, turn_index=0, label="asr", analyst="ana")
    assert store.latest(dataset="f" * 64)["dialogue_id"].tolist() == [long_id]


# ---------------------------------------------------------------- a read-only copy of the verdict store

def test_a_read_only_copy_of_the_store_can_be_exported_without_writing_to_it(tmp_path, monkeypatch) -> None:
    import hashlib
    import shutil
    import sqlite3

    from click.testing import CliRunner

    from fpi.cli import main
    from fpi.review.store import VerdictStore

    live = tmp_path / "live.sqlite3"
    with VerdictStore(f"sqlite:///{live}") as store:
        store.record(dataset="f" * 64, dialogue_id="d1", turn_index=0, label="asr", analyst="ana")
    copy = tmp_path / "copy" / "fpi.sqlite3"
    copy.parent.mkdir()
    source = sqlite3.connect(live)  # a copy as a backup tool makes it: one file, rollback journal
    target = sqlite3.connect(copy)
    source.backup(target)
    target.execute("PRAGMA journal_mode = DELETE")
    source.close(), target.close()
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    copy.chmod(0o444)
    monkeypatch.setenv("FPI_DB_URL", f"sqlite:///{copy}")
    result = CliRunner().invoke(main, ["verdicts", "export", "-o", str(tmp_path / "v.csv")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "v.csv")["dialogue_id"].tolist() == ["d1"]
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before  # not switched to WAL, nothing written
    from fpi.errors import StoreError

    with pytest.raises(StoreError):
        VerdictStore(f"sqlite:///{copy}", read_only=True).record(
            dataset="f" * 64, dialogue_id="d2", turn_index=0, label="asr", analyst="ana")
    shutil.rmtree(copy.parent, ignore_errors=True)
