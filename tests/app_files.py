"""The model and sample traces the app tests run on (a helper module, not a test)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fpi.config import SAMPLE_LABELLED, SAMPLE_UNLABELLED, SHIPPED_MODEL
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.simulator.simulate import simulate
from fpi.data.traces import load_traces
from fpi.data.write import write_traces

QUICK = TrainConfig(learning_rate=0.3, max_rounds=40, early_stopping_rounds=10, seed=0, num_threads=1)
"""Small and single-threaded: fast, and immune to OpenMP spinning on a busy machine."""


@dataclass(frozen=True)
class AppFiles:
    model: Path
    labelled: Path
    unlabelled: Path


def app_files(tmp: Path) -> AppFiles:
    """The shipped model and samples when they exist; otherwise small stand-ins written to `tmp`."""
    labelled, unlabelled = SAMPLE_LABELLED, SAMPLE_UNLABELLED
    if not labelled.is_file():
        labelled = tmp / "labelled.csv"
        write_traces(simulate(700, seed=11), labelled)
    if not unlabelled.is_file():
        unlabelled = tmp / "unlabelled.csv"
        write_traces(simulate(200, seed=12, labelled=False), unlabelled)
    model = SHIPPED_MODEL
    if not (model / "meta.json").is_file():
        model = tmp / "model"
        FailurePointModel(config=QUICK).fit(load_traces(labelled)).save(model)
    return AppFiles(model=model, labelled=labelled, unlabelled=unlabelled)
