"""fpi: failure-point isolation for voice assistants."""
import os

# LightGBM's OpenMP threads spin while they wait; on a shared 2-core machine that
# turns a 0.2 s fit into 40 s. Sleeping waiters cost nothing measurable here.
# Set before LightGBM is first imported; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from importlib import import_module
from typing import Any

from fpi.errors import (
    FpiError, ModelError, NotLabelledError, PermissionDeniedError, Problem, ScoredFileError, StoreError, TraceError,
)
from fpi.data.schema import CONTRACT_VERSION, LABELS, STAGES

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "load_traces": "fpi.data.traces",
    "validate_traces": "fpi.data.check",
    "write_traces": "fpi.data.write",
    "summarize_traces": "fpi.data.summary",
    "FailurePointModel": "fpi.model.estimator",
    "TrainConfig": "fpi.model.training",
    "predict_file": "fpi.scoring.file",
    "explain_rows": "fpi.model.explain",
    "metrics_for": "fpi.model.evaluate",
    "Registry": "fpi.model.registry",
    "VerdictStore": "fpi.review.store",
    "triage_queue": "fpi.review.triage",
    "read_verdicts": "fpi.review.retrain",
    "retrain_from_verdicts": "fpi.review.retrain",
    "simulate": "fpi.simulator.simulate",
    "simulate_fleet": "fpi.simulator.simulate",
}
"""The public API, imported on first use: `import fpi` stays cheap for the CLI (no LightGBM, no pandas
until a command needs them)."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fpi' has no attribute {name!r}")


__all__ = [
    "CONTRACT_VERSION",
    "LABELS",
    "STAGES",
    "FpiError",
    "ModelError",
    "NotLabelledError",
    "PermissionDeniedError",
    "Problem",
    "ScoredFileError",
    "StoreError",
    "TraceError",
    "__version__",
    *_LAZY,
]
