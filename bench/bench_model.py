"""Model benchmark: quality against both baselines, training time, and scoring speed, compiled beside interpreted.

Prints figures; asserts nothing (targets live in the issues and their closing notes).

    python bench/bench_model.py                                    # train on 100k turns, then score 1M
    python bench/bench_model.py --model models/default --predict-turns 200000 1000000  # scoring only

Scoring, per size, in one run: bare `Booster.predict` on the prepared feature matrix,
the compiled trees on the same matrix, and the whole `fpi predict` command (start,
read, check, features, score, write) with the compiled trees and with LightGBM
(FPI_COMPILED=0), each also as a multiple of bare `Booster.predict`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fpi.model.evaluate import evaluate_model, format_report
from fpi.model.estimator import FailurePointModel
from fpi.simulator.simulate import simulate
from fpi.data.write import write_traces

TURNS_PER_DIALOGUE = 2.9  # about what the simulator produces; only used to size runs


def dialogues_for(turns: int) -> int:
    return max(1, int(turns / TURNS_PER_DIALOGUE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-turns", type=int, default=100_000)
    parser.add_argument("--test-turns", type=int, default=50_000)
    parser.add_argument("--predict-turns", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--model", type=Path, default=None, help="score with this model instead of training one")
    parser.add_argument("--home", type=Path, default=None,
                        help="FPI_HOME holding the compiled models (kept between runs; default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["FPI_HOME"] = str(args.home or tmp_path / "home")
        os.environ.pop("FPI_COMPILED", None)
        if args.model is None:
            model_dir = train_and_evaluate(args, tmp_path)
        else:
            model_dir = args.model
        model = FailurePointModel.load(model_dir)
        started = time.perf_counter()
        status = model.compiled.build()
        print(f"\nmodel {model.version} ({model.booster.num_trees()} trees): compiling once took "
              f"{time.perf_counter() - started:.1f} s -> scoring with {status.describe()}")
        for turns in args.predict_turns:
            score_side_by_side(model, model_dir, turns, tmp_path)


def train_and_evaluate(args: argparse.Namespace, tmp_path: Path) -> Path:
    train = simulate(dialogues_for(args.train_turns), seed=11)
    test = simulate(dialogues_for(args.test_turns), seed=12)
    started = time.perf_counter()
    model = FailurePointModel().fit(train)
    train_seconds = time.perf_counter() - started
    report = evaluate_model(model, test)
    print(f"training: {len(train):,} turns in {train_seconds:.1f} s ({model.meta['trees']} trees)")
    print(f"held-out simulator data (seed 12, {len(test):,} turns):")
    print(format_report(report))
    f1 = {k: v["macro_f1"] for k, v in report["systems"].items()}
    print(f"\nmacro-F1 gain over raw-confidence LightGBM: {f1['model'] - f1['raw_confidence_lgbm']:+.3f}")
    print(f"macro-F1 gain over rule cascade:           {f1['model'] - f1['rule_cascade']:+.3f}")
    return model.save(tmp_path / "model")


def score_side_by_side(model: FailurePointModel, model_dir: Path, turns: int, tmp_path: Path) -> None:
    big = simulate(dialogues_for(turns), seed=13)
    source = tmp_path / "big.csv"
    write_traces(big, source)
    print(f"\npredict: {len(big):,} turns, {source.stat().st_size / 1e6:.0f} MB CSV")
    features = model.features(big)
    matrix = features.to_numpy(dtype=float)
    started = time.perf_counter()
    reference = model.booster.predict(matrix, raw_score=True)
    bare = time.perf_counter() - started
    print(f"  bare Booster.predict on the prepared matrix:   {bare:6.2f} s ({len(big) / bare:,.0f} turns/s)")
    forest = model.compiled.forest()
    if forest is not None:
        started = time.perf_counter()
        fast = forest.raw_scores(matrix)
        seconds = time.perf_counter() - started
        print(f"  compiled trees on the same matrix:             {seconds:6.2f} s ({bare / seconds:.1f}x faster; "
              f"largest raw-score difference {np.abs(fast - reference).max():.1e})")
    for how, flag in (("compiled", "1"), ("interpreted", "0")):
        if how == "compiled" and forest is None:
            continue
        out = tmp_path / "scored.parquet"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "fpi.cli", "predict", str(source), "--model", str(model_dir), "-o", str(out)],
            check=True, capture_output=True, env={**os.environ, "FPI_COMPILED": flag},
        )
        end_to_end = time.perf_counter() - started
        print(f"  fpi predict CSV -> parquet, {how + ':':<13}     {end_to_end:6.2f} s "
              f"({len(big) / end_to_end:,.0f} turns/s), {end_to_end / bare:.2f}x bare Booster.predict")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
