"""`fpi queue`, `fpi retrain`, `fpi adapt` and `fpi verdicts`: human review and learning from it."""
from __future__ import annotations

from pathlib import Path

import click

from fpi.cli.common import MAP_OPTION, MODEL_OPTION, echo, friendly, main, model_path, parse_map


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
@friendly
def queue(traces: Path, model_dir: Path | None, exclude: Path | None, n_turns: int, order: str, output: Path,
          mappings: tuple[str, ...]) -> None:
    """Write the next N turns of TRACES to review, in triage-queue order, with the model's label and top reason.

    Columns: dialogue_id, turn_index, predicted_failure_point, probability,
    top_reason. The same queue as the app's Triage page.
    """
    import pandas as pd

    from fpi.model.explain import explain_rows
    from fpi.data.write import write_export
    from fpi.data.predictions import with_predictions
    from fpi.model.estimator import FailurePointModel
    from fpi.review.retrain import read_verdicts
    from fpi.data.traces import load_traces
    from fpi.review.triage import triage_queue

    model = FailurePointModel.load(model_path(model_dir))
    frame = load_traces(traces, column_map=parse_map(mappings))
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
    echo(f"wrote the next {len(table):,} of {len(frame):,} turns to review to {output} ({order} order{left})")


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--verdicts", "verdicts_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Verdicts file: dialogue_id, turn_index, label (or the output of `fpi verdicts export`).")
@MODEL_OPTION
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the candidate to (replaced atomically if it exists).")
@click.option("--strategy", type=click.Choice(["auto", "keep", "continue", "self", "verdicts", "blend", "selfblend",
                                              "semi", "scratch", "scratchblend"]),
              default="auto", show_default=True,
              help="auto: the strategy with the best cross-validated macro-F1 on the labelled turns.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the folds and LightGBM.")
@click.option("--audit/--no-audit", default=True, show_default=True,
              help="Audit the verdicts first, as the Triage page does: where the data reads this pipeline well, "
                   "verdicts it disagrees with strongly are left out (see `fpi verdicts audit`).")
@MAP_OPTION
@friendly
def retrain(traces: Path, verdicts_file: Path, model_dir: Path | None, output: Path, strategy: str, seed: int,
            audit: bool, mappings: tuple[str, ...]) -> None:
    """Build a candidate from TRACES' labels plus the verdicts, print it beside the starting model, save it.

    The comparison is on held-out dialogues: every labelled turn is predicted by
    a cross-validation fold model that never saw its dialogue, and the starting
    model is scored on the same turns. The same code as the Triage page's
    "Train a candidate".
    """
    from fpi.model.evaluate import format_report
    from fpi.model.estimator import FailurePointModel
    from fpi.model.training import TrainConfig
    from fpi.review.adapt import strategy_words
    from fpi.review.retrain import RetrainConfig, read_verdicts, retrain_from_verdicts
    from fpi.data.traces import load_traces

    start = FailurePointModel.load(model_path(model_dir))
    frame = load_traces(traces, column_map=parse_map(mappings))
    verdicts = read_verdicts(verdicts_file)
    echo(f"read {len(frame):,} turns from {traces} and {len(verdicts):,} verdicts from {verdicts_file}",
               err=True)
    if audit:
        from fpi.errors import NotLabelledError
        from fpi.review.audit import audit_verdicts

        try:
            checked = audit_verdicts(frame, verdicts, model=start)
        except NotLabelledError:
            echo("audit: skipped, the labels fall in fewer than 2 dialogues")
        else:
            verdicts = checked.kept(verdicts)
            echo(checked.summary())
    result = retrain_from_verdicts(frame, verdicts, active=start,
                                   config=RetrainConfig(strategy=strategy, train=TrainConfig(seed=seed)))
    tried = ", ".join(f"{name} {score:.3f}" for name, score in
                      sorted(result.strategy_scores.items(), key=lambda kv: -kv[1]))
    echo(f"strategy: {result.strategy}, {strategy_words(result.strategy)} (cross-validated macro-F1, "
         f"{result.folds} folds by dialogue: {tried})")
    echo(f"held-out: {result.heldout_turns:,} labelled turns ({result.heldout_verdicts:,} verdicts), "
               f"each predicted by a fold model that never saw its dialogue; starting model {start.version}:")
    report = {"systems": {"starting model": result.comparison["systems"]["active"],
                          "candidate": result.comparison["systems"]["candidate"]}}
    echo(format_report(report))
    result.candidate.save(output)
    how = ("the starting model unchanged: no strategy did better on these labels" if result.strategy == "keep"
           else f"trained on {result.training_turns:,} labelled turns")
    echo(f"saved candidate {result.candidate.version} to {output} ({how})")


@main.command()
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the candidate to (replaced atomically if it exists).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for LightGBM.")
@MAP_OPTION
@friendly
def adapt(traces: Path, model_dir: Path | None, output: Path, seed: int, mappings: tuple[str, ...]) -> None:
    """Adapt the model to TRACES without reading a label (self-training), print what changes, save it.

    The model labels every turn, a student learns its surest labels over the
    traces' own features, and the mixture becomes the candidate. It helped on a
    real pipeline the model read partly and did nothing on average elsewhere: when
    TRACES has labels, both models' F1 on them is printed (the labels are not
    used to train); otherwise check it with verdicts (`fpi retrain`) before use.
    """
    from fpi.model.estimator import FailurePointModel
    from fpi.model.evaluate import format_report
    from fpi.model.training import TrainConfig
    from fpi.review.self_training import self_train
    from fpi.review.strategies import RetrainConfig
    from fpi.data.traces import load_traces

    start = FailurePointModel.load(model_path(model_dir))
    frame = load_traces(traces, column_map=parse_map(mappings))
    echo(f"read {len(frame):,} turns from {traces}; self-training model {start.version} on them", err=True)
    result = self_train(frame, start, RetrainConfig(train=TrainConfig(seed=seed)))
    echo(f"the candidate changes the label of {result.changed:.1%} of the {len(frame):,} turns "
         "(no label was read); share of turns per label:")
    echo(result.label_shares().to_string(index=False, formatters={"start": "{:.1%}".format,
                                                                  "candidate": "{:.1%}".format}))
    scored = result.on_labels(frame)
    if scored is None:
        echo("TRACES has no labels to check it on: give verdicts on a few hundred turns and compare with "
             "`fpi retrain` before using it.")
    else:
        echo(f"on the {scored['labelled_turns']:,} labelled turns of TRACES (never used to train):")
        echo(format_report({"systems": {"starting model": scored["start"], "candidate": scored["candidate"]}}))
    result.candidate.save(output)
    echo(f"saved candidate {result.candidate.version} to {output}")


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
@friendly
def verdicts_export(output: Path, traces: Path | None, model_dir: Path | None, any_dataset: bool, everything: bool,
                    mappings: tuple[str, ...]) -> None:
    """Write the verdicts, or traces with predictions and verdicts, to a CSV or Parquet file."""
    from fpi.data.write import write_export
    from fpi.review.export import with_latest_verdicts
    from fpi.model.estimator import FailurePointModel
    from fpi.review.store import VerdictStore
    from fpi.data.summary import dataset_fingerprint
    from fpi.data.traces import load_traces

    with VerdictStore.from_config(read_only=True) as store:  # reading only: a read-only copy will do
        if traces is None:
            table = store.all() if everything else store.latest()
            write_export(table, output)
            echo(f"wrote {len(table):,} verdicts to {output}")
            return
        frame = load_traces(traces, column_map=parse_map(mappings))
        dataset = dataset_fingerprint(frame)
        latest = store.latest_by_turn(prefer_dataset=dataset) if any_dataset else store.latest(dataset=dataset)
        scored = FailurePointModel.load(model_path(model_dir)).score(frame)
        table = with_latest_verdicts(scored, latest)
    write_export(table, output)
    judged = int(table["verdict_label"].notna().sum())
    echo(f"wrote {len(table):,} turns ({judged:,} with a verdict) to {output}")


@verdicts.command("history")
@click.argument("dialogue_id")
@click.argument("turn", type=click.IntRange(min=0))
@click.option("--dataset", default=None, help="Only verdicts on the dataset with this fingerprint.")
@friendly
def verdicts_history(dialogue_id: str, turn: int, dataset: str | None) -> None:
    """Every verdict on turn TURN of DIALOGUE_ID, oldest first (the last one counts)."""
    from fpi.review.store import VerdictStore

    with VerdictStore.from_config(read_only=True) as store:  # reading only: a read-only copy will do
        rows = store.history(dialogue_id, turn, dataset=dataset)
    if rows.empty:
        echo(f"no verdicts on {dialogue_id} turn {turn}")
        return
    def shown(value: object) -> str:
        return "-" if value is None or value != value else str(value)  # NaN != NaN: an empty cell

    for row in rows.itertuples(index=False):
        note = "" if shown(row.note) == "-" else f"  note: {row.note}"
        echo(f"{row.created_at:%Y-%m-%d %H:%M:%S} UTC  {row.label:<10} by {row.analyst}  "
                   f"(predicted {shown(row.predicted_label)} by model {shown(row.model_version)}, "
                   f"dataset {row.dataset_fingerprint[:12]}){note}")
