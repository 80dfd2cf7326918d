"""The store's tables for reviewing as a team: adjudications, the model log, splits and skips.

`VerdictStore` inherits `TeamRecords`, so these are methods of the store; the
tables are created by the store's schema version 2 (`create_team_tables`).
Like the verdicts, every row is appended, never changed: the newest counts.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fpi.data.schema import LABELS, MAX_ID_CHARS
from fpi.errors import StoreError
from fpi.review.names import MAX_NAME, clean_name

__all__ = ["ADJUDICATION_COLUMNS", "EVENT_COLUMNS", "TeamRecords", "create_team_tables"]

team_metadata = sa.MetaData()

ADJUDICATION_COLUMNS: tuple[str, ...] = (
    "id", "dataset_fingerprint", "dialogue_id", "turn_index", "label", "analyst", "note", "created_at",
)
EVENT_COLUMNS: tuple[str, ...] = (
    "id", "action", "actor", "role", "allowed", "from_version", "to_version", "detail", "created_at",
)

adjudications_table = sa.Table(
    "adjudications", team_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_fingerprint", sa.String(64), nullable=False),
    sa.Column("dialogue_id", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("turn_index", sa.Integer, nullable=False),
    sa.Column("label", sa.String(16), nullable=False),
    sa.Column("analyst", sa.String(MAX_NAME), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("label IN (" + ", ".join(f"'{label}'" for label in LABELS) + ")",
                       name="ck_adjudication_label"),
    sa.Index("ix_adjudications_turn", "dataset_fingerprint", "dialogue_id", "turn_index", "id"),
)
"""The final word on a turn the analysts disagreed on, or a verdict the audit flagged and a person confirmed
(`fpi.review.agreement`): it beats every verdict on the turn when retraining."""

model_events_table = sa.Table(
    "model_events", team_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(MAX_NAME), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("allowed", sa.Boolean, nullable=False),
    sa.Column("from_version", sa.String(64), nullable=True),
    sa.Column("to_version", sa.String(64), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
"""Every attempt to train, activate, roll back or delete (allowed or refused): who, when, from, to."""

splits_table = sa.Table(
    "splits", team_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_fingerprint", sa.String(64), nullable=False),
    sa.Column("analysts", sa.Text, nullable=False),
    sa.Column("split_by", sa.String(32), nullable=False),
    sa.Column("split_column", sa.String(200), nullable=True),
    sa.Column("created_by", sa.String(MAX_NAME), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_splits_dataset", "dataset_fingerprint", "id"),
)
"""How a dataset's turns are shared among analysts (`fpi.review.assignment`); the newest row counts."""

skips_table = sa.Table(
    "skips", team_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_fingerprint", sa.String(64), nullable=False),
    sa.Column("dialogue_id", sa.String(MAX_ID_CHARS), nullable=False),
    sa.Column("turn_index", sa.Integer, nullable=False),
    sa.Column("analyst", sa.String(MAX_NAME), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_skips_dataset", "dataset_fingerprint", "dialogue_id", "turn_index"),
)
"""Turns an analyst skipped: they go back to the pool for the others."""


def create_team_tables(conn: Connection) -> None:
    """Schema version 2: the four team tables with their indexes."""
    for table in (adjudications_table, model_events_table, splits_table, skips_table):
        table.create(conn)


def _utc(value: datetime) -> datetime:
    """Aware UTC; a naive value (SQLite keeps no offset) is UTC already."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _who(name: str) -> str:
    try:
        return clean_name(name)
    except ValueError as exc:
        raise StoreError(f"a name is needed: {exc}") from None


class TeamRecords:
    """The team tables' methods of `VerdictStore` (which provides the engine, the writer and the guard)."""

    engine: Engine
    _writer: Engine

    def _guard(self, action: Callable[[], Any], what: str) -> Any:  # pragma: no cover - VerdictStore's
        raise NotImplementedError

    def _check_row(self, **values: Any) -> dict[str, Any]:  # pragma: no cover - VerdictStore's
        raise NotImplementedError

    def adjudicate(self, *, dataset: str, dialogue_id: str, turn_index: int, label: str, analyst: str,
                   note: str | None = None, at: datetime | None = None) -> int:
        """Record the final label of a turn (after a disagreement or an audit flag); returns its id."""
        row = self._check_row(dataset=dataset, dialogue_id=dialogue_id, turn_index=turn_index, label=label,
                              analyst=analyst, note=note, at=at)
        values = {k: row[k] for k in ADJUDICATION_COLUMNS if k != "id"}

        def write() -> int:
            with self._writer.begin() as conn:
                return int(conn.execute(sa.insert(adjudications_table).values(**values)).inserted_primary_key[0])
        return self._guard(write, "save the adjudication")

    def adjudications(self, *, dataset: str | None = None) -> pd.DataFrame:
        """Every adjudication (optionally for one dataset), oldest first."""
        query = sa.select(adjudications_table).order_by(adjudications_table.c.id)
        if dataset is not None:
            query = query.where(adjudications_table.c.dataset_fingerprint == dataset)

        def read() -> pd.DataFrame:
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            frame = pd.DataFrame([dict(r) for r in rows], columns=list(ADJUDICATION_COLUMNS))
            frame["id"] = frame["id"].astype("int64")
            frame["turn_index"] = frame["turn_index"].astype("int64")
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True).dt.as_unit("us")
            return frame
        return self._guard(read, "read adjudications")

    def log_event(self, *, action: str, actor: str, role: str, allowed: bool, from_version: str | None = None,
                  to_version: str | None = None, detail: str | None = None, at: datetime | None = None) -> None:
        """Append one entry to the model log (committed when this returns)."""
        values = {"action": action[:32], "actor": (actor or "").strip()[:MAX_NAME] or "unknown",
                  "role": role[:16], "allowed": bool(allowed), "from_version": from_version,
                  "to_version": to_version, "detail": detail,
                  "created_at": _utc(at) if at is not None else datetime.now(timezone.utc)}

        def write() -> None:
            with self._writer.begin() as conn:
                conn.execute(sa.insert(model_events_table).values(**values))
        self._guard(write, "record the model change")

    def events(self, *, limit: int | None = None) -> pd.DataFrame:
        """The model log, newest first."""
        query = sa.select(model_events_table).order_by(model_events_table.c.id.desc())
        if limit is not None:
            query = query.limit(limit)

        def read() -> pd.DataFrame:
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            frame = pd.DataFrame([dict(r) for r in rows], columns=list(EVENT_COLUMNS))
            frame["allowed"] = frame["allowed"].astype("bool")
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True).dt.as_unit("us")
            return frame
        return self._guard(read, "read the model log")

    def save_split(self, *, dataset: str, analysts: Iterable[str], by: str, column: str | None,
                   created_by: str) -> None:
        """Record how `dataset`'s turns are shared out (the newest split counts)."""
        names = [_who(a) for a in analysts]
        values = {"dataset_fingerprint": dataset, "analysts": json.dumps(names), "split_by": by,
                  "split_column": column, "created_by": _who(created_by),
                  "created_at": datetime.now(timezone.utc)}

        def write() -> None:
            with self._writer.begin() as conn:
                conn.execute(sa.insert(splits_table).values(**values))
        self._guard(write, "save the split")

    def split(self, *, dataset: str) -> dict[str, Any] | None:
        """The newest split of `dataset`: {"analysts": [...], "by": ..., "column": ..., "created_by": ...}."""
        t = splits_table.c
        query = sa.select(splits_table).where(t.dataset_fingerprint == dataset).order_by(t.id.desc()).limit(1)

        def read() -> dict[str, Any] | None:
            with self.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
            if row is None:
                return None
            return {"analysts": list(json.loads(row["analysts"])), "by": row["split_by"],
                    "column": row["split_column"], "created_by": row["created_by"],
                    "created_at": _utc(row["created_at"])}
        return self._guard(read, "read the split")

    def skip(self, *, dataset: str, dialogue_id: str, turn_index: int, analyst: str) -> None:
        """Record that `analyst` skipped a turn: it goes back to the pool."""
        values = {"dataset_fingerprint": dataset, "dialogue_id": str(dialogue_id), "turn_index": int(turn_index),
                  "analyst": _who(analyst), "created_at": datetime.now(timezone.utc)}

        def write() -> None:
            with self._writer.begin() as conn:
                conn.execute(sa.insert(skips_table).values(**values))
        self._guard(write, "save the skip")

    def skips(self, *, dataset: str) -> pd.DataFrame:
        """(dialogue_id, turn_index, analyst) of every turn of `dataset` someone skipped, once each."""
        t = skips_table.c
        query = sa.select(t.dialogue_id, t.turn_index, t.analyst).where(t.dataset_fingerprint == dataset).distinct()

        return self._turns_by_analyst(query, "read the skips")

    def _turns_by_analyst(self, query: sa.Select, what: str) -> pd.DataFrame:
        """The (dialogue_id, turn_index, analyst) rows `query` selects, typed: skips and verdicts read alike."""
        def read() -> pd.DataFrame:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            return pd.DataFrame([tuple(r) for r in rows], columns=["dialogue_id", "turn_index", "analyst"]).astype(
                {"dialogue_id": "str", "turn_index": "int64", "analyst": "str"})
        return self._guard(read, what)
