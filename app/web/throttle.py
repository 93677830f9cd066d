"""The keys of the rate limits (Flask-Limiter, storage from
PORTAL_RATELIMIT_STORAGE_URI) and the one way to forget an account's failed
logins.

Login counts per account AND client together: failures from one address
slow that address down for that account, never the owner elsewhere (no
lockout weapon); the per-address limit counts every account from a client.
An account's login keys carry a generation kept in the same store: a
successful password reset moves it on, and every client's count for that
account starts again (the store's own get/incr, whatever the store)."""
from __future__ import annotations

from flask import request
from flask_limiter.util import get_remote_address

from ..extensions import limiter
from ..portal import portal

# Longer than any login window: an expired generation (back to 0) finds no
# count of that old generation left.
GENERATION_SECONDS = 7 * 24 * 3600


def _account(name: str) -> str:
    return name.strip().lower()[:64]


def _generation_key(account: str) -> str:
    return f"{portal().settings.ratelimit_key_prefix}/login-generation/{account}"


def login_account_client_key() -> str:
    """The account typed and the client that typed it, in this generation."""
    account = _account(request.form.get("account_name", ""))
    generation = limiter.storage.get(_generation_key(account))
    return f"login-account:{account}:{generation}|{get_remote_address()}"


def reset_login_key() -> str:
    """Reset requests count per account or address asked for (one mailbox
    is not flooded, from however many clients)."""
    return "reset-login:" + request.form.get("login", "").strip().lower()[:254]


def forget_failed_logins(account_name: str) -> None:
    """After a successful reset: the account's login counts start again for
    every client."""
    limiter.storage.incr(_generation_key(_account(account_name)), GENERATION_SECONDS)
