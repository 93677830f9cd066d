"""Across gunicorn workers: races end in one state, logs hold no secrets."""
from __future__ import annotations

import http.cookiejar
import json
import string
import urllib.error
import urllib.parse
import urllib.request

import pytest

from helpers import (
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    csrf_token,
    links_in,
    race,
    read_entry,
    valid_form,
    wait_for_empty_outbox,
    wait_for_mail,
    wait_until,
)


class Browser:
    """One visitor: its own cookies, talking HTTP to gunicorn."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def post(self, path: str, data: dict) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.base + path, body, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def path_of(url: str, base: str) -> str:
    return url.replace(base, "")


def pending_request(gunicorn, smtp, **changes) -> str:
    """Register and confirm through gunicorn; the IR's review path."""
    browser = Browser(gunicorn.url)
    before = len(smtp.messages)
    _, html = browser.get("/register")
    status, _ = browser.post("/register", {"csrf_token": csrf_token(html), **valid_form(**changes)})
    assert status == 200
    email = valid_form(**changes)["email"]
    # The sender process delivers the mail after the response, possibly
    # behind the earlier tests' mails (the races queue dozens): a generous
    # deadline, polled; and the confirmation mail by its subject, since the
    # previous round's "account ready" to the same address may arrive now.
    verify = wait_until(lambda: [m for m in smtp.messages[before:] if m["To"] == email
                                 and "confirm your e-mail" in str(m["Subject"])],
                        timeout=30, message="no confirmation mail")[-1]
    path = path_of(links_in(verify)[0], gunicorn.url)
    _, html = browser.get(path)
    before = len(smtp.messages)
    browser.post(path, {"csrf_token": csrf_token(html)})
    review = wait_for_mail(smtp, "membership request from", before, timeout=30)
    return path_of(links_in(review)[0], gunicorn.url)


def browser_with_token(gunicorn, path: str) -> tuple[Browser, str]:
    """A new visitor that has opened ``path``, and the page's CSRF token."""
    browser = Browser(gunicorn.url)
    return browser, csrf_token(browser.get(path)[1])


def test_twenty_parallel_approvals_make_one_account(gunicorn, smtp, root):
    smtp.clear()
    review = pending_request(gunicorn, smtp)

    def approve(n, prepared):
        if prepared is None:
            return browser_with_token(gunicorn, review)
        browser, token = prepared
        return browser.post(review, {"csrf_token": token, "decision": "approve"})

    results = race(20, approve)
    assert all(status == 200 for status, _ in results)
    assert sum("<h1>Approved</h1>" in html for _, html in results) == 1
    assert sum("already approved by" in html for _, html in results) == 19
    root.search(PEOPLE, "(uid=tiijima)", attributes=["uid"])
    assert len(root.entries) == 1
    entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert sum('"request.approved"' in e for e in entry.portalAuditEvent.values) == 1
    wait_for_mail(smtp, "is ready")
    wait_for_empty_outbox(root)
    assert len([m for m in smtp.messages if "is ready" in str(m["Subject"])]) == 1


def test_fifty_parallel_registrations_of_one_name_make_one_request(gunicorn, smtp, root):
    families = ["Iijima" + a + b
                for a in string.ascii_lowercase[:5] for b in string.ascii_lowercase[:10]]

    def register(n, prepared):
        if prepared is None:
            return browser_with_token(gunicorn, "/register")
        browser, token = prepared
        return browser.post("/register", {"csrf_token": token, **valid_form(
            family_name=families[n], email=f"person{n}@kek.example", password=STRONG_PASSWORD)})

    results = race(50, register)
    assert all(status == 200 for status, _ in results)
    created = [html for _, html in results if "We received your registration for" in html]
    assert len(created) == 1
    root.search(REQUESTS, "(uid=tiijima)", attributes=["uid"])
    assert len(root.entries) == 1


@pytest.mark.parametrize("round_", range(3))
def test_approve_and_reject_racing_end_in_one_state(gunicorn, smtp, root, round_):
    smtp.clear()
    review = pending_request(gunicorn, smtp)

    def decide(n, prepared):
        if prepared is None:
            return browser_with_token(gunicorn, review)
        browser, token = prepared
        decision = {"decision": "approve"} if n % 2 else {"decision": "reject", "reason": "No"}
        return browser.post(review, {"csrf_token": token, **decision})

    race(6, decide)
    status = read_entry(root, f"uid=tiijima,{REQUESTS}").portalRequestStatus.value
    person = read_entry(root, f"uid=tiijima,{PEOPLE}")
    assert status in ("approved", "rejected")
    assert (person is not None) == (status == "approved")
    entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    decisions = [e for e in entry.portalAuditEvent.values
                 if '"request.approved"' in e or '"request.rejected"' in e]
    assert len(decisions) == 1


def test_logs_hold_no_passwords_or_tokens(gunicorn, smtp, root):
    smtp.clear()
    review = pending_request(gunicorn, smtp)
    browser = Browser(gunicorn.url)
    browser.post(review, {"csrf_token": csrf_token(browser.get(review)[1]), "decision": "approve"})
    _, html = browser.get("/login")
    browser.post("/login", {"csrf_token": csrf_token(html), "account_name": "tiijima",
                            "password": STRONG_PASSWORD})
    _, html = browser.get("/password/reset")
    browser.post("/password/reset", {"csrf_token": csrf_token(html), "login": "tiijima"})
    reset = wait_for_mail(smtp, "reset your password")
    browser.get(path_of(links_in(reset)[0], gunicorn.url))
    tokens = [link.rsplit("/", 1)[1] for m in smtp.messages for link in links_in(m)
              if "/review/" in link or "/verify/" in link or "/password/reset/" in link]
    assert tokens, "no links were mailed"
    # The access log line follows the response.
    wait_until(lambda: "GET /password/reset/[token]" in gunicorn.log.read_text(),
               message="the access log was not written")
    log = gunicorn.log.read_text()
    assert "GET /review/[token]" in log
    for secret in [STRONG_PASSWORD, *tokens]:
        assert secret not in log


def test_app_logs_are_json_lines_with_request_ids(gunicorn, smtp, root):
    browser = Browser(gunicorn.url)
    _, html = browser.get("/login")
    browser.post("/login", {"csrf_token": csrf_token(html), "account_name": "irkek",
                            "password": "Not-the-password-1"})
    lines = [json.loads(line) for line in gunicorn.log.read_text().splitlines()
             if line.startswith("{")]
    logins = [e for e in lines if e.get("event") == "account.login"]
    assert logins, "no login event logged"
    event = logins[-1]
    assert event["outcome"] == "failed" and event["client"] == "127.0.0.1"
    assert len(event["request_id"]) == 16 and event["path"] == "/login"
    assert "Not-the-password-1" not in gunicorn.log.read_text()
