"""What issue 17's bad inputs cost now: the turn strip of long dialogues, similarity on very long
texts, and the size check of a small Parquet file of a million turns.

    python bench/bench_hardening.py [--turns 250 1000 2000 10000]
"""
from __future__ import annotations

import argparse
import io
import random
import time

import numpy as np
import pandas as pd

from fpi.ui import charts
from fpi.model.features import build_features, fit_feature_spec
from fpi.simulator.simulate import simulate
from fpi.data.traces import check_upload_size


def strip(turns: int) -> pd.DataFrame:
    stages = ["wake", "asr", "nlu", "er", "result"]
    return pd.DataFrame({"turn_index": np.repeat(np.arange(turns), 5), "stage": np.tile(stages, turns),
                         "confidence": np.random.default_rng(0).random(5 * turns),
                         "failing": np.tile([False, True, False, False, False], turns)})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, nargs="+", default=[250, 1000, 2000, 10000])
    args = parser.parse_args()
    for n in args.turns:
        started = time.perf_counter()
        figure = charts.confidence_strip_figure(strip(n))
        figure.to_json()
        print(f"turn strip, {n:,} defective turns: {time.perf_counter() - started:.2f} s, {len(figure.data)} traces")

    traces = simulate(50, seed=1)
    sizes = traces.groupby("dialogue_id").size()
    pair = traces[traces["dialogue_id"] == sizes[sizes >= 2].index[0]].head(2).copy()
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghij") for _ in range(5)) for _ in range(40_000)]
    pair["asr_text"] = [" ".join(words), " ".join(reversed(words))]
    pair["er_entity"] = [" ".join(words[:20_000]), " ".join(words[20_000:])]
    spec = fit_feature_spec(traces)
    started = time.perf_counter()
    build_features(pair, spec)
    print(f"features of two turns of 40,000 words each: {time.perf_counter() - started:.2f} s")

    many = pd.concat([traces] * (1_000_000 // len(traces) + 1), ignore_index=True).head(1_000_000)
    buffer = io.BytesIO()
    many.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    started = time.perf_counter()
    size = check_upload_size(data, max_rows=10**9, max_bytes=10**12)
    print(f"size check of a {len(data) / 1e6:.1f} MB Parquet file of {size.rows:,} turns "
          f"({size.decoded_bytes / 1e6:,.0f} MB decoded): {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
