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


def _model_path(model: Path | None) -> Path:
    from fpi.config import Config

    return model if model is not None else Config.from_env().default_model


MODEL_OPTION = click.option(
    "--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Model directory (default: $FPI_MODEL or the shipped models/default).",
)


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the model to (replaced atomically if it exists).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the split and LightGBM.")
@MAP_OPTION
@_friendly
def train(traces: Path, output: Path, seed: int, mappings: tuple[str, ...]) -> None:
    """Train a failure-point model on the labelled turns of TRACES.

    Holds out 15% of dialogues for early stopping and 15% for the metrics
    stored in the model's meta.json, and trains both baselines beside it.
    """
    from fpi.evaluate import format_report
    from fpi.model import FailurePointModel, TrainConfig
    from fpi.traces import load_traces

    frame = load_traces(traces, column_map=_parse_map(mappings))
    click.echo(f"read {len(frame):,} turns from {traces}", err=True)
    last = [""]

    def progress(message: str, done: float) -> None:
        if message != last[0]:
            click.echo(f"[{done:4.0%}] {message}", err=True)
            last[0] = message

    model = FailurePointModel(config=TrainConfig(seed=seed)).fit(frame, progress=progress)
    model.save(output)
    meta = model.meta
    click.echo(f"saved model {model.version} to {output} ({meta['trees']} trees, {meta['training_seconds']} s)")
    click.echo("held-out dialogues:")
    click.echo(format_report(meta["metrics"]))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Scored traces; .csv or .parquet.")
@MAP_OPTION
@_friendly
def predict(traces: Path, model_dir: Path | None, output: Path, mappings: tuple[str, ...]) -> None:
    """Label every turn of TRACES with its failure point.

    Adds `predicted_failure_point` and `p_<label>` columns; every input column is kept.
    """
    from fpi.model import FailurePointModel
    from fpi.traces import load_traces, write_traces

    started = time.perf_counter()
    model = FailurePointModel.load(_model_path(model_dir))
    frame = load_traces(traces, column_map=_parse_map(mappings))
    scored = model.score(frame)
    write_traces(scored, output)
    counts = scored["predicted_failure_point"].value_counts()
    summary = ", ".join(f"{label} {counts[label]:,}" for label in counts.index)
    click.echo(f"scored {len(scored):,} turns in {time.perf_counter() - started:.1f} s -> {output} ({summary})")


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@MAP_OPTION
@_friendly
def evaluate(traces: Path, model_dir: Path | None, as_json: bool, mappings: tuple[str, ...]) -> None:
    """Compare the model with both baselines on the labelled turns of TRACES."""
    import json

    from fpi.evaluate import evaluate_model, format_report
    from fpi.model import FailurePointModel
    from fpi.traces import load_traces

    model = FailurePointModel.load(_model_path(model_dir))
    frame = load_traces(traces, column_map=_parse_map(mappings))
    report = evaluate_model(model, frame)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--dialogue", "dialogue_id", required=True, help="The dialogue_id to explain.")
@click.option("--top", type=click.IntRange(1, 20), default=4, show_default=True, help="Reasons shown per turn.")
@MAP_OPTION
@_friendly
def explain(traces: Path, model_dir: Path | None, dialogue_id: str, top: int, mappings: tuple[str, ...]) -> None:
    """Show each turn of one dialogue with its label, probability and top reasons."""
    from fpi.explain import explain_rows
    from fpi.model import FailurePointModel
    from fpi.traces import load_traces

    model = FailurePointModel.load(_model_path(model_dir))
    frame = load_traces(traces, column_map=_parse_map(mappings))
    rows = frame.index[frame["dialogue_id"] == dialogue_id]
    if len(rows) == 0:
        raise click.BadParameter(f"no dialogue {dialogue_id!r} in {traces}", param_hint="--dialogue")
    # Features use the whole upload (ranks are upload-relative), then only this dialogue is explained.
    features = model.features(frame).loc[rows]
    for (_, turn), explanation in zip(frame.loc[rows].iterrows(), explain_rows(model, features, top=top)):
        text = turn.get("asr_text")
        said = "" if text is None or text != text else f'  "{text}"'
        truth = turn.get("failure_point")
        human = "" if truth is None or truth != truth else f"  (label: {truth})"
        click.echo(f"turn {turn['turn_index']}: {explanation.predicted} "
                   f"p={explanation.probability:.2f}{human}{said}")
        for reason in explanation.reasons:
            click.echo(f"    {reason.text}")


if __name__ == "__main__":  # pragma: no cover
    main()
