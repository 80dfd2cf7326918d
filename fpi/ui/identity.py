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

from fpi.config import Config
from fpi.review.names import clean_name
from fpi.review.roles import ANALYST, Actor, RolePolicy, identity_from_claims
from fpi.ui.state import AppState, Keys
from fpi.ui.text import md_escape

IDENTITY_CLAIMS: tuple[str, ...] = ("email", "email_verified", "name", "preferred_username", "sub")
"""The claims read from the identity provider: a verified e-mail names the analyst, else the first name-like one
(`fpi.review.roles.identity_from_claims`)."""


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
    return identity_from_claims(_claims())


def _claims() -> dict[str, object]:
    return {claim: st.user.get(claim) for claim in IDENTITY_CLAIMS}


def policy() -> RolePolicy:
    return RolePolicy.from_config(Config.from_env(), login=login_required())


def actor(state: AppState) -> Actor:
    """Who acts in this session and with which role (decided afresh on every call, from the configuration)."""
    if login_required():
        found = policy().actor_from_claims(_claims()) if is_logged_in() else None
        return found or Actor("unknown user", ANALYST, "login")
    return policy().actor_from_session(state.analyst, state.maintainer_token)


def role_panel(state: AppState) -> None:
    """Who this session acts as; without login, the form that makes it a maintainer with the token."""
    rules = policy()
    who = actor(state)
    st.caption(f"You act as **{md_escape(who.name)}** ({who.role}). Analysts give verdicts; only maintainers train, "
               "activate or roll back models, and every attempt is logged below.")
    why_not = rules.why_no_maintainers()
    if why_not:
        st.caption(f"Model changes are off in this app: {why_not}.")
        return
    if rules.login or who.is_maintainer:
        if who.via == "token" and st.button("Stop acting as maintainer"):
            state.maintainer_token = None
            st.rerun()
        return
    with st.form(Keys.MAINTAINER_FORM):
        name = st.text_input("Your name", key=Keys.MAINTAINER_NAME, max_chars=320, value=state.analyst or "")
        token = st.text_input("Maintainer token", key=Keys.MAINTAINER_TOKEN, type="password",
                              help="Set by whoever runs the server (FPI_MAINTAINER_TOKEN).")
        go = st.form_submit_button("Act as maintainer")
    if go:
        try:
            state.analyst = clean_name(name)
        except ValueError as exc:
            st.warning(f"Your name: {exc}")
            return
        if rules.actor_from_session(state.analyst, token).is_maintainer:
            state.maintainer_token = token
            st.rerun()
        st.warning("That is not the maintainer token.")


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
