"""Model changes under the roles: what `models.train_candidate`, `models.activate`, `models.rollback` and
`triage.retrain` call, so every button that changes the model goes through `fpi.review.roles` and lands in
the model log."""
from __future__ import annotations

import pandas as pd

from fpi.model.registry import Registry
from fpi.review import roles
from fpi.review.roles import Actor
from fpi.ui import identity
from fpi.ui.services.verdicts import verdict_store
from fpi.ui.state import AppState


def require(state: AppState, action: str) -> Actor:
    """The session's actor when it may do `action`; else the attempt is logged and `PermissionDeniedError` raised."""
    who = identity.actor(state)
    roles.authorize(verdict_store(), who, action)
    return who


def done(who: Actor, action: str, version: str) -> None:
    """Log an allowed action that succeeded (training a candidate)."""
    roles.record(verdict_store(), who, action, to_version=version)


def activate(state: AppState, registry: Registry, version: str) -> str:
    return roles.activate_model(registry, verdict_store(), identity.actor(state), version)


def rollback(state: AppState, registry: Registry) -> str:
    return roles.rollback_model(registry, verdict_store(), identity.actor(state))


def model_log(limit: int = 200) -> pd.DataFrame:
    """The newest entries of the model log (never cached: a change must show at once)."""
    return verdict_store().events(limit=limit)
