"""Members' passwords and what the directory's password policy (ppolicy)
knows about them: binds as the member, changes, resets, locks, expiry."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator, Sequence

from ldap3 import Connection
from ldap3.core import exceptions as ldap_errors

from ..vocabulary import ACCOUNT_NAME_RE, MemberStatus
from . import ppolicy
from .connection import DirectoryConnection
from .errors import PasswordRefused, SchemaOutdated, StateConflict, ValueExists
from .mapping import Attr, AttributeMap, int_attr, time_attr
from .people import PERSON, PERSON_ATTRS, person_record
from .records import Account, PasswordState, Person
from .values import eq, ldap_time

# ppolicy: this pwdAccountLockedTime means "locked until an administrator unlocks".
PERMANENT_LOCK = "000001010000Z"
# Expired members are under the policy cn=expired (pwdMaxAge 1 s, no grace
# logins, bootstrap.ldif): every bind fails (invalidCredentials) for every
# service, but only for the right password does slapd add passwordExpired,
# so the portal alone can let the member see the status. Measured on
# slapd 2.5.13: a password counts as expired once it is more than pwdMaxAge
# whole seconds old (2 s), and an entry without pwdChangedTime (slapadded,
# e.g. host-lab accounts) never expires. Until the password is that old,
# and for good without pwdChangedTime, the administrative lock stays too
# (it hides the control: right and wrong passwords answered alike). The
# margin also covers clocks of slapd's and the portal's hosts a few
# seconds apart; it is compared with the wall clock because ppolicy is.
EXPIRED_POLICY_MARGIN = timedelta(seconds=5)
PASSWORD = AttributeMap(
    changed_at=time_attr("pwdChangedTime"),
    policy="pwdPolicySubentry",
    locked_at=time_attr("pwdAccountLockedTime"),
    lock="pwdAccountLockedTime",
    # POSIX clients' account check (SSSD, ssh keys): 1 = expired long ago.
    shadow_expire=int_attr("shadowExpire"),
    expiry_notices=Attr("portalExpiryNotice", multi=True),
    reset_nonce_hash="portalResetNonce",
)
POLICY = AttributeMap(max_age=Attr("pwdMaxAge", load=int, default=0))
_STATE_FIELDS = ("changed_at", "policy", "locked_at", "expiry_notices", "reset_nonce_hash")
PASSWORD_STATE_ATTRS = PASSWORD.names(*_STATE_FIELDS)
_ACCOUNT_ATTRS = PERSON_ATTRS + PASSWORD_STATE_ATTRS + PERSON.names("session_epoch")


def expiry_notice(changed_at: datetime, days: int) -> str:
    """The record of an expiry warning: the password it was for (its
    pwdChangedTime) and the threshold in days."""
    return f"{ldap_time(changed_at)}/{days}"


def _days_from(first: datetime, last: datetime) -> Iterator[str]:
    """The UTC days from first to last, as the leading YYYYMMDD of a
    GeneralizedTime (what an expiry notice starts with)."""
    day, end = first.astimezone(timezone.utc).date(), last.astimezone(timezone.utc).date()
    while day <= end:
        yield day.strftime("%Y%m%d")
        day += timedelta(days=1)


@dataclass(frozen=True)
class BindResult:
    """A member's simple bind: did it succeed, and what the policy said."""
    ok: bool
    policy: ppolicy.PolicyResponse


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


class Passwords(DirectoryConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._policy_max_age: dict[str, int] = {}

    def authenticate(self, account_name: str, password: str) -> BindResult:
        """A simple bind as the member, as any collaborative service does it:
        the password goes as its UTF-8 bytes (ldap3 would SASLprep a str, and
        refuse one with a control character), as registration hashed them."""
        if not ACCOUNT_NAME_RE.match(account_name or "") or not password:
            return BindResult(False, ppolicy.PolicyResponse())
        ok, result = self._bind_as(self.person_dn(account_name), password.encode("utf-8"),
                                   [ppolicy.REQUEST_CONTROL])
        return BindResult(ok, _policy_response(result))

    def change_own_password(self, account_name: str, current: str, new: str) -> None:
        """Check ``current`` with a bind as the member, then set ``new`` with
        Password Modify as the portal: members cannot write userPassword
        themselves (acl.conf), so every change passes the portal's rules;
        slapd hashes the cleartext and applies the policy (length, history).
        Raises PasswordRefused."""
        ok, result = self._bind_as(self.person_dn(account_name), current.encode("utf-8"),
                                   [ppolicy.REQUEST_CONTROL])
        if not ok:
            raise PasswordRefused(_policy_response(result).error or "invalidCredentials")
        self.set_password(account_name, new)

    def set_password(self, account_name: str, new: str) -> None:
        """Password Modify by the portal (reset, change): the UTF-8 bytes in
        clear, slapd hashes them; policy and history apply. Raises
        PasswordRefused."""
        dn = self.person_dn(account_name)

        def run(conn: Connection) -> None:
            try:
                conn.extend.standard.modify_password(dn, None, new.encode("utf-8"),
                                                     controls=[ppolicy.REQUEST_CONTROL])
            except ldap_errors.LDAPOperationResult:
                pass  # the result (and its policy control) is read below
            _raise_if_refused(conn.result)
        self._call(run)

    def lock_account(self, account_name: str) -> None:
        """Withdraw the account from every service: ppolicy's administrative
        lock (every bind fails) and shadowExpire in the past (SSSD's and
        other POSIX clients' account check, ssh keys included)."""
        self._modify(self.person_dn(account_name),
                     PASSWORD.replace(lock=PERMANENT_LOCK, shadow_expire=1))

    def unlock_account(self, account_name: str) -> None:
        self._modify(self.person_dn(account_name),
                     PASSWORD.replace(lock=None, shadow_expire=None))

    def expire_account(self, account_name: str) -> None:
        """An expired membership: the expired policy (every password past its
        age), and until release_expired_locks the administrative lock, and
        shadowExpire in the past. Repeatable."""
        self._modify(self.person_dn(account_name), PASSWORD.replace(
            policy=self.expired_policy_dn, lock=PERMANENT_LOCK, shadow_expire=1))

    def release_expired_locks(self) -> int:
        """Expired members still behind the administrative lock (just
        expired, or expired before the expired policy existed) whose
        password is old enough to be refused by the expired policy alone:
        the lock goes, the policy is set, in one modify that holds only
        while the member is still expired and locked. Members without
        pwdChangedTime stay locked. Returns how many were released."""
        if not self.expired_policy_present():
            return 0  # a directory without it (README): the lock alone stays
        oldest = datetime.now(timezone.utc) - EXPIRED_POLICY_MARGIN
        query = (f"(&(objectClass=portalMember){eq(PERSON['status'], MemberStatus.EXPIRED)}"
                 f"{eq(PASSWORD['lock'], PERMANENT_LOCK)}"
                 f"({PASSWORD['changed_at']}<={PASSWORD.fields['changed_at'].dump(oldest)}))")
        released = 0
        for entry in list(self._paged_entries(self.people_dn, query, PERSON.names("account_name"))):
            account_name = PERSON.read(entry, "account_name")["account_name"]
            try:
                self._modify(self.person_dn(account_name), {
                    **PERSON.swap("status", MemberStatus.EXPIRED, MemberStatus.EXPIRED),
                    **PASSWORD.delete(lock=PERMANENT_LOCK),
                    **PASSWORD.replace(policy=self.expired_policy_dn)})
            except StateConflict:
                continue  # reactivated or released meanwhile
            released += 1
        return released

    def expired_policy_present(self) -> bool:
        """cn=expired exists and expires passwords (bootstrap.ldif)."""
        self._policy_max_age.pop(self.expired_policy_dn.lower(), None)
        return self.policy_max_age(self.expired_policy_dn) > 0

    def leave_expired_policy(self, account_name: str) -> None:
        """Back to the default policy from the expired one (reactivation;
        repeatable); any other policy assignment stays as it is."""
        try:
            self._modify(self.person_dn(account_name),
                         PASSWORD.delete(policy=self.expired_policy_dn))
        except StateConflict:
            pass  # not (or no longer) under the expired policy

    # -- the policy's state ----------------------------------------------------------------

    def account(self, account_name: str) -> Account | None:
        """The person, the password's state and the session epoch in one read."""
        if not ACCOUNT_NAME_RE.match(account_name or ""):
            return None
        entry = self._read(self.person_dn(account_name), _ACCOUNT_ATTRS)
        if entry is None:
            return None
        return Account(person_record(entry), self._password_state(entry),
                       PERSON.read(entry, "session_epoch")["session_epoch"])

    def password_state(self, account_name: str) -> PasswordState | None:
        entry = self._read(self.person_dn(account_name), PASSWORD_STATE_ATTRS)
        return self._password_state(entry) if entry else None

    def _password_state(self, entry: dict) -> PasswordState:
        values = PASSWORD.read(entry, *_STATE_FIELDS)
        policy = values.pop("policy") or self.default_policy_dn
        return PasswordState(max_age_seconds=self.policy_max_age(policy),
                             initial=policy.lower() == self.initial_policy_dn.lower(),
                             **values)

    def policy_max_age(self, policy_dn: str) -> int:
        """pwdMaxAge of a policy entry in seconds (read once per process)."""
        key = policy_dn.lower()
        if key not in self._policy_max_age:
            entry = self._read(policy_dn, POLICY.names())
            self._policy_max_age[key] = POLICY.read(entry)["max_age"] if entry else 0
        return self._policy_max_age[key]

    def initial_password_period(self) -> timedelta:
        """How long an initial password works: pwdMaxAge of the initial policy."""
        return timedelta(seconds=self.policy_max_age(self.initial_policy_dn))

    def expiry_notices_searchable(self) -> bool:
        """slapd can test expiry notices by substring (portalExpiryNotice
        has its SUBSTR rule, portal.schema of 2026-12). Without it a
        substring filter is undefined and would hide every member due."""
        entry = self._read("cn=Subschema", ["attributeTypes"]) or {}
        definitions = (entry.get("attributes") or {}).get("attributeTypes") or ()
        if not definitions:
            raise SchemaOutdated("the portal cannot read the schema (attributeTypes of "
                                 "cn=Subschema): let it read cn=Subschema")
        name = PASSWORD["expiry_notices"].lower()
        for definition in definitions:
            text = definition.lower()
            if f"name '{name}'" in text:
                return " substr " in text
        return False

    def members_with_password_expiring(self, now: datetime, warning_days: Sequence[int]
                                       ) -> Iterator[tuple[Person, PasswordState]]:
        """Active members due for an expiry warning they were not sent yet
        (for the scheduled warnings), streamed page by page.

        A password expiring in d days or less, but in more than the next
        smaller threshold, is due for the warning of d days. slapd selects,
        in one search: under the default policy, pwdChangedTime in each
        threshold's range [now - pwdMaxAge + nearer, now - pwdMaxAge + d]
        (edges in both neighbours), without a notice for d on a password
        changed on one of that range's days (notices are replaced whenever
        a member sets a password, see start_password_cycle; a notice left
        from an earlier password hides a member only if that password was
        set on one of the same days); and every member under
        another policy but the initial one (none today) for the caller to
        judge. Members on an initial password are left out. A run with
        nothing due gets no entry back: pwdChangedTime has no index (a
        range, see README "Sizing"), portalStatus's eq index gives the
        candidates and slapd tests each of them once."""
        active = f"(objectClass=portalMember){eq(PERSON['status'], MemberStatus.ACTIVE)}"
        policy, changed = PASSWORD["policy"], PASSWORD["changed_at"]
        default, initial = self.default_policy_dn, self.initial_policy_dn
        stamp = PASSWORD.fields["changed_at"].dump
        branches = []
        max_age = self.policy_max_age(default)
        thresholds = sorted(set(warning_days), reverse=True)
        if max_age and thresholds:
            oldest = now - timedelta(seconds=max_age)
            bands = []
            for days, nearer in zip(thresholds, thresholds[1:] + [0], strict=True):
                low, high = oldest + timedelta(days=nearer), oldest + timedelta(days=days)
                sent = "".join(f"({PASSWORD['expiry_notices']}={day}*/{days})"
                               for day in _days_from(low, high))
                bands.append(f"(&({changed}>={stamp(low)})({changed}<={stamp(high)})"
                             f"(!(|{sent})))")
            branches.append(f"(&(|(!({policy}=*)){eq(policy, default)})(|{''.join(bands)}))")
        branches.append(f"(&({policy}=*)(!{eq(policy, default)})(!{eq(policy, initial)}))")
        query = f"(&{active}(|{''.join(branches)}))"
        for entry in self._paged_entries(self.people_dn, query,
                                         PERSON_ATTRS + PASSWORD_STATE_ATTRS):
            yield person_record(entry), self._password_state(entry)

    def start_password_cycle(self, account_name: str, audit_event: str,
                             session_epoch: str | None = None) -> None:
        """A password was chosen: the default policy applies from now on, the
        expiry warnings of the previous password are forgotten, the audit
        record is added and (``session_epoch``) every session ends: one
        modify, one durable write."""
        changes = {**PASSWORD.replace(policy=None, expiry_notices=()),
                   **PERSON.add(audit=[audit_event])}
        if session_epoch is not None:
            changes.update(PERSON.replace(session_epoch=session_epoch))
        self._modify(self.person_dn(account_name), changes)

    def set_reset_nonce(self, account_name: str, nonce_hash: str) -> None:
        self._modify(self.person_dn(account_name), PASSWORD.replace(reset_nonce_hash=nonce_hash))

    def consume_reset_nonce(self, account_name: str, nonce_hash: str) -> bool:
        """Delete exactly this nonce: True for the one caller that did."""
        try:
            self._modify(self.person_dn(account_name),
                         PASSWORD.delete(reset_nonce_hash=nonce_hash))
            return True
        except StateConflict:
            return False

    def add_expiry_notice(self, account_name: str, notice: str,
                          audit_event: str | None = None) -> bool:
        """Record a sent warning (and its audit record, in the same modify:
        one durable write per warning, not two); False when it was recorded
        already (then nothing is written)."""
        changes = PASSWORD.add(expiry_notices=[notice])
        if audit_event is not None:
            changes = {**changes, **PERSON.add(audit=[audit_event])}
        try:
            self._modify(self.person_dn(account_name), changes)
            return True
        except ValueExists:
            return False
