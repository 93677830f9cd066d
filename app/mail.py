"""Outgoing mail: templates own their subject; every message goes through
the directory's outbox (every app host sees it) and the sender process
(``flask mail send --loop``) delivers it, retrying failures with a backoff.
No web worker waits on SMTP."""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import smtplib
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import make_msgid, parseaddr
from typing import Callable

import flask_mail
from flask import current_app
from flask_babel import force_locale
from flask_mail import Message

from .clock import Clock, utcnow
from .directory import Directory, DirectoryError, NoSuchEntry, OutboxMessage
from .directory.outbox import UNCLAIMED, claim_text, claimed_since

log = logging.getLogger(__name__)


class _TimedConnection(flask_mail.Connection):
    """Flask-Mail's connection with a timeout (MAIL_TIMEOUT): without one a
    hung SMTP server hangs the request."""

    def configure_host(self):
        state, timeout = self.mail, current_app.config.get("MAIL_TIMEOUT", 10)
        if state.use_ssl:
            host = smtplib.SMTP_SSL(state.server, state.port, timeout=timeout)
        else:
            host = smtplib.SMTP(state.server, state.port, timeout=timeout)
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
        return host


class _Mail(flask_mail.Mail):
    def connect(self) -> flask_mail.Connection:
        return _TimedConnection(current_app.extensions["mail"])


mail = _Mail()
_SEND_ERRORS = (smtplib.SMTPException, OSError)


@dataclass(frozen=True)
class Letter:
    """A rendered message as the outbox keeps it. The sender builds its MIME
    form when it sends (2-3 ms a message), so the request that queued it
    does not."""
    subject: str
    body: str
    html: str
    sender: str
    recipients: tuple[str, ...]
    message_id: str
    date: float  # when it was queued: the Date header

    _FORM = b"portal-letter/"
    _STORED_PREFIX = _FORM + b"1\n"
    _TEXT_FIELDS = ("subject", "body", "html", "sender", "message_id")

    def stored(self) -> bytes:
        return self._STORED_PREFIX + json.dumps({
            "subject": self.subject, "body": self.body, "html": self.html,
            "sender": self.sender, "recipients": list(self.recipients),
            "message_id": self.message_id, "date": self.date}).encode("utf-8")

    @classmethod
    def wire_form(cls, stored: bytes) -> bytes:
        """The bytes that go to SMTP. A message queued as MIME (before
        letters were kept) goes as it was; UnreadableLetter when a letter
        cannot be read (damaged, or a form this version does not know)."""
        if not stored.startswith(cls._FORM):
            return stored
        if not stored.startswith(cls._STORED_PREFIX):
            # Only the form's name: the rest may hold a link meant for the recipient.
            form = re.match(rb"portal-letter/[0-9A-Za-z.]{0,8}", stored).group()
            raise UnreadableLetter("a letter in a form this version does not know: "
                                   + form.decode("ascii"))
        try:
            fields = json.loads(stored[len(cls._STORED_PREFIX):])
            if not (isinstance(fields, dict)
                    and all(isinstance(fields.get(name), str) for name in cls._TEXT_FIELDS)
                    and isinstance(fields.get("recipients"), list)
                    and all(isinstance(r, str) for r in fields["recipients"])
                    and isinstance(fields.get("date"), (int, float))):
                raise ValueError("a field is missing or of the wrong type")
            letter = cls(**{**fields, "recipients": tuple(fields["recipients"])})
            return letter.mime().as_bytes()
        except (ValueError, TypeError) as exc:
            raise UnreadableLetter(f"unreadable letter: {exc}") from exc

    def mime(self) -> Message:
        message = Message(subject=self.subject, recipients=list(self.recipients),
                          body=self.body, html=self.html, sender=self.sender, date=self.date)
        message.msgId = self.message_id
        return message


class UnreadableLetter(ValueError):
    """An outbox entry the sender cannot turn into a mail."""


@dataclass(frozen=True)
class SendReport:
    sent: int  # delivered and removed from the outbox
    failed: int  # attempted and failed: waits for its next attempt
    deferred: int  # not due yet (backoff) or being sent by another sender

    @property
    def waiting(self) -> int:
        return self.failed + self.deferred


# The pause after the n-th failed attempt: 1, 2, 4 ... minutes, at most an hour.
def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


def _sender_name() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


def _render_blocks(template_name: str, context: dict) -> tuple[str, str]:
    template = current_app.jinja_env.get_template(template_name)
    ctx = template.new_context(context)
    subject = " ".join("".join(template.blocks["subject"](ctx)).split())
    body = "".join(template.blocks["body"](ctx)).strip() + "\n"
    return subject, body


def _mail_language(language: str) -> str:
    offered = current_app.extensions.get("languages") or ("en",)
    return language if language in offered else offered[0]


class Mailer:
    """Every message goes into the directory's outbox first (after the
    action's own directory write, so mail never announces what was not
    saved); ``deliver_waiting`` (the sender, ``flask mail send``) claims
    each one, sends it and removes it. With ``inline`` (tests only) the
    caller delivers what it queued at once, through the same ``_deliver``."""

    def __init__(self, directory: Directory, sender: str, clock: Clock = utcnow,
                 inline: bool = False, claim_timeout: timedelta = timedelta(minutes=5)):
        self._directory = directory
        self._sender = sender
        self._clock = clock
        self._inline = inline
        self._claim_timeout = claim_timeout
        self._name = _sender_name()

    def compose(self, template: str, recipients: list[str], language: str = "",
                **context) -> Letter:
        """``templates/mail/<template>.txt`` (subject and text) and ``.html``,
        in ``language`` (the recipient's; the default language if unset or
        no longer offered)."""
        full_context = {**current_app.jinja_env.globals, **context}
        with force_locale(_mail_language(language)):
            subject, text = _render_blocks(f"mail/{template}.txt", full_context)
            html = current_app.jinja_env.get_template(f"mail/{template}.html").render(
                subject=subject, **full_context)
        # Under the sender's (the collaboration's) domain, not the host name.
        domain = parseaddr(self._sender)[1].rpartition("@")[2]
        # Made once, here: every attempt to send carries the same Message-ID.
        return Letter(subject=subject, body=text, html=html, sender=self._sender,
                      recipients=tuple(dict.fromkeys(recipients)),
                      message_id=make_msgid(domain=domain or None),
                      date=self._clock().timestamp())

    def send(self, template: str, recipients: list[str], language: str = "",
             **context) -> bool:
        """Queue the message in the outbox for the sender; True only when it
        was also delivered now (inline delivery)."""
        letter = self.compose(template, recipients, language, **context)
        # If the directory is down the caller gets the error: never pretend
        # a message is on its way when it is not.
        queued = self._queue(letter)
        log.info("mail queued", extra={"event": "mail.queued", "template": template})
        return self._deliver(queued, self._clock()) is True if self._inline else False

    def _queue(self, letter: Letter) -> OutboxMessage:
        entry = OutboxMessage(
            id=secrets.token_hex(12), message=letter.stored(),
            recipients=letter.recipients, attempts=0, last_error="",
            queued_at=self._clock(), claim=UNCLAIMED)
        self._directory.add_outbox_message(entry)
        return entry

    def deliver_waiting(self, due_only: bool = True) -> SendReport:
        """One round of the sender: every message that is due (all of them
        with ``due_only=False``: ``flask mail retry`` after a fault was
        fixed) and not claimed by a live sender is claimed, sent, removed."""
        sent = failed = deferred = 0
        now = self._clock()
        for queued in self._directory.outbox_messages():
            if due_only and queued.not_before and queued.not_before > now:
                deferred += 1
                continue
            outcome = self._deliver(queued, now)
            if outcome is True:
                sent += 1
            elif outcome is False:
                failed += 1
            else:
                deferred += 1
        return SendReport(sent=sent, failed=failed, deferred=deferred)

    def _claimable(self, queued: OutboxMessage, now) -> bool:
        since = claimed_since(queued.claim)
        return since is None or now - since > self._claim_timeout

    def _deliver(self, queued: OutboxMessage, now) -> bool | None:
        """Claim, send, remove: True sent, False failed (retried later with
        a backoff), None another sender has it."""
        claim = claim_text(self._name, now)
        if not self._claimable(queued, now) or \
                not self._directory.claim_outbox_message(queued.id, queued.claim, claim):
            return None
        try:
            wire = Letter.wire_form(queued.message)
        except UnreadableLetter as exc:
            log.error("mail %s cannot be read and waits in the outbox: %s", queued.id, exc,
                      exc_info=True, extra={"event": "mail.unreadable"})
            return self._failed(queued, claim, exc)
        try:
            with mail.connect() as connection:
                connection.host.sendmail(self._sender, list(queued.recipients), wire)
        except _SEND_ERRORS as exc:
            log.warning("mail %s not sent (%s: %s); attempt %d, next in %s", queued.id,
                        type(exc).__name__, exc, queued.attempts + 1,
                        backoff(queued.attempts + 1), extra={"event": "mail.failed"})
            return self._failed(queued, claim, exc)
        try:
            self._directory.remove_outbox_message(queued.id)
        except NoSuchEntry:
            pass  # our claim went stale and another sender took it over
        except DirectoryError:
            log.error("mail %s sent but still in the outbox; it may be sent again", queued.id)
            raise
        log.info("mail sent", extra={"event": "mail.sent", "outbox_id": queued.id})
        return True

    def _failed(self, queued: OutboxMessage, claim: str, error: Exception) -> bool:
        """Count the attempt, give the claim back, set the next one."""
        attempts = queued.attempts + 1
        self._directory.record_outbox_failure(queued.id, claim, attempts, str(error),
                                              self._clock() + backoff(attempts))
        return False

    def run(self, interval: float, stop: Callable[[], bool] = lambda: False) -> None:
        """The sender's loop (``flask mail send --loop``): a round every
        ``interval`` seconds; a directory fault is logged and tried again."""
        while not stop():
            try:
                report = self.deliver_waiting()
                if report.sent or report.failed:
                    log.info("sender round: sent %d, failed %d, waiting %d", report.sent,
                             report.failed, report.waiting, extra={"event": "mail.round"})
            except DirectoryError as exc:
                log.warning("sender round failed: %s", exc, extra={"event": "mail.round"})
            time.sleep(interval)

    # -- for the pages ----------------------------------------------------------------------

    def outbox(self) -> list[OutboxMessage]:
        """The messages waiting in the outbox (``flask mail list``)."""
        return self._directory.outbox_messages()
