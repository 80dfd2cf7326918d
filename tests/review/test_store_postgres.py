"""The verdict store on a real PostgreSQL server: what tests/review/test_store.py checks on SQLite, on a team database.

Needs `FPI_TEST_PG_URL`, a SQLAlchemy URL of a server where the user may create databases, e.g. from
`bash .ci/postgres start /tmp/fpi-pg/server` (what `.ci/run` does); each test gets a database of its own.
Without it, or without the psycopg driver, every test here is skipped.
"""
from __future__ import annotations

import os
import signal
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

import fpi.review.store as store_module
from fpi.errors import StoreError
from fpi.review.agreement import agreement, training_verdicts
from fpi.review.store import SCHEMA_VERSION, VerdictStore
from test_store import start_writer

SERVER = os.environ.get("FPI_TEST_PG_URL", "")
DATASET = "b" * 64
T0 = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)

try:
    import psycopg  # noqa: F401 - only whether the driver is there
    DRIVER = True
except ImportError:
    DRIVER = False

pytestmark = pytest.mark.skipif(not SERVER or not DRIVER, reason="no PostgreSQL server: set FPI_TEST_PG_URL "
                                "(e.g. `bash .ci/postgres start DIR`) and pip install 'psycopg[binary]'")


@pytest.fixture()
def url() -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards."""
    name = f"fpi_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def give(store: VerdictStore, label: str, *, dialogue: str = "d1", turn: int = 0, analyst: str = "ana",
         at: datetime | None = None):
    return store.record(dataset=DATASET, dialogue_id=dialogue, turn_index=turn, label=label, analyst=analyst,
                        predicted_label="asr", model_version="abc", at=at)


def test_verdicts_round_trip_with_their_times(url: str) -> None:
    with VerdictStore(url) as store:
        assert store.dialect == "postgresql" and store.schema_version() == SCHEMA_VERSION
        give(store, "asr", at=T0)
        give(store, "nlu", at=T0 + timedelta(minutes=1))
        give(store, "er", dialogue="d2", analyst="bo", at=T0)
        latest = store.latest()
        assert list(zip(latest["dialogue_id"], latest["label"])) == [("d1", "nlu"), ("d2", "er")]
        assert list(store.history("d1", 0)["label"]) == ["asr", "nlu"]
        assert store.history("d1", 0)["created_at"].iloc[0] == T0  # time zone kept
        assert store.count(dataset=DATASET) == 3 and store.reviewed(dataset=DATASET) == {("d1", 0), ("d2", 0)}
        assert len(store.judged(dataset=DATASET)) == 2
        with pytest.raises(StoreError, match="no visible character"):
            give(store, "asr", analyst="\u200b")
        assert store.count() == 3


def test_schema_versions_new_migrated_and_refused(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a database written by the first fpi: verdicts only
        store_module.schema_version_table.create(conn)
        store_module.verdicts_table.create(conn)
        conn.execute(sa.insert(store_module.schema_version_table).values(
            version=1, description="verdicts", applied_at=T0))
    with VerdictStore(url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        give(store, "asr")
        store.log_event(action="activate", actor="lead", role="maintainer", allowed=True, to_version="v1")
    with engine.begin() as conn:
        versions = [r[0] for r in conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version"))]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        conn.execute(sa.insert(store_module.schema_version_table).values(
            version=99, description="from the future", applied_at=T0))
    engine.dispose()
    with pytest.raises(StoreError, match="schema version 99, newer than this fpi understands"):
        VerdictStore(url)


def test_an_unversioned_verdicts_table_is_not_touched(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE verdicts (x TEXT)")
    with pytest.raises(StoreError, match="no schema_version table"):
        VerdictStore(url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["verdicts"]
    engine.dispose()


def test_concurrent_writer_processes_lose_nothing(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    VerdictStore(url).close()
    writers, per_writer = 4, 100
    processes = [start_writer(url, f"w{k}", per_writer, go) for k in range(writers)]
    go.touch()
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0 and out.split()[-1] == str(per_writer)
    with VerdictStore(url) as store:
        rows = store.all()
    assert len(rows) == writers * per_writer and rows["id"].is_unique
    assert rows.groupby("analyst").size().to_dict() == {f"w{k}": per_writer for k in range(writers)}


def test_two_processes_creating_a_new_database_at_once(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    processes = [start_writer(url, f"first{k}", 5, go) for k in range(3)]  # each opens (and migrates) first
    go.touch()
    for process in processes:
        process.communicate(timeout=120)
        assert process.returncode == 0
    with VerdictStore(url) as store:
        assert store.count() == 15 and store.schema_version() == SCHEMA_VERSION


def test_a_killed_writer_leaves_every_committed_verdict(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    process = start_writer(url, "victim", 1_000_000, go)
    go.touch()
    committed = 0
    assert process.stdout is not None
    while committed < 100:
        committed = int(process.stdout.readline())
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    for line in process.stdout:
        committed = int(line)
    with VerdictStore(url) as store:
        count = store.count()
        assert committed <= count <= committed + 1
        assert set(store.all()["dialogue_id"]) >= {f"victim-{i}" for i in range(committed)}
        give(store, "asr", dialogue="after-the-crash")
        assert store.count() == count + 1


def test_agreement_adjudication_log_split_and_skips(url: str) -> None:
    with VerdictStore(url) as store:
        for i, (a, b) in enumerate([("asr", "asr"), ("nlu", "asr"), ("er", "er"), ("correct", "correct")]):
            give(store, a, dialogue=f"d{i}", analyst="ana", at=T0 + timedelta(minutes=i))
            give(store, b, dialogue=f"d{i}", analyst="bo", at=T0 + timedelta(minutes=i, seconds=30))
        report = agreement(store.all(), store.adjudications())
        assert report.method == "cohen" and report.overlap_turns == 4
        assert list(report.disagreements["dialogue_id"]) == ["d1"]
        store.adjudicate(dataset=DATASET, dialogue_id="d1", turn_index=0, label="nlu", analyst="lead")
        kept, held = training_verdicts(store.all(), store.adjudications())
        assert held.empty and kept.set_index("dialogue_id").loc["d1", "label"] == "nlu"
        store.log_event(action="rollback", actor="lead", role="maintainer", allowed=True, from_version="v2",
                        to_version="v1")
        assert list(store.events()["allowed"]) == [True]
        store.save_split(dataset=DATASET, analysts=["ana", "bo"], by="round_robin", column=None, created_by="lead")
        assert store.split(dataset=DATASET)["analysts"] == ["ana", "bo"]
        store.skip(dataset=DATASET, dialogue_id="d0", turn_index=0, analyst="ana")
        assert list(store.skips(dataset=DATASET)["analyst"]) == ["ana"]
