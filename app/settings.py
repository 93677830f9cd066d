"""The portal's settings: ``PORTAL_*`` environment variables plus the
collaboration file, validated in one place with every problem listed at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Mapping

from .collaboration import Category, Conditions, ExtraGroup, load_collaboration_file
from .settings_checks import (
    check_languages,
    convert,
    loopback,
    trusted_proxies,
    valid_rate_limit,
)
from .vocabulary import IR_STAGE

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_COLLABORATION_FILE = ROOT / "config" / "collaboration.toml"
ENVIRONMENTS = ("production", "dev", "test")
MIN_SECRET_KEY_LENGTH = 32

# Well-known weak keys copied from tutorials and examples.
WEAK_SECRET_KEYS = {"changeme", "secret", "dev", "development", "you-will-never-guess"}


class SettingsError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid portal configuration:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Settings:
    env: str
    secret_key: str
    secret_key_fallbacks: tuple[str, ...]
    base_url: str
    ldap_urls: tuple[str, ...]
    ldap_base_dn: str
    ldap_bind_dn: str
    ldap_bind_password: str
    ldap_connect_timeout: float
    ldap_receive_timeout: float
    ldap_ca_file: str
    ldap_start_tls: bool
    ldap_allow_plain: bool
    smtp_host: str
    smtp_port: int
    smtp_use_tls: bool
    smtp_use_ssl: bool
    smtp_username: str
    smtp_password: str
    smtp_timeout: float
    mail_from: str
    collaboration_name: str
    mail_domain: str
    main_group: str
    helpdesk_email: str
    helpdesk_group: str
    password_min_length: int
    link_max_age_days: int
    trusted_proxies: int
    expiry_warning_days: tuple[int, ...]
    reset_link_max_age_minutes: int
    session_idle_minutes: int
    session_max_hours: int
    ratelimit_storage_uri: str
    ratelimit_key_prefix: str
    rate_limit_login_account: str
    rate_limit_login_address: str
    rate_limit_reset: str
    rate_limit_register: str
    rate_limit_hints: str
    dev_mail_dir: str
    collaboration_file: str
    mail_delivery: str
    languages: tuple[str, ...] = ("en",)  # the first is the default
    categories: tuple[Category, ...] = ()
    conditions: Conditions = Conditions("", "", "")
    webmail_domains: tuple[str, ...] = ()
    reserved_account_names: frozenset[str] = field(default_factory=frozenset)
    unconfirmed_request_days: int = 7  # an unconfirmed registration is withdrawn after
    stage_labels: dict = field(default_factory=dict)  # group cn -> label
    extra_groups: tuple[ExtraGroup, ...] = ()
    # Reminders and escalation (flask requests remind) and the status page.
    reminder_days: int = 3  # approvers are reminded after this many days, then every as many
    escalation_days: int = 10  # then deputies and the helpdesk are asked too
    typical_approval_days: int = 5  # what the applicant is told to expect
    resend_interval_minutes: int = 10  # between two confirmation mails asked for again
    # The IR console: days an ended membership keeps access; roster confirmation period.
    membership_grace_days: int = 30
    roster_confirmation_days: int = 365
    # The TLS terminators' addresses (PORTAL_TRUSTED_PROXIES): only from them
    # are X-Forwarded-* and the client-certificate headers believed.
    trusted_proxy_networks: tuple = ()
    # The paper route: the helpdesk may approve a paper request itself.
    helpdesk_may_approve_paper: bool = False
    invitation_days: int = 14  # an invitation link works this long
    open_registration: bool = True  # anyone may register at /register

    def extra_group(self, cn: str) -> ExtraGroup | None:
        return next((g for g in self.extra_groups if g.cn == cn), None)

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def category_label(self, key: str) -> str:
        return next((c.label for c in self.categories if c.key == key), key)

    def approval_chain(self, key: str) -> tuple[str, ...]:
        return next((c.approval for c in self.categories if c.key == key), (IR_STAGE,))

    def invitation_approves(self, key: str) -> bool:
        return next((c.invitation_approves for c in self.categories if c.key == key), False)

    def formal_application(self, key: str) -> str:
        return next((c.formal_application for c in self.categories if c.key == key), "")

    def membership_days(self, key: str) -> int | None:
        return next((c.membership_days for c in self.categories if c.key == key), None)

    def membership_end(self, key: str, start: datetime) -> datetime | None:
        """When a membership of category ``key`` starting at ``start`` ends (None: open)."""
        days = self.membership_days(key)
        return start + timedelta(days=days) if days else None


# Environment variable -> (field, type, default). ``None`` default: required.
_ENV = {
    "PORTAL_ENV": ("env", str, "production"),
    "PORTAL_SECRET_KEY": ("secret_key", str, None),
    "PORTAL_SECRET_KEY_FALLBACKS": ("secret_key_fallbacks", tuple, ""),
    "PORTAL_BASE_URL": ("base_url", str, None),
    "PORTAL_LDAP_URLS": ("ldap_urls", tuple, None),
    "PORTAL_LDAP_BASE_DN": ("ldap_base_dn", str, None),
    "PORTAL_LDAP_BIND_DN": ("ldap_bind_dn", str, None),
    "PORTAL_LDAP_BIND_PASSWORD": ("ldap_bind_password", str, None),
    "PORTAL_LDAP_CONNECT_TIMEOUT": ("ldap_connect_timeout", float, "5"),
    "PORTAL_LDAP_RECEIVE_TIMEOUT": ("ldap_receive_timeout", float, "10"),
    "PORTAL_LDAP_CA_FILE": ("ldap_ca_file", str, ""),
    "PORTAL_LDAP_START_TLS": ("ldap_start_tls", bool, "false"),
    "PORTAL_LDAP_ALLOW_PLAIN": ("ldap_allow_plain", bool, "false"),
    "PORTAL_SMTP_HOST": ("smtp_host", str, "localhost"),
    "PORTAL_SMTP_PORT": ("smtp_port", int, "25"),
    "PORTAL_SMTP_USE_TLS": ("smtp_use_tls", bool, "false"),
    "PORTAL_SMTP_USE_SSL": ("smtp_use_ssl", bool, "false"),
    "PORTAL_SMTP_USERNAME": ("smtp_username", str, ""),
    "PORTAL_SMTP_PASSWORD": ("smtp_password", str, ""),
    "PORTAL_SMTP_TIMEOUT": ("smtp_timeout", float, "10"),
    "PORTAL_MAIL_FROM": ("mail_from", str, None),
    "PORTAL_COLLABORATION_NAME": ("collaboration_name", str, None),
    "PORTAL_MAIL_DOMAIN": ("mail_domain", str, None),
    "PORTAL_MAIN_GROUP": ("main_group", str, "members"),
    "PORTAL_HELPDESK_EMAIL": ("helpdesk_email", str, None),
    # Its active members use the helpdesk console (a group in ou=groups).
    "PORTAL_HELPDESK_GROUP": ("helpdesk_group", str, "helpdesk"),
    "PORTAL_PASSWORD_MIN_LENGTH": ("password_min_length", int, "12"),
    "PORTAL_LINK_MAX_AGE_DAYS": ("link_max_age_days", int, "14"),
    "PORTAL_UNCONFIRMED_REQUEST_DAYS": ("unconfirmed_request_days", int, "7"),
    # Addresses/networks of the TLS terminators (a bare number N: N hops, from loopback).
    "PORTAL_TRUSTED_PROXIES": ("trusted_proxies", str, ""),
    "PORTAL_EXPIRY_WARNING_DAYS": ("expiry_warning_days", tuple, "30 7 1"),
    "PORTAL_RESET_LINK_MAX_AGE_MINUTES": ("reset_link_max_age_minutes", int, "60"),
    "PORTAL_SESSION_IDLE_MINUTES": ("session_idle_minutes", int, "30"),
    "PORTAL_SESSION_MAX_HOURS": ("session_max_hours", int, "8"),
    # Production refuses memory:// (each worker would count alone).
    "PORTAL_RATELIMIT_STORAGE_URI": ("ratelimit_storage_uri", str, "memory://"),
    "PORTAL_RATELIMIT_KEY_PREFIX": ("ratelimit_key_prefix", str, "portal"),
    "PORTAL_RATE_LIMIT_LOGIN_ACCOUNT": ("rate_limit_login_account", str, "10 per 15 minutes"),
    "PORTAL_RATE_LIMIT_LOGIN_ADDRESS": ("rate_limit_login_address", str, "100 per 15 minutes"),
    "PORTAL_RATE_LIMIT_RESET": ("rate_limit_reset", str, "5 per hour"),
    "PORTAL_RATE_LIMIT_REGISTER": ("rate_limit_register", str, "20 per hour"),
    "PORTAL_RATE_LIMIT_HINTS": ("rate_limit_hints", str, "120 per hour"),
    "PORTAL_DEV_MAIL_DIR": ("dev_mail_dir", str, ""),
    "PORTAL_COLLABORATION_FILE": ("collaboration_file", str, str(DEFAULT_COLLABORATION_FILE)),
    "PORTAL_LANGUAGES": ("languages", tuple, "en de ja"),
    # outbox: web workers only queue, `flask mail send --loop` delivers;
    # inline (tests only): the worker delivers what it queued at once.
    "PORTAL_MAIL_DELIVERY": ("mail_delivery", str, "outbox"),
    "PORTAL_REMINDER_DAYS": ("reminder_days", int, "3"),
    "PORTAL_ESCALATION_DAYS": ("escalation_days", int, "10"),
    "PORTAL_TYPICAL_APPROVAL_DAYS": ("typical_approval_days", int, "5"),
    "PORTAL_RESEND_INTERVAL_MINUTES": ("resend_interval_minutes", int, "10"),
    # An ended membership keeps access this long; IRs confirm their roster once per period.
    "PORTAL_MEMBERSHIP_GRACE_DAYS": ("membership_grace_days", int, "30"),
    "PORTAL_ROSTER_CONFIRMATION_DAYS": ("roster_confirmation_days", int, "365"),
    # The paper route: true lets the helpdesk approve a paper request itself
    # (audited with its reason); false sends it to the IR like every other.
    "PORTAL_HELPDESK_MAY_APPROVE_PAPER": ("helpdesk_may_approve_paper", bool, "false"),
    # Invitations by IRs: how long the personal link works.
    "PORTAL_INVITATION_DAYS": ("invitation_days", int, "14"),
    # Self-registration at /register (off: by invitation and the other routes only).
    "PORTAL_OPEN_REGISTRATION": ("open_registration", bool, "true"),
}
MAIL_DELIVERIES = ("outbox", "inline")
ENV_NAMES = tuple(_ENV)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build the settings from ``environ``; raise SettingsError listing every problem."""
    problems: list[str] = []
    values: dict = {}
    for name, (attr, kind, default) in _ENV.items():
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            if default is None:
                problems.append(f"{name} is required")
                continue
            raw = default
        try:
            values[attr] = convert(kind, raw)
        except ValueError as exc:
            problems.append(f"{name}={raw!r} is not valid: {exc}")

    env = values.get("env")
    if env is not None and env not in ENVIRONMENTS:
        problems.append(f"PORTAL_ENV must be one of {', '.join(ENVIRONMENTS)}")
    key = values.get("secret_key")
    if key is not None:
        weak = len(key) < MIN_SECRET_KEY_LENGTH or key.lower() in WEAK_SECRET_KEYS
        if weak and env == "production":
            problems.append(
                f"PORTAL_SECRET_KEY is too weak: use at least {MIN_SECRET_KEY_LENGTH} random "
                "characters (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
    base_url = values.get("base_url")
    if base_url is not None:
        if not base_url.startswith(("http://", "https://")):
            problems.append("PORTAL_BASE_URL must start with http:// or https://")
        elif env == "production" and not base_url.startswith("https://"):
            problems.append("PORTAL_BASE_URL must use https:// in production")
        values["base_url"] = base_url.rstrip("/")
    for url in values.get("ldap_urls", ()):
        if not url.startswith(("ldap://", "ldaps://", "ldapi://")):
            problems.append(f"PORTAL_LDAP_URLS: {url!r} is not an ldap://, ldaps:// or "
                            "ldapi:// URL")
        elif (env == "production" and url.startswith("ldap://") and not loopback(url)
              and not values.get("ldap_start_tls") and not values.get("ldap_allow_plain")):
            problems.append(f"PORTAL_LDAP_URLS: {url!r} sends passwords in clear to another "
                            "host: use ldaps://, PORTAL_LDAP_START_TLS=true, or set "
                            "PORTAL_LDAP_ALLOW_PLAIN=true")
    ca_file = values.get("ldap_ca_file")
    if ca_file and not Path(ca_file).is_file():
        problems.append(f"PORTAL_LDAP_CA_FILE: {ca_file} does not exist")
    for attr, env_name, minimum in (
        ("password_min_length", "PORTAL_PASSWORD_MIN_LENGTH", 8),
        ("link_max_age_days", "PORTAL_LINK_MAX_AGE_DAYS", 1),
        ("unconfirmed_request_days", "PORTAL_UNCONFIRMED_REQUEST_DAYS", 1),
        ("reset_link_max_age_minutes", "PORTAL_RESET_LINK_MAX_AGE_MINUTES", 5),
        ("session_idle_minutes", "PORTAL_SESSION_IDLE_MINUTES", 1),
        ("session_max_hours", "PORTAL_SESSION_MAX_HOURS", 1),
        ("reminder_days", "PORTAL_REMINDER_DAYS", 1),
        ("escalation_days", "PORTAL_ESCALATION_DAYS", 1),
        ("typical_approval_days", "PORTAL_TYPICAL_APPROVAL_DAYS", 1),
        ("resend_interval_minutes", "PORTAL_RESEND_INTERVAL_MINUTES", 1),
        ("membership_grace_days", "PORTAL_MEMBERSHIP_GRACE_DAYS", 0),
        ("roster_confirmation_days", "PORTAL_ROSTER_CONFIRMATION_DAYS", 1),
        ("invitation_days", "PORTAL_INVITATION_DAYS", 1),
    ):
        if attr in values and values[attr] < minimum:
            problems.append(f"{env_name} must be at least {minimum}")
    try:
        values["expiry_warning_days"] = tuple(sorted(
            {int(d) for d in values.get("expiry_warning_days", ())}, reverse=True))
        if any(d < 1 for d in values["expiry_warning_days"]):
            raise ValueError
    except ValueError:
        problems.append("PORTAL_EXPIRY_WARNING_DAYS must be whole numbers of days (e.g. 30 7 1)")
    for attr, env_name in (("rate_limit_login_account", "PORTAL_RATE_LIMIT_LOGIN_ACCOUNT"),
                           ("rate_limit_login_address", "PORTAL_RATE_LIMIT_LOGIN_ADDRESS"),
                           ("rate_limit_reset", "PORTAL_RATE_LIMIT_RESET"),
                           ("rate_limit_register", "PORTAL_RATE_LIMIT_REGISTER"),
                           ("rate_limit_hints", "PORTAL_RATE_LIMIT_HINTS")):
        if attr in values and not valid_rate_limit(values[attr]):
            problems.append(f"{env_name}={values[attr]!r} is not a rate limit like "
                            "'10 per 15 minutes'")
    storage = values.get("ratelimit_storage_uri", "")
    if env == "production" and storage.startswith("memory://"):
        problems.append("PORTAL_RATELIMIT_STORAGE_URI=memory:// counts in each worker process "
                        "alone: use a shared store in production (redis://127.0.0.1:6379/0)")
    delivery = values.get("mail_delivery")
    if delivery is not None and delivery not in MAIL_DELIVERIES:
        problems.append(f"PORTAL_MAIL_DELIVERY must be one of {', '.join(MAIL_DELIVERIES)}")
    elif delivery == "inline" and env == "production":
        problems.append("PORTAL_MAIL_DELIVERY=inline makes web workers wait on SMTP: "
                        "use outbox (and `flask mail send --loop`) in production")
    check_languages(values.get("languages", ()), problems)
    trusted_proxies(values, problems)
    if "@" in values.get("mail_domain", ""):
        problems.append("PORTAL_MAIL_DOMAIN is a domain (example.org), not an address")

    collaboration = load_collaboration_file(values.get("collaboration_file", ""), problems)
    if problems:
        raise SettingsError(problems)
    return Settings(**values, **collaboration)
