"""Shared fixtures: simulator traces of a few sizes and one small trained model."""
from __future__ import annotations

import pandas as pd
import pytest

from fpi.model import FailurePointModel, TrainConfig
from fpi.simulate import simulate

FAST = TrainConfig(learning_rate=0.15, max_rounds=150, early_stopping_rounds=20, seed=0)


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
