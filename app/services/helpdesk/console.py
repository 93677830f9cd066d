"""The helpdesk's console: find people and requests by any name (folded as
the duplicate check folds them), account name, address, certificate,
institution or status; see everything the portal keeps about them, their
history in words and their entry as LDIF (secrets left out); act on behalf
of a member, each action with a reason, audited with the helpdesk member as
the actor. Deciding a stuck request is in decisions.py."""
from __future__ import annotations

from dataclasses import dataclass, replace

from flask_babel import lazy_gettext as _l

from ...clock import Clock, utcnow
from ...directory import Directory, Institution, PasswordState, Person, RequestRecord
from ...directory.helpdesk import PaperDetails, SearchTerms, ldif
from ...mail import Mailer
from ...settings import Settings
from ...vocabulary import MemberStatus, RequestKind, RequestStatus
from .. import names
from ..audit import Actor, audit_event
from ..duplicates import Duplicates, Match
from ..institutions import InstitutionCatalog
from ..lifecycle import LifecycleError, LifecycleService
from ..links import INITIAL_PASSWORD_LINK_DAYS, Links, Page
from ..paper import PaperRoute
from ..registration import RegistrationService
from ..review import Reviewers
from .common import HelpdeskRefused, HistoryRow, given_reason, history
from .decisions import HelpdeskDecisions

SEARCH_LIMIT = 50  # per kind; more: "refine the search"
MAX_QUERY_LENGTH = 200


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
                 decisions: HelpdeskDecisions, registration: RegistrationService,
                 reviewers: Reviewers, duplicates: Duplicates,
                 institutions: InstitutionCatalog, paper: PaperRoute, mailer: Mailer,
                 links: Links, clock: Clock = utcnow):
        self._mailer = mailer
        self._links = links
        self._directory = directory
        self._settings = settings
        self._lifecycle = lifecycle
        self._decisions = decisions
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

    def person_file(self, account_name: str) -> PersonFile | None:
        person = self._directory.person(account_name)
        if person is None:
            return None
        requests, _more = self._directory.find_requests(
            SearchTerms(text=person.account_name), SEARCH_LIMIT)
        return PersonFile(
            person, self._directory.password_state(account_name),
            history(self._directory, person.audit, person.account_name,
                          person.display_name or person.account_name),
            self._directory.entry_ldif(person.dn),
            [r for r in requests if r.account_name == person.account_name])

    def request_file(self, request_id: str) -> RequestFile | None:
        request = self._directory.request(request_id)
        if request is None:
            return None
        refusal = self._decisions.refusal(request)
        return RequestFile(
            request, history(self._directory, request.audit, request.account_name,
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

    def suspend(self, account_name: str, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.suspend(account_name, given_reason(reason), actor)
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l("Only an active member can be suspended."))) from exc

    def unsuspend(self, account_name: str, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.unsuspend(account_name, given_reason(reason), actor)
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l("This member is not suspended."))) from exc

    # Ending and extending a membership: the lifecycle's methods the IR
    # console uses, for any institution (within=None).
    def end_membership(self, account_name: str, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.end_membership(account_name, actor, given_reason(reason))
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l("Only an active member's membership can be "
                                         "ended."))) from exc

    def undo_end_membership(self, account_name: str, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.undo_end_membership(account_name, actor, given_reason(reason))
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l("This membership is not ending."))) from exc

    def set_member_until(self, account_name: str, until, reason: str, actor: Actor) -> None:
        try:
            self._lifecycle.set_member_until(account_name, until, actor, given_reason(reason))
        except LifecycleError as exc:
            raise HelpdeskRefused(str(_l(
                "Only an active member's member-until can be set, to a date not in the past "
                "and at most ten years ahead."))) from exc

    def unlock(self, account_name: str, reason: str, actor: Actor) -> None:
        """Lift a lock of an active member's account (a suspended or expired
        member stays locked: unsuspend or reactivate instead)."""
        reason = given_reason(reason)
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
        reason = given_reason(reason)
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
        reason = given_reason(reason)
        person = self._directory.person(account_name)
        if person is None or self._directory.institution(institution) is None \
                or institution == person.institution:
            raise HelpdeskRefused(str(_l("Choose another institution from the list.")))
        self._directory.set_home_institution(account_name, institution, audit_event(
            "member.institution-changed", actor, self._clock(), reason=reason,
            institution=institution, previous=person.institution))

    def resend_initial_password_link(self, account_name: str, reason: str,
                                     actor: Actor) -> None:
        """A member registered on paper who has not set a password yet gets a
        new link (the older one stops working)."""
        reason = given_reason(reason)
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
