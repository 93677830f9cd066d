"""Reactivation: a former member (or a holder of a host-lab account) asks,
the link goes to the address on record, the IR of the (new) institution
approves, and the same account works again (see ApprovalService)."""
from __future__ import annotations

import logging
import secrets
from typing import Callable

from ..clock import Clock, utcnow
from ..directory import (
    Directory,
    EntryExists,
    Institution,
    NewRequest,
    Person,
    RequestRecord,
    later_request_id,
)
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import REACTIVATION_ELIGIBLE, RequestKind, RequestStatus
from . import names
from .addresses import CollaborationAddresses
from .audit import SYSTEM, Actor, audit_event
from .errors import AlreadyDone, LinkInvalid
from .institutions import InstitutionCatalog
from .links import Links, Page, ReactivationLink
from .review import Reviewers

log = logging.getLogger(__name__)


class ReactivationService:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links, settings: Settings,
                 reviewers: Reviewers, addresses: CollaborationAddresses,
                 new_reset_url: Callable[..., str], institutions: InstitutionCatalog,
                 clock: Clock = utcnow):
        self._directory = directory
        self._institutions = institutions
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._reviewers = reviewers
        self._addresses = addresses
        self._new_reset_url = new_reset_url
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
            self._mailer.send("reactivation_not_needed", [address], person.language,
                              person=person,
                              reset_link=self._links.page(Page.PASSWORD_RESET))
            return
        link = ReactivationLink(person.account_name, institution_id, person.status)
        self._mailer.send("reactivation_link", [address], person.language, person=person,
                          link=self._links.url(link), max_age_days=self._links.max_age_days)

    def load(self, token: str) -> tuple[Person, str]:
        """The person and suggested institution of a link (GET: nothing changes)."""
        link = self._links.load(ReactivationLink, token)
        person = self._directory.person(link.account_name)
        if person is None or person.status != link.status or \
                person.status not in REACTIVATION_ELIGIBLE:
            raise LinkInvalid("not (or no longer) eligible")
        open_requests = self._directory.open_requests_for(person.account_name,
                                                          RequestKind.REACTIVATION)
        if open_requests:
            raise AlreadyDone(open_requests[0])
        return person, link.institution

    def submit(self, token: str, institution: str, category: str, actor: Actor) -> RequestRecord:
        """File the reactivation request and ask the IRs of the institution."""
        person, _ = self.load(token)
        return self._file(person, institution, category, actor)

    def open_request(self, account_name: str) -> RequestRecord | None:
        """The member's reactivation request waiting for a decision, if any."""
        waiting = self._directory.open_requests_for(account_name, RequestKind.REACTIVATION)
        return waiting[0] if waiting else None

    def submit_for_member(self, account_name: str, institution: str, category: str,
                          actor: Actor) -> RequestRecord:
        """The same request, asked by an expired member logged in with the
        right password (no mailed link needed). Raises AlreadyDone,
        LinkInvalid (no longer eligible)."""
        person = self._directory.person(account_name)
        if person is None or person.status not in REACTIVATION_ELIGIBLE:
            raise LinkInvalid("not (or no longer) eligible")
        waiting = self.open_request(account_name)
        if waiting is not None:
            raise AlreadyDone(waiting)
        return self._file(person, institution, category, actor)

    def _file(self, person: Person, institution: str, category: str,
              actor: Actor) -> RequestRecord:
        now = self._clock()
        given, family = person.given_name or person.display_name, person.family_name
        new = NewRequest(
            account_name=person.account_name, given_name=given,
            middle_name=person.middle_name, family_name=family,
            contact_mail=person.contact_mail or person.mail, institution=institution,
            category=category,
            collab_mail=person.mail if self._directory.is_collaboration_member(
                person.account_name) else self._addresses.free_address(
                given, person.middle_name, family, exclude_account=person.account_name),
            conditions_version=self._settings.conditions.version, submitted_at=now,
            submitted_from=actor.address, status=RequestStatus.PENDING_APPROVAL,
            audit_event=audit_event("request.reactivation-submitted", actor, now,
                                    institution=institution),
            password_hash=b"", name_key=names.person_key(given, family),
            kind=RequestKind.REACTIVATION,
            request_id=later_request_id(person.account_name, now),
            approval_chain=self._settings.approval_chain(category), language=person.language,
        )
        try:
            self._directory.add_request(new)
        except EntryExists as exc:  # the same second: a double click
            raise AlreadyDone(self._directory.request(new.request_id)) from exc
        request = self._directory.request(new.request_id)
        self._reviewers.notify(request)
        return request

    def complete(self, request: RequestRecord) -> bool:
        """Make the account of an approved reactivation a working membership
        again: the same entry and account name, the (new) institution and
        category, unlocked, in the main group; the old password is replaced
        and the member mailed a link to set a new one. Repeatable steps first,
        marked complete once."""
        now = self._clock()
        account = request.account_name
        self._directory.prepare_member(
            account, institution=request.institution, category=request.category,
            member_until=self._settings.membership_end(request.category, now),
            collab_mail=request.collab_mail,
            name_key=names.person_key(request.given_name, request.family_name),
            contact_mail=request.contact_mail, now=now,
            gid_number=self._directory.group_gid_number(self._directory.main_group_dn),
            audit_event=audit_event("member.reactivated", SYSTEM, now, request=request.id,
                                    approved_by=request.decided_by))
        # The member sets a new password: the old one must never work again,
        # so it is replaced before the account is unlocked (repeatable). The
        # expired policy refuses every new password and would let the old
        # one in under the default policy: the lock holds while they change.
        self._directory.lock_account(account)
        self._directory.leave_expired_policy(account)
        self._directory.set_password(account, secrets.token_urlsafe(32))
        self._directory.unlock_account(account)
        # Back in the main group: it is dynamic (app/directory/groups.py) and
        # prepare_member made the status active.
        if not self._directory.claim_completion(
                request.id, now, audit_event("request.account-reactivated", SYSTEM, now)):
            return False
        person = self._directory.person(account)
        # Not a reset mail ("if you did not ask..."): the membership is active
        # again, and the link to set a password lasts as long as other links.
        self._mailer.send("membership_reactivated", [person.contact_mail or person.mail],
                          person.language, person=person, request=request,
                          institution=self._directory.institution(request.institution),
                          link=self._new_reset_url(person, lasting=True),
                          max_age_days=self._links.max_age_days)
        return True

    # -- for the pages ----------------------------------------------------------------------

    def institutions(self) -> list[Institution]:
        """The institutions to choose from, by name (cached for a short time)."""
        return self._institutions.all()
