"""The directory gateway: the only module that talks LDAP.

Connections are kept per thread and reopened once on a communication failure;
every value that goes into a filter is escaped and every DN is built from a
validated name; ldap3 errors become the project's own exceptions.
"""
from __future__ import annotations

import logging
import re
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, TypeVar

from ldap3 import (
    AUTO_BIND_TLS_BEFORE_BIND, BASE, FIRST, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, NONE,
    SUBTREE, SYNC, Connection, Server, ServerPool, Tls,
)
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.config import set_config_parameter
from ldap3.utils.dn import escape_rdn

from . import ppolicy
from .errors import (
    DirectoryError, DirectoryUnavailable, EntryExists, NoSuchEntry, PasswordRefused, StateConflict,
)
from .records import (
    EarlierRecord, Institution, NewMember, NewRequest, OutboxMessage, PasswordState, Person,
    Request,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
# ldap3 sleeps this long after every unsuccessful round over the server pool
# (10 s by default), even after the last one: a request would hang instead
# of answering 503 at once.
set_config_parameter("POOLING_LOOP_TIMEOUT", 0)

# Account names and institution ids are validated here again before they
# become part of a DN (ldap3's escape_rdn mishandles edge cases such as NUL).
ACCOUNT_NAME_RE = re.compile(r"^[a-z][a-z0-9]{3,7}$")
IDENTIFIER_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
REQUEST_ID_RE = re.compile(r"^[a-z][a-z0-9]{3,7}-[0-9]{14}$")
# ppolicy: this pwdAccountLockedTime means "locked until an administrator unlocks".
PERMANENT_LOCK = "000001010000Z"
PASSWORD_STATE_ATTRS = [
    "pwdChangedTime", "pwdPolicySubentry", "pwdAccountLockedTime", "portalExpiryNotice",
    "portalResetNonce",
]
PERSON_ATTRS = [
    "uid", "givenName", "portalMiddleName", "sn", "cn", "mail", "portalContactMail",
    "portalHomeInstitution", "portalCategory", "portalStatus", "portalMemberSince",
    "portalInitialPasswordDeadline", "uidNumber", "memberOf", "portalMemberUntil",
    "portalAuditEvent", "portalConditionsVersion",
]
REQUEST_ATTRS = [
    "uid", "portalRequestStatus", "givenName", "portalMiddleName", "sn", "portalContactMail",
    "portalHomeInstitution", "portalCategory", "portalCollabMail", "portalConditionsVersion",
    "portalSubmittedAt", "portalSubmittedFrom", "portalEmailVerifiedAt", "portalDecidedBy",
    "portalDecidedAt", "portalDecidedFrom", "portalDecisionReason", "portalAccountCreatedAt",
    "portalAuditEvent", "portalPreviousAccount", "portalRequestType", "portalRequestId",
    "portalApprovalChain", "portalApprovalStage", "portalTargetGroup", "portalCertSubject",
]
# No server could be reached: retrying at once would only double the wait.
_UNREACHABLE_ERRORS = (
    ldap_errors.LDAPSocketOpenError,
    ldap_errors.LDAPServerPoolExhaustedError,
    ldap_errors.LDAPMaximumRetriesError,
    ldap_errors.LDAPStartTLSError,  # e.g. a certificate that does not verify
)
# An open connection broke (server restarted, failed over): reconnect once.
_COMMUNICATION_ERRORS = (
    ldap_errors.LDAPCommunicationError,
    ldap_errors.LDAPResponseTimeoutError,
    ldap_errors.LDAPBusyResult,
    ldap_errors.LDAPUnavailableResult,
)


@dataclass(frozen=True)
class BindResult:
    """A member's simple bind: did it succeed, and what the policy said."""
    ok: bool
    policy: ppolicy.PolicyResponse


def ldap_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y%m%d%H%M%SZ")


def parse_ldap_time(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.rstrip("Z").split(".")[0]
    if text.startswith("0000"):  # ppolicy's permanent lock: "since ever"
        return datetime.min.replace(tzinfo=timezone.utc)
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


def _first(attrs: dict, name: str, default: str = "") -> str:
    values = attrs.get(name) or []
    if isinstance(values, list):
        return str(values[0]) if values else default
    return str(values)


def _all(attrs: dict, name: str) -> tuple[str, ...]:
    values = attrs.get(name) or []
    return tuple(str(v) for v in values) if isinstance(values, list) else (str(values),)


def escape_filter_value(value: str) -> str:
    """RFC 4515 escaping of an assertion value: the special characters, space
    and every byte outside printable ASCII become \\XX (ldap3's
    escape_filter_chars leaves control characters such as CR as they are, and
    its filter parser drops unescaped surrounding spaces)."""
    return "".join(
        chr(byte) if 0x20 < byte < 0x7F and byte not in b"*()\\" else f"\\{byte:02x}"
        for byte in value.encode("utf-8"))


def _eq(attribute: str, value: str) -> str:
    return f"({attribute}={escape_filter_value(value)})"


class Directory:
    def __init__(
        self, urls: Iterable[str], base_dn: str, bind_dn: str, bind_password: str,
        connect_timeout: float = 5, receive_timeout: float = 10, main_group: str = "members",
        ca_file: str = "", start_tls: bool = False,
    ):
        # ldaps:// and StartTLS verify the server's certificate and name
        # (ldap3 verifies nothing by default), against ca_file if given.
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file or None)
        self._start_tls = start_tls
        servers = [Server(url, get_info=NONE, connect_timeout=connect_timeout, tls=tls)
                   for url in urls]
        # active=1: try each server once per connection attempt instead of
        # ldap3's endless retry; exhaust=False: a server that was down is
        # tried again at the next connection (it may be back already).
        self._pool = ServerPool(servers, FIRST, active=1, exhaust=False)
        self._bind_dn = bind_dn
        self._bind_password = bind_password
        # ldap3 packs it into SO_RCVTIMEO as whole seconds.
        self._receive_timeout = max(1, int(receive_timeout))
        self._local = threading.local()
        self.base_dn = base_dn
        self.people_dn = f"ou=people,{base_dn}"
        self.requests_dn = f"ou=requests,{base_dn}"
        self.institutions_dn = f"ou=institutions,{base_dn}"
        self.groups_dn = f"ou=groups,{base_dn}"
        self.outbox_dn = f"ou=outbox,{base_dn}"
        self.uid_counter_dn = f"cn=uidnumber,ou=counters,{base_dn}"
        self.initial_policy_dn = f"cn=initial,ou=policies,{base_dn}"
        self.default_policy_dn = f"cn=default,ou=policies,{base_dn}"
        self._policy_max_age: dict[str, int] = {}
        self.main_group_dn = self.group_dn(main_group)

    # -- connection handling -------------------------------------------------

    def _connection(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = Connection(
                self._pool, self._bind_dn, self._bind_password, client_strategy=SYNC,
                auto_bind=AUTO_BIND_TLS_BEFORE_BIND if self._start_tls else True,
                raise_exceptions=True, receive_timeout=self._receive_timeout,
            )
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.unbind()
            except ldap_errors.LDAPException as exc:
                log.debug("closing a broken directory connection: %s", exc)

    def _call(self, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` on this thread's connection, reconnecting once."""
        for attempt in (1, 2):
            try:
                return operation(self._connection())
            except _UNREACHABLE_ERRORS as exc:
                self._drop_connection()
                raise DirectoryUnavailable(str(exc)) from exc
            except _COMMUNICATION_ERRORS as exc:
                self._drop_connection()
                if attempt == 2:
                    raise DirectoryUnavailable(str(exc)) from exc
                log.info("directory connection lost (%s); reconnecting", type(exc).__name__)
            except ldap_errors.LDAPEntryAlreadyExistsResult as exc:
                raise EntryExists(str(exc)) from exc
            except ldap_errors.LDAPNoSuchObjectResult as exc:
                raise NoSuchEntry(str(exc)) from exc
            except ldap_errors.LDAPNoSuchAttributeResult as exc:
                raise StateConflict(str(exc)) from exc
            except ldap_errors.LDAPBindError as exc:
                self._drop_connection()
                raise DirectoryError(f"the portal cannot bind to the directory: {exc}") from exc
            except ldap_errors.LDAPException as exc:
                raise DirectoryError(f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def _search(self, base: str, search_filter: str, attributes: list[str],
                scope=SUBTREE, size_limit: int = 0) -> list[dict]:
        def run(conn: Connection) -> list[dict]:
            try:
                conn.search(base, search_filter, scope, attributes=attributes,
                            size_limit=size_limit)
            except ldap_errors.LDAPNoSuchObjectResult:
                return []
            return [r for r in conn.response if r.get("type") == "searchResEntry"]
        return self._call(run)

    def _read(self, dn: str, attributes: list[str]) -> dict | None:
        entries = self._search(dn, "(objectClass=*)", attributes, scope=BASE)
        return entries[0] if entries else None

    def _modify(self, dn: str, changes: dict) -> None:
        self._call(lambda conn: conn.modify(dn, changes))

    def ping(self) -> str:
        """Bind (if needed) and ask who we are; for ``flask portal check``."""
        return self._call(lambda conn: conn.extend.standard.who_am_i() or "")

    # -- DNs -------------------------------------------------------------------

    def person_dn(self, account_name: str) -> str:
        return f"uid={_checked_account_name(account_name)},{self.people_dn}"

    def request_dn(self, request_id: str) -> str:
        """A registration is filed under its account name (uid=<name>, which
        makes the name unique); later requests for the same account under
        portalRequestId=<name>-<yyyymmddhhmmss>."""
        if isinstance(request_id, str) and ACCOUNT_NAME_RE.match(request_id):
            return f"uid={request_id},{self.requests_dn}"
        if isinstance(request_id, str) and REQUEST_ID_RE.match(request_id):
            return f"portalRequestId={request_id},{self.requests_dn}"
        raise ValueError("not a valid request id")

    def group_dn(self, name: str) -> str:
        return f"cn={escape_rdn(_checked_identifier(name))},{self.groups_dn}"

    def institution_dn(self, institution_id: str) -> str:
        return f"portalInstitutionId={_checked_identifier(institution_id)},{self.institutions_dn}"

    # -- institutions and people ---------------------------------------------

    def institutions(self) -> list[Institution]:
        entries = self._search(self.institutions_dn, "(objectClass=portalInstitution)",
                               ["portalInstitutionId", "o", "c", "portalRepresentative"])
        return sorted((_institution(e) for e in entries), key=lambda i: i.name.lower())

    def institution(self, institution_id: str) -> Institution | None:
        if not IDENTIFIER_RE.match(institution_id or ""):
            return None
        entry = self._read(self.institution_dn(institution_id),
                           ["portalInstitutionId", "o", "c", "portalRepresentative"])
        return _institution(entry) if entry else None

    def person_by_dn(self, dn: str) -> Person | None:
        entry = self._read(dn, PERSON_ATTRS)
        return _person(entry) if entry else None

    def person(self, account_name: str) -> Person | None:
        if not ACCOUNT_NAME_RE.match(account_name or ""):
            return None
        return self.person_by_dn(self.person_dn(account_name))

    def account_names_in_use(self, names: Iterable[str]) -> set[str]:
        """Which of ``names`` are held by anyone: people, staff, requests."""
        names = sorted({n for n in names if n})
        if not names:
            return set()
        wanted = "".join(_eq("uid", n) for n in names)
        entries = self._search(self.base_dn, f"(|{wanted})", ["uid"])
        return {u.lower() for e in entries for u in _all(e["attributes"], "uid")} & set(names)

    def mail_addresses_in_use(self, addresses: Iterable[str], exclude_account: str = "") -> set[str]:
        """Which collaboration addresses are taken by members or open/approved
        requests (other than those of ``exclude_account``)."""
        addresses = sorted({a.lower() for a in addresses if a})
        if not addresses:
            return set()
        wanted = "".join(_eq("mail", a) + _eq("portalCollabMail", a) for a in addresses)
        exclude = f"(!{_eq('uid', exclude_account)})" if exclude_account else ""
        filt = f"(&(|{wanted})(!(portalRequestStatus=rejected)){exclude})"
        entries = self._search(self.base_dn, filt, ["mail", "portalCollabMail"])
        found = {v.lower() for e in entries
                 for v in _all(e["attributes"], "mail") + _all(e["attributes"], "portalCollabMail")}
        return found & set(addresses)

    def earlier_records(self, emails: Iterable[str] = (), name_keys: Iterable[str] = (),
                        account_names: Iterable[str] = (),
                        cert_subjects: Iterable[str] = ()) -> list[EarlierRecord]:
        """People (any status, with or without the collaboration's class) and
        requests (any state) sharing an address, a name key, an account name
        or a certificate subject."""
        parts = [_eq(attr, e) for e in emails if e
                 for attr in ("mail", "portalContactMail")]
        parts += [_eq("portalNameKey", k) for k in name_keys if k]
        parts += [_eq("uid", n) for n in account_names if ACCOUNT_NAME_RE.match(n or "")]
        parts += [_eq("portalCertSubject", s) for s in cert_subjects if s]
        if not parts:
            return []
        wanted = "".join(parts)
        attrs = ["uid", "mail", "portalContactMail", "portalHomeInstitution", "portalNameKey",
                 "portalStatus", "portalRequestStatus", "portalCertSubject", "objectClass"]
        found = []
        for base, is_person in ((self.people_dn, True), (self.requests_dn, False)):
            for e in self._search(base, f"(|{wanted})", attrs):
                a = e["attributes"]
                found.append(EarlierRecord(
                    dn=e["dn"], is_person=is_person, account_name=_first(a, "uid"),
                    institution=_first(a, "portalHomeInstitution"),
                    contact_mail=_first(a, "portalContactMail"), mail=_first(a, "mail"),
                    name_keys=_all(a, "portalNameKey"),
                    status=_first(a, "portalStatus") or _first(a, "portalRequestStatus"),
                    cert_subjects=_all(a, "portalCertSubject")))
        return found

    def add_member(self, member: NewMember) -> str:
        dn = self.person_dn(member.account_name)
        display = " ".join(p for p in (member.given_name, member.middle_name, member.family_name) if p)
        attributes = {
            "objectClass": ["inetOrgPerson", "posixAccount", "portalMember"],
            "uid": member.account_name,
            "cn": display,
            "displayName": display,
            "givenName": member.given_name,
            "sn": member.family_name,
            "mail": member.mail,
            "portalContactMail": member.contact_mail,
            "portalHomeInstitution": member.institution,
            "portalCategory": member.category,
            "portalStatus": "active",
            "portalMemberSince": ldap_time(member.member_since),
            "portalInitialPasswordDeadline": ldap_time(member.initial_password_deadline),
            "portalConditionsVersion": member.conditions_version,
            "uidNumber": str(member.uid_number),
            "gidNumber": str(member.gid_number),
            "homeDirectory": f"/home/{member.account_name}",
            "loginShell": "/bin/bash",
            "userPassword": member.password_hash,
            # Initial passwords live under their own, short-lived policy.
            "pwdPolicySubentry": self.initial_policy_dn,
            "portalAuditEvent": member.audit_event,
            "portalMiddleName": member.middle_name,
            "portalNameKey": member.name_key,
            "portalMemberUntil": ldap_time(member.member_until) if member.member_until else "",
            "portalCertSubject": member.cert_subject,
        }
        attributes = _present(attributes)
        self._call(lambda conn: conn.add(dn, attributes=attributes))
        return dn

    def add_group_member(self, group_dn: str, member_dn: str) -> None:
        """Add ``member_dn`` to a group: as a DN in member (rfc2307bis
        clients) and, for a person, by account name in memberUid (rfc2307
        clients). Already a member is fine."""
        changes = [("member", member_dn)]
        account_name = self._account_name_of(member_dn)
        if account_name:
            changes.append(("memberUid", account_name))
        for attribute, value in changes:
            try:
                self._modify(group_dn, {attribute: [(MODIFY_ADD, [value])]})
            except DirectoryError as exc:
                if not isinstance(exc.__cause__, ldap_errors.LDAPAttributeOrValueExistsResult):
                    raise

    def remove_group_member(self, group_dn: str, member_dn: str) -> None:
        """Remove ``member_dn`` (member and memberUid); not a member is fine."""
        changes = [("member", member_dn)]
        account_name = self._account_name_of(member_dn)
        if account_name:
            changes.append(("memberUid", account_name))
        for attribute, value in changes:
            try:
                self._modify(group_dn, {attribute: [(MODIFY_DELETE, [value])]})
            except StateConflict:
                continue

    def _account_name_of(self, member_dn: str) -> str:
        """The account name of a DN in ou=people, else ""."""
        match = re.fullmatch(r"uid=([a-z][a-z0-9]{3,7})," + re.escape(self.people_dn),
                             member_dn or "", re.IGNORECASE)
        return match.group(1).lower() if match else ""

    def members_due_to_expire(self, now: datetime) -> list[Person]:
        entries = self._search(
            self.people_dn, "(&(objectClass=portalMember)(portalStatus=active)"
            f"(portalMemberUntil<={ldap_time(now)}))", PERSON_ATTRS)
        return [_person(e) for e in entries]

    def prepare_member(self, account_name: str, *, institution: str, category: str,
                       member_until: datetime | None, collab_mail: str, name_key: str,
                       contact_mail: str, now: datetime, gid_number: int,
                       audit_event: str) -> None:
        """Make an entry in ou=people an active collaboration member again,
        keeping the entry and its account name. An account of the host lab
        from another project gets the member classes it lacks. Repeatable."""
        dn = self.person_dn(account_name)
        entry = self._read(dn, ["objectClass", "mail", "portalContactMail"])
        if entry is None:
            raise NoSuchEntry(dn)
        a = entry["attributes"]
        classes = {c.lower() for c in _all(a, "objectClass")}
        changes: dict = {
            "portalStatus": [(MODIFY_REPLACE, ["active"])],
            "portalHomeInstitution": [(MODIFY_REPLACE, [institution])],
            "portalCategory": [(MODIFY_REPLACE, [category])],
            "portalMemberUntil": [(MODIFY_REPLACE, [ldap_time(member_until)] if member_until else [])],
            "portalAuditEvent": [(MODIFY_ADD, [audit_event])],
        }
        new_classes = []
        if "portalmember" not in classes:
            new_classes.append("portalMember")
            changes["portalMemberSince"] = [(MODIFY_REPLACE, [ldap_time(now)])]
            if name_key:
                changes["portalNameKey"] = [(MODIFY_REPLACE, [name_key])]
        if not _first(a, "portalContactMail") and contact_mail:
            changes["portalContactMail"] = [(MODIFY_REPLACE, [contact_mail])]
        if collab_mail and collab_mail.lower() not in {m.lower() for m in _all(a, "mail")}:
            changes["mail"] = [(MODIFY_ADD, [collab_mail])]
        if "posixaccount" not in classes:
            new_classes.append("posixAccount")
            changes["uidNumber"] = [(MODIFY_REPLACE, [str(self.allocate_uid_number())])]
            changes["gidNumber"] = [(MODIFY_REPLACE, [str(gid_number)])]
            changes["homeDirectory"] = [(MODIFY_REPLACE, [f"/home/{account_name}"])]
        if new_classes:
            changes["objectClass"] = [(MODIFY_ADD, new_classes)]
        self._modify(dn, changes)

    def is_collaboration_member(self, account_name: str) -> bool:
        entry = self._read(self.person_dn(account_name), ["objectClass"])
        return bool(entry) and "portalmember" in {
            c.lower() for c in _all(entry["attributes"], "objectClass")}

    def transition_member(self, account_name: str, expected: str, new: str,
                          audit_event: str) -> None:
        """portalStatus ``expected`` -> ``new`` atomically (StateConflict if not)."""
        self._modify(self.person_dn(account_name), {
            "portalStatus": [(MODIFY_DELETE, [expected]), (MODIFY_ADD, [new])],
            "portalAuditEvent": [(MODIFY_ADD, [audit_event])]})

    def lock_account(self, account_name: str) -> None:
        """Withdraw the account from every service: ppolicy's administrative
        lock (every bind fails), shadowExpire in the past (SSSD's and other
        POSIX clients' account check, ssh keys included) and out of every
        group (extra groups are applied for again after a reactivation)."""
        dn = self.person_dn(account_name)
        self._modify(dn, {"pwdAccountLockedTime": [(MODIFY_REPLACE, [PERMANENT_LOCK])],
                          "shadowExpire": [(MODIFY_REPLACE, ["1"])]})
        for group in self._search(self.groups_dn, f"(&(objectClass=groupOfNames){_eq('member', dn)})",
                                  ["cn"]):
            self.remove_group_member(group["dn"], dn)

    def unlock_account(self, account_name: str) -> None:
        self._modify(self.person_dn(account_name), {"pwdAccountLockedTime": [(MODIFY_REPLACE, [])],
                                                    "shadowExpire": [(MODIFY_REPLACE, [])]})

    def group_gid_number(self, group_dn: str) -> int:
        entry = self._read(group_dn, ["gidNumber"])
        if entry is None or not _first(entry["attributes"], "gidNumber"):
            raise NoSuchEntry(f"group {group_dn} or its gidNumber is missing")
        return int(_first(entry["attributes"], "gidNumber"))

    def allocate_uid_number(self, attempts: int = 50) -> int:
        """Take the next uidNumber: an atomic delete-old/add-new on the counter."""
        for _ in range(attempts):
            entry = self._read(self.uid_counter_dn, ["uidNumber"])
            if entry is None:
                raise NoSuchEntry(f"{self.uid_counter_dn} is missing")
            current = int(_first(entry["attributes"], "uidNumber"))
            try:
                self._modify(self.uid_counter_dn, {"uidNumber": [
                    (MODIFY_DELETE, [str(current)]), (MODIFY_ADD, [str(current + 1)])]})
                return current
            except StateConflict:
                continue
        raise DirectoryError("could not allocate a uidNumber: too much contention")

    # -- members' passwords (ppolicy applies) ----------------------------------

    def authenticate(self, account_name: str, password: str) -> BindResult:
        """A simple bind as the member, as any collaborative service does it:
        the password goes as its UTF-8 bytes (ldap3 would SASLprep a str, and
        refuse one with a control character), as registration hashed them."""
        if not ACCOUNT_NAME_RE.match(account_name or "") or not password:
            return BindResult(False, ppolicy.PolicyResponse())
        conn = Connection(self._pool, self.person_dn(account_name), password.encode("utf-8"),
                          client_strategy=SYNC, raise_exceptions=False,
                          receive_timeout=self._receive_timeout)
        try:
            self._open_member_connection(conn)
            ok = conn.bind(controls=[ppolicy.REQUEST_CONTROL])
            return BindResult(bool(ok), _policy_response(conn.result))
        except (*_UNREACHABLE_ERRORS, *_COMMUNICATION_ERRORS) as exc:
            raise DirectoryUnavailable(str(exc)) from exc
        finally:
            _close(conn)

    def _open_member_connection(self, conn: Connection) -> None:
        """Open a member's connection, with StartTLS when configured (a TLS
        failure is the directory being unavailable, never a wrong password)."""
        conn.open()
        if self._start_tls:
            try:
                conn.start_tls()
            except ldap_errors.LDAPException as exc:
                raise DirectoryUnavailable(f"StartTLS failed: {exc}") from exc

    def change_own_password(self, account_name: str, current: str, new: str) -> None:
        """Check ``current`` with a bind as the member, then set ``new`` with
        Password Modify as the portal: members cannot write userPassword
        themselves (acl.conf), so every change passes the portal's rules;
        slapd hashes the cleartext and applies the policy (length, history).
        Passwords go as their UTF-8 bytes. Raises PasswordRefused."""
        dn = self.person_dn(account_name)
        conn = Connection(self._pool, dn, current.encode("utf-8"), client_strategy=SYNC,
                          raise_exceptions=False, receive_timeout=self._receive_timeout)
        try:
            self._open_member_connection(conn)
            if not conn.bind(controls=[ppolicy.REQUEST_CONTROL]):
                policy = _policy_response(conn.result)
                raise PasswordRefused(policy.error or "invalidCredentials")
        except (*_UNREACHABLE_ERRORS, *_COMMUNICATION_ERRORS) as exc:
            raise DirectoryUnavailable(str(exc)) from exc
        finally:
            _close(conn)
        self.set_password(account_name, new)

    def set_password(self, account_name: str, new: str) -> None:
        """Password Modify by the portal (reset, change): the UTF-8 bytes in
        clear, slapd hashes them; policy and history apply, a lock by
        failures ends. Raises PasswordRefused."""
        dn = self.person_dn(account_name)

        def run(conn: Connection) -> None:
            try:
                conn.extend.standard.modify_password(dn, None, new.encode("utf-8"),
                                                     controls=[ppolicy.REQUEST_CONTROL])
            except ldap_errors.LDAPOperationResult:
                pass  # the result (and its policy control) is read below
            _raise_if_refused(conn.result)
        self._call(run)

    def password_state(self, account_name: str) -> PasswordState | None:
        entry = self._read(self.person_dn(account_name), PASSWORD_STATE_ATTRS)
        return self._password_state(entry) if entry else None

    def _password_state(self, entry: dict) -> PasswordState:
        a = entry["attributes"]
        policy = _first(a, "pwdPolicySubentry") or self.default_policy_dn
        return PasswordState(
            changed_at=parse_ldap_time(_first(a, "pwdChangedTime")),
            max_age_seconds=self.policy_max_age(policy),
            initial=policy.lower() == self.initial_policy_dn.lower(),
            locked_at=parse_ldap_time(_first(a, "pwdAccountLockedTime")),
            expiry_notices=_all(a, "portalExpiryNotice"),
            reset_nonce_hash=_first(a, "portalResetNonce"),
        )

    def policy_max_age(self, policy_dn: str) -> int:
        """pwdMaxAge of a policy entry in seconds (read once per process)."""
        key = policy_dn.lower()
        if key not in self._policy_max_age:
            entry = self._read(policy_dn, ["pwdMaxAge"])
            self._policy_max_age[key] = int(_first(entry["attributes"], "pwdMaxAge", "0")) \
                if entry else 0
        return self._policy_max_age[key]

    def initial_password_period(self) -> timedelta:
        """How long an initial password works: pwdMaxAge of the initial policy."""
        return timedelta(seconds=self.policy_max_age(self.initial_policy_dn))

    def active_members_with_password_state(self) -> list[tuple[Person, PasswordState]]:
        """Every active member, paged (for the scheduled expiry warnings)."""
        def run(conn: Connection) -> list[dict]:
            entries = conn.extend.standard.paged_search(
                self.people_dn, "(&(objectClass=portalMember)(portalStatus=active))", SUBTREE,
                attributes=PERSON_ATTRS + PASSWORD_STATE_ATTRS, paged_size=500, generator=False)
            return [e for e in entries if e.get("type") == "searchResEntry"]
        return [(_person(e), self._password_state(e)) for e in self._call(run)]

    def start_password_cycle(self, account_name: str) -> None:
        """A password was chosen: the default policy applies from now on and
        the expiry warnings of the previous password are forgotten."""
        self._modify(self.person_dn(account_name), {
            "pwdPolicySubentry": [(MODIFY_REPLACE, [])],
            "portalExpiryNotice": [(MODIFY_REPLACE, [])],
        })

    def set_reset_nonce(self, account_name: str, nonce_hash: str) -> None:
        self._modify(self.person_dn(account_name),
                     {"portalResetNonce": [(MODIFY_REPLACE, [nonce_hash])]})

    def consume_reset_nonce(self, account_name: str, nonce_hash: str) -> bool:
        """Delete exactly this nonce: True for the one caller that did."""
        try:
            self._modify(self.person_dn(account_name),
                         {"portalResetNonce": [(MODIFY_DELETE, [nonce_hash])]})
            return True
        except StateConflict:
            return False

    def add_expiry_notice(self, account_name: str, notice: str) -> bool:
        """Record a sent warning; False when it was recorded already."""
        try:
            self._modify(self.person_dn(account_name),
                         {"portalExpiryNotice": [(MODIFY_ADD, [notice])]})
            return True
        except DirectoryError as exc:
            if isinstance(exc.__cause__, ldap_errors.LDAPAttributeOrValueExistsResult):
                return False
            raise

    def record_conditions_accepted(self, account_name: str, version: str,
                                   audit_event: str) -> None:
        self._modify(self.person_dn(account_name), {
            "portalConditionsVersion": [(MODIFY_REPLACE, [version])],
            "portalAuditEvent": [(MODIFY_ADD, [audit_event])]})

    def session_epoch(self, account_name: str) -> str:
        entry = self._read(self.person_dn(account_name), ["portalSessionEpoch"])
        return _first(entry["attributes"], "portalSessionEpoch") if entry else ""

    def new_session_epoch(self, account_name: str, epoch: str) -> None:
        self._modify(self.person_dn(account_name),
                     {"portalSessionEpoch": [(MODIFY_REPLACE, [epoch])]})

    def add_person_audit(self, account_name: str, audit_event: str) -> None:
        self._modify(self.person_dn(account_name),
                     {"portalAuditEvent": [(MODIFY_ADD, [audit_event])]})

    def person_by_login(self, login: str) -> Person | None:
        """The member known by this account name or e-mail address (one only)."""
        login = (login or "").strip().lower()
        if ACCOUNT_NAME_RE.match(login):
            return self.person(login)
        if "@" not in login or len(login) > 254:
            return None
        entries = self._search(
            self.people_dn,
            f"(&(objectClass=inetOrgPerson)(|{_eq('mail', login)}{_eq('portalContactMail', login)}))",
            PERSON_ATTRS)
        return _person(entries[0]) if len(entries) == 1 else None

    # -- requests --------------------------------------------------------------

    def add_request(self, new: NewRequest) -> str:
        dn = self.request_dn(new.request_id or new.account_name)
        attributes = {
            "objectClass": ["portalRequest"],
            "uid": new.account_name,
            "portalRequestType": new.kind,
            "portalApprovalChain": ",".join(new.approval_chain),
            "portalApprovalStage": "0",
            "portalRequestStatus": new.status,
            "givenName": new.given_name,
            "sn": new.family_name,
            "cn": " ".join(p for p in (new.given_name, new.middle_name, new.family_name) if p),
            "portalContactMail": new.contact_mail,
            "portalHomeInstitution": new.institution,
            "portalCategory": new.category,
            "portalCollabMail": new.collab_mail,
            "portalConditionsVersion": new.conditions_version,
            "portalSubmittedAt": ldap_time(new.submitted_at),
            "portalSubmittedFrom": new.submitted_from,
            "portalPasswordHash": new.password_hash,
            "portalAuditEvent": new.audit_event,
            "portalMiddleName": new.middle_name,
            "portalNameKey": new.name_key,
            "portalPreviousAccount": new.previous_account,
            "portalRequestId": new.request_id,
            "portalTargetGroup": new.target_group,
            "portalCertSubject": new.cert_subject,
        }
        attributes = _present(attributes)
        self._call(lambda conn: conn.add(dn, attributes=attributes))
        return dn

    def request(self, request_id: str, with_password_hash: bool = False) -> Request | None:
        if not (ACCOUNT_NAME_RE.match(request_id or "") or REQUEST_ID_RE.match(request_id or "")):
            return None
        attrs = REQUEST_ATTRS + (["portalPasswordHash"] if with_password_hash else [])
        entry = self._read(self.request_dn(request_id), attrs)
        return _request(entry) if entry else None

    def set_home_institution(self, account_name: str, institution: str,
                             audit_event: str) -> None:
        self._modify(self.person_dn(account_name), {
            "portalHomeInstitution": [(MODIFY_REPLACE, [institution])],
            "portalAuditEvent": [(MODIFY_ADD, [audit_event])]})

    def open_requests_for(self, account_name: str, kind: str) -> list[Request]:
        """Undecided requests of one kind for an account."""
        entries = self._search(self.requests_dn, "(&(objectClass=portalRequest)"
                               f"{_eq('uid', account_name)}{_eq('portalRequestType', kind)}"
                               "(|(portalRequestStatus=pending-verification)"
                               "(portalRequestStatus=pending-approval)))", REQUEST_ATTRS)
        return [_request(e) for e in entries]

    def transition_request(self, request_id: str, expected: str, new: str,
                           changes: dict, audit_event: str, stage: int | None = None) -> None:
        """Move a request from status ``expected`` to ``new`` atomically.

        Raises StateConflict when the request is no longer in ``expected``
        (someone else decided first): the delete of the old value fails.
        With ``stage``, the request must also still wait for that stage.
        """
        modification = {
            "portalRequestStatus": [(MODIFY_DELETE, [expected]), (MODIFY_ADD, [new])],
            "portalAuditEvent": [(MODIFY_ADD, [audit_event])],
        }
        modification.update(_replacements(changes))
        if stage is not None:
            modification["portalApprovalStage"] = [(MODIFY_DELETE, [str(stage)]),
                                                   (MODIFY_ADD, [str(stage)])]
        self._modify(self.request_dn(request_id), modification)

    def advance_stage(self, request_id: str, stage: int, audit_event: str) -> None:
        """Stage ``stage`` approved: wait for the next one. StateConflict when
        the request moved meanwhile (decided, or the stage approved already)."""
        self._modify(self.request_dn(request_id), {
            "portalApprovalStage": [(MODIFY_DELETE, [str(stage)]), (MODIFY_ADD, [str(stage + 1)])],
            # Deleting and adding the same value: the request must still be pending.
            "portalRequestStatus": [(MODIFY_DELETE, ["pending-approval"]),
                                    (MODIFY_ADD, ["pending-approval"])],
            "portalAuditEvent": [(MODIFY_ADD, [audit_event])],
        })

    def group_member_dns(self, group_cn: str) -> tuple[str, ...]:
        entry = self._read(self.group_dn(group_cn), ["member"])
        return _all(entry["attributes"], "member") if entry else ()

    def update_request(self, request_id: str, changes: dict,
                       audit_event: str | None = None) -> None:
        modification = _replacements(changes)
        if audit_event:
            modification["portalAuditEvent"] = [(MODIFY_ADD, [audit_event])]
        self._modify(self.request_dn(request_id), modification)

    def claim_account_created(self, request_id: str, at: datetime, audit_event: str) -> bool:
        """Mark an approved request's account as complete, once.

        True for the one caller whose modify set ``portalAccountCreatedAt``
        (it then sends the mail); the request's password hash goes with it.
        """
        try:
            self._modify(self.request_dn(request_id), {
                "portalAccountCreatedAt": [(MODIFY_ADD, [ldap_time(at)])],
                "portalPasswordHash": [(MODIFY_REPLACE, [])],
                "portalAuditEvent": [(MODIFY_ADD, [audit_event])],
            })
            return True
        except DirectoryError as exc:
            if isinstance(exc.__cause__, (ldap_errors.LDAPConstraintViolationResult,
                                          ldap_errors.LDAPAttributeOrValueExistsResult)):
                return False
            raise

    def requests_with_status(self, status: str) -> list[Request]:
        entries = self._search(self.requests_dn,
                               f"(&(objectClass=portalRequest){_eq('portalRequestStatus', status)})",
                               REQUEST_ATTRS)
        return [_request(e) for e in entries]

    # -- mail outbox -------------------------------------------------------------

    def add_outbox_message(self, message: OutboxMessage) -> None:
        dn = f"portalOutboxId={_checked_identifier(message.id)},{self.outbox_dn}"
        attributes = {
            "objectClass": ["portalOutboxEntry"],
            "portalOutboxId": message.id,
            "portalOutboxMessage": message.message,
            "portalOutboxAttempts": str(message.attempts),
            "portalOutboxLastError": message.last_error[:1000] or "-",
            "portalSubmittedAt": ldap_time(message.queued_at or datetime.now(timezone.utc)),
        }
        if message.recipients:
            attributes["portalOutboxRecipient"] = list(message.recipients)
        self._call(lambda conn: conn.add(dn, attributes=attributes))

    def outbox_messages(self) -> list[OutboxMessage]:
        entries = self._search(self.outbox_dn, "(objectClass=portalOutboxEntry)", [
            "portalOutboxId", "portalOutboxMessage", "portalOutboxRecipient",
            "portalOutboxAttempts", "portalOutboxLastError", "portalSubmittedAt"])
        return sorted((_outbox(e) for e in entries), key=lambda m: (m.queued_at, m.id))

    def record_outbox_failure(self, message_id: str, attempts: int, error: str) -> None:
        dn = f"portalOutboxId={_checked_identifier(message_id)},{self.outbox_dn}"
        self._modify(dn, {"portalOutboxAttempts": [(MODIFY_REPLACE, [str(attempts)])],
                          "portalOutboxLastError": [(MODIFY_REPLACE, [error[:1000] or "-"])]})

    def remove_outbox_message(self, message_id: str) -> None:
        dn = f"portalOutboxId={_checked_identifier(message_id)},{self.outbox_dn}"
        self._call(lambda conn: conn.delete(dn))


def _policy_response(result: dict | None) -> ppolicy.PolicyResponse:
    control = ((result or {}).get("controls") or {}).get(ppolicy.OID) or {}
    return ppolicy.decode(control.get("value"))


def _raise_if_refused(result: dict) -> None:
    if result.get("result", 0) == 0:
        return
    policy = _policy_response(result)
    message = result.get("message") or result.get("description") or ""
    reason = policy.error
    if reason is None:
        # slapd answers some refusals without a policy error.
        lowered = message.lower()
        if "history" in lowered or "not being changed" in lowered:
            reason = "passwordInHistory"
        elif "quality" in lowered:
            reason = "insufficientPasswordQuality"
        else:
            reason = result.get("description") or "refused"
    raise PasswordRefused(reason, message)


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except ldap_errors.LDAPException as exc:
        log.debug("closing a member's connection: %s", exc)


def _checked_account_name(name: str) -> str:
    if not isinstance(name, str) or not ACCOUNT_NAME_RE.match(name):
        raise ValueError("not a valid account name")
    return name


def _checked_identifier(value: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER_RE.match(value):
        raise ValueError("not a valid identifier")
    return value


def _present(attributes: dict) -> dict:
    """An entry's attributes without the optional ones left empty."""
    return {name: value for name, value in attributes.items() if value not in ("", b"", None)}


def _replacements(changes: dict) -> dict:
    """MODIFY_REPLACE for each attribute; None or "" removes it."""
    def values(value) -> list:
        if value is None or value == "":
            return []
        return [ldap_time(value) if isinstance(value, datetime) else value]
    return {attr: [(MODIFY_REPLACE, values(value))] for attr, value in changes.items()}


def _institution(entry: dict) -> Institution:
    a = entry["attributes"]
    return Institution(
        id=_first(a, "portalInstitutionId"), name=_first(a, "o"), country=_first(a, "c"),
        representative_dns=_all(a, "portalRepresentative"),
    )


def _person(entry: dict) -> Person:
    a = entry["attributes"]
    uid_number = _first(a, "uidNumber")
    return Person(
        dn=entry["dn"], account_name=_first(a, "uid"), given_name=_first(a, "givenName"),
        middle_name=_first(a, "portalMiddleName"), family_name=_first(a, "sn"),
        display_name=_first(a, "cn"), mail=_first(a, "mail"),
        contact_mail=_first(a, "portalContactMail"),
        institution=_first(a, "portalHomeInstitution"), category=_first(a, "portalCategory"),
        status=_first(a, "portalStatus"),
        member_since=parse_ldap_time(_first(a, "portalMemberSince")),
        initial_password_deadline=parse_ldap_time(_first(a, "portalInitialPasswordDeadline")),
        uid_number=int(uid_number) if uid_number else None,
        groups=_all(a, "memberOf"),
        member_until=parse_ldap_time(_first(a, "portalMemberUntil")),
        audit=_all(a, "portalAuditEvent"),
        conditions_version=_first(a, "portalConditionsVersion"),
    )


def _request(entry: dict) -> Request:
    a = entry["attributes"]
    raw_hash = (entry.get("raw_attributes") or {}).get("portalPasswordHash") or [b""]
    return Request(
        dn=entry["dn"], account_name=_first(a, "uid"), status=_first(a, "portalRequestStatus"),
        given_name=_first(a, "givenName"), middle_name=_first(a, "portalMiddleName"),
        family_name=_first(a, "sn"), contact_mail=_first(a, "portalContactMail"),
        institution=_first(a, "portalHomeInstitution"), category=_first(a, "portalCategory"),
        collab_mail=_first(a, "portalCollabMail"),
        conditions_version=_first(a, "portalConditionsVersion"),
        submitted_at=parse_ldap_time(_first(a, "portalSubmittedAt")),
        submitted_from=_first(a, "portalSubmittedFrom"),
        email_verified_at=parse_ldap_time(_first(a, "portalEmailVerifiedAt")),
        decided_by=_first(a, "portalDecidedBy"),
        decided_at=parse_ldap_time(_first(a, "portalDecidedAt")),
        decided_from=_first(a, "portalDecidedFrom"),
        decision_reason=_first(a, "portalDecisionReason"),
        account_created_at=parse_ldap_time(_first(a, "portalAccountCreatedAt")),
        audit=_all(a, "portalAuditEvent"),
        password_hash=bytes(raw_hash[0]),
        previous_account=_first(a, "portalPreviousAccount"),
        id=_first(a, "portalRequestId") or _first(a, "uid"),
        kind=_first(a, "portalRequestType", "registration"),
        approval_chain=tuple(_first(a, "portalApprovalChain", "ir").split(",")),
        approval_stage=int(_first(a, "portalApprovalStage", "0") or 0),
        target_group=_first(a, "portalTargetGroup"),
        cert_subject=_first(a, "portalCertSubject"),
    )


def _outbox(entry: dict) -> OutboxMessage:
    a = entry["attributes"]
    raw = (entry.get("raw_attributes") or {}).get("portalOutboxMessage") or [b""]
    return OutboxMessage(
        id=_first(a, "portalOutboxId"), message=bytes(raw[0]),
        recipients=_all(a, "portalOutboxRecipient"),
        attempts=int(_first(a, "portalOutboxAttempts", "0")),
        last_error=_first(a, "portalOutboxLastError"),
        queued_at=parse_ldap_time(_first(a, "portalSubmittedAt")),
    )
