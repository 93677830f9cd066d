"""Registration: a request is written, the applicant confirms the address,
the institute representatives (IRs) are asked to review, and an approved
registration becomes a member entry (``complete``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..clock import Clock, utcnow
from ..directory import (
    Directory, EntryExists, Institution, NewMember, NewRequest, RequestRecord, StateConflict,
)
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import RequestStatus
from . import names
from .addresses import CollaborationAddresses
from .audit import SYSTEM, Actor, audit_event
from .institutions import InstitutionCatalog
from .errors import (
    AccountNameUnavailable, AlreadyDone, LinkInvalid, PossiblyKnown, SimilarPersonExists,
    UnknownInstitution, UnknownPreviousAccount,
)
from .links import Links, Page, VerifyLink
from .passwords import hash_password
from .review import Reviewers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Application:
    """What the applicant filled in, validated by the form."""
    account_name: str
    given_name: str
    middle_name: str
    family_name: str
    email: str
    institution: str
    category: str
    password: str
    conditions_version: str
    previous_account: str = ""
    not_me: bool = False  # confirmed: not the person of a similar record
    # Subject of a verified client certificate, passed on by the TLS terminator.
    cert_subject: str = ""
    language: str = ""  # the page's language: the applicant's mails are in it


class RegistrationService:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links, settings: Settings,
                 reviewers: Reviewers, addresses: CollaborationAddresses,
                 institutions: InstitutionCatalog | None = None, clock: Clock = utcnow):
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._reviewers = reviewers
        self._addresses = addresses
        self._institutions = institutions or InstitutionCatalog(directory)
        self._clock = clock

    # -- checks used while the form is filled in ------------------------------------

    def account_name_reserved(self, account_name: str) -> bool:
        return account_name in self._settings.reserved_account_names

    def account_name_taken(self, account_name: str) -> bool:
        return bool(self._directory.account_names_in_use([account_name]))

    def free_account_names(self, given: str, middle: str, family: str, limit: int = 5) -> list[str]:
        candidates = [c for c in names.account_name_candidates(given, middle, family)
                      if not self.account_name_reserved(c)]
        taken = self._directory.account_names_in_use(candidates)
        return [c for c in candidates if c not in taken][:limit]

    def collaboration_mail(self, given: str, middle: str, family: str,
                           exclude_account: str = "") -> str:
        """The first free ``given.middle.family@domain`` (a digit on collision)."""
        return self._addresses.free_address(given, middle, family, exclude_account)

    # -- steps -----------------------------------------------------------------------------

    def name_on_record(self, given: str, family: str) -> bool:
        """Someone of this name (either order, folded) is or was known."""
        keys = names.person_keys(given, family)
        return bool(keys) and bool(self._directory.earlier_records(name_keys=keys))

    def check_earlier_records(self, application: Application) -> None:
        """Never register twice: stop (PossiblyKnown) on a strong match with
        an earlier person or request, ask (SimilarPersonExists) on a weak one.

        Strong: the same e-mail address (institutional or collaboration),
        the account named as held before, or the same person by name at the
        same institution. Weak: the same person by name elsewhere. The
        applicant learns nothing about the records; their owners are mailed.
        """
        email = application.email.lower()
        keys = names.person_keys(application.given_name, application.family_name)
        previous = application.previous_account
        subjects = [application.cert_subject] if application.cert_subject else []
        records = [r for r in self._directory.earlier_records(
            emails=[email], name_keys=keys, account_names=[previous] if previous else [],
            cert_subjects=subjects)
            # An unconfirmed request proves nothing: anyone could have sent it
            # in someone else's name to keep them out.
            if r.is_person or r.status != RequestStatus.PENDING_VERIFICATION]
        if previous and not any(r.is_person and r.account_name == previous for r in records):
            raise UnknownPreviousAccount(previous)
        strong = [r for r in records if email in (r.contact_mail.lower(), r.mail.lower())
                  or (r.is_person and previous and r.account_name == previous)
                  or (application.cert_subject and application.cert_subject in r.cert_subjects)
                  or (set(keys) & set(r.name_keys) and r.institution == application.institution)]
        if strong:
            self._mail_known_person(strong)
            raise PossiblyKnown()
        if not application.not_me and any(set(keys) & set(r.name_keys) for r in records):
            raise SimilarPersonExists()

    def _mail_known_person(self, records) -> None:
        """Tell the owners of the matching records (at their stored address)."""
        by_address: dict[str, list] = {}
        for record in records:
            address = record.contact_mail or record.mail
            if address:
                by_address.setdefault(address.lower(), []).append(record)
        for address, mine in by_address.items():
            language = next((r.language for r in mine if r.language), "")
            self._mailer.send("known_person", [address], language, records=mine,
                              reset_link=self._links.page(Page.PASSWORD_RESET),
                              reactivate_link=self._links.page(Page.REACTIVATION))
        log.info("registration stopped: earlier records", extra={
            "event": "request.duplicate", "records": len(records)})

    def submit(self, application: Application, actor: Actor) -> RequestRecord:
        """Write the request, then mail the applicant a confirmation link.

        Raises PossiblyKnown / SimilarPersonExists / UnknownPreviousAccount
        (see check_earlier_records) and AccountNameUnavailable when someone
        took the name meanwhile: the directory add is the guard against
        concurrent registrations.
        """
        if self._directory.institution(application.institution) is None:
            raise UnknownInstitution(application.institution)
        self.check_earlier_records(application)
        now = self._clock()
        new = NewRequest(
            account_name=application.account_name,
            given_name=application.given_name,
            middle_name=application.middle_name,
            family_name=application.family_name,
            contact_mail=application.email,
            institution=application.institution,
            category=application.category,
            collab_mail=self.collaboration_mail(
                application.given_name, application.middle_name, application.family_name),
            conditions_version=application.conditions_version,
            submitted_at=now,
            submitted_from=actor.address,
            status=RequestStatus.PENDING_VERIFICATION,
            audit_event=audit_event("request.submitted", actor, now,
                                    conditions=application.conditions_version),
            password_hash=hash_password(application.password),
            name_key=names.person_key(application.given_name, application.family_name),
            previous_account=application.previous_account,
            approval_chain=self._settings.approval_chain(application.category),
            cert_subject=application.cert_subject,
            language=application.language,
        )
        if self.account_name_taken(new.account_name):
            raise AccountNameUnavailable(new.account_name)
        try:
            self._directory.add_request(new)
        except EntryExists as exc:
            raise AccountNameUnavailable(new.account_name) from exc
        request = self._directory.request(new.account_name)
        log.info("request submitted", extra={"event": "request.submitted",
                                             "account": new.account_name})
        self._send_verification(request)
        return request

    def _send_verification(self, request: RequestRecord) -> None:
        link = VerifyLink(request.id, request.submitted_at.isoformat())
        self._mailer.send("verify_email", [request.contact_mail], request.language,
                          request=request,
                          link=self._links.url(link), max_age_days=self._links.max_age_days)

    def request_for_verification(self, token: str) -> RequestRecord:
        """The request a confirmation link is for (GET: nothing changes)."""
        link = self._links.load(VerifyLink, token)
        request = self._directory.request(link.request_id)
        if request is None or request.submitted_at is None or \
                request.submitted_at.isoformat() != link.submitted_at:
            raise LinkInvalid("unknown request")
        return request

    def confirm_email(self, token: str, actor: Actor) -> RequestRecord:
        """pending-verification -> pending-approval, then ask the IRs."""
        request = self.request_for_verification(token)
        if request.status != RequestStatus.PENDING_VERIFICATION:
            raise AlreadyDone(request)
        now = self._clock()
        try:
            self._directory.record_address_confirmed(
                request.id, now, audit_event("request.email-verified", actor, now))
        except StateConflict as exc:
            raise AlreadyDone(self._directory.request(request.id)) from exc
        request = self._directory.request(request.id)
        self._reviewers.notify(request)
        return request

    # -- an approved registration --------------------------------------------------------

    def complete(self, approved: RequestRecord) -> bool:
        """Create the member entry of an approved registration; safe to repeat.

        Each step is idempotent (an existing entry or group value counts as
        done) and the request is marked complete last, so a step interrupted
        by a fault is finished by ``flask portal complete-approvals``. True
        when this call completed it (and mailed the new member).
        """
        account_name = approved.account_name
        request = self._directory.request(approved.id, with_password_hash=True)
        if request is None or request.status != RequestStatus.APPROVED or request.completed_at:
            return False
        now = self._clock()
        if self._directory.person(account_name) is None:
            # The final collaboration address is fixed now (another member may
            # have taken the previewed one since the request was submitted).
            mail = self.collaboration_mail(request.given_name, request.middle_name,
                                           request.family_name, exclude_account=account_name)
            if mail != request.collab_mail:
                self._directory.record_collab_mail(request.id, mail)
            member = NewMember(
                account_name=account_name, given_name=request.given_name,
                middle_name=request.middle_name, family_name=request.family_name,
                mail=mail, contact_mail=request.contact_mail,
                institution=request.institution, category=request.category,
                conditions_version=request.conditions_version, member_since=now,
                initial_password_deadline=now + self._directory.initial_password_period(),
                uid_number=self._directory.allocate_uid_number(),
                gid_number=self._directory.group_gid_number(self._directory.main_group_dn),
                audit_event=audit_event("member.created", SYSTEM, now, request=request.id,
                                        approved_by=request.decided_by),
                password_hash=request.password_hash,
                name_key=names.person_key(request.given_name, request.family_name),
                member_until=self._settings.membership_end(request.category, now),
                cert_subject=request.cert_subject,
                language=request.language,
            )
            try:
                self._directory.add_member(member)
            except EntryExists:
                log.info("member %s was created by a concurrent completion", account_name)
        self._directory.add_group_member(self._directory.main_group_dn,
                                         self._directory.person_dn(account_name))
        if not self._directory.claim_completion(
                request.id, now, audit_event("request.account-created", SYSTEM, now)):
            return False
        person = self._directory.person(account_name)
        self._mailer.send("account_ready", [request.contact_mail], request.language,
                          request=self._directory.request(request.id), person=person,
                          deadline=person.initial_password_deadline,
                          initial_password_days=self._directory.initial_password_period().days)
        return True

    # -- for the pages ----------------------------------------------------------------------

    def institutions(self) -> list[Institution]:
        """The institutions to choose from, by name (cached for a short
        time). The portal's open connection is asked who it is first (a
        fraction of a millisecond), so that the page still says when the
        directory cannot be reached (DirectoryUnavailable)."""
        self._directory.ping()
        return self._institutions.all()

    def initial_password_days(self) -> int:
        """How many days an initial password works."""
        return self._directory.initial_password_period().days

    def name_hints(self, given: str, middle: str, family: str, *,
                   on_record: bool = False) -> dict:
        """Suggested free account names and the collaboration mail preview
        (``on_record``: also whether someone of this name is on record);
        empty while the names are incomplete or not acceptable."""
        hints = {"suggestions": [], "mail_preview": ""}
        if on_record:
            hints["maybe_known"] = False
        if not (given and family) or any(names.name_problem(n) for n in (given, middle, family)):
            return hints
        hints["suggestions"] = self.free_account_names(given, middle, family)
        hints["mail_preview"] = self.collaboration_mail(given, middle, family)
        if on_record:
            # Only "someone of this name is on record": no details, no address check.
            hints["maybe_known"] = self.name_on_record(given, family)
        return hints
