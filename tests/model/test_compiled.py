"""Compiled scoring (`fpi.model.compiled`): the same probabilities as `Booster.predict`, a cache that is
built once, atomically, and never loaded without its recorded sha256, and a quiet fallback.

A small model (40 rounds, single-threaded training) keeps each compile to a few seconds.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fpi.model import compiled
from fpi.config import SAMPLE_LABELLED
from fpi.errors import ModelError
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.data.schema import LABELS
from fpi.simulator.simulate import simulate
from fpi.data.traces import load_traces

SMALL = TrainConfig(learning_rate=0.3, max_rounds=40, early_stopping_rounds=10, seed=0, num_threads=1,
                    cv_max_turns=0, text_models=False)

pytestmark = pytest.mark.skipif(compiled.unavailable_reason() is not None,
                                reason=f"compiled scoring unavailable: {compiled.unavailable_reason()}")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model directory (saved, so it has the sha256 a compiled build is keyed by)."""
    target = tmp_path_factory.mktemp("compiled") / "model"
    FailurePointModel(config=SMALL).fit(simulate(1500, seed=7)).save(target)
    return target


@pytest.fixture(scope="module")
def built_home(saved: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An FPI_HOME with the small model compiled once (module-wide: compiling is the slow part)."""
    home = tmp_path_factory.mktemp("home")
    model = FailurePointModel.load(saved)
    compiled.build(model.booster.model_to_string(), model.meta["model_sha256"], home)
    return home


def _loaded(saved: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> FailurePointModel:
    monkeypatch.setenv("FPI_HOME", str(home))
    monkeypatch.delenv("FPI_COMPILED", raising=False)
    return FailurePointModel.load(saved)


def _model_folder(saved: Path, home: Path) -> Path:
    sha = json.loads((saved / "meta.json").read_text())["model_sha256"]
    return next(p for p in (home / compiled.CACHE_DIRNAME).iterdir() if p.name.startswith(sha))


def _awkward_traces() -> pd.DataFrame:
    """Simulated turns with missing optional values and categories the model never saw."""
    frame = simulate(400, seed=31)
    rng = np.random.default_rng(0)
    for column in ("wake_confidence", "nlu_confidence", "er_confidence", "result_confidence"):
        frame.loc[rng.random(len(frame)) < 0.2, column] = np.nan
    frame["device_type"] = np.where(rng.random(len(frame)) < 0.3, "hologram", frame["device_type"])
    frame["locale"] = np.where(rng.random(len(frame)) < 0.3, "xx-XX", frame["locale"])
    frame["nlu_intent"] = np.where(rng.random(len(frame)) < 0.2, "never_seen_intent", frame["nlu_intent"])
    frame.loc[rng.random(len(frame)) < 0.1, "nlu_domain"] = None
    return frame


def test_compiled_probabilities_equal_the_boosters(saved, built_home, monkeypatch):
    model = _loaded(saved, built_home, monkeypatch)
    assert model.compiled.status.state == "ready"
    for frame in (load_traces(SAMPLE_LABELLED), _awkward_traces()):
        features = model.features(frame)
        assert features.isna().to_numpy().any()  # the missing-value paths are exercised
        interpreted = softmax_of(model, features, compiled=False)
        fast = model.predict_proba_from_features(features)
        assert fast.shape == interpreted.shape == (len(frame), 6)
        np.testing.assert_allclose(fast, interpreted, rtol=0, atol=1e-12)
        raw_fast, raw_slow = model.raw_scores(features), model.raw_scores(features, compiled=False)
        np.testing.assert_allclose(raw_fast, raw_slow, rtol=0, atol=1e-12)


def softmax_of(model: FailurePointModel, features: pd.DataFrame, *, compiled: bool) -> np.ndarray:
    from fpi.model.calibration import softmax

    return softmax(model.raw_scores(features, compiled=compiled) / model.temperature)


def test_unseen_codes_nan_and_negative_categories_score_as_lightgbm_does(saved, built_home, monkeypatch):
    model = _loaded(saved, built_home, monkeypatch)
    forest = model.compiled.forest()
    assert forest is not None
    matrix = model.features(simulate(200, seed=32)).to_numpy(dtype=float).copy()
    names = list(model.spec.features)
    for i, column in enumerate(model.spec.categorical):
        j = names.index(column)
        matrix[i::7, j] = np.nan
        matrix[i + 1::7, j] = -1.0
        matrix[i + 2::7, j] = 10_000.0
        matrix[i + 3::7, j] = 1e12
        matrix[i + 4::7, j] = 1.5
    np.testing.assert_allclose(forest.raw_scores(matrix), model.booster.predict(matrix, raw_score=True),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(forest.raw_scores(matrix, threads=2), forest.raw_scores(matrix, threads=1),
                               rtol=0, atol=0)


def test_column_major_and_strided_matrices_score_as_the_row_major_one(saved, built_home, monkeypatch):
    """The forest reads row-major rows; other layouts are copied a chunk at a time per thread (`CHUNK_ROWS`),
    across chunk and thread boundaries to exactly the same scores."""
    model = _loaded(saved, built_home, monkeypatch)
    forest = model.compiled.forest()
    assert forest is not None
    features = model.features(simulate(400, seed=33)).to_numpy(dtype=float)
    rows = 2 * compiled.MIN_ROWS_PER_THREAD + compiled.CHUNK_ROWS // 3  # two threads, a short last chunk
    tall = np.tile(features, (rows // len(features) + 1, 1))[:rows]
    tall[::5, 0] += 0.01  # not only repeats of the same rows
    row_major = np.ascontiguousarray(tall)
    column_major = np.asfortranarray(tall)
    expected = forest.raw_scores(row_major, threads=1)
    for matrix in (column_major, row_major):
        np.testing.assert_array_equal(forest.raw_scores(matrix, threads=2), expected)
    np.testing.assert_array_equal(forest.raw_scores(column_major, threads=1), expected)
    np.testing.assert_array_equal(forest.raw_scores(row_major[::3], threads=2), expected[::3])
    np.testing.assert_allclose(expected, model.booster.predict(row_major, raw_score=True), rtol=0, atol=1e-12)


def test_the_build_is_kept_once_per_model_and_leaves_no_staging(saved, built_home, monkeypatch):
    model = _loaded(saved, built_home, monkeypatch)
    before = list((built_home / compiled.CACHE_DIRNAME).iterdir())
    assert model.compiled.build().state == "ready"  # already there: nothing is rebuilt ...
    entries = [p for p in (built_home / compiled.CACHE_DIRNAME).iterdir() if p not in before]
    assert len(entries) == 1 and entries[0].name.startswith(model.meta["baseline_sha256"])  # ... but the baseline
    entries = before
    assert len(entries) == 1 and entries[0].name.startswith(model.meta["model_sha256"])
    record = json.loads((entries[0] / compiled.BUILD_FILE).read_text())
    obj = (entries[0] / compiled.OBJECT_FILE).read_bytes()
    assert record["object_sha256"] == hashlib.sha256(obj).hexdigest()
    assert record["model_sha256"] == model.meta["model_sha256"]
    # a second builder of the same model loses the rename race quietly and keeps the first build
    assert compiled.build(model.booster.model_to_string(), model.meta["model_sha256"], built_home) == entries[0]
    assert len(list((built_home / compiled.CACHE_DIRNAME).iterdir())) == 2
    assert not any(p.name.startswith(".") for p in (built_home / compiled.CACHE_DIRNAME).iterdir())


def test_a_changed_object_file_is_refused_and_scoring_falls_back(saved, built_home, tmp_path, monkeypatch):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(built_home, home)
    folder = _model_folder(saved, home)
    obj = bytearray((folder / compiled.OBJECT_FILE).read_bytes())
    obj[len(obj) // 2] ^= 0xFF
    (folder / compiled.OBJECT_FILE).write_bytes(bytes(obj))
    model = _loaded(saved, home, monkeypatch)
    status = model.compiled.status
    assert status.state == "unavailable" and "sha256" in status.reason
    frame = simulate(100, seed=33)
    np.testing.assert_array_equal(model.predict_proba(frame),
                                  softmax_of(model, model.features(frame), compiled=False))
    assert model.compiled.build().state == "unavailable"  # a refused build is not silently replaced


def test_a_build_others_can_write_is_refused(saved, built_home, tmp_path, monkeypatch):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(built_home, home)
    folder = _model_folder(saved, home)
    (folder / compiled.OBJECT_FILE).chmod(0o666)
    status = _loaded(saved, home, monkeypatch).compiled.status
    assert status.state == "unavailable" and "writable" in status.reason


def test_background_build_then_ready_and_picklable(saved, tmp_path, monkeypatch):
    model = _loaded(saved, tmp_path / "home", monkeypatch)
    frame = simulate(100, seed=34)
    before = model.predict_proba(frame)  # interpreted: nothing built yet
    assert model.compiled.status.state == "not built"
    assert model.compiled.build(background=True).state in ("building", "ready")
    baseline_before = model.baseline_probas(frame)["raw_confidence_lgbm"]
    assert model.compiled.wait(timeout=300).state == "ready"
    assert model.compiled.status.build_seconds is not None
    np.testing.assert_allclose(model.predict_proba(frame), before, rtol=0, atol=1e-12)
    assert model.compiled.then is not None and model.compiled.then.wait(timeout=300).state == "ready"
    np.testing.assert_allclose(model.baseline_probas(frame)["raw_confidence_lgbm"], baseline_before,
                               rtol=0, atol=1e-12)
    again = pickle.loads(pickle.dumps(model))  # Dask ships models to workers
    np.testing.assert_allclose(again.predict_proba(frame), before, rtol=0, atol=1e-12)


def test_switched_off_or_unsaved_models_stay_interpreted(saved, tmp_path, monkeypatch):
    home = tmp_path / "home"
    model = _loaded(saved, home, monkeypatch)
    monkeypatch.setenv("FPI_COMPILED", "0")
    off = FailurePointModel.load(saved)
    assert off.compiled.build().state == "off"
    assert not (home / compiled.CACHE_DIRNAME).exists()
    monkeypatch.delenv("FPI_COMPILED")
    unsaved = FailurePointModel(config=SMALL).fit(simulate(400, seed=8))
    status = unsaved.compiled.build()
    assert status.state == "unavailable" and "saved" in status.reason
    assert model.compiled.status.state == "not built"


def test_cache_dir_refuses_what_is_not_a_sha256(tmp_path):
    with pytest.raises(ModelError, match="sha256"):
        compiled.cache_dir(tmp_path, "../../etc")


def test_the_app_compiles_the_active_model_in_the_background_and_says_so(saved, tmp_path, monkeypatch):
    import time

    from streamlit.testing.v1 import AppTest

    from fpi.config import REPO_ROOT

    monkeypatch.setenv("FPI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FPI_MODEL", str(saved))
    monkeypatch.delenv("FPI_COMPILED", raising=False)
    monkeypatch.delenv("FPI_DB_URL", raising=False)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("fpi/ui/pages/model.py").run()
    assert not at.exception

    def scoring() -> str:
        return next(c.value for c in at.caption if c.value.startswith("Scoring:"))

    assert "compiled trees" in scoring()  # building in the background, or already built
    deadline = time.monotonic() + 300
    while "in the background" in scoring() and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    assert scoring().startswith("Scoring: compiled trees"), scoring()
    assert "compiled once in" in scoring()
    assert len([p for p in (tmp_path / "home" / compiled.CACHE_DIRNAME).iterdir() if not p.name.startswith(".")]) >= 1


def test_fpi_compile_then_predict_uses_the_compiled_trees(saved, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fpi.cli import main
    from fpi.data.write import write_traces

    monkeypatch.setenv("FPI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FPI_COMPILED", raising=False)
    source = tmp_path / "in.csv"
    write_traces(simulate(150, seed=35), source)
    runner = CliRunner()
    before = runner.invoke(main, ["predict", str(source), "--model", str(saved), "-o", str(tmp_path / "a.parquet")])
    assert before.exit_code == 0, before.output
    assert "not built yet" in before.stderr
    built = runner.invoke(main, ["compile", "--model", str(saved)])
    assert built.exit_code == 0 and "compiled trees" in built.output, built.output
    after = runner.invoke(main, ["predict", str(source), "--model", str(saved), "-o", str(tmp_path / "b.parquet")])
    assert after.exit_code == 0 and "scoring with compiled trees" in after.stderr, after.output
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_series_equal(a["predicted_failure_point"], b["predicted_failure_point"])
    columns = [f"p_{label}" for label in LABELS]
    np.testing.assert_allclose(a[columns].to_numpy(), b[columns].to_numpy(), rtol=0, atol=1e-12)


def test_a_build_in_a_child_process_says_why_it_failed(tmp_path):
    blocked = tmp_path / "home"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    with pytest.raises(ModelError, match=r"(FileExists|NotADirectory)Error: .*home"):
        compiled.build_in_child("tree\n", "a" * 64, blocked)
