"""`fpi cohorts`, `fpi monitor`, `fpi compare`, `fpi episodes` and `fpi gaps`: what scored traces say."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from fpi.cli.common import (
    EXIT_BREACH, MAP_OPTION, MODEL_OPTION, echo, friendly, judged_frame, main, model_path, parse_map,
)


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
@friendly
def cohorts(traces: Path, model_dir: Path | None, as_json: bool, level: float, min_support: int, max_conditions: int,
            use_labels: bool, mappings: tuple[str, ...]) -> None:
    """Find cohorts (e.g. locale = en-IN and device_type = car) that fail at a stage significantly more often.

    Scores TRACES with the model and tests every cohort of up to --max-conditions
    conditions against the turns outside it. When TRACES has labels, also flags
    locales and devices for which the model is significantly worse than for the rest.
    """
    import json

    from fpi.analysis.discovery import discover_cohorts, format_discovery
    from fpi.analysis.fairness import fairness, format_fairness
    from fpi.model.estimator import FailurePointModel
    from fpi.data.schema import LABEL_COLUMN
    from fpi.data.traces import load_traces

    model = FailurePointModel.load(model_path(model_dir))
    scored = model.score(load_traces(traces, column_map=parse_map(mappings)))
    labelled = bool(scored[LABEL_COLUMN].notna().any()) if LABEL_COLUMN in scored.columns else False
    found = discover_cohorts(scored, label_column=LABEL_COLUMN if use_labels else "predicted_failure_point",
                             level=level, min_support=min_support, max_conditions=max_conditions)
    checked = fairness(scored, level=level) if labelled else None
    if as_json:
        report = found.to_dict()
        report["fairness"] = None if checked is None else checked.to_dict("records")
        echo(json.dumps(report, indent=2, default=lambda value: value.item()))
        return
    echo(format_discovery(found))
    echo("")
    echo("model fairness: needs labels (failure_point)" if checked is None
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
@friendly
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

    frame, label_column = judged_frame(traces, mappings, model_dir, use_labels=use_labels)
    missing = [c for c in extra_columns if c not in frame.columns]
    if missing:
        raise click.BadParameter(f"{traces} has no column {missing[0]!r}", param_hint="--cohort")
    columns = tuple(dict.fromkeys((*MONITOR_COLUMNS, *extra_columns)))
    result = run_monitor(frame, label_column=label_column, by=by, window=window,
                         columns=columns, level=level, min_turns=min_turns)
    if as_json:
        echo(json.dumps(result.to_dict(), indent=2))
    else:
        echo(format_monitoring(result))
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
@friendly
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
    from fpi.data.schema import PREDICTED_COLUMN
    from fpi.model.estimator import FailurePointModel
    from fpi.data.schema import LABEL_COLUMN
    from fpi.data.traces import load_traces

    modes = [after is not None, against_dir is not None, split_at is not None, split_by is not None]
    if sum(modes) != 1:
        raise click.UsageError("compare exactly one way: a second file AFTER, --against MODEL, --split-at DATE "
                               "or --split-by COLUMN")
    if against_dir is not None and use_labels:
        raise click.UsageError("--against compares two models' labels; it cannot be combined with --labels")
    column_map = parse_map(mappings)
    frame = load_traces(traces, column_map=column_map)
    if against_dir is not None:
        first = FailurePointModel.load(model_path(model_dir))
        second = FailurePointModel.load(against_dir)
        scored = first.score(frame)
        scored["_against"] = second.score(frame)[PREDICTED_COLUMN].to_numpy()
        names = (f"model {first.version}", f"model {second.version}")
        if names[0] == names[1]:
            names = (f"{names[0]} (--model)", f"{names[1]} (--against)")
        result = compare_paired(scored, PREDICTED_COLUMN, "_against", names=names, min_support=min_support, level=level)
    else:
        model: list[FailurePointModel] = []

        def labelled(part):  # score once per file unless it has predictions already
            if use_labels or PREDICTED_COLUMN in part.columns:
                return part
            if not model:
                model.append(FailurePointModel.load(model_path(model_dir)))
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
        result = compare_frames(*parts, label_column=LABEL_COLUMN if use_labels else PREDICTED_COLUMN,
                                names=names, min_support=min_support, level=level)
    echo(json.dumps(result.to_dict(), indent=2) if as_json else format_comparison(result))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--labels", "use_labels", is_flag=True,
              help="Group the human labels (failure_point) instead of the model's predictions.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@MAP_OPTION
@friendly
def episodes(traces: Path, model_dir: Path | None, use_labels: bool, as_json: bool, mappings: tuple[str, ...]) -> None:
    """Count defect episodes beside turns: a failure and the user's retries of the same request are one episode.

    Prints the defect rate per turn and per episode, how many episodes recovered
    (and in how many turns), were abandoned (the dialogue ended) or moved on.
    """
    import json

    from fpi.analysis.episodes import episode_summary, format_episode_summary

    frame, label_column = judged_frame(traces, mappings, model_dir, use_labels=use_labels)
    summary = episode_summary(frame, label_column=label_column)
    echo(json.dumps(summary.to_dict(), indent=2) if as_json else format_episode_summary(summary))


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="False discovery rate for flagging a locale or device (Benjamini-Hochberg).")
@click.option("--labels", "use_labels", is_flag=True,
              help="Use the human labels (failure_point) instead of the model's predictions.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON records.")
@MAP_OPTION
@friendly
def gaps(traces: Path, model_dir: Path | None, level: float, use_labels: bool, as_json: bool,
         mappings: tuple[str, ...]) -> None:
    """Split the gap of each locale and device that fails more than the rest into its failure points.

    "locale = en-IN: 12 points worse" becomes "asr +9 (7 to 11), nlu +2 ...":
    the per-stage differences add up to the gap; each has a 95% Newcombe interval.
    """
    from fpi.analysis.gaps import format_gaps, stage_gaps

    frame, label_column = judged_frame(traces, mappings, model_dir, use_labels=use_labels)
    table = stage_gaps(frame, label_column=label_column, level=level)
    echo(table.to_json(orient="records", indent=2) if as_json else format_gaps(table))
