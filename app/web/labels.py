"""The vocabulary in words: one label per member status, request status and
kind of request (app/vocabulary.py holds the values the directory stores),
in the page's language. The IR and helpdesk consoles show these, never the
raw values; templates use the filters ``member_status``, ``request_status``,
``request_kind`` (and ``group_label``, ``country``), views the functions."""
from __future__ import annotations

from flask import Flask
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from ..vocabulary import MemberStatus, RequestKind, RequestStatus

MEMBER_STATUS_LABELS = {
    MemberStatus.ACTIVE: _l("active"),
    MemberStatus.EXPIRED: _l("expired"),
    MemberStatus.SUSPENDED: _l("suspended"),
    MemberStatus.NONE: _l("no membership"),
}
REQUEST_STATUS_LABELS = {
    RequestStatus.PENDING_VERIFICATION: _l("address not confirmed yet"),
    RequestStatus.PENDING_APPROVAL: _l("waiting for approval"),
    RequestStatus.APPROVED: _l("approved"),
    RequestStatus.REJECTED: _l("rejected"),
    RequestStatus.WITHDRAWN: _l("withdrawn"),
}
REQUEST_KIND_LABELS = {
    RequestKind.REGISTRATION: _l("registration"),
    RequestKind.REACTIVATION: _l("reactivation"),
    RequestKind.GROUP: _l("application for a group"),
    RequestKind.INSTITUTION_CHANGE: _l("change of institution"),
    RequestKind.CATEGORY_CHANGE: _l("change of category"),
}


def _label(labels: dict, value: str | None) -> str:
    # A value the vocabulary does not know (an old or foreign entry) is shown as stored.
    return str(labels[value]) if value in labels else (value or "-")


def member_status_label(status: str | None) -> str:
    return _label(MEMBER_STATUS_LABELS, status or "")


def request_status_label(status: str | None) -> str:
    return _label(REQUEST_STATUS_LABELS, status)


def request_kind_label(kind: str | None) -> str:
    return _label(REQUEST_KIND_LABELS, kind)


def country_name(code: str | None) -> str:
    """An ISO 3166 country code (an institution's) by its name in the page's language."""
    locale = get_locale()
    return (locale.territories.get((code or "").upper()) if locale else None) or code or "-"


def group_label(settings, cn: str) -> str:
    """A group by its label in the collaboration file (an extra group, a
    board), the main group in words, any other by its cn."""
    if cn == settings.main_group:
        return str(_l("main group (all members)"))
    group = settings.extra_group(cn)
    return str(group.label) if group else str(settings.stage_labels.get(cn, cn))


def register_labels(app: Flask, settings) -> None:
    app.add_template_filter(lambda cn: group_label(settings, cn), "group_label")
    app.add_template_filter(country_name, "country")
    app.add_template_filter(member_status_label, "member_status")
    app.add_template_filter(request_status_label, "request_status")
    app.add_template_filter(request_kind_label, "request_kind")
