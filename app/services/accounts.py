"""Members' accounts: login, password change, lost-password reset and
expiry warnings. The directory's password policy is the authority; this
service explains its answers and adds the portal's own rules."""
from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from ..clock import Clock, utcnow
from ..directory import (
    Account,
    Directory,
    PasswordRefused,
    PasswordState,
    Person,
    expiry_notice,
    ldap_time,
)
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import MemberStatus
from .audit import SYSTEM, Actor, audit_event
from .errors import LinkExpired, LinkInvalid, LinkUsed, SchemaOutdated
from .history import HistoryEntry, describe
from .links import Links, Page, ResetLink
from .passwords import password_problems

log = logging.getLogger(__name__)

# A bind for an unknown account costs slapd no hash check; the portal spends
# the same work itself so both answers take about as long.
_DUMMY_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_DUMMY_HASH = _DUMMY_HASHER.hash(secrets.token_urlsafe(16))


def _spend_a_hash_check(password: str) -> None:
    try:
        _DUMMY_HASHER.verify(_DUMMY_HASH, password or "-")
    except VerifyMismatchError:
        pass  # expected: this only spends the time a real check takes


class LoginOutcome(Enum):
    OK = "ok"
    MUST_CHANGE = "must-change"        # initial password: change it first
    FAILED = "failed"                  # wrong name or password (or locked): one message
    EXPIRED = "expired"                # right password, expired: use the reset
    INITIAL_EXPIRED = "initial-expired"
    NOT_ACTIVE = "not-active"          # right password, membership not active
    # Right password (slapd says so under the expired policy), membership
    # expired: a session that sees the status and asks for reactivation only.
    MEMBERSHIP_EXPIRED = "membership-expired"


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    account_name: str = ""
    # A newer version of the conditions of use waits for acceptance.
    must_accept_conditions: bool = False
    session_epoch: str | None = None  # read with the login: the new session's


@dataclass(frozen=True)
class CheckedResetLink:
    """A reset link checked in this request: for whom, and the nonce that
    consuming it removes (nothing else may hand the nonce in)."""
    person: Person
    nonce: str = field(repr=False)


@dataclass(frozen=True)
class AccountOverview:
    person: Person
    password: PasswordState
    now: datetime

    @property
    def days_left(self) -> int | None:
        expires = self.password.expires_at
        if expires is None:
            return None
        return max(0, math.ceil((expires - self.now).total_seconds() / 86400))


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class AccountService:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links, settings: Settings,
                 clock: Clock = utcnow):
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._clock = clock

    # -- login --------------------------------------------------------------------------

    def login(self, account_name: str, password: str) -> LoginResult:
        account_name = (account_name or "").strip().lower()
        # One read before the bind: the bind changes none of what is used.
        account = self._directory.account(account_name)
        if account is None:
            _spend_a_hash_check(password)
            return LoginResult(LoginOutcome.FAILED)
        person, state = account.person, account.password
        bind = self._directory.authenticate(account_name, password)
        error = bind.policy.error
        if not bind.ok:
            # slapd reports passwordExpired only when the password was right.
            if error == "passwordExpired" and person.status == MemberStatus.EXPIRED:
                return LoginResult(LoginOutcome.MEMBERSHIP_EXPIRED, account_name,
                                   session_epoch=account.session_epoch)
            if error == "passwordExpired":
                outcome = LoginOutcome.INITIAL_EXPIRED if state.initial \
                    else LoginOutcome.EXPIRED
                return LoginResult(outcome, account_name)
            if person.status != MemberStatus.ACTIVE:
                if state.locked_at:
                    # slapd answers a locked account without checking the
                    # password: the same work here, so that a suspended (or
                    # still locked) account takes as long as any other.
                    _spend_a_hash_check(password)
            return LoginResult(LoginOutcome.FAILED)
        if person.status != MemberStatus.ACTIVE:
            return LoginResult(LoginOutcome.NOT_ACTIVE, account_name)
        must_accept = person.conditions_version != self._settings.conditions.version
        outcome = LoginOutcome.MUST_CHANGE if state.initial or error == "changeAfterReset" \
            else LoginOutcome.OK
        return LoginResult(outcome, account_name, must_accept, account.session_epoch)

    def set_language(self, account_name: str, language: str, actor: Actor) -> None:
        """The member's language (preferredLanguage): pages and mails."""
        self._directory.set_preferred_language(account_name, language, audit_event(
            "member.language-changed", actor, self._clock(), language=language))

    def accept_conditions(self, account_name: str, actor: Actor) -> None:
        version = self._settings.conditions.version
        self._directory.record_conditions_accepted(
            account_name, version,
            audit_event("account.conditions-accepted", actor, self._clock(), version=version))

    # -- sessions ---------------------------------------------------------------------------
    # The portal's sessions are signed cookies; the member's session epoch in
    # the directory lets every app host end them: a session is valid only
    # while it carries the current epoch.

    def session_epoch(self, account_name: str) -> str:
        return self._directory.session_epoch(account_name)

    def account(self, account_name: str) -> Account | None:
        """Who is logged in, read once per request: person, password, epoch."""
        return self._directory.account(account_name)

    def end_sessions(self, account_name: str) -> str:
        """End every session of the member (logout; a password set ends them in
        its own write, _after_password_set); the new epoch."""
        epoch = _new_session_epoch()
        self._directory.new_session_epoch(account_name, epoch)
        return epoch

    def overview(self, account: Account) -> AccountOverview:
        return AccountOverview(account.person, account.password, self._clock())

    def history(self, person: Person) -> list[HistoryEntry]:
        """The member's history in words, people by name."""
        names: dict[str, str] = {}

        def name_of(account_name: str) -> str:
            if account_name not in names:
                other = self._directory.person(account_name)
                full = " ".join(n for n in (other.given_name, other.middle_name,
                                            other.family_name) if n) if other else ""
                names[account_name] = full or account_name
            return names[account_name]

        return describe(person.audit, person.account_name, name_of)

    # -- password change --------------------------------------------------------------------

    def strength_problems(self, person: Person, password: str) -> list:
        return password_problems(
            password, self._settings.password_min_length, account_name=person.account_name,
            name_parts=(person.given_name, person.middle_name, person.family_name),
            other_inputs=(person.contact_mail.split("@")[0], person.mail.split("@")[0]))

    def change_password(self, person: Person, current: str, new: str, actor: Actor) -> str:
        """``person``: the member's entry as read for this request. Other
        sessions end; returns the new session epoch, for the session that
        made the change. Raises PasswordRefused (reason invalidCredentials,
        passwordInHistory, ...)."""
        self._directory.change_own_password(person.account_name, current, new)
        return self._after_password_set(person, "account.password-changed", actor,
                                        "password_changed")

    def _after_password_set(self, person: Person, action: str, actor: Actor,
                            template: str) -> str:
        # The default policy from now on, a new cycle of expiry warnings, the
        # audit record and the end of every session (whoever knew the old
        # password is out): one write. Returns the new session epoch.
        now, epoch = self._clock(), _new_session_epoch()
        self._directory.start_password_cycle(person.account_name, audit_event(action, actor, now),
                                             session_epoch=epoch)
        log.info("password set", extra={"event": action, "account": person.account_name})
        self._mailer.send(template, [person.contact_mail], person.language, person=person,
                          when=now, reset_link=self._links.page(Page.PASSWORD_RESET))
        return epoch

    # -- lost password ----------------------------------------------------------------------

    def reset_target(self, login: str) -> Person | None:
        person = self._directory.person_by_login(login)
        if person is None or person.status != MemberStatus.ACTIVE:
            return None
        return person

    def send_reset_link(self, person: Person) -> None:
        """A new link (older ones stop working), bound to the password's last change."""
        self._mailer.send("password_reset_link", [person.contact_mail], person.language,
                          person=person,
                          link=self.new_reset_url(person),
                          minutes=self._settings.reset_link_max_age_minutes)

    def new_reset_url(self, person: Person, lasting: bool = False) -> str:
        """A reset link's URL (older ones stop working); ``lasting``: valid
        PORTAL_LINK_MAX_AGE_DAYS instead of minutes."""
        nonce = secrets.token_urlsafe(16)
        self._directory.set_reset_nonce(person.account_name, _nonce_hash(nonce))
        state = self._directory.password_state(person.account_name)
        return self._links.url(ResetLink(
            person.account_name, nonce,
            ldap_time(state.changed_at) if state and state.changed_at else "", lasting))

    def _load_reset_link(self, token: str) -> ResetLink:
        try:
            return self._links.load(
                ResetLink, token, max_age_seconds=self._settings.reset_link_max_age_minutes * 60)
        except LinkExpired:
            link = self._links.load(ResetLink, token)  # the days of every other link
            if not link.lasting:
                raise
            return link

    def check_reset_link(self, token: str) -> CheckedResetLink:
        """Check a reset link (GET: nothing changes). Raises LinkInvalid/LinkExpired."""
        link = self._load_reset_link(token)
        account = self._directory.account(link.account_name)
        if account is None or account.person.status != MemberStatus.ACTIVE:
            raise LinkInvalid("unknown account")
        person, state = account.person, account.password
        changed = ldap_time(state.changed_at) if state.changed_at else ""
        if changed != link.password_changed or not state.reset_nonce_hash or \
                not hmac.compare_digest(state.reset_nonce_hash, _nonce_hash(link.nonce)):
            raise LinkUsed("link used or replaced")
        return CheckedResetLink(person, link.nonce)

    def reset_password(self, link: CheckedResetLink, new: str, actor: Actor) -> None:
        """Set the new password once per link (``link`` from check_reset_link
        in this request); raises LinkUsed, PasswordRefused."""
        person, nonce_hash = link.person, _nonce_hash(link.nonce)
        if not self._directory.consume_reset_nonce(person.account_name, nonce_hash):
            raise LinkUsed("link used")
        try:
            self._directory.set_password(person.account_name, new)
        except PasswordRefused:
            # The link stays usable for a better password.
            self._directory.set_reset_nonce(person.account_name, nonce_hash)
            raise
        self._after_password_set(person, "account.password-reset",
                                 Actor(person.account_name, actor.address), "password_was_reset")

    # -- scheduled expiry warnings ------------------------------------------------------------

    def expiry_notices_searchable(self) -> bool:
        """The directory's schema lets slapd skip warnings already sent
        (`flask portal check`; notify_expiring refuses to run without)."""
        return self._directory.expiry_notices_searchable()

    def notify_expiring(self, now: datetime | None = None) -> dict[int, int]:
        """Mail members whose password expires within a warning threshold,
        once per threshold and password; returns mails sent per threshold."""
        now = now or self._clock()
        thresholds = self._settings.expiry_warning_days
        sent = {days: 0 for days in thresholds}
        if thresholds and not self._directory.expiry_notices_searchable():
            raise SchemaOutdated(
                "portalExpiryNotice has no SUBSTR rule in the directory's schema: load "
                "ldap_schema/portal.schema (portal.ldif for cn=config) first")
        for person, state in self._directory.members_with_password_expiring(now, thresholds):
            expires = state.expires_at
            if expires is None or state.initial or expires <= now:
                continue
            left = expires - now
            due = [d for d in thresholds if left <= timedelta(days=d)]
            if not due:
                continue
            days = min(due)  # the most urgent threshold reached
            notice = expiry_notice(state.changed_at, days)
            if notice in state.expiry_notices:
                continue
            if not self._directory.add_expiry_notice(
                    person.account_name, notice,
                    audit_event("account.expiry-warning", SYSTEM, now, days=str(days))):
                continue  # another run recorded it first
            self._mailer.send("password_expiring", [person.contact_mail], person.language,
                              person=person,
                              expires=expires,
                              # Counted up: 'in 1 day' for the last hours, never 'in 0 days'.
                              days_left=max(1, math.ceil(left / timedelta(days=1))),
                              reset_link=self._links.page(Page.PASSWORD_RESET),
                              change_link=self._links.page(Page.PASSWORD_CHANGE))
            sent[days] += 1
        return sent

    # -- for the pages ----------------------------------------------------------------------

    def person(self, account_name: str) -> Person | None:
        return self._directory.person(account_name)


def _new_session_epoch() -> str:
    """A new session epoch: every session signed with another one ends."""
    return secrets.token_urlsafe(12)
