"""Requests in ou=requests and their state changes. Every transition is a
compare-and-swap on the status (and stage): of two concurrent deciders one
wins, the other gets StateConflict."""
from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from ..vocabulary import ACCOUNT_NAME_RE, IR_STAGE, OPEN_STATUSES, RequestKind, RequestStatus
from .connection import DirectoryConnection
from .errors import ConstraintViolation, NoSuchEntry, StateConflict, ValueExists
from .mapping import Attr, AttributeMap, certificate_attr, int_attr, time_attr
from .records import NewRequest, RequestRecord
from .values import REQUEST_ID_RE, any_of, eq, ldap_time


def _chain(value: str) -> tuple[str, ...]:
    return tuple(value.split(","))


REQUEST = AttributeMap(
    request_id="portalRequestId",
    account_name="uid",
    status="portalRequestStatus",
    given_name="givenName",
    middle_name="portalMiddleName",
    family_name="sn",
    contact_mail="portalContactMail",
    institution="portalHomeInstitution",
    category="portalCategory",
    collab_mail="portalCollabMail",
    conditions_version="portalConditionsVersion",
    submitted_at=time_attr("portalSubmittedAt"),
    submitted_from="portalSubmittedFrom",
    email_verified_at=time_attr("portalEmailVerifiedAt"),
    decided_by="portalDecidedBy",
    decided_at=time_attr("portalDecidedAt"),
    decided_from="portalDecidedFrom",
    decision_reason="portalDecisionReason",
    # Stored as "account created" since registrations came first; it marks
    # the completion of every kind.
    completed_at=time_attr("portalAccountCreatedAt"),
    audit=Attr("portalAuditEvent", multi=True),
    password_hash=Attr("portalPasswordHash", raw=True),
    previous_account="portalPreviousAccount",
    kind=Attr("portalRequestType", default=RequestKind.REGISTRATION),
    approval_chain=Attr("portalApprovalChain", load=_chain, dump=",".join,
                        default=(IR_STAGE,)),
    approval_stage=int_attr("portalApprovalStage", default=0),
    stage_approvals=Attr("portalStageApproval", multi=True),
    notified_stage=int_attr("portalNotifiedStage"),
    stalled_stage=int_attr("portalStalledStage"),
    target_group="portalTargetGroup",
    cert_subject="portalCertSubject",
    language="preferredLanguage",
    last_reminded_at=time_attr("portalLastReminded"),
    reminded_stage=int_attr("portalRemindedStage"),
    escalated_stage=int_attr("portalEscalatedStage"),
    confirmation_sent_at=time_attr("portalConfirmationSentAt"),
    certificate=certificate_attr("portalCertificate"),
    # Written, not part of the record.
    object_classes=Attr("objectClass", multi=True),
    display_name="cn",
    name_key="portalNameKey",
)
_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord)
                       if f.name not in ("dn", "id", "on_paper"))
_READ_FIELDS = ("request_id",) + tuple(f for f in _RECORD_FIELDS if f != "password_hash")
REQUEST_ATTRS = REQUEST.names(*_READ_FIELDS, "object_classes")
# The auxiliary class of a request filed from a signed paper form (its
# details: helpdesk.py).
PAPER_CLASS = "portalPaperRequest"


# The auxiliary class of the reminder and escalation marks.
FOLLOW_UP = "portalFollowUp"


def later_request_id(account_name: str, at: datetime) -> str:
    """The id of a request other than a registration: <account>-<yyyymmddhhmmss>."""
    return f"{account_name}-{ldap_time(at)[:14]}"


def request_record(entry: dict) -> RequestRecord:
    values = REQUEST.read(entry, *_READ_FIELDS)
    if "portalPasswordHash" in (entry.get("raw_attributes") or {}):
        values["password_hash"] = REQUEST.read(entry, "password_hash")["password_hash"]
    request_id = values.pop("request_id") or values["account_name"]
    classes = {c.lower() for c in REQUEST.read(entry, "object_classes")["object_classes"]}
    return RequestRecord(dn=entry["dn"], id=request_id, on_paper=PAPER_CLASS.lower() in classes,
                         **values)


def decision_changes(stage: int, outcome: RequestStatus, *, approver: str,
                     approver_label: str, at: datetime, from_: str, audit_event: str,
                     reason: str = "") -> dict:
    """The modify that decides a request at ``stage`` (also what the bench's
    raw approval writes)."""
    changes = {
        **REQUEST.swap("status", RequestStatus.PENDING_APPROVAL, outcome),
        # The same stage deleted and added: it must still wait for it.
        **REQUEST.swap("approval_stage", stage, stage),
        **REQUEST.replace(decided_by=approver_label, decided_at=at, decided_from=from_,
                          decision_reason=reason or None),
        **REQUEST.add(audit=[audit_event]),
    }
    if outcome == RequestStatus.APPROVED:
        changes.update(REQUEST.add(stage_approvals=[f"{stage}:{approver}"]))
    else:
        changes.update(REQUEST.replace(password_hash=None))
    return changes


def completion_changes(at: datetime, audit_event: str) -> dict:
    """The modify that marks an approved request carried out, once (a
    second one fails: portalAccountCreatedAt is single-valued); the hash
    goes with it."""
    return {**REQUEST.add(completed_at=at), **REQUEST.replace(password_hash=None),
            **REQUEST.add(audit=[audit_event])}


class Requests(DirectoryConnection):
    def add_request(self, new: NewRequest, extra: dict[str, list] | None = None) -> str:
        """Write a new request; ``extra``: attributes of an auxiliary class
        written in the same add (objectClass values are added to the request's)."""
        dn = self.request_dn(new.request_id or new.account_name)
        attributes = REQUEST.entry(
            object_classes=["portalRequest"] + (["portalCertificates"] if new.certificate else []),
            account_name=new.account_name, kind=new.kind,
            approval_chain=new.approval_chain, approval_stage=0, status=new.status,
            given_name=new.given_name, family_name=new.family_name,
            display_name=" ".join(p for p in (new.given_name, new.middle_name,
                                              new.family_name) if p),
            contact_mail=new.contact_mail, institution=new.institution,
            category=new.category, collab_mail=new.collab_mail,
            conditions_version=new.conditions_version, submitted_at=new.submitted_at,
            submitted_from=new.submitted_from, password_hash=new.password_hash,
            audit=[new.audit_event], middle_name=new.middle_name, name_key=new.name_key,
            previous_account=new.previous_account, request_id=new.request_id,
            target_group=new.target_group, cert_subject=new.cert_subject,
            language=new.language, certificate=new.certificate)
        for name, values in (extra or {}).items():
            attributes[name] = attributes.get(name, []) + list(values)
        self._add(dn, attributes)
        return dn

    def request(self, request_id: str, with_password_hash: bool = False) -> RequestRecord | None:
        if not (ACCOUNT_NAME_RE.match(request_id or "") or REQUEST_ID_RE.match(request_id or "")):
            return None
        attrs = REQUEST_ATTRS + (REQUEST.names("password_hash") if with_password_hash else [])
        entry = self._read(self.request_dn(request_id), attrs)
        return request_record(entry) if entry else None

    def open_requests_for(self, account_name: str, *kinds: str) -> list[RequestRecord]:
        """Undecided requests of these kinds for an account (one search),
        in the order of ``kinds``."""
        entries = self._search(self.requests_dn, (
            f"(&(objectClass=portalRequest){eq(REQUEST['account_name'], account_name)}"
            f"{any_of(REQUEST['kind'], kinds)}{any_of(REQUEST['status'], OPEN_STATUSES)})"),
            REQUEST_ATTRS)
        return sorted(map(request_record, entries), key=lambda r: kinds.index(r.kind))

    def unconfirmed_requests(self, *, contact_mail: str = "",
                             submitted_before: datetime | None = None) -> list[RequestRecord]:
        """Requests still waiting for their address to be confirmed: the
        registrations for ``contact_mail``, or any submitted before a time."""
        wanted = eq(REQUEST["contact_mail"], contact_mail) + \
            eq(REQUEST["kind"], RequestKind.REGISTRATION) if contact_mail else ""
        if submitted_before is not None:
            wanted += f"({REQUEST['submitted_at']}<={ldap_time(submitted_before)})"
        if not wanted:
            return []
        entries = self._search(self.requests_dn, (
            f"(&(objectClass=portalRequest)"
            f"{eq(REQUEST['status'], RequestStatus.PENDING_VERIFICATION)}{wanted})"),
            REQUEST_ATTRS)
        return [request_record(e) for e in entries]

    def withdraw_unconfirmed(self, request_id: str) -> bool:
        """Withdraw and delete a request whose address was never confirmed (it
        frees the account name and drops the password hash). The status swap
        first: a confirmation at the same moment wins or loses as a whole.
        False when the request moved on or is gone meanwhile."""
        dn = self.request_dn(request_id)
        try:
            self._modify(dn, REQUEST.swap("status", RequestStatus.PENDING_VERIFICATION,
                                          RequestStatus.WITHDRAWN))
        except (StateConflict, NoSuchEntry):
            return False
        self._delete(dn)
        return True

    def requests_with_status(self, status: str) -> list[RequestRecord]:
        entries = self._search(
            self.requests_dn, f"(&(objectClass=portalRequest){eq(REQUEST['status'], status)})",
            REQUEST_ATTRS)
        return [request_record(e) for e in entries]

    def requests_waiting_in(self, institution_ids, status: str) -> list[RequestRecord]:
        """Requests of ``status`` for any of these institutions (indexed on
        both), for the IR console."""
        ids = [i for i in institution_ids if i]
        if not ids:
            return []
        entries = self._search(self.requests_dn, (
            f"(&(objectClass=portalRequest){eq(REQUEST['status'], status)}"
            f"{any_of(REQUEST['institution'], ids)})"), REQUEST_ATTRS)
        return [request_record(e) for e in entries]

    # -- state changes -------------------------------------------------------------------

    def record_address_confirmed(self, request_id: str, at: datetime, audit_event: str) -> None:
        """pending-verification -> pending-approval (StateConflict if not)."""
        self._modify(self.request_dn(request_id), {
            **REQUEST.swap("status", RequestStatus.PENDING_VERIFICATION,
                           RequestStatus.PENDING_APPROVAL),
            **REQUEST.replace(email_verified_at=at), **REQUEST.add(audit=[audit_event])})

    def record_stage_approved(self, request_id: str, stage: int, approver: str,
                              audit_event: str) -> RequestRecord:
        """Stage ``stage`` approved by ``approver``: wait for the next one.
        StateConflict when the request moved meanwhile (decided, or the
        stage approved already). Returns the request as this write left it."""
        return self._modify_request(request_id, {
            **REQUEST.swap("approval_stage", stage, stage + 1),
            # Deleting and adding the same value: the request must still be pending.
            **REQUEST.swap("status", RequestStatus.PENDING_APPROVAL,
                           RequestStatus.PENDING_APPROVAL),
            **REQUEST.add(stage_approvals=[f"{stage}:{approver}"], audit=[audit_event])})

    def _modify_request(self, request_id: str, changes: dict,
                        with_password_hash: bool = False) -> RequestRecord:
        """Modify a request and return it as this modify left it."""
        secret = REQUEST.names("password_hash") if with_password_hash else []
        entry = self._modify_and_read(self.request_dn(request_id), changes,
                                      REQUEST_ATTRS + secret, raw=tuple(secret))
        if entry is None:
            raise NoSuchEntry(self.request_dn(request_id))
        return request_record(entry)

    def record_decision(self, request_id: str, stage: int, outcome: RequestStatus, *,
                        approver: str, approver_label: str, at: datetime, from_: str,
                        audit_event: str, reason: str = "") -> RequestRecord:
        """The request is decided (approved at its last stage, or rejected)
        at ``stage``; StateConflict when it was decided or moved on meanwhile.
        A rejected request keeps no password hash. Returns the request as
        decided, an approved one with the hash its completion writes."""
        return self._modify_request(request_id, decision_changes(
            stage, outcome, approver=approver, approver_label=approver_label, at=at,
            from_=from_, audit_event=audit_event, reason=reason),
            with_password_hash=outcome == RequestStatus.APPROVED)

    def record_collab_mail(self, request_id: str, address: str) -> None:
        self._modify(self.request_dn(request_id), REQUEST.replace(collab_mail=address))

    def record_notified(self, request_id: str, stage: int, audit_event: str) -> None:
        """The approvers of ``stage`` were asked (their mails queued)."""
        self._modify(self.request_dn(request_id), {
            **REQUEST.replace(notified_stage=stage), **REQUEST.add(audit=[audit_event])})

    def add_request_audit(self, request_id: str, audit_event: str) -> None:
        self._modify(self.request_dn(request_id), REQUEST.add(audit=[audit_event]))

    def record_stalled(self, request_id: str, stage: int, audit_event: str) -> None:
        """Nobody could approve ``stage``: the helpdesk and the applicant were told."""
        self._modify(self.request_dn(request_id), {
            **REQUEST.replace(stalled_stage=stage), **REQUEST.add(audit=[audit_event])})

    def claim_completion(self, request_id: str, at: datetime, audit_event: str) -> bool:
        """Mark an approved request as carried out, once: True for the one
        caller whose modify set the mark (it then sends the mail); the
        request's password hash goes with it."""
        try:
            self._modify(self.request_dn(request_id), completion_changes(at, audit_event))
            return True
        except (ConstraintViolation, ValueExists):
            return False

    # -- the applicant's status page, reminders and escalation -----------------------------

    def _with_follow_up(self, request_id: str) -> None:
        """The auxiliary class of the marks, added with the first one."""
        try:
            self._modify(self.request_dn(request_id), REQUEST.add(object_classes=[FOLLOW_UP]))
        except ValueExists:
            pass

    def _claim(self, request_id: str, field: str, previous, new, audit_event: str,
               status: str, stage: int, **also) -> bool:
        """Set ``field`` from ``previous`` (None: unset) to ``new`` while the
        request still has ``status`` and waits for ``stage``; of two
        concurrent callers one wins."""
        self._with_follow_up(request_id)
        changes = REQUEST.swap(field, previous, new) if previous is not None else \
            REQUEST.add(**{field: new})
        try:
            self._modify(self.request_dn(request_id), {
                **changes, **REQUEST.swap("status", status, status),
                **REQUEST.swap("approval_stage", stage, stage),
                **(REQUEST.replace(**also) if also else {}),
                **REQUEST.add(audit=[audit_event])})
            return True
        except (StateConflict, ConstraintViolation, ValueExists, NoSuchEntry):
            return False

    def claim_reminder(self, request_id: str, stage: int, previous: datetime | None,
                       at: datetime, audit_event: str) -> bool:
        """Record that the approvers of ``stage`` are reminded now (once per
        period: the caller that replaced ``previous`` sends the mails)."""
        return self._claim(request_id, "last_reminded_at", previous, at, audit_event,
                           RequestStatus.PENDING_APPROVAL, stage, reminded_stage=stage)

    def claim_escalation(self, request_id: str, previous: int | None, stage: int,
                         audit_event: str) -> bool:
        """Record that stage ``stage`` is escalated (once per stage)."""
        return self._claim(request_id, "escalated_stage", previous, stage, audit_event,
                           RequestStatus.PENDING_APPROVAL, stage)

    def claim_confirmation_resend(self, request_id: str, previous: datetime | None,
                                  at: datetime, audit_event: str) -> bool:
        """Record that the confirmation mail is sent again now (while unconfirmed)."""
        return self._claim(request_id, "confirmation_sent_at", previous, at, audit_event,
                           RequestStatus.PENDING_VERIFICATION, 0)

    def withdraw_request(self, request_id: str, status: str, at: datetime,
                         audit_event: str) -> bool:
        """The applicant withdraws an open request: ``status`` -> withdrawn,
        kept with its history (the approvers' links say so) but holding no
        account name and no password hash. False when it moved on meanwhile."""
        try:
            self._modify(self.request_dn(request_id), {
                **REQUEST.swap("status", status, RequestStatus.WITHDRAWN),
                **REQUEST.replace(decided_at=at, password_hash=None),
                **REQUEST.add(audit=[audit_event])})
            return True
        except (StateConflict, NoSuchEntry):
            return False
