"""The verdict store: analysts' labels for turns, append-only, in a real database.

A verdict says "this turn's failure point is X", who said so and when, next to
what the model predicted. Nothing is ever updated or deleted: changing one's
mind adds a row, and the newest row per (dataset, dialogue, turn) is the one
that counts, so the full history stays auditable.

Any SQLAlchemy URL works (`FPI_DB_URL`); the default is a SQLite file in
`FPI_HOME`. Everything here is portable SQLAlchemy Core; the only SQLite-specific
statements are the PRAGMAs in the connect hook and the `BEGIN IMMEDIATE` that
makes a SQLite writer take the write lock up front:

- `journal_mode=WAL`: readers never block the writer and the writer never
  blocks readers; a crashed writer's half-written transaction is simply not in
  the log's committed part, so the file stays readable.
- `synchronous=FULL`: every commit is fsynced to the WAL before it returns, so
  a crash of the process, the OS or the power loses at most the verdict being
  written. (`NORMAL` survives a killed process too, but may lose the last
  commits on power loss; one fsync per human click costs nothing.)
- `busy_timeout`: a writer waits for another writer's lock instead of failing.

The schema is versioned in a `schema_version` table and created or migrated
when a store is opened; a database from a newer fpi is refused, not guessed at.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fpi.config import Config
from fpi.errors import StoreError
from fpi.data.schema import MAX_ID_CHARS
from fpi.data.schema import LABELS
from fpi.review.names import MAX_NAME, clean_name
from fpi.review.team_tables import ADJUDICATION_COLUMNS, EVENT_COLUMNS, TeamRecords, create_team_tables

__all__ = [
    "ADJUDICATION_COLUMNS", "EVENT_COLUMNS", "MIGRATIONS", "SCHEMA_VERSION", "VERDICT_COLUMNS", "Verdict",
    "VerdictStore", "resolve_verdicts",
]

SCHEMA_VERSION = 2
"""The schema this fpi writes; `MIGRATIONS` brings any older database up to it."""

BUSY_TIMEOUT_MS = 30_000
MAX_ANALYST = MAX_NAME
MAX_ID = MAX_ID_CHARS  # the contract bounds ids, so every loaded turn can get a verdict
MAX_NOTE = 4000

VERDICT_COLUMNS: tuple[str, ...] = (
    "id", "dataset_fingerprint", "dialogue_id", "turn_index", "label", "analyst", "note",
    "predicted_label", "model_version", "created_at",
)

metadata = sa.MetaData()

schema_version_table = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

verdicts_table = sa.Table(
    "verdicts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_fingerprint", sa.String(64), nullable=False),
    sa.Column("dialogue_id", sa.String(MAX_ID), nullable=False),
    sa.Column("turn_index", sa.Integer, nullable=False),
    sa.Column("label", sa.String(16), nullable=False),
    sa.Column("analyst", sa.String(MAX_ANALYST), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("predicted_label", sa.String(16), nullable=True),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("label IN (" + ", ".join(f"'{label}'" for label in LABELS) + ")", name="ck_verdict_label"),
    sa.CheckConstraint("length(trim(analyst)) > 0", name="ck_verdict_analyst"),
    sa.CheckConstraint("turn_index >= 0", name="ck_verdict_turn_index"),
    sa.Index("ix_verdicts_turn", "dataset_fingerprint", "dialogue_id", "turn_index", "id"),
    sa.Index("ix_verdicts_turn_any_dataset", "dialogue_id", "turn_index", "id"),
)
"""The current (version 1) table; queries use it, migrations below create or change it."""


def _migrate_to_1(conn: Connection) -> None:
    verdicts_table.create(conn)


def _migrate_to_2(conn: Connection) -> None:
    create_team_tables(conn)


Migration = tuple[int, str, Callable[[Connection], None]]

MIGRATIONS: tuple[Migration, ...] = (
    (1, "verdicts table with its indexes", _migrate_to_1),
    (2, "adjudications, model_events, splits and skips tables", _migrate_to_2),
)
"""(version, description, step): each step takes the schema from version - 1 to version.

A later version appends a step (e.g. `ALTER TABLE verdicts ADD COLUMN ...`) and
bumps `SCHEMA_VERSION`; steps already applied to a database are never rerun.
"""


@dataclass(frozen=True)
class Verdict:
    id: int
    dataset_fingerprint: str
    dialogue_id: str
    turn_index: int
    label: str
    analyst: str
    note: str | None
    predicted_label: str | None
    model_version: str | None
    created_at: datetime


def _utc(value: datetime) -> datetime:
    """Aware UTC; a naive value (SQLite keeps no offset) is UTC already."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _sqlite_on_connect(dbapi_connection: Any, record: Any) -> None:
    # The driver must not open transactions itself: the "begin" hook does, so DDL is
    # transactional and a writer can take the lock up front (BEGIN IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # first: switching to WAL may wait
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_on_connect_read_only(dbapi_connection: Any, record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only = ON")  # and never a journal-mode switch: that is a write
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # A writer that read first and then upgrades its lock can fail at once with
    # SQLITE_BUSY in WAL mode (no waiting); taking the write lock at BEGIN avoids that.
    mode = conn.get_execution_options().get("fpi_sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


class VerdictStore(TeamRecords):
    """Append-only verdicts in the database at `url`; the schema is created or migrated on open."""

    def __init__(self, url: str, *, echo: bool = False, read_only: bool = False) -> None:
        """Open (and create or migrate) the store; `read_only` opens an existing one without writing a
        byte to it: no WAL switch, no migration, so a read-only copy can still be exported."""
        self.read_only = read_only
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise StoreError(f"'{url}' is not a database URL; set FPI_DB_URL to a SQLAlchemy URL such as "
                             "sqlite:////path/verdicts.db or postgresql+psycopg://user@host/db") from exc
        self.url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        if read_only and self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            file = Path(parsed.database).expanduser()
            if not file.is_file():
                raise StoreError(f"could not open: there is no database file '{file}'", url=self.url)
            parsed = parsed.set(database=f"file:{file.as_posix()}?mode=ro", query={**parsed.query, "uri": "true"})
        elif self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"could not open: cannot create the folder '{folder}' ({exc.strerror}); "
                                 "set FPI_HOME or FPI_DB_URL to a writable place", url=self.url) from exc
        try:
            self.engine: Engine = sa.create_engine(parsed, echo=echo)
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise StoreError(f"no database driver for this URL ({exc}); install the driver package it names",
                             url=self.url) from exc
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_on_connect_read_only if read_only else _sqlite_on_connect)
            sa.event.listen(self.engine, "begin", _sqlite_on_begin)
        self._writer = self.engine.execution_options(fpi_sqlite_begin="IMMEDIATE")
        if read_only:
            self._guard(self._check_readable, "open")
            return
        try:
            self._guard(self._migrate, "open")
        except StoreError as exc:
            # Two processes creating one new server database: the loser finds the tables made. (On
            # SQLite, BEGIN IMMEDIATE already makes them take turns.)
            if not isinstance(exc.__cause__, sa.exc.DBAPIError):
                raise
            self._guard(self._migrate, "open")

    @classmethod
    def from_config(cls, config: Config | None = None, *, read_only: bool = False) -> VerdictStore:
        """The store at `FPI_DB_URL`, or the SQLite file in `FPI_HOME`."""
        return cls((config or Config.from_env()).db_url, read_only=read_only)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> VerdictStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _guard(self, action: Callable[[], Any], what: str) -> Any:
        """Run `action`, turning database failures into a `StoreError` that names the store."""
        try:
            return action()
        except StoreError:
            raise
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"could not {what} ({exc.orig})", url=self.url) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"could not {what} ({exc})", url=self.url) from exc

    # -- schema ---------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._writer.begin() as conn:  # one process at a time creates or migrates
            tables = set(sa.inspect(conn).get_table_names())
            if schema_version_table.name not in tables:
                if tables & {verdicts_table.name}:
                    raise StoreError(
                        "the database has a verdicts table but no schema_version table, so its layout is unknown; "
                        "refusing to change it. Point FPI_DB_URL at a new database, or move this one aside",
                        url=self.url)
                schema_version_table.create(conn)
                current = 0
            else:
                current = int(conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar() or 0)
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"the database has schema version {current}, newer than this fpi understands "
                    f"({SCHEMA_VERSION}); upgrade fpi, or point FPI_DB_URL at another database", url=self.url)
            for version, description, step in MIGRATIONS:
                if version > current:
                    step(conn)
                    conn.execute(sa.insert(schema_version_table).values(
                        version=version, description=description, applied_at=datetime.now(timezone.utc)))

    def _check_readable(self) -> None:
        """A read-only store must already have this fpi's layout: nothing can be created or migrated."""
        with self.engine.connect() as conn:
            if schema_version_table.name not in set(sa.inspect(conn).get_table_names()):
                raise StoreError("could not open read-only: it is not an fpi verdict store (no schema_version "
                                 "table)", url=self.url)
            current = int(conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar() or 0)
        if current != SCHEMA_VERSION:
            raise StoreError(f"could not open read-only: its schema version is {current}, this fpi reads "
                             f"{SCHEMA_VERSION}; open it once read-write with this fpi (or use the fpi that "
                             "wrote it)", url=self.url)

    def schema_version(self) -> int:
        def read() -> int:
            with self.engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar() or 0)
        return self._guard(read, "read the schema version")

    # -- writing --------------------------------------------------------------------

    def record(
        self,
        *,
        dataset: str,
        dialogue_id: str,
        turn_index: int,
        label: str,
        analyst: str,
        note: str | None = None,
        predicted_label: str | None = None,
        model_version: str | None = None,
        at: datetime | None = None,
    ) -> Verdict:
        """Append one verdict (committed and durable when this returns)."""
        row = _checked_row(dataset=dataset, dialogue_id=dialogue_id, turn_index=turn_index, label=label,
                           analyst=analyst, note=note, predicted_label=predicted_label,
                           model_version=model_version, at=at)

        def write() -> int:
            with self._writer.begin() as conn:
                return int(conn.execute(sa.insert(verdicts_table).values(**row)).inserted_primary_key[0])

        new_id = self._guard(write, "save the verdict")
        return Verdict(id=new_id, **{**row, "created_at": _utc(row["created_at"])})

    def record_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append many verdicts in one transaction (all or none); keys as `record`'s arguments."""
        checked = [_checked_row(**dict(r)) for r in rows]
        if not checked:
            return 0

        def write() -> None:
            with self._writer.begin() as conn:
                conn.execute(sa.insert(verdicts_table), checked)

        self._guard(write, "save the verdicts")
        return len(checked)

    def _check_row(self, **values: Any) -> dict[str, Any]:
        """A row checked as a verdict is (the team tables' adjudications use it)."""
        return _checked_row(**values)

    # -- reading --------------------------------------------------------------------

    def _frame(self, query: sa.Select) -> pd.DataFrame:
        def read() -> pd.DataFrame:
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            return _to_frame(rows)
        return self._guard(read, "read verdicts")

    def all(self, *, dataset: str | None = None) -> pd.DataFrame:
        """Every verdict ever recorded (optionally for one dataset), oldest first."""
        query = sa.select(verdicts_table).order_by(verdicts_table.c.id)
        if dataset is not None:
            query = query.where(verdicts_table.c.dataset_fingerprint == dataset)
        return self._frame(query)

    def latest(self, *, dataset: str | None = None) -> pd.DataFrame:
        """The verdict that counts per (dataset, dialogue, turn): the newest one."""
        v = verdicts_table.c
        newest = sa.select(sa.func.max(v.id)).group_by(v.dataset_fingerprint, v.dialogue_id, v.turn_index)
        if dataset is not None:
            newest = newest.where(v.dataset_fingerprint == dataset)
        return self._frame(sa.select(verdicts_table).where(v.id.in_(newest)).order_by(v.id))

    def latest_by_turn(self, *, prefer_dataset: str | None = None) -> pd.DataFrame:
        """One verdict per (dialogue_id, turn_index) across datasets, for retraining.

        The newest verdict given on `prefer_dataset` wins; turns without one take
        the newest verdict given on any other dataset.
        """
        return resolve_verdicts(self.latest(), prefer_dataset=prefer_dataset)

    def history(self, dialogue_id: str, turn_index: int, *, dataset: str | None = None) -> pd.DataFrame:
        """Every verdict on one turn, oldest first (across datasets unless one is named)."""
        v = verdicts_table.c
        query = sa.select(verdicts_table).where(v.dialogue_id == str(dialogue_id), v.turn_index == int(turn_index))
        if dataset is not None:
            query = query.where(v.dataset_fingerprint == dataset)
        return self._frame(query.order_by(v.id))

    def count(self, *, dataset: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(verdicts_table)
        if dataset is not None:
            query = query.where(verdicts_table.c.dataset_fingerprint == dataset)

        def read() -> int:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar() or 0)
        return self._guard(read, "count verdicts")

    def reviewed(self, *, dataset: str) -> set[tuple[str, int]]:
        """The (dialogue_id, turn_index) keys of a dataset that have a verdict."""
        v = verdicts_table.c
        query = sa.select(v.dialogue_id, v.turn_index).where(v.dataset_fingerprint == dataset).distinct()

        def read() -> set[tuple[str, int]]:
            with self.engine.connect() as conn:
                return {(str(d), int(t)) for d, t in conn.execute(query)}
        return self._guard(read, "read verdicts")

    def judged(self, *, dataset: str) -> pd.DataFrame:
        """(dialogue_id, turn_index, analyst) of every turn of a dataset with a verdict, once per analyst."""
        v = verdicts_table.c
        query = sa.select(v.dialogue_id, v.turn_index, v.analyst).where(v.dataset_fingerprint == dataset).distinct()
        return self._turns_by_analyst(query, "read verdicts")


def _checked_row(
    *, dataset: str, dialogue_id: str, turn_index: int, label: str, analyst: str, note: str | None = None,
    predicted_label: str | None = None, model_version: str | None = None, at: datetime | None = None,
) -> dict[str, Any]:
    """The row to insert, or `StoreError` naming the bad value: verdicts are never anonymous."""
    try:
        who = clean_name(analyst)
    except ValueError as exc:
        raise StoreError(f"a verdict needs the analyst's name or e-mail: {exc}") from None
    if len(who) > MAX_ANALYST:
        raise StoreError(f"the analyst name is {len(who)} characters long; at most {MAX_ANALYST} are allowed")
    clean_label = str(label).strip().lower()
    if clean_label not in LABELS:
        raise StoreError(f"unknown verdict label {label!r}; expected one of {', '.join(LABELS)}")
    if predicted_label is not None and predicted_label not in LABELS:
        raise StoreError(f"unknown predicted label {predicted_label!r}; expected one of {', '.join(LABELS)}")
    if not dataset or len(dataset) > 64:
        raise StoreError(f"a verdict needs the dataset fingerprint (a sha256 hex digest); got {dataset!r}")
    dialogue = str(dialogue_id)
    if not dialogue or len(dialogue) > MAX_ID:
        raise StoreError(f"dialogue_id must have 1 to {MAX_ID} characters; got {dialogue[:40]!r}")
    if isinstance(turn_index, bool) or int(turn_index) != turn_index or int(turn_index) < 0:
        raise StoreError(f"turn_index must be a whole number >= 0; got {turn_index!r}")
    text = (note or "").strip() or None
    if text is not None and len(text) > MAX_NOTE:
        raise StoreError(f"the note is {len(text)} characters long; at most {MAX_NOTE} are allowed")
    when = _utc(at) if at is not None else datetime.now(timezone.utc)
    return {
        "dataset_fingerprint": dataset, "dialogue_id": dialogue, "turn_index": int(turn_index),
        "label": clean_label, "analyst": who, "note": text, "predicted_label": predicted_label,
        "model_version": model_version, "created_at": when,
    }


def _to_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame([dict(r) for r in rows], columns=list(VERDICT_COLUMNS))
    frame["id"] = frame["id"].astype("int64")
    frame["turn_index"] = frame["turn_index"].astype("int64")
    for column in ("dataset_fingerprint", "dialogue_id", "label", "analyst", "note", "predicted_label",
                   "model_version"):
        frame[column] = frame[column].astype("str")
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True).dt.as_unit("us")
    return frame


def resolve_verdicts(latest: pd.DataFrame, *, prefer_dataset: str | None = None) -> pd.DataFrame:
    """One verdict per (dialogue_id, turn_index) from per-dataset latest verdicts.

    A verdict on `prefer_dataset` beats verdicts on other datasets; otherwise the newest wins.
    """
    if latest.empty:
        return latest.copy()
    preferred = (latest["dataset_fingerprint"] == prefer_dataset) if prefer_dataset else False
    ranked = latest.assign(_preferred=preferred).sort_values(["_preferred", "id"])
    chosen = ranked.drop_duplicates(["dialogue_id", "turn_index"], keep="last")
    return chosen.drop(columns="_preferred").sort_values("id").reset_index(drop=True)
