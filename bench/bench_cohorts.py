"""Cohort discovery benchmark: time to search every cohort of up to three conditions on ~1M turns.

Prints figures; asserts nothing. Target: 1M turns in a few seconds on a 2-core
machine. The traces have a planted weak spot (en-IN users in cars get triple
the ASR failures); the benchmark also prints where discovery ranks it.

    python bench/bench_cohorts.py                    # 360,000 dialogues, about 1M turns
    python bench/bench_cohorts.py --dialogues 50000 --repeat 1
"""
from __future__ import annotations

import argparse
import time

from fpi.analysis.discovery import discover_cohorts, format_discovery
from fpi.data.schema import PREDICTED_COLUMN
from fpi.analysis.fairness import fairness
from fpi.simulator.pipelines import CohortEffect, SimConfig
from fpi.simulator.simulate import simulate

PLANTED = {"locale": "en-IN", "device_type": "car"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=360_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--max-conditions", type=int, default=3)
    parser.add_argument("--min-support", type=int, default=200)
    args = parser.parse_args()

    started = time.perf_counter()
    config = SimConfig(cohort_effects=(CohortEffect(PLANTED, "asr", 3.0),))
    frame = simulate(args.dialogues, seed=args.seed, config=config)
    # The labels stand in for a model's predictions: discovery reads one column either way.
    frame = frame.assign(**{PREDICTED_COLUMN: frame["failure_point"]})
    print(f"simulated {len(frame):,} turns in {time.perf_counter() - started:.1f} s")

    best, found = float("inf"), None
    for _ in range(args.repeat):
        started = time.perf_counter()
        found = discover_cohorts(frame, max_conditions=args.max_conditions, min_support=args.min_support)
        best = min(best, time.perf_counter() - started)
    assert found is not None
    steps = ", ".join(f"{k} {v:.2f} s" for k, v in found.seconds.items() if k != "total")
    print(f"discover_cohorts: {best:.2f} s best of {args.repeat} on {len(frame):,} turns "
          f"({len(frame) / best:,.0f} turns/s); last run: {steps}")
    print(f"{found.tested:,} hypotheses over columns {', '.join(found.columns)}")
    rank = next((i for i, c in enumerate(found.cohorts["conditions"], start=1) if dict(c) == PLANTED), None)
    print(f"planted cohort (locale = en-IN and device_type = car, ASR x3) ranks: {rank}")
    print(format_discovery(found, top=8))

    started = time.perf_counter()
    table = fairness(frame)
    print(f"\nfairness (locale, device; accuracy and recall per class): {time.perf_counter() - started:.2f} s, "
          f"{len(table)} comparisons")


if __name__ == "__main__":
    main()
