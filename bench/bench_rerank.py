"""Triage re-rank benchmark: how long the queue takes to follow a new model, and where the time goes.

After a retraining, the Triage page scores the loaded turns with the new model (their features are
already computed and kept with the upload) and ranks the queue again. This times those two steps
on simulated turns: the new model's probabilities, by LightGBM's `Booster.predict` (a fresh
candidate has no compiled trees yet) and, with `--compiled`, by its compiled trees (built first,
build time printed); then the prediction columns and the queue itself. Prints figures; asserts
nothing (the target, under 1 s on 100k turns, lives in issue 15).

The new model is the active one by default. With `--candidate verdicts` it is what the Triage page
usually makes from a few hundred verdicts: an analyst judges the first `--verdicts` turns of the
active model's queue (the simulator's true labels), `fpi.review.adapt.select_strategy` trains a small
`verdicts@N` booster on them (up to 240 rounds of 7-leaf trees), and its probabilities (interpreted,
as a fresh candidate scores new data; with `--compiled` also by its compiled trees, built after saving
it), prediction columns and queue (the judged turns excluded) are timed. Also timed: the app's whole
scoring step when the candidate is activated, which takes the probabilities training computed on
the upload (`RetrainResult.upload_proba`) and so only builds features, columns and summary.

    python bench/bench_rerank.py                          # 100k turns, the active model
    python bench/bench_rerank.py --turns 20000 --compiled --home /tmp/fpi-home
    python bench/bench_rerank.py --candidate verdicts [--compiled]  # a candidate from 300 verdicts
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

# As in app.py: OpenMP threads that sleep instead of spinning when they wait (set before LightGBM loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

TURNS_PER_DIALOGUE = 2.85  # about what the simulator produces; only used to size the data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--model", type=Path, default=None,
                        help="model directory (default: $FPI_MODEL, else models/default)")
    parser.add_argument("--compiled", action="store_true", help="also build the compiled trees and time them")
    parser.add_argument("--home", type=Path, default=None,
                        help="FPI_HOME for the compiled trees (kept between runs; default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each step; the median is printed")
    parser.add_argument("--candidate", choices=("active", "verdicts"), default="active",
                        help="the new model: the active one, or a candidate trained from simulated verdicts")
    parser.add_argument("--verdicts", type=int, default=300, help="--candidate verdicts: how many verdicts")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FPI_HOME"] = str(args.home or Path(tmp) / "home")
        _run(args, Path(tmp))


def _run(args: argparse.Namespace, tmp: Path) -> None:
    from fpi.config import SHIPPED_MODEL
    from fpi.data.predictions import with_predictions
    from fpi.model.estimator import FailurePointModel
    from fpi.review.triage import triage_queue
    from fpi.simulator.simulate import simulate

    model_dir = args.model or (Path(os.environ["FPI_MODEL"]) if os.environ.get("FPI_MODEL") else SHIPPED_MODEL)
    model = FailurePointModel.load(model_dir)
    frame = simulate(max(1, round(args.turns / TURNS_PER_DIALOGUE)), seed=3)
    started = time.perf_counter()
    features = model.features(frame)
    print(f"{len(frame):,} turns, model {model.version} ({model.booster.num_trees():,} trees); "
          f"features {time.perf_counter() - started:.2f} s (computed once per upload, kept with it)")

    judged: list[tuple[str, int]] = []
    kept = None
    if args.candidate == "verdicts":
        scored = with_predictions(frame, _proba(model, features, compiled=True))
        model, judged, kept = _verdicts_candidate(model, frame, scored, args.verdicts, folder=tmp / "candidate")
        started = time.perf_counter()
        features = model.features(frame)
        print(f"candidate's features {time.perf_counter() - started:.2f} s (its own spec; computed once)")

    rows = [(f"probabilities, Booster.predict ({model.booster.num_trees():,} trees)",
             lambda: _proba(model, features, compiled=False))]
    if args.compiled:
        started = time.perf_counter()
        model.compiled.build()
        print(f"compiled trees built in {time.perf_counter() - started:.1f} s")
        rows.append(("probabilities, compiled trees", lambda: _proba(model, features, compiled=True)))
    if kept is not None:
        from fpi.scoring.frame import score_frame

        rows.append(("the app's whole scoring step, probabilities kept from training (features, columns, summary)",
                     lambda: score_frame(frame, model=model, source="bench", digest="bench", proba=kept)))
    proba = _proba(model, features, compiled=False)
    scored = with_predictions(frame, proba)
    rows += [("prediction columns", lambda: with_predictions(frame, proba)),
             (f"queue (explore order, {len(judged):,} turns judged)",
              lambda: triage_queue(scored, exclude_reviewed=judged))]

    print(f"\n| step | median of {args.repeat} |\n|---|---|")
    for name, step in rows:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        print(f"| {name} | {sorted(times)[len(times) // 2]:.2f} s |")


def _verdicts_candidate(model, frame, scored, verdicts: int, *, folder: Path):
    """A `verdicts@N` candidate trained on the true labels of the first `verdicts` turns of the queue.

    Saved to `folder` and loaded again, as the page saves it: only a saved model has compiled trees.
    """
    import pandas as pd

    from fpi.data.schema import LABEL_COLUMN
    from fpi.review.adapt import RetrainConfig, select_strategy
    from fpi.review.retrain import labels_with_verdicts
    from fpi.review.triage import triage_queue

    first = triage_queue(scored).head(verdicts)
    table = pd.DataFrame({"dialogue_id": first["dialogue_id"].to_numpy(), "turn_index": first["turn_index"].to_numpy(),
                          "label": frame[LABEL_COLUMN].to_numpy(dtype=object)[first["row"].to_numpy()]})
    started = time.perf_counter()
    selection = select_strategy(labels_with_verdicts(frame.drop(columns=[LABEL_COLUMN]), table), start=model,
                                config=RetrainConfig(strategy="verdicts"))
    print(f"candidate {selection.strategy} from {len(table):,} verdicts, trained in "
          f"{time.perf_counter() - started:.1f} s (cross-validated macro-F1 {selection.scores[selection.strategy]:.3f})")
    from fpi.model.estimator import FailurePointModel

    candidate = FailurePointModel.load(selection.candidate.save(folder))
    return candidate, list(zip(table["dialogue_id"], table["turn_index"].astype(int))), selection.upload_proba


def _proba(model, features, *, compiled: bool):
    from fpi.model.calibration import softmax

    return softmax(model.raw_scores(features, compiled=compiled) / model.temperature)


if __name__ == "__main__":
    main()
