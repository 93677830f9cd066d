"""The directory gateway's own exceptions: nothing outside app/directory
sees an ldap3 exception."""


class DirectoryError(Exception):
    """A directory operation failed for a reason the caller cannot fix."""


class DirectoryUnavailable(DirectoryError):
    """No directory server answered (down, unreachable or timing out)."""


class EntryExists(DirectoryError):
    """The entry to add exists already."""


class NoSuchEntry(DirectoryError):
    """The entry to read or change does not exist."""


class StateConflict(DirectoryError):
    """A compare-and-swap change lost: the entry was changed meanwhile."""
