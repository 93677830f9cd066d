"""Registration pages: the form, its live hints, and e-mail confirmation."""
from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    jsonify,
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
from ..services.errors import (
    AccountNameUnavailable,
    AlreadyDone,
    DirectoryUnavailable,
    PossiblyKnown,
    SimilarPersonExists,
    UnknownInstitution,
    UnknownPreviousAccount,
)
from ..services.registration import Application
from ..vocabulary import ACCOUNT_NAME_RE, RequestStatus
from .forms import (
    ACCOUNT_NAME_MESSAGES,
    SWAPPED_MESSAGE,
    RegistrationForm,
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


def _certificate_subject() -> str:
    """The verified client certificate's subject, when the TLS terminator in
    front of the portal passes it on (PORTAL_CERT_SUBJECT_HEADER)."""
    header = portal().settings.cert_subject_header
    if not header or not portal().settings.trusted_proxies:
        return ""
    subject = request.headers.get(header, "").strip()
    return subject if subject and len(subject) <= 1024 and subject.isprintable() else ""


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
    form = _form()
    try:
        return _register(form)
    except DirectoryUnavailable:
        # Nothing was written; the page comes back with what was typed
        # (passwords excepted) so it can be sent again in a moment.
        return _render_form(form, directory_down=True)


def _register(form: RegistrationForm):
    if request.method == "POST":
        picked = request.form.get("pick_account_name", "")
        if picked or request.form.get("action") == "check":
            # "Check names" or a suggestion chip: show hints, create nothing.
            if ACCOUNT_NAME_RE.match(picked):
                form.account_name.data = picked
            return _render_form(form)
        if form.validate_on_submit():
            application = Application(
                account_name=form.account_name.data, given_name=form.given_name.data,
                middle_name=form.middle_name.data or "", family_name=form.family_name.data,
                email=form.email.data, institution=form.institution.data,
                category=form.category.data, password=form.password.data,
                conditions_version=portal().settings.conditions.version,
                previous_account=form.previous_account.data or "",
                not_me=bool(form.not_me.data),
                cert_subject=_certificate_subject(),
                language=str(get_locale() or ""),
            )
            try:
                created = portal().registration.submit(
                    application, Actor("applicant", request.remote_addr or ""))
            except PossiblyKnown:
                # The same answer as for a new request: whether the address or
                # person is on record is told only to the stored address.
                return _created(form.account_name.data, form.email.data)
            except SimilarPersonExists:
                form.show_not_me = True
            except UnknownInstitution:
                form.institution.errors = [_("Choose your home institution from the list.")]
            except UnknownPreviousAccount:
                form.previous_account.errors = [_(
                    "We have no account with this name. Check it, or leave the field empty if "
                    "you never had one.")]
            except AccountNameUnavailable:
                form.account_name.errors = [_("This account name was taken a moment ago. "
                                              "Please choose another.")]
            else:
                return _created(created.account_name, created.contact_mail)
    return _render_form(form)


def _created(account_name: str, email: str):
    session["created_request"] = {"account_name": account_name, "email": email}
    return redirect(url_for(".created"))


def _render_form(form: RegistrationForm, directory_down: bool = False):
    p = portal()
    directory_down = directory_down or form.directory_down
    try:
        hints, days = _hints(form), p.registration.initial_password_days()
    except DirectoryUnavailable:
        hints, days, directory_down = {"suggestions": [], "mail_preview": ""}, None, True
    return render_template(
        "registration/form.html", form=form, **hints, conditions=p.settings.conditions,
        initial_password_days=days, directory_down=directory_down), \
        503 if directory_down else 200


@bp.get("/created")
def created():
    details = session.get("created_request")
    if not details:
        return redirect(url_for(".register"))
    return render_template("registration/created.html", **details)


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
            return render_template("registration/verified.html", application=confirmed)
        pending = registration.request_for_verification(token)
    except AlreadyDone as done:
        return render_template("registration/verified.html", application=done.request, again=True)
    if pending.status != RequestStatus.PENDING_VERIFICATION:
        return render_template("registration/verified.html", application=pending, again=True)
    return render_template("registration/verify.html", application=pending)


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
