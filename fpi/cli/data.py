"""`fpi validate`, `fpi simulate` and `fpi datasets`: trace files and the datasets the app keeps."""
from __future__ import annotations

import time
from pathlib import Path

import click

from fpi.errors import FpiError
from fpi.cli.common import MAP_OPTION, echo, friendly, main, parse_map


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@MAP_OPTION
@friendly
def validate(file: Path, mappings: tuple[str, ...]) -> None:
    """Check FILE (CSV or Parquet) against the trace contract.

    Prints a summary when the file is valid; otherwise prints every problem
    (column, rows, reason) and exits with status 1.
    """
    from fpi.data.summary import summarize_traces
    from fpi.data.traces import load_traces

    frame = load_traces(file, column_map=parse_map(mappings))
    echo(summarize_traces(frame).text())


@main.command()
@click.option("--dialogues", "n_dialogues", type=click.IntRange(min=1), default=1000, show_default=True,
              help="How many dialogues to generate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same file.")
@click.option("--label-noise", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of labels flipped to another label, as annotators would.")
@click.option("--unlabelled", is_flag=True, help="Leave failure_point empty (an unlabelled export).")
@click.option("--pipelines", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many pipelines: 1 is the default pipeline; more adds randomly drawn ones (their own "
                   "calibration, catalogs, wording, error mix), named in a `pipeline` column.")
@click.option("--fleets", type=click.IntRange(min=1), default=1, show_default=True,
              help="Draw this many fleets of --pipelines pipelines independently, named in a `fleet` column "
                   "(for `fpi train --member-column fleet`); --dialogues is shared between them.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file; .csv or .parquet.")
@friendly
def simulate(n_dialogues: int, seed: int, label_noise: float, unlabelled: bool, pipelines: int, fleets: int,
             output: Path) -> None:
    """Generate realistic pipeline traces from a causal model of the assistant."""
    from fpi.simulator.simulate import simulate as run_simulation
    from fpi.simulator.simulate import simulate_fleet
    from fpi.data.write import write_traces

    started = time.perf_counter()
    if pipelines > 1 or fleets > 1:
        frame = simulate_fleet(n_dialogues, seed=seed, n_pipelines=pipelines, label_noise=label_noise,
                               labelled=not unlabelled, n_fleets=fleets)
    else:
        frame = run_simulation(n_dialogues, seed=seed, label_noise=label_noise, labelled=not unlabelled)
    write_traces(frame, output)
    elapsed = time.perf_counter() - started
    echo(f"wrote {len(frame):,} turns in {n_dialogues:,} dialogues to {output} ({elapsed:.1f} s)")


@main.group()
def datasets() -> None:
    """Datasets uploaded in the app and kept for shared links ($FPI_HOME/datasets)."""


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@friendly
def datasets_list(as_json: bool) -> None:
    """Every kept dataset, most recently opened first: fingerprint, file name, turns, size."""
    import json

    from fpi.config import Config
    from fpi.data.datasets import describe, store_from_env

    rows = describe(store_from_env(Config.from_env().home).list())
    if as_json:
        echo(json.dumps(rows, indent=2))
        return
    if not rows:
        echo("no datasets kept")
        return
    for row in rows:
        echo(f"{row['fingerprint']}  {row['turns']:>9,} turns  {row['size_mb']:>9,.2f} MB  "
                   f"saved {row['saved_at']}  {row['name']}")


@datasets.command("rm")
@click.argument("fingerprints", nargs=-1, required=True)
@friendly
def datasets_rm(fingerprints: tuple[str, ...]) -> None:
    """Delete kept datasets by fingerprint (links to them stop working)."""
    from fpi.config import Config
    from fpi.data.datasets import store_from_env

    store = store_from_env(Config.from_env().home)
    missing = [f for f in fingerprints if not store.remove(f)]
    for fingerprint in fingerprints:
        if fingerprint not in missing:
            echo(f"removed {fingerprint}")
    if missing:
        raise FpiError("no such dataset: " + ", ".join(missing))
