"""Datasets kept for shared links (`fpi.data.datasets`, `fpi datasets list|rm`)."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from fpi.cli import main
from fpi.data.datasets import DatasetError, DatasetStore, check_fingerprint


def fp(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_save_and_read_give_back_the_file_as_uploaded(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path / "datasets", max_bytes=10_000)
    data = b"dialogue_id,turn_index\nd1,0\n"
    scores = pd.DataFrame({"dialogue_id": ["d1"], "turn_index": [0], "predicted_failure_point": ["asr"]})
    kept = store.save(data, fingerprint=fp("a"), name="mine.csv", column_map={"x": "asr_confidence"}, scores=scores)
    assert kept.path == tmp_path / "datasets" / fp("a") and kept.turns == 1
    again, read = store.read(fp("a"))
    assert read == data and again.column_map == {"x": "asr_confidence"} and again.name == "mine.csv"
    assert pd.read_parquet(kept.path / "scores.parquet")["predicted_failure_point"].tolist() == ["asr"]
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == [fp("a")]  # no temp dirs left
    assert store.save(data, fingerprint=fp("a"), name="other.csv").name == "mine.csv"  # kept once


def test_the_cap_evicts_the_least_recently_opened(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path, max_bytes=4_000)  # three datasets of ~1.25 kB fit, four do not
    for i, name in enumerate("abc"):
        store.save(b"x" * 1000, fingerprint=fp(name), name=f"{name}.csv")
        meta = tmp_path / fp(name) / "meta.json"
        os.utime(meta, (time.time() - 100 + i, time.time() - 100 + i))
    store.read(fp("a"))  # opened: now the most recent
    store.save(b"y" * 1000, fingerprint=fp("d"), name="d.csv")
    assert {d.name for d in store.list()} == {"a.csv", "c.csv", "d.csv"}  # b was the least recently opened
    with pytest.raises(DatasetError, match="more than"):
        store.save(b"z" * 5000, fingerprint=fp("e"), name="e.csv")
    assert not (tmp_path / fp("e")).exists()


def test_only_fingerprints_name_directories(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    for bad in ("../etc", "a" * 63, "A" * 64, ""):
        with pytest.raises(DatasetError):
            check_fingerprint(bad)
    with pytest.raises(DatasetError, match="not on this server|no dataset"):
        store.read(fp("missing"))


def test_cli_lists_and_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FPI_HOME", str(tmp_path))
    store = DatasetStore(tmp_path / "datasets")
    store.save(b"abc", fingerprint=fp("a"), name="mine.csv")
    runner = CliRunner()
    listed = runner.invoke(main, ["datasets", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["fingerprint"] for r in json.loads(listed.output)] == [fp("a")]
    assert "mine.csv" in runner.invoke(main, ["datasets", "list"]).output
    removed = runner.invoke(main, ["datasets", "rm", fp("a")])
    assert removed.exit_code == 0 and not store.list()
    missing = runner.invoke(main, ["datasets", "rm", fp("a")])
    assert missing.exit_code == 2 and "no such dataset" in missing.output
