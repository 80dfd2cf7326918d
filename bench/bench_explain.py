"""Explanation and model-size benchmark.

1. Model size against accuracy and speed: several LightGBM sizes trained on the
   same data; macro-F1 on held-out data, trees, predict and explain throughput.
2. SHAP engines on the default model: shap.TreeExplainer against LightGBM's own
   pred_contrib (same exact TreeSHAP values), turns per second in bulk.
3. Interactive use: time to explain one dialogue (features already computed,
   as in the app), cold and from the cache.

    python bench/bench_explain.py [--train-dialogues 35000] [--bulk 5000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import shap

from fpi.model.evaluate import evaluate_model
from fpi.model.explain import ExplanationCache, contributions, explain_rows
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.config import SHIPPED_MODEL
from fpi.simulator.simulate import simulate

SIZES = {
    "small (lr 0.2, 15 leaves)": TrainConfig(learning_rate=0.2, num_leaves=15),
    "default (lr 0.15, 15 leaves)": TrainConfig(),
    "medium (lr 0.15, 31 leaves)": TrainConfig(learning_rate=0.15, num_leaves=31),
    "large (lr 0.08, 31 leaves)": TrainConfig(learning_rate=0.08, num_leaves=31),
}


def rate(func, rows: int) -> float:
    started = time.perf_counter()
    func()
    return rows / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-dialogues", type=int, default=35_000)
    parser.add_argument("--bulk", type=int, default=5_000)
    args = parser.parse_args()

    train = simulate(args.train_dialogues, seed=21)
    test = simulate(10_000, seed=22)
    print(f"1. model size vs accuracy ({len(train):,} training turns, {len(test):,} held-out turns)")
    print(f"{'size':<30}{'trees':>7}{'macro-F1':>10}{'fit s':>8}{'predict turns/s':>17}{'explain turns/s':>17}")
    for name, config in SIZES.items():
        started = time.perf_counter()
        model = FailurePointModel(config=config).fit(train)
        fit = time.perf_counter() - started
        f1 = evaluate_model(model, test)["systems"]["model"]["macro_f1"]
        features = model.features(test)
        matrix = features.to_numpy(dtype=float)
        predict = rate(lambda: model.booster.predict(matrix, raw_score=True), len(matrix))
        bulk = features.iloc[: args.bulk]
        explain = rate(lambda: contributions(model, bulk), len(bulk))
        print(f"{name:<30}{model.meta['trees']:>7}{f1:>10.3f}{fit:>8.1f}{predict:>17,.0f}{explain:>17,.0f}")

    model = FailurePointModel.load(SHIPPED_MODEL)
    features = model.features(test)
    bulk = features.iloc[: args.bulk]
    matrix = bulk.to_numpy(dtype=float)
    print(f"\n2. SHAP engines on the shipped model ({model.meta['trees']} trees), {len(bulk):,} turns")
    explainer = shap.TreeExplainer(model.booster)
    ours = rate(lambda: contributions(model, bulk), len(bulk))
    theirs = rate(lambda: explainer.shap_values(matrix), len(bulk))
    same = np.allclose(contributions(model, bulk.iloc[:200])[:, :, :-1],
                       np.moveaxis(np.asarray(explainer.shap_values(matrix[:200])), 2, 1), atol=1e-6)
    print(f"LightGBM pred_contrib: {ours:,.0f} turns/s; shap.TreeExplainer: {theirs:,.0f} turns/s; "
          f"identical values: {same}")

    print("\n3. one dialogue, as the drill-down page does it")
    dialogue_ids = test["dialogue_id"]
    longest = dialogue_ids.value_counts().index[:20]
    cache = ExplanationCache()
    cold, warm = [], []
    for i, dialogue in enumerate(longest):
        rows = list(np.flatnonzero(dialogue_ids.to_numpy() == dialogue))
        started = time.perf_counter()
        cache.explain(model, features, rows, data_key="bench")
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        cache.explain(model, features, rows, data_key="bench")
        warm.append(time.perf_counter() - started)
    turns = int(dialogue_ids.value_counts().iloc[0])
    print(f"dialogues of up to {turns} turns: cold median {np.median(cold) * 1000:.0f} ms "
          f"(max {max(cold) * 1000:.0f} ms), cached median {np.median(warm) * 1000:.2f} ms")
    single = explain_rows(model, features.iloc[:1])
    print(f"one turn alone: top reason: {single[0].reasons[0].text}")


if __name__ == "__main__":
    main()
