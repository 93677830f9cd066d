"""Registration pages: the form, its live hints, and e-mail confirmation."""
from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from ..extensions import limiter
from ..portal import portal
from ..services import names
from ..services.audit import Actor
from ..services.certificates import prefill
from ..services.errors import (
    AccountNameUnavailable,
    AlreadyDone,
    DirectoryUnavailable,
    PossiblyKnown,
    RequestGone,
    ResendTooSoon,
    SimilarPersonExists,
    UnknownInstitution,
    UnknownPreviousAccount,
)
from ..vocabulary import ACCOUNT_NAME_RE, RequestStatus
from ..web.certificates import presented_certificate, verify_result
from .forms import (
    ACCOUNT_NAME_MESSAGES,
    SWAPPED_MESSAGE,
    RegistrationForm,
    StatusActionForm,
    account_name_problem,
    name_messages,
)

bp = Blueprint("registration", __name__, url_prefix="/register")


def _form() -> RegistrationForm:
    p = portal()
    try:
        institutions = p.registration.institutions()
    except DirectoryUnavailable:
        institutions = None
    form = RegistrationForm(institutions=institutions or (), categories=p.settings.categories)
    form.directory_down = institutions is None
    if institutions is None:
        # Keep what was chosen so that the page can be shown and sent again.
        chosen = request.form.get("institution", "")
        if chosen:
            form.institution.choices.append((chosen, chosen))
    return form


def _hints(form: RegistrationForm) -> dict:
    """Suggested account names and the collaboration mail address preview."""
    return portal().registration.name_hints(form.given_name.data or "",
                                            form.middle_name.data or "",
                                            form.family_name.data or "")


def _checking_names_only() -> bool:
    """"Check names" and suggestion chips do not count against the limit."""
    return request.form.get("action") == "check" or bool(request.form.get("pick_account_name"))


@bp.route("", methods=["GET", "POST"])
@limiter.limit(lambda: portal().settings.rate_limit_register, methods=["POST"],
               exempt_when=_checking_names_only)
def register():
    if not portal().settings.open_registration:
        # PORTAL_OPEN_REGISTRATION=false: the page says which routes there
        # are; the form is not shown and a posted one is refused.
        return render_template("registration/closed.html"), \
            403 if request.method == "POST" else 200
    form = _form()
    try:
        return _register(form)
    except DirectoryUnavailable:
        # Nothing was written; the page comes back with what was typed
        # (passwords excepted) so it can be sent again in a moment.
        return _render_form(form, directory_down=True)


@bp.route("/certificate", methods=["GET", "POST"])
@limiter.limit(lambda: portal().settings.rate_limit_register, methods=["POST"],
               exempt_when=_checking_names_only)
def certificate():
    """The Grid certificate route: the form prefilled from the verified
    certificate's subject; without one, how to present one."""
    presented = presented_certificate()
    if presented is None:
        return render_template("registration/certificate_missing.html",
                               verify=verify_result()), 403
    form = _form()
    start = prefill(presented)
    if request.method == "GET":
        form.given_name.data, form.middle_name.data = start.given_name, start.middle_name
        form.family_name.data, form.email.data = start.family_name, start.email
    try:
        return _register(form, certificate=start)
    except DirectoryUnavailable:
        return _render_form(form, directory_down=True, certificate=start)


def _register(form: RegistrationForm, certificate=None):
    if request.method == "POST":
        picked = request.form.get("pick_account_name", "")
        if picked or request.form.get("action") == "check":
            # "Check names" or a suggestion chip: show hints, create nothing.
            if ACCOUNT_NAME_RE.match(picked):
                form.account_name.data = picked
            return _render_form(form, certificate=certificate)
        if form.validate_on_submit():
            presented = presented_certificate()
            application = form.application(
                cert_subject=presented.subject if presented else "",
                certificate=presented,
                language=str(get_locale() or ""),
            )
            try:
                created = portal().registration.submit(
                    application, Actor("applicant", request.remote_addr or ""))
            except PossiblyKnown:
                # The same answer as for a new request: whether the address or
                # person is on record is told only to the stored address.
                return _created(form.account_name.data, form.email.data,
                                portal().status.placeholder_token(
                                    form.account_name.data, portal().status.now()))
            except SimilarPersonExists:
                form.show_not_me = True
            except UnknownInstitution:
                form.institution.errors = [_("Choose your home institution from the list.")]
            except UnknownPreviousAccount:
                form.previous_account_unknown()
            except AccountNameUnavailable:
                form.name_taken()
            else:
                return _created(created.account_name, created.contact_mail,
                                portal().status.token(created))
    return _render_form(form, certificate=certificate)


def _created(account_name: str, email: str, status_token: str):
    session["created_request"] = {"account_name": account_name, "email": email,
                                  "status_token": status_token}
    return redirect(url_for(".created"))


def _render_form(form: RegistrationForm, directory_down: bool = False, certificate=None):
    p = portal()
    directory_down = directory_down or form.directory_down
    try:
        hints, days = _hints(form), p.registration.initial_password_days()
    except DirectoryUnavailable:
        hints, days, directory_down = {"suggestions": [], "mail_preview": ""}, None, True
    return render_template(
        "registration/form.html", form=form, **hints, conditions=p.settings.conditions,
        initial_password_days=days, directory_down=directory_down,
        certificate=certificate,
        form_action=url_for(".certificate" if certificate else ".register")), \
        503 if directory_down else 200


@bp.get("/created")
def created():
    details = session.get("created_request")
    if not details:
        return redirect(url_for(".register"))
    return render_template("registration/created.html", account_name=details["account_name"],
                           email=details["email"],
                           typical_days=portal().settings.typical_approval_days,
                           status_url=url_for(".status", token=details["status_token"])
                           if details.get("status_token") else "")


@bp.get("/hints")
@limiter.limit(lambda: portal().settings.rate_limit_hints)
def hints():
    """Live hints for the form's script (read only): the same rules and
    messages as the form's on submit. Throttled: it says whether someone of
    a name is on record."""
    typed = {key: request.args.get(key, "")[:64]
             for key in ("given_name", "middle_name", "family_name")}
    given, middle, family = (names.normalise_name(typed[key]) for key in typed)
    result = {**portal().registration.name_hints(given, middle, family, on_record=True),
              "account_name": None, "names": name_messages(given, middle, family),
              "swapped": ""}
    if names.looks_swapped(typed["given_name"], typed["family_name"]):
        result["swapped"] = str(SWAPPED_MESSAGE)
    wanted = request.args.get("account_name", "").strip().lower()[:64]
    if wanted:
        problem = account_name_problem(wanted)
        result["account_name"] = "" if problem is None else str(ACCOUNT_NAME_MESSAGES[problem])
    response = jsonify(result)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/verify/<token>", methods=["GET", "POST"])
def verify(token: str):
    """GET shows the request and a button; only the POST confirms (mail
    scanners open links)."""
    registration = portal().registration
    try:
        if request.method == "POST":
            actor = Actor("applicant", request.remote_addr or "")
            confirmed = registration.confirm_email(token, actor)
            return _verified(confirmed)
        pending = registration.request_for_verification(token)
    except AlreadyDone as done:
        return _verified(done.request, again=True)
    if pending.status != RequestStatus.PENDING_VERIFICATION:
        return _verified(pending, again=True)
    return render_template("registration/verify.html", application=pending)


def _verified(application, again: bool = False):
    """What happens next, how long it usually takes, and the status page."""
    return render_template("registration/verified.html", application=application, again=again,
                           typical_days=portal().settings.typical_approval_days,
                           status_url=url_for(".status", token=portal().status.token(application)))


# -- the applicant's status page (a signed link: the confirmation mail, the
# "request created" page, the escalation mail) ---------------------------------------------

def _gone(gone: RequestGone):
    return render_template("registration/status_gone.html", application=gone.request), 410


def _status_page(token: str, view=None, form=None, notice: str = "", code: int = 200):
    status = portal().status
    view = view or status.view(token)
    institution = status.institution_name(view.request.institution) \
        if view.request.institution else ""
    response = make_response(render_template(
        "registration/status.html", view=view, token=token, form=form or StatusActionForm(),
        notice=notice, institution=institution,
        category=portal().settings.category_label(view.request.category),
        typical_days=portal().settings.typical_approval_days), code)
    # A personal page behind a link: kept by no cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/status/<token>")
def status(token: str):
    """GET only shows: nothing changes (mail scanners open links)."""
    try:
        response = _status_page(token)
    except RequestGone as gone:
        return _gone(gone)
    return response


@bp.post("/status/<token>/resend")
def resend(token: str):
    form = StatusActionForm()
    try:
        if not form.validate_on_submit():
            return _status_page(token, form=form, code=400)
        try:
            view = portal().status.resend_confirmation(
                token, Actor("applicant", request.remote_addr or ""))
        except ResendTooSoon:
            return _status_page(token, notice="too-soon", code=429)
        except AlreadyDone:
            return _status_page(token, notice="confirmed", code=409)
        return _status_page(token, view=view, notice="resent")
    except RequestGone as gone:
        return _gone(gone)


@bp.route("/status/<token>/withdraw", methods=["GET", "POST"])
def withdraw(token: str):
    """A confirmation step (GET shows it), then the POST withdraws."""
    form = StatusActionForm()
    status = portal().status
    try:
        view = status.view(token)
        if not view.may_withdraw:
            return _status_page(token, view=view, notice="decided", code=409)
        if request.method == "POST" and form.validate_on_submit():
            try:
                withdrawn = status.withdraw(token, Actor("applicant", request.remote_addr or ""))
            except AlreadyDone:
                return _status_page(token, notice="decided", code=409)
            return render_template("registration/withdrawn.html", application=withdrawn)
        return render_template("registration/withdraw.html", view=view, token=token,
                               form=form), 400 if request.method == "POST" else 200
    except RequestGone as gone:
        return _gone(gone)


@bp.route("/restart/<token>", methods=["GET", "POST"])
def restart(token: str):
    """From the mail to the address of an unconfirmed registration: GET
    shows it and a button; only the POST withdraws it, then the form."""
    registration = portal().registration
    try:
        if request.method == "POST" and FlaskForm().validate_on_submit():
            registration.restart(token)
            flash(_("Your unconfirmed registration was withdrawn: register again below."),
                  "success")
            return redirect(url_for(".register"))
        pending = registration.request_for_restart(token)  # LinkInvalid: error page
    except AlreadyDone as done:
        return render_template("registration/verified.html", application=done.request, again=True)
    return render_template("registration/restart.html", application=pending)
