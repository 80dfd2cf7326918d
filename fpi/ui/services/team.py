"""What the pages call to change models under the roles, and the Team page's cached figures.

The guard is here, not in the pages: `shared.activate`, `shared.rollback`,
`shared.train_candidate` and `triage.retrain` call it, so every button that
changes the model goes through `fpi.review.roles` and lands in the model log.
"""
from __future__ import annotations

import pandas as pd

from fpi.review import roles
from fpi.review.roles import Actor
from fpi.ui import identity
from fpi.ui.services import shared as services
from fpi.ui.services import triage as ts
from fpi.ui.state import AppState


def actor(state: AppState) -> Actor:
    return identity.actor(state)


def require(state: AppState, action: str) -> Actor:
    """The session's actor when it may do `action`; else the attempt is logged and `PermissionDeniedError` raised."""
    who = actor(state)
    roles.authorize(ts.verdict_store(), who, action)
    return who


def done(who: Actor, action: str, version: str) -> None:
    """Log an allowed action that succeeded (training a candidate)."""
    roles.record(ts.verdict_store(), who, action, to_version=version)


def activate(state: AppState, version: str) -> str:
    return roles.activate_model(services.registry(), ts.verdict_store(), actor(state), version)


def rollback(state: AppState) -> str:
    return roles.rollback_model(services.registry(), ts.verdict_store(), actor(state))


def model_log(limit: int = 200) -> pd.DataFrame:
    """The newest entries of the model log (never cached: a change must show at once)."""
    return ts.verdict_store().events(limit=limit)
