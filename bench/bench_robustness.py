"""Robustness: how the model holds up on exports unlike its training data.

Trains with and without the missing-column variants (TrainConfig.missing_column_share)
and reports macro-F1 of each, and of both baselines, on held-out simulator data:
as generated, without text, without timestamps and barge-in, without stage extras,
with only the required columns, and with recalibrated ASR confidences.

    python bench/bench_robustness.py [--train-dialogues 20000]
"""
from __future__ import annotations

import argparse

from fpi.model.evaluate import evaluate_model
from fpi.model.estimator import FailurePointModel
from fpi.model.training import TrainConfig
from fpi.data.schema import CONFIDENCE_COLUMNS, KEY_COLUMNS, LABEL_COLUMN
from fpi.simulator.pipelines import SimConfig
from fpi.simulator.simulate import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-dialogues", type=int, default=20_000)
    parser.add_argument("--test-dialogues", type=int, default=8_000)
    args = parser.parse_args()
    train = simulate(args.train_dialogues, seed=31)
    test = simulate(args.test_dialogues, seed=32)
    shifted = simulate(args.test_dialogues, seed=33, config=SimConfig(asr_confidence_shift=-1.0))
    required = [*KEY_COLUMNS, *CONFIDENCE_COLUMNS, LABEL_COLUMN]
    extras = [c for c in test.columns if c.startswith(("asr_n", "nlu_alt", "result_lat"))]
    cases = {
        "as generated": test,
        "no text columns": test.drop(columns=["asr_text", "response_text", "er_entity"]),
        "no timestamp, barge_in": test.drop(columns=["timestamp", "barge_in"]),
        "no stage extras": test.drop(columns=extras),
        "required columns only": test[required],
        "ASR recalibrated (-1 logit)": shifted,
    }
    models = {
        "model, no variants": FailurePointModel(config=TrainConfig(missing_column_share=0.0)).fit(train),
        "model, with variants": FailurePointModel(config=TrainConfig()).fit(train),
    }
    names = [*models, "raw-confidence LightGBM", "rule cascade"]
    print(f"{'test data':<30}" + "".join(f"{n:>26}" for n in names))
    for case, frame in cases.items():
        scores = [evaluate_model(m, frame)["systems"]["model"]["macro_f1"] for m in models.values()]
        baselines = evaluate_model(models["model, with variants"], frame)["systems"]
        scores += [baselines["raw_confidence_lgbm"]["macro_f1"], baselines["rule_cascade"]["macro_f1"]]
        print(f"{case:<30}" + "".join(f"{s:>26.3f}" for s in scores))


if __name__ == "__main__":
    main()
