"""The verdict store: append-only audit, latest wins, schema versions, and real multi-process durability."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

import fpi.review.store as store_module
from fpi.config import Config
from fpi.errors import StoreError
from fpi.review.store import SCHEMA_VERSION, VERDICT_COLUMNS, VerdictStore, resolve_verdicts

REPO = Path(__file__).resolve().parents[2]
DATASET = "a" * 64
OTHER = "b" * 64


def url_of(path: Path) -> str:
    return f"sqlite:///{path.as_posix()}"


@pytest.fixture()
def store(tmp_path: Path) -> VerdictStore:
    with VerdictStore(url_of(tmp_path / "verdicts.db")) as opened:
        yield opened


def give(store: VerdictStore, label: str, *, dialogue: str = "d1", turn: int = 0, dataset: str = DATASET,
         analyst: str = "ana", **extra: object):
    return store.record(dataset=dataset, dialogue_id=dialogue, turn_index=turn, label=label, analyst=analyst,
                        **extra)


# ---------------------------------------------------------------- behaviour

def test_a_verdict_is_stored_with_everything_it_says(store: VerdictStore) -> None:
    before = datetime.now(timezone.utc)
    verdict = give(store, " ASR ", analyst="  ana@example.com ", note=" heard 'pay' ", predicted_label="correct",
                   model_version="abc123")
    assert (verdict.label, verdict.analyst, verdict.note) == ("asr", "ana@example.com", "heard 'pay'")
    assert verdict.created_at.tzinfo is not None and verdict.created_at >= before
    rows = store.all()
    assert list(rows.columns) == list(VERDICT_COLUMNS) and len(rows) == 1
    row = rows.iloc[0]
    assert (row["dataset_fingerprint"], row["dialogue_id"], row["turn_index"]) == (DATASET, "d1", 0)
    assert (row["predicted_label"], row["model_version"]) == ("correct", "abc123")
    assert str(rows["created_at"].dt.tz) == "UTC"
    assert abs(row["created_at"].to_pydatetime() - verdict.created_at).total_seconds() < 1e-3


@pytest.mark.parametrize(("changes", "match"), [
    ({"analyst": ""}, "needs the analyst"),
    ({"analyst": "   "}, "needs the analyst"),
    ({"label": "wrong"}, "unknown verdict label 'wrong'"),
    ({"label": ""}, "unknown verdict label"),
    ({"turn_index": -1}, "turn_index must be a whole number >= 0; got -1"),
    ({"dialogue_id": ""}, "dialogue_id must have 1 to"),
    ({"dataset": ""}, "dataset fingerprint"),
    ({"predicted_label": "maybe"}, "unknown predicted label 'maybe'"),
    ({"note": "x" * 5000}, "the note is 5000 characters long"),
])
def test_bad_verdicts_are_refused_and_nothing_is_written(store: VerdictStore, changes: dict, match: str) -> None:
    arguments = {"dataset": DATASET, "dialogue_id": "d1", "turn_index": 0, "label": "asr", "analyst": "ana",
                 **changes}
    with pytest.raises(StoreError, match=match):
        store.record(**arguments)
    assert store.count() == 0


def test_the_database_itself_refuses_an_anonymous_verdict(store: VerdictStore) -> None:
    # Even code that bypasses `record` cannot write one: a CHECK constraint guards the column.
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(sa.insert(store_module.verdicts_table).values(
            dataset_fingerprint=DATASET, dialogue_id="d1", turn_index=0, label="asr", analyst="  ",
            created_at=datetime.now(timezone.utc)))


def test_a_changed_verdict_adds_a_row_and_the_latest_counts(store: VerdictStore) -> None:
    give(store, "asr", analyst="ana")
    give(store, "nlu", analyst="bob", note="it was routed to video")
    give(store, "correct", dialogue="d2")
    history = store.history("d1", 0)
    assert list(history["label"]) == ["asr", "nlu"] and list(history["analyst"]) == ["ana", "bob"]
    assert history["created_at"].is_monotonic_increasing
    latest = store.latest(dataset=DATASET).set_index("dialogue_id")
    assert latest.loc["d1", "label"] == "nlu" and latest.loc["d2", "label"] == "correct"
    assert store.count() == 3 and store.count(dataset=DATASET) == 3
    assert store.reviewed(dataset=DATASET) == {("d1", 0), ("d2", 0)}


def test_latest_is_per_dataset_and_latest_by_turn_looks_across_datasets(store: VerdictStore) -> None:
    give(store, "asr", dataset=DATASET)
    give(store, "er", dataset=OTHER)  # newer, on another upload of the same dialogue
    give(store, "result", dialogue="d9", dataset=OTHER)
    assert list(store.latest(dataset=DATASET)["label"]) == ["asr"]
    assert len(store.latest()) == 3  # one per (dataset, dialogue, turn)
    newest = store.latest_by_turn().set_index("dialogue_id")
    assert newest.loc["d1", "label"] == "er" and newest.loc["d9", "label"] == "result"
    preferred = store.latest_by_turn(prefer_dataset=DATASET).set_index("dialogue_id")
    assert preferred.loc["d1", "label"] == "asr" and preferred.loc["d9", "label"] == "result"
    assert list(store.history("d1", 0, dataset=OTHER)["label"]) == ["er"]
    assert len(store.history("d1", 0)) == 2
    assert resolve_verdicts(store.latest().iloc[:0]).empty


def test_record_many_is_all_or_nothing(store: VerdictStore) -> None:
    rows = [{"dataset": DATASET, "dialogue_id": f"d{i}", "turn_index": 0, "label": "asr", "analyst": "ana"}
            for i in range(3)]
    assert store.record_many(rows) == 3
    with pytest.raises(StoreError, match="needs the analyst"):
        store.record_many([*rows, {**rows[0], "analyst": ""}])
    assert store.count() == 3


# ---------------------------------------------------------------- schema and configuration

def test_a_new_database_gets_the_schema_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "verdicts.db"  # parent directories are made
    with VerdictStore(url_of(path)) as opened:
        assert opened.schema_version() == SCHEMA_VERSION
        with opened.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == store_module.BUSY_TIMEOUT_MS
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version FROM schema_version").fetchall() == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    raw.close()
    VerdictStore(url_of(path)).close()  # opening again changes nothing
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    raw.close()


def test_a_database_from_a_newer_fpi_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "verdicts.db"
    VerdictStore(url_of(path)).close()
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_version VALUES (99, 'from the future', '2030-01-01 00:00:00')")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="schema version 99, newer than this fpi understands"):
        VerdictStore(url_of(path))


def test_an_unversioned_verdicts_table_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "verdicts.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE verdicts (x TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="no schema_version table"):
        VerdictStore(url_of(path))
    raw = sqlite3.connect(path)
    assert [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["verdicts"]
    raw.close()


def test_an_older_schema_is_migrated_once_keeping_the_verdicts(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "verdicts.db"
    with VerdictStore(url_of(path)) as v1:
        give(v1, "asr")
    calls = []

    def add_source_column(conn: sa.Connection) -> None:
        calls.append(1)
        conn.execute(sa.text("ALTER TABLE verdicts ADD COLUMN source VARCHAR(32)"))

    later = SCHEMA_VERSION + 1
    monkeypatch.setattr(store_module, "MIGRATIONS",
                        (*store_module.MIGRATIONS, (later, "source column", add_source_column)))
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", later)
    with VerdictStore(url_of(path)) as v2:
        assert v2.schema_version() == later
        assert list(v2.all()["label"]) == ["asr"]
    VerdictStore(url_of(path)).close()
    assert calls == [1]
    raw = sqlite3.connect(path)
    assert "source" in [r[1] for r in raw.execute("PRAGMA table_info(verdicts)")]
    raw.close()


def test_a_version_1_database_gets_the_team_tables_and_keeps_its_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "verdicts.db"
    engine = sa.create_engine(url_of(path))
    with engine.begin() as conn:
        store_module.schema_version_table.create(conn)
        store_module.verdicts_table.create(conn)
        conn.execute(sa.insert(store_module.schema_version_table).values(
            version=1, description="verdicts", applied_at=datetime.now(timezone.utc)))
    engine.dispose()
    with VerdictStore(url_of(path)) as opened:
        assert opened.schema_version() == SCHEMA_VERSION == 2
        give(opened, "asr")
        opened.adjudicate(dataset=DATASET, dialogue_id="d1", turn_index=0, label="nlu", analyst="lead")
        opened.log_event(action="activate", actor="lead", role="maintainer", allowed=True, to_version="abc")
        assert list(opened.adjudications()["label"]) == ["nlu"]
        assert list(opened.events()["to_version"]) == ["abc"]


def test_the_default_store_is_a_sqlite_file_in_fpi_home(tmp_path: Path) -> None:
    config = Config.from_env({"FPI_HOME": str(tmp_path / "home")})
    with VerdictStore.from_config(config) as opened:
        give(opened, "er")
    assert (tmp_path / "home" / "fpi.sqlite3").is_file()


def test_fpi_db_url_is_respected(tmp_path: Path) -> None:
    elsewhere = tmp_path / "shared" / "team.db"
    config = Config.from_env({"FPI_HOME": str(tmp_path / "home"), "FPI_DB_URL": url_of(elsewhere)})
    with VerdictStore.from_config(config) as opened:
        give(opened, "er")
        assert opened.url.endswith("team.db")
    assert elsewhere.is_file() and not (tmp_path / "home" / "fpi.sqlite3").exists()
    with VerdictStore(url_of(elsewhere)) as again:
        assert again.count() == 1


@pytest.mark.parametrize(("url", "match"), [
    ("not a database url", "is not a database URL"),
    ("nosuchdialect://user:secret@host/db", "no database driver"),
])
def test_unusable_urls_are_explained(url: str, match: str) -> None:
    with pytest.raises(StoreError, match=match) as caught:
        VerdictStore(url)
    assert "secret" not in str(caught.value)  # passwords never end up in messages


def test_an_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="could not open"):
        VerdictStore(url_of(blocker / "verdicts.db"))


# ---------------------------------------------------------------- several processes, crashes

WRITER = textwrap.dedent("""
    import os, sys, time
    from fpi.data.schema import LABELS
    from fpi.review.store import VerdictStore
    url, name, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    store = VerdictStore(url)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    for i in range(count):
        store.record(dataset="f" * 64, dialogue_id=f"{name}-{i}", turn_index=i % 7, label=LABELS[i % 6],
                     analyst=name)
        print(i + 1, flush=True)
""")


def start_writer(url: str, name: str, count: int, go: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-c", WRITER, url, name, str(count), str(go)],
                               stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    url, go = url_of(tmp_path / "verdicts.db"), tmp_path / "go"
    VerdictStore(url).close()  # schema first, so the writers race only on verdicts
    writers, per_writer = 4, 200
    processes = [start_writer(url, f"w{k}", per_writer, go) for k in range(writers)]
    go.touch()  # all start writing at once
    for process in processes:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        assert out.split()[-1] == str(per_writer)
    with VerdictStore(url) as opened:
        rows = opened.all()
    assert len(rows) == writers * per_writer
    assert set(rows["dialogue_id"]) == {f"w{k}-{i}" for k in range(writers) for i in range(per_writer)}
    assert rows["id"].is_unique
    assert rows.groupby("analyst").size().to_dict() == {f"w{k}": per_writer for k in range(writers)}


def test_a_killed_writer_leaves_every_committed_verdict(tmp_path: Path) -> None:
    url, go = url_of(tmp_path / "verdicts.db"), tmp_path / "go"
    process = start_writer(url, "victim", 1_000_000, go)
    go.touch()
    committed = 0
    assert process.stdout is not None
    while committed < 150:
        committed = int(process.stdout.readline())
    process.send_signal(signal.SIGKILL)  # mid-run: no cleanup, no checkpoint
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    for line in process.stdout:  # commits confirmed before the kill but not read yet
        committed = int(line)
    with VerdictStore(url) as opened:
        count = opened.count()
        assert committed <= count <= committed + 1  # at most the verdict in flight is lost
        assert set(opened.all()["dialogue_id"]) >= {f"victim-{i}" for i in range(committed)}
        give(opened, "asr", dialogue="after-the-crash")
        assert opened.count() == count + 1
        with opened.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_readers_are_not_blocked_by_a_busy_writer(tmp_path: Path) -> None:
    url, go = url_of(tmp_path / "verdicts.db"), tmp_path / "go"
    VerdictStore(url).close()
    process = start_writer(url, "busy", 300, go)
    go.touch()
    reads = 0
    with VerdictStore(url) as reader:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            reader.latest()
            reads += 1
    process.communicate(timeout=30)
    assert process.returncode == 0 and reads > 0
