"""Directory gateway: the portal's only access to LDAP (see gateway.py)."""
from .errors import (
    DirectoryError, DirectoryUnavailable, EntryExists, NoSuchEntry, PasswordRefused, StateConflict,
)
from .gateway import BindResult, Directory, ldap_time, parse_ldap_time
from .records import (
    EarlierRecord, Institution, NewMember, NewRequest, OutboxMessage, PasswordState, Person, Request,
)

__all__ = [
    "BindResult", "Directory", "EarlierRecord", "DirectoryError", "DirectoryUnavailable",
    "EntryExists", "Institution", "NewMember", "NewRequest", "NoSuchEntry", "OutboxMessage",
    "PasswordRefused", "PasswordState", "Person", "Request", "StateConflict", "ldap_time",
    "parse_ldap_time",
]
