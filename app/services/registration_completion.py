"""An approved registration becomes a member entry (``complete``): the
part of RegistrationService that creates the member, in a module of its own.
It uses the service's directory, mailer, links, settings and clock, and its
``collaboration_mail``."""
from __future__ import annotations

import logging
from dataclasses import replace

from ..directory import EntryExists, NewMember, RequestRecord
from ..vocabulary import RequestStatus
from . import names
from .audit import SYSTEM, audit_event
from .links import Page

log = logging.getLogger("app.services.registration")  # the registration's log, as before


class RegistrationCompletion:
    # -- an approved registration --------------------------------------------------------

    def member_entry_for(self, request: RequestRecord, now, *, mail: str,
                         uid_number: int) -> NewMember:
        """The member entry an approved registration becomes (``complete``
        writes it; the helpdesk's preview shows it before approving)."""
        return NewMember(
            account_name=request.account_name, given_name=request.given_name,
            middle_name=request.middle_name, family_name=request.family_name,
            mail=mail, contact_mail=request.contact_mail,
            institution=request.institution, category=request.category,
            conditions_version=request.conditions_version, member_since=now,
            initial_password_deadline=now + self._directory.initial_password_period(),
            uid_number=uid_number,
            gid_number=self._directory.group_gid_number(self._directory.main_group_dn),
            audit_event=audit_event("member.created", SYSTEM, now, request=request.id,
                                    approved_by=request.decided_by),
            password_hash=request.password_hash,
            name_key=names.person_key(request.given_name, request.family_name),
            member_until=self._settings.membership_end(request.category, now),
            cert_subject=request.cert_subject,
            language=request.language,
            certificate=request.certificate,
        )

    def complete(self, approved: RequestRecord, notify: bool = True) -> bool:
        """Create the member entry of an approved registration; safe to repeat.

        Each step is idempotent (an existing entry or group value counts as
        done) and the request is marked complete last, so a step interrupted
        by a fault is finished by ``flask portal complete-approvals``. True
        when this call completed it (and mailed the new member).
        """
        account_name = approved.account_name
        # A record read with its hash is the approval's own, read a moment
        # ago; any other (a search's, for complete-approvals) is read again.
        request = approved if approved.password_hash else \
            self._directory.request(approved.id, with_password_hash=True)
        if request is None or request.status != RequestStatus.APPROVED or request.completed_at:
            return False
        now = self._clock()
        # Only a completion run again after a fault can find the member
        # there already; an approval's own (the record it just decided) goes
        # straight to the add, which refuses a second entry in any case.
        person = None if approved.password_hash else self._directory.person(account_name)
        if person is None:
            # The final collaboration address is fixed now (another member may
            # have taken the previewed one since the request was submitted).
            mail = self.collaboration_mail(request.given_name, request.middle_name,
                                           request.family_name, exclude_account=account_name)
            if mail != request.collab_mail:
                self._directory.record_collab_mail(request.id, mail)
            member = self.member_entry_for(
                request, now, mail=mail, uid_number=self._directory.allocate_uid_number())
            try:
                person = self._directory.add_member(member)
            except EntryExists:
                log.info("member %s was created by a concurrent completion", account_name)
        if not self._directory.claim_completion(
                request.id, now, audit_event("request.account-created", SYSTEM, now)):
            return False
        person = person or self._directory.person(account_name)
        if not notify:  # the caller mails the new member (the paper route)
            return True
        self._mailer.send("account_ready", [request.contact_mail], request.language,
                          request=replace(request, password_hash=b""), person=person,
                          deadline=person.initial_password_deadline,
                          initial_password_days=self._directory.initial_password_period().days,
                          login_link=self._links.page(Page.LOGIN))
        return True
