"""App benchmark: from uploading a 100k-turn CSV to the rendered overview, and where the time goes.

Drives the real app with `streamlit.testing.v1.AppTest` (same process, no
browser): one run with the file in the uploader (read, check, features, score,
summary, the Data page), then one run of the Overview page. Prints figures;
asserts nothing (the target, under 5 s on 2 cores, lives in the issue).

    python bench/bench_app.py                      # 100k turns, the active model
    python bench/bench_app.py --turns 20000 --model /path/to/model
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

# As in app.py: OpenMP threads that sleep instead of spinning when they wait (set before LightGBM loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parent.parent
TURNS_PER_DIALOGUE = 2.85  # about what the simulator produces; only used to size the file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--model", type=Path, default=None,
                        help="model directory (default: $FPI_MODEL, else models/default, else one trained here)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["FPI_HOME"] = str(tmp / "home")
        model_dir = _model_dir(args.model, tmp)
        os.environ["FPI_MODEL"] = str(model_dir)

        from fpi.model import FailurePointModel
        from fpi.simulate import simulate
        from fpi.traces import write_traces
        from streamlit.testing.v1 import AppTest

        model = FailurePointModel.load(model_dir)
        frame = simulate(max(1, int(args.turns / TURNS_PER_DIALOGUE)), seed=5)
        csv = tmp / "traces.csv"
        write_traces(frame, csv)
        data = csv.read_bytes()
        print(f"file: {len(frame):,} turns, {len(data) / 1e6:.1f} MB CSV; model {model.version} "
              f"({model.booster.num_trees()} trees, {model_dir}); {os.cpu_count()} CPUs")

        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
        at.run()
        started = time.perf_counter()
        at.file_uploader[0].set_value(("traces.csv", data, "text/csv")).run()
        loaded = time.perf_counter()
        _check(at, "Data")
        at.switch_page("fpi/ui/overview_page.py").run()
        done = time.perf_counter()
        _check(at, "Overview")

        state = at.session_state["fpi_app_state"]
        steps = dict(state.data.seconds)
        accounted = sum(steps.values())
        print(f"upload -> overview rendered: {done - started:.2f} s")
        print(f"  upload run (Data page):     {loaded - started:.2f} s")
        for name, seconds in steps.items():
            print(f"    {name:<24}{seconds:.2f} s")
        print(f"    {'hashing, page, other':<24}{loaded - started - accounted:.2f} s")
        print(f"  overview run:               {done - loaded:.2f} s")


def _model_dir(explicit: Path | None, tmp: Path) -> Path:
    from fpi.config import SHIPPED_MODEL

    for candidate in (explicit, Path(os.environ["FPI_MODEL"]) if os.environ.get("FPI_MODEL") else None, SHIPPED_MODEL):
        if candidate is not None and (candidate / "meta.json").is_file():
            return candidate
    from fpi.model import FailurePointModel
    from fpi.simulate import simulate

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
