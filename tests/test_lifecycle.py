"""Membership lifecycle: expiry sweep, suspension; locked in the directory."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import ldap3
import pytest

from helpers import (
    MAIN_GROUP,
    PEOPLE,
    STRONG_PASSWORD,
    binds,
    csrf_token,
    decide,
    login,
    mails_to,
    read_entry,
)

DN = f"uid=tiijima,{PEOPLE}"
CONTACT = "toru.iijima@kek.example"


@pytest.fixture
def approve(client, register_and_verify):
    def run(**changes) -> str:
        decide(client, register_and_verify(**changes))
        return "tiijima"
    return run


def bind_works(slapd) -> bool:
    return binds(slapd, DN, STRONG_PASSWORD)


def in_main_group(root) -> bool:
    root.search(MAIN_GROUP, "(objectClass=*)", ldap3.BASE, attributes=["member"])
    return DN in root.entries[0].member.values


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_categories_with_a_period_get_member_until(approve, root):
    approve(category="student")
    person = read_entry(root, DN)
    until = person.portalMemberUntil.value - person.portalMemberSince.value
    assert until.days == 365


def test_open_ended_categories_have_no_end(approve, root):
    approve(category="phd-student")
    assert "portalMemberUntil" not in read_entry(root, DN).entry_attributes


def test_expiry_sweep_locks_everywhere_and_is_idempotent(app, approve, root, slapd, smtp, client):
    approve(category="student")
    until = read_entry(root, DN).portalMemberUntil.value
    runner = app.test_cli_runner()
    result = runner.invoke(args=["members", "expire", "--now", iso(until - timedelta(days=1))])
    assert "expired 0" in result.output
    assert bind_works(slapd)

    result = runner.invoke(args=["members", "expire", "--now", iso(until + timedelta(hours=1))])
    assert "expired 1" in result.output
    person = read_entry(root, DN)
    assert person.portalStatus.value == "expired"
    assert not bind_works(slapd)  # another service's bind fails
    assert not in_main_group(root)
    [mail] = mails_to(smtp, CONTACT, "membership has expired")
    assert "do not register again" in mail.get_body(preferencelist=("plain",)).get_content()

    result = runner.invoke(args=["members", "expire", "--now", iso(until + timedelta(days=2))])
    assert "expired 0" in result.output
    assert len([m for m in smtp.messages if "has expired" in m["Subject"]]) == 1
    events = [json.loads(e) for e in read_entry(root, DN).portalAuditEvent.values]
    assert [e["action"] for e in events].count("member.expired") == 1

    # Nothing is deleted, and no reset link revives the account.
    html = client.get("/password/reset").get_data(as_text=True)
    client.post("/password/reset",
                data={"csrf_token": csrf_token(html), "login": "tiijima"}).close()
    assert not [m for m in smtp.messages if "reset your password" in m["Subject"]]


def test_suspend_and_unsuspend_with_reasons(app, approve, root, slapd, smtp):
    approve()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["members", "suspend", "tiijima", "--reason", "Shared the password",
                                 "--by", "helpdesk"])
    assert result.exit_code == 0, result.output
    assert read_entry(root, DN).portalStatus.value == "suspended"
    assert not bind_works(slapd) and not in_main_group(root)
    [mail] = mails_to(smtp, CONTACT, "suspended")
    assert "Shared the password" in mail.get_body(preferencelist=("plain",)).get_content()

    result = runner.invoke(args=["members", "suspend", "tiijima", "--reason", "again", "--by", "x"])
    assert result.exit_code != 0 and "not an active member" in result.output

    result = runner.invoke(args=["members", "unsuspend", "tiijima", "--reason", "Cleared",
                                 "--by", "helpdesk"])
    assert result.exit_code == 0, result.output
    assert read_entry(root, DN).portalStatus.value == "active"
    assert bind_works(slapd) and in_main_group(root)

    history = runner.invoke(args=["members", "history", "tiijima"]).output.splitlines()
    actions = [json.loads(line)["action"] for line in history]
    assert actions[-2:] == ["member.suspended", "member.unsuspended"]
    suspended = json.loads(history[-2])
    assert suspended["actor"] == "helpdesk" and suspended["reason"] == "Shared the password"


def test_suspension_ends_the_members_sessions(app, client, member):
    login(client)
    assert client.get("/account/password").status_code == 200
    app.test_cli_runner().invoke(args=["members", "suspend", "tiijima", "--reason", "x",
                                       "--by", "helpdesk"])
    assert client.get("/account/password").headers["Location"].endswith("/login")
