"""Invitations: the IR's console (/invitations: invite by list or CSV,
preview, confirm; the invitations with their state; resend, revoke) and
the invitee's registration from the personal link (/register/invited/...)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from ..extensions import limiter
from ..portal import portal
from ..registration.forms import RegistrationForm
from ..services.audit import Actor
from ..services.errors import (
    AccountNameUnavailable,
    DirectoryUnavailable,
    InvitationNotOpen,
    InvitationUnusable,
    LinkExpired,
    LinkInvalid,
    NotAuthorised,
    SimilarPersonExists,
    UnknownInstitution,
    UnknownPreviousAccount,
)
from ..services.invitations import Conflict
from ..vocabulary import ACCOUNT_NAME_RE, InvitationState, RequestKind
from ..web.sessions import current_roles, representative_required
from .forms import (
    LINE_MESSAGES,
    ActionForm,
    ConfirmForm,
    InvitationForm,
    capped,
    read_lines,
)

bp = Blueprint("invitations", __name__, url_prefix="/invitations")
invited_bp = Blueprint("invited", __name__, url_prefix="/register/invited")

CONFLICT_MESSAGES = {
    Conflict.MEMBER: lambda detail: _("Already a member of your institution (account %(account)s).",
                                      account=detail),
    Conflict.REQUEST: lambda detail: _("A registration of this address (account %(account)s) "
                                       "waits for approval at your institution.", account=detail),
    Conflict.INVITED: lambda detail: _("Invited already, and the invitation is still open: "
                                       "resend it from the list below instead."),
    Conflict.REPEATED: lambda detail: _("This address is earlier in the list."),
}


def _actor() -> Actor:
    return Actor(current_roles().account_name, request.remote_addr or "")


def _invitation_form() -> InvitationForm:
    return InvitationForm(institutions=current_roles().represented,
                          categories=portal().settings.categories)


def _index_page(form: InvitationForm, status: int = 200):
    p = portal()
    return render_template(
        "invitations/index.html", form=form, action_form=ActionForm(),
        invitations=p.invitations.invitations(current_roles()),
        institutions={i.id: i.name for i in current_roles().represented},
        categories=p.settings.categories, InvitationState=InvitationState,
        days=p.settings.invitation_days), status


@bp.get("")
@representative_required
def index():
    form = _invitation_form()
    if len(form.institution.choices) == 1:
        form.institution.data = form.institution.choices[0][0]
    return _index_page(form)


def _report(lines, checked) -> list[dict]:
    """Line by line: what was typed, and sent / the problem."""
    by_line = iter(checked)
    rows = []
    for line in lines:
        if line.problem is not None:
            rows.append({"line": line, "ok": False, "message": LINE_MESSAGES[line.problem]})
            continue
        result = next(by_line)
        message = CONFLICT_MESSAGES[result.conflict](result.detail) if result.conflict else ""
        rows.append({"line": line, "ok": result.conflict is None, "message": message,
                     "invitee": result.invitee})
    return rows


@bp.post("/preview")
@representative_required
def preview():
    form = _invitation_form()
    if not form.validate_on_submit():
        return _index_page(form, 400)
    default = form.category.data or ""
    lines = read_lines(form.emails.data or "", default)
    upload = form.csv_file.data
    if upload and getattr(upload, "filename", ""):
        try:
            uploaded = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            form.csv_file.errors = [_("The file is not a text (CSV) file in UTF-8.")]
            return _index_page(form, 400)
        lines = capped(lines + read_lines(uploaded, default, in_file=True))
    if not lines:
        form.emails.errors = [_("Give at least one address, typed or in a file.")]
        return _index_page(form, 400)
    checked = portal().invitations.check(current_roles(),
                                         [line.invitee for line in lines if line.invitee])
    rows = _report(lines, checked)
    good = [row["line"].text for row in rows if row["ok"]]
    confirm = ConfirmForm(formdata=None, emails="\n".join(good),
                          category=form.category.data or "",
                          institution=form.institution.data)
    return render_template("invitations/preview.html", rows=rows, confirm=confirm,
                           good=len(good), institution=dict(form.institution.choices)[
                               form.institution.data])


@bp.post("/send")
@representative_required
def send():
    form = ConfirmForm()
    roles = current_roles()
    if not form.validate_on_submit():
        abort(400)
    if not roles.represents(form.institution.data or ""):
        abort(403)
    lines = read_lines(form.emails.data or "", form.category.data or "")
    checked = portal().invitations.send(
        roles, form.institution.data, [line.invitee for line in lines if line.invitee],
        _actor())
    rows = _report(lines, checked)
    return render_template("invitations/sent.html", rows=rows,
                           sent=sum(1 for row in rows if row["ok"]))


@bp.post("/<invitation_id>/resend")
@representative_required
def resend(invitation_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        renewed = portal().invitations.resend(current_roles(), invitation_id, _actor())
    except NotAuthorised:
        abort(403)
    except InvitationNotOpen:
        flash(_("This invitation was used or revoked already: nothing was sent."), "error")
    else:
        flash(_("A new invitation was sent to %(email)s; the earlier link no longer works.",
                email=renewed.email), "info")
    return redirect(url_for(".index"))


@bp.post("/<invitation_id>/revoke")
@representative_required
def revoke(invitation_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        portal().invitations.revoke(current_roles(), invitation_id, _actor())
    except NotAuthorised:
        abort(403)
    except InvitationNotOpen:
        flash(_("This invitation was used or revoked already."), "error")
    else:
        flash(_("The invitation was revoked: its link no longer works."), "info")
    return redirect(url_for(".index"))


# -- the invitee -------------------------------------------------------------------------

def _problem_page(problem: str):
    status = {"invalid": 404, "expired": 410}.get(problem, 410)
    return render_template("invitations/link_problem.html", problem=problem), status


def _invited_form(invitation) -> RegistrationForm:
    p = portal()
    institution = p.invitations.institution_of(invitation)
    form = RegistrationForm(institutions=[institution] if institution else [],
                            categories=p.settings.categories)
    # Fixed by the invitation: whatever was posted for them is ignored.
    form.email.data = invitation.email
    form.institution.data = invitation.institution
    form.institution_name = institution.name if institution else invitation.institution
    if request.method == "GET":
        form.given_name.data = invitation.given_name
        form.family_name.data = invitation.family_name
        form.category.data = invitation.category
    return form


def _checking_names_only() -> bool:
    return request.form.get("action") == "check" or bool(request.form.get("pick_account_name"))


@invited_bp.route("/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: portal().settings.rate_limit_register, methods=["POST"],
               exempt_when=_checking_names_only)
def register(token: str):
    """The registration form from an invitation; only the POST submits."""
    invitations = portal().invitations
    try:
        invitation = invitations.invitation_for(token)
    except LinkExpired:
        return _problem_page("expired")
    except LinkInvalid:
        return _problem_page("invalid")
    except InvitationUnusable as unusable:
        return _problem_page(unusable.reason)
    form = _invited_form(invitation)
    if request.method == "POST":
        picked = request.form.get("pick_account_name", "")
        if picked or request.form.get("action") == "check":
            if ACCOUNT_NAME_RE.match(picked):
                form.account_name.data = picked
            return _render(form, token)
        if form.validate_on_submit():
            return _submit(form, token)
    return _render(form, token)


def _submit(form: RegistrationForm, token: str):
    application = form.application(language=str(get_locale() or ""))
    try:
        outcome = portal().invitations.register(
            token, application, Actor("applicant", request.remote_addr or ""))
    except InvitationUnusable as unusable:
        return _problem_page(unusable.reason)
    except SimilarPersonExists:
        form.show_not_me = True
    except UnknownInstitution:
        return _problem_page("invalid")
    except UnknownPreviousAccount:
        form.previous_account_unknown()
    except AccountNameUnavailable:
        form.name_taken()
    else:
        request_ = outcome.request
        session["invited_request"] = {
            "account_name": form.account_name.data, "email": form.email.data,
            "approved": outcome.approved_by_invitation,
            "reactivation": bool(request_ and request_.kind == RequestKind.REACTIVATION)}
        return redirect(url_for(".submitted"))
    return _render(form, token)


def _render(form: RegistrationForm, token: str):
    p = portal()
    try:
        hints = p.registration.name_hints(form.given_name.data or "",
                                          form.middle_name.data or "",
                                          form.family_name.data or "")
        days = p.registration.initial_password_days()
    except DirectoryUnavailable:
        hints, days = {"suggestions": [], "mail_preview": ""}, None
    status = 400 if request.method == "POST" and (form.errors or form.show_not_me) else 200
    return render_template("invitations/register.html", form=form, token=token, **hints,
                           form_action=url_for("invited.register", token=token),
                           conditions=p.settings.conditions, initial_password_days=days), status


@invited_bp.get("/submitted")
def submitted():
    details = session.get("invited_request")
    if not details:
        return redirect(url_for("main.index"))
    return render_template("invitations/submitted.html", **details)
