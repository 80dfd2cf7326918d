"""`fpi predict`: score a file, in memory, out of core or on Dask."""
from __future__ import annotations

from pathlib import Path

import click

from fpi.cli.common import (
    ENGINE_OPTION, MAP_OPTION, MODEL_OPTION, SCHEDULER_OPTION, echo, friendly, main, model_path, parse_map, progress_printer,
)


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Scored traces; .csv or .parquet.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None,
              help="Score out of core, in dialogue buckets of about this many turns (memory grows with it). "
                   "Default: in memory up to 200 MB, else buckets of 200,000 turns.")
@ENGINE_OPTION
@SCHEDULER_OPTION
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the temporary bucket files go (default: beside the output); "
                   "with a remote Dask cluster, a directory every worker can read and write.")
@MAP_OPTION
@friendly
def predict(traces: Path, model_dir: Path | None, output: Path, chunk_rows: int | None, engine: str,
            scheduler: str | None, workdir: Path | None, mappings: tuple[str, ...]) -> None:
    """Label every turn of TRACES with its failure point.

    Adds `predicted_failure_point` and `p_<label>` columns; every input column is kept.
    Files of any size: big ones are read in batches and scored one bucket of whole
    dialogues at a time (progress on stderr); nothing is written unless every row passes.
    """
    from fpi.scoring.file import predict_file
    from fpi.model.estimator import FailurePointModel

    model = FailurePointModel.load(model_path(model_dir))
    echo(f"scoring with {model.compiled.status.describe()}", err=True)
    result = predict_file(traces, output, model=model, column_map=parse_map(mappings), chunk_rows=chunk_rows,
                          engine=engine, scheduler=scheduler, workdir=workdir, progress=progress_printer())
    counts = sorted(result.label_counts.items(), key=lambda kv: -kv[1])
    summary = ", ".join(f"{label} {n:,}" for label, n in counts)
    how = result.mode + (f", {result.buckets} buckets" if result.buckets else "")
    echo(f"scored {result.turns:,} turns in {result.seconds:.1f} s ({how}) -> {output} ({summary})")
