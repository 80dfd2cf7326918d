"""Roles and the model log: who may change the model, what is recorded, names that are not names, locking."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from fpi.config import Config
from fpi.errors import PermissionDeniedError, StoreError
from fpi.model.estimator import FailurePointModel, TrainConfig
from fpi.model.registry import DEFAULT, Registry
from fpi.review.names import clean_name
from fpi.review.roles import (
    ANALYST, MAINTAINER, Actor, RolePolicy, activate_model, identity_from_claims, rollback_model, verified_email,
)
from fpi.review.store import VerdictStore
from fpi.simulator.simulate import simulate

QUICK = TrainConfig(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5, seed=0, num_threads=1)
DATASET = "f" * 64


@pytest.fixture(scope="module")
def model() -> FailurePointModel:
    return FailurePointModel(config=QUICK).fit(simulate(300, seed=3))


@pytest.fixture()
def store(tmp_path: Path):
    with VerdictStore(f"sqlite:///{(tmp_path / 'fpi.sqlite3').as_posix()}") as opened:
        yield opened


@pytest.fixture()
def registry(tmp_path: Path, model: FailurePointModel) -> Registry:
    shipped = tmp_path / "shipped"
    model.save(shipped)
    return Registry(tmp_path / "home", default_model=shipped)


def copies(registry: Registry, n: int) -> list[str]:
    """`n` registry versions (copies of the shipped model under other names): real, loadable models."""
    names = [f"v{i}" for i in range(n)]
    for name in names:
        shutil.copytree(registry.default_model, registry.root / name)
    return names


# ---------------------------------------------------------------- names

@pytest.mark.parametrize("name", ["", "   ", "\u200b", "\u200b \u200d\u2060", "\t\n", "\u202e", "\u00a0"])
def test_invisible_names_are_refused(name: str, store: VerdictStore) -> None:
    with pytest.raises(ValueError, match="no visible character"):
        clean_name(name)
    with pytest.raises(StoreError, match="no visible character"):
        store.record(dataset=DATASET, dialogue_id="d1", turn_index=0, label="asr", analyst=name)
    assert store.count() == 0


def test_names_are_trimmed_of_invisible_ends_and_control_characters_refused(store: VerdictStore) -> None:
    assert clean_name("  \u200bAna Lima\u200b ") == "Ana Lima"
    assert store.record(dataset=DATASET, dialogue_id="d1", turn_index=0, label="asr",
                        analyst="\u200b ana@example.com ").analyst == "ana@example.com"
    with pytest.raises(ValueError, match="control character"):
        clean_name("ana\x1b[31m")


# ---------------------------------------------------------------- who is a maintainer

def test_with_login_only_a_verified_listed_email_is_a_maintainer() -> None:
    policy = RolePolicy(login=True, maintainers=frozenset({"lead@example.com"}))
    verified = policy.actor_from_claims({"email": "Lead@Example.com", "email_verified": True})
    assert verified == Actor("lead@example.com", MAINTAINER, "login")
    unverified = policy.actor_from_claims({"email": "lead@example.com", "email_verified": False, "name": "Lead"})
    assert unverified is not None and unverified.role == ANALYST and unverified.name == "Lead"
    no_flag = policy.actor_from_claims({"email": "lead@example.com", "sub": "1234"})
    assert no_flag == Actor("1234", ANALYST, "login")  # the unverified e-mail does not even name the user
    assert verified_email({"email": "a@b.c", "email_verified": "true"}) == "a@b.c"  # Cognito sends a string
    assert identity_from_claims({"email": "a@b.c", "name": "\u200b"}) is None
    assert RolePolicy(login=True).why_no_maintainers() is not None


def test_without_login_the_token_makes_a_maintainer_and_no_token_means_nobody() -> None:
    policy = RolePolicy(login=False, token="s3cret-token")
    assert policy.actor_from_session("Ana", "s3cret-token").role == MAINTAINER
    assert policy.actor_from_session("Ana", "wrong").role == ANALYST
    assert policy.actor_from_session("Ana", None).role == ANALYST
    assert "s3cret" not in repr(policy)
    off = RolePolicy(login=False, token=None)
    assert off.actor_from_session("Ana", "").role == ANALYST
    assert "FPI_MAINTAINER_TOKEN" in (off.why_no_maintainers() or "")
    config = Config.from_env({"FPI_MAINTAINERS": " Lead@Example.com,ops@example.com ,",
                              "FPI_MAINTAINER_TOKEN": " t0k "})
    assert config.maintainers == ("lead@example.com", "ops@example.com") and config.maintainer_token == "t0k"
    assert "t0k" not in repr(config)


# ---------------------------------------------------------------- the log

def test_an_analyst_cannot_activate_a_maintainer_can_and_the_log_has_both(
        registry: Registry, store: VerdictStore) -> None:
    [version] = copies(registry, 1)
    with pytest.raises(PermissionDeniedError, match="only a maintainer may activate a model; Ana is an analyst"):
        activate_model(registry, store, Actor("Ana", ANALYST), version)
    assert registry.active_version() == DEFAULT
    assert activate_model(registry, store, Actor("lead@example.com", MAINTAINER, "login"), version) == DEFAULT
    assert registry.active_version() == version
    with pytest.raises(PermissionDeniedError):
        rollback_model(registry, store, Actor("Ana", ANALYST))
    assert rollback_model(registry, store, Actor("lead@example.com", MAINTAINER, "login")) == DEFAULT
    log = store.events().iloc[::-1]  # oldest first
    assert list(log["action"]) == ["activate", "activate", "rollback", "rollback"]
    assert list(log["actor"]) == ["Ana", "lead@example.com", "Ana", "lead@example.com"]
    assert list(log["allowed"]) == [False, True, False, True]
    assert list(log["from_version"].fillna("-")) == ["-", DEFAULT, "-", version]
    assert list(log["to_version"].fillna("-")) == [version, version, "-", DEFAULT]
    assert log["created_at"].notna().all()


def test_concurrent_activations_lose_nothing(registry: Registry) -> None:
    versions = copies(registry, 6)
    barrier = threading.Barrier(len(versions))
    errors: list[BaseException] = []

    def go(version: str) -> None:
        try:
            barrier.wait()
            registry.activate(version)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    seen = [*registry.history(), registry.active_version()]
    assert sorted(seen) == sorted([DEFAULT, *versions])  # every activation is in the history, once
