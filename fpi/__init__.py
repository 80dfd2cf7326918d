"""fpi: failure-point isolation for voice assistants."""
import os

# LightGBM's OpenMP threads spin while they wait; on a shared 2-core machine that
# turns a 0.2 s fit into 40 s. Sleeping waiters cost nothing measurable here.
# Set before LightGBM is first imported; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from importlib import import_module
from typing import Any

from fpi.errors import FpiError, ModelError, NotLabelledError, Problem, ScoredFileError, StoreError, TraceError
from fpi.schema import CONTRACT_VERSION, LABELS, STAGES

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "load_traces": "fpi.traces",
    "validate_traces": "fpi.traces",
    "write_traces": "fpi.traces",
    "summarize_traces": "fpi.traces",
    "FailurePointModel": "fpi.model",
    "TrainConfig": "fpi.model",
    "predict_file": "fpi.bulk",
    "explain_rows": "fpi.explain",
    "metrics_for": "fpi.evaluate",
    "Registry": "fpi.registry",
    "VerdictStore": "fpi.store",
    "triage_queue": "fpi.triage",
    "read_verdicts": "fpi.retrain",
    "retrain_from_verdicts": "fpi.retrain",
    "simulate": "fpi.simulate",
    "simulate_fleet": "fpi.simulate",
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
    "Problem",
    "ScoredFileError",
    "StoreError",
    "TraceError",
    "__version__",
    *_LAZY,
]
