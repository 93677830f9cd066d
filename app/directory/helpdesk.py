"""What the helpdesk reads and writes beyond the workflows: people and
requests found by any name, address, certificate, institution or status
(server-side filters on indexed attributes, escaped, size-limited), an
entry as LDIF with secrets left out, and the paper route's attributes of a
request (``portalPaperRequest``: who checked the signed form, a note)."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Iterator

from ldap3 import BASE

from ..vocabulary import RequestStatus
from .connection import DirectoryConnection
from .errors import NoSuchEntry, StateConflict, ValueExists
from .groups import INSTITUTION
from .mapping import Attr, AttributeMap
from .people import PERSON, PERSON_ATTRS, person_record
from .records import Person, RequestRecord
from .requests import PAPER_CLASS, REQUEST, REQUEST_ATTRS, request_record
from .values import eq, escape_filter_value

PAPER = AttributeMap(
    object_classes=Attr("objectClass", multi=True),
    verified_by="portalPaperVerifiedBy",
    note="portalPaperNote",
)
# Institutions changed through the portal keep their audit records.
# Deputies (portalDeputy) belong to the auxiliary class of reminders and escalation.
FOLLOW_UP_CLASS = "portalFollowUp"
INSTITUTION_AUDIT = AttributeMap(
    object_classes=Attr("objectClass", multi=True),
    audit=Attr("portalAuditEvent", multi=True),
)
AUDITED_CLASS = "portalAuditedEntry"
# Never shown, whoever asks: passwords and their hashes, the policy's
# history, reset nonces, session epochs, queued mail (it holds links).
SECRET_ATTRIBUTES = frozenset(a.lower() for a in (
    "userPassword", "pwdHistory", "pwdFailureTime", "pwdGraceUseTime",
    PERSON["password_hash"], REQUEST.fields["password_hash"].name, "portalResetNonce",
    PERSON["session_epoch"], "portalOutboxMessage", "pwdAccountTmpLockoutEnd"))
# The operational attributes of the password policy worth seeing.
_SHOWN_OPERATIONAL = ("pwdChangedTime", "pwdAccountLockedTime", "pwdPolicySubentry", "memberOf")


@dataclass(frozen=True)
class SearchTerms:
    """What the helpdesk typed, prepared by the service: ``text`` whole (an
    account name, an address, a certificate subject, part of a name),
    ``name_keys`` (folded given|family pairs), ``name_words`` (folded single
    names), and the filters ``status`` and ``institution``."""
    text: str = ""
    name_keys: tuple[str, ...] = ()
    name_words: tuple[str, ...] = ()
    status: str = ""
    institution: str = ""
    # Institutions the text names (id or name): their people and requests match.
    institutions: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.text or self.name_keys or self.name_words or self.status
                    or self.institution or self.institutions)


@dataclass(frozen=True)
class PaperDetails:
    verified_by: str
    note: str


def _contains(attribute: str, value: str) -> str:
    return f"({attribute}=*{escape_filter_value(value)}*)"


def _starts(attribute: str, value: str) -> str:
    return f"({attribute}={escape_filter_value(value)}*)"


def _ends(attribute: str, value: str) -> str:
    return f"({attribute}=*{escape_filter_value(value)})"


def _ldif_value(name: str, value: bytes) -> list[str]:
    """One LDIF line (RFC 2849): text as it is when it is a safe string,
    base64 otherwise, with the text as a comment when it is readable."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    safe = text is not None and text.isascii() and text.isprintable() and \
        not text.startswith((" ", ":", "<")) and not text.endswith(" ")
    if safe:
        return [f"{name}: {text}"]
    lines = [f"{name}:: {base64.b64encode(value).decode('ascii')}"]
    if text is not None and text.isprintable():
        lines.append(f"# {name}: {text}")
    return lines


def ldif(dn: str, attributes: dict[str, list]) -> str:
    """``attributes`` (name -> values, bytes or text) as one LDIF record,
    objectClass first, secrets left out."""
    lines = _ldif_value("dn", dn.encode("utf-8"))
    names = sorted(attributes, key=lambda n: (n.lower() != "objectclass", 0))
    for name in names:
        if name.lower() in SECRET_ATTRIBUTES:
            continue
        for value in attributes[name]:
            raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
            lines += _ldif_value(name, raw)
    return "\n".join(lines) + "\n"


class HelpdeskLookups(DirectoryConnection):
    def _text_filter(self, fields: AttributeMap, terms: SearchTerms, people: bool) -> str:
        parts = []
        text = terms.text
        if text:
            parts += [eq(fields["account_name"], text.lower()),
                      _starts(fields["account_name"], text.lower()),
                      eq(fields["contact_mail"], text), eq(fields["cert_subject"], text),
                      # Substrings of 4 or more: slapd's sub index (any-length 4) serves them.
                      *([_contains(fields["display_name"], text)] if len(text) >= 4 else [])]
            parts.append(eq(PERSON["mail"], text) if people else eq(REQUEST["collab_mail"], text))
        parts += [eq(fields["name_key"], key) for key in terms.name_keys]
        parts += [eq(fields["institution"], i) for i in terms.institutions]
        for word in terms.name_words:
            parts += [_starts(fields["name_key"], word + "|"),
                      _ends(fields["name_key"], "|" + word)]
        return f"(|{''.join(parts)})" if parts else ""

    def find_people(self, terms: SearchTerms, limit: int) -> tuple[list[Person], bool]:
        """People matching ``terms`` (at most ``limit``; True when there were more)."""
        if terms.empty:
            return [], False
        wanted = self._text_filter(PERSON, terms, people=True)
        status = eq(PERSON["status"], terms.status) if terms.status else ""
        institution = eq(PERSON["institution"], terms.institution) if terms.institution else ""
        entries = self._search(
            self.people_dn, f"(&(objectClass=inetOrgPerson){wanted}{status}{institution})",
            PERSON_ATTRS, size_limit=limit + 1)
        found = sorted((person_record(e) for e in entries),
                       key=lambda p: (p.family_name.lower(), p.given_name.lower()))
        return found[:limit], len(found) > limit

    def find_requests(self, terms: SearchTerms, limit: int) -> tuple[list[RequestRecord], bool]:
        """Requests (any kind and state) matching ``terms``."""
        if terms.empty:
            return [], False
        wanted = self._text_filter(REQUEST, terms, people=False)
        status = eq(REQUEST["status"], terms.status) if terms.status else ""
        institution = eq(REQUEST["institution"], terms.institution) \
            if terms.institution else ""
        entries = self._search(
            self.requests_dn, f"(&(objectClass=portalRequest){wanted}{status}{institution})",
            REQUEST_ATTRS, size_limit=limit + 1)
        found = sorted((request_record(e) for e in entries),
                       key=lambda r: r.submitted_at.isoformat() if r.submitted_at else "",
                       reverse=True)
        return found[:limit], len(found) > limit

    def entry_ldif(self, dn: str) -> str:
        """What the directory holds for ``dn`` as LDIF, secrets and hashes
        left out ("" when there is no such entry)."""
        entries = self._search(dn, "(objectClass=*)", ["*", *_SHOWN_OPERATIONAL],
                               scope=BASE)
        if not entries:
            return ""
        raw = entries[0].get("raw_attributes") or {}
        return ldif(entries[0]["dn"], {name: list(values) for name, values in raw.items()})

    def release_unconfirmed(self, request_id: str, audit_event: str) -> bool:
        """pending-verification -> withdrawn, kept with its history (an ended
        request holds no account name or address); False when it moved on."""
        try:
            self._modify(self.request_dn(request_id), {
                **REQUEST.swap("status", RequestStatus.PENDING_VERIFICATION,
                               RequestStatus.WITHDRAWN),
                **REQUEST.replace(password_hash=None), **REQUEST.add(audit=[audit_event])})
        except (StateConflict, NoSuchEntry):
            return False
        return True

    # -- the paper route --------------------------------------------------------------------

    @staticmethod
    def paper_attributes(verified_by: str, note: str) -> dict[str, list]:
        """The attributes that make a new request a paper one (see add_request's ``extra``)."""
        return PAPER.entry(object_classes=[PAPER_CLASS], verified_by=verified_by, note=note)

    def paper_details(self, request_id: str) -> PaperDetails | None:
        """Who checked the signed paper form of a request (None: not a paper request)."""
        entry = self._read(self.request_dn(request_id), PAPER.names())
        if not entry:
            return None
        values = PAPER.read(entry)
        if PAPER_CLASS.lower() not in {c.lower() for c in values["object_classes"]}:
            return None
        return PaperDetails(values["verified_by"], values["note"])

    # -- institutions (ou=institutions; the portal's account may write there) -----------------

    def add_institution(self, institution_id: str, name: str, country: str) -> None:
        """A new institution; EntryExists when the id is taken."""
        self._add(self.institution_dn(institution_id), INSTITUTION.entry(
            id=institution_id, name=name, country=country or None) | {
            "objectClass": ["portalInstitution"]})

    def update_institution(self, institution_id: str, name: str, country: str) -> None:
        self._modify(self.institution_dn(institution_id),
                     INSTITUTION.replace(name=name, country=country or None))

    def add_representative(self, institution_id: str, person_dn: str) -> None:
        """Name ``person_dn`` a representative (already one is fine)."""
        try:
            self._modify(self.institution_dn(institution_id),
                         INSTITUTION.add(representative_dns=[person_dn]))
        except ValueExists:
            pass

    def add_deputy(self, institution_id: str, person_dn: str) -> None:
        """Name ``person_dn`` a deputy of the IRs (already one is fine); the
        institution gets the auxiliary class of deputies if it lacks it."""
        dn = self.institution_dn(institution_id)
        entry = self._read(dn, INSTITUTION.names("object_classes"))
        if entry is None:
            raise NoSuchEntry(dn)
        classes = {c.lower() for c in INSTITUTION.read(entry, "object_classes")["object_classes"]}
        changes = INSTITUTION.add(deputy_dns=[person_dn])
        if FOLLOW_UP_CLASS.lower() not in classes:
            changes.update(INSTITUTION.add(object_classes=[FOLLOW_UP_CLASS]))
        try:
            self._modify(dn, changes)
        except ValueExists:
            pass

    def remove_deputy(self, institution_id: str, person_dn: str) -> None:
        try:
            self._modify(self.institution_dn(institution_id),
                         INSTITUTION.delete(deputy_dns=[person_dn]))
        except StateConflict:
            pass

    def remove_representative(self, institution_id: str, person_dn: str) -> None:
        try:
            self._modify(self.institution_dn(institution_id),
                         INSTITUTION.delete(representative_dns=[person_dn]))
        except StateConflict:
            pass

    # -- the member list ----------------------------------------------------------------------

    def members_for_export(self, status: str = "", institution: str = "",
                           category: str = "") -> Iterator[Person]:
        """Collaboration members with these filters, streamed page by page."""
        parts = [eq(PERSON[field], value) for field, value in
                 (("status", status), ("institution", institution), ("category", category))
                 if value]
        for entry in self._paged_entries(
                self.people_dn, f"(&(objectClass=portalMember){''.join(parts)})", PERSON_ATTRS):
            yield person_record(entry)

    # -- audit records of institutions (auxiliary portalAuditedEntry) ------------------------

    def add_institution_audit(self, institution_id: str, audit_event: str) -> None:
        dn = self.institution_dn(institution_id)
        try:
            self._modify(dn, INSTITUTION_AUDIT.add(object_classes=[AUDITED_CLASS]))
        except ValueExists:
            pass
        self._modify(dn, INSTITUTION_AUDIT.add(audit=[audit_event]))

    def institution_audit(self, institution_id: str) -> tuple[str, ...]:
        entry = self._read(self.institution_dn(institution_id), INSTITUTION_AUDIT.names("audit"))
        return INSTITUTION_AUDIT.read(entry, "audit")["audit"] if entry else ()
