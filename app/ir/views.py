"""The IR console (/ir): requests waiting for the representative, the roster
of their institution(s) with its lifecycle actions, the yearly roster
confirmation; and the helpdesk's list of rosters not confirmed."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from babel.dates import format_skeleton
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

from ..portal import portal
from ..services.audit import Actor
from ..services.lifecycle import LifecycleError
from ..services.roster import CONFIRMATION_LIMIT
from ..vocabulary import MemberStatus
from ..web.labels import member_status_label
from ..web.security import FORM_FIELD_LIMITS
from ..web.sessions import current_roles, helpdesk_required, representative_required
from .forms import (
    ConfirmRosterForm,
    EndMembershipForm,
    MemberUntilForm,
    RosterFilterForm,
    UndoEndForm,
)

bp = Blueprint("ir", __name__, url_prefix="/ir")
# The confirmation has one field per member (and the token and the reason).
FORM_FIELD_LIMITS["ir.confirm"] = CONFIRMATION_LIMIT + 10
# The statuses the roster filters by (their words: app/web/labels.py).
ROSTER_STATUSES = (MemberStatus.ACTIVE, MemberStatus.EXPIRED, MemberStatus.SUSPENDED)
# Cells a spreadsheet would read as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@bp.app_template_filter("day")
def day(value: datetime | None) -> str:
    """A date (UTC) the way the page's language writes it, no time."""
    if not value:
        return ""
    return format_skeleton("yMMMd", value, tzinfo=timezone.utc, locale=get_locale())


def _actor() -> Actor:
    return Actor(g.account, request.remote_addr or "")


def _within() -> frozenset[str]:
    return current_roles().institution_ids


def _institution():
    """The institution the page is about: ?institution=<id> among the
    represented ones (403 for another), else the first."""
    represented = current_roles().represented
    wanted = request.values.get("institution", "")
    if not wanted:
        return represented[0]
    for institution in represented:
        if institution.id == wanted:
            return institution
    abort(403)


def _status_label(status: str) -> str:
    return member_status_label(status)


@bp.route("")
@representative_required
def pending():
    roster = portal().roster
    waiting = roster.pending(g.account, _within())
    due = [i for i in current_roles().represented if roster.confirmation_due(i)]
    settings = portal().settings
    return render_template("ir/pending.html", waiting=waiting, due=due,
                           institutions=current_roles().represented,
                           category_label=settings.category_label)


@bp.route("/requests/<request_id>")
@representative_required
def review(request_id: str):
    """The review page of a waiting request, as from the mail (whose link
    may have expired): a fresh link for this IR, checked there again."""
    token = portal().roster.review_token(g.account, request_id, _within())
    return redirect(url_for("review.review", token=token))


def _filters():
    settings = portal().settings
    form = RosterFilterForm(request.args)
    form.institution.choices = [(i.id, i.name) for i in current_roles().represented]
    form.status.choices = [("", _("any"))] + [(s.value, _status_label(s)) for s in ROSTER_STATUSES]
    form.category.choices = [("", _("any"))] + [(c.key, c.label) for c in settings.categories]
    if not form.validate():
        abort(400)
    return form


@bp.route("/members")
@representative_required
def members():
    institution = _institution()
    form = _filters()
    try:
        page_number = max(1, int(request.args.get("page", "1")))
    except ValueError:
        abort(400)
    page = portal().roster.members(institution.id, _within(), status=form.status.data or "",
                                   category=form.category.data or "", page=page_number)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("ir/members.html", institution=institution, form=form, page=page,
                           status_label=_status_label, args=args,
                           category_label=portal().settings.category_label,
                           several=len(current_roles().represented) > 1)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _iso_day(value: datetime | None) -> str:
    return value.date().isoformat() if value else ""


@bp.route("/members.csv")
@representative_required
def members_csv():
    institution = _institution()
    form = _filters()
    lines = portal().roster.export(institution.id, _within(), status=form.status.data or "",
                                   category=form.category.data or "")

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["account", "name", "status", "category", "member_since",
                         "member_until", "ending", "password_expires"])
        for line in lines:
            m = line.member
            writer.writerow([_cell(v) for v in (
                m.account_name, m.display_name, m.status, m.category, _iso_day(m.member_since),
                _iso_day(m.member_until), "yes" if line.ending else "",
                _iso_day(line.password_expires))])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    filename = f"members-{institution.id}.csv"
    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _member_page(person, status: int = 200, end_form=None, undo_form=None, until_form=None):
    settings = portal().settings
    institution = next((i for i in current_roles().represented if i.id == person.institution),
                       None)
    until_form = until_form or MemberUntilForm(formdata=None,
                                               until=person.member_until.date()
                                               if person.member_until else None)
    return render_template(
        "ir/member.html", person=person, institution=institution,
        status_label=_status_label(person.status),
        category=settings.category_label(person.category),
        grace_days=settings.membership_grace_days,
        grace_end=portal().lifecycle.grace_end(),
        end_form=end_form or EndMembershipForm(formdata=None),
        undo_form=undo_form or UndoEndForm(formdata=None), until_form=until_form), status


@bp.route("/members/<account_name>")
@representative_required
def member(account_name: str):
    return _member_page(portal().roster.member(account_name, _within()))


def _lifecycle_post(account_name: str, form, form_name: str, change, done: str):
    person = portal().roster.member(account_name, _within())  # NotAuthorised: 403
    if not form.validate_on_submit():
        return _member_page(person, 400, **{form_name: form})
    try:
        change(person, form)
    except LifecycleError:
        flash(_("Nothing was changed: the membership is not in a state that allows this."),
              "error")
        return _member_page(person, 409)
    flash(done, "success")
    return redirect(url_for("ir.member", account_name=account_name))


@bp.route("/members/<account_name>/end", methods=["POST"])
@representative_required
def end(account_name: str):
    return _lifecycle_post(
        account_name, EndMembershipForm(), "end_form",
        lambda person, form: portal().lifecycle.end_membership(
            person.account_name, _actor(), form.reason.data, within=_within()),
        _("The membership ends after the grace period; the member was told."))


@bp.route("/members/<account_name>/undo", methods=["POST"])
@representative_required
def undo(account_name: str):
    return _lifecycle_post(
        account_name, UndoEndForm(), "undo_form",
        lambda person, form: portal().lifecycle.undo_end_membership(
            person.account_name, _actor(), form.reason.data or "", within=_within()),
        _("The membership goes on as before."))


@bp.route("/members/<account_name>/until", methods=["POST"])
@representative_required
def until(account_name: str):
    return _lifecycle_post(
        account_name, MemberUntilForm(), "until_form",
        lambda person, form: portal().lifecycle.set_member_until(
            person.account_name, form.until.data, _actor(), form.reason.data or "",
            within=_within()),
        _("The member-until date is saved."))


@bp.route("/confirm", methods=["GET", "POST"])
@representative_required
def confirm():
    institution = _institution()
    roster = portal().roster
    form = ConfirmRosterForm()
    lines = roster.confirmation_list(institution.id, _within())
    too_many = len(lines) > CONFIRMATION_LIMIT
    status = 200
    if request.method == "POST" and not too_many:
        choices = {key[2:]: value for key, value in request.form.items() if key.startswith("m-")}
        if not form.validate_on_submit() or \
                any(value not in ("stays", "leaves") for value in choices.values()):
            abort(400)
        leaving = {account for account, value in choices.items() if value == "leaves"}
        if leaving and not form.reason.data:
            form.reason.errors = [_("Give the reason for those who leave: they read it.")]
            status = 400
        else:
            ended = roster.confirm_roster(institution.id, _actor(), leaving, form.reason.data or "",
                                          _within(), listed=choices)
            flash(_("Roster of %(institution)s confirmed.", institution=institution.name)
                  + (" " + _("Memberships ending: %(accounts)s.", accounts=", ".join(ended))
                     if ended else ""), "success")
            return redirect(url_for("ir.pending"))
    return render_template("ir/confirm.html", institution=institution, lines=lines, form=form,
                           too_many=too_many, limit=CONFIRMATION_LIMIT,
                           chosen=request.form if request.method == "POST" else {},
                           due=roster.confirmation_due(institution),
                           category_label=portal().settings.category_label,
                           several=len(current_roles().represented) > 1), status


@bp.route("/rosters")
@helpdesk_required
def rosters():
    """For the helpdesk: institutions whose roster was not confirmed within the period."""
    return render_template("ir/rosters.html", statuses=portal().roster.roster_status(),
                           period=portal().settings.roster_confirmation_days)
