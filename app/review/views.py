"""The IR's review page, reached from the link in their mail."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from .. import portal
from ..services.errors import AlreadyDone
from .forms import ApproveForm, RejectForm

bp = Blueprint("review", __name__, url_prefix="/review")


@bp.route("/<token>", methods=["GET", "POST"])
def review(token: str):
    approval = portal().approval
    approve_form, reject_form = ApproveForm(), RejectForm()
    try:
        current = approval.review(token)
        if current.request.status == "approved":
            # A fault may have interrupted the account creation: finish it.
            approval.complete_account(current.request.account_name)
        if request.method == "POST":
            decision = request.form.get("decision")
            if decision == "approve" and approve_form.validate_on_submit():
                done = approval.approve(token, request.remote_addr or "")
                return render_template("review/decided.html", request_=done, again=False)
            if decision == "reject" and reject_form.validate_on_submit():
                done = approval.reject(token, reject_form.reason.data, request.remote_addr or "")
                return render_template("review/decided.html", request_=done, again=False)
    except AlreadyDone as done:
        return render_template("review/decided.html", request_=done.request, again=True)
    if current.request.status not in ("pending-approval", "pending-verification"):
        return render_template("review/decided.html", request_=current.request, again=True)
    status = 400 if request.method == "POST" else 200
    return render_template("review/review.html", review=current, approve_form=approve_form,
                           reject_form=reject_form,
                           category=portal().settings.category_label(current.request.category)), status
