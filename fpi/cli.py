"""The `fpi` command: a thin shell over the package.

Each command builds the objects, calls one function and turns an `FpiError`
into a message and a non-zero exit code; no logic lives here.
"""
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


def _echo(message: object = "", *, err: bool = False) -> None:
    """Every line the CLI prints goes through here: control characters made visible."""
    click.echo(printable(message), err=err)


def _friendly(func: F) -> F:
    """Turn fpi's own errors, and the system's (a full disk, an unreadable path), into a message on
    stderr and an exit code, never a stack trace."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except TraceError as exc:
            _echo(exc.report(), err=True)
            sys.exit(EXIT_BAD_INPUT)
        except FpiError as exc:
            _echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        except OSError as exc:
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            _echo(f"error: {exc.strerror or exc}{where}", err=True)
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
    from fpi.data.traces import load_traces, summarize_traces

    frame = load_traces(file, column_map=_parse_map(mappings))
    _echo(summarize_traces(frame).text())


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
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file; .csv or .parquet.")
@_friendly
def simulate(n_dialogues: int, seed: int, label_noise: float, unlabelled: bool, pipelines: int, output: Path) -> None:
    """Generate realistic pipeline traces from a causal model of the assistant."""
    from fpi.simulator.simulate import simulate as run_simulation
    from fpi.simulator.simulate import simulate_fleet
    from fpi.data.traces import write_traces

    started = time.perf_counter()
    if pipelines > 1:
        frame = simulate_fleet(n_dialogues, seed=seed, n_pipelines=pipelines, label_noise=label_noise,
                               labelled=not unlabelled)
    else:
        frame = run_simulation(n_dialogues, seed=seed, label_noise=label_noise, labelled=not unlabelled)
    write_traces(frame, output)
    elapsed = time.perf_counter() - started
    _echo(f"wrote {len(frame):,} turns in {n_dialogues:,} dialogues to {output} ({elapsed:.1f} s)")


def _model_path(model: Path | None) -> Path:
    from fpi.config import Config

    return model if model is not None else Config.from_env().default_model


def _judged_frame(traces: Path, mappings: tuple[str, ...], model_dir: Path | None, *,
                  use_labels: bool) -> tuple[pd.DataFrame, str]:
    """The traces and the column to count failures by: the human labels, or the model's predictions
    (the file's own when it was scored by `fpi predict`, else scored here)."""
    from fpi.analysis.dashboard import PREDICTED
    from fpi.model.estimator import FailurePointModel
    from fpi.data.schema import LABEL_COLUMN
    from fpi.data.traces import load_traces

    frame = load_traces(traces, column_map=_parse_map(mappings))
    if use_labels:
        return frame, LABEL_COLUMN
    if PREDICTED not in frame.columns:
        frame = FailurePointModel.load(_model_path(model_dir)).score(frame)
    return frame, PREDICTED


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
@ENGINE_OPTION
@SCHEDULER_OPTION
@MAP_OPTION
@_friendly
def train(traces: Path, output: Path, seed: int, holdout: float, scale_free: bool, no_text_models: bool,
          upload_column: str | None, engine: str, scheduler: str | None, mappings: tuple[str, ...]) -> None:
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
    from fpi.model.estimator import FailurePointModel, TrainConfig
    from fpi.data.traces import load_traces

    frame = load_traces(traces, column_map=_parse_map(mappings))
    _echo(f"read {len(frame):,} turns from {traces}", err=True)
    if upload_column is not None and upload_column not in frame.columns:
        raise click.BadParameter(f"{traces} has no column {upload_column!r}", param_hint="--upload-column")
    config = TrainConfig(seed=seed, test_fraction=holdout, upload_column=upload_column, scale_free=scale_free,
                         text_models=not no_text_models)
    last = [""]

    def progress(message: str, done: float) -> None:
        if message != last[0]:
            _echo(f"[{done:4.0%}] {message}", err=True)
            last[0] = message

    if engine == "dask":
        from fpi.scoring.distributed import DaskTrainer, dask_client

        with dask_client(scheduler) as client:
            model = FailurePointModel(config=config, trainer=DaskTrainer(client))
            model.fit(frame, progress=progress)
        model.trainer = None
    else:
        model = FailurePointModel(config=config).fit(frame, progress=progress)
    model.save(output)
    meta = model.meta
    _echo(f"saved model {model.version} to {output} ({meta['trees']} trees, {meta['training_seconds']} s)")
    _echo(f"{meta['metrics'].get('evaluated_on', 'held-out dialogues')}:")
    _echo(format_report(meta["metrics"]))


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
@_friendly
def predict(traces: Path, model_dir: Path | None, output: Path, chunk_rows: int | None, engine: str,
            scheduler: str | None, workdir: Path | None, mappings: tuple[str, ...]) -> None:
    """Label every turn of TRACES with its failure point.

    Adds `predicted_failure_point` and `p_<label>` columns; every input column is kept.
    Files of any size: big ones are read in batches and scored one bucket of whole
    dialogues at a time (progress on stderr); nothing is written unless every row passes.
    """
    from fpi.scoring.file import predict_file
    from fpi.model.estimator import FailurePointModel

    model = FailurePointModel.load(_model_path(model_dir))
    _echo(f"scoring with {model.compiled.status.describe()}", err=True)
    result = predict_file(traces, output, model=model, column_map=_parse_map(mappings), chunk_rows=chunk_rows,
                          engine=engine, scheduler=scheduler, workdir=workdir, progress=_progress_printer())
    counts = sorted(result.label_counts.items(), key=lambda kv: -kv[1])
    summary = ", ".join(f"{label} {n:,}" for label, n in counts)
    how = result.mode + (f", {result.buckets} buckets" if result.buckets else "")
    _echo(f"scored {result.turns:,} turns in {result.seconds:.1f} s ({how}) -> {output} ({summary})")


@main.command(name="compile")
@MODEL_OPTION
@_friendly
def compile_model(model_dir: Path | None) -> None:
    """Compile the model's trees once (cached under FPI_HOME/compiled); later scoring uses them.

    Predictions are the same as LightGBM's; scoring is several times faster. Without
    the compiler packages it says why, and scoring stays with LightGBM.
    """
    from fpi.model.estimator import FailurePointModel

    model = FailurePointModel.load(_model_path(model_dir))
    started = time.perf_counter()
    status = model.compiled.build()
    _echo(f"model {model.version}: scoring with {status.describe()} ({time.perf_counter() - started:.1f} s)")
    if status.state != "ready":
        raise SystemExit(EXIT_ERROR)


def _progress_printer(every: float = 2.0) -> Callable[[str, float], None]:
    """Progress lines on stderr: when the step changes, else at most every `every` seconds."""
    state = {"step": "", "at": 0.0}

    def show(message: str, done: float) -> None:
        step = message.split(":")[0]
        now = time.monotonic()
        if step != state["step"] or now - state["at"] >= every:
            _echo(f"[{done:4.0%}] {message}", err=True)
            state["step"], state["at"] = step, now

    return show


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@MAP_OPTION
@_friendly
def evaluate(traces: Path, model_dir: Path | None, as_json: bool, mappings: tuple[str, ...]) -> None:
    """Compare the model with both baselines on the labelled turns of TRACES."""
    import json

    from fpi.model.evaluate import evaluate_model, format_report
    from fpi.model.estimator import FailurePointModel
    from fpi.data.traces import load_traces

    model = FailurePointModel.load(_model_path(model_dir))
    frame = load_traces(traces, column_map=_parse_map(mappings))
    report = evaluate_model(model, frame)
    _echo(json.dumps(report, indent=2) if as_json else format_report(report))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--dialogue", "dialogue_id", required=True, help="The dialogue_id to explain.")
@click.option("--top", type=click.IntRange(1, 20), default=4, show_default=True, help="Reasons shown per turn.")
@MAP_OPTION
@_friendly
def explain(traces: Path, model_dir: Path | None, dialogue_id: str, top: int, mappings: tuple[str, ...]) -> None:
    """Show each turn of one dialogue with its label, probability and top reasons."""
    from fpi.model.explain import explain_rows
    from fpi.model.estimator import FailurePointModel
    from fpi.data.traces import load_traces

    model = FailurePointModel.load(_model_path(model_dir))
    frame = load_traces(traces, column_map=_parse_map(mappings))
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
        _echo(f"turn {turn['turn_index']}: {explanation.predicted} "
                   f"p={explanation.probability:.2f}{human}{said}")
        for reason in explanation.reasons:
            _echo(f"    {reason.text}")



@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print cohorts (and fairness) as JSON.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="False discovery rate (Benjamini-Hochberg over every cohort and failure point tested).")
@click.option("--min-support", type=click.IntRange(min=1), default=200, show_default=True,
              help="Fewest turns a cohort may have.")
@click.option("--max-conditions", type=click.IntRange(1, 3), default=3, show_default=True,
              help="Most column = value conditions combined in one cohort.")
@click.option("--labels", "use_labels", is_flag=True,
              help="Search the human labels (failure_point) instead of the model's predictions.")
@MAP_OPTION
@_friendly
def cohorts(traces: Path, model_dir: Path | None, as_json: bool, level: float, min_support: int, max_conditions: int,
            use_labels: bool, mappings: tuple[str, ...]) -> None:
    """Find cohorts (e.g. locale = en-IN and device_type = car) that fail at a stage significantly more often.

    Scores TRACES with the model and tests every cohort of up to --max-conditions
    conditions against the turns outside it. When TRACES has labels, also flags
    locales and devices for which the model is significantly worse than for the rest.
    """
    import json

    from fpi.analysis.cohorts import discover_cohorts, format_discovery
    from fpi.analysis.fairness import fairness, format_fairness
    from fpi.model.estimator import FailurePointModel
    from fpi.data.schema import LABEL_COLUMN
    from fpi.data.traces import load_traces

    model = FailurePointModel.load(_model_path(model_dir))
    scored = model.score(load_traces(traces, column_map=_parse_map(mappings)))
    labelled = bool(scored[LABEL_COLUMN].notna().any()) if LABEL_COLUMN in scored.columns else False
    found = discover_cohorts(scored, label_column=LABEL_COLUMN if use_labels else "predicted_failure_point",
                             level=level, min_support=min_support, max_conditions=max_conditions)
    checked = fairness(scored, level=level) if labelled else None
    if as_json:
        report = found.to_dict()
        report["fairness"] = None if checked is None else checked.to_dict("records")
        _echo(json.dumps(report, indent=2, default=lambda value: value.item()))
        return
    _echo(format_discovery(found))
    _echo("")
    _echo("model fairness: needs labels (failure_point)" if checked is None
               else format_fairness(checked, level=level))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--by", type=click.Choice(["hour", "day", "week"]), default="day", show_default=True,
              help="Period of each point of the control charts.")
@click.option("--window", type=click.IntRange(min=1), default=None,
              help="Preceding periods the control limits are estimated from (default: 168 hours, 14 days, 8 weeks).")
@click.option("--cohort", "extra_columns", multiple=True, metavar="COLUMN",
              help="Also monitor each value of COLUMN (e.g. nlu_domain), beside device_type and locale. Repeatable.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="False discovery rate (Benjamini-Hochberg over every series and period tested).")
@click.option("--min-turns", type=click.IntRange(min=1), default=20, show_default=True,
              help="Fewest turns a series needs in a period to be tested.")
@click.option("--labels", "use_labels", is_flag=True,
              help="Monitor the human labels (failure_point) instead of the model's predictions.")
@click.option("--json", "as_json", is_flag=True, help="Print the breaches as JSON.")
@MAP_OPTION
@_friendly
def monitor(traces: Path, model_dir: Path | None, by: str, window: int | None, extra_columns: tuple[str, ...],
            level: float, min_turns: int, use_labels: bool, as_json: bool, mappings: tuple[str, ...]) -> None:
    """Find periods in which a failure point's rate rose above its control limit, overall and per cohort.

    Each failure point's rate per --by period, for all turns and for each
    device_type and locale, is tested against the preceding --window periods
    (a p-chart; one-sided Fisher exact test, Benjamini-Hochberg over all points).
    Scores TRACES with the model unless they already carry predictions or
    --labels is given. Exits with status 4 when there is at least one breach,
    0 when there is none, so a scheduler can alert on it.
    """
    import json

    from fpi.analysis.monitor import MONITOR_COLUMNS, format_monitoring
    from fpi.analysis.monitor import monitor as run_monitor

    frame, label_column = _judged_frame(traces, mappings, model_dir, use_labels=use_labels)
    missing = [c for c in extra_columns if c not in frame.columns]
    if missing:
        raise click.BadParameter(f"{traces} has no column {missing[0]!r}", param_hint="--cohort")
    columns = tuple(dict.fromkeys((*MONITOR_COLUMNS, *extra_columns)))
    result = run_monitor(frame, label_column=label_column, by=by, window=window,
                         columns=columns, level=level, min_turns=min_turns)
    if as_json:
        _echo(json.dumps(result.to_dict(), indent=2))
    else:
        _echo(format_monitoring(result))
    if not result.breaches.empty:
        sys.exit(EXIT_BREACH)


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("after", type=click.Path(dir_okay=False, path_type=Path), required=False)
@MODEL_OPTION
@click.option("--against", "against_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A second model: compare its labels of TRACES with --model's, turn by turn.")
@click.option("--split-at", metavar="DATE", default=None,
              help="Compare TRACES' turns before DATE (ISO-8601, UTC unless it says) with those from DATE on.")
@click.option("--split-by", metavar="COLUMN", default=None,
              help="Compare TRACES' turns with COLUMN = --before with those with COLUMN = --after (e.g. app_version).")
@click.option("--before", "before_value", default=None, help="With --split-by: the value before.")
@click.option("--after", "after_value", default=None, help="With --split-by: the value after.")
@click.option("--labels", "use_labels", is_flag=True,
              help="Compare the human labels (failure_point) instead of the model's predictions.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="False discovery rate (Benjamini-Hochberg over every cohort and failure point tested).")
@click.option("--min-support", type=click.IntRange(min=1), default=100, show_default=True,
              help="Fewest turns a cohort needs on each side.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@MAP_OPTION
@_friendly
def compare(traces: Path, after: Path | None, model_dir: Path | None, against_dir: Path | None, split_at: str | None,
            split_by: str | None, before_value: str | None, after_value: str | None, use_labels: bool, level: float,
            min_support: int, as_json: bool, mappings: tuple[str, ...]) -> None:
    """Compare failure points between two versions: two models, two files, or one file split in two.

    `fpi compare TRACES --model A --against B`: the same turns labelled by two
    models (6x6 migration matrix, McNemar tests). `fpi compare BEFORE AFTER`,
    or one file with --split-at DATE or --split-by COLUMN --before X --after Y:
    two sets of turns (two-proportion tests). Either way, each failure point's
    rate change with a 95% interval, and the cohorts (device, locale, domain,
    intent; up to two conditions) whose rate changed, Benjamini-Hochberg corrected.
    """
    import json

    from fpi.analysis.compare import compare_frames, compare_paired, format_comparison, split_frame
    from fpi.analysis.dashboard import PREDICTED
    from fpi.model.estimator import FailurePointModel
    from fpi.data.schema import LABEL_COLUMN
    from fpi.data.traces import load_traces

    modes = [after is not None, against_dir is not None, split_at is not None, split_by is not None]
    if sum(modes) != 1:
        raise click.UsageError("compare exactly one way: a second file AFTER, --against MODEL, --split-at DATE "
                               "or --split-by COLUMN")
    if against_dir is not None and use_labels:
        raise click.UsageError("--against compares two models' labels; it cannot be combined with --labels")
    column_map = _parse_map(mappings)
    frame = load_traces(traces, column_map=column_map)
    if against_dir is not None:
        first = FailurePointModel.load(_model_path(model_dir))
        second = FailurePointModel.load(against_dir)
        scored = first.score(frame)
        scored["_against"] = second.score(frame)[PREDICTED].to_numpy()
        names = (f"model {first.version}", f"model {second.version}")
        if names[0] == names[1]:
            names = (f"{names[0]} (--model)", f"{names[1]} (--against)")
        result = compare_paired(scored, PREDICTED, "_against", names=names, min_support=min_support, level=level)
    else:
        model: list[FailurePointModel] = []

        def labelled(part):  # score once per file unless it has predictions already
            if use_labels or PREDICTED in part.columns:
                return part
            if not model:
                model.append(FailurePointModel.load(_model_path(model_dir)))
            return model[0].score(part)

        # Each upload is scored as a whole (the model's ranks are upload-relative), then split.
        if after is not None:
            parts = (labelled(frame), labelled(load_traces(after, column_map=column_map)))
            names = (str(traces), str(after))
        elif split_at is not None:
            parts = split_frame(labelled(frame), at=split_at)
            names = (f"before {split_at}", f"from {split_at}")
        else:
            parts = split_frame(labelled(frame), column=split_by, before_value=before_value, after_value=after_value)
            names = (f"{split_by} = {before_value}", f"{split_by} = {after_value}")
        result = compare_frames(*parts, label_column=LABEL_COLUMN if use_labels else PREDICTED,
                                names=names, min_support=min_support, level=level)
    _echo(json.dumps(result.to_dict(), indent=2) if as_json else format_comparison(result))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--labels", "use_labels", is_flag=True,
              help="Group the human labels (failure_point) instead of the model's predictions.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@MAP_OPTION
@_friendly
def episodes(traces: Path, model_dir: Path | None, use_labels: bool, as_json: bool, mappings: tuple[str, ...]) -> None:
    """Count defect episodes beside turns: a failure and the user's retries of the same request are one episode.

    Prints the defect rate per turn and per episode, how many episodes recovered
    (and in how many turns), were abandoned (the dialogue ended) or moved on.
    """
    import json

    from fpi.analysis.episodes import episode_summary, format_episode_summary

    frame, label_column = _judged_frame(traces, mappings, model_dir, use_labels=use_labels)
    summary = episode_summary(frame, label_column=label_column)
    _echo(json.dumps(summary.to_dict(), indent=2) if as_json else format_episode_summary(summary))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="False discovery rate for flagging a locale or device (Benjamini-Hochberg).")
@click.option("--labels", "use_labels", is_flag=True,
              help="Use the human labels (failure_point) instead of the model's predictions.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON records.")
@MAP_OPTION
@_friendly
def gaps(traces: Path, model_dir: Path | None, level: float, use_labels: bool, as_json: bool,
         mappings: tuple[str, ...]) -> None:
    """Split the gap of each locale and device that fails more than the rest into its failure points.

    "locale = en-IN: 12 points worse" becomes "asr +9 (7 to 11), nlu +2 ...":
    the per-stage differences add up to the gap; each has a 95% Newcombe interval.
    """
    from fpi.analysis.gaps import format_gaps, stage_gaps

    frame, label_column = _judged_frame(traces, mappings, model_dir, use_labels=use_labels)
    table = stage_gaps(frame, label_column=label_column, level=level)
    _echo(table.to_json(orient="records", indent=2) if as_json else format_gaps(table))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--exclude", "exclude", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Verdicts file (dialogue_id, turn_index, label; or an `fpi verdicts export`): leave these turns out.")
@click.option("-n", "n_turns", type=click.IntRange(min=1), default=100, show_default=True,
              help="How many turns to write.")
@click.option("--order", type=click.Choice(["explore", "uncertainty", "entropy", "defect_probability"]),
              default="explore", show_default=True, help="Queue order (explore: every predicted label first).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file; .csv or .parquet.")
@MAP_OPTION
@_friendly
def queue(traces: Path, model_dir: Path | None, exclude: Path | None, n_turns: int, order: str, output: Path,
          mappings: tuple[str, ...]) -> None:
    """Write the next N turns of TRACES to review, in triage-queue order, with the model's label and top reason.

    Columns: dialogue_id, turn_index, predicted_failure_point, probability,
    top_reason. The same queue as the app's Triage page.
    """
    import pandas as pd

    from fpi.model.explain import explain_rows
    from fpi.review.export import write_export
    from fpi.model.estimator import FailurePointModel, with_predictions
    from fpi.review.retrain import read_verdicts
    from fpi.data.traces import load_traces
    from fpi.review.triage import triage_queue

    model = FailurePointModel.load(_model_path(model_dir))
    frame = load_traces(traces, column_map=_parse_map(mappings))
    features = model.features(frame)
    scored = with_predictions(frame, model.predict_proba_from_features(features))
    done = read_verdicts(exclude) if exclude is not None else None
    keys = set() if done is None else set(zip(done["dialogue_id"], done["turn_index"].astype(int)))
    picked = triage_queue(scored, order=order, exclude_reviewed=keys).head(n_turns)
    rows = picked["row"].to_numpy()
    reasons = [e.reasons[0].text if e.reasons else "" for e in explain_rows(model, features.iloc[rows], top=1)]
    table = pd.DataFrame({
        "dialogue_id": picked["dialogue_id"].to_numpy(), "turn_index": picked["turn_index"].to_numpy(),
        "predicted_failure_point": picked["predicted_failure_point"].to_numpy(),
        "probability": picked["confidence"].round(4).to_numpy(), "top_reason": reasons,
    })
    write_export(table, output)
    left = "" if done is None else f", {len(keys):,} judged turns left out"
    _echo(f"wrote the next {len(table):,} of {len(frame):,} turns to review to {output} ({order} order{left})")


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--verdicts", "verdicts_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Verdicts file: dialogue_id, turn_index, label (or the output of `fpi verdicts export`).")
@MODEL_OPTION
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the candidate to (replaced atomically if it exists).")
@click.option("--strategy", type=click.Choice(["auto", "keep", "continue", "verdicts", "scratch"]),
              default="auto", show_default=True,
              help="auto: the strategy with the best cross-validated macro-F1 on the labelled turns.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the folds and LightGBM.")
@MAP_OPTION
@_friendly
def retrain(traces: Path, verdicts_file: Path, model_dir: Path | None, output: Path, strategy: str, seed: int,
            mappings: tuple[str, ...]) -> None:
    """Build a candidate from TRACES' labels plus the verdicts, print it beside the starting model, save it.

    The comparison is on held-out dialogues: every labelled turn is predicted by
    a cross-validation fold model that never saw its dialogue, and the starting
    model is scored on the same turns. The same code as the Triage page's
    "Train a candidate".
    """
    from fpi.model.evaluate import format_report
    from fpi.model.estimator import FailurePointModel, TrainConfig
    from fpi.review.retrain import RetrainConfig, read_verdicts, retrain_from_verdicts
    from fpi.data.traces import load_traces

    start = FailurePointModel.load(_model_path(model_dir))
    frame = load_traces(traces, column_map=_parse_map(mappings))
    verdicts = read_verdicts(verdicts_file)
    _echo(f"read {len(frame):,} turns from {traces} and {len(verdicts):,} verdicts from {verdicts_file}",
               err=True)
    result = retrain_from_verdicts(frame, verdicts, active=start,
                                   config=RetrainConfig(strategy=strategy, train=TrainConfig(seed=seed)))
    tried = ", ".join(f"{name} {score:.3f}" for name, score in
                      sorted(result.strategy_scores.items(), key=lambda kv: -kv[1]))
    _echo(f"strategy: {result.strategy} (cross-validated macro-F1, {result.folds} folds by dialogue: {tried})")
    _echo(f"held-out: {result.heldout_turns:,} labelled turns ({result.heldout_verdicts:,} verdicts), "
               f"each predicted by a fold model that never saw its dialogue; starting model {start.version}:")
    report = {"systems": {"starting model": result.comparison["systems"]["active"],
                          "candidate": result.comparison["systems"]["candidate"]}}
    _echo(format_report(report))
    result.candidate.save(output)
    how = ("the starting model unchanged: no strategy did better on these labels" if result.strategy == "keep"
           else f"trained on {result.training_turns:,} labelled turns")
    _echo(f"saved candidate {result.candidate.version} to {output} ({how})")


@main.group()
def verdicts() -> None:
    """Analysts' verdicts in the verdict store ($FPI_DB_URL, default: a SQLite file in $FPI_HOME)."""


@verdicts.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file; .csv (formula-looking text neutralised) or .parquet.")
@click.option("--traces", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Export these traces with predictions and the latest verdict per turn; "
                   "without it, the verdicts table alone.")
@MODEL_OPTION
@click.option("--any-dataset", is_flag=True,
              help="With --traces: also take verdicts given on other datasets, matched by dialogue_id and "
                   "turn_index (verdicts on these traces first, then the newest).")
@click.option("--all", "everything", is_flag=True,
              help="Without --traces: every verdict ever recorded (the audit log), not only the latest per turn.")
@MAP_OPTION
@_friendly
def verdicts_export(output: Path, traces: Path | None, model_dir: Path | None, any_dataset: bool, everything: bool,
                    mappings: tuple[str, ...]) -> None:
    """Write the verdicts, or traces with predictions and verdicts, to a CSV or Parquet file."""
    from fpi.review.export import with_latest_verdicts, write_export
    from fpi.model.estimator import FailurePointModel
    from fpi.review.store import VerdictStore
    from fpi.data.traces import dataset_fingerprint, load_traces

    with VerdictStore.from_config(read_only=True) as store:  # reading only: a read-only copy will do
        if traces is None:
            table = store.all() if everything else store.latest()
            write_export(table, output)
            _echo(f"wrote {len(table):,} verdicts to {output}")
            return
        frame = load_traces(traces, column_map=_parse_map(mappings))
        dataset = dataset_fingerprint(frame)
        latest = store.latest_by_turn(prefer_dataset=dataset) if any_dataset else store.latest(dataset=dataset)
        scored = FailurePointModel.load(_model_path(model_dir)).score(frame)
        table = with_latest_verdicts(scored, latest)
    write_export(table, output)
    judged = int(table["verdict_label"].notna().sum())
    _echo(f"wrote {len(table):,} turns ({judged:,} with a verdict) to {output}")


@verdicts.command("history")
@click.argument("dialogue_id")
@click.argument("turn", type=click.IntRange(min=0))
@click.option("--dataset", default=None, help="Only verdicts on the dataset with this fingerprint.")
@_friendly
def verdicts_history(dialogue_id: str, turn: int, dataset: str | None) -> None:
    """Every verdict on turn TURN of DIALOGUE_ID, oldest first (the last one counts)."""
    from fpi.review.store import VerdictStore

    with VerdictStore.from_config(read_only=True) as store:  # reading only: a read-only copy will do
        rows = store.history(dialogue_id, turn, dataset=dataset)
    if rows.empty:
        _echo(f"no verdicts on {dialogue_id} turn {turn}")
        return
    def shown(value: object) -> str:
        return "-" if value is None or value != value else str(value)  # NaN != NaN: an empty cell

    for row in rows.itertuples(index=False):
        note = "" if shown(row.note) == "-" else f"  note: {row.note}"
        _echo(f"{row.created_at:%Y-%m-%d %H:%M:%S} UTC  {row.label:<10} by {row.analyst}  "
                   f"(predicted {shown(row.predicted_label)} by model {shown(row.model_version)}, "
                   f"dataset {row.dataset_fingerprint[:12]}){note}")



@main.group()
def datasets() -> None:
    """Datasets uploaded in the app and kept for shared links ($FPI_HOME/datasets)."""


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@_friendly
def datasets_list(as_json: bool) -> None:
    """Every kept dataset, most recently opened first: fingerprint, file name, turns, size."""
    import json

    from fpi.config import Config
    from fpi.data.datasets import describe, store_from_env

    rows = describe(store_from_env(Config.from_env().home).list())
    if as_json:
        _echo(json.dumps(rows, indent=2))
        return
    if not rows:
        _echo("no datasets kept")
        return
    for row in rows:
        _echo(f"{row['fingerprint']}  {row['turns']:>9,} turns  {row['size_mb']:>9,.2f} MB  "
                   f"saved {row['saved_at']}  {row['name']}")


@datasets.command("rm")
@click.argument("fingerprints", nargs=-1, required=True)
@_friendly
def datasets_rm(fingerprints: tuple[str, ...]) -> None:
    """Delete kept datasets by fingerprint (links to them stop working)."""
    from fpi.config import Config
    from fpi.data.datasets import store_from_env

    store = store_from_env(Config.from_env().home)
    missing = [f for f in fingerprints if not store.remove(f)]
    for fingerprint in fingerprints:
        if fingerprint not in missing:
            _echo(f"removed {fingerprint}")
    if missing:
        raise FpiError("no such dataset: " + ", ".join(missing))


# ---------------------------------------------------------------- team review (issue 16)

@verdicts.command("agreement")
@click.option("--dataset", default=None, help="Only verdicts on the dataset with this fingerprint.")
@click.option("--json", "as_json", is_flag=True, help="Print the agreement report as JSON.")
@_friendly
def verdicts_agreement(dataset: str | None, as_json: bool) -> None:
    """How far the analysts agree: Cohen's or Fleiss' kappa with intervals, per label and per analyst, and the
    disagreements waiting for adjudication."""
    import json

    from fpi.review.agreement import agreement
    from fpi.review.store import VerdictStore

    with VerdictStore.from_config(read_only=True) as store:  # reading only: a read-only copy will do
        report = agreement(store.all(dataset=dataset), store.adjudications(dataset=dataset))
    if as_json:
        _echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    if report.method == "none":
        _echo("no turn has verdicts from two analysts yet")
        return

    def k(value: float) -> str:
        return "-" if value != value else f"{value:.2f}"  # NaN != NaN: undefined

    name = "Cohen's" if report.method == "cohen" else "Fleiss'"
    overall = report.overall
    _echo(f"{name} kappa {k(overall.value)} (95% interval {k(overall.low)} to {k(overall.high)}) on "
          f"{report.overlap_turns:,} turns judged by {len(report.analysts)} analysts: {', '.join(report.analysts)}")
    for row in report.per_label.itertuples(index=False):
        _echo(f"  {row.label:<10} kappa {k(row.kappa):>5} ({k(row.low)} to {k(row.high)}), {row.turns:,} turns")
    _echo("each analyst against the consensus (adjudicated, else all the others agreeing):")
    for row in report.per_analyst.itertuples(index=False):
        _echo(f"  {row.analyst}: {row.turns:,} turns, agrees on {k(row.agreement * 100)}%, kappa {k(row.kappa)} "
              f"({k(row.low)} to {k(row.high)})")
    table = report.disagreements
    opened = table[table["status"] == "open"]
    _echo(f"disagreements: {len(opened):,} open, {len(table) - len(opened):,} adjudicated")
    for row in opened.itertuples(index=False):
        _echo(f"  {row.dialogue_id} turn {row.turn_index}: {row.verdicts}")


@verdicts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--analyst", required=True, help="Who made these verdicts (name or e-mail); recorded on each.")
@click.option("--traces", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The traces the verdicts are about: their fingerprint files the verdicts, and every row must "
                   "name one of their turns.")
@click.option("--dataset", default=None, help="Or the fingerprint of the dataset (as `fpi datasets list` shows).")
@MAP_OPTION
@_friendly
def verdicts_import(file: Path, analyst: str, traces: Path | None, dataset: str | None,
                    mappings: tuple[str, ...]) -> None:
    """Store the verdicts of a CSV made in a spreadsheet (dialogue_id, turn_index, label, optional note).

    All or nothing: every row is checked first, and a bad row is reported with its row number and nothing
    is stored.
    """
    from fpi.data.traces import dataset_fingerprint, load_traces
    from fpi.review.importer import read_verdict_import
    from fpi.review.store import VerdictStore

    if (traces is None) == (dataset is None):
        raise click.UsageError("give exactly one of --traces FILE or --dataset FINGERPRINT")
    turns = None
    if traces is not None:
        frame = load_traces(traces, column_map=_parse_map(mappings))
        dataset = dataset_fingerprint(frame)
        turns = set(zip(frame["dialogue_id"].astype("str"), frame["turn_index"].astype("int64")))
    assert dataset is not None
    rows = read_verdict_import(file, analyst=analyst, dataset=dataset, turns=turns)
    with VerdictStore.from_config() as store:
        stored = store.record_many(rows)
    _echo(f"stored {stored:,} verdicts by {rows[0]['analyst']} on dataset {dataset[:12]}")


@verdicts.command("audit")
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the flagged verdicts as JSON.")
@MAP_OPTION
@_friendly
def verdicts_audit(traces: Path, model_dir: Path | None, as_json: bool, mappings: tuple[str, ...]) -> None:
    """Flag the verdicts on TRACES that the data disagrees with strongly (the audit retraining runs first)."""
    import json

    from fpi.data.traces import dataset_fingerprint, load_traces
    from fpi.model.estimator import FailurePointModel
    from fpi.review.agreement import training_verdicts
    from fpi.review.audit import audit_verdicts
    from fpi.review.store import VerdictStore

    frame = load_traces(traces, column_map=_parse_map(mappings))
    dataset = dataset_fingerprint(frame)
    with VerdictStore.from_config(read_only=True) as store:
        adjudicated = store.adjudications(dataset=dataset)
        verdicts, _held = training_verdicts(store.all(dataset=dataset), adjudicated)
    confirmed = list(zip(adjudicated["dialogue_id"].astype("str"), adjudicated["turn_index"].astype("int64")))
    result = audit_verdicts(frame, verdicts, model=FailurePointModel.load(_model_path(model_dir)),
                            confirmed=confirmed)
    if as_json:
        _echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    _echo(result.summary())
    for row in result.flags.itertuples(index=False):
        _echo(f"  {row.dialogue_id} turn {row.turn_index}: {row.analyst} said {row.label} "
              f"(p {row.p_label:.2f}, typical {row.typical:.2f}); the data suggests {row.suggested} "
              f"(p {row.p_suggested:.2f}) [{row.status}]")


if __name__ == "__main__":  # pragma: no cover
    main()
