"""Injection, XSS, CSRF and GET safety across the portal's pages."""
from __future__ import annotations

import re

import ldap3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ldap3.operation.search import MATCH_EQUAL, ROOT, parse_filter

from app import create_app
from app.directory import escape_filter_value
from helpers import (
    BASE_DN,
    PEOPLE,
    REQUESTS,
    csrf_token,
    form_errors,
    links_in,
    local_path,
    mails_to,
    portal_environment,
    post_registration,
    read_entry,
)

INJECTIONS = [
    "*", "*)(&", "*))%00", "*)(uid=*))(|(uid=*", "admin*)((|userPassword=*)", ")(cn=))\x00",
    "%2A%29%28uid%3D%2A", "irkek)(|(objectClass=*)", "\\2a", "uid=irkek,ou=people", "irkek*",
]


def directory_state(root) -> list:
    """Every entry and its last change: what 'nothing changed' means."""
    root.search(BASE_DN, "(objectClass=*)", attributes=["modifyTimestamp", "entryCSN"])
    return sorted((e.entry_dn, str(e.entryCSN)) for e in root.entries)


# -- injection -------------------------------------------------------------------------------

def _unescape(value: bytes) -> bytes:
    return re.sub(rb"\\([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), value)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_an_escaped_value_is_one_equality_assertion_with_that_value(value):
    parsed = parse_filter(f"(uid={escape_filter_value(value)})", None, False, True, None, False)
    assert parsed.tag == ROOT and len(parsed.elements) == 1
    [node] = parsed.elements
    assert node.tag == MATCH_EQUAL and not node.elements
    assert node.assertion["attr"] == "uid"
    assert _unescape(node.assertion["value"]) == value.encode("utf-8")


@pytest.mark.parametrize("payload", INJECTIONS)
def test_login_reset_and_reactivation_resist_ldap_injection(client, root, smtp, payload):
    before = directory_state(root)
    html = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"csrf_token": csrf_token(html),
                                           "account_name": payload, "password": payload})
    assert response.status_code == 200  # no redirect into an account
    assert client.get("/account").headers["Location"].endswith("/login")
    for path in ("/password/reset", "/reactivate"):
        html = client.get(path).get_data(as_text=True)
        response = client.post(path, data={"csrf_token": csrf_token(html), "login": payload,
                                           "institution": "kek"})
        assert response.status_code == 200
        response.close()
    response = client.get("/register/hints", query_string={
        "given_name": payload, "family_name": payload, "account_name": payload})
    assert response.status_code == 200
    assert response.get_json()["account_name"] != ""  # never "available"
    assert directory_state(root) == before
    assert smtp.messages == []


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("field", ["account_name", "previous_account", "email", "given_name"])
def test_registration_fields_resist_ldap_injection(client, root, payload, field):
    before = directory_state(root)
    response = post_registration(client, **{field: payload})
    assert response.status_code == 200
    assert form_errors(response.get_data(as_text=True))
    assert directory_state(root) == before


@pytest.mark.parametrize("payload", ["*", "..%2f..%2f", "a" * 5000, "\x00", "%00", "tiijima"])
def test_link_paths_resist_garbage(client, root, payload):
    for prefix in ("/review/", "/register/verify/", "/password/reset/", "/reactivate/"):
        assert client.get(prefix + payload).status_code in (404, 410)


# -- XSS and templates -----------------------------------------------------------------------

def test_markup_and_template_syntax_show_literally(client, root, smtp, register_and_verify):
    review = register_and_verify()
    reason = "<img src=x onerror=alert(1)> {{7*7}} <script>alert(1)</script>"
    html = client.get(review).get_data(as_text=True)
    response = client.post(review, data={"csrf_token": csrf_token(html), "decision": "reject",
                                         "reason": reason})
    page = response.get_data(as_text=True)
    assert "<img src=x" not in page and "<script>alert" not in page
    # The literal braces prove nothing evaluated them; "49" alone would also
    # match signed tokens and times elsewhere on the page.
    assert "&lt;img src=x onerror=alert(1)&gt; {{7*7}}" in page
    assert "&gt; 49" not in page
    [mail] = mails_to(smtp, "toru.iijima@kek.example", "not approved")
    html_part = mail.get_body(preferencelist=("html",)).get_content()
    assert "<img src=x" not in html_part and "&lt;img src=x onerror=alert(1)&gt;" in html_part
    assert "{{7*7}}" in mail.get_body(preferencelist=("plain",)).get_content()


@pytest.mark.parametrize("name", ["<img src=x onerror=alert(1)>", "{{7*7}}",
                                  "Toru\r\nBcc: x@evil.example"])
def test_markup_in_names_is_refused_on_the_field(client, root, name):
    response = post_registration(client, given_name=name)
    assert response.status_code == 200
    assert form_errors(response.get_data(as_text=True))
    assert read_entry(root, f"uid=tiijima,{REQUESTS}") is None


# -- CSRF and GET safety ---------------------------------------------------------------------

def _post_endpoints(app) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods:
            paths.append(re.sub(r"<[^>]+>", "x" * 40, rule.rule))
    return sorted(paths)


def test_every_post_needs_a_valid_csrf_token(app, client, root, register_and_verify):
    review = register_and_verify()
    before = directory_state(root)
    other = app.test_client()
    foreign = csrf_token(other.get("/register").get_data(as_text=True))
    client.get("/register")
    paths = _post_endpoints(app) + [review]
    assert "/register" in paths and "/logout" in paths and "/account/password" in paths
    for path in paths:
        for data in ({}, {"csrf_token": foreign}, {"csrf_token": "forged"}):
            response = client.post(path, data={**data, "decision": "approve",
                                               "account_name": "irkek", "password": "x"})
            assert response.status_code == 400, (path, data, response.status_code)
    assert directory_state(root) == before


def test_opening_links_changes_and_consumes_nothing(app, client, root, smtp, register_and_verify):
    review = register_and_verify()
    verify = [m for m in smtp.messages if "confirm your e-mail" in m["Subject"]][0]
    paths = [review, local_path(links_in(verify)[0])]
    before = directory_state(root)
    scanner = app.test_client()  # no cookies
    for path in paths:
        for method in ("GET", "HEAD", "GET"):
            response = scanner.open(path, method=method,
                                    headers={"User-Agent": "Mozilla/5.0 (compatible; SafeLinks)"})
            assert response.status_code == 200
    assert directory_state(root) == before
    html = client.get(review).get_data(as_text=True)  # still usable
    client.post(review, data={"csrf_token": csrf_token(html), "decision": "approve"})
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is not None


def test_security_headers_on_pages_and_errors(client):
    for path in ("/", "/register", "/login", "/review/nonsense", "/no-such-page"):
        response = client.get(path)
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_escaped_non_ascii_values_still_match(app, root):
    """The gateway's escaping finds what it should (UTF-8 bytes escaped)."""
    assert root.add(f"uid=jose,{PEOPLE}", ["inetOrgPerson"], {
        "uid": "jose", "cn": "José Núñez", "sn": "Núñez", "mail": "jose.nunez@lab.example"})
    directory = app.extensions["portal"].directory
    assert directory.person_by_login("JOSE.NUNEZ@lab.example").display_name == "José Núñez"
    records = directory.earlier_records(emails=["jose.nunez@lab.example"])
    assert [r.account_name for r in records] == ["jose"]


def test_the_service_account_cannot_change_the_directory_configuration(slapd):
    service = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE),
                               slapd.settings.service_dn, slapd.settings.service_password,
                               auto_bind=True)
    service.search("cn=config", "(objectClass=*)", ldap3.BASE)
    assert not service.entries
    assert not service.modify("cn=config", {"olcLogLevel": [(ldap3.MODIFY_REPLACE, ["any"])]})
    service.unbind()


def test_production_settings_send_hsts_and_secure_cookies(slapd, smtp, ratestore):
    production = create_app(portal_environment(
        slapd, smtp, PORTAL_ENV="production", PORTAL_BASE_URL="https://members.example.org",
        PORTAL_SECRET_KEY="p" * 48, PORTAL_RATELIMIT_STORAGE_URI=ratestore.uri(3),
        PORTAL_MAIL_DELIVERY="outbox"))
    client = production.test_client()
    for path in ("/", "/login", "/no-such-page"):
        response = client.get(path)
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # The form's CSRF token lives in the session: its cookie is set here.
    cookie = production.test_client().get("/login").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert not production.debug


def test_members_cannot_read_each_others_private_attributes(member, slapd):
    irkek = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE),
                             f"uid=irkek,{PEOPLE}", "Demo-representative-2026", auto_bind=True)
    irkek.search(f"uid=tiijima,{PEOPLE}", "(objectClass=*)", ldap3.BASE,
                 attributes=["cn", "mail", "portalAuditEvent", "portalContactMail",
                             "portalSessionEpoch"])
    attributes = irkek.response[0]["attributes"]
    assert attributes["cn"] and attributes["mail"]
    assert not attributes.get("portalAuditEvent") and not attributes.get("portalContactMail")
    irkek.search(f"uid=irkek,{PEOPLE}", "(objectClass=*)", ldap3.BASE,
                 attributes=["portalContactMail"])
    # One's own neither: the portal shows it ("My account"); no service needs it.
    assert not irkek.response[0]["attributes"]["portalContactMail"]
