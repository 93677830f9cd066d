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


class PasswordRefused(DirectoryError):
    """The directory's password policy refused a new password.

    ``reason`` is the ppolicy error name (passwordInHistory,
    insufficientPasswordQuality, passwordTooShort, ...) or
    invalidCredentials when the current password was wrong.
    """

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


class ValueExists(DirectoryError):
    """The value to add is there already (a set membership or a marker)."""


class ConstraintViolation(DirectoryError):
    """The directory refused the change by a constraint (e.g. a second value
    for a single-valued attribute)."""


class SchemaOutdated(DirectoryError):
    """The directory's schema is older than the portal's (load
    ldap_schema/portal.schema): the portal would misread what slapd answers."""
