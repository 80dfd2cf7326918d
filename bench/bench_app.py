"""App benchmark: from uploading a 100k-turn CSV to the rendered overview, and where the time goes.

Drives the real app with `streamlit.testing.v1.AppTest` (same process, no
browser): from the Data page (the app opens on the Overview with the bundled
sample; not timed), one run with the file in the uploader (read, check,
features, score, summary, the Data page), then one run of the Overview page. Twice, side by side:
scoring with LightGBM's `Booster.predict` (FPI_COMPILED=0), then with the model's
compiled trees (built once beforehand, its time printed). Prints figures; asserts
nothing (the target, 1.5 s on 2 cores, lives in issue 15).

    python bench/bench_app.py                      # 100k turns, the active model
    python bench/bench_app.py --turns 20000 --model /path/to/model
    python bench/bench_app.py --home /tmp/home --compiled-only --runs 5   # medians of five compiled uploads
    python bench/bench_app.py --home /tmp/home --compiled-only --profile /tmp/app.prof  # cProfile of one
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Iterator

# As in app.py: OpenMP threads that sleep instead of spinning when they wait (set before LightGBM loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parent.parent
TURNS_PER_DIALOGUE = 2.85  # about what the simulator produces; only used to size the file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--model", type=Path, default=None,
                        help="model directory (default: $FPI_MODEL, else models/default, else one trained here)")
    parser.add_argument("--home", type=Path, default=None,
                        help="FPI_HOME to use (keeps the compiled model between runs; default: a temp dir)")
    parser.add_argument("--runs", type=int, default=1, help="uploads per scoring mode; medians are printed")
    parser.add_argument("--compiled-only", action="store_true", help="skip the interpreted uploads")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write cProfile stats of the last compiled upload here (pstats format)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["FPI_HOME"] = str(args.home or tmp / "home")
        model_dir = _model_dir(args.model, tmp)
        os.environ["FPI_MODEL"] = str(model_dir)

        from fpi.model.estimator import FailurePointModel
        from fpi.simulator.simulate import simulate
        from fpi.data.write import write_traces
        from streamlit.testing.v1 import AppTest

        model = FailurePointModel.load(model_dir)
        frame = simulate(max(1, int(args.turns / TURNS_PER_DIALOGUE)), seed=5)
        csv = tmp / "traces.csv"
        write_traces(frame, csv)
        data = csv.read_bytes()
        print(f"file: {len(frame):,} turns, {len(data) / 1e6:.1f} MB CSV; model {model.version} "
              f"({model.booster.num_trees()} trees, {model_dir}); {os.cpu_count()} CPUs")

        results = {}
        if not args.compiled_only:
            os.environ["FPI_COMPILED"] = "0"
            results["interpreted"] = _median([_upload(AppTest, data) for _ in range(args.runs)])
        os.environ["FPI_COMPILED"] = "1"
        started = time.perf_counter()
        status = FailurePointModel.load(model_dir).compiled.build()
        print(f"compiling the model once: {time.perf_counter() - started:.1f} s -> {status.describe()}")
        if status.state == "ready":
            runs = [_upload(AppTest, data) for _ in range(args.runs - (args.profile is not None))]
            if args.profile is not None:
                profiler = cProfile.Profile()
                runs.append(_upload(AppTest, data, profiler=profiler))
                profiler.dump_stats(args.profile)
                print(f"profile of the last compiled upload: {args.profile}")
            total = "upload -> overview rendered"
            print("compiled, each run: " + ", ".join(f"{r[total]:.2f} s" for r in runs))
            results["compiled"] = _median(runs)
        if args.runs > 1:
            print(f"medians over {args.runs} runs")
        names = list(results)
        print(f"\n{'':<32}" + "".join(f"{n:>14}" for n in names))
        rows = list(dict.fromkeys(k for r in results.values() for k in r))
        for row in rows:
            print(f"{row:<32}" + "".join(f"{results[n].get(row, float('nan')):>12.2f} s" for n in names))
        if "compiled" in results and "interpreted" in results:
            total = "upload -> overview rendered"
            print(f"\ncompiled / interpreted, {total}: {results['compiled'][total] / results['interpreted'][total]:.2f}")


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each step's median over the runs (so the steps need not add up to the total's median)."""
    return {row: statistics.median(r[row] for r in runs if row in r) for row in dict.fromkeys(k for r in runs for k in r)}


def _upload(app_test: type, data: bytes, profiler: cProfile.Profile | None = None) -> dict[str, float]:
    """One upload of `data` to a rendered overview, on a fresh app with empty caches; seconds per step."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    at = app_test.from_file(str(REPO / "app.py"), default_timeout=600)
    at.run()  # the app opens on the Overview with the bundled sample: the uploader is on the Data page
    at.switch_page("fpi/ui/pages/data.py").run()
    _check(at, "Data")
    started = time.perf_counter()
    with _profiled(profiler):
        at.file_uploader[0].set_value(("traces.csv", data, "text/csv")).run()
    loaded = time.perf_counter()
    _check(at, "Data")
    with _profiled(profiler):
        at.switch_page("fpi/ui/pages/overview.py").run()
    done = time.perf_counter()
    _check(at, "Overview")
    steps = dict(at.session_state["fpi_app_state"].data.seconds)
    out = {"upload -> overview rendered": done - started, "  upload run (Data page)": loaded - started}
    out.update({f"    {name}": seconds for name, seconds in steps.items()})
    out["    hashing, page, other"] = loaded - started - sum(steps.values())
    out["  overview run"] = done - loaded
    return out


@contextlib.contextmanager
def _profiled(profiler: cProfile.Profile | None) -> Iterator[None]:
    """Profile the app's script thread (AppTest runs each script run in a thread of its own)."""
    if profiler is None:
        yield
        return
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    original = LocalScriptRunner._run_script_thread

    def run_profiled(self: LocalScriptRunner) -> None:
        profiler.enable()
        try:
            original(self)
        finally:
            profiler.disable()

    LocalScriptRunner._run_script_thread = run_profiled  # type: ignore[method-assign]
    try:
        yield
    finally:
        LocalScriptRunner._run_script_thread = original  # type: ignore[method-assign]


def _model_dir(explicit: Path | None, tmp: Path) -> Path:
    from fpi.config import SHIPPED_MODEL

    for candidate in (explicit, Path(os.environ["FPI_MODEL"]) if os.environ.get("FPI_MODEL") else None, SHIPPED_MODEL):
        if candidate is not None and (candidate / "meta.json").is_file():
            return candidate
    from fpi.model.estimator import FailurePointModel
    from fpi.simulator.simulate import simulate

    print("no model found: training one on 6,000 simulated dialogues for the benchmark")
    target = tmp / "model"
    FailurePointModel().fit(simulate(6000, seed=7)).save(target)
    return target


def _check(at: object, title: str) -> None:
    if at.exception:  # type: ignore[attr-defined]
        raise SystemExit(f"the {title} page raised: {at.exception[0].value}")  # type: ignore[attr-defined]
    errors = [e.value for e in at.error]  # type: ignore[attr-defined]
    if errors:
        raise SystemExit(f"the {title} page shows errors: {errors}")


if __name__ == "__main__":
    main()
