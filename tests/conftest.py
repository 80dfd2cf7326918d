"""Shared fixtures: simulator traces of a few sizes and one small trained model."""
from __future__ import annotations

import pandas as pd
import pytest

from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.simulator.simulate import simulate

MAINTAINER_TOKEN = "test-maintainer-token"
FAST = TrainConfig(learning_rate=0.15, max_rounds=150, early_stopping_rounds=20, seed=0, cv_max_turns=5_000)
"""One fold for early stopping: the cross-validated schedule is tested on small data of its own."""


@pytest.fixture(scope="session")
def sim_small() -> pd.DataFrame:
    return simulate(600, seed=1)


@pytest.fixture(scope="session")
def sim_other() -> pd.DataFrame:
    return simulate(200, seed=2)


@pytest.fixture(scope="session")
def sim_heldout() -> pd.DataFrame:
    return simulate(2500, seed=99)


@pytest.fixture(scope="session")
def tiny_model() -> FailurePointModel:
    """A model trained on a seed no test evaluates on; a minute of CPU at most."""
    return FailurePointModel(config=FAST).fit(simulate(6000, seed=7))


# ---------------------------------------------------------------- the app under AppTest


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory):
    """The shipped model and samples (or small stand-ins when they are missing)."""
    from app_files import app_files

    return app_files(tmp_path_factory.mktemp("app"))


@pytest.fixture()
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture()
def at(files, home, monkeypatch: pytest.MonkeyPatch):
    """A fresh AppTest of app.py with its own FPI_HOME, the test model and quick training."""
    from streamlit.testing.v1 import AppTest

    from app_files import QUICK
    from fpi.ui.state import STATE_KEY, AppState
    from fpi.config import REPO_ROOT
    from fpi.review.retrain import RetrainConfig
    from fpi.ui.services import loading, models
    from fpi.ui.services import triage as triage_services

    monkeypatch.setenv("FPI_HOME", str(home))
    monkeypatch.setenv("FPI_COMPILED", "0")  # no background compile of the shipped model per test (test_compiled)
    monkeypatch.delenv("FPI_DB_URL", raising=False)
    monkeypatch.setenv("FPI_MODEL", str(files.model))
    monkeypatch.setitem(loading.SAMPLES, "labelled", files.labelled)
    monkeypatch.setitem(loading.SAMPLES, "unlabelled", files.unlabelled)
    monkeypatch.setattr(models, "TRAIN_CONFIG", QUICK)
    monkeypatch.setattr(triage_services, "RETRAIN_CONFIG", RetrainConfig(train=QUICK))
    # The app's sessions act as maintainers (tests/test_team.py covers analysts and the token form).
    monkeypatch.setenv("FPI_MAINTAINER_TOKEN", MAINTAINER_TOKEN)
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=90)
    app.session_state[STATE_KEY] = AppState(maintainer_token=MAINTAINER_TOKEN)
    return app
