"""The helpdesk's console (members of PORTAL_HELPDESK_GROUP): search, the
entry pages of people and requests, actions on behalf (each a POST with a
reason), the paper route; and the page where a member registered on paper
sets the first password from the mail."""
from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from ..account.forms import NewPasswordForm
from ..portal import portal
from ..services.audit import Actor
from ..services.errors import (
    AccountNameUnavailable,
    DuplicateAccount,
    PasswordRefused,
    UnknownInstitution,
)
from ..services.helpdesk import HelpdeskRefused
from ..services.paper import PaperApplication, PaperMatches
from ..web.i18n import autonym
from ..web.sessions import helpdesk_required
from .forms import (
    CategoryChangeForm,
    ImportForm,
    InstitutionChangeForm,
    InstitutionForm,
    MemberUntilForm,
    PaperForm,
    ReasonForm,
    RepresentativeForm,
)

bp = Blueprint("helpdesk", __name__, url_prefix="/helpdesk")
initial_bp = Blueprint("initial_password", __name__)


def _actor() -> Actor:
    return Actor(g.account, request.remote_addr or "")


@bp.get("")
@helpdesk_required
def index():
    helpdesk = portal().helpdesk
    query = request.args.get("q", "")[:200]
    status = request.args.get("status", "")
    institution = request.args.get("institution", "")
    result = helpdesk.search(query, status, institution)
    return render_template("helpdesk/index.html", query=query, status=status,
                           institution=institution, result=result,
                           statuses=helpdesk.statuses(), institutions=helpdesk.institutions(),
                           without_ir=helpdesk.without_representative(),
                           category_label=portal().settings.category_label)


def _person_page(account_name: str, status: int = 200, **forms):
    file = portal().helpdesk.person_file(account_name)
    if file is None:
        abort(404)
    settings = portal().settings
    forms.setdefault("reason_form", ReasonForm(formdata=None))
    forms.setdefault("until_form", MemberUntilForm(formdata=None))
    forms.setdefault("category_form", CategoryChangeForm(
        formdata=None, categories=[c for c in settings.categories
                                   if c.key != file.person.category]))
    forms.setdefault("institution_form", InstitutionChangeForm(
        formdata=None, institutions=[i for i in portal().helpdesk.institutions()
                                     if i.id != file.person.institution]))
    return render_template("helpdesk/person.html", file=file, person=file.person,
                           category_label=settings.category_label, **forms), status


@bp.get("/people/<account_name>")
@helpdesk_required
def person(account_name: str):
    return _person_page(account_name)


_PERSON_ACTIONS = {
    "suspend": ("suspend", lambda: _("The member is suspended.")),
    "unsuspend": ("unsuspend", lambda: _("The suspension is lifted.")),
    "unlock": ("unlock", lambda: _("The account is unlocked.")),
    "initial-link": ("resend_initial_password_link",
                     lambda: _("A new link to set the password was sent.")),
    "end": ("end_membership",
            lambda: _("The membership ends after the grace period; the member was told.")),
    "undo-end": ("undo_end_membership",
                 lambda: _("The membership goes on; the member was told.")),
}


@bp.post("/people/<account_name>/<action>")
@helpdesk_required
def act_on_person(account_name: str, action: str):
    helpdesk = portal().helpdesk
    if helpdesk.person_file(account_name) is None:
        abort(404)
    settings = portal().settings
    if action in _PERSON_ACTIONS:
        form = ReasonForm()
        run = lambda: getattr(helpdesk, _PERSON_ACTIONS[action][0])(  # noqa: E731
            account_name, form.reason.data, _actor())
        done, forms = _PERSON_ACTIONS[action][1], {"reason_form": form}
    elif action == "member-until":
        form = MemberUntilForm()
        run = lambda: helpdesk.set_member_until(  # noqa: E731
            account_name, form.until.data, form.reason.data, _actor())
        done, forms = (lambda: _("Member-until is set.")), {"until_form": form}
    elif action == "category":
        form = CategoryChangeForm(categories=settings.categories)
        run = lambda: helpdesk.change_category(  # noqa: E731
            account_name, form.category.data, form.reason.data, _actor())
        done, forms = (lambda: _("The category is changed.")), {"category_form": form}
    elif action == "institution":
        form = InstitutionChangeForm(institutions=helpdesk.institutions())
        run = lambda: helpdesk.change_institution(  # noqa: E731
            account_name, form.institution.data, form.reason.data, _actor())
        done, forms = (lambda: _("The institution is changed.")), {"institution_form": form}
    else:
        abort(404)
    if not form.validate_on_submit():
        return _person_page(account_name, 400, **forms)
    try:
        run()
    except HelpdeskRefused as refused:
        flash(str(refused), "error")
        return _person_page(account_name, 409, **forms)
    flash(done(), "success")
    return redirect(url_for(".person", account_name=account_name))


def _request_page(request_id: str, status: int = 200, **forms):
    file = portal().helpdesk.request_file(request_id)
    if file is None:
        abort(404)
    forms.setdefault("reason_form", ReasonForm(formdata=None))
    return render_template("helpdesk/request.html", file=file, application=file.request,
                           category_label=portal().settings.category_label,
                           stage_label=portal().reviewers.stage_label, **forms), status


@bp.get("/requests/<request_id>")
@helpdesk_required
def request_entry(request_id: str):
    return _request_page(request_id)


@bp.post("/requests/<request_id>/<action>")
@helpdesk_required
def act_on_request(request_id: str, action: str):
    decisions = portal().helpdesk_decisions
    if action not in ("approve", "reject", "resend", "release"):
        abort(404)
    if portal().helpdesk.request_file(request_id) is None:
        abort(404)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _request_page(request_id, 400, reason_form=form)
    try:
        if action == "approve":
            decisions.approve(request_id, form.reason.data, _actor())
            flash(_("The request is approved."), "success")
        elif action == "reject":
            decisions.reject(request_id, form.reason.data, _actor())
            flash(_("The request is rejected; the applicant is told why."), "success")
        elif action == "release":
            decisions.release(request_id, form.reason.data, _actor())
            flash(_("The request is withdrawn: its account name and address are free."),
                  "success")
        else:
            asked = decisions.resend_review(request_id, form.reason.data, _actor())
            flash(_("Fresh review links were sent to the approvers (%(n)d).", n=asked) if asked else
                  _("Nobody can decide this stage yet: the helpdesk was told what is missing."),
                  "success" if asked else "error")
    except HelpdeskRefused as refused:
        flash(str(refused), "error")
        return _request_page(request_id, 409, reason_form=form)
    except DuplicateAccount:
        flash(_("Approving would give this person a second account: see the possible "
                "duplicates below."), "error")
        return _request_page(request_id, 409, reason_form=form)
    return redirect(url_for(".request_entry", request_id=request_id))


# -- institutions and the member list ----------------------------------------------------------

@bp.route("/institutions", methods=["GET", "POST"])
@helpdesk_required
def institutions():
    admin = portal().helpdesk_institutions
    form = InstitutionForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                admin.create(form.institution_id.data, form.name.data, form.country.data or "",
                             form.reason.data, _actor())
            except HelpdeskRefused as refused:
                flash(str(refused), "error")
                status = 409
            else:
                flash(_("The institution is created."), "success")
                return redirect(url_for(".institution", institution_id=form.institution_id.data))
        else:
            status = 400
    return render_template("helpdesk/institutions.html", institutions=admin.all(), form=form,
                           import_form=ImportForm(formdata=None), report=None), status


@bp.post("/institutions/import")
@helpdesk_required
def import_institutions():
    admin = portal().helpdesk_institutions
    form = ImportForm()
    report, status = None, 200
    if form.validate_on_submit() or (request.form.get("action") == "check"
                                     and FlaskForm().validate_on_submit()):
        text = form.lines.data or ""
        upload = request.files.get("csv_file")
        if upload and upload.filename:
            text = upload.read(200_000).decode("utf-8", errors="replace")
            form.lines.data = text
        if request.form.get("action") == "import":
            try:
                report = admin.run_import(text, form.reason.data, _actor())
                flash(_("The institutions are imported."), "success")
            except HelpdeskRefused as refused:
                flash(str(refused), "error")
                report, status = admin.check_import(text), 409
        else:
            report = admin.check_import(text)
    else:
        status = 400
    return render_template("helpdesk/institutions.html", institutions=admin.all(),
                           form=InstitutionForm(formdata=None), import_form=form,
                           report=report), status


def _institution_page(institution_id: str, status: int = 200, **forms):
    file = portal().helpdesk_institutions.file(institution_id)
    if file is None:
        abort(404)
    forms.setdefault("form", InstitutionForm(formdata=None, data={
        "institution_id": file.institution.id, "name": file.institution.name,
        "country": file.institution.country}))
    forms.setdefault("representative_form", RepresentativeForm(formdata=None))
    return render_template("helpdesk/institution.html", file=file,
                           institution=file.institution, **forms), status


@bp.get("/institutions/<institution_id>")
@helpdesk_required
def institution(institution_id: str):
    return _institution_page(institution_id)


@bp.post("/institutions/<institution_id>/<action>")
@helpdesk_required
def act_on_institution(institution_id: str, action: str):
    admin = portal().helpdesk_institutions
    if admin.file(institution_id) is None or \
            action not in ("edit", "add-representative", "remove-representative",
                           "add-deputy", "remove-deputy"):
        abort(404)
    if action == "edit":
        form, key = InstitutionForm(), "form"
        form.institution_id.data = institution_id  # the id itself never changes
    else:
        form, key = RepresentativeForm(), "representative_form"
    if not form.validate_on_submit():
        return _institution_page(institution_id, 400, **{key: form})
    try:
        if action == "edit":
            admin.edit(institution_id, form.name.data, form.country.data or "",
                       form.reason.data, _actor())
        elif action == "add-representative":
            admin.add_representative(institution_id, form.account_name.data, form.reason.data,
                                     _actor())
        elif action == "add-deputy":
            admin.add_deputy(institution_id, form.account_name.data, form.reason.data, _actor())
        elif action == "remove-deputy":
            admin.remove_deputy(institution_id, form.account_name.data, form.reason.data,
                                _actor())
        else:
            admin.remove_representative(institution_id, form.account_name.data,
                                        form.reason.data, _actor())
    except HelpdeskRefused as refused:
        flash(str(refused), "error")
        return _institution_page(institution_id, 409, **{key: form})
    flash(_("The institution is saved."), "success")
    return redirect(url_for(".institution", institution_id=institution_id))


@bp.get("/members.csv")
@helpdesk_required
def export_members():
    rows = portal().helpdesk_institutions.export_members(
        request.args.get("status", ""), request.args.get("institution", ""),
        request.args.get("category", ""))
    return Response(stream_with_context(rows), mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=members.csv"})


# -- the paper route --------------------------------------------------------------------------

def _paper_form() -> PaperForm:
    p = portal()
    return PaperForm(institutions=p.registration.institutions(),
                     categories=p.settings.categories,
                     languages=[(code, autonym(code)) for code in p.settings.languages])


@bp.route("/requests/new", methods=["GET", "POST"])
@helpdesk_required
def new_paper_request():
    form = _paper_form()
    matches, strong = [], False
    if form.validate_on_submit():
        p = portal()
        application = form.application(language=form.language.data or "")
        try:
            created = p.paper.submit(PaperApplication(application, form.verified_by.data,
                                                      form.note.data or ""), _actor())
        except PaperMatches as found:
            matches, strong = found.matches, found.strong
            form.show_not_me = not strong
        except UnknownInstitution:
            form.institution.errors = [_("Choose your home institution from the list.")]
        except AccountNameUnavailable:
            form.name_taken()
        else:
            flash(_("The paper request is filed and the approvers are asked."), "success")
            return redirect(url_for(".request_entry", request_id=created.id))
    # A form that comes back is a page like the registration's (200).
    return render_template("helpdesk/paper.html", form=form, matches=matches, strong=strong,
                           may_approve=portal().settings.helpdesk_may_approve_paper)


# -- the first password of a member registered on paper ---------------------------------------

@initial_bp.route("/password/initial/<token>", methods=["GET", "POST"])
def set_password(token: str):
    paper = portal().paper
    person = paper.person_for_initial_password(token)  # LinkInvalid/Expired: error pages
    form = NewPasswordForm(strength_check=lambda pw: paper.strength_problems(person, pw))
    if form.validate_on_submit():
        try:
            paper.set_initial_password(token, form.password.data,
                                       Actor(person.account_name, request.remote_addr or ""))
        except PasswordRefused:
            form.password.errors = [_("The directory refused this password. Choose a longer "
                                      "one you have not used before.")]
        else:
            session.clear()
            flash(_("Your password is set. Log in with your account name and the new "
                    "password."), "success")
            return redirect(url_for("account.login"))
    return render_template("helpdesk/initial_password.html", form=form, person=person)
