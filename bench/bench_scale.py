"""Scale benchmark: `fpi predict` throughput and peak memory at 1M / 10M turns, and the DuckDB overview.

Prints figures; asserts nothing. Each size is simulated to a CSV in --workdir
(~310 bytes a turn: 10M turns is ~3 GB) and scored by `fpi predict` in a
child process per engine; peak memory is the largest sum of RSS over the
child and all its descendants (Dask workers included), sampled every 0.2 s.
Files are deleted afterwards unless --keep.

    python bench/bench_scale.py                                  # 1M and 10M, every engine
    python bench/bench_scale.py --sizes 200000 --engines memory chunked   # quick
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from fpi.analysis import aggregates, filtering
from fpi.analysis import dashboard
from fpi.config import SHIPPED_MODEL
from fpi.scoring.partition import DEFAULT_CHUNK_ROWS
from fpi.simulator.simulate import simulate
from fpi.data.write import write_traces

TURNS_PER_DIALOGUE = 2.83  # what the simulator produces, to size runs
PIECE_TURNS = 2_000_000  # simulated at a time, so generating 10M turns needs ~3 GB, not 15


def make_csv(path: Path, turns: int) -> int:
    """A CSV of about `turns` turns, simulated in pieces (ids prefixed per piece so they stay unique)."""
    written = 0
    with open(path, "wb") as out:
        for piece, start in enumerate(range(0, turns, PIECE_TURNS)):
            n = min(PIECE_TURNS, turns - start)
            frame = simulate(max(1, int(n / TURNS_PER_DIALOGUE)), seed=100 + piece)
            frame["dialogue_id"] = f"p{piece}-" + frame["dialogue_id"].astype(str)
            part = path.with_suffix(f".piece{piece}.csv")
            write_traces(frame, part)
            with open(part, "rb") as fh:
                if piece:
                    fh.readline()  # one header only
                shutil.copyfileobj(fh, out, 1 << 24)
            part.unlink()
            written += len(frame)
    return written


def run(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak MB (sum of the process tree's RSS) and stdout of `command`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-2000:]}")
    return time.perf_counter() - started, peak / 1e6, stdout.strip()


def bench_predict(source: Path, turns: int, engine: str, workdir: Path) -> Path:
    out = workdir / f"scored-{engine}.parquet"
    args = ["predict", str(source), "--model", str(SHIPPED_MODEL), "-o", str(out)]
    if engine == "memory":  # the in-memory path whatever the file size
        command = [sys.executable, "-c", "import sys, fpi.scoring.file; fpi.scoring.file.IN_MEMORY_MAX_BYTES = fpi.scoring.file.IN_MEMORY_MAX_ROWS = 1 << 62; "
                   "from fpi.cli import main; main(sys.argv[1:], prog_name='fpi')", *args]
    else:
        extra = ["--engine", "dask"] if engine == "dask" else []
        command = [sys.executable, "-m", "fpi.cli", *args, "--chunk-rows", str(DEFAULT_CHUNK_ROWS), *extra]
    seconds, peak, stdout = run(command)
    print(f"  {engine:8s} {seconds:7.1f} s  {turns / seconds:9,.0f} turns/s  peak {peak:7,.0f} MB   ({stdout[:80]}…)")
    return out


def bench_aggregates(scored: Path, turns: int, *, with_pandas: bool) -> None:
    started = time.perf_counter()
    options = aggregates.filter_options(scored)
    view = aggregates.overview(scored)
    tables = [aggregates.breakdown(scored, column) for column in dashboard.BREAKDOWN_DIMENSIONS.values()]
    first = time.perf_counter() - started
    filters = filtering.Filters(devices=options.devices[:2], predicted=("asr", "nlu"))
    started = time.perf_counter()
    aggregates.overview(scored, filters)
    aggregates.breakdown(scored, "device_type", filters)
    filtered = time.perf_counter() - started
    print(f"  DuckDB overview (options, KPIs, labels, Sankey, over time, confidence, 4 breakdowns) "
          f"on {turns:,} turns: {first:.1f} s; with a filter: {filtered:.1f} s "
          f"({view.kpis.turns:,} turns, {len(tables)} breakdowns)")
    if with_pandas:
        import pandas as pd

        started = time.perf_counter()
        frame = pd.read_parquet(scored)
        loaded = time.perf_counter() - started
        filtering.filter_options(frame)
        dashboard.overview(frame)
        for column in dashboard.BREAKDOWN_DIMENSIONS.values():
            dashboard.breakdown(frame, column)
        print(f"  pandas, for comparison: read {loaded:.1f} s + overview {time.perf_counter() - started - loaded:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", choices=["memory", "chunked", "dask"],
                        default=["memory", "chunked", "dask"])
    parser.add_argument("--memory-max", type=int, default=2_000_000,
                        help="Skip the in-memory engine above this many turns (it needs ~2 KB a turn).")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="Keep the generated and scored files.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fpi-bench-scale-", dir=args.workdir))
    try:
        for size in args.sizes:
            source = workdir / f"traces-{size}.csv"
            started = time.perf_counter()
            turns = make_csv(source, size)
            print(f"{turns:,} turns, {source.stat().st_size / 1e9:.2f} GB CSV (made in {time.perf_counter() - started:.0f} s)")
            scored = None
            for engine in args.engines:
                if engine == "memory" and turns > args.memory_max:
                    print(f"  memory   skipped above {args.memory_max:,} turns")
                    continue
                out = bench_predict(source, turns, engine, workdir)
                if scored is None or engine == "chunked":
                    scored = out
            if scored is not None:
                bench_aggregates(scored, turns, with_pandas=turns <= args.memory_max)
            if not args.keep:
                for path in workdir.glob("*"):
                    path.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
