"""Changes a member asks for from "My account": joining or leaving an
extra group, moving to another institution. Each application is a request
approved like a registration (see Reviewers); ``complete`` carries out an
approved one."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

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
from ..vocabulary import IR_STAGE, MemberStatus, RequestKind, RequestStatus, group_stage
from .audit import SYSTEM, Actor, audit_event
from .errors import ServiceError
from .institutions import InstitutionCatalog
from .review import Reviewers


class ChangeRefused(ServiceError):
    """The change cannot be asked for (the message says why; safe to show)."""


class MembershipChanges:
    def __init__(self, directory: Directory, mailer: Mailer, settings: Settings,
                 reviewers: Reviewers, institutions: InstitutionCatalog,
                 clock: Clock = utcnow):
        self._directory = directory
        self._institutions = institutions
        self._mailer = mailer
        self._settings = settings
        self._reviewers = reviewers
        self._clock = clock

    def _file(self, person: Person, kind: str, institution: str, chain: tuple[str, ...],
              actor: Actor, target_group: str = "", category: str = "") -> RequestRecord:
        waiting = self._directory.open_requests_for(person.account_name, kind)
        if any(r.target_group == target_group for r in waiting):
            raise ChangeRefused(_l(
                "An application of this kind is already waiting for approval."))
        now = self._clock()
        new = NewRequest(
            account_name=person.account_name, given_name=person.given_name,
            middle_name=person.middle_name, family_name=person.family_name,
            contact_mail=person.contact_mail, institution=institution,
            category=category or person.category, collab_mail=person.mail,
            conditions_version=self._settings.conditions.version, submitted_at=now,
            submitted_from=actor.address, status=RequestStatus.PENDING_APPROVAL,
            audit_event=audit_event(f"request.{kind}-submitted", actor, now,
                                    group=target_group, institution=institution,
                                    category=category or person.category),
            password_hash=b"", kind=kind, request_id=later_request_id(person.account_name, now),
            approval_chain=chain, target_group=target_group, language=person.language,
        )
        try:
            self._directory.add_request(new)
        except EntryExists as exc:
            raise ChangeRefused(_l("This was just asked for; please wait a moment.")) from exc
        return self._directory.request(new.request_id)

    def apply_for_group(self, account_name: str, cn: str, actor: Actor) -> RequestRecord:
        group = self._settings.extra_group(cn)
        person = self._directory.person(account_name)
        if group is None or person is None or person.status != MemberStatus.ACTIVE:
            raise ChangeRefused(_l("There is no such group to apply for."))
        if self._directory.group_dn(cn).lower() in {g.lower() for g in person.groups}:
            raise ChangeRefused(_l("You are a member of this group already."))
        request = self._file(person, RequestKind.GROUP, person.institution,
                             (group_stage(group.managers),), actor, target_group=cn)
        self._reviewers.notify(request)
        return request

    def leave_group(self, account_name: str, cn: str, actor: Actor) -> None:
        if self._settings.extra_group(cn) is None:
            raise ChangeRefused(_l("There is no such group."))
        person = self._directory.person(account_name)
        self._directory.remove_group_member(self._directory.group_dn(cn), person.dn)
        self._directory.add_person_audit(account_name, audit_event(
            "member.left-group", actor, self._clock(), group=cn))

    def request_move(self, account_name: str, institution_id: str, actor: Actor) -> RequestRecord:
        person = self._directory.person(account_name)
        if self._directory.institution(institution_id) is None:
            raise ChangeRefused(_l("Choose an institution from the list."))
        if person is None or person.status != MemberStatus.ACTIVE:
            raise ChangeRefused(_l("Only active members can move."))
        if institution_id == person.institution:
            raise ChangeRefused(_l("This is your home institution already."))
        request = self._file(person, RequestKind.INSTITUTION_CHANGE, institution_id,
                             (IR_STAGE,), actor)
        self._reviewers.notify(request)
        self._reviewers.notify_objection(request, person.institution)
        return request

    def request_category(self, account_name: str, category: str, actor: Actor) -> RequestRecord:
        """Ask for another category: approved like a registration in it (its
        chain, from the member's institution)."""
        person = self._directory.person(account_name)
        if category not in {c.key for c in self._settings.categories}:
            raise ChangeRefused(_l("Choose a category from the list."))
        if person is None or person.status != MemberStatus.ACTIVE:
            raise ChangeRefused(_l("Only active members can change their category."))
        if category == person.category:
            raise ChangeRefused(_l("This is your category already."))
        if self._directory.open_requests_for(account_name, RequestKind.CATEGORY_CHANGE):
            raise ChangeRefused(_l(
                "An application of this kind is already waiting for approval."))
        request = self._file(person, RequestKind.CATEGORY_CHANGE, person.institution,
                             self._settings.approval_chain(category), actor, category=category)
        self._reviewers.notify(request)
        return request

    def open_applications(self, account_name: str) -> list[RequestRecord]:
        return self._directory.open_requests_for(account_name, RequestKind.GROUP,
                                                 RequestKind.INSTITUTION_CHANGE,
                                                 RequestKind.CATEGORY_CHANGE)

    def complete(self, request: RequestRecord) -> bool:
        """Carry out an approved group application, move or change of
        category (repeatable)."""
        now = self._clock()
        person = self._directory.person(request.account_name)
        if person is None or person.status != MemberStatus.ACTIVE:
            # Approved, but the member was suspended or expired meanwhile.
            self._directory.claim_completion(request.id, now, audit_event(
                "request.not-applied", SYSTEM, now, reason="member not active"))
            return False
        if request.kind == RequestKind.GROUP:
            self._directory.add_group_member(self._directory.group_dn(request.target_group),
                                             person.dn)
            self._directory.add_person_audit(request.account_name, audit_event(
                "member.joined-group", SYSTEM, now, group=request.target_group,
                approved_by=request.decided_by))
        elif request.kind == RequestKind.CATEGORY_CHANGE:
            self._directory.set_category(
                request.account_name, request.category,
                self._settings.membership_end(request.category, now),
                audit_event("member.category-changed", SYSTEM, now, category=request.category,
                            approved_by=request.decided_by))
        else:
            self._directory.set_home_institution(
                request.account_name, request.institution,
                audit_event("member.moved", SYSTEM, now, institution=request.institution,
                            approved_by=request.decided_by))
        if not self._directory.claim_completion(
                request.id, now, audit_event("request.completed", SYSTEM, now)):
            return False
        group = self._settings.extra_group(request.target_group)
        institution = self._directory.institution(request.institution)
        self._mailer.send("change_done", [request.contact_mail], person.language,
                          request=request,
                          category=self._settings.category_label(request.category),
                          group=group.label if group else request.target_group,
                          institution=institution.name if institution else request.institution)
        return True

    # -- for the pages ----------------------------------------------------------------------

    def institutions(self) -> list[Institution]:
        """The institutions a member may move to (their own included), by name
        (cached for a short time)."""
        return self._institutions.all()

    def institution_name(self, institution_id: str) -> str:
        """The name of an institution; its id when it is not (or no longer) known."""
        institution = self._institutions.get(institution_id)
        return institution.name if institution else institution_id

    def extra_groups(self, person: Person, waiting: list[RequestRecord]) -> list[dict]:
        """Each extra group: cn, label, whether the member is in it and whether
        one of the ``waiting`` applications is for it."""
        member_of = {dn.lower() for dn in person.groups}
        return [{"cn": group.cn, "label": group.label,
                 "member": self._directory.group_dn(group.cn).lower() in member_of,
                 "waiting": any(r.target_group == group.cn for r in waiting)}
                for group in self._settings.extra_groups]
