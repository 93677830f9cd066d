"""Registration: a request is written, the applicant confirms the address,
the institute representatives (IRs) are asked to review, and an approved
registration becomes a member entry (``complete``, in
registration_completion.py); an invited person's registration is in
registration_invited.py."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from ..clock import Clock, utcnow
from ..directory import (
    Certificate,
    Directory,
    EntryExists,
    Institution,
    NewRequest,
    Person,
    RequestRecord,
    StateConflict,
    later_request_id,
)
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import ENDED_STATUSES, REACTIVATION_ELIGIBLE, RequestKind, RequestStatus
from . import names
from .addresses import CollaborationAddresses
from .audit import SYSTEM, Actor, audit_event
from .duplicates import Candidate, Duplicates
from .errors import (
    AccountNameUnavailable,
    AlreadyDone,
    LinkInvalid,
    PossiblyKnown,
    UnknownInstitution,
)
from .institutions import InstitutionCatalog
from .links import Links, RestartLink, VerifyLink
from .passwords import hash_password
from .registration_completion import RegistrationCompletion
from .registration_invited import InvitedRegistration
from .review import Reviewers
from .status import status_link

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
    # Subject and issuer of that certificate (/register/certificate and /register).
    certificate: Certificate | None = None


class RegistrationService(RegistrationCompletion, InvitedRegistration):
    """The submission and confirmation of a registration; completing an
    approved one (registration_completion.py) and the invited path
    (registration_invited.py) are in modules of their own."""

    def __init__(self, directory: Directory, mailer: Mailer, links: Links, settings: Settings,
                 reviewers: Reviewers, addresses: CollaborationAddresses,
                 duplicates: Duplicates, institutions: InstitutionCatalog,
                 clock: Clock = utcnow):
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._reviewers = reviewers
        self._addresses = addresses
        self._duplicates = duplicates
        self._institutions = institutions
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
        return self._duplicates.name_on_record(given, family)

    def check_earlier_records(self, application: Application) -> None:
        """Never register twice (see duplicates.py): PossiblyKnown on a
        strong match, SimilarPersonExists on a weak one."""
        self._duplicates.check_new(Candidate(
            application.email, application.given_name, application.family_name,
            application.institution, application.previous_account, application.cert_subject),
            application.not_me)

    def submit(self, application: Application, actor: Actor) -> RequestRecord:
        """Write the request, then mail the applicant a confirmation link.

        Raises PossiblyKnown / SimilarPersonExists / UnknownPreviousAccount
        (see check_earlier_records) and AccountNameUnavailable when someone
        took the name meanwhile: the directory add is the guard against
        concurrent registrations.
        """
        returned, password_hash = self._screened(application, actor)
        if returned is not None:
            return returned
        now = self._clock()
        new = self._registration_request(application, actor, now, password_hash)
        # Someone who lost the confirmation mail registers again: nothing is
        # replaced (anyone may type an address), the address is mailed its
        # unconfirmed registration's links: confirm it, or withdraw it and
        # start over (never two requests). The answer is that of a new one.
        unconfirmed = self._unconfirmed_for(new)
        if unconfirmed:
            self._send_unconfirmed_reminder(unconfirmed[0])
            log.info("registration again for an unconfirmed address", extra={
                "event": "request.unconfirmed-reminded", "account": unconfirmed[0].account_name})
            raise PossiblyKnown("an unconfirmed registration for this address")
        request = self._directory.request(self._add_registration(new, now))
        log.info("request submitted", extra={"event": "request.submitted",
                                             "account": new.account_name})
        self._send_verification(request)
        return request

    def _screened(self, application: Application,
                  actor: Actor) -> tuple[RequestRecord | None, bytes]:
        """The checks every registration (the form's, an invited one) passes
        first: UnknownInstitution, then the earlier records (see
        check_earlier_records). Returns (the reactivation filed instead, b"")
        when the applicant names an account that may return, else (None,
        the password's hash)."""
        if self._directory.institution(application.institution) is None:
            raise UnknownInstitution(application.institution)
        # Hashed first: a known applicant's answer takes as long as a new one's.
        password_hash = hash_password(application.password)
        previous = self._directory.person(application.previous_account) \
            if application.previous_account else None
        if previous is not None and previous.status in REACTIVATION_ELIGIBLE:
            return self._submit_return(application, previous, actor), b""
        self.check_earlier_records(application)
        return None, password_hash

    def _registration_request(self, application: Application, actor: Actor, now,
                              password_hash: bytes, **route) -> NewRequest:
        """The request a registration writes, in its first state (``route``:
        how it came, for the audit record)."""
        return NewRequest(
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
                                    conditions=application.conditions_version, **route),
            password_hash=password_hash,
            name_key=names.person_key(application.given_name, application.family_name),
            previous_account=application.previous_account,
            approval_chain=self._settings.approval_chain(application.category),
            cert_subject=application.cert_subject, certificate=application.certificate,
            language=application.language,
        )

    def _unconfirmed_for(self, new: NewRequest) -> list[RequestRecord]:
        """The unconfirmed registrations of the new request's address; raises
        AccountNameUnavailable when its name is held by anything else."""
        unconfirmed = self._directory.unconfirmed_requests(contact_mail=new.contact_mail)
        if self.account_name_taken(new.account_name) and \
                new.account_name not in {r.account_name for r in unconfirmed}:
            raise AccountNameUnavailable(new.account_name)
        return unconfirmed

    def _add_registration(self, new: NewRequest, now) -> str:
        """Write the request (the directory add guards against a concurrent
        one); a rejected earlier request keeps its history under its own id.
        Returns the id it is filed under."""
        earlier = self._directory.request(new.account_name)
        if earlier is not None and earlier.status in ENDED_STATUSES:
            new = replace(new, request_id=later_request_id(new.account_name, now))
        try:
            self._directory.add_request(new)
        except EntryExists as exc:
            raise AccountNameUnavailable(new.account_name) from exc
        return new.request_id or new.account_name

    def _submit_return(self, application: Application, person: Person,
                       actor: Actor) -> RequestRecord:
        """"I had an account before", and it is expired (or a host-lab
        account): a reactivation of that account with the address typed now,
        which the applicant confirms first; the IR approves as for every
        reactivation. Never a second account."""
        self._duplicates.check_new(Candidate(
            application.email, application.given_name, application.family_name,
            application.institution, cert_subject=application.cert_subject),
            application.not_me, returning=person.account_name)
        now = self._clock()
        for earlier in self._directory.open_requests_for(person.account_name,
                                                         RequestKind.REACTIVATION):
            self._directory.withdraw_unconfirmed(earlier.id)  # only unconfirmed ones go
        given, family = person.given_name or application.given_name, \
            person.family_name or application.family_name
        new = NewRequest(
            account_name=person.account_name, given_name=given,
            middle_name=person.middle_name, family_name=family,
            contact_mail=application.email, institution=application.institution,
            category=application.category,
            collab_mail=person.mail if self._directory.is_collaboration_member(
                person.account_name) else self._addresses.free_address(
                given, person.middle_name, family, exclude_account=person.account_name),
            conditions_version=application.conditions_version, submitted_at=now,
            submitted_from=actor.address, status=RequestStatus.PENDING_VERIFICATION,
            audit_event=audit_event("request.reactivation-submitted", actor, now,
                                    institution=application.institution,
                                    conditions=application.conditions_version),
            password_hash=b"", name_key=names.person_key(given, family),
            previous_account=person.account_name, kind=RequestKind.REACTIVATION,
            request_id=later_request_id(person.account_name, now),
            approval_chain=self._settings.approval_chain(application.category),
            cert_subject=application.cert_subject,
            language=application.language or person.language,
        )
        try:
            self._directory.add_request(new)
        except EntryExists as exc:  # the same second: a double click
            raise AccountNameUnavailable(person.account_name) from exc
        request = self._directory.request(new.request_id)
        log.info("reactivation asked through registration", extra={
            "event": "request.submitted", "account": person.account_name})
        self._send_verification(request)
        return request

    def _send_verification(self, request: RequestRecord) -> None:
        link = VerifyLink(request.id, request.submitted_at.isoformat())
        self._mailer.send("verify_email", [request.contact_mail], request.language,
                          request=request,
                          # The link works as long as the unconfirmed request is kept.
                          link=self._links.url(link),
                          max_age_days=min(self._links.max_age_days,
                                           self._settings.unconfirmed_request_days),
                          status_link=self.status_url(request))

    def send_verification(self, request: RequestRecord) -> None:
        """The confirmation mail again (the status page's button)."""
        self._send_verification(request)

    def status_url(self, request: RequestRecord) -> str:
        """The applicant's status page of ``request`` (a signed link)."""
        return self._links.url(status_link(request))

    def _send_unconfirmed_reminder(self, request: RequestRecord) -> None:
        submitted = request.submitted_at.isoformat()
        self._mailer.send("unconfirmed_registration", [request.contact_mail], request.language,
                          request=request,
                          link=self._links.url(VerifyLink(request.id, submitted)),
                          restart_link=self._links.url(RestartLink(request.id, submitted)),
                          max_age_days=self._links.max_age_days)

    def request_for_restart(self, token: str) -> RequestRecord:
        """The unconfirmed registration a restart link is for (GET: nothing
        changes). Raises LinkInvalid, AlreadyDone (confirmed meanwhile)."""
        link = self._links.load(RestartLink, token)
        request = self._directory.request(link.request_id)
        if request is None or request.submitted_at is None or \
                request.submitted_at.isoformat() != link.submitted_at:
            raise LinkInvalid("unknown request")
        if request.status != RequestStatus.PENDING_VERIFICATION:
            raise AlreadyDone(request)
        return request

    def restart(self, token: str) -> RequestRecord:
        """Withdraw the unconfirmed registration of a restart link (once):
        its account name and address are free for a new registration."""
        request = self.request_for_restart(token)
        if not self._directory.withdraw_unconfirmed(request.id):
            raise AlreadyDone(self._directory.request(request.id) or request)
        log.info("unconfirmed request withdrawn to start over", extra={
            "event": "request.restarted", "account": request.account_name})
        return request

    def expire_unconfirmed(self, now=None) -> int:
        """Delete registrations whose address was not confirmed within
        PORTAL_UNCONFIRMED_REQUEST_DAYS: their account names are free again
        (idempotent; for cron). The number withdrawn."""
        return len(self.expire_unconfirmed_requests(now))

    def expire_unconfirmed_requests(self, now=None) -> list[RequestRecord]:
        """expire_unconfirmed, returning the requests withdrawn."""
        now = now or self._clock()
        cutoff = now - timedelta(days=self._settings.unconfirmed_request_days)
        expired = [r for r in self._directory.unconfirmed_requests(submitted_before=cutoff)
                   if self._directory.withdraw_unconfirmed(r.id)]
        for request in expired:
            log.info("unconfirmed request expired", extra={
                "event": "request.expired", "account": request.account_name})
        return expired

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
        # Checked again now that the address is proven: the approver's page
        # shows what matched, and approval is refused for a second account.
        found = self._duplicates.of_request(request)
        if found:
            self._directory.add_request_audit(request.id, audit_event(
                "request.possible-duplicate", SYSTEM, now,
                matches=",".join(m.record.account_name for m in found)))
        self._reviewers.notify(request)
        return self._directory.request(request.id)

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
