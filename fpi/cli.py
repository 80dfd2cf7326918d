"""The `fpi` command: a thin shell over the package.

Each command builds the objects, calls one function and turns an `FpiError`
into a message and a non-zero exit code; no logic lives here.
"""
from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

import click

from fpi.errors import FpiError, TraceError

F = TypeVar("F", bound=Callable[..., object])

EXIT_BAD_INPUT = 1
EXIT_ERROR = 2


def _friendly(func: F) -> F:
    """Turn fpi's own errors into a message on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except TraceError as exc:
            click.echo(exc.report(), err=True)
            sys.exit(EXIT_BAD_INPUT)
        except FpiError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


def _parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
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


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@MAP_OPTION
@_friendly
def validate(file: Path, mappings: tuple[str, ...]) -> None:
    """Check FILE (CSV or Parquet) against the trace contract.

    Prints a summary when the file is valid; otherwise prints every problem
    (column, rows, reason) and exits with status 1.
    """
    from fpi.traces import load_traces, summarize_traces

    frame = load_traces(file, column_map=_parse_map(mappings))
    click.echo(summarize_traces(frame).text())


@main.command()
@click.option("--dialogues", "n_dialogues", type=click.IntRange(min=1), default=1000, show_default=True,
              help="How many dialogues to generate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same file.")
@click.option("--label-noise", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of labels flipped to another label, as annotators would.")
@click.option("--unlabelled", is_flag=True, help="Leave failure_point empty (an unlabelled export).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file; .csv or .parquet.")
@_friendly
def simulate(n_dialogues: int, seed: int, label_noise: float, unlabelled: bool, output: Path) -> None:
    """Generate realistic pipeline traces from a causal model of the assistant."""
    from fpi.simulate import simulate as run_simulation
    from fpi.traces import write_traces

    started = time.perf_counter()
    frame = run_simulation(n_dialogues, seed=seed, label_noise=label_noise, labelled=not unlabelled)
    write_traces(frame, output)
    elapsed = time.perf_counter() - started
    click.echo(f"wrote {len(frame):,} turns in {n_dialogues:,} dialogues to {output} ({elapsed:.1f} s)")


if __name__ == "__main__":  # pragma: no cover
    main()
