"""fpi: failure-point isolation for voice assistants."""
import os

# LightGBM's OpenMP threads spin while they wait; on a shared 2-core machine that
# turns a 0.2 s fit into 40 s. Sleeping waiters cost nothing measurable here.
# Set before LightGBM is first imported; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
