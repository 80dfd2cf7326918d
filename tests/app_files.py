"""What the app tests share (a helper module, not a test): the model and sample traces they run on,
the pages, and the steps every test takes (start a session, load the sample, upload a file)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamlit.testing.v1 import AppTest

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


PAGES = {
    "data": "fpi/ui/pages/data.py",
    "overview": "fpi/ui/pages/overview.py",
    "dialogue": "fpi/ui/pages/dialogue.py",
    "model": "fpi/ui/pages/model.py",
}


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def no_error(at: AppTest) -> None:
    """No exception, and no error message on the page either."""
    no_exception(at)
    assert not at.error, [e.value for e in at.error]


def start(at: AppTest) -> AppTest:
    """A new session, then the Data page (the app opens on the Overview, with the sample)."""
    at.run()
    no_exception(at)
    at.switch_page(PAGES["data"]).run()
    no_exception(at)
    return at


def load_sample(at: AppTest) -> AppTest:
    start(at)
    button(at, "Load labelled sample").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    return at


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader[0].set_value((name, content, "text/csv")).run()
    no_exception(at)
    return at


def all_text(elements) -> str:
    return "\n".join(str(e.value) for e in elements)
