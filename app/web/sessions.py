"""Sessions: signed cookies that expire when idle or too old and end when
the member's session epoch in the directory changes; ``login_required`` and
the role checks of the consoles (``representative_required``,
``helpdesk_required``)."""
from __future__ import annotations

import functools
import time

from flask import Flask, abort, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _

from ..portal import portal
from ..services.roles import NO_ROLES, Roles

# What a member may reach before changing the initial password, or before
# accepting a new version of the conditions of use.
_ALLOWED_BEFORE_CHANGE = {"account.change_password", "account.logout", "static"}
_ALLOWED_BEFORE_ACCEPTING = {"account.accept_conditions", "account.logout", "static"}
# What an expired member reaches (logged in with the right password, which
# only slapd's passwordExpired tells under the expired policy): the status
# in "My account", the record corrections allowed after expiry, the
# reactivation request, logout. Every other page and console is refused.
ALLOWED_WHILE_EXPIRED = {"account.overview", "account.ask_reactivation",
                         "account.correct_names", "account.request_address_change",
                         "account.confirm_address", "account.logout", "i18n.switch", "static"}


def load_session() -> None:
    """Expire idle and too old sessions; remember who is logged in (the
    account name in g.account, its entry, read once here, in g.member)."""
    g.account = g.member = None
    account = session.get("account")
    if not account:
        return
    settings = portal().settings
    now = time.time()
    idle = now - session.get("seen_at", 0) > settings.session_idle_minutes * 60
    too_old = now - session.get("auth_at", 0) > settings.session_max_hours * 3600
    if idle or too_old:
        session.clear()
        flash(_("You were logged out after a period of inactivity.") if idle
              else _("Your session has ended. Please log in again."), "info")
        return
    member = portal().accounts.account(account)
    if member is None or session.get("epoch") != member.session_epoch:
        session.clear()  # logged out elsewhere, or the password was changed
        flash(_("Your session has ended. Please log in again."), "info")
        return
    session["seen_at"] = now
    g.account, g.member = account, member


def confine_expired_sessions():
    """An expired member's session reaches ALLOWED_WHILE_EXPIRED only:
    pages lead back to "My account", actions are refused."""
    if not g.get("account") or not session.get("expired") or \
            request.endpoint in ALLOWED_WHILE_EXPIRED:
        return None
    if request.method in ("GET", "HEAD"):
        return redirect(url_for("account.overview"))
    abort(403)


def no_store_when_logged_in(response):
    if g.get("account"):
        response.headers["Cache-Control"] = "no-store"
    return response


def register_sessions(app: Flask) -> None:
    app.before_request(load_session)
    app.before_request(confine_expired_sessions)
    app.after_request(no_store_when_logged_in)


def login_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not g.get("account"):
            return redirect(url_for("account.login"))
        if session.get("must_change") and request.endpoint not in _ALLOWED_BEFORE_CHANGE:
            return redirect(url_for("account.change_password"))
        if not session.get("must_change") and session.get("must_accept") \
                and request.endpoint not in _ALLOWED_BEFORE_ACCEPTING:
            return redirect(url_for("account.accept_conditions"))
        return view(*args, **kwargs)
    return wrapper


def begin_member_session(account_name: str, must_change: bool, must_accept: bool,
                         epoch: str | None = None):
    """A successful login (password or certificate): a new session, and the
    initial password's change first while it is one. Returns the redirect.
    ``epoch``: the member's session epoch when the login read it already."""
    start_session(account_name, must_change, must_accept, epoch=epoch)
    if must_change:
        flash(_("Welcome! Please choose your own password now: the initial password "
                "works only for a few days after your account was created."), "warning")
        return redirect(url_for("account.change_password"))
    return redirect(url_for("account.overview"))


def start_session(account_name: str, must_change: bool, must_accept: bool,
                  expired: bool = False, epoch: str | None = None) -> None:
    """``expired``: an expired member's session (ALLOWED_WHILE_EXPIRED);
    ``epoch``: the session epoch if the caller read it (else read here)."""
    session.clear()  # a new session (and cookie) at every login
    session.permanent = True
    now = time.time()
    session.update(account=account_name, auth_at=now, seen_at=now, must_change=must_change,
                   must_accept=must_accept, expired=expired,
                   epoch=portal().accounts.session_epoch(account_name) if epoch is None
                   else epoch)


def current_roles() -> Roles:
    """The roles of who is logged in, read once per request (none when
    nobody is)."""
    if "roles" not in g:
        member = g.get("member")
        g.roles = portal().roles.roles_for(member.person) if member else NO_ROLES
    return g.roles


def shown_roles() -> Roles:
    """The roles the header's links follow: those this request checked, if
    it checked any (a console), else ``RoleService.shown_roles_for`` (no
    directory search per page). Never for access: that is current_roles()."""
    if "roles" in g:
        return g.roles
    member = g.get("member")
    return portal().roles.shown_roles_for(member.person) if member else NO_ROLES


def _role_required(has_role):
    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not has_role(current_roles()):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorator


# Consoles: anonymous visitors go to the login page, members without the
# role get 403 (the directory is asked on every request).
representative_required = _role_required(lambda roles: roles.is_representative)
helpdesk_required = _role_required(lambda roles: roles.helpdesk)
