"""Mail leaves through the outbox and the sender (`flask mail send`): web
workers never wait on SMTP, concurrent senders never send a message twice,
and a failed message waits with a backoff."""
from __future__ import annotations

import email.utils
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

import ldap3
import pytest

from app import create_app
from app.directory import OutboxMessage
from app.portal import portal
from fixtures.web import running_portal
from helpers import (
    BASE_DN,
    ROOT,
    csrf_token,
    mails_to,
    outbox_entries,
    portal_environment,
    post_registration,
    wait_until,
)

OUTBOX = f"ou=outbox,{BASE_DN}"


@pytest.fixture
def outbox_app(slapd, smtp, root):
    """The app as in production: the web only queues."""
    smtp.clear()
    yield create_app(portal_environment(slapd, smtp, PORTAL_MAIL_DELIVERY="outbox"))
    smtp.refuse_with = None
    smtp.delay = 0


def queue_messages(app, count: int) -> list[str]:
    """``count`` messages in the outbox, in MIME form as an earlier version
    queued them (the sender sends those as they are); their Message-IDs."""
    ids = []
    with app.app_context():
        directory = portal().directory
        for n in range(count):
            message = EmailMessage()
            message["From"], message["To"] = "registry@example.org", f"person{n}@kek.example"
            message["Subject"] = f"queued {n}"
            message["Message-ID"] = email.utils.make_msgid(domain="example.org")
            message.set_content("hello\n")
            ids.append(message["Message-ID"])
            directory.add_outbox_message(OutboxMessage(
                id=secrets.token_hex(12), message=message.as_bytes(),
                recipients=(f"person{n}@kek.example",), attempts=1, last_error="earlier",
                queued_at=datetime.now(timezone.utc)))
    return ids


def flask_command(slapd, smtp, *args: str) -> subprocess.Popen:
    env = {**os.environ, **portal_environment(slapd, smtp, PORTAL_MAIL_DELIVERY="outbox")}
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_web_only_queues_and_the_sender_delivers(outbox_app, smtp, root):
    response = post_registration(outbox_app.test_client())
    assert response.status_code == 302
    assert smtp.messages == []
    [waiting] = outbox_entries(root)
    assert waiting.portalOutboxRecipient.value == "toru.iijima@kek.example"
    listing = outbox_app.test_cli_runner().invoke(args=["mail", "list"])
    assert "1 message(s) waiting" in listing.output and "next now" in listing.output
    result = outbox_app.test_cli_runner().invoke(args=["mail", "send", "--once"])
    assert result.exit_code == 0 and "sent 1, still waiting 0" in result.output
    [mail] = mails_to(smtp, "toru.iijima@kek.example")
    assert "confirm" in str(mail["Subject"])
    assert outbox_entries(root) == []


def stored_letter(root, dn: str) -> bytes:
    root.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["portalOutboxMessage"])
    return root.entries[0].portalOutboxMessage.raw_values[0]


def test_the_outbox_keeps_the_rendered_letter_and_the_sender_builds_the_mail(
        outbox_app, smtp, root):
    """The request stores the letter (subject, text, html, Message-ID, the
    time it was queued); the sender builds the MIME mail from it, with the
    queuing time as its Date and every field as stored."""
    before = datetime.now(timezone.utc).timestamp()
    post_registration(outbox_app.test_client())
    after = datetime.now(timezone.utc).timestamp()
    [entry] = outbox_entries(root)
    stored = stored_letter(root, entry.entry_dn)
    assert stored.startswith(b"portal-letter/1\n") and b"MIME-Version" not in stored
    letter = json.loads(stored.split(b"\n", 1)[1])
    assert before <= letter["date"] <= after
    assert letter["message_id"].endswith("@example.org>")
    # What the sender does with a letter of any content and age: a subject
    # in three scripts, queued a day ago.
    letter["subject"] = "Größe – 確認 – Ελλάδα " + letter["subject"]
    letter["date"] = datetime(2026, 11, 30, 9, 15, 42, tzinfo=timezone.utc).timestamp()
    root.modify(entry.entry_dn, {"portalOutboxMessage": [(ldap3.MODIFY_REPLACE, [
        b"portal-letter/1\n" + json.dumps(letter).encode()])]})
    assert outbox_app.test_cli_runner().invoke(args=["mail", "send", "--once"]).exit_code == 0
    [mail] = mails_to(smtp, "toru.iijima@kek.example")
    assert mail["Message-ID"] == letter["message_id"]
    assert str(mail["Subject"]) == letter["subject"]
    assert email.utils.parsedate_to_datetime(mail["Date"]).timestamp() == letter["date"]
    assert email.utils.parseaddr(str(mail["From"]))[1] == \
        email.utils.parseaddr(letter["sender"])[1]
    assert str(mail["To"]) == "toru.iijima@kek.example"
    [alternative] = [part for part in mail.walk()
                     if part.get_content_type() == "multipart/alternative"]
    assert [p.get_content_type() for p in alternative.iter_parts()] == \
        ["text/plain", "text/html"]
    text, html = (mail.get_body(("plain",)), mail.get_body(("html",)))
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    text, html = (text.get_content().replace("\r\n", "\n"),
                  html.get_content().replace("\r\n", "\n"))
    assert text == letter["body"] and "/register/" in text
    assert html.strip() == letter["html"].strip()


_LETTER = {"subject": "s", "body": "b\n", "html": "<p>b</p>", "sender": "r@example.org",
           "recipients": ["someone@kek.example"], "message_id": "<1@example.org>",
           "date": 1764581742.0}


@pytest.mark.parametrize("stored, error", [
    (b'portal-letter/1\n{"subject": "cut off', "Unterminated string"),
    (b"portal-letter/1\n" + json.dumps({**_LETTER, "date": "yesterday"}).encode(),
     "wrong type"),
    (b"portal-letter/1\n" + json.dumps({k: v for k, v in _LETTER.items() if k != "html"}
                                        ).encode(), "missing"),
    (b"portal-letter/1\n" + json.dumps({**_LETTER, "cc": ["x@kek.example"]}).encode(),
     "unexpected keyword"),
    (b"portal-letter/2\n" + json.dumps(_LETTER).encode(), "portal-letter/2"),
    # No line break after the form: its name only, never the letter's link.
    (b"portal-letter/1" + json.dumps({**_LETTER, "body": "https://x.example/reset/SECRET"}
                                     ).encode(), "form this version does not know"),
], ids=["cut-off", "wrong-type", "missing-field", "unknown-field", "newer-form",
        "no-line-break"])
def test_an_unreadable_letter_waits_with_its_error_and_the_others_go(
        outbox_app, smtp, root, caplog, stored, error):
    [good] = queue_messages(outbox_app, 1)
    with outbox_app.app_context():
        portal().directory.add_outbox_message(OutboxMessage(
            id="broken0001", message=stored, recipients=("someone@kek.example",),
            queued_at=datetime.now(timezone.utc)))
    result = outbox_app.test_cli_runner().invoke(args=["mail", "send", "--once"])
    assert result.exit_code == 1 and "sent 1, still waiting 1" in result.output
    assert [m["Message-ID"] for m in smtp.messages] == [good]
    [left] = outbox_entries(root)
    assert left.portalOutboxId.value == "broken0001"
    assert left.portalOutboxAttempts.value == 1
    assert left.portalOutboxClaim.value == "-"  # given back
    assert error in left.portalOutboxLastError.value
    assert "SECRET" not in left.portalOutboxLastError.value
    assert "SECRET" not in caplog.text and "cannot be read" in caplog.text


def test_a_failed_message_waits_with_a_backoff(outbox_app, smtp, root):
    smtp.refuse_with = "451 4.3.0 try again later"
    post_registration(outbox_app.test_client())
    runner = outbox_app.test_cli_runner()
    result = runner.invoke(args=["mail", "send", "--once"])
    assert result.exit_code == 1 and "sent 0, still waiting 1" in result.output
    [waiting] = outbox_entries(root)
    assert waiting.portalOutboxAttempts.value == 1
    assert "try again later" in waiting.portalOutboxLastError.value
    assert waiting.portalOutboxClaim.value == "-"  # given back
    next_attempt = waiting.portalOutboxNotBefore.value
    assert timedelta(seconds=50) < next_attempt - datetime.now(timezone.utc) < timedelta(
        seconds=70)
    smtp.refuse_with = None
    # Not due yet: the loop's round leaves it; `mail list` says when.
    result = runner.invoke(args=["mail", "send", "--once"])
    assert result.exit_code == 0 and "sent 0, still waiting 1" in result.output
    assert smtp.messages == []
    assert "attempts 1" in runner.invoke(args=["mail", "list"]).output
    # The operator's retry sends it now.
    result = runner.invoke(args=["mail", "retry"])
    assert result.exit_code == 0 and "sent 1, still waiting 0" in result.output
    assert len(mails_to(smtp, "toru.iijima@kek.example")) == 1


def test_a_stale_claim_is_taken_over_and_a_live_one_respected(outbox_app, smtp, root):
    ids = queue_messages(outbox_app, 2)
    dead, alive = sorted(e.entry_dn for e in outbox_entries(root))
    long_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y%m%d%H%M%SZ")
    just_now = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%SZ")
    root.modify(dead, {"portalOutboxClaim": [(ldap3.MODIFY_REPLACE, [f"gone/1 {long_ago}"])]})
    root.modify(alive, {"portalOutboxClaim": [(ldap3.MODIFY_REPLACE, [f"busy/2 {just_now}"])]})
    result = outbox_app.test_cli_runner().invoke(args=["mail", "retry"])
    assert "sent 1, still waiting 1" in result.output
    assert len(smtp.messages) == 1 and smtp.messages[0]["Message-ID"] in ids
    [left] = outbox_entries(root)
    assert left.entry_dn == alive


def test_two_concurrent_retries_send_each_message_exactly_once(outbox_app, slapd, smtp, root):
    ids = queue_messages(outbox_app, 40)
    smtp.delay = 0.05  # a slow server: the two runs overlap for seconds
    runs = [flask_command(slapd, smtp, "mail", "retry") for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(ids), outputs
    assert outbox_entries(root) == []
    sent = [int(out.rsplit("sent ", 1)[1].split(",")[0]) for out in outputs]
    assert sum(sent) == 40 and min(sent) > 0, outputs  # both did part of the work


class HungSmtpServer:
    """Accepts connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_hung_smtp_server_blocks_no_web_worker(slapd, smtp, root, member, tmp_path):
    hung = HungSmtpServer()
    try:
        with running_portal(slapd, smtp, tmp_path, workers=1, PORTAL_SMTP_PORT=str(hung.port),
                            PORTAL_SMTP_TIMEOUT="10") as web:
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
            with opener.open(web.url + "/password/reset", timeout=30) as page:
                token = csrf_token(page.read().decode())
            started = time.monotonic()
            body = urllib.parse.urlencode({"csrf_token": token, "login": member}).encode()
            with opener.open(web.url + "/password/reset", body, timeout=30) as answer:
                assert answer.status == 200
            with urllib.request.urlopen(web.url + "/", timeout=30) as second:
                assert second.status == 200
            # The single worker served both at once; the mail waits for the sender.
            assert time.monotonic() - started < 3
            wait_until(lambda: outbox_entries(root), message="the reset mail was not queued")
            [waiting] = outbox_entries(root)
            assert waiting.portalOutboxRecipient.value
            # The sender is the one that waits on the hung server.
            wait_until(lambda: len(hung.held) >= 1, message="the sender never connected")
    finally:
        hung.close()
