"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives:
as .eml files in a folder (dev stack) and in memory (tests)."""
from __future__ import annotations

import asyncio
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self, catcher: "MailCatcher"):
        self._catcher = catcher

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        if self._catcher.delay:
            await asyncio.sleep(self._catcher.delay)
        if self._catcher.refuse_with:
            return self._catcher.refuse_with
        self._catcher._store(envelope.content, list(envelope.rcpt_tos))
        return "250 OK"


class MailCatcher:
    def __init__(self, port: int, folder: Path | None = None, host: str = "127.0.0.1"):
        self.host, self.port, self.folder = host, port, folder
        self.messages: list[EmailMessage] = []
        self.refuse_with: str | None = None  # e.g. "451 try later", for fault tests
        self.delay: float = 0  # seconds before answering DATA: a slow server, for tests
        self._lock = threading.Lock()
        self._counter = 0
        self._controller = Controller(_Handler(self), hostname=host, port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def _store(self, content: bytes, recipients: list[str]) -> None:
        message = BytesParser(policy=policy.default).parsebytes(content)
        with self._lock:
            self.messages.append(message)
            self._counter += 1
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                name = f"{time.strftime('%Y%m%d-%H%M%S')}-{self._counter:04d}.eml"
                (self.folder / name).write_bytes(content)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
