"""Models trained in the app, kept under `FPI_HOME/models/<version>/`, and which one is active.

The active model is, in order: the version named in `FPI_HOME/models/active.json`
(when that directory still holds a model), else `FPI_MODEL`, else the shipped
`models/default`. `active.json` is replaced atomically (`fpi.data.files.atomic_write`)
and keeps the history of activations, so `rollback` can go back one step. The
shipped model is never written to: it is always reachable as version `default`.
Activation and rollback read, change and write `active.json` holding an
exclusive lock on `models/.active.lock`, so two at once (threads, processes,
app sessions) both land in the history instead of one overwriting the other.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from fpi.config import SHIPPED_MODEL, Config
from fpi.errors import ModelError
from fpi.data.files import atomic_write

__all__ = ["ACTIVE_FILE", "DEFAULT", "ModelEntry", "Registry"]

ACTIVE_FILE = "active.json"
LOCK_FILE = ".active.lock"
DEFAULT = "default"
"""The version name of the configured default model (FPI_MODEL or the shipped one)."""
META_FILE = "meta.json"


@dataclass(frozen=True)
class ModelEntry:
    version: str
    path: Path
    meta: dict[str, Any]
    active: bool

    @property
    def trained_at(self) -> str:
        return str(self.meta.get("trained_at", ""))

    @property
    def sha256(self) -> str:
        return str(self.meta.get("model_sha256", ""))


def read_meta(path: Path) -> dict[str, Any]:
    """A model directory's meta.json, or {} when it has none or it is unreadable."""
    try:
        return dict(json.loads((path / META_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


class Registry:
    """The model store of one FPI_HOME."""

    def __init__(self, home: Path, *, default_model: Path = SHIPPED_MODEL) -> None:
        self.home = Path(home)
        self.root = self.home / "models"
        self.default_model = Path(default_model)

    @classmethod
    def from_config(cls, config: Config | None = None) -> Registry:
        config = config or Config.from_env()
        return cls(config.home, default_model=config.default_model)

    # -- reading ------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / ACTIVE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"version": DEFAULT, "history": []}
        history = [str(v) for v in data.get("history", []) if isinstance(v, str)]
        return {"version": str(data.get("version") or DEFAULT), "history": history}

    def path_of(self, version: str) -> Path:
        if version == DEFAULT:
            return self.default_model
        if not version or "/" in version or "\\" in version or version.startswith("."):
            raise ModelError(f"'{version}' is not a model version name")
        return self.root / version

    def _usable(self, version: str) -> bool:
        return (self.path_of(version) / META_FILE).is_file()

    def active_version(self) -> str:
        """The version in active.json if its directory still holds a model, else `default`."""
        version = self._state()["version"]
        return version if version != DEFAULT and self._usable(version) else DEFAULT

    def active_path(self) -> Path:
        return self.path_of(self.active_version())

    def versions(self) -> list[ModelEntry]:
        """Every model: the default first, then trained ones, newest first."""
        active = self.active_version()
        entries = [ModelEntry(DEFAULT, self.default_model, read_meta(self.default_model), active == DEFAULT)]
        trained = []
        if self.root.is_dir():
            for path in self.root.iterdir():
                if path.is_dir() and not path.name.startswith(".") and (path / META_FILE).is_file():
                    trained.append(ModelEntry(path.name, path, read_meta(path), active == path.name))
        trained.sort(key=lambda e: (e.trained_at, e.version), reverse=True)
        return entries + trained

    def locate(self, model_version: str) -> ModelEntry | None:
        """The entry whose model file's sha256 starts with `model_version` (a model's `.version`), if any.

        Finds the model a retrained one was continued from, whichever registry name it has.
        """
        if not model_version:
            return None
        for entry in self.versions():
            if entry.sha256.startswith(model_version):
                return entry
        return None

    def history(self) -> list[str]:
        """Versions activated before the current one, oldest first."""
        return list(self._state()["history"])

    # -- writing ------------------------------------------------------------------

    def save_candidate(self, model: Any) -> ModelEntry:
        """Save a trained model under its version (the sha prefix of its model file); not activated.

        Saving the same model twice keeps the first copy.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".candidate-{uuid.uuid4().hex}"
        try:
            model.save(staging)
            version = str(model.meta.get("model_sha256", ""))[:12]
            if not version:
                raise ModelError("the saved model has no model_sha256 in its meta", path=str(staging))
            target = self.path_of(version)
            self._refuse_default(target)
            if target.exists():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        model.path = target
        return ModelEntry(version, target, read_meta(target), self.active_version() == version)

    def activate(self, version: str) -> str:
        """Make `version` the active model; the one active before is remembered for `rollback` and returned.

        A trained version is loaded first (in a child process): an entry that cannot be loaded
        is never activated, so one bad model directory cannot break every session of the app.
        """
        if version != DEFAULT and not self._usable(version):
            raise ModelError(f"there is no model '{version}' in {self.root}", path=str(self.path_of(version)))
        if version != DEFAULT:
            from fpi.model.persistence import load_problem  # the model module is heavy; the registry is read often

            problem = load_problem(self.path_of(version))
            if problem is not None:
                raise ModelError(f"model '{version}' cannot be loaded, so it was not activated: {problem}",
                                 path=str(self.path_of(version)))
        with self._locked():
            state = self._state()
            current = self.active_version()
            if current != version:
                self._write_state({"version": version, "history": [*state["history"], current][-50:]})
            return current

    def rollback(self) -> str:
        """Re-activate the model that was active before the current one; returns its version."""
        return self.rollback_change()[1]

    def rollback_change(self) -> tuple[str, str]:
        """Roll back as `rollback` does; returns (the version active before, the version active now)."""
        with self._locked():
            current = self.active_version()
            history = list(self._state()["history"])
            while history:
                previous = history.pop()
                if previous == DEFAULT or self._usable(previous):
                    self._write_state({"version": previous, "history": history})
                    return current, previous
        raise ModelError("there is no earlier model to roll back to")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the registry's exclusive lock: one read-modify-write of active.json at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a+b") as handle:
            if sys.platform == "win32":  # pragma: no cover - the servers are POSIX
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                try:
                    yield
                finally:
                    handle.seek(0)
                    msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _refuse_default(self, target: Path) -> None:
        with contextlib.suppress(OSError):
            for protected in {SHIPPED_MODEL.resolve(), self.default_model.resolve()}:
                if target.resolve() == protected:
                    raise ModelError("refusing to overwrite the default model", path=str(target))

    def _write_state(self, state: dict[str, Any]) -> None:
        payload = {**state, "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        text = json.dumps(payload, indent=2) + "\n"
        atomic_write(self.root / ACTIVE_FILE, lambda handle: handle.write(text.encode("utf-8")))
