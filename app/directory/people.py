"""People in ou=people: collaboration members and host-lab accounts."""
from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Iterator

from ..vocabulary import ACCOUNT_NAME_RE, MemberStatus
from .connection import DirectoryConnection, eq
from .errors import DirectoryError, NoSuchEntry, StateConflict
from .mapping import Attr, AttributeMap, int_attr, time_attr
from .records import NewMember, Person

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
)
PERSON_FIELDS = tuple(f.name for f in fields(Person) if f.name != "dn")
PERSON_ATTRS = PERSON.names(*PERSON_FIELDS)
UID_COUNTER = AttributeMap(next_uid=int_attr("uidNumber"))


def person_record(entry: dict) -> Person:
    return Person(dn=entry["dn"], **PERSON.read(entry, *PERSON_FIELDS))


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

    def add_member(self, member: NewMember) -> str:
        dn, attributes = self.member_attributes(member)
        self._add(dn, attributes)
        return dn

    def member_attributes(self, member: NewMember) -> tuple[str, dict[str, list]]:
        """The DN and attributes of the entry ``add_member`` writes (the
        helpdesk's preview of an approval shows exactly these)."""
        dn = self.person_dn(member.account_name)
        display = " ".join(p for p in (member.given_name, member.middle_name,
                                       member.family_name) if p)
        return dn, PERSON.entry(
            object_classes=MEMBER_CLASSES, account_name=member.account_name,
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

    def allocate_uid_number(self, attempts: int = 50) -> int:
        """Take the next uidNumber: an atomic delete-old/add-new on the counter."""
        for _ in range(attempts):
            entry = self._read(self.uid_counter_dn, UID_COUNTER.names())
            if entry is None:
                raise NoSuchEntry(f"{self.uid_counter_dn} is missing")
            current = UID_COUNTER.read(entry)["next_uid"]
            try:
                self._modify(self.uid_counter_dn, UID_COUNTER.swap("next_uid", current,
                                                                   current + 1))
                return current
            except StateConflict:
                continue
        raise DirectoryError("could not allocate a uidNumber: too much contention")
