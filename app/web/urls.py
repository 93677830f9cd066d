"""The one place that maps link purposes and pages to the views serving
them. URLs in mail are built from PORTAL_BASE_URL, never the Host header."""
from __future__ import annotations

from typing import Any

from flask import Flask, url_for

from ..services.links import (
    AddressLink,
    InitialPasswordLink,
    InvitationLink,
    Page,
    PlaceholderStatusLink,
    ReactivationLink,
    ResetLink,
    RestartLink,
    ReviewLink,
    StatusLink,
    VerifyLink,
)

ENDPOINTS: dict[Any, str] = {
    VerifyLink: "registration.verify",
    ReviewLink: "review.review",
    ResetLink: "account.reset_password",
    ReactivationLink: "reactivation.confirm",
    AddressLink: "account.confirm_address",
    StatusLink: "registration.status",
    PlaceholderStatusLink: "registration.status",
    InvitationLink: "invited.register",
    RestartLink: "registration.restart",
    Page.PASSWORD_RESET: "account.request_reset",
    Page.REACTIVATION: "reactivation.start",
    Page.LOGIN: "account.login",
    Page.PASSWORD_CHANGE: "account.change_password",
    Page.REGISTRATION: "registration.register",
    Page.HELPDESK_REQUEST: "helpdesk.request_entry",
    InitialPasswordLink: "initial_password.set_password",
}


def url_builder(app: Flask, base_url: str):
    """(link type or page, token) -> absolute URL under ``base_url``."""
    def build(target: Any, token: str | None, **values: str) -> str:
        if token is not None:
            values["token"] = token
        with app.test_request_context(base_url=base_url):
            return url_for(ENDPOINTS[target], _external=True, **values)
    return build
