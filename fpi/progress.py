"""How long work reports how far it has got: to a progress bar in the app, a line in the CLI, or nowhere."""
from __future__ import annotations

from typing import Callable

Progress = Callable[[str, float], None]
"""Called with a message and the share of the work done, in [0, 1]."""


def quiet(message: str, done: float) -> None:
    """Progress that goes nowhere: for callers that did not ask for any."""
    return None
