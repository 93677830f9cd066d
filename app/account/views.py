"""Login, "My account", password change and lost-password reset."""
from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from ..extensions import limiter
from ..portal import portal
from ..reactivation.forms import ReactivationConfirmForm
from ..services.accounts import LoginOutcome
from ..services.audit import Actor
from ..services.changes import ChangeRefused
from ..services.errors import AlreadyDone, LinkInvalid, PasswordRefused
from ..vocabulary import MemberStatus, RequestKind
from ..web.deferred import after_response
from ..web.i18n import autonym, remember_language, supported
from ..web.sessions import begin_member_session, login_required, start_session
from ..web.throttle import forget_failed_logins, login_account_client_key, reset_login_key
from .forms import (
    AddressForm,
    CategoryForm,
    ChangePasswordForm,
    ConditionsForm,
    LoginForm,
    MoveForm,
    NamesForm,
    NewPasswordForm,
    ResetRequestForm,
)

bp = Blueprint("account", __name__)
log = logging.getLogger(__name__)


def _address() -> str:
    return request.remote_addr or ""


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: portal().settings.rate_limit_login_address, methods=["POST"])
@limiter.limit(lambda: portal().settings.rate_limit_login_account, methods=["POST"],
               key_func=login_account_client_key)
def login():
    if g.get("account"):
        return redirect(url_for("account.overview"))
    form = LoginForm()
    problem = None
    if form.validate_on_submit():
        result = portal().accounts.login(form.account_name.data, form.password.data)
        log.info("login", extra={"event": "account.login", "outcome": result.outcome.value,
                                 "actor": result.account_name or "unknown"})
        if result.outcome in (LoginOutcome.OK, LoginOutcome.MUST_CHANGE):
            return begin_member_session(result.account_name,
                                        result.outcome is LoginOutcome.MUST_CHANGE,
                                        result.must_accept_conditions, result.session_epoch)
        if result.outcome is LoginOutcome.MEMBERSHIP_EXPIRED:
            start_session(result.account_name, False, False, expired=True,
                          epoch=result.session_epoch)
            flash(_("Your membership has expired: your account works for no service until it "
                    "is reactivated. Here you see its status and can ask for reactivation."),
                  "warning")
            return redirect(url_for("account.overview"))
        problem = result.outcome.value
    return render_template("account/login.html", form=form, problem=problem)


@bp.post("/logout")
def logout():
    if g.get("account"):
        # Server-side: a copy of this cookie replayed later is refused too.
        portal().accounts.end_sessions(g.account)
    session.clear()
    flash(_("You are logged out."), "success")
    return redirect(url_for("account.login"))


@bp.get("/account")
@login_required
def overview():
    details = portal().accounts.overview(g.member)
    if session.get("expired"):
        return _expired_overview(details.person)
    changes, person = portal().changes, details.person
    waiting = changes.open_applications(g.account)
    move_waiting = [r for r in waiting if r.kind == RequestKind.INSTITUTION_CHANGE]
    category_waiting = [r for r in waiting if r.kind == RequestKind.CATEGORY_CHANGE]
    settings = portal().settings
    return render_template("account/overview.html", details=details,
                           history=portal().accounts.history(person),
                           extra_groups=changes.extra_groups(person, waiting),
                           move_waiting=move_waiting[0] if move_waiting else None,
                           move_form=MoveForm(institutions=[
                               i for i in changes.institutions() if i.id != person.institution]),
                           category=settings.category_label(person.category),
                           category_waiting=settings.category_label(category_waiting[0].category)
                           if category_waiting else "",
                           address_form=AddressForm(formdata=None),
                           names_form=NamesForm(formdata=None, data={
                               "given_name": person.given_name, "middle_name": person.middle_name,
                               "family_name": person.family_name}),
                           category_form=CategoryForm(categories=[
                               c for c in settings.categories if c.key != person.category]),
                           institution=changes.institution_name(person.institution))


def _expired_overview(person, form=None):
    """"My account" of an expired member: the status, the corrections the
    record allows after expiry, the reactivation request."""
    if person.status != MemberStatus.EXPIRED:  # reactivated or suspended meanwhile
        session.clear()
        flash(_("Your session has ended. Please log in again."), "info")
        return redirect(url_for("account.login"))
    reactivation, settings = portal().reactivation, portal().settings
    waiting = reactivation.open_request(person.account_name)
    form = form or ReactivationConfirmForm(
        institutions=reactivation.institutions(), categories=settings.categories,
        formdata=None, data={"institution": person.institution, "category": person.category})
    return render_template(
        "account/expired.html", person=person,
        withdrawal=portal().lifecycle.withdrawal(person),
        waiting=waiting, form=form,
        institution=portal().changes.institution_name(person.institution),
        category=settings.category_label(person.category),
        history=portal().accounts.history(person),
        address_form=AddressForm(formdata=None), category_form=None,
        names_form=NamesForm(formdata=None, data={
            "given_name": person.given_name, "middle_name": person.middle_name,
            "family_name": person.family_name}))


@bp.post("/account/reactivation")
@login_required
def ask_reactivation():
    """An expired member files the reactivation request (the IRs are asked)."""
    reactivation = portal().reactivation
    person = portal().accounts.person(g.account)
    form = ReactivationConfirmForm(institutions=reactivation.institutions(),
                                   categories=portal().settings.categories)
    if not session.get("expired") or person is None:
        abort(403)
    if not form.validate_on_submit():
        return _expired_overview(person, form)
    try:
        reactivation.submit_for_member(g.account, form.institution.data, form.category.data,
                                       Actor(g.account, _address()))
    except AlreadyDone:
        pass  # a double click: the request waits already
    except LinkInvalid:
        return redirect(url_for("account.overview"))
    flash(_("Your request for reactivation was sent to the representative of your "
            "institution. You are told by mail when it is decided."), "success")
    return redirect(url_for("account.overview"))


_REFUSALS = {
    "passwordInHistory": ("password", _l(
        "You used this password recently. Choose one you have not used before.")),
    "insufficientPasswordQuality": ("password", _l(
        "The directory refused this password as too weak. Choose a longer one.")),
    "passwordTooShort": ("password", _l("The directory refused this password as too short.")),
    "passwordTooYoung": ("password", _l(
        "You changed your password a moment ago; try again later.")),
    "invalidCredentials": ("current_password", _l("Your current password is not right.")),
    "passwordExpired": ("current_password", _l(
        "Your password has expired: use the password reset to set a new one.")),
    "accountLocked": ("current_password", _l(
        "Your account is locked after too many failed attempts: use the password reset to "
        "unlock it.")),
}


def _show_refusal(form, refusal: PasswordRefused) -> None:
    field, message = _REFUSALS.get(refusal.reason, ("password", None))
    if message is None:
        message = _("The directory refused this password (%(reason)s).", reason=refusal.reason)
    getattr(form, field).errors = [message]


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    accounts, person = portal().accounts, g.member.person
    form = ChangePasswordForm(strength_check=lambda pw: accounts.strength_problems(person, pw))
    if form.validate_on_submit():
        try:
            epoch = accounts.change_password(person, form.current_password.data,
                                             form.password.data, Actor(g.account, _address()))
        except PasswordRefused as refusal:
            _show_refusal(form, refusal)
        else:
            session["must_change"] = False
            session["epoch"] = epoch  # other sessions ended; this one goes on
            flash(_("Your password was changed. Use the new one for every service."), "success")
            return redirect(url_for("account.overview"))  # conditions next, if due
    return render_template("account/change_password.html", form=form,
                           must_change=session.get("must_change"))


def _group_change(change, cn: str, done: str):
    """Apply for or leave group ``cn`` (the form's token checked), then back
    to the overview with ``done`` or the reason of a refusal."""
    if FlaskForm().validate_on_submit():
        try:
            change(g.account, cn, Actor(g.account, _address()))
            flash(done, "success")
        except ChangeRefused as refused:
            flash(str(refused), "error")
    return redirect(url_for("account.overview"))


@bp.post("/account/groups/<cn>/apply")
@login_required
def apply_for_group(cn: str):
    return _group_change(portal().changes.apply_for_group, cn,
                         _("Your application was sent to the group's managers."))


@bp.post("/account/groups/<cn>/leave")
@login_required
def leave_group(cn: str):
    return _group_change(portal().changes.leave_group, cn, _("You left the group."))


@bp.post("/account/institution")
@login_required
def request_move():
    form = MoveForm(institutions=portal().changes.institutions())
    if form.validate_on_submit():
        try:
            portal().changes.request_move(g.account, form.institution.data,
                                          Actor(g.account, _address()))
            flash(_("Your request was sent to the representative of the new institution."),
                  "success")
        except ChangeRefused as refused:
            flash(str(refused), "error")
    else:
        flash(_("Choose an institution from the list."), "error")
    return redirect(url_for("account.overview"))


@bp.post("/account/category")
@login_required
def request_category():
    form = CategoryForm(categories=portal().settings.categories)
    if form.validate_on_submit():
        try:
            portal().changes.request_category(g.account, form.category.data or "",
                                              Actor(g.account, _address()))
            flash(_("Your request was sent to your institute representative."), "success")
        except ChangeRefused as refused:
            flash(str(refused), "error")
    return redirect(url_for("account.overview"))


@bp.post("/account/address")
@login_required
def request_address_change():
    form = AddressForm()
    if form.validate_on_submit():
        try:
            portal().record.ask_address_change(g.account, form.email.data,
                                               Actor(g.account, _address()))
            flash(_("We sent a link to the new address: open it to confirm the change."),
                  "success")
        except ChangeRefused as refused:
            flash(str(refused), "error")
    else:
        flash(" ".join(str(e) for e in form.email.errors), "error")
    return redirect(url_for("account.overview"))


@bp.route("/account/address/<token>", methods=["GET", "POST"])
def confirm_address(token: str):
    """GET shows the change and a button; only the POST changes the record."""
    record = portal().record
    person, address = record.address_change_for(token)  # LinkInvalid: error page
    if request.method == "POST" and FlaskForm().validate_on_submit():
        try:
            person = record.confirm_address_change(token, Actor(person.account_name, _address()))
        except ChangeRefused as refused:
            flash(str(refused), "error")
        else:
            return render_template("account/address_done.html", person=person)
    return render_template("account/address_confirm.html", person=person, address=address)


@bp.post("/account/names")
@login_required
def correct_names():
    form = NamesForm()
    if form.validate_on_submit():
        try:
            person = portal().record.correct_names(
                g.account, form.given_name.data, form.middle_name.data or "",
                form.family_name.data, Actor(g.account, _address()))
            flash(_("Your names are corrected; your collaboration address is now %(mail)s.",
                    mail=person.mail), "success")
        except ChangeRefused as refused:
            flash(str(refused), "error")
    return redirect(url_for("account.overview"))


@bp.route("/account/conditions", methods=["GET", "POST"])
@login_required
def accept_conditions():
    form = ConditionsForm()
    if form.validate_on_submit():
        portal().accounts.accept_conditions(g.account, Actor(g.account, _address()))
        session["must_accept"] = False
        flash(_("Thank you: your acceptance was recorded."), "success")
        return redirect(url_for("account.overview"))
    return render_template("account/conditions.html", form=form,
                           conditions=portal().settings.conditions)


@bp.route("/password/reset", methods=["GET", "POST"])
@limiter.limit(lambda: portal().settings.rate_limit_reset, methods=["POST"],
               key_func=reset_login_key)
@limiter.limit(lambda: portal().settings.rate_limit_login_address, methods=["POST"])
def request_reset():
    form = ResetRequestForm()
    if not form.validate_on_submit():
        return render_template("account/reset_request.html", form=form)
    person = portal().accounts.reset_target(form.login.data)
    # The same page, whoever asked; the mail goes out after the response so
    # that its sending time does not tell either.
    response = make_response(render_template(
        "account/reset_sent.html", minutes=portal().settings.reset_link_max_age_minutes))
    if person is not None:
        after_response(response, lambda: portal().accounts.send_reset_link(person),
                       "password reset link")
    return response


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    accounts = portal().accounts
    link = accounts.check_reset_link(token)  # LinkInvalid/LinkExpired: error pages
    person = link.person
    form = NewPasswordForm(strength_check=lambda pw: accounts.strength_problems(person, pw))
    if form.validate_on_submit():
        try:
            accounts.reset_password(link, form.password.data, Actor("reset-link", _address()))
        except PasswordRefused as refusal:
            _show_refusal(form, refusal)
        else:
            forget_failed_logins(person.account_name)
            session.clear()
            return render_template("account/reset_done.html", person=person)
    return render_template("account/reset_form.html", form=form, person=person)


@bp.post("/account/language")
@login_required
def set_language():
    """A member's language for the portal and their mails (CSRF-checked)."""
    chosen = supported(request.form.get("language"))
    if not FlaskForm().validate_on_submit() or not chosen:
        flash(_("Choose a language from the list."), "error")
        return redirect(url_for("account.overview"))
    portal().accounts.set_language(g.account, chosen, Actor(g.account, _address()))
    # The message is read on the next page, which is in the new language.
    with force_locale(chosen):
        flash(_("Your language is saved: the portal and your mails are now in %(language)s.",
                language=autonym(chosen)), "success")
    return remember_language(redirect(url_for("account.overview")), chosen)
