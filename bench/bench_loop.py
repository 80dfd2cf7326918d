"""The triage loop: does reviewing the queue's turns teach the model faster than reviewing random ones?

Start from the shipped model (models/default) on simulator traces from a
shifted fleet (more cars and TVs, other accents, an ASR whose confidences were
recalibrated upward). Hold out 40% of the dialogues; an analyst reviews turns of
the other 60% and answers with the true label. After 50, 100, 200 and 500
verdicts a candidate is retrained from the default model and all verdicts so far
(`fpi.review.retrain.continue_training`, the app's default strategy until the data
chose it: see `fpi.review.adapt` and bench/bench_transfer.py) and its macro-F1
on the held-out dialogues printed. The turns come either in the triage queue's
order (`fpi.review.triage.triage_queue`, re-ranked by the latest candidate after each
round, as in the app once a candidate is activated) or at random. Each seed
draws another held-out split, random order and LightGBM seed, shared by both
orders, so the difference per seed is a paired comparison. Verdicts go through
a real `VerdictStore` (SQLite in a temp dir).

    python bench/bench_loop.py                     # ~2 minutes on 2 cores
    python bench/bench_loop.py --strategy scratch  # retrain from scratch on unshifted traces + verdicts (slower)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fpi.config import SHIPPED_MODEL  # noqa: E402
from fpi.model.evaluate import metrics_for  # noqa: E402
from fpi.data.predictions import with_predictions  # noqa: E402
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.review.retrain import LABEL_SOURCE, RetrainConfig, continue_training, labels_with_verdicts  # noqa: E402
from fpi.data.schema import LABEL_COLUMN  # noqa: E402
from fpi.simulator.pipelines import SimConfig  # noqa: E402
from fpi.simulator.simulate import simulate
from fpi.model.splits import grouped_split  # noqa: E402
from fpi.review.store import VerdictStore  # noqa: E402
from fpi.data.summary import dataset_fingerprint  # noqa: E402
from fpi.review.triage import triage_queue  # noqa: E402

SHIFT = SimConfig(
    device_weights={"car": 0.40, "tv": 0.35, "phone": 0.15, "speaker": 0.10},
    locale_weights={"en-IN": 0.40, "en-ZA": 0.20, "en-IE": 0.20, "en-NZ": 0.20},
    asr_confidence_shift=2.0,
)
CHECKPOINTS = (0, 50, 100, 200, 500)
SPLIT_SEED = 20_261  # not the model's own split seed, so the held-out part is independent of it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=10_000, help="shifted dialogues simulated")
    parser.add_argument("--seeds", type=int, default=6,
                        help="repetitions: each draws another held-out split, LightGBM seed and random order")
    parser.add_argument("--strategy", choices=("continue", "scratch"), default="continue")
    parser.add_argument("--order", choices=("explore", "uncertainty", "entropy", "defect_probability"),
                        default="uncertainty")
    parser.add_argument("--static-queue", action="store_true",
                        help="rank the queue once with the default model instead of after each retraining")
    parser.add_argument("--rounds", type=int, default=RetrainConfig().rounds)
    parser.add_argument("--learning-rate", type=float, default=RetrainConfig().learning_rate)
    parser.add_argument("--min-data-in-leaf", type=int, default=RetrainConfig().min_data_in_leaf)
    parser.add_argument("--class-weight-power", type=float, default=RetrainConfig().class_weight_power)
    parser.add_argument("--base-dialogues", type=int, default=20_000,
                        help="scratch: unshifted labelled dialogues the candidate trains on beside the verdicts")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    started = time.perf_counter()
    default = FailurePointModel.load(SHIPPED_MODEL)
    shifted = simulate(args.dialogues, seed=2026, config=SHIFT)
    truth = shifted[LABEL_COLUMN].to_numpy(dtype=object)
    hidden = shifted.assign(**{LABEL_COLUMN: pd.array([None] * len(shifted), dtype="str")})
    fingerprint = dataset_fingerprint(hidden)
    features = default.features(hidden)  # continued models share the default's spec: build once
    base = None
    if args.strategy == "scratch":
        base = simulate(args.base_dialogues, seed=1000)  # drawn like the default model's training data
        base["dialogue_id"] = "base-" + base["dialogue_id"].astype("str")

    def proba_of(model: FailurePointModel) -> np.ndarray:
        if model.spec == default.spec:
            return model.predict_proba_from_features(features)
        return model.predict_proba(hidden)

    def retrain(verdicts: pd.DataFrame, seed: int) -> FailurePointModel:
        combined = labels_with_verdicts(hidden, verdicts)
        config = RetrainConfig(strategy=args.strategy, rounds=args.rounds, learning_rate=args.learning_rate,
                               min_data_in_leaf=args.min_data_in_leaf, class_weight_power=args.class_weight_power,
                               train=TrainConfig(num_threads=args.threads, seed=seed))
        if args.strategy == "continue":
            from_verdict = combined[LABEL_SOURCE].eq("verdict").fillna(False).to_numpy(dtype=bool)
            return continue_training(default, combined, train=from_verdict, config=config, features=features)
        training = pd.concat([base, combined.drop(columns=[LABEL_SOURCE])], ignore_index=True)
        return FailurePointModel(config=config.train).fit(training)

    def curve(order: str, seed: int, pool: np.ndarray, held: np.ndarray, store: VerdictStore) -> list[float]:
        permutation = np.random.default_rng(seed).permutation(np.flatnonzero(pool))
        model, scores, reviewed = default, [], []
        for n in CHECKPOINTS:
            need = n - len(reviewed)
            if need > 0:
                if order == "random":
                    positions = permutation[len(reviewed):n]
                else:
                    done = set(zip(hidden["dialogue_id"].iloc[reviewed], hidden["turn_index"].iloc[reviewed]))
                    ranker = default if args.static_queue else model
                    queue = triage_queue(with_predictions(hidden, proba_of(ranker))[pool].reset_index(drop=True),
                                         order=args.order,
                                         exclude_reviewed=done)
                    positions = np.flatnonzero(pool)[queue["row"].to_numpy()[:need]]
                store.record_many({  # the simulated analyst answers with the true label
                    "dataset": fingerprint, "dialogue_id": hidden["dialogue_id"].iloc[p],
                    "turn_index": int(hidden["turn_index"].iloc[p]), "label": truth[p], "analyst": "bench",
                    "model_version": model.version,
                } for p in positions)
                reviewed.extend(int(p) for p in positions)
                model = retrain(store.latest(dataset=fingerprint), seed)
            scores.append(metrics_for(truth[held], proba_of(model)[held])["macro_f1"])
        return scores

    print(f"shifted traces: {len(shifted):,} turns in {args.dialogues:,} dialogues, 40% of dialogues held out "
          f"(another split per seed); strategy {args.strategy}, queue order {args.order}"
          f"{' (ranked once)' if args.static_queue else ''}; {args.seeds} seeds", flush=True)
    curves: dict[str, list[list[float]]] = {"queue": [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            pool, held = grouped_split(shifted, fractions=(0.6, 0.4), seed=SPLIT_SEED + seed)
            for order in curves:
                with VerdictStore(f"sqlite:///{tmp}/{order}-{seed}.db") as store:
                    curves[order].append(curve(order, seed, pool, held, store))
            print(f"  seed {seed}: queue {curves['queue'][-1][-1]:.4f}, random {curves['random'][-1][-1]:.4f} "
                  f"after {CHECKPOINTS[-1]} ({time.perf_counter() - started:.0f} s)", flush=True)

    queue, random = np.array(curves["queue"]), np.array(curves["random"])
    diff = queue - random
    print()
    print(f"macro-F1 on held-out shifted dialogues (~{int(held.sum()):,} turns), mean ± sd over {args.seeds} seeds")
    print(f"{'verdicts':>9}{'queue order':>20}{'random order':>20}{'queue - random':>20}{'queue ahead':>13}")
    for i, n in enumerate(CHECKPOINTS):
        print(f"{n:>9}{queue[:, i].mean():>12.4f} ± {queue[:, i].std():.4f}"
              f"{random[:, i].mean():>12.4f} ± {random[:, i].std():.4f}"
              f"{diff[:, i].mean():>+12.4f} ± {diff[:, i].std():.4f}"
              f"{int((diff[:, i] > 0).sum()):>9}/{args.seeds}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
