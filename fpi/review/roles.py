"""Two roles, analyst and maintainer, and the log of every model change.

Analysts give verdicts. Maintainers may also change what everyone uses: train
candidates, activate a model, roll back, delete kept datasets. Who is a
maintainer depends on how the app runs:

- with login configured, the sessions whose identity provider vouches for an
  e-mail (`email_verified`) listed in `FPI_MAINTAINERS`; an unverified e-mail
  claim counts for nothing (anyone can type any address into some providers);
- without login, the sessions that typed the token in `FPI_MAINTAINER_TOKEN`;
  with no token set, model changes are off in the app (the CLI, run by whoever
  has the server's shell, is unaffected).

Every attempt to change a model is written to the store's model log, refused
ones included, with who, when and from which version to which.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from fpi.config import Config
from fpi.errors import PermissionDeniedError
from fpi.review.names import clean_name

if TYPE_CHECKING:
    from fpi.model.registry import Registry
    from fpi.review.store import VerdictStore

__all__ = [
    "ACTIONS", "ANALYST", "MAINTAINER", "Actor", "RolePolicy", "activate_model", "authorize",
    "identity_from_claims", "record", "rollback_model", "verified_email",
]

ANALYST = "analyst"
MAINTAINER = "maintainer"
ACTIONS: dict[str, str] = {
    "train": "train a model", "activate": "activate a model", "rollback": "roll back the model",
    "delete_dataset": "delete a kept dataset",
}
"""What only a maintainer may do, and how a message names it."""
NAME_CLAIMS: tuple[str, ...] = ("name", "preferred_username", "sub")


@dataclass(frozen=True)
class Actor:
    """Who acts in a session, and with which role."""

    name: str
    role: str = ANALYST
    via: str = "name"
    """How the role was decided: "login", "token", "name" (typed, no proof) or "cli"."""

    @property
    def is_maintainer(self) -> bool:
        return self.role == MAINTAINER


def verified_email(claims: Mapping[str, object]) -> str | None:
    """The e-mail claim in lower case, only when the provider marks it verified (True or "true")."""
    email = claims.get("email")
    verified = claims.get("email_verified")
    if isinstance(email, str) and email.strip() and (verified is True or str(verified).lower() == "true"):
        return email.strip().lower()
    return None


def identity_from_claims(claims: Mapping[str, object]) -> str | None:
    """The name verdicts are filed under: the verified e-mail, else the provider's name, user name or subject."""
    email = verified_email(claims)
    if email:
        return email
    for claim in NAME_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, str):
            try:
                return clean_name(value)
            except ValueError:
                continue
    return None


@dataclass(frozen=True)
class RolePolicy:
    """Who is a maintainer, from the configuration."""

    login: bool
    maintainers: frozenset[str] = frozenset()
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: Config, *, login: bool) -> RolePolicy:
        return cls(login=login, maintainers=frozenset(e.lower() for e in config.maintainers),
                   token=config.maintainer_token)

    def actor_from_claims(self, claims: Mapping[str, object]) -> Actor | None:
        """The logged-in user (None when the claims name nobody); maintainer only by a verified listed e-mail."""
        name = identity_from_claims(claims)
        if name is None:
            return None
        email = verified_email(claims)
        role = MAINTAINER if email is not None and email in self.maintainers else ANALYST
        return Actor(name=name, role=role, via="login")

    def actor_from_session(self, name: str | None, token: str | None) -> Actor:
        """A session without login: maintainer only with the configured token (compared in constant time)."""
        who = clean_name(name) if name else "unnamed session"
        if self.token and token and hmac.compare_digest(token.strip().encode(), self.token.encode()):
            return Actor(name=who, role=MAINTAINER, via="token")
        return Actor(name=who, role=ANALYST, via="name")

    def why_no_maintainers(self) -> str | None:
        """Why nobody can change models in the app as configured, or None when someone can."""
        if self.login and not self.maintainers:
            return "no maintainer e-mails are configured (set FPI_MAINTAINERS)"
        if not self.login and not self.token:
            return "the app has no login and no maintainer token (set FPI_MAINTAINER_TOKEN to allow it)"
        return None


def authorize(store: VerdictStore, actor: Actor, action: str, *, target: str | None = None) -> None:
    """Pass when `actor` may do `action`; else log the refused attempt and raise `PermissionDeniedError`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    if actor.is_maintainer:
        return
    store.log_event(action=action, actor=actor.name, role=actor.role, allowed=False, to_version=target,
                    detail="refused: not a maintainer")
    raise PermissionDeniedError(
        f"only a maintainer may {ACTIONS[action]}; {actor.name} is an {actor.role}. Ask a maintainer, or sign in "
        "as one (see the README: roles)", action=action, actor=actor.name, role=actor.role)


def record(store: VerdictStore, actor: Actor, action: str, *, from_version: str | None = None,
           to_version: str | None = None, detail: str | None = None) -> None:
    """Log an allowed action after it succeeded."""
    store.log_event(action=action, actor=actor.name, role=actor.role, allowed=True, from_version=from_version,
                    to_version=to_version, detail=detail)


def activate_model(registry: Registry, store: VerdictStore, actor: Actor, version: str) -> str:
    """Activate `version` if `actor` may; logged either way. Returns the version active before."""
    authorize(store, actor, "activate", target=version)
    before = registry.activate(version)
    record(store, actor, "activate", from_version=before, to_version=version,
           detail=None if before != version else "already active")
    return before


def rollback_model(registry: Registry, store: VerdictStore, actor: Actor) -> str:
    """Roll back if `actor` may; logged either way. Returns the version active now."""
    authorize(store, actor, "rollback")
    before, after = registry.rollback_change()
    record(store, actor, "rollback", from_version=before, to_version=after)
    return after

