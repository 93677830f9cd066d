"""Outcomes of the workflows that the views turn into pages."""

# The directory's errors that views and commands catch, so that they need
# not import app.directory.
from ..directory.errors import DirectoryError as DirectoryError
from ..directory.errors import DirectoryUnavailable as DirectoryUnavailable
from ..directory.errors import EntryExists as EntryExists
from ..directory.errors import NoSuchEntry as NoSuchEntry
from ..directory.errors import PasswordRefused as PasswordRefused
from ..directory.errors import SchemaOutdated as SchemaOutdated


class ServiceError(Exception):
    """A workflow step cannot be done; the message is safe to show."""


class LinkInvalid(ServiceError):
    """A link was tampered with, is for another purpose or is unknown."""


class LinkUsed(LinkInvalid):
    """A genuine link that works once was used (or replaced by a newer one)."""


class LinkExpired(ServiceError):
    """A link is genuine but older than the configured maximum age."""


class NotAuthorised(ServiceError):
    """The person a link was made for may not (or no longer) act on it."""


class AccountNameUnavailable(ServiceError):
    """The desired account name was taken meanwhile."""


class PossiblyKnown(ServiceError):
    """The applicant matches an earlier record strongly: no new request; the
    stored address was mailed what to do instead."""


class SimilarPersonExists(ServiceError):
    """Someone of the same name is or was a member elsewhere: the applicant
    must confirm that this is not them."""


class UnknownInstitution(ServiceError):
    """The institution chosen is not (or no longer) in the directory."""


class UnknownPreviousAccount(ServiceError):
    """The account named as held before does not exist."""


class AlreadyDone(ServiceError):
    """The step was done before (a link used twice); ``request`` shows by whom."""

    def __init__(self, request):
        super().__init__("already done")
        self.request = request


class FormalApplicationMissing(ServiceError):
    """This stage records the reference of a formal application, and none was given."""


class DuplicateAccount(ServiceError):
    """Approving would give a person a second account: ``matches`` are the
    member or approved request with the same address or certificate."""

    def __init__(self, matches):
        super().__init__("a second account for one person")
        self.matches = matches


class RequestGone(LinkInvalid):
    """A genuine status link whose request no longer exists, was replaced by
    a newer one or was withdrawn (``request``: the withdrawn one, else None)."""

    def __init__(self, request):
        super().__init__("request gone")
        self.request = request


class ResendTooSoon(ServiceError):
    """The confirmation mail was sent again a moment ago; ``after``: when it may be again."""

    def __init__(self, after):
        super().__init__("too soon")
        self.after = after
class InvitationUnusable(ServiceError):
    """A genuine invitation link that no longer works: ``reason`` is "used"
    (the registration was sent), "revoked", "replaced" (resent: a newer link)
    or "expired"."""

    def __init__(self, reason: str):
        super().__init__(f"invitation {reason}")
        self.reason = reason


class InvitationNotOpen(ServiceError):
    """Resend or revoke of an invitation that was used or revoked already."""
