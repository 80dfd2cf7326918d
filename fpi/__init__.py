"""fpi: failure-point isolation for voice assistants."""
from fpi.errors import FpiError, ModelError, NotLabelledError, Problem, TraceError
from fpi.schema import CONTRACT_VERSION, LABELS, STAGES

__version__ = "0.1.0"

__all__ = [
    "CONTRACT_VERSION",
    "LABELS",
    "STAGES",
    "FpiError",
    "ModelError",
    "NotLabelledError",
    "Problem",
    "TraceError",
    "__version__",
]
