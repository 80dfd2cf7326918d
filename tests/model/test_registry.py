"""The model registry: save, list, activate atomically, roll back, never touch the default."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fpi.config import Config
from fpi.errors import ModelError
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.model.registry import ACTIVE_FILE, DEFAULT, Registry
from fpi.simulator.simulate import simulate

QUICK = TrainConfig(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5, seed=0, num_threads=1)


@pytest.fixture(scope="module")
def models() -> tuple[FailurePointModel, FailurePointModel]:
    """Two different small models (different seeds, so different files and versions)."""
    frame = simulate(300, seed=3)
    first = FailurePointModel(config=QUICK).fit(frame)
    second = FailurePointModel(config=TrainConfig(**{**QUICK.__dict__, "seed": 1})).fit(frame)
    return first, second


@pytest.fixture()
def default_model(tmp_path: Path, models: tuple[FailurePointModel, FailurePointModel]) -> Path:
    path = tmp_path / "shipped"
    models[0].save(path)
    return path


@pytest.fixture()
def registry(tmp_path: Path, default_model: Path) -> Registry:
    return Registry(tmp_path / "home", default_model=default_model)


def test_empty_registry_uses_the_default(registry: Registry, default_model: Path) -> None:
    assert registry.active_version() == DEFAULT
    assert registry.active_path() == default_model
    entries = registry.versions()
    assert [e.version for e in entries] == [DEFAULT] and entries[0].active


def test_from_config_follows_fpi_model(tmp_path: Path, default_model: Path) -> None:
    config = Config.from_env({"FPI_HOME": str(tmp_path / "h"), "FPI_MODEL": str(default_model)})
    assert Registry.from_config(config).active_path() == default_model


def test_save_lists_but_does_not_activate(registry: Registry, models) -> None:
    entry = registry.save_candidate(models[1])
    assert entry.version == models[1].version and not entry.active
    assert (registry.root / entry.version / "model.txt").is_file()
    assert registry.active_version() == DEFAULT
    assert [e.version for e in registry.versions()] == [DEFAULT, entry.version]
    assert FailurePointModel.load(entry.path).version == entry.version


def test_saving_twice_keeps_one_copy(registry: Registry, models) -> None:
    first = registry.save_candidate(models[1])
    again = registry.save_candidate(models[1])
    assert first.path == again.path
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".candidate")]


def test_activate_and_roll_back(registry: Registry, models, default_model: Path) -> None:
    a = registry.save_candidate(models[1]).version
    registry.activate(a)
    assert registry.active_version() == a and registry.active_path() == registry.root / a
    state = json.loads((registry.root / ACTIVE_FILE).read_text())
    assert state["version"] == a and state["history"] == [DEFAULT]
    assert registry.rollback() == DEFAULT
    assert registry.active_path() == default_model
    with pytest.raises(ModelError, match="no earlier model"):
        registry.rollback()


def test_activate_unknown_version_is_refused(registry: Registry) -> None:
    with pytest.raises(ModelError, match="no model 'abc'"):
        registry.activate("abc")
    with pytest.raises(ModelError, match="not a model version"):
        registry.activate("../escape")
    assert not (registry.root / ACTIVE_FILE).exists()


def test_activation_is_atomic(registry: Registry, models, monkeypatch: pytest.MonkeyPatch) -> None:
    a = registry.save_candidate(models[1]).version
    registry.activate(a)
    before = (registry.root / ACTIVE_FILE).read_text()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        registry.activate(DEFAULT)
    monkeypatch.undo()
    assert (registry.root / ACTIVE_FILE).read_text() == before
    assert not [p for p in registry.root.iterdir() if p.name.endswith(".part")]


def test_deleted_active_model_falls_back_to_default(registry: Registry, models) -> None:
    entry = registry.save_candidate(models[1])
    registry.activate(entry.version)
    for file in entry.path.iterdir():
        file.unlink()
    entry.path.rmdir()
    assert registry.active_version() == DEFAULT


def test_corrupt_active_file_falls_back_to_default(registry: Registry) -> None:
    registry.root.mkdir(parents=True)
    (registry.root / ACTIVE_FILE).write_text("{not json")
    assert registry.active_version() == DEFAULT


def test_the_default_model_is_never_overwritten(tmp_path: Path, models, default_model: Path) -> None:
    before = {p.name: p.read_bytes() for p in default_model.iterdir()}
    # A home whose models/<version> would be the default directory itself.
    registry = Registry(tmp_path / "home", default_model=default_model)
    target = registry.root / models[1].version
    target.parent.mkdir(parents=True)
    target.symlink_to(default_model, target_is_directory=True)
    with pytest.raises(ModelError, match="refusing to overwrite the default model"):
        registry.save_candidate(models[1])
    assert {p.name: p.read_bytes() for p in default_model.iterdir()} == before
