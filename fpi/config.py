"""Configuration in one place, with environment overrides.

| variable      | default                   | meaning                                   |
|---------------|---------------------------|-------------------------------------------|
| `FPI_HOME`    | `./.fpi`                  | workspace: verdict database, user models  |
| `FPI_DB_URL`  | SQLite file in `FPI_HOME` | SQLAlchemy URL of the verdict store       |
| `FPI_MODEL`   | `models/default`          | model used when none is named             |
| `FPI_DATA_DIR`| the working directory     | the app opens scored files by path only here |
| `FPI_MAX_UPLOAD_ROWS` | 500000            | turns an upload may hold in the app        |
| `FPI_MAX_UPLOAD_MB` | 1024                | its values' decompressed size, in MB       |
| `FPI_COMPILED`| `1`                       | `0`: never build or load compiled forests (score with `Booster.predict`) |
| `FPI_MAINTAINERS` | (none)                | comma-separated e-mails of maintainers when login is configured |
| `FPI_MAINTAINER_TOKEN` | (none)           | without login: the token that makes a session a maintainer; unset: model changes are off in the app |
| `FPI_OVERLAP_SHARE` | `0.10`              | share of queue turns a second analyst judges blind, for agreement |
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = REPO_ROOT / "models" / "default"
SAMPLE_DIR = REPO_ROOT / "sample_traces"
SAMPLE_LABELLED = SAMPLE_DIR / "labelled.csv"
SAMPLE_UNLABELLED = SAMPLE_DIR / "unlabelled.csv"


@dataclass(frozen=True)
class Config:
    home: Path
    db_url: str
    default_model: Path
    data_dir: Path
    max_upload_rows: int = 500_000
    """Above this many turns the app refuses an upload and points to `fpi predict` (out of core):
    in memory a turn costs ~3 KB once scored and explained (1M turns took the server to 3.1 GB)."""
    max_upload_bytes: int = 1024 * 1_000_000
    """Decompressed size of an upload's values: a small Parquet file can unpack to gigabytes."""
    compiled: bool = True
    """Score with the compiled forest cached in `home/compiled` when there is one (`fpi.model.compiled`)."""

    maintainers: tuple[str, ...] = ()
    """E-mails (lower case) of the maintainers, matched against a verified e-mail claim when login is on."""
    maintainer_token: str | None = field(default=None, repr=False)
    """Without login: typing this token makes a session a maintainer. None: nobody can change models in the app."""
    overlap_share: float = 0.10
    """Share of the queue's turns shown to a second analyst, blind, so agreement can be measured."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("FPI_HOME", ".fpi")).expanduser()
        db_url = env.get("FPI_DB_URL") or f"sqlite:///{(home / 'fpi.sqlite3').as_posix()}"
        model = Path(env["FPI_MODEL"]).expanduser() if env.get("FPI_MODEL") else SHIPPED_MODEL
        data_dir = Path(env.get("FPI_DATA_DIR") or Path.cwd()).expanduser()
        compiled = env.get("FPI_COMPILED", "1").strip().lower() not in ("0", "off", "false", "no")
        return cls(home=home, db_url=db_url, default_model=model, data_dir=data_dir, compiled=compiled,
                   max_upload_rows=_positive_int(env, "FPI_MAX_UPLOAD_ROWS", 500_000),
                   maintainers=tuple(sorted({e.strip().lower() for e in env.get("FPI_MAINTAINERS", "").split(",")
                                             if e.strip()})),
                   maintainer_token=env.get("FPI_MAINTAINER_TOKEN", "").strip() or None,
                   overlap_share=_share(env, "FPI_OVERLAP_SHARE", 0.10),
                   max_upload_bytes=_positive_int(env, "FPI_MAX_UPLOAD_MB", 1024) * 1_000_000)


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    """An integer setting; anything but a whole number above 0 keeps the default (never lifts a limit)."""
    text = env.get(name, "").strip().replace("_", "")
    return int(text) if text.isdigit() and int(text) > 0 else default


def _share(env: dict[str, str], name: str, default: float) -> float:
    """A share between 0 and 1; anything else keeps the default."""
    try:
        value = float(env.get(name, "").strip())
    except ValueError:
        return default
    return value if 0.0 <= value <= 1.0 else default
