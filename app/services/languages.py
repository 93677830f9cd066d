"""A member's language: the one their mails are written in."""
from __future__ import annotations

from ..clock import Clock, utcnow
from ..directory import Directory
from .audit import Actor, audit_event


def set_member_language(directory: Directory, account_name: str, language: str,
                        address: str, clock: Clock = utcnow) -> None:
    """Store ``language`` as the member's preferredLanguage, with an audit record."""
    now = clock()
    directory.set_preferred_language(account_name, language, audit_event(
        "member.language-changed", Actor(account_name, address), now, language=language))
