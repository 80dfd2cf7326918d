"""`fpi verdicts agreement`, `import` and `audit`: reviewing as a team (fpi.review.agreement, importer, audit)."""
from __future__ import annotations

from pathlib import Path

import click

from fpi.cli.common import MAP_OPTION, MODEL_OPTION, echo, friendly, model_path, parse_map
from fpi.cli.review import verdicts


@verdicts.command("agreement")
@click.option("--dataset", default=None, help="Only verdicts on the dataset with this fingerprint.")
@click.option("--json", "as_json", is_flag=True, help="Print the agreement report as JSON.")
@friendly
def verdicts_agreement(dataset: str | None, as_json: bool) -> None:
    """How far the analysts agree: Cohen's or Fleiss' kappa with intervals, per label and per analyst, and the
    disagreements waiting for adjudication."""
    import json

    from fpi.review.agreement import agreement
    from fpi.review.store import VerdictStore

    with VerdictStore.from_config(read_only=True) as store:  # reading only: a read-only copy will do
        report = agreement(store.all(dataset=dataset), store.adjudications(dataset=dataset))
    if as_json:
        echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    if report.method == "none":
        echo("no turn has verdicts from two analysts yet")
        return

    def k(value: float) -> str:
        return "-" if value != value else f"{value:.2f}"  # NaN != NaN: undefined

    name = "Cohen's" if report.method == "cohen" else "Fleiss'"
    overall = report.overall
    echo(f"{name} kappa {k(overall.value)} (95% interval {k(overall.low)} to {k(overall.high)}) on "
          f"{report.overlap_turns:,} turns judged by {len(report.analysts)} analysts: {', '.join(report.analysts)}")
    for row in report.per_label.itertuples(index=False):
        echo(f"  {row.label:<10} kappa {k(row.kappa):>5} ({k(row.low)} to {k(row.high)}), {row.turns:,} turns")
    echo("each analyst against the consensus (adjudicated, else all the others agreeing):")
    for row in report.per_analyst.itertuples(index=False):
        echo(f"  {row.analyst}: {row.turns:,} turns, agrees on {k(row.agreement * 100)}%, kappa {k(row.kappa)} "
              f"({k(row.low)} to {k(row.high)})")
    table = report.disagreements
    opened = table[table["status"] == "open"]
    echo(f"disagreements: {len(opened):,} open, {len(table) - len(opened):,} adjudicated")
    for row in opened.itertuples(index=False):
        echo(f"  {row.dialogue_id} turn {row.turn_index}: {row.verdicts}")


@verdicts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--analyst", required=True, help="Who made these verdicts (name or e-mail); recorded on each.")
@click.option("--traces", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The traces the verdicts are about: their fingerprint files the verdicts, and every row must "
                   "name one of their turns.")
@click.option("--dataset", default=None, help="Or the fingerprint of the dataset (as `fpi datasets list` shows).")
@MAP_OPTION
@friendly
def verdicts_import(file: Path, analyst: str, traces: Path | None, dataset: str | None,
                    mappings: tuple[str, ...]) -> None:
    """Store the verdicts of a CSV made in a spreadsheet (dialogue_id, turn_index, label, optional note).

    All or nothing: every row is checked first, and a bad row is reported with its row number and nothing
    is stored.
    """
    from fpi.data.summary import dataset_fingerprint
    from fpi.data.traces import load_traces
    from fpi.review.importer import read_verdict_import
    from fpi.review.store import VerdictStore

    if (traces is None) == (dataset is None):
        raise click.UsageError("give exactly one of --traces FILE or --dataset FINGERPRINT")
    turns = None
    if traces is not None:
        frame = load_traces(traces, column_map=parse_map(mappings))
        dataset = dataset_fingerprint(frame)
        turns = set(zip(frame["dialogue_id"].astype("str"), frame["turn_index"].astype("int64")))
    assert dataset is not None
    rows = read_verdict_import(file, analyst=analyst, dataset=dataset, turns=turns)
    with VerdictStore.from_config() as store:
        stored = store.record_many(rows)
    echo(f"stored {stored:,} verdicts by {rows[0]['analyst']} on dataset {dataset[:12]}")


@verdicts.command("audit")
@click.argument("traces", type=click.Path(dir_okay=False, path_type=Path))
@MODEL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the flagged verdicts as JSON.")
@MAP_OPTION
@friendly
def verdicts_audit(traces: Path, model_dir: Path | None, as_json: bool, mappings: tuple[str, ...]) -> None:
    """Flag the verdicts on TRACES that the data disagrees with strongly (the audit retraining runs first)."""
    import json

    from fpi.data.summary import dataset_fingerprint
    from fpi.data.traces import load_traces
    from fpi.model.estimator import FailurePointModel
    from fpi.review.agreement import training_verdicts
    from fpi.review.audit import audit_verdicts
    from fpi.review.store import VerdictStore

    frame = load_traces(traces, column_map=parse_map(mappings))
    dataset = dataset_fingerprint(frame)
    with VerdictStore.from_config(read_only=True) as store:
        adjudicated = store.adjudications(dataset=dataset)
        verdicts, _held = training_verdicts(store.all(dataset=dataset), adjudicated)
    confirmed = list(zip(adjudicated["dialogue_id"].astype("str"), adjudicated["turn_index"].astype("int64")))
    result = audit_verdicts(frame, verdicts, model=FailurePointModel.load(model_path(model_dir)),
                            confirmed=confirmed)
    if as_json:
        echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    echo(result.summary())
    for row in result.flags.itertuples(index=False):
        echo(f"  {row.dialogue_id} turn {row.turn_index}: {row.analyst} said {row.label} "
              f"(p {row.p_label:.2f}, typical {row.typical:.2f}); the data suggests {row.suggested} "
              f"(p {row.p_suggested:.2f}) [{row.status}]")
