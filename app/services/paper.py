"""The paper route: the helpdesk files a registration from a signed paper
form (no password: the applicant never typed one), it goes to the
institution's representatives as every registration does (or, with
PORTAL_HELPDESK_MAY_APPROVE_PAPER, the helpdesk approves it itself), and the
new member is mailed a link to set the first password (valid
INITIAL_PASSWORD_LINK_DAYS, once), then logs in as everyone else."""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from ..clock import Clock, utcnow
from ..directory import Directory, EntryExists, NewRequest, Person, RequestRecord
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import MemberStatus, RequestStatus
from . import names
from .audit import Actor, audit_event
from .duplicates import STRONG, Candidate, Duplicates, Match
from .errors import (
    AccountNameUnavailable,
    LinkInvalid,
    LinkUsed,
    PasswordRefused,
    ServiceError,
    UnknownInstitution,
)
from .links import INITIAL_PASSWORD_LINK_DAYS, InitialPasswordLink, Links, Page
from .passwords import password_problems
from .registration import Application, RegistrationService
from .review import Reviewers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaperApplication:
    """What the signed paper form says, typed in by the helpdesk."""
    application: Application  # the registration fields (password empty)
    verified_by: str  # who checked the signed form
    note: str = ""


class PaperMatches(ServiceError):
    """People or requests that may be the applicant: ``strong`` ones stop
    the request, weak ones need the helpdesk's "not the same person"."""

    def __init__(self, matches: list[Match], strong: bool):
        super().__init__("earlier records match")
        self.matches = matches
        self.strong = strong


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class PaperRoute:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links, settings: Settings,
                 registration: RegistrationService, reviewers: Reviewers,
                 duplicates: Duplicates, clock: Clock = utcnow):
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._registration = registration
        self._reviewers = reviewers
        self._duplicates = duplicates
        self._clock = clock

    def submit(self, paper: PaperApplication, actor: Actor) -> RequestRecord:
        """Write the request as waiting for approval (the helpdesk saw the
        signed form; the address is proven when the member sets the password
        from the mail) and ask the representatives. Raises PaperMatches,
        UnknownInstitution, AccountNameUnavailable."""
        a = paper.application
        if self._directory.institution(a.institution) is None:
            raise UnknownInstitution(a.institution)
        found = self._duplicates.matches(Candidate(
            a.email, a.given_name, a.family_name, a.institution, a.previous_account))
        strong = [m for m in found if any(r in STRONG for r in m.reasons)]
        if strong:
            raise PaperMatches(strong, strong=True)
        if found and not a.not_me:
            raise PaperMatches(found, strong=False)
        if self._registration.account_name_taken(a.account_name):
            raise AccountNameUnavailable(a.account_name)
        now = self._clock()
        new = NewRequest(
            account_name=a.account_name, given_name=a.given_name, middle_name=a.middle_name,
            family_name=a.family_name, contact_mail=a.email, institution=a.institution,
            category=a.category,
            collab_mail=self._registration.collaboration_mail(
                a.given_name, a.middle_name, a.family_name),
            conditions_version=a.conditions_version, submitted_at=now,
            submitted_from=actor.address, status=RequestStatus.PENDING_APPROVAL,
            audit_event=audit_event("request.paper-submitted", actor, now, reason=paper.note,
                                    verified_by=paper.verified_by,
                                    conditions=a.conditions_version),
            password_hash=b"", name_key=names.person_key(a.given_name, a.family_name),
            approval_chain=self._settings.approval_chain(a.category), language=a.language,
        )
        try:
            self._directory.add_request(new, extra=self._directory.paper_attributes(
                paper.verified_by, paper.note))
        except EntryExists as exc:
            raise AccountNameUnavailable(a.account_name) from exc
        log.info("paper request filed", extra={"event": "request.paper-submitted",
                                               "account": a.account_name, "actor": actor.name})
        request = self._directory.request(new.account_name)
        self._reviewers.notify(request)
        return self._directory.request(new.account_name)

    def is_paper(self, request: RequestRecord) -> bool:
        return request.on_paper

    def complete(self, approved: RequestRecord) -> bool:
        """The completion of every registration: a paper one becomes a
        member like any other, then the member is mailed the link to set
        the first password; the others are registration's own."""
        if not self.is_paper(approved):
            return self._registration.complete(approved)
        if not self._registration.complete(approved, notify=False):
            return False
        person = self._directory.person(approved.account_name)
        self._mailer.send("paper_account_ready", [person.contact_mail], person.language,
                          person=person, link=self.new_initial_password_url(person),
                          days=INITIAL_PASSWORD_LINK_DAYS,
                          login_link=self._links.page(Page.LOGIN))
        return True

    # -- the first password -----------------------------------------------------------------

    def new_initial_password_url(self, person: Person) -> str:
        """A new link (an older one stops working)."""
        nonce = secrets.token_urlsafe(16)
        self._directory.set_reset_nonce(person.account_name, _nonce_hash(nonce))
        return self._links.url(InitialPasswordLink(person.account_name, nonce))

    def person_for_initial_password(self, token: str) -> Person:
        """Check the link (GET: nothing changes); LinkInvalid/LinkUsed/LinkExpired."""
        link = self._links.load(InitialPasswordLink, token,
                                max_age_seconds=INITIAL_PASSWORD_LINK_DAYS * 86400)
        person = self._directory.person(link.account_name)
        state = self._directory.password_state(link.account_name) if person else None
        if person is None or state is None or person.status != MemberStatus.ACTIVE:
            raise LinkInvalid("unknown account")
        if state.changed_at is not None or not state.reset_nonce_hash or \
                not hmac.compare_digest(state.reset_nonce_hash, _nonce_hash(link.nonce)):
            raise LinkUsed("link used or replaced")
        return person

    def strength_problems(self, person: Person, password: str) -> list:
        """The initial password's rules (as the registration form's)."""
        return password_problems(
            password, self._settings.password_min_length, account_name=person.account_name,
            name_parts=(person.given_name, person.middle_name, person.family_name),
            other_inputs=(person.contact_mail.split("@")[0], person.mail.split("@")[0]))

    def set_initial_password(self, token: str, password: str, actor: Actor) -> Person:
        """Set the first password once per link (slapd's policy applies);
        raises LinkInvalid/LinkUsed, PasswordRefused (the link stays usable)."""
        person = self.person_for_initial_password(token)
        link = self._links.load(InitialPasswordLink, token,
                                max_age_seconds=INITIAL_PASSWORD_LINK_DAYS * 86400)
        if not self._directory.consume_reset_nonce(person.account_name, _nonce_hash(link.nonce)):
            raise LinkUsed("link used")
        try:
            self._directory.set_password(person.account_name, password)
        except PasswordRefused:
            self._directory.set_reset_nonce(person.account_name, _nonce_hash(link.nonce))
            raise
        # Chosen by the member: the default policy from now on, no change at first login.
        self._directory.start_password_cycle(person.account_name, audit_event(
            "account.initial-password-set", Actor(person.account_name, actor.address),
            self._clock()))
        log.info("initial password set", extra={"event": "account.initial-password-set",
                                                "account": person.account_name})
        return person
