"""Directory gateway: the portal's only access to LDAP (see gateway.py)."""
from .errors import (
    DirectoryError,
    DirectoryUnavailable,
    EntryExists,
    NoSuchEntry,
    PasswordRefused,
    SchemaOutdated,
    StateConflict,
)
from .gateway import Directory
from .passwords import BindResult, expiry_notice
from .records import (
    Account,
    Certificate,
    EarlierRecord,
    Institution,
    Invitation,
    ListedMember,
    NewMember,
    NewRequest,
    OutboxMessage,
    PasswordState,
    Person,
    RequestRecord,
    RosterMember,
)
from .requests import later_request_id
from .values import escape_filter_value, ldap_time, parse_ldap_time

__all__ = [
    "BindResult", "Directory", "DirectoryError", "DirectoryUnavailable", "EarlierRecord",
    "EntryExists", "Institution", "NewMember", "NewRequest", "NoSuchEntry", "OutboxMessage",
    "PasswordRefused", "PasswordState", "Person", "RequestRecord", "StateConflict",
    "RosterMember", "escape_filter_value", "later_request_id", "ldap_time", "parse_ldap_time",
    "Certificate", "ListedMember", "Invitation", "Account", "expiry_notice", "SchemaOutdated",
]
