"""Reactivation: a former member (or a holder of a host-lab account) asks,
the link goes to the address on record, the IR of the (new) institution
approves, and the same account works again (see ApprovalService)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from ..clock import Clock, utcnow
from ..directory import (
    Directory, EntryExists, Institution, NewRequest, Person, Request, ldap_time,
)
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import REACTIVATION_ELIGIBLE, RequestKind, RequestStatus
from . import names, tokens
from .audit import Actor, audit_event
from .errors import AlreadyDone, LinkInvalid
from .registration import RegistrationService
from .review import Reviewers

log = logging.getLogger(__name__)


class ReactivationService:
    def __init__(self, directory: Directory, mailer: Mailer, links: tokens.LinkTokens,
                 settings: Settings, registration: RegistrationService,
                 reviewers: Reviewers, url_for_link: Callable[[str, str | None], str],
                 clock: Clock = utcnow):
        self._reviewers = reviewers
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._registration = registration
        self._url_for_link = url_for_link
        self._clock = clock

    def person_for(self, login: str) -> Person | None:
        """The person behind an account name or address, whatever their status."""
        return self._directory.person_by_login(login)

    def send_link(self, person: Person, institution_id: str) -> None:
        """Mail the stored address: a reactivation link, or (an active member)
        a reminder of the account and how to reset its password."""
        address = person.contact_mail or person.mail
        if not address:
            log.warning("no address on record for %s; reactivation not mailed", person.account_name)
            return
        if person.status not in REACTIVATION_ELIGIBLE:
            self._mailer.send("reactivation_not_needed", [address], person=person,
                              reset_link=self._url_for_link("account.request_reset", None))
            return
        token = self._links.issue(tokens.REACTIVATE, {
            "a": person.account_name, "i": institution_id, "s": person.status})
        self._mailer.send("reactivation_link", [address], person=person,
                          link=self._url_for_link("reactivation.confirm", token),
                          max_age_days=self._settings.link_max_age_days)

    def load(self, token: str) -> tuple[Person, str]:
        """The person and suggested institution of a link (GET: nothing changes)."""
        payload = self._links.load(tokens.REACTIVATE, token)
        person = self._directory.person(str(payload.get("a", "")))
        if person is None or person.status != payload.get("s") or \
                person.status not in REACTIVATION_ELIGIBLE:
            raise LinkInvalid("not (or no longer) eligible")
        open_requests = self._directory.open_requests_for(person.account_name, RequestKind.REACTIVATION)
        if open_requests:
            raise AlreadyDone(open_requests[0])
        return person, str(payload.get("i", ""))

    def submit(self, token: str, institution: str, category: str, actor: Actor) -> Request:
        """File the reactivation request and ask the IRs of the institution."""
        person, _ = self.load(token)
        now = self._clock()
        given, family = person.given_name or person.display_name, person.family_name
        new = NewRequest(
            account_name=person.account_name, given_name=given,
            middle_name=person.middle_name, family_name=family,
            contact_mail=person.contact_mail or person.mail, institution=institution,
            category=category,
            collab_mail=person.mail if self._directory.is_collaboration_member(
                person.account_name) else self._registration.collaboration_mail(
                given, person.middle_name, family, exclude_account=person.account_name),
            conditions_version=self._settings.conditions.version, submitted_at=now,
            submitted_from=actor.address, status=RequestStatus.PENDING_APPROVAL,
            audit_event=audit_event("request.reactivation-submitted", actor, now,
                                    institution=institution),
            password_hash=b"", name_key=names.person_key(given, family),
            kind=RequestKind.REACTIVATION, request_id=f"{person.account_name}-{ldap_time(now)[:14]}",
            approval_chain=self._settings.approval_chain(category),
        )
        try:
            self._directory.add_request(new)
        except EntryExists as exc:  # the same second: a double click
            raise AlreadyDone(self._directory.request(new.request_id)) from exc
        request = self._directory.request(new.request_id)
        self._reviewers.notify(request)
        return request

    # -- for the pages ----------------------------------------------------------------------

    def institutions(self) -> list[Institution]:
        """The institutions to choose from, by name."""
        return self._directory.institutions()
