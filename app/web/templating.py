"""What every template may use: settings shown on pages, the vocabulary,
the consoles the visitor may open, and the ``when`` filter for times."""
from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, g, url_for
from flask_babel import lazy_gettext as _l

from ..settings import Settings
from ..vocabulary import MemberStatus, RequestKind, RequestStatus
from .i18n import format_when
from .labels import register_labels
from .sessions import shown_roles


def register_template_helpers(app: Flask, settings: Settings) -> None:
    app.jinja_env.globals.update(
        collaboration=settings.collaboration_name,
        helpdesk_email=settings.helpdesk_email,
        dev_mode=settings.is_dev,
        password_min_length=settings.password_min_length,
        RequestStatus=RequestStatus, RequestKind=RequestKind, MemberStatus=MemberStatus,
        console_links=console_links,
    )

    @app.template_filter("when")
    def when(value):
        # Audit records keep their time as ISO text.
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
            except ValueError:
                return value
        return format_when(value)

    register_labels(app, settings)


# The consoles in the header: (endpoint, label, who may open it). A console
# shows up once its blueprint is registered.
CONSOLES = (
    ("ir.pending", _l("Institute"), lambda roles: roles.is_representative),
    ("invitations.index", _l("Invitations"), lambda roles: roles.is_representative),
    ("helpdesk.index", _l("Helpdesk"), lambda roles: roles.helpdesk),
)


def console_links() -> list[tuple[str, str]]:
    """(label, URL) of each console the visitor may use (as far as the
    header knows: each console checks again)."""
    if not g.get("account"):
        return []
    roles = shown_roles()
    return [(str(label), url_for(endpoint)) for endpoint, label, allowed in CONSOLES
            if endpoint in current_app.view_functions and allowed(roles)]
