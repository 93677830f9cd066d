"""Directory gateway: the portal's only access to LDAP (see gateway.py)."""
from .errors import DirectoryError, DirectoryUnavailable, EntryExists, NoSuchEntry, StateConflict
from .gateway import ACCOUNT_NAME_RE, Directory, ldap_time, parse_ldap_time
from .records import Institution, NewMember, NewRequest, OutboxMessage, Person, Request

__all__ = [
    "ACCOUNT_NAME_RE", "Directory", "DirectoryError", "DirectoryUnavailable", "EntryExists",
    "Institution", "NewMember", "NewRequest", "NoSuchEntry", "OutboxMessage", "Person",
    "Request", "StateConflict", "ldap_time", "parse_ldap_time",
]
