"""Who the analyst is: the logged-in user when OIDC login is configured, else a name typed once.

Login is configured when `.streamlit/secrets.toml` has an `[auth]` section (see
the README); then the whole app asks for a login (`nav.pages` shows only the
login page until `st.user.is_logged_in`), and verdicts carry the user's e-mail
(or name). Without it, the Triage page asks for a name once per session.
Verdicts are never anonymous either way: the store refuses an empty analyst.
"""
from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from fpi.ui.state import AppState

IDENTITY_CLAIMS: tuple[str, ...] = ("email", "name", "preferred_username", "sub")
"""The first of these claims the identity provider sends names the analyst."""


def auth_settings() -> Mapping[str, object] | None:
    """The `[auth]` secrets section, or None when login is not configured."""
    try:
        if "auth" not in st.secrets:
            return None
        section = st.secrets["auth"]
    except FileNotFoundError:  # no secrets.toml at all (StreamlitSecretNotFoundError is one)
        return None
    return section if isinstance(section, Mapping) else None


def login_required() -> bool:
    return auth_settings() is not None


def is_logged_in() -> bool:
    return bool(st.user.get("is_logged_in", False))


def logged_in_analyst() -> str | None:
    """The logged-in user's e-mail (or name, ...) when login is configured and done; else None."""
    if not login_required() or not is_logged_in():
        return None
    for claim in IDENTITY_CLAIMS:
        value = st.user.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def analyst(state: AppState) -> str | None:
    """Who the verdicts of this session are by, or None when nobody has said yet."""
    if login_required():
        return logged_in_analyst()
    return state.analyst


def providers() -> list[str]:
    """Named providers (`[auth.google]`, ...) when several are configured; [] for a single `[auth]`."""
    settings = auth_settings() or {}
    if "client_id" in settings:
        return []
    return [str(name) for name, value in settings.items() if isinstance(value, Mapping)]


def login_page() -> None:
    """The only page shown while login is required and nobody is logged in."""
    st.title("fpi · failure points")
    st.info("This app is configured for login: sign in to look at traces and give verdicts. "
            "Verdicts are recorded under your account.")
    named = providers()
    if not named:
        st.button("Log in", type="primary", on_click=st.login, icon=":material/login:")
    for name in named:
        st.button(f"Log in with {name}", type="primary", on_click=st.login, args=(name,), key=f"login_{name}")
