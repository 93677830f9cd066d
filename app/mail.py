"""Outgoing mail: templates own their subject; a failed send waits in the
directory's outbox (every app host sees it) until ``flask mail retry``."""
from __future__ import annotations

import logging
import secrets
import smtplib
from dataclasses import dataclass
from email.utils import make_msgid, parseaddr

from flask import current_app
import flask_mail
from flask_babel import force_locale
from flask_mail import Message

from .clock import Clock, utcnow
from .directory import Directory, DirectoryError, OutboxMessage

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
class RetryReport:
    sent: int
    failed: int


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
    def __init__(self, directory: Directory, sender: str, clock: Clock = utcnow):
        self._directory = directory
        self._sender = sender
        self._clock = clock

    def compose(self, template: str, recipients: list[str], language: str = "",
                **context) -> Message:
        """``templates/mail/<template>.txt`` (subject and text) and ``.html``,
        in ``language`` (the recipient's; the default language if unset or
        no longer offered)."""
        full_context = {**current_app.jinja_env.globals, **context}
        with force_locale(_mail_language(language)):
            subject, text = _render_blocks(f"mail/{template}.txt", full_context)
            html = current_app.jinja_env.get_template(f"mail/{template}.html").render(
                subject=subject, **full_context)
        message = Message(subject=subject, recipients=recipients, body=text, html=html,
                          sender=self._sender)
        # Under the sender's (the collaboration's) domain, not the host name.
        domain = parseaddr(self._sender)[1].rpartition("@")[2]
        if domain:
            message.msgId = make_msgid(domain=domain)
        return message

    def send(self, template: str, recipients: list[str], language: str = "",
             **context) -> bool:
        """Send now; on failure queue in the outbox. True when sent now."""
        message = self.compose(template, recipients, language, **context)
        try:
            mail.send(message)
            log.info("mail sent", extra={"event": "mail.sent", "template": template})
            return True
        except _SEND_ERRORS as exc:
            log.warning("mail %s not sent (%s); queued for retry", template, type(exc).__name__)
            self._queue(message, str(exc))
            return False

    def _queue(self, message: Message, error: str) -> None:
        entry = OutboxMessage(
            id=secrets.token_hex(12), message=message.as_bytes(),
            recipients=tuple(message.send_to), attempts=1, last_error=error,
            queued_at=self._clock(),
        )
        # If the directory is down too the caller gets the error: never
        # pretend a message is on its way when it is not.
        self._directory.add_outbox_message(entry)

    def retry_outbox(self) -> RetryReport:
        sent = failed = 0
        for queued in self._directory.outbox_messages():
            try:
                with mail.connect() as connection:
                    connection.host.sendmail(self._sender, list(queued.recipients), queued.message)
            except _SEND_ERRORS as exc:
                failed += 1
                self._directory.record_outbox_failure(queued.id, queued.attempts + 1, str(exc))
                continue
            try:
                self._directory.remove_outbox_message(queued.id)
            except DirectoryError:
                log.error("mail %s sent but still in the outbox; it may be sent again", queued.id)
                raise
            sent += 1
        return RetryReport(sent=sent, failed=failed)

    # -- for the pages ----------------------------------------------------------------------

    def outbox(self) -> list[OutboxMessage]:
        """The messages waiting in the outbox (``flask mail list``)."""
        return self._directory.outbox_messages()
