"""Simulator benchmark: time to generate traces, to write them, and the whole CLI run.

Prints figures; asserts nothing. Target: simulate(250_000) well under 30 s and
`fpi simulate --dialogues 250000` under 60 s on a 2-core machine.

    python bench/bench_simulate.py                  # 250,000 dialogues
    python bench/bench_simulate.py --dialogues 50000 --no-cli
    python bench/bench_simulate.py --pipelines 12     # also a fleet of 12 randomised pipelines
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fpi.simulator.simulate import simulate, simulate_fleet
from fpi.data.write import write_traces


def _row(what: str, turns: int, seconds: float) -> None:
    print(f"{what:<28} {turns:>10,} turns {seconds:>8.2f} s {turns / seconds:>12,.0f} turns/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end `fpi simulate` run")
    parser.add_argument("--pipelines", type=int, default=0, help="also time simulate_fleet with this many pipelines")
    args = parser.parse_args()

    started = time.perf_counter()
    frame = simulate(args.dialogues, seed=args.seed)
    elapsed = time.perf_counter() - started
    turns = len(frame)
    print(f"{args.dialogues:,} dialogues -> {turns:,} turns ({turns / args.dialogues:.2f} per dialogue)")
    _row("simulate()", turns, elapsed)
    if args.pipelines:
        started = time.perf_counter()
        fleet = simulate_fleet(args.dialogues, seed=args.seed, n_pipelines=args.pipelines)
        _row(f"simulate_fleet({args.pipelines})", len(fleet), time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".csv", ".parquet"):
            path = Path(tmp) / f"traces{suffix}"
            started = time.perf_counter()
            write_traces(frame, path)
            _row(f"write_traces({suffix})", turns, time.perf_counter() - started)
            print(f"{'':<28} {path.stat().st_size / 1e6:>10,.1f} MB")
        if not args.no_cli:
            path = Path(tmp) / "cli.csv"
            command = [sys.executable, "-m", "fpi.cli", "simulate", "--dialogues", str(args.dialogues),
                       "--seed", str(args.seed), "-o", str(path)]
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            _row("fpi simulate (CLI, CSV)", turns, time.perf_counter() - started)


if __name__ == "__main__":
    main()
