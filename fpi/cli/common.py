"""What every `fpi` command shares: the command group, messages made safe to print, errors turned
into exit codes, and the options several commands take."""
from __future__ import annotations

import functools
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import click

if TYPE_CHECKING:
    import pandas as pd

from fpi.errors import FpiError, TraceError

F = TypeVar("F", bound=Callable[..., object])

EXIT_BAD_INPUT = 1
EXIT_ERROR = 2
EXIT_BREACH = 4
"""`fpi monitor` found at least one breach: a scheduler can alert on it."""


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: object) -> str:
    """`text` with terminal control characters (escape sequences, bells, CR) shown as \\xNN.

    Trace values reach the terminal in reports and explanations; an ESC in a cell must
    not recolour, retitle or rewrite the analyst's terminal. Newlines and tabs stay.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def echo(message: object = "", *, err: bool = False) -> None:
    """Every line the CLI prints goes through here: control characters made visible."""
    click.echo(printable(message), err=err)


def friendly(func: F) -> F:
    """Turn fpi's own errors, and the system's (a full disk, an unreadable path), into a message on
    stderr and an exit code, never a stack trace."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except TraceError as exc:
            echo(exc.report(), err=True)
            sys.exit(EXIT_BAD_INPUT)
        except FpiError as exc:
            echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        except OSError as exc:
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            echo(f"error: {exc.strerror or exc}{where}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


def parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise click.BadParameter(f"expected SOURCE=TARGET, got {pair!r}", param_hint="--map")
        mapping[source.strip()] = target.strip()
    return mapping


MAP_OPTION = click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="SOURCE=TARGET",
    help="Read column SOURCE as contract column TARGET, e.g. --map asr_conf=asr_confidence. Repeatable.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fpi")
def main() -> None:
    """fpi: find the failure point (wake, ASR, NLU, ER, result) of voice-assistant turns."""


def model_path(model: Path | None) -> Path:
    from fpi.config import Config

    return model if model is not None else Config.from_env().default_model


def judged_frame(traces: Path, mappings: tuple[str, ...], model_dir: Path | None, *,
                  use_labels: bool) -> tuple[pd.DataFrame, str]:
    """The traces and the column to count failures by: the human labels, or the model's predictions
    (the file's own when it was scored by `fpi predict`, else scored here)."""
    from fpi.data.schema import PREDICTED_COLUMN
    from fpi.model.estimator import FailurePointModel
    from fpi.data.schema import LABEL_COLUMN
    from fpi.data.traces import load_traces

    frame = load_traces(traces, column_map=parse_map(mappings))
    if use_labels:
        return frame, LABEL_COLUMN
    if PREDICTED_COLUMN not in frame.columns:
        frame = FailurePointModel.load(model_path(model_dir)).score(frame)
    return frame, PREDICTED_COLUMN


ENGINE_OPTION = click.option(
    "--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
    help="local: this process; dask: a Dask cluster (--scheduler, or a local one of 2 workers).",
)
SCHEDULER_OPTION = click.option(
    "--scheduler", metavar="ADDRESS", default=None,
    help="Dask scheduler address (e.g. tcp://10.0.0.5:8786) for --engine dask; default: start a local cluster.",
)
MODEL_OPTION = click.option(
    "--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Model directory (default: $FPI_MODEL or the shipped models/default).",
)


def progress_printer(every: float = 2.0) -> Callable[[str, float], None]:
    """Progress lines on stderr: when the step changes, else at most every `every` seconds."""
    state = {"step": "", "at": 0.0}

    def show(message: str, done: float) -> None:
        step = message.split(":")[0]
        now = time.monotonic()
        if step != state["step"] or now - state["at"] >= every:
            echo(f"[{done:4.0%}] {message}", err=True)
            state["step"], state["at"] = step, now

    return show
