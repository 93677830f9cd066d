"""The review page of a request, reached from the link in an approver's mail."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from ..portal import portal
from ..services.errors import AlreadyDone, DuplicateAccount, FormalApplicationMissing
from ..vocabulary import IR_STAGE, RequestStatus
from .forms import ApproveForm, RejectForm

bp = Blueprint("review", __name__, url_prefix="/review")


def _stages(application) -> list[dict]:
    """The approval chain for display: label and whether done/current/next."""
    reviewers = portal().reviewers
    stages = []
    for index, stage in enumerate(application.approval_chain):
        if application.status == RequestStatus.APPROVED or index < application.approval_stage:
            state = "done"
        elif application.status == RequestStatus.PENDING_APPROVAL and \
                index == application.approval_stage:
            state = "current"
        else:
            state = "next"
        stages.append({"label": reviewers.stage_label(stage), "state": state})
    return stages


def _decided(application, again: bool):
    return render_template("review/decided.html", application=application, again=again,
                           stages=_stages(application))


@bp.route("/<token>", methods=["GET", "POST"])
def review(token: str):
    approval = portal().approval
    approve_form, reject_form = ApproveForm(), RejectForm()
    try:
        # LinkInvalid/Expired, NotAuthorised: error pages. Opening the link
        # changes nothing: an approval interrupted by a fault is finished by
        # 'flask portal complete-approvals' (cron).
        current = approval.review(token)
        if request.method == "POST":
            decision = request.form.get("decision")
            if decision == "approve" and approve_form.validate_on_submit():
                try:
                    return _decided(approval.approve(current, request.remote_addr or "",
                                                     approve_form.reference.data or ""),
                                    again=False)
                except DuplicateAccount:
                    return _review_page(current, approve_form, reject_form, 409)
                except FormalApplicationMissing:
                    approve_form.reference.errors = [_(
                        "Give the reference of the formal application to approve.")]
            if decision == "reject" and reject_form.validate_on_submit():
                return _decided(approval.reject(current, reject_form.reason.data,
                                                request.remote_addr or ""), again=False)
    except AlreadyDone as done:
        return _decided(done.request, again=True)
    if not current.waits_for_this_stage:
        return _decided(current.request, again=True)
    return _review_page(current, approve_form, reject_form,
                        400 if request.method == "POST" else 200)


def _review_page(current, approve_form, reject_form, status: int):
    category = portal().settings.category_label(current.request.category)
    stage = current.request.approval_chain[current.stage]
    return render_template("review/review.html", review=current, approve_form=approve_form,
                           reject_form=reject_form, stages=_stages(current.request),
                           category=category, ir_stage=stage == IR_STAGE,
                           stage_label=portal().reviewers.stage_label(stage)), status
