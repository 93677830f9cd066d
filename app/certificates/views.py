"""Grid user certificates after registration: logging in with one (a
button on /login, shown only while a verified certificate is presented)
and the certificates on the member's entry in "My account" (add the one
presented now, e.g. a renewed one; remove old ones). Every change is a POST
with CSRF. The registration route is /register/certificate."""
from __future__ import annotations

import logging

from flask import Blueprint, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from ..directory import Certificate
from ..extensions import limiter
from ..portal import portal
from ..services.accounts import LoginOutcome
from ..services.audit import Actor
from ..services.certificates import CertificateProblem, usable
from ..web.certificates import presented_certificate
from ..web.sessions import begin_member_session, login_required

bp = Blueprint("certificates", __name__)
log = logging.getLogger(__name__)


@bp.app_context_processor
def _client_certificate() -> dict:
    # Pages ask for it when they need it (a function: nothing read otherwise).
    return {"client_certificate": presented_certificate}


def _actor() -> Actor:
    return Actor(g.account or "unknown", request.remote_addr or "")


@bp.post("/login/certificate")
@limiter.limit(lambda: portal().settings.rate_limit_login_address)
def login():
    if not FlaskForm().validate_on_submit():
        return redirect(url_for("account.login"))
    presented = presented_certificate()
    if presented is None:
        flash(_("Your browser did not present a verified certificate. Log in with your "
                "account name and password."), "error")
        return redirect(url_for("account.login"))
    result = portal().certificates.login(presented)
    log.info("login", extra={"event": "account.login-certificate",
                             "outcome": result.outcome.value,
                             "actor": result.account_name or "unknown"})
    if result.outcome in (LoginOutcome.OK, LoginOutcome.MUST_CHANGE):
        return begin_member_session(result.account_name,
                                    result.outcome is LoginOutcome.MUST_CHANGE,
                                    result.must_accept_conditions)
    if result.outcome is LoginOutcome.NOT_ACTIVE:
        flash(_("Your membership is not active. Please ask your institute representative or "
                "the helpdesk to reactivate it: do not register again."), "error")
    else:
        flash(_("This certificate is not on any active member's entry. Log in with your "
                "account name and password, then add the certificate in \u201cMy "
                "account\u201d."), "error")
    return redirect(url_for("account.login"))


@bp.post("/account/certificates/add")
@login_required
def add():
    if FlaskForm().validate_on_submit():
        presented = presented_certificate()
        if presented is None:
            flash(_("Your browser did not present a verified certificate."), "error")
        else:
            try:
                portal().certificates.add(g.account, presented, _actor())
                flash(_("The certificate was added to your account."), "success")
            except CertificateProblem:
                flash(_("This certificate cannot be added: it is on your account or on "
                        "another member's already."), "error")
    return redirect(url_for("account.overview") + "#certificates")


@bp.post("/account/certificates/remove")
@login_required
def remove():
    if FlaskForm().validate_on_submit():
        chosen: Certificate | None = usable(request.form.get("subject", ""),
                                            request.form.get("issuer", ""))
        try:
            if chosen is None:
                raise CertificateProblem("not a certificate")
            portal().certificates.remove(g.account, chosen, _actor())
            flash(_("The certificate was removed from your account."), "success")
        except CertificateProblem:
            flash(_("This certificate is not on your account."), "error")
    return redirect(url_for("account.overview") + "#certificates")
