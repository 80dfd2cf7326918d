"""Zero-shot carry-over: train on a simulated fleet of pipelines, score a labelled file never trained on.

Simulates `--pipelines` randomly drawn pipelines (`fpi.simulator.simulate.simulate_fleet`),
trains `FailurePointModel` on them as the shipped model is trained (ranks within each
pipeline, no text models unless `--text-models`), and prints macro-F1 and
per-class F1 on every labelled turn of TRACES. Then leave-one-pipeline-out on the
simulator alone: for a few held-out pipelines, a model trained on the others,
scored on the one it never saw. `--default` trains on the default simulator
instead (today's single pipeline), for comparison. Prints figures; asserts nothing.

    python bench/bench_zeroshot.py TRACES                       # 30,000 dialogues, 12 pipelines
    python bench/bench_zeroshot.py TRACES --dialogues 40000 --pipelines 16 --seed 3
    python bench/bench_zeroshot.py TRACES --default             # the single default pipeline
    python bench/bench_zeroshot.py TRACES --dialogues 240000 --fleets 8 --learning-rate 0.45 --unseen-fleet 99
                                                                # the shipped recipe, and pipelines it never saw
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from fpi.model.evaluate import metrics_for
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.data.schema import LABEL_COLUMN, LABELS
from fpi.simulator.simulate import simulate, simulate_fleet
from fpi.data.traces import load_traces


def _line(name: str, metrics: dict) -> str:
    per_class = "  ".join(f"{label} {metrics['per_class'][label]['f1']:.2f}" for label in LABELS)
    return f"{name:<34} macro-F1 {metrics['macro_f1']:.3f}   {per_class}"


def _score(model: FailurePointModel, frame: pd.DataFrame) -> dict:
    mask = frame[LABEL_COLUMN].notna().to_numpy()
    return metrics_for(frame[LABEL_COLUMN].to_numpy(dtype=object)[mask], model.predict_proba(frame)[mask])


def _leave_one_out(fleet: pd.DataFrame, *, held_out: int, config: TrainConfig) -> list[tuple[str, dict]]:
    """Train without one pipeline, score that pipeline; for the last `held_out` (randomly drawn) pipelines."""
    rows = []
    for name in sorted(fleet["pipeline"].unique())[-held_out:]:
        inside = (fleet["pipeline"] == name).to_numpy()
        model = FailurePointModel(config=config).fit(fleet.loc[~inside].reset_index(drop=True))
        rows.append((name, _score(model, fleet.loc[inside].reset_index(drop=True))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", type=Path, help="a labelled trace file from a pipeline never trained on")
    parser.add_argument("--dialogues", type=int, default=30_000)
    parser.add_argument("--pipelines", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--held-out", type=int, default=2, help="pipelines left out one at a time (0: skip)")
    parser.add_argument("--lofo-dialogues", type=int, default=8_000,
                        help="dialogues of the (smaller) fleet the leave-one-out models train on")
    parser.add_argument("--fleets", type=int, default=1,
                        help="draw this many fleets (--dialogues shared out) and average one model per fleet")
    parser.add_argument("--learning-rate", type=float, default=0.15)
    parser.add_argument("--unseen-fleet", type=int, default=None, metavar="SEED",
                        help="also score a fresh fleet of --pipelines random pipelines drawn with SEED (no default "
                             "pipeline), each pipeline as its own upload: pipelines the model never saw")
    parser.add_argument("--default", action="store_true", help="train on the default simulator instead")
    parser.add_argument("--save", type=Path, help="save the trained model here (e.g. under /tmp)")
    parser.add_argument("--text-models", action="store_true",
                        help="stack the text models too (the shipped recipe leaves them out)")
    args = parser.parse_args()

    target = load_traces(args.traces)
    started = time.perf_counter()
    if args.default:
        train = simulate(args.dialogues, seed=args.seed)
        what = f"default simulator, {args.dialogues:,} dialogues"
    else:
        train = simulate_fleet(args.dialogues, seed=args.seed, n_pipelines=args.pipelines, n_fleets=args.fleets)
        what = f"{args.fleets} x fleet of {args.pipelines} pipelines, {args.dialogues:,} dialogues"
    print(f"{what}: {len(train):,} turns, simulated in {time.perf_counter() - started:.1f} s")
    print("labels:", train[LABEL_COLUMN].value_counts(normalize=True).round(3).to_dict())

    started = time.perf_counter()
    # The shipped recipe: ranks within each pipeline, no text models (see the README).
    config = TrainConfig(upload_column=None if args.default else "pipeline", text_models=args.text_models,
                         member_column="fleet" if args.fleets > 1 and not args.default else None,
                         learning_rate=args.learning_rate)
    model = FailurePointModel(config=config).fit(train)
    print(f"trained in {time.perf_counter() - started:.0f} s")
    if args.save:
        model.save(args.save)
    held = model.meta.get("metrics", {}).get("systems", {}).get("model", {})
    if held:
        print(_line("simulator, held-out dialogues", held))
    zero_shot = _score(model, target)
    print(_line(f"zero-shot on {args.traces.name}", zero_shot))
    print(f"  ({zero_shot['turns']:,} labelled turns; recall: "
          + ", ".join(f"{k} {v['recall']:.2f}" for k, v in zero_shot["per_class"].items()) + ")")

    if args.unseen_fleet is not None:
        unseen = simulate_fleet(12_000, seed=args.unseen_fleet, n_pipelines=args.pipelines, with_default=False)
        scores = [_score(model, part.reset_index(drop=True))["macro_f1"] for _, part in unseen.groupby("pipeline")]
        print(f"unseen fleet (seed {args.unseen_fleet}, {len(scores)} pipelines, each its own upload): "
              f"mean macro-F1 {np.mean(scores):.3f}  (" + " ".join(f"{v:.2f}" for v in scores) + ")")

    if not args.default and args.held_out > 0:
        small = simulate_fleet(args.lofo_dialogues, seed=args.seed, n_pipelines=args.pipelines)
        print(f"leave one pipeline out: fleet of {args.pipelines} pipelines, {args.lofo_dialogues:,} dialogues")
        rows = _leave_one_out(small, held_out=args.held_out, config=replace(config, member_column=None))
        for name, metrics in rows:
            print(_line(f"leave out {name}", metrics))
        print(f"leave-one-pipeline-out mean macro-F1 {np.mean([m['macro_f1'] for _, m in rows]):.3f}")


if __name__ == "__main__":
    main()
