"""What every template may use: settings shown on pages, the vocabulary,
and the ``when`` filter for times."""
from __future__ import annotations

from flask import Flask

from ..settings import Settings
from ..vocabulary import MemberStatus, RequestKind, RequestStatus
from .i18n import format_when


def register_template_helpers(app: Flask, settings: Settings) -> None:
    app.jinja_env.globals.update(
        collaboration=settings.collaboration_name,
        helpdesk_email=settings.helpdesk_email,
        dev_mode=settings.is_dev,
        password_min_length=settings.password_min_length,
        RequestStatus=RequestStatus, RequestKind=RequestKind, MemberStatus=MemberStatus,
    )

    @app.template_filter("when")
    def when(value):
        return format_when(value)
