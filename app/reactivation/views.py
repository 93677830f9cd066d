"""/reactivate: former members come back with their old account name."""
from __future__ import annotations

from flask import Blueprint, make_response, render_template, request

from ..extensions import limiter
from ..portal import portal
from ..services.audit import Actor
from ..services.errors import AlreadyDone
from ..web.deferred import after_response
from .forms import ReactivationConfirmForm, ReactivationRequestForm

bp = Blueprint("reactivation", __name__, url_prefix="/reactivate")


def _login_key() -> str:
    return "reactivate-login:" + request.form.get("login", "").strip().lower()[:254]


@bp.route("", methods=["GET", "POST"])
@limiter.limit(lambda: portal().settings.rate_limit_reset, methods=["POST"], key_func=_login_key)
@limiter.limit(lambda: portal().settings.rate_limit_login_address, methods=["POST"])
def start():
    form = ReactivationRequestForm(institutions=portal().reactivation.institutions())
    if not form.validate_on_submit():
        return render_template("reactivation/start.html", form=form)
    reactivation = portal().reactivation
    person = reactivation.person_for(form.login.data)
    # The same answer for everyone; the mail goes out after the response.
    response = make_response(render_template("reactivation/sent.html"))
    if person is not None:
        institution = form.institution.data
        after_response(response, lambda: portal().reactivation.send_link(person, institution),
                       "reactivation link")
    return response


@bp.route("/<token>", methods=["GET", "POST"])
def confirm(token: str):
    reactivation = portal().reactivation
    try:
        person, institution = reactivation.load(token)  # LinkInvalid/LinkExpired: error pages
        form = ReactivationConfirmForm(
            institutions=reactivation.institutions(),
            categories=portal().settings.categories,
            data=None if request.method == "POST" else {
                "institution": institution or person.institution, "category": person.category})
        if form.validate_on_submit():
            filed = reactivation.submit(token, form.institution.data, form.category.data,
                                        Actor(person.account_name, request.remote_addr or ""))
            return render_template("reactivation/submitted.html", application=filed)
    except AlreadyDone as done:
        return render_template("reactivation/submitted.html", application=done.request, again=True)
    return render_template("reactivation/confirm.html", form=form, person=person)
