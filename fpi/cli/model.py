"""`fpi train`, `fpi compile`, `fpi evaluate` and `fpi explain`: the model."""
from __future__ import annotations

import time
from pathlib import Path

import click

from fpi.cli.common import (
    ENGINE_OPTION, EXIT_ERROR, MAP_OPTION, MODEL_OPTION, SCHEDULER_OPTION, echo, friendly, main, model_path, parse_map,
)


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the model to (replaced atomically if it exists).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the split and LightGBM.")
@click.option("--holdout", type=click.FloatRange(0, 0.5, max_open=True), default=0.15, show_default=True,
              help="Share of dialogues held out for the stored metrics; 0 trains on every label and stores "
                   "cross-validated metrics instead.")
@click.option("--scale-free", is_flag=True,
              help="Leave out raw confidences and extras (keep their ranks within the upload): for a model meant "
                   "to carry over to pipelines it never saw, like the shipped one.")
@click.option("--no-text-models", is_flag=True,
              help="Do not stack TF-IDF text models (their words are the training pipelines' words).")
@click.option("--upload-column", default=None, metavar="COLUMN",
              help="A column naming the upload each turn came from (e.g. `pipeline` in a simulated fleet): "
                   "upload-relative features are computed within each.")
@click.option("--learning-rate", type=click.FloatRange(0, 1, min_open=True), default=0.15, show_default=True,
              help="LightGBM's learning rate on large data (small data uses a finer one under cross-validation).")
@click.option("--member-column", default=None, metavar="COLUMN",
              help="A column splitting the traces into groups (e.g. `fleet` from `fpi simulate --fleets`): one "
                   "booster per group, averaged into one model that keeps what the groups agree on.")
@ENGINE_OPTION
@SCHEDULER_OPTION
@MAP_OPTION
@friendly
def train(traces: Path, output: Path, seed: int, holdout: float, scale_free: bool, no_text_models: bool,
          upload_column: str | None, learning_rate: float, member_column: str | None, engine: str,
          scheduler: str | None, mappings: tuple[str, ...]) -> None:
    """Train a failure-point model on the labelled turns of TRACES.

    Holds out --holdout of the dialogues for the metrics stored in the model's
    meta.json and trains both baselines beside it. Up to 40,000 labelled
    training turns, the rounds come from 5-fold cross-validation grouped by
    dialogue and the model is refitted on all of them; above, one fold is
    the early-stopping set. With --engine dask the boosters train on a Dask
    cluster (LightGBM's Dask interface); the saved model is the same kind of
    directory either way.
    """
    from fpi.model.evaluate import format_report
    from fpi.model.estimator import FailurePointModel
    from fpi.model.training import TrainConfig
    from fpi.data.traces import load_traces

    frame = load_traces(traces, column_map=parse_map(mappings))
    echo(f"read {len(frame):,} turns from {traces}", err=True)
    for column, hint in ((upload_column, "--upload-column"), (member_column, "--member-column")):
        if column is not None and column not in frame.columns:
            raise click.BadParameter(f"{traces} has no column {column!r}", param_hint=hint)
    config = TrainConfig(seed=seed, test_fraction=holdout, upload_column=upload_column, scale_free=scale_free,
                         text_models=not no_text_models, member_column=member_column, learning_rate=learning_rate)
    last = [""]

    def progress(message: str, done: float) -> None:
        if message != last[0]:
            echo(f"[{done:4.0%}] {message}", err=True)
            last[0] = message

    if engine == "dask":
        from fpi.cluster import dask_client
        from fpi.model.dask_training import DaskTrainer

        with dask_client(scheduler) as client:
            model = FailurePointModel(config=config, trainer=DaskTrainer(client))
            model.fit(frame, progress=progress)
        model.trainer = None
    else:
        model = FailurePointModel(config=config).fit(frame, progress=progress)
    model.save(output)
    meta = model.meta
    echo(f"saved model {model.version} to {output} ({meta['trees']} trees, {meta['training_seconds']} s)")
    echo(f"{meta['metrics'].get('evaluated_on', 'held-out dialogues')}:")
    echo(format_report(meta["metrics"]))


@main.command(name="compile")
@MODEL_OPTION
@friendly
def compile_model(model_dir: Path | None) -> None:
    """Compile the model's trees once (cached under FPI_HOME/compiled); later scoring uses them.

    Predictions are the same as LightGBM's; scoring is several times faster. Without
    the compiler packages it says why, and scoring stays with LightGBM.
    """
    from fpi.model.estimator import FailurePointModel

    model = FailurePointModel.load(model_path(model_dir))
    started = time.perf_counter()
    status = model.compiled.build()
    echo(f"model {model.version}: scoring with {status.describe()} ({time.perf_counter() - started:.1f} s)")
    if status.state != "ready":
        raise SystemExit(EXIT_ERROR)


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@MAP_OPTION
@friendly
def evaluate(traces: Path, model_dir: Path | None, as_json: bool, mappings: tuple[str, ...]) -> None:
    """Compare the model with both baselines on the labelled turns of TRACES."""
    import json

    from fpi.model.evaluate import evaluate_model, format_report
    from fpi.model.estimator import FailurePointModel
    from fpi.data.traces import load_traces

    model = FailurePointModel.load(model_path(model_dir))
    frame = load_traces(traces, column_map=parse_map(mappings))
    report = evaluate_model(model, frame)
    echo(json.dumps(report, indent=2) if as_json else format_report(report))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--dialogue", "dialogue_id", required=True, help="The dialogue_id to explain.")
@click.option("--top", type=click.IntRange(1, 20), default=4, show_default=True, help="Reasons shown per turn.")
@MAP_OPTION
@friendly
def explain(traces: Path, model_dir: Path | None, dialogue_id: str, top: int, mappings: tuple[str, ...]) -> None:
    """Show each turn of one dialogue with its label, probability and top reasons."""
    from fpi.model.explain import explain_rows
    from fpi.model.estimator import FailurePointModel
    from fpi.data.traces import load_traces

    model = FailurePointModel.load(model_path(model_dir))
    frame = load_traces(traces, column_map=parse_map(mappings))
    rows = frame.index[frame["dialogue_id"] == dialogue_id]
    if len(rows) == 0:
        raise click.BadParameter(f"no dialogue {dialogue_id!r} in {traces}", param_hint="--dialogue")
    # Features use the whole upload (ranks are upload-relative), then only this dialogue is explained.
    features = model.features(frame).loc[rows]
    for (_, turn), explanation in zip(frame.loc[rows].iterrows(), explain_rows(model, features, top=top, frame=frame)):
        text = turn.get("asr_text")
        said = "" if text is None or text != text else f'  "{text}"'
        truth = turn.get("failure_point")
        human = "" if truth is None or truth != truth else f"  (label: {truth})"
        echo(f"turn {turn['turn_index']}: {explanation.predicted} "
                   f"p={explanation.probability:.2f}{human}{said}")
        for reason in explanation.reasons:
            echo(f"    {reason.text}")
