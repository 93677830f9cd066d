"""The helpdesk's console: find people and requests by any name (folded as
the duplicate check folds them), account name, address, certificate,
institution or status; see everything the portal keeps about them, their
history in words and their entry as LDIF (secrets left out); act on behalf,
each action with a reason, audited with the helpdesk member as the actor."""
from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Iterator

from flask_babel import lazy_gettext as _l

from ..clock import Clock, utcnow
from ..directory import (
    Directory,
    EntryExists,
    Institution,
    PasswordState,
    Person,
    RequestRecord,
)
from ..directory.helpdesk import PaperDetails, SearchTerms, ldif
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import IR_STAGE, MemberStatus, RequestKind, RequestStatus
from . import names
from .approval import ApprovalService, Review
from .audit import Actor, audit_event, parse_events
from .duplicates import Duplicates, Match
from .errors import AlreadyDone, NotAuthorised, ServiceError
from .history import describe
from .institutions import InstitutionCatalog
from .lifecycle import LifecycleError, LifecycleService
from .links import INITIAL_PASSWORD_LINK_DAYS, Links, Page, VerifyLink
from .paper import PaperRoute
from .registration import RegistrationService
from .review import Reviewers

log = logging.getLogger(__name__)
SEARCH_LIMIT = 50  # per kind; more: "refine the search"
MAX_QUERY_LENGTH = 200
# A request waiting this long (or for a stage nobody can decide) is stuck:
# the helpdesk may decide it as the approver of last resort.
STUCK_AFTER = timedelta(days=3)


class HelpdeskRefused(ServiceError):
    """The action does not fit the record's state; the message is shown."""


@dataclass(frozen=True)
class HistoryRow:
    at: str
    what: str
    by: str
    why: str
    from_: str


@dataclass(frozen=True)
class SearchResult:
    people: list[Person]
    requests: list[RequestRecord]
    more: bool  # some were left out: refine the search
    searched: bool  # there was something to search for


@dataclass(frozen=True)
class PersonFile:
    person: Person
    password: PasswordState | None
    history: list[HistoryRow]
    ldif: str
    requests: list[RequestRecord]
    group_names: tuple[str, ...] = ()  # the person's groups (cn), for the page

    @property
    def locked(self) -> bool:
        return bool(self.password and self.password.locked_at)


@dataclass(frozen=True)
class RequestFile:
    request: RequestRecord
    history: list[HistoryRow]
    ldif: str
    paper: PaperDetails | None
    duplicates: tuple[Match, ...]
    preview: str  # the member entry an approval writes (registrations pending approval)
    may_decide: bool  # the helpdesk may approve or reject it
    decide_refusal: str  # why not, when it may not


def search_terms(query: str, status: str = "", institution: str = "") -> SearchTerms:
    """The search as the directory is asked it: the text whole, folded name
    keys of every split into given and family names, and each word folded."""
    text = " ".join((query or "").split())[:MAX_QUERY_LENGTH]
    words = text.split(" ") if text else []
    keys: list[str] = []
    for split in range(1, len(words)):
        keys += names.person_keys(" ".join(words[:split]), " ".join(words[split:]))
    if len(words) > 2:  # a middle name is not part of the key
        keys += names.person_keys(words[0], words[-1])
    folded = [names.name_key(w) for w in words if "@" not in w and "=" not in w]
    return SearchTerms(
        text=text if len(text) >= 2 else "",
        name_keys=tuple(dict.fromkeys(keys)),
        name_words=tuple(dict.fromkeys(w for w in folded if len(w) >= 2)),
        status=status, institution=institution)


class HelpdeskService:
    def __init__(self, directory: Directory, settings: Settings, lifecycle: LifecycleService,
                 approval: ApprovalService, registration: RegistrationService,
                 reviewers: Reviewers, duplicates: Duplicates,
                 institutions: InstitutionCatalog, paper: PaperRoute, mailer: Mailer,
                 links: Links, clock: Clock = utcnow):
        self._mailer = mailer
        self._links = links
        self._directory = directory
        self._settings = settings
        self._lifecycle = lifecycle
        self._approval = approval
        self._registration = registration
        self._reviewers = reviewers
        self._duplicates = duplicates
        self._institutions = institutions
        self._paper = paper
        self._clock = clock

    # -- finding ----------------------------------------------------------------------------

    def statuses(self) -> list[str]:
        """The statuses the search can filter by (members' and requests')."""
        return [s.value for s in MemberStatus if s.value] + \
            [s.value for s in RequestStatus if s != RequestStatus.WITHDRAWN]

    def institutions(self) -> list[Institution]:
        return self._institutions.all()

    def search(self, query: str, status: str = "", institution: str = "") -> SearchResult:
        status = status if status in self.statuses() else ""
        institution = institution if self._institutions.get(institution) else ""
        terms = search_terms(query, status, institution)
        text = terms.text.lower()
        named = tuple(i.id for i in self._institutions.all() if text and (
            i.id == text or (len(text) >= 3 and text in i.name.lower())))
        terms = replace(terms, institutions=named)
        if terms.empty:
            return SearchResult([], [], False, False)
        people_terms, request_terms = terms, terms
        if status and status in {s.value for s in MemberStatus}:
            request_terms = None  # a member status: no request has it
        elif status:
            people_terms = None
        people, more_people = self._directory.find_people(people_terms, SEARCH_LIMIT) \
            if people_terms else ([], False)
        requests, more_requests = self._directory.find_requests(request_terms, SEARCH_LIMIT) \
            if request_terms else ([], False)
        return SearchResult(people, requests, more_people or more_requests, True)

    def without_representative(self) -> list[Institution]:
        """Institutions with no active representative (flagged on the front page)."""
        return [i for i in self._institutions.all()
                if not self._reviewers.representatives(i.id)]

    # -- the entry pages ----------------------------------------------------------------------

    def _name_of(self, account_name: str) -> str:
        other = self._directory.person(account_name)
        return other.display_name or account_name if other else account_name

    def _history(self, audit: tuple[str, ...], owner: str, owner_label: str) -> list[HistoryRow]:
        cache: dict[str, str] = {}

        def name_of(account: str) -> str:
            if account not in cache:
                cache[account] = self._name_of(account)
            return cache[account]

        rows = []
        for event, entry in zip(parse_events(audit), describe(audit, owner, name_of), strict=True):
            by = owner_label if event.get("actor") in (owner, "applicant") else entry.by
            rows.append(HistoryRow(entry.at, entry.what, by, entry.why, event.get("from", "")))
        return rows

    def person_file(self, account_name: str) -> PersonFile | None:
        person = self._directory.person(account_name)
        if person is None:
            return None
        requests, _more = self._directory.find_requests(
            SearchTerms(text=person.account_name), SEARCH_LIMIT)
        return PersonFile(
            person, self._directory.password_state(account_name),
            self._history(person.audit, person.account_name,
                          person.display_name or person.account_name),
            self._directory.entry_ldif(person.dn),
            [r for r in requests if r.account_name == person.account_name],
            tuple(self._directory.group_name(dn) for dn in person.groups))

    def request_file(self, request_id: str) -> RequestFile | None:
        request = self._directory.request(request_id)
        if request is None:
            return None
        refusal = self._decide_refusal(request)
        return RequestFile(
            request, self._history(request.audit, request.account_name,
                                   request.display_name or request.account_name),
            self._directory.entry_ldif(request.dn), self._directory.paper_details(request.id),
            tuple(self._duplicates.of_request(request)), self.approval_preview(request),
            not refusal, refusal)

    def approval_preview(self, request: RequestRecord) -> str:
        """The member entry approving this registration writes, as LDIF:
        built by the same code that writes it (registration.member_entry_for
        and the gateway's member_attributes); the uidNumber is taken only
        when it is written. "" for other requests."""
        if request.kind != RequestKind.REGISTRATION or \
                request.status != RequestStatus.PENDING_APPROVAL or \
                self._directory.person(request.account_name) is not None:
            return ""
        now = self._clock()
        mail = self._registration.collaboration_mail(
            request.given_name, request.middle_name, request.family_name,
            exclude_account=request.account_name)
        member = self._registration.member_entry_for(request, now, mail=mail, uid_number=0)
        dn, attributes = self._directory.member_attributes(member)
        attributes = {name: values for name, values in attributes.items()}
        for name in list(attributes):
            if name.lower() == "uidnumber":
                attributes[name] = ["(the next free number, taken at approval)"]
        return ldif(dn, attributes)

    # -- acting on behalf ---------------------------------------------------------------------

    @staticmethod
    def _reason(reason: str) -> str:
        reason = (reason or "").strip()
        if not reason:
            raise HelpdeskRefused(str(_l("Give a reason: it is recorded in the history.")))
        return reason

    def suspend(self, account_name: str, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.suspend(account_name, self._reason(reason), actor)
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l("Only an active member can be suspended."))) from exc

    def unsuspend(self, account_name: str, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.unsuspend(account_name, self._reason(reason), actor)
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l("This member is not suspended."))) from exc

    # Ending and extending a membership: the lifecycle's methods the IR
    # console uses, for any institution (within=None).
    def end_membership(self, account_name: str, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.end_membership(account_name, actor, self._reason(reason))
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l("Only an active member's membership can be "
                                         "ended."))) from exc

    def undo_end_membership(self, account_name: str, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.undo_end_membership(account_name, actor, self._reason(reason))
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l("This membership is not ending."))) from exc

    def set_member_until(self, account_name: str, until, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.set_member_until(account_name, until, actor, self._reason(reason))
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l(
                "Only an active member's member-until can be set, to a date not in the past "
                "and at most ten years ahead."))) from exc

    def unlock(self, account_name: str, reason: str, actor: Actor) -> None:
        """Lift a lock of an active member's account (a suspended or expired
        member stays locked: unsuspend or reactivate instead)."""
        reason = self._reason(reason)
        person = self._directory.person(account_name)
        state = self._directory.password_state(account_name) if person else None
        if person is None or person.status != MemberStatus.ACTIVE or \
                state is None or state.locked_at is None:
            raise HelpdeskRefused(str(_l("Only a locked account of an active member can be "
                                         "unlocked.")))
        self._directory.unlock_account(account_name)
        self._directory.add_person_audit(account_name, audit_event(
            "member.unlocked", actor, self._clock(), reason=reason))

    def change_category(self, account_name: str, category: str, reason: str,
                        actor: Actor) -> None:
        reason = self._reason(reason)
        person = self._directory.person(account_name)
        if person is None or category not in {c.key for c in self._settings.categories} \
                or category == person.category:
            raise HelpdeskRefused(str(_l("Choose another category from the list.")))
        now = self._clock()
        self._directory.set_category(
            account_name, category, self._settings.membership_end(category, now),
            audit_event("member.category-changed", actor, now, reason=reason,
                        category=category, previous=person.category))

    def change_institution(self, account_name: str, institution: str, reason: str,
                           actor: Actor) -> None:
        reason = self._reason(reason)
        person = self._directory.person(account_name)
        if person is None or self._directory.institution(institution) is None \
                or institution == person.institution:
            raise HelpdeskRefused(str(_l("Choose another institution from the list.")))
        self._directory.set_home_institution(account_name, institution, audit_event(
            "member.institution-changed", actor, self._clock(), reason=reason,
            institution=institution, previous=person.institution))

    # -- requests -----------------------------------------------------------------------------

    def _decide_refusal(self, request: RequestRecord) -> str:
        if request.status != RequestStatus.PENDING_APPROVAL:
            return str(_l("The request does not wait for an approval."))
        if self._directory.paper_details(request.id) is not None:
            if self._settings.helpdesk_may_approve_paper:
                return ""
            return str(_l("A paper request is decided by the institute representative "
                          "(PORTAL_HELPDESK_MAY_APPROVE_PAPER is off)."))
        waited = self._clock() - request.submitted_at if request.submitted_at else timedelta(0)
        if request.stalled or waited >= STUCK_AFTER:
            return ""
        return str(_l("The request is not stuck: its approvers were asked less than "
                      "%(days)s days ago and can decide it.", days=STUCK_AFTER.days))

    def _review(self, request_id: str, actor: Actor) -> Review:
        request = self._directory.request(request_id)
        if request is None:
            raise HelpdeskRefused(str(_l("There is no such request.")))
        refusal = self._decide_refusal(request)
        if refusal:
            raise HelpdeskRefused(refusal)
        helper = self._directory.person(actor.name)
        if helper is None:
            raise NotAuthorised("no such helpdesk member")
        stage = request.approval_stage
        formal = self._settings.formal_application(request.category) \
            if request.approval_chain[stage] != IR_STAGE else ""
        return Review(request, helper, self._directory.institution(request.institution), stage,
                      formal_application=formal)

    def _record_last_resort(self, review: Review, decision: str, reason: str,
                            actor: Actor) -> None:
        self._directory.add_request_audit(review.request.id, audit_event(
            "request.helpdesk-decision", actor, self._clock(), reason=reason,
            decision=decision, stage=review.request.approval_chain[review.stage],
            role="helpdesk, approver of last resort"))

    def approve(self, request_id: str, reason: str, actor: Actor) -> RequestRecord:
        """Approve the stage a stuck request waits for (paper requests when
        allowed), through the approval service; the history records the
        helpdesk as the approver of last resort, with the reason. Raises
        HelpdeskRefused, DuplicateAccount."""
        reason = self._reason(reason)
        review = self._review(request_id, actor)
        self._record_last_resort(review, str(RequestStatus.APPROVED), reason, actor)
        try:
            return self._approval.approve(review, actor.address, reference=reason
                                          if review.formal_application else "")
        except AlreadyDone as exc:
            raise HelpdeskRefused(str(_l("The request was decided meanwhile."))) from exc

    def reject(self, request_id: str, reason: str, actor: Actor) -> RequestRecord:
        reason = self._reason(reason)
        request = self._directory.request(request_id)
        if request is None or request.status != RequestStatus.PENDING_APPROVAL:
            raise HelpdeskRefused(str(_l("The request does not wait for an approval.")))
        helper = self._directory.person(actor.name)
        review = Review(request, helper, self._directory.institution(request.institution),
                        request.approval_stage)
        self._record_last_resort(review, str(RequestStatus.REJECTED), reason, actor)
        try:
            return self._approval.reject(review, reason, actor.address)
        except AlreadyDone as exc:
            raise HelpdeskRefused(str(_l("The request was decided meanwhile."))) from exc

    def resend_review(self, request_id: str, reason: str, actor: Actor) -> int:
        """The mail the request waits on, again: fresh review links to the
        approvers of its stage (the number asked; 0: nobody can decide it),
        or the confirmation link to an applicant who has not confirmed."""
        reason = self._reason(reason)
        request = self._directory.request(request_id)
        if request is not None and request.status == RequestStatus.PENDING_VERIFICATION:
            self._directory.add_request_audit(request.id, audit_event(
                "request.confirmation-resent", actor, self._clock(), reason=reason))
            self._mailer.send("verify_email", [request.contact_mail], request.language,
                              request=request, replaced=[],
                              link=self._links.url(VerifyLink(request.id,
                                                              request.submitted_at.isoformat())),
                              max_age_days=self._links.max_age_days)
            return 1
        if request is None or request.status != RequestStatus.PENDING_APPROVAL:
            raise HelpdeskRefused(str(_l("The request does not wait for an approval.")))
        self._directory.add_request_audit(request.id, audit_event(
            "request.review-resent", actor, self._clock(), reason=reason))
        return self._reviewers.notify(self._directory.request(request.id))

    def release(self, request_id: str, reason: str, actor: Actor) -> None:
        """An abandoned registration (the address never confirmed) is
        withdrawn now instead of at its expiry: the account name and the
        person are free; the request keeps its history. A rejected one
        holds nothing already (issue 10: rejected people apply again)."""
        reason = self._reason(reason)
        request = self._directory.request(request_id)
        if request is None or request.status != RequestStatus.PENDING_VERIFICATION:
            raise HelpdeskRefused(str(_l(
                "Only a request whose address was never confirmed can be released; a "
                "rejected request holds no name or address already.")))
        if not self._directory.release_unconfirmed(request.id, audit_event(
                "request.released", actor, self._clock(), reason=reason)):
            raise HelpdeskRefused(str(_l("The request was decided meanwhile.")))

    def resend_initial_password_link(self, account_name: str, reason: str,
                                     actor: Actor) -> None:
        """A member registered on paper who has not set a password yet gets a
        new link (the older one stops working)."""
        reason = self._reason(reason)
        person = self._directory.person(account_name)
        state = self._directory.password_state(account_name) if person else None
        if person is None or person.status != MemberStatus.ACTIVE or state is None or \
                state.changed_at is not None:
            raise HelpdeskRefused(str(_l("This member has set a password already: a lost "
                                         "password is reset from the login page.")))
        self._directory.add_person_audit(account_name, audit_event(
            "member.initial-password-link-resent", actor, self._clock(), reason=reason))
        self._mailer.send("paper_account_ready", [person.contact_mail], person.language,
                          person=person, link=self._paper.new_initial_password_url(person),
                          days=INITIAL_PASSWORD_LINK_DAYS,
                          login_link=self._links.page(Page.LOGIN))


# -- institutions, the member list, requests left behind ----------------------------------------

COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
INSTITUTION_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
MAX_IMPORT_LINES = 2000
# Spreadsheets run a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = ("account_name", "given_name", "middle_name", "family_name", "mail",
                  "institution", "category", "status", "member_since", "member_until")


@dataclass(frozen=True)
class InstitutionFile:
    institution: Institution
    representatives: list[Person]  # active ones and not (the page says which)
    history: list[HistoryRow]
    deputies: tuple[Person, ...] = ()  # asked too once a request waits too long


@dataclass(frozen=True)
class ImportLine:
    number: int
    institution_id: str
    name: str
    country: str
    action: str  # "create", "update", "unchanged" or "" (a problem)
    problem: str = ""


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula (OWASP)."""
    value = str(value or "")
    return "'" + value if value.startswith(_FORMULA_START) else value


@dataclass(frozen=True)
class _InstitutionRole:
    name: str  # the gateway's add_<name>/remove_<name>, the record's <name>_dns
    not_active: object  # what the helpdesk is told
    not_named: object


_REPRESENTATIVE = _InstitutionRole(
    "representative",
    _l("A representative is an active member: give their account name."),
    _l("This person is not a representative of the institution."))
_DEPUTY = _InstitutionRole(
    "deputy",
    _l("A deputy is an active member: give their account name."),
    _l("This person is not a deputy of the institution."))


class HelpdeskInstitutions:
    """Institutions created, edited, given representatives and imported by
    the helpdesk; the member list exported. Every change is audited (on the
    institution, and on the person named or removed as representative) and
    the institutions' cache of this process is emptied at once."""

    def __init__(self, directory: Directory, settings: Settings, reviewers: Reviewers,
                 institutions: InstitutionCatalog, helpdesk: HelpdeskService,
                 clock: Clock = utcnow):
        self._directory = directory
        self._settings = settings
        self._reviewers = reviewers
        self._institutions = institutions
        self._helpdesk = helpdesk
        self._clock = clock

    def all(self) -> list[Institution]:
        return self._directory.institutions()

    def file(self, institution_id: str) -> InstitutionFile | None:
        institution = self._directory.institution(institution_id)
        if institution is None:
            return None
        people = [self._directory.person_by_dn(dn) for dn in institution.representative_dns]
        deputies = [self._directory.person_by_dn(dn) for dn in institution.deputy_dns]
        audit = self._directory.institution_audit(institution_id)
        return InstitutionFile(institution, [p for p in people if p is not None],
                               self._helpdesk._history(audit, "", ""),
                               tuple(p for p in deputies if p is not None))

    def _check(self, institution_id: str, name: str, country: str) -> str:
        if not INSTITUTION_ID_RE.match(institution_id or ""):
            return str(_l("The short id has 2-32 lowercase letters, digits and hyphens."))
        if not (name or "").strip() or len(name) > 200:
            return str(_l("Give the institution's name."))
        if country and not COUNTRY_RE.match(country):
            return str(_l("The country is a two-letter code such as DE or JP."))
        return ""

    def _audit(self, institution_id: str, action: str, actor: Actor, reason: str,
               **details) -> None:
        self._directory.add_institution_audit(institution_id, audit_event(
            action, actor, self._clock(), reason=reason, **details))
        self._institutions.invalidate()

    def create(self, institution_id: str, name: str, country: str, reason: str,
               actor: Actor) -> None:
        reason = HelpdeskService._reason(reason)
        problem = self._check(institution_id, name, country)
        if problem:
            raise HelpdeskRefused(problem)
        try:
            self._directory.add_institution(institution_id, name.strip(), country)
        except EntryExists as exc:
            raise HelpdeskRefused(str(_l("An institution with this short id exists."))) from exc
        self._audit(institution_id, "institution.created", actor, reason, name=name.strip())

    def edit(self, institution_id: str, name: str, country: str, reason: str,
             actor: Actor) -> None:
        reason = HelpdeskService._reason(reason)
        problem = self._check(institution_id, name, country)
        if problem or self._directory.institution(institution_id) is None:
            raise HelpdeskRefused(problem or str(_l("There is no such institution.")))
        self._directory.update_institution(institution_id, name.strip(), country)
        self._audit(institution_id, "institution.changed", actor, reason, name=name.strip(),
                    country=country)

    # Representatives and their deputies: one way to name and remove either.
    def add_representative(self, institution_id: str, account_name: str, reason: str,
                           actor: Actor) -> None:
        self._name(_REPRESENTATIVE, institution_id, account_name, reason, actor)

    def remove_representative(self, institution_id: str, account_name: str, reason: str,
                              actor: Actor) -> None:
        self._unname(_REPRESENTATIVE, institution_id, account_name, reason, actor)

    def add_deputy(self, institution_id: str, account_name: str, reason: str,
                   actor: Actor) -> None:
        self._name(_DEPUTY, institution_id, account_name, reason, actor)

    def remove_deputy(self, institution_id: str, account_name: str, reason: str,
                      actor: Actor) -> None:
        self._unname(_DEPUTY, institution_id, account_name, reason, actor)

    def _name(self, role: _InstitutionRole, institution_id: str, account_name: str,
              reason: str, actor: Actor) -> None:
        reason = HelpdeskService._reason(reason)
        person = self._directory.person(account_name)
        if self._directory.institution(institution_id) is None:
            raise HelpdeskRefused(str(_l("There is no such institution.")))
        if person is None or person.status != MemberStatus.ACTIVE:
            raise HelpdeskRefused(str(role.not_active))
        getattr(self._directory, f"add_{role.name}")(institution_id, person.dn)
        self._record(role, "added", institution_id, person, reason, actor)

    def _unname(self, role: _InstitutionRole, institution_id: str, account_name: str,
                reason: str, actor: Actor) -> None:
        reason = HelpdeskService._reason(reason)
        institution = self._directory.institution(institution_id)
        person = self._directory.person(account_name)
        named = getattr(institution, f"{role.name}_dns", ()) if institution else ()
        if person is None or person.dn.lower() not in {d.lower() for d in named}:
            raise HelpdeskRefused(str(role.not_named))
        getattr(self._directory, f"remove_{role.name}")(institution_id, person.dn)
        self._record(role, "removed", institution_id, person, reason, actor)

    def _record(self, role: _InstitutionRole, what: str, institution_id: str,
                person: Person, reason: str, actor: Actor) -> None:
        """Audited on the institution and in the person's history."""
        self._audit(institution_id, f"institution.{role.name}-{what}", actor, reason,
                    account=person.account_name)
        self._directory.add_person_audit(person.account_name, audit_event(
            f"member.{role.name}-{what}", actor, self._clock(), reason=reason,
            institution=institution_id))

    # -- CSV import -------------------------------------------------------------------------

    def check_import(self, text: str) -> list[ImportLine]:
        """Each line of ``id,name,country`` judged before anything is written
        (a first line ``id,name,country`` is a header)."""
        existing = {i.id: i for i in self._directory.institutions()}
        lines, seen = [], set()
        rows = list(csv.reader(io.StringIO(text or "")))
        if len(rows) > MAX_IMPORT_LINES:
            return [ImportLine(0, "", "", "", "", str(_l(
                "At most %(n)d lines at a time.", n=MAX_IMPORT_LINES)))]
        for number, row in enumerate(rows, start=1):
            cells = [c.strip() for c in row]
            if not any(cells) or cells[:1] == ["id"] and number == 1:
                continue
            if len(cells) not in (2, 3):
                lines.append(ImportLine(number, cells[0] if cells else "", "", "", "", str(_l(
                    "Expected: id, name, country."))))
                continue
            institution_id, name = cells[0].lower(), cells[1]
            country = cells[2].upper() if len(cells) == 3 else ""
            problem = self._check(institution_id, name, country)
            if not problem and institution_id in seen:
                problem = str(_l("This id came on an earlier line."))
            seen.add(institution_id)
            old = existing.get(institution_id)
            action = "" if problem else "create" if old is None else \
                "unchanged" if (old.name, old.country) == (name, country) else "update"
            lines.append(ImportLine(number, institution_id, name, country, action, problem))
        return lines

    def run_import(self, text: str, reason: str, actor: Actor) -> list[ImportLine]:
        """Write the lines of a clean check (nothing when any line has a problem)."""
        reason = HelpdeskService._reason(reason)
        lines = self.check_import(text)
        if not lines or any(line.problem for line in lines):
            raise HelpdeskRefused(str(_l("Nothing was imported: correct the lines marked "
                                         "below first.")))
        for line in lines:
            if line.action == "create":
                self._directory.add_institution(line.institution_id, line.name, line.country)
                self._audit(line.institution_id, "institution.created", actor, reason,
                            name=line.name, source="csv")
            elif line.action == "update":
                self._directory.update_institution(line.institution_id, line.name,
                                                   line.country)
                self._audit(line.institution_id, "institution.changed", actor, reason,
                            name=line.name, country=line.country, source="csv")
        return lines

    # -- the member list --------------------------------------------------------------------

    def export_members(self, status: str = "", institution: str = "",
                       category: str = "") -> Iterator[str]:
        """The member list as CSV lines (a header first), safe to open in a spreadsheet."""
        status = status if status in {s.value for s in MemberStatus if s.value} else ""
        institution = institution if self._institutions.get(institution) else ""
        category = category if category in {c.key for c in self._settings.categories} else ""
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def line(cells) -> str:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([safe_cell(c) for c in cells])
            return buffer.getvalue()

        yield line(EXPORT_COLUMNS)
        for person in self._directory.members_for_export(status, institution, category):
            values = []
            for column in EXPORT_COLUMNS:
                value = getattr(person, column)
                values.append(value.date().isoformat() if hasattr(value, "date") else value)
            yield line(values)
