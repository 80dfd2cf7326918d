"""The `fpi` command: a thin shell over the package.

Each command builds the objects, calls one function and turns an `FpiError`
into a message and a non-zero exit code; no logic lives here. The commands are
grouped by the part of fpi they drive; importing their modules registers them.
"""
from fpi.cli import analysis, data, model, review, scoring, team  # noqa: F401  (each registers its commands)
from fpi.cli.common import main

__all__ = ["main"]
