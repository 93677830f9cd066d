"""Changes a member asks for from "My account": joining or leaving an
extra group, moving to another institution. Each application is a request
approved like a registration (see Reviewers, ApprovalService.complete)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from ..clock import Clock, utcnow
from ..directory import (
    Directory, EntryExists, Institution, NewRequest, Person, Request, ldap_time,
)
from ..settings import Settings
from ..vocabulary import IR_STAGE, MemberStatus, RequestKind, RequestStatus, group_stage
from .audit import Actor, audit_event
from .errors import ServiceError
from .review import Reviewers



class ChangeRefused(ServiceError):
    """The change cannot be asked for (the message says why; safe to show)."""


class MembershipChanges:
    def __init__(self, directory: Directory, settings: Settings, reviewers: Reviewers,
                 clock: Clock = utcnow):
        self._directory = directory
        self._settings = settings
        self._reviewers = reviewers
        self._clock = clock

    def _file(self, person: Person, kind: str, institution: str, chain: tuple[str, ...],
              actor: Actor, target_group: str = "") -> Request:
        waiting = self._directory.open_requests_for(person.account_name, kind)
        if any(r.target_group == target_group for r in waiting):
            raise ChangeRefused("An application of this kind is already waiting for approval.")
        now = self._clock()
        new = NewRequest(
            account_name=person.account_name, given_name=person.given_name,
            middle_name=person.middle_name, family_name=person.family_name,
            contact_mail=person.contact_mail, institution=institution,
            category=person.category, collab_mail=person.mail,
            conditions_version=self._settings.conditions.version, submitted_at=now,
            submitted_from=actor.address, status=RequestStatus.PENDING_APPROVAL,
            audit_event=audit_event(f"request.{kind}-submitted", actor, now,
                                    group=target_group, institution=institution),
            password_hash=b"", kind=kind, request_id=f"{person.account_name}-{ldap_time(now)[:14]}",
            approval_chain=chain, target_group=target_group,
        )
        try:
            self._directory.add_request(new)
        except EntryExists as exc:
            raise ChangeRefused("This was just asked for; please wait a moment.") from exc
        return self._directory.request(new.request_id)

    def apply_for_group(self, account_name: str, cn: str, actor: Actor) -> Request:
        group = self._settings.extra_group(cn)
        person = self._directory.person(account_name)
        if group is None or person is None or person.status != MemberStatus.ACTIVE:
            raise ChangeRefused("There is no such group to apply for.")
        if self._directory.group_dn(cn).lower() in {g.lower() for g in person.groups}:
            raise ChangeRefused("You are a member of this group already.")
        request = self._file(person, RequestKind.GROUP, person.institution,
                             (group_stage(group.managers),), actor, target_group=cn)
        self._reviewers.notify(request)
        return request

    def leave_group(self, account_name: str, cn: str, actor: Actor) -> None:
        if self._settings.extra_group(cn) is None:
            raise ChangeRefused("There is no such group.")
        person = self._directory.person(account_name)
        self._directory.remove_group_member(self._directory.group_dn(cn), person.dn)
        self._directory.add_person_audit(account_name, audit_event(
            "member.left-group", actor, self._clock(), group=cn))

    def request_move(self, account_name: str, institution_id: str, actor: Actor) -> Request:
        person = self._directory.person(account_name)
        if self._directory.institution(institution_id) is None:
            raise ChangeRefused("Choose an institution from the list.")
        if person is None or person.status != MemberStatus.ACTIVE:
            raise ChangeRefused("Only active members can move.")
        if institution_id == person.institution:
            raise ChangeRefused("This is your home institution already.")
        request = self._file(person, RequestKind.INSTITUTION_CHANGE, institution_id, (IR_STAGE,), actor)
        self._reviewers.notify(request)
        self._reviewers.notify_objection(request, person.institution)
        return request

    def open_applications(self, account_name: str) -> list[Request]:
        return (self._directory.open_requests_for(account_name, RequestKind.GROUP)
                + self._directory.open_requests_for(account_name, RequestKind.INSTITUTION_CHANGE))

    # -- for the pages ----------------------------------------------------------------------

    def institutions(self) -> list[Institution]:
        """The institutions a member may move to (their own included), by name."""
        return self._directory.institutions()

    def institution_name(self, institution_id: str) -> str:
        """The name of an institution; its id when it is not (or no longer) known."""
        institution = self._directory.institution(institution_id)
        return institution.name if institution else institution_id

    def extra_groups(self, person: Person, waiting: list[Request]) -> list[dict]:
        """Each extra group: cn, label, whether the member is in it and whether
        one of the ``waiting`` applications is for it."""
        member_of = {dn.lower() for dn in person.groups}
        return [{"cn": group.cn, "label": group.label,
                 "member": self._directory.group_dn(group.cn).lower() in member_of,
                 "waiting": any(r.target_group == group.cn for r in waiting)}
                for group in self._settings.extra_groups]
