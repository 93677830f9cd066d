"""People in ou=people: collaboration members and host-lab accounts."""
from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Iterator

from ..vocabulary import ACCOUNT_NAME_RE, MemberStatus
from .connection import DirectoryConnection
from .errors import ConstraintViolation, DirectoryError, NoSuchEntry, StateConflict, ValueExists
from .mapping import Attr, AttributeMap, certificate_from, certificate_value, int_attr, time_attr
from .records import Certificate, NewMember, Person, RosterMember
from .values import eq

MEMBER_CLASSES = ("inetOrgPerson", "posixAccount", "portalMember")
PERSON = AttributeMap(
    account_name="uid",
    given_name="givenName",
    middle_name="portalMiddleName",
    family_name="sn",
    display_name="cn",
    mail="mail",
    contact_mail="portalContactMail",
    institution="portalHomeInstitution",
    category="portalCategory",
    status="portalStatus",
    member_since=time_attr("portalMemberSince"),
    initial_password_deadline=time_attr("portalInitialPasswordDeadline"),
    uid_number=int_attr("uidNumber"),
    groups=Attr("memberOf", multi=True),
    member_until=time_attr("portalMemberUntil"),
    audit=Attr("portalAuditEvent", multi=True),
    conditions_version="portalConditionsVersion",
    language="preferredLanguage",
    # Written, not part of the record.
    object_classes=Attr("objectClass", multi=True),
    mails=Attr("mail", multi=True),
    display="displayName",
    gid_number=int_attr("gidNumber"),
    home_directory="homeDirectory",
    login_shell="loginShell",
    password_hash=Attr("userPassword", raw=True),
    password_policy="pwdPolicySubentry",
    name_key="portalNameKey",
    cert_subject="portalCertSubject",
    session_epoch="portalSessionEpoch",
    # The IR console (auxiliary class portalRosterRecord): an ended membership.
    membership_ended_at=time_attr("portalMembershipEndedAt"),
    previous_member_until=time_attr("portalPreviousMemberUntil"),
    # Read for the roster only (the password's expiry date).
    password_changed_at=time_attr("pwdChangedTime"),
    certificates=Attr("portalCertificate", multi=True),  # subject + issuer per value
    cert_subjects=Attr("portalCertSubject", multi=True),
)
ROSTER_RECORD_CLASS = "portalRosterRecord"
CERTIFICATE_CLASS = "portalCertificates"
PERSON_FIELDS = tuple(f.name for f in fields(Person) if f.name != "dn")
PERSON_ATTRS = PERSON.names(*PERSON_FIELDS)
ADDED_PERSON_ATTRS = PERSON.names(*(f for f in PERSON_FIELDS if f != "groups"))
UID_COUNTER = AttributeMap(next_uid=int_attr("uidNumber"))
ROSTER_FIELDS = tuple(f.name for f in fields(RosterMember) if f.name != "password_policy")
ROSTER_ATTRS = PERSON.names(*ROSTER_FIELDS, "password_policy")


def person_record(entry: dict) -> Person:
    values = PERSON.read(entry, *PERSON_FIELDS)
    values["certificates"] = tuple(c for c in map(certificate_from, values["certificates"]) if c)
    return Person(dn=entry["dn"], **values)


class People(DirectoryConnection):
    def person_by_dn(self, dn: str) -> Person | None:
        entry = self._read(dn, PERSON_ATTRS)
        return person_record(entry) if entry else None

    def person(self, account_name: str) -> Person | None:
        if not ACCOUNT_NAME_RE.match(account_name or ""):
            return None
        return self.person_by_dn(self.person_dn(account_name))

    def person_by_login(self, login: str) -> Person | None:
        """The member known by this account name or e-mail address (one only)."""
        login = (login or "").strip().lower()
        if ACCOUNT_NAME_RE.match(login):
            return self.person(login)
        if "@" not in login or len(login) > 254:
            return None
        entries = self._search(
            self.people_dn, f"(&(objectClass=inetOrgPerson)(|{eq(PERSON['mail'], login)}"
            f"{eq(PERSON['contact_mail'], login)}))", PERSON_ATTRS)
        return person_record(entries[0]) if len(entries) == 1 else None

    def add_member(self, member: NewMember) -> Person:
        """Write the member's entry; the member as added, read by the add
        itself. Its ``groups`` are empty: slapo-dynlist computes memberOf
        for searches only (read the person for them)."""
        dn, attributes = self.member_attributes(member)
        entry = self._add_and_read(dn, attributes, ADDED_PERSON_ATTRS)
        if entry is None:
            raise NoSuchEntry(dn)
        return person_record(entry)

    def member_attributes(self, member: NewMember) -> tuple[str, dict[str, list]]:
        """The DN and attributes of the entry ``add_member`` writes (the
        helpdesk's preview of an approval shows exactly these)."""
        dn = self.person_dn(member.account_name)
        display = " ".join(p for p in (member.given_name, member.middle_name,
                                       member.family_name) if p)
        certificate = member.certificate
        return dn, PERSON.entry(
            object_classes=MEMBER_CLASSES + ((CERTIFICATE_CLASS,) if certificate else ()),
            certificates=[certificate_value(certificate)] if certificate else [],
            account_name=member.account_name,
            display_name=display, display=display, given_name=member.given_name,
            family_name=member.family_name, mail=member.mail, contact_mail=member.contact_mail,
            institution=member.institution, category=member.category,
            status=MemberStatus.ACTIVE, member_since=member.member_since,
            initial_password_deadline=member.initial_password_deadline,
            conditions_version=member.conditions_version, uid_number=member.uid_number,
            gid_number=member.gid_number, home_directory=f"/home/{member.account_name}",
            login_shell="/bin/bash", password_hash=member.password_hash,
            # Initial passwords live under their own, short-lived policy.
            password_policy=self.initial_policy_dn, audit=[member.audit_event],
            middle_name=member.middle_name, name_key=member.name_key,
            member_until=member.member_until, cert_subject=member.cert_subject,
            language=member.language)

    def prepare_member(self, account_name: str, *, institution: str, category: str,
                       member_until: datetime | None, collab_mail: str, name_key: str,
                       contact_mail: str, now: datetime, gid_number: int,
                       audit_event: str) -> None:
        """Make an entry in ou=people an active collaboration member again,
        keeping the entry and its account name. An account of the host lab
        from another project gets the member classes it lacks. Repeatable."""
        dn = self.person_dn(account_name)
        entry = self._read(dn, PERSON.names("object_classes", "mails", "contact_mail"))
        if entry is None:
            raise NoSuchEntry(dn)
        current = PERSON.read(entry, "object_classes", "mails", "contact_mail")
        classes = {c.lower() for c in current["object_classes"]}
        changes = {**PERSON.replace(status=MemberStatus.ACTIVE, institution=institution,
                                    category=category, member_until=member_until),
                   **PERSON.add(audit=[audit_event])}
        new_classes = []
        if "portalmember" not in classes:
            new_classes.append("portalMember")
            changes.update(PERSON.replace(member_since=now))
            if name_key:
                changes.update(PERSON.replace(name_key=name_key))
        if contact_mail and contact_mail.lower() != (current["contact_mail"] or "").lower():
            # The address confirmed with the request replaces the stored one.
            changes.update(PERSON.replace(contact_mail=contact_mail))
        if collab_mail and collab_mail.lower() not in {m.lower() for m in current["mails"]}:
            changes.update(PERSON.add(mails=[collab_mail]))
        if "posixaccount" not in classes:
            new_classes.append("posixAccount")
            changes.update(PERSON.replace(uid_number=self.allocate_uid_number(),
                                          gid_number=gid_number,
                                          home_directory=f"/home/{account_name}"))
        if new_classes:
            changes.update(PERSON.add(object_classes=new_classes))
        self._modify(dn, changes)

    def is_collaboration_member(self, account_name: str) -> bool:
        entry = self._read(self.person_dn(account_name), PERSON.names("object_classes"))
        return bool(entry) and "portalmember" in {
            c.lower() for c in PERSON.read(entry, "object_classes")["object_classes"]}

    def transition_member(self, account_name: str, expected: str, new: str,
                          audit_event: str) -> None:
        """Status ``expected`` -> ``new`` atomically (StateConflict if not)."""
        self._modify(self.person_dn(account_name), {
            **PERSON.swap("status", expected, new), **PERSON.add(audit=[audit_event])})

    def members_due_to_expire(self, now: datetime) -> Iterator[Person]:
        """Active members past their member-until date, streamed page by page
        (slapd selects them: portalStatus eq index, a range on the date)."""
        active = eq(PERSON["status"], MemberStatus.ACTIVE)
        due = f"({PERSON['member_until']}<={PERSON.fields['member_until'].dump(now)})"
        for entry in self._paged_entries(
                self.people_dn, f"(&(objectClass=portalMember){active}{due})", PERSON_ATTRS):
            yield person_record(entry)

    def set_home_institution(self, account_name: str, institution: str,
                             audit_event: str) -> None:
        self._modify(self.person_dn(account_name), {
            **PERSON.replace(institution=institution), **PERSON.add(audit=[audit_event])})

    def set_category(self, account_name: str, category: str, member_until: datetime | None,
                     audit_event: str) -> None:
        self._modify(self.person_dn(account_name), {
            **PERSON.replace(category=category, member_until=member_until),
            **PERSON.add(audit=[audit_event])})

    def replace_contact_mail(self, account_name: str, current: str, new: str,
                             audit_event: str) -> None:
        """The institutional address ``current`` -> ``new`` (StateConflict
        when it changed meanwhile)."""
        changes = PERSON.swap("contact_mail", current, new) if current else \
            PERSON.replace(contact_mail=new)
        self._modify(self.person_dn(account_name), {**changes, **PERSON.add(audit=[audit_event])})

    def correct_names(self, account_name: str, *, given: str, middle: str, family: str,
                      name_key: str, mail: str, old_mail: str, audit_event: str) -> None:
        """New names and collaboration address (first); the old address stays
        as an alias, so mail to it still arrives."""
        dn = self.person_dn(account_name)
        entry = self._read(dn, PERSON.names("mails"))
        current = PERSON.read(entry, "mails")["mails"] if entry else []
        mails = [mail] + [m for m in current if m.lower() != mail.lower()]
        if old_mail and old_mail.lower() not in {m.lower() for m in mails}:
            mails.append(old_mail)
        display = " ".join(p for p in (given, middle, family) if p)
        self._modify(dn, {
            **PERSON.replace(given_name=given, middle_name=middle or None, family_name=family,
                             display_name=display, display=display, name_key=name_key,
                             mails=mails),
            **PERSON.add(audit=[audit_event])})

    def record_conditions_accepted(self, account_name: str, version: str,
                                   audit_event: str) -> None:
        self._modify(self.person_dn(account_name), {
            **PERSON.replace(conditions_version=version), **PERSON.add(audit=[audit_event])})

    def set_preferred_language(self, account_name: str, language: str,
                               audit_event: str) -> None:
        self._modify(self.person_dn(account_name), {
            **PERSON.replace(language=language), **PERSON.add(audit=[audit_event])})

    def add_person_audit(self, account_name: str, audit_event: str) -> None:
        self._modify(self.person_dn(account_name), PERSON.add(audit=[audit_event]))

    def session_epoch(self, account_name: str) -> str:
        entry = self._read(self.person_dn(account_name), PERSON.names("session_epoch"))
        return PERSON.read(entry, "session_epoch")["session_epoch"] if entry else ""

    def new_session_epoch(self, account_name: str, epoch: str) -> None:
        self._modify(self.person_dn(account_name), PERSON.replace(session_epoch=epoch))

    # -- Grid user certificates -----------------------------------------------------------

    def person_by_certificate(self, certificate: Certificate) -> Person | None:
        """The one entry in ou=people holding this certificate (subject and issuer)."""
        entries = self._search(self.people_dn, f"(&(objectClass=portalMember)"
                               f"{eq(PERSON['certificates'], certificate_value(certificate))})",
                               PERSON_ATTRS)
        return person_record(entries[0]) if len(entries) == 1 else None

    def add_certificate(self, account_name: str, certificate: Certificate,
                        audit_event: str) -> None:
        """Another certificate on the member's entry (its subject too, for
        the duplicate check); ValueExists when it is there already."""
        dn = self.person_dn(account_name)
        entry = self._read(dn, PERSON.names("object_classes", "cert_subjects"))
        if entry is None:
            raise NoSuchEntry(dn)
        current = PERSON.read(entry, "object_classes", "cert_subjects")
        changes = {**PERSON.add(certificates=[certificate_value(certificate)]),
                   **PERSON.add(audit=[audit_event])}
        if CERTIFICATE_CLASS.lower() not in {c.lower() for c in current["object_classes"]}:
            changes.update(PERSON.add(object_classes=[CERTIFICATE_CLASS]))
        if certificate.subject.lower() not in {s.lower() for s in current["cert_subjects"]}:
            changes.update(PERSON.add(cert_subjects=[certificate.subject]))
        self._modify(dn, changes)

    def remove_certificate(self, account_name: str, certificate: Certificate,
                           audit_event: str) -> None:
        """Take one certificate off the entry (its subject too unless another
        certificate has it); StateConflict when it is not there."""
        person = self.person(account_name)
        if person is None or certificate not in person.certificates:
            raise StateConflict("no such certificate")
        changes = {**PERSON.delete(certificates=[certificate_value(certificate)]),
                   **PERSON.add(audit=[audit_event])}
        others = {c.subject.lower() for c in person.certificates if c != certificate}
        entry = self._read(person.dn, PERSON.names("cert_subjects"))
        stored = PERSON.read(entry, "cert_subjects")["cert_subjects"] if entry else ()
        gone = [s for s in stored if s.lower() == certificate.subject.lower()
                and s.lower() not in others]
        if gone:
            changes.update(PERSON.delete(cert_subjects=gone))
        self._modify(person.dn, changes)

    def allocate_uid_number(self) -> int:
        """Take the next uidNumber: one increment of the counter (RFC 4525),
        its new value returned by that same modify. Concurrent approvals
        queue in slapd instead of retrying a compare-and-swap (which at 16
        at once cost 2.4 failed swaps an approval)."""
        try:
            entry = self._modify_and_read(self.uid_counter_dn, UID_COUNTER.increment("next_uid"),
                                          UID_COUNTER.names(), critical=True)
        except (NoSuchEntry, StateConflict) as exc:
            raise NoSuchEntry(f"{self.uid_counter_dn} or its uidNumber is missing") from exc
        taken = UID_COUNTER.read(entry)["next_uid"]  # critical: the modify's own answer
        if taken is None:
            raise DirectoryError(f"{self.uid_counter_dn} returned no uidNumber")
        return taken - 1  # the counter holds the next free number

    # -- the IR console: an institution's roster, ended memberships ---------------------

    def roster(self, institution_id: str, *, status: str = "",
               category: str = "") -> Iterator[RosterMember]:
        """The members of one institution, optionally of one status and
        category, streamed page by page in the directory's order. slapd
        selects them (eq indexes on portalHomeInstitution, portalStatus and
        portalCategory) and sends only the roster's attributes."""
        wanted = eq(PERSON["institution"], institution_id)
        if status:
            wanted += eq(PERSON["status"], status)
        if category:
            wanted += eq(PERSON["category"], category)
        for entry in self._paged_entries(self.people_dn, f"(&(objectClass=portalMember){wanted})",
                                         ROSTER_ATTRS, page_size=200):
            values = PERSON.read(entry, *ROSTER_FIELDS, "password_policy")
            yield RosterMember(**values)

    def _roster_class_change(self, dn: str) -> dict:
        """Adds the auxiliary class portalRosterRecord when the entry lacks it."""
        entry = self._read(dn, PERSON.names("object_classes"))
        classes = {c.lower() for c in PERSON.read(entry, "object_classes")["object_classes"]} \
            if entry else set()
        return {} if ROSTER_RECORD_CLASS.lower() in classes else \
            PERSON.add(object_classes=[ROSTER_RECORD_CLASS])

    def record_membership_ended(self, account_name: str, *, at: datetime,
                                until: datetime, previous_until: datetime | None,
                                audit_event: str) -> None:
        """An active member's membership ends at ``until`` (the grace period).
        StateConflict when it was ended already or the member is not active."""
        dn = self.person_dn(account_name)
        changes = {
            **self._roster_class_change(dn),
            # Deleted and added again: the member must still be active.
            **PERSON.swap("status", MemberStatus.ACTIVE, MemberStatus.ACTIVE),
            # Single-valued: adding it fails when the membership was ended already.
            **PERSON.add(membership_ended_at=at, audit=[audit_event]),
            **PERSON.replace(member_until=until, previous_member_until=previous_until),
        }
        try:
            self._modify(dn, changes)
        except (ConstraintViolation, ValueExists) as exc:
            raise StateConflict(str(exc)) from exc

    def record_membership_end_undone(self, account_name: str, *, ended_at: datetime,
                                     restore_until: datetime | None, audit_event: str) -> None:
        """The ending recorded at ``ended_at`` is undone: member-until is what
        it was. StateConflict when it was undone (or expired) meanwhile."""
        self._modify(self.person_dn(account_name), {
            **PERSON.swap("status", MemberStatus.ACTIVE, MemberStatus.ACTIVE),
            **PERSON.delete(membership_ended_at=ended_at),
            **PERSON.replace(member_until=restore_until, previous_member_until=None),
            **PERSON.add(audit=[audit_event])})

    def set_member_until(self, account_name: str, until: datetime, audit_event: str) -> None:
        """A new member-until date for an active member; an ending in grace is
        forgotten with it (the date set is the one that counts)."""
        dn = self.person_dn(account_name)
        self._modify(dn, {
            **PERSON.swap("status", MemberStatus.ACTIVE, MemberStatus.ACTIVE),
            **PERSON.replace(member_until=until, membership_ended_at=None,
                             previous_member_until=None),
            **PERSON.add(audit=[audit_event])})

    def forget_membership_ending(self, account_name: str) -> None:
        """The ending's marks go once the member expired (repeatable)."""
        self._modify(self.person_dn(account_name), PERSON.replace(
            membership_ended_at=None, previous_member_until=None))
