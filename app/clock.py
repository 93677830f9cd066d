"""The one clock: services take ``clock`` (a callable returning an aware UTC
datetime) so tests and ``--now`` can move time; nothing else asks the system."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
