"""Uploaded datasets kept on the server, so a link (`?dataset=<fingerprint>`) opens them in any session.

Each dataset lives in `FPI_HOME/datasets/<fingerprint>/`: the file exactly as uploaded (so it
validates, scores and fingerprints the same way again), the column mapping it was read with, and
the active model's scores at upload time. A dataset directory is written complete in a temporary
directory beside it and renamed into place, so a reader never sees half a dataset. The store has a
size cap: saving evicts the least recently opened datasets until it fits, and refuses a single
dataset bigger than the cap.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from fpi.errors import FpiError

DEFAULT_MAX_BYTES = 2 * 1024**3
"""2 GB of datasets by default (`FPI_DATASETS_MAX_MB` overrides)."""
FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
META = "meta.json"


class DatasetError(FpiError):
    """A dataset could not be kept, found or read."""


@dataclass(frozen=True)
class StoredDataset:
    fingerprint: str
    path: Path
    name: str
    """The file name it was uploaded as."""
    turns: int
    size_bytes: int
    saved_at: str
    """UTC, ISO-8601."""
    opened_at: float
    """Last time it was saved or opened (epoch seconds): eviction takes the oldest first."""
    column_map: dict[str, str]

    @property
    def traces_path(self) -> Path:
        return next(p for p in self.path.iterdir() if p.name.startswith("traces."))


def max_bytes_from_env(env: Mapping[str, str] | None = None) -> int:
    value = (env if env is not None else os.environ).get("FPI_DATASETS_MAX_MB")
    return int(float(value) * 1024**2) if value else DEFAULT_MAX_BYTES


def check_fingerprint(fingerprint: str) -> str:
    """The fingerprint if it is 64 hex digits (it names a directory: nothing else may get through)."""
    if not isinstance(fingerprint, str) or not FINGERPRINT.match(fingerprint):
        raise DatasetError(f"not a dataset fingerprint: {str(fingerprint)[:80]!r}")
    return fingerprint


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class DatasetStore:
    """The datasets under one root (normally `FPI_HOME/datasets`)."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)

    def _dir(self, fingerprint: str) -> Path:
        return self.root / check_fingerprint(fingerprint)

    def save(self, data: bytes, *, fingerprint: str, name: str, column_map: Mapping[str, str] | None = None,
             scores: pd.DataFrame | None = None, model_version: str | None = None) -> StoredDataset:
        """Keep the uploaded bytes (and scores) under the fingerprint; a dataset already kept is only touched.

        Raises `DatasetError` when the dataset alone is bigger than the cap.
        """
        target = self._dir(fingerprint)
        if (target / META).is_file():
            return self.touch(fingerprint)
        if len(data) > self.max_bytes:
            raise DatasetError(f"the file is {len(data) / 1024**2:,.0f} MB, more than the "
                               f"{self.max_bytes / 1024**2:,.0f} MB kept for shared links")
        self.root.mkdir(parents=True, exist_ok=True)
        suffix = "parquet" if data[:4] == b"PAR1" else "csv"
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            with open(tmp / f"traces.{suffix}", "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if scores is not None:
                scores.to_parquet(tmp / "scores.parquet", index=False)
            meta = {"fingerprint": fingerprint, "name": str(name), "column_map": dict(column_map or {}),
                    "turns": int(len(scores)) if scores is not None else None,
                    "model_version": model_version,
                    "saved_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")}
            with open(tmp / META, "w", encoding="utf-8") as handle:
                json.dump(meta, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.rename(tmp, target)  # atomic: readers see all of it or none
            except OSError:
                if not (target / META).is_file():  # not a concurrent save of the same dataset
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.evict(keep=fingerprint)
        return self.get(fingerprint)

    def get(self, fingerprint: str) -> StoredDataset:
        path = self._dir(fingerprint)
        try:
            meta = json.loads((path / META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"no dataset {fingerprint[:12]}… on this server (it may have been removed)") from exc
        return StoredDataset(fingerprint=fingerprint, path=path, name=str(meta.get("name", "")),
                             turns=int(meta.get("turns") or 0), size_bytes=_size(path),
                             saved_at=str(meta.get("saved_at", "")), opened_at=(path / META).stat().st_mtime,
                             column_map={str(k): str(v) for k, v in (meta.get("column_map") or {}).items()})

    def read(self, fingerprint: str) -> tuple[StoredDataset, bytes]:
        """The dataset and its file's bytes, exactly as uploaded; marks it as recently opened."""
        dataset = self.touch(fingerprint)
        return dataset, dataset.traces_path.read_bytes()

    def touch(self, fingerprint: str) -> StoredDataset:
        meta = self._dir(fingerprint) / META
        if meta.is_file():
            now = time.time()
            os.utime(meta, (now, now))
        return self.get(fingerprint)

    def list(self) -> list[StoredDataset]:
        """Every kept dataset, most recently opened first."""
        if not self.root.is_dir():
            return []
        found = [self.get(p.name) for p in self.root.iterdir()
                 if p.is_dir() and FINGERPRINT.match(p.name) and (p / META).is_file()]
        return sorted(found, key=lambda d: d.opened_at, reverse=True)

    def remove(self, fingerprint: str) -> bool:
        """Delete a dataset (renamed away first, so no reader sees it half deleted); False if absent."""
        path = self._dir(fingerprint)
        if not path.is_dir():
            return False
        trash = Path(tempfile.mkdtemp(prefix=".rm-", dir=self.root))
        os.rename(path, trash / path.name)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def evict(self, *, keep: str | None = None) -> list[str]:
        """Remove the least recently opened datasets until the total fits the cap; returns their fingerprints."""
        datasets = self.list()
        total = sum(d.size_bytes for d in datasets)
        removed = []
        for dataset in reversed(datasets):  # oldest first
            if total <= self.max_bytes:
                break
            if dataset.fingerprint == keep:
                continue
            self.remove(dataset.fingerprint)
            total -= dataset.size_bytes
            removed.append(dataset.fingerprint)
        return removed


def store_from_env(home: Path, env: Mapping[str, str] | None = None) -> DatasetStore:
    return DatasetStore(Path(home) / "datasets", max_bytes=max_bytes_from_env(env))


def describe(datasets: list[StoredDataset]) -> list[dict[str, Any]]:
    """Rows for `fpi datasets list` (and JSON)."""
    return [{"fingerprint": d.fingerprint, "name": d.name, "turns": d.turns, "size_mb": round(d.size_bytes / 1024**2, 2),
             "saved_at": d.saved_at} for d in datasets]
