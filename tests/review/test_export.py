"""Tests for fpi.review.export: traces with the latest verdict on each turn, ready to export."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from fpi.data.write import write_export
from fpi.errors import FpiError
from fpi.review.export import VERDICT_EXPORT_COLUMNS, with_latest_verdicts
from fpi.review.store import VerdictStore
from fpi.simulator.simulate import simulate

VERDICT_COLUMNS = list(VERDICT_EXPORT_COLUMNS.values())
DATASET = "e" * 64


def _verdicts(*rows: tuple) -> pd.DataFrame:
    """Verdict store rows: (dialogue_id, turn_index, label[, note])."""
    return pd.DataFrame([{"id": i, "dataset_fingerprint": DATASET, "dialogue_id": r[0], "turn_index": r[1],
                          "label": r[2], "analyst": f"analyst{i}", "note": r[3] if len(r) > 3 else None,
                          "created_at": pd.Timestamp("2026-03-01 12:00", tz="UTC") + pd.Timedelta(minutes=i)}
                         for i, r in enumerate(rows)])


def test_the_latest_verdicts_from_a_store_are_matched_by_turn(tmp_path) -> None:
    traces = simulate(6, seed=71)
    with VerdictStore(f"sqlite:///{tmp_path / 'verdicts.db'}") as store:
        first = traces.iloc[0]
        store.record(dataset=DATASET, dialogue_id=first["dialogue_id"], turn_index=int(first["turn_index"]),
                     label="asr", analyst="ana", at=datetime(2026, 1, 1, tzinfo=timezone.utc))
        store.record(dataset=DATASET, dialogue_id=first["dialogue_id"], turn_index=int(first["turn_index"]),
                     label="nlu", analyst="bob", note="second look", at=datetime(2026, 1, 2, tzinfo=timezone.utc))
        store.record(dataset=DATASET, dialogue_id="not in the file", turn_index=0, label="er", analyst="ana")
        latest = store.latest(dataset=DATASET)
    out = with_latest_verdicts(traces, latest)
    assert out.columns.tolist() == [*traces.columns, *VERDICT_COLUMNS] and len(out) == len(traces)
    assert (out["verdict_label"].iloc[0], out["verdict_analyst"].iloc[0], out["verdict_note"].iloc[0]) == \
        ("nlu", "bob", "second look")
    assert out["verdict_at"].iloc[0] == pd.Timestamp("2026-01-02", tz="UTC")
    assert out[VERDICT_COLUMNS].iloc[1:].isna().all().all()  # turns without a verdict: empty cells
    pd.testing.assert_frame_equal(out[traces.columns], traces)  # the traces themselves unchanged


def test_row_order_is_kept_and_repeated_rows_get_the_same_verdict() -> None:
    frame = pd.DataFrame({"dialogue_id": ["b", "a", "b", "a"], "turn_index": [1, 0, 0, 0], "x": [1, 2, 3, 4]},
                         index=[7, 5, 3, 1])
    out = with_latest_verdicts(frame, _verdicts(("a", 0, "asr"), ("b", 1, "er")))
    assert out.index.tolist() == [7, 5, 3, 1] and out["x"].tolist() == [1, 2, 3, 4]
    assert out["verdict_label"].tolist()[:2] == ["er", "asr"] and out["verdict_label"].iloc[3] == "asr"
    assert pd.isna(out["verdict_label"].iloc[2])


def test_keys_match_across_types() -> None:
    frame = pd.DataFrame({"dialogue_id": [101, 102], "turn_index": pd.array([0, 2], dtype="Int64")})
    verdicts = _verdicts(("101", "0", "result"))
    out = with_latest_verdicts(frame, verdicts)
    assert out["verdict_label"].iloc[0] == "result" and pd.isna(out["verdict_label"].iloc[1])


def test_verdict_columns_already_in_the_frame_are_replaced_not_repeated() -> None:
    frame = pd.DataFrame({"dialogue_id": ["a"], "turn_index": [0]})
    once = with_latest_verdicts(frame, _verdicts(("a", 0, "asr")))
    twice = with_latest_verdicts(once, _verdicts(("a", 0, "nlu")))
    assert twice.columns.tolist() == once.columns.tolist() and twice["verdict_label"].tolist() == ["nlu"]


def test_no_verdicts_give_empty_typed_columns() -> None:
    frame = pd.DataFrame({"dialogue_id": ["a", "b"], "turn_index": [0, 0]})
    out = with_latest_verdicts(frame, _verdicts(("zzz", 0, "asr")).iloc[:0])
    assert out[VERDICT_COLUMNS].isna().all().all()
    assert str(out["verdict_at"].dt.tz) == "UTC"
    assert all(pd.api.types.is_string_dtype(out[c].dtype) for c in VERDICT_COLUMNS[:3])


def test_more_than_one_verdict_per_turn_is_refused() -> None:
    with pytest.raises(FpiError, match="at most one verdict per"):
        with_latest_verdicts(pd.DataFrame({"dialogue_id": ["a"], "turn_index": [0]}),
                             _verdicts(("a", 0, "asr"), ("a", 0, "er")))


def test_an_exported_note_cannot_run_as_a_formula(tmp_path) -> None:
    frame = pd.DataFrame({"dialogue_id": ["a"], "turn_index": [0]})
    out = with_latest_verdicts(frame, _verdicts(("a", 0, "asr", "=HYPERLINK(\"http://x\")")))
    back = pd.read_csv(write_export(out, tmp_path / "verdicts.csv"))
    assert back["verdict_note"].tolist() == ["'=HYPERLINK(\"http://x\")"]
