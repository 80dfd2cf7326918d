"""How fpi carries over to a labelled trace file from another pipeline, and how fast verdicts fix it.

For any labelled TRACES file (contract columns plus `failure_point`) prints:

(a) grouped 5-fold cross-validation (folds by `dialogue_id`): `FailurePointModel.fit`
    on four folds, scored on the fifth as a separate upload; macro-F1 and F1 per
    class of the model and of both baselines it trains beside it (the LightGBM on
    the raw confidences and the rule cascade), out-of-fold predictions pooled;
(b) the shipped model (`fpi.config.SHIPPED_MODEL`) zero-shot on every turn, and the
    same model self-trained on the file without reading a label (`fpi adapt`,
    `fpi.review.self_training`);
(c) the adaptation curve: 30% of the dialogues held out, the labels hidden; an
    analyst answers with the true label for turns of the other 70%, either in the
    triage queue's order (`fpi.review.triage.triage_queue`, default order, ranked by the
    latest candidate after each step, as in the app) or in random order; after
    100 / 300 / 1000 verdicts the verdicts are audited (`fpi.review.audit`) and a
    candidate is built from the shipped model and the ones the audit keeps with
    `fpi.review.retrain.retrain_from_verdicts` (the Triage page's code), and its
    macro-F1 on the held-out dialogues printed. Each seed draws another
    held-out split and random order, shared by both orders (a paired comparison).

    python bench/bench_transfer.py TRACES                  # ~2-4 minutes on 2 cores for 3,600 turns
    python bench/bench_transfer.py TRACES --skip-cv --seeds 1
    python bench/bench_transfer.py TRACES --seeds 0                     # (a) and (b) only
    python bench/bench_transfer.py TRACES --seeds 0 --learning-curve 0.25 0.5 0.75   # (a) with fewer labels too
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fpi.config import SHIPPED_MODEL  # noqa: E402
from fpi.model.evaluate import metrics_for  # noqa: E402
from fpi.data.predictions import with_predictions  # noqa: E402
from fpi.model.estimator import FailurePointModel
from fpi.errors import ModelError  # noqa: E402
from fpi.model.training import TrainConfig
from fpi.review.audit import audit_verdicts  # noqa: E402
from fpi.review.retrain import RetrainConfig, retrain_from_verdicts  # noqa: E402
from fpi.review.self_training import self_train  # noqa: E402
from fpi.data.schema import LABEL_COLUMN, LABELS  # noqa: E402
from fpi.model.splits import dialogue_bucket, grouped_split  # noqa: E402
from fpi.data.traces import load_traces  # noqa: E402
from fpi.review.triage import triage_queue  # noqa: E402

SPLIT_SEED = 20_261  # not the model's own split seed, so the held-out part is independent of it
SYSTEMS = {"model": "fpi model", "raw_confidence_lgbm": "LightGBM, raw confidences", "rule_cascade": "rule cascade"}


def cross_validated(frame: pd.DataFrame, *, folds: int, threads: int, share: float = 1.0) -> dict[str, dict]:
    """Pooled out-of-fold metrics of the model and both baselines, folds grouped by dialogue. With `share`
    below 1, each fold trains on that share of its training dialogues (a seeded choice, nested: a
    larger share keeps every dialogue a smaller one has) and is scored on the same test fold."""
    fold = np.minimum((dialogue_bucket(frame["dialogue_id"], seed=SPLIT_SEED) * folds).astype(int), folds - 1)
    kept = (dialogue_bucket(frame["dialogue_id"], seed=SPLIT_SEED + 7) < share) | (share >= 1.0)
    truth = frame[LABEL_COLUMN].to_numpy(dtype=object)
    proba = {name: np.zeros((len(frame), len(LABELS))) for name in SYSTEMS}
    for k in range(folds):
        test = fold == k
        train_part = frame[~test & kept].reset_index(drop=True)
        test_part = frame[test].reset_index(drop=True)
        model = FailurePointModel(config=TrainConfig(seed=k, num_threads=threads)).fit(train_part)
        proba["model"][test] = model.predict_proba(test_part)
        for name, p in model.baseline_probas(test_part).items():
            proba[name][test] = p
    return {name: metrics_for(truth, p) for name, p in proba.items()}


def adaptation_curve(
    frame: pd.DataFrame, shipped: FailurePointModel, *, order: str, seed: int, budgets: tuple[int, ...],
    config: RetrainConfig,
) -> tuple[list[float], list[int], list[str]]:
    """Held-out macro-F1 after each budget, labels the verdicts covered by then, and the strategy chosen."""
    pool, held = grouped_split(frame, fractions=(0.7, 0.3), seed=SPLIT_SEED + seed)
    truth = frame[LABEL_COLUMN].to_numpy(dtype=object)
    hidden = frame.assign(**{LABEL_COLUMN: pd.array([None] * len(frame), dtype="str")})
    permutation = np.random.default_rng(seed).permutation(np.flatnonzero(pool))
    pool_rows = np.flatnonzero(pool)
    model, reviewed, scores, covered, chosen = shipped, [], [], [], []
    for n in budgets:
        need = n - len(reviewed)
        if need > 0:
            if order == "random":
                positions = permutation[len(reviewed):n]
            else:
                done = set(zip(hidden["dialogue_id"].iloc[reviewed].astype(str),
                               hidden["turn_index"].iloc[reviewed].astype(int)))
                scored = with_predictions(hidden, model.predict_proba(hidden)).iloc[pool_rows]
                queue = triage_queue(scored.reset_index(drop=True), exclude_reviewed=done)
                positions = pool_rows[queue["row"].to_numpy()[:need]]
            reviewed.extend(int(p) for p in positions)
        verdicts = pd.DataFrame({
            "dialogue_id": hidden["dialogue_id"].iloc[reviewed].astype(str).to_numpy(),
            "turn_index": hidden["turn_index"].iloc[reviewed].astype(int).to_numpy(),
            "label": truth[reviewed],
        })
        # As the Triage page: the audit first (it leaves out only where the data reads the pipeline well).
        audit = audit_verdicts(hidden, verdicts, model=shipped)
        result = retrain_from_verdicts(hidden, audit.kept(verdicts), active=shipped, config=config)
        model = result.candidate
        chosen.append(result.strategy + (f", {audit.excluded} left out" if audit.excluded else ""))
        scores.append(metrics_for(truth[held], model.predict_proba(hidden)[held])["macro_f1"])
        covered.append(len(set(truth[reviewed])))
    return scores, covered, chosen


def per_class_line(name: str, metrics: dict) -> str:
    per_class = "".join(f"{metrics['per_class'][label]['f1']:>11.2f}" for label in LABELS)
    return f"{name:<28}{metrics['macro_f1']:>9.3f}{per_class}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", type=Path, help="a labelled trace file (CSV or Parquet)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="adaptation repetitions (held-out split, random order); 0 skips (c)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first seed's number: runs of --seeds 3 --first-seed 0 and 3 make six seeds")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds, grouped by dialogue")
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 300, 1000], help="verdict budgets")
    parser.add_argument("--skip-cv", action="store_true", help="skip (a), the supervised cross-validation")
    parser.add_argument("--learning-curve", type=float, nargs="+", default=[], metavar="SHARE",
                        help="(a) again for the model, each fold training on this share of its dialogues "
                             "(e.g. 0.25 0.5 0.75): does it lack labels or signals?")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    started = time.perf_counter()
    frame = load_traces(args.traces)
    frame = frame[frame[LABEL_COLUMN].notna()].reset_index(drop=True) if LABEL_COLUMN in frame.columns else frame
    if frame.empty:
        sys.exit(f"{args.traces}: no labelled turns (failure_point is empty); the benchmark needs labels")
    shipped = FailurePointModel.load(SHIPPED_MODEL)
    truth = frame[LABEL_COLUMN].to_numpy(dtype=object)
    shares = frame[LABEL_COLUMN].value_counts(normalize=True)
    print(f"{args.traces.name}: {len(frame):,} labelled turns in {frame['dialogue_id'].nunique():,} dialogues; "
          + ", ".join(f"{label} {shares.get(label, 0):.0%}" for label in LABELS), flush=True)

    header = f"{'system':<28}{'macro-F1':>9}" + "".join(f"{label:>11}" for label in LABELS)
    if not args.skip_cv:
        print(f"\n(a) grouped {args.folds}-fold cross-validation (by dialogue), F1 per class", flush=True)
        print(header)
        for name, metrics in cross_validated(frame, folds=args.folds, threads=args.threads).items():
            print(per_class_line(SYSTEMS[name], metrics))
        for share in sorted(args.learning_curve):
            metrics = cross_validated(frame, folds=args.folds, threads=args.threads, share=share)["model"]
            print(per_class_line(f"{SYSTEMS['model']}, {share:.0%} of dialogues", metrics), flush=True)
        print(f"    ({time.perf_counter() - started:.0f} s)", flush=True)

    print("\n(b) the shipped model, zero-shot on every turn, and self-trained on them without labels")
    print(header)
    print(per_class_line(f"shipped {shipped.version}", metrics_for(truth, shipped.predict_proba(frame))), flush=True)
    try:
        adapted = self_train(frame, shipped, RetrainConfig(train=TrainConfig(num_threads=args.threads)))
    except ModelError as exc:
        print(f"self-trained, no label read: not possible here ({exc})", flush=True)
    else:
        print(per_class_line("self-trained, no label read", metrics_for(truth, adapted.proba)), flush=True)

    if args.seeds < 1:
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        return
    budgets = tuple(sorted(args.budgets))
    config = RetrainConfig(train=TrainConfig(num_threads=args.threads))
    print(f"\n(c) from the shipped model: verdicts on 70% of the dialogues, macro-F1 on the other 30%; "
          f"{args.seeds} seeds" + (f" from seed {args.first_seed}" if args.first_seed else ""), flush=True)
    curves: dict[str, list[list[float]]] = {"queue": [], "random": []}
    coverage: dict[str, list[list[int]]] = {"queue": [], "random": []}
    chosen: dict[str, list[list[str]]] = {"queue": [], "random": []}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for order in curves:
            scores, covered, strategies = adaptation_curve(frame, shipped, order=order, seed=seed, budgets=budgets,
                                                           config=config)
            curves[order].append(scores)
            coverage[order].append(covered)
            chosen[order].append(strategies)
        print(f"  seed {seed}: " + "; ".join(
            f"{order} " + " / ".join(f"{s:.3f} ({c})" for s, c in zip(curves[order][-1], chosen[order][-1]))
            for order in curves) + f" ({time.perf_counter() - started:.0f} s)", flush=True)
    queue, random = np.array(curves["queue"]), np.array(curves["random"])
    diff = queue - random
    print(f"\n{'verdicts':>9}{'queue order':>17}{'random order':>17}{'queue - random':>17}{'queue >= random':>17}"
          f"{'labels seen q/r':>17}")
    for i, n in enumerate(budgets):
        seen_q = np.mean([c[i] for c in coverage["queue"]])
        seen_r = np.mean([c[i] for c in coverage["random"]])
        print(f"{n:>9}{queue[:, i].mean():>10.3f} ± {queue[:, i].std():.3f}"
              f"{random[:, i].mean():>10.3f} ± {random[:, i].std():.3f}"
              f"{diff[:, i].mean():>+10.3f} ± {diff[:, i].std():.3f}"
              f"{int((diff[:, i] >= 0).sum()):>14}/{args.seeds}"
              f"{seen_q:>11.1f} / {seen_r:.1f}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
