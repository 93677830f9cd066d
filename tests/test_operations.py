"""Operator commands, mail faults and directory faults."""
from __future__ import annotations

import time

import ldap3

from app import create_app
from app.devstack.slapd import free_port
from app.logs import redact
from app.settings import ENV_NAMES, ROOT
from helpers import (
    REQUESTS,
    csrf_token,
    links_in,
    mails_to,
    portal_environment,
    post_registration,
    read_entry,
    valid_form,
)


def test_check_reports_each_part(app, slapd, smtp):
    result = app.test_cli_runner().invoke(args=["portal", "check"])
    assert result.exit_code == 0, result.output
    assert "directory  OK" in result.output and "smtp       OK" in result.output
    assert "features   OK      post-read control and modify-increment" in result.output
    broken = create_app(portal_environment(slapd, smtp, PORTAL_SMTP_PORT=str(free_port()),
                                           PORTAL_SMTP_TIMEOUT="2"))
    result = broken.test_cli_runner().invoke(args=["portal", "check"])
    assert result.exit_code == 1
    assert "directory  OK" in result.output and "smtp       FAILED" in result.output


def test_failed_mail_waits_in_the_outbox_and_is_sent_once(app, client, root, smtp):
    smtp.refuse_with = "451 4.3.0 try again later"
    response = post_registration(client)
    assert response.status_code == 302  # the registration stands
    assert read_entry(root, f"uid=tiijima,{REQUESTS}") is not None
    assert smtp.messages == []
    root.search("ou=outbox,dc=example,dc=org", "(objectClass=portalOutboxEntry)",
                attributes=["portalOutboxRecipient", "portalOutboxLastError"])
    [queued] = root.entries
    assert queued.portalOutboxRecipient.value == "toru.iijima@kek.example"
    assert "try again later" in queued.portalOutboxLastError.value

    runner = app.test_cli_runner()
    result = runner.invoke(args=["mail", "retry"])
    assert result.exit_code == 1 and "still waiting 1" in result.output

    smtp.refuse_with = None
    result = runner.invoke(args=["mail", "retry"])
    assert result.exit_code == 0 and "sent 1" in result.output
    [mail] = mails_to(smtp, "toru.iijima@kek.example")
    assert links_in(mail)[0].startswith("http://portal.test/register/verify/")
    result = runner.invoke(args=["mail", "retry"])
    assert "sent 0" in result.output
    assert len(smtp.messages) == 1


def test_directory_down_answers_503_quickly(slapd, smtp, root):
    down = create_app(portal_environment(slapd, smtp, PORTAL_LDAP_URLS=f"ldap://127.0.0.1:{free_port()}",
                                         PORTAL_LDAP_CONNECT_TIMEOUT="1"))
    client = down.test_client()
    started = time.monotonic()
    response = client.get("/register")
    assert response.status_code == 503
    assert time.monotonic() - started < 5
    assert "cannot be reached" in response.get_data(as_text=True)


def test_directory_restart_is_survived(app, client, slapd, root):
    """Also: the institutions' cache hides no outage (the page says the
    directory is down although its list is cached)."""
    assert client.get("/register").status_code == 200  # the list is cached now
    slapd.stop()
    try:
        assert client.get("/register").status_code == 503
    finally:
        slapd.start()
    assert client.get("/register").status_code == 200


def test_links_use_the_configured_base_url_not_the_host_header(client, smtp):
    page = client.get("/register", headers={"Host": "evil.example"})
    client.post("/register", headers={"Host": "evil.example"},
                data={"csrf_token": csrf_token(page.get_data(as_text=True)), **valid_form()})
    [mail] = mails_to(smtp, "toru.iijima@kek.example")
    assert all(link.startswith("http://portal.test/") for link in links_in(mail))


def test_access_log_lines_lose_their_tokens():
    token = "eyJyIjoidGlpamltYSIsInQiOiIyMDI2In0.Z2hMaA.kX3p0c2Vjb25kcGFydGxvbmdzaWc"
    line = f"GET /review/{token} HTTP/1.1"
    assert redact(line) == "GET /review/[token] HTTP/1.1"
    assert redact("GET /register HTTP/1.1") == "GET /register HTTP/1.1"


def test_every_setting_is_documented_in_the_example_environment():
    example = (ROOT / "config" / "portal.env.example").read_text()
    missing = [name for name in ENV_NAMES if f"{name}=" not in example]
    assert missing == []


def test_service_account_writes_only_where_it_must(slapd, root):
    service = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE),
                               slapd.settings.service_dn, slapd.settings.service_password,
                               auto_bind=True)
    service.search("ou=people,dc=example,dc=org", "(uid=irkek)", attributes=["userPassword", "cn"])
    [entry] = service.response
    assert "userPassword" not in entry["attributes"] or not entry["attributes"]["userPassword"]
    assert entry["attributes"]["cn"]
    denied = [
        ("cn=default,ou=policies,dc=example,dc=org", "pwdMaxAge", "1"),
        ("ou=staff,dc=example,dc=org", "description", "x"),
        ("cn=portal,ou=services,dc=example,dc=org", "description", "x"),
    ]
    for dn, attribute, value in denied:
        assert not service.modify(dn, {attribute: [(ldap3.MODIFY_REPLACE, [value])]})
        assert service.result["description"] == "insufficientAccessRights", (dn, service.result)
    assert not service.add("cn=x,dc=example,dc=org", ["organizationalRole"], {"cn": "x"})
    service.unbind()


def test_registrations_are_throttled_per_address_but_checking_names_is_not(slapd, smtp, root):
    limited = create_app(portal_environment(slapd, smtp, PORTAL_RATE_LIMIT_REGISTER="2 per hour"))
    client = limited.test_client()
    html = client.get("/register").get_data(as_text=True)
    for _ in range(5):
        response = client.post("/register", data={"csrf_token": csrf_token(html),
                                                  "action": "check", "given_name": "Toru",
                                                  "family_name": "Iijima"})
        assert response.status_code == 200
    statuses = [client.post("/register", data={"csrf_token": csrf_token(html),
                                               "account_name": "x"}).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_helpdesk_lists_the_messages_waiting_in_the_outbox(app, client, smtp, root):
    smtp.refuse_with = "451 4.3.0 try again later"
    post_registration(client)
    result = app.test_cli_runner().invoke(args=["mail", "list"])
    assert "1 message(s) waiting" in result.output
    assert "toru.iijima@kek.example" in result.output and "try again later" in result.output
    assert "/register/verify/" not in result.output  # no bodies, no links


def test_extra_form_keys_are_ignored(client, root):
    response = post_registration(client, uid="admin", userPassword="{CLEARTEXT}x",
                                 memberOf="cn=ib,ou=groups,dc=example,dc=org",
                                 portalStatus="active", objectClass="posixAccount")
    assert response.status_code == 302
    entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert entry.uid.value == "tiijima"
    assert "userPassword" not in entry.entry_attributes
    assert "portalStatus" not in entry.entry_attributes
    response = post_registration(client, account_name="tiijim2", email="other@kek.example",
                                 category="admin")
    assert response.status_code == 200


def test_directory_down_during_registration_keeps_what_was_typed(app, client, slapd, root):
    html = client.get("/register").get_data(as_text=True)
    slapd.stop()
    try:
        response = client.post("/register", data={"csrf_token": csrf_token(html), **valid_form()})
        page = response.get_data(as_text=True)
        assert response.status_code == 503
        assert "cannot be reached right now, so nothing was saved" in page
        for typed in ("toru.iijima@kek.example", 'value="Toru"', 'value="tiijima"'):
            assert typed in page
        assert "Glacier-lantern" not in page  # passwords are not sent back
    finally:
        slapd.start()
    response = client.post("/register", data={"csrf_token": csrf_token(page), **valid_form()})
    assert response.status_code == 302
