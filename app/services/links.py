"""Signed links in mail: one small class per purpose, one serializer per
purpose (itsdangerous, keys rotated through fallbacks), and URLs from the
web layer's map (app/web/urls.py): services never name an endpoint."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Callable, ClassVar, TypeVar

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import LinkExpired, LinkInvalid


class Page(StrEnum):
    """Pages that mails point to without a token."""
    PASSWORD_RESET = "password-reset"
    REACTIVATION = "reactivation"
    LOGIN = "login"  # a member logs in (and is led to the initial password's change)
    PASSWORD_CHANGE = "password-change"
    REGISTRATION = "registration"
    HELPDESK_REQUEST = "helpdesk-request"  # a request's page in the helpdesk console (request_id)


@dataclass(frozen=True)
class Link:
    """A link's payload. ``keys`` are the short names in the signed token
    (kept stable: links already mailed must keep working)."""
    purpose: ClassVar[str]
    keys: ClassVar[dict[str, str]]

    def payload(self) -> dict:
        return {self.keys[name]: value for name, value in asdict(self).items()
                if value is not None and value is not False}

    @classmethod
    def from_payload(cls, payload: dict):
        values = {}
        for name, key in cls.keys.items():
            kind = cls.__dataclass_fields__[name].type
            value = payload.get(key, cls.__dataclass_fields__[name].default)
            if kind in ("int", int) and (not isinstance(value, int) or isinstance(value, bool)):
                raise LinkInvalid("link invalid")
            if kind in ("bool", bool):
                value = bool(value)
            elif kind in ("str", str):
                value = str(value)
            values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class VerifyLink(Link):
    """The applicant confirms the address of a request."""
    purpose: ClassVar[str] = "verify-email"
    keys: ClassVar[dict[str, str]] = {"request_id": "r", "submitted_at": "t"}
    request_id: str = ""
    submitted_at: str = ""  # ISO time: a new request of the same id gets new links


@dataclass(frozen=True)
class ReviewLink(Link):
    """An approver decides one stage of a request (or, for a move, the
    representative of the current institution may object)."""
    purpose: ClassVar[str] = "review-request"
    keys: ClassVar[dict[str, str]] = {"request_id": "r", "approver": "ir", "stage": "st",
                                      "objection": "obj"}
    request_id: str = ""
    approver: str = ""
    stage: int = 0
    objection: bool = False


@dataclass(frozen=True)
class ResetLink(Link):
    """A member sets a new password; bound to the password's last change and
    to a nonce stored (hashed) with the member. ``lasting``: valid as long as
    other mailed links (a reactivated member's first password), not minutes."""
    purpose: ClassVar[str] = "reset-password"
    keys: ClassVar[dict[str, str]] = {"account_name": "a", "nonce": "n", "password_changed": "c",
                                      "lasting": "l"}
    account_name: str = ""
    nonce: str = ""
    password_changed: str = ""
    lasting: bool = False


@dataclass(frozen=True)
class ReactivationLink(Link):
    """A former member (or host-lab account holder) files a reactivation."""
    purpose: ClassVar[str] = "reactivate"
    keys: ClassVar[dict[str, str]] = {"account_name": "a", "institution": "i", "status": "s"}
    account_name: str = ""
    institution: str = ""
    status: str = ""


@dataclass(frozen=True)
class AddressLink(Link):
    """A member confirms a new institutional address; bound to the one it replaces."""
    purpose: ClassVar[str] = "confirm-address"
    keys: ClassVar[dict[str, str]] = {"account_name": "a", "address": "m", "current": "c"}
    account_name: str = ""
    address: str = ""
    current: str = ""


@dataclass(frozen=True)
class StatusLink(Link):
    """The applicant's status page of one request; bound to the request's
    submission, so it ends with the request (gone, or replaced by a newer
    one under the same id)."""
    purpose: ClassVar[str] = "request-status"
    keys: ClassVar[dict[str, str]] = {"request_id": "r", "submitted_at": "t"}
    request_id: str = ""
    submitted_at: str = ""


@dataclass(frozen=True)
class PlaceholderStatusLink(StatusLink):
    """The status link of a registration that made no request (the applicant
    matched an earlier record): the same payload as a StatusLink, signed
    under its own purpose, so only the portal can tell the two apart; it
    shows the page of an unconfirmed request."""
    purpose: ClassVar[str] = "request-status-placeholder"


@dataclass(frozen=True)
class InitialPasswordLink(Link):
    """A member registered on paper (no password given) sets the first
    password: valid INITIAL_PASSWORD_LINK_DAYS, once (a nonce stored hashed
    with the member, consumed by the POST; dead once a password is set)."""
    purpose: ClassVar[str] = "initial-password"
    keys: ClassVar[dict[str, str]] = {"account_name": "a", "nonce": "n"}
    account_name: str = ""
    nonce: str = ""


INITIAL_PASSWORD_LINK_DAYS = 5


@dataclass(frozen=True)
class InvitationLink(Link):
    """An invited person registers (and does nothing else); bound to the
    invitation's current nonce (a resend makes a new one) and to its state
    (it works until the registration is submitted)."""
    purpose: ClassVar[str] = "invitation"
    keys: ClassVar[dict[str, str]] = {"invitation_id": "i", "nonce": "n"}
    invitation_id: str = ""
    nonce: str = ""


@dataclass(frozen=True)
class RestartLink(Link):
    """Whoever reads the address of an unconfirmed registration withdraws
    it to register anew (mailed when someone registers again with it)."""
    purpose: ClassVar[str] = "restart-registration"
    keys: ClassVar[dict[str, str]] = {"request_id": "r", "submitted_at": "t"}
    request_id: str = ""
    submitted_at: str = ""  # ISO time: bound to that one request


LINK_TYPES = (VerifyLink, ReviewLink, ResetLink, ReactivationLink, AddressLink, StatusLink,
              PlaceholderStatusLink, InitialPasswordLink, InvitationLink, RestartLink)

L = TypeVar("L", bound=Link)
# (link type or page, token or None) -> absolute URL
UrlBuilder = Callable[[Any, "str | None"], str]


class Links:
    def __init__(self, secret_key: str, fallback_keys: tuple[str, ...], max_age_days: int,
                 build_url: UrlBuilder):
        # itsdangerous signs with the last key and accepts every key.
        keys = [*fallback_keys, secret_key]
        self.max_age_days = max_age_days
        self._build_url = build_url
        self._serializers = {kind: URLSafeTimedSerializer(keys, salt=f"portal.link.{kind.purpose}")
                             for kind in LINK_TYPES}

    def token(self, link: Link) -> str:
        return self._serializers[type(link)].dumps(link.payload())

    def url(self, link: Link) -> str:
        """A signed link's absolute URL (from the configured base URL)."""
        return self._build_url(type(link), self.token(link))

    def page(self, page: Page, **values: str) -> str:
        return self._build_url(page, None, **values)

    def load(self, kind: type[L], token: str, max_age_seconds: int | None = None) -> L:
        """The payload of a genuine, unexpired link of ``kind``; raises
        LinkInvalid or LinkExpired."""
        max_age = max_age_seconds if max_age_seconds is not None else self.max_age_days * 86400
        try:
            payload = self._serializers[kind].loads(token, max_age=max_age)
        except SignatureExpired as exc:
            raise LinkExpired("link expired") from exc
        except BadSignature as exc:
            raise LinkInvalid("link invalid") from exc
        if not isinstance(payload, dict):
            raise LinkInvalid("link invalid")
        return kind.from_payload(payload)
