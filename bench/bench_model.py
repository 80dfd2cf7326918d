"""Model benchmark: quality against both baselines, training time, predict overhead.

Prints figures; asserts nothing (targets live in the issue and the closing note).

    python bench/bench_model.py                       # defaults below
    python bench/bench_model.py --predict-turns 200000 # quicker
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fpi.evaluate import evaluate_model, format_report
from fpi.model import FailurePointModel
from fpi.simulate import simulate
from fpi.traces import write_traces

TURNS_PER_DIALOGUE = 2.9  # about what the simulator produces; only used to size runs


def dialogues_for(turns: int) -> int:
    return max(1, int(turns / TURNS_PER_DIALOGUE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-turns", type=int, default=100_000)
    parser.add_argument("--test-turns", type=int, default=50_000)
    parser.add_argument("--predict-turns", type=int, default=1_000_000)
    args = parser.parse_args()

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

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = model.save(tmp_path / "model")
        big = simulate(dialogues_for(args.predict_turns), seed=13)
        source = tmp_path / "big.csv"
        write_traces(big, source)
        print(f"\npredict: {len(big):,} turns, {source.stat().st_size / 1e6:.0f} MB CSV")

        features = model.features(big).to_numpy(dtype=float)
        started = time.perf_counter()
        model.booster.predict(features, raw_score=True)
        bare = time.perf_counter() - started
        print(f"bare Booster.predict on the prepared matrix: {bare:.1f} s ({len(big) / bare:,.0f} turns/s)")

        for suffix in ("parquet", "csv"):
            out = tmp_path / f"scored.{suffix}"
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "fpi.cli", "predict", str(source), "--model", str(model_dir), "-o", str(out)],
                check=True, capture_output=True,
            )
            end_to_end = time.perf_counter() - started
            print(f"fpi predict CSV -> {suffix} end to end: {end_to_end:.1f} s "
                  f"({len(big) / end_to_end:,.0f} turns/s), {end_to_end / bare:.2f}x bare predict")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
