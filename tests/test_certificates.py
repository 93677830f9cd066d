"""The Grid-certificate route through a real nginx (config/nginx/portal.conf)
in front of gunicorn: register with a certificate, confirm, the IR approves
(the members list marks the request), the member carries subject and issuer
and logs in with the certificate; a renewed certificate is added and the old
one removed in "My account". Refused: no certificate, an untrusted one, an
expired one, forged X-SSL-Client-* headers (to nginx, and straight to
gunicorn from an address that is not a trusted proxy)."""
from __future__ import annotations

import json
import re

import pytest

from app import create_app
from app.directory import Certificate
from app.services.certificates import parse_dn, prefill
from helpers import (
    NEW_PASSWORD,
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    csrf_token,
    fill_registration,
    links_in,
    portal_environment,
    read_entry,
    send_registration,
    valid_form,
    wait_for_mail,
    wait_until,
)

FORGED = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": "CN=Toru Iijima,O=KEK,C=JP",
          "X-SSL-Client-I-DN": "CN=Test Grid CA,O=Test Grid,C=JP"}


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _register(client, **changes):
    page = client.get("/register/certificate")
    assert page.status == 200, page.text[:500]
    return page, client.post("/register/certificate", {
        "csrf_token": csrf_token(page.text), **valid_form(**changes)})


def _confirm(client, smtp, email: str, before: int) -> None:
    mail = wait_until(lambda: [m for m in smtp.messages[before:] if email in str(m["To"])],
                      10, "no confirmation mail")[-1]
    verify = _path(links_in(mail)[0])
    page = client.get(verify)
    assert client.post(verify, {"csrf_token": csrf_token(page.text)}).status == 200


def _approve(client, smtp, before: int) -> str:
    review = _path(links_in(wait_for_mail(smtp, "membership request from", before, 10))[0])
    page = client.get(review)
    assert page.status == 200
    answer = client.post(review, {"csrf_token": csrf_token(page.text), "decision": "approve",
                                  "reason": ""})
    assert answer.status == 200 and "was created" in answer.text, answer.text[:800]
    return page.text


def _stored(root, account: str) -> set[Certificate]:
    entry = read_entry(root, f"uid={account},{PEOPLE}", ("portalCertificate",))
    return {Certificate(**json.loads(v)) for v in entry.portalCertificate.values}


def test_a_valid_certificate_registers_logs_in_and_is_renewed(tls_portal, grid, smtp, root,
                                                               members_list, tmp_path):
    valid, renewed = grid.valid, grid.renewed
    result = members_list(
        "email,given,family,institution,certificate\n"
        f'toru.iijima@kek.example,Toru,Iijima,kek,"{valid.subject}"\n', tmp_path)
    assert result.exit_code == 0 and "1 member(s)" in result.output
    client = tls_portal.client(valid)
    before = len(smtp.messages)
    page, answer = _register(client)
    # Prefilled from the CN "Toru Iijima 4711": digits left out, the order explained.
    assert 'value="Toru"' in page.text and 'value="Iijima"' in page.text
    assert "4711" not in re.sub(r"<code>.*?</code>", "", page.text)
    assert "Please check the order" in page.text
    assert answer.status == 302, answer.text[:800]
    request = read_entry(root, f"uid=tiijima,{REQUESTS}", ("portalCertificate",
                                                           "portalCertSubject"))
    assert request.portalCertSubject.value == valid.subject
    assert Certificate(**json.loads(request.portalCertificate.value)) == \
        Certificate(valid.subject, valid.issuer)
    _confirm(client, smtp, "toru.iijima@kek.example", before)
    ir = tls_portal.client()  # the IR opens the link without a certificate
    review = _approve(ir, smtp, before)
    assert 'id="members-list"' in review and "the address and the certificate" in review
    assert valid.subject in review and valid.issuer in review
    assert _stored(root, "tiijima") == {Certificate(valid.subject, valid.issuer)}

    # Certificate login: the button only with a verified certificate.
    assert "certificate-login" not in tls_portal.client().get("/login").text
    member = tls_portal.client(valid)
    login_page = member.get("/login")
    assert "certificate-login" in login_page.text
    answer = member.post("/login/certificate", {"csrf_token": csrf_token(login_page.text)})
    # The initial password is still to be replaced, as after a password login.
    assert answer.status == 302 and answer.location.endswith("/account/password")
    page = member.get("/account/password")
    assert page.status == 200
    changed = member.post("/account/password", {
        "csrf_token": csrf_token(page.text), "current_password": STRONG_PASSWORD,
        "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert changed.status == 302, changed.text[:500]
    assert member.get("/account").status == 200

    # The same subject from another (trusted) CA is another certificate.
    second = tls_portal.client(renewed)
    page = second.get("/login")
    refused = second.post("/login/certificate", {"csrf_token": csrf_token(page.text)})
    assert refused.location.endswith("/login")
    assert second.get("/account").status == 302
    # Add it in "My account" (logged in with the old one) while presenting it.
    page = second.get("/login")
    _password_login(second, page.text)
    overview = second.get("/account").text
    assert "Add this certificate to my account" in overview
    added = second.post("/account/certificates/add", {"csrf_token": csrf_token(overview)})
    assert added.status == 302
    assert _stored(root, "tiijima") == {Certificate(valid.subject, valid.issuer),
                                        Certificate(renewed.subject, renewed.issuer)}
    # Remove the old one: a POST with CSRF (without the token: 400, nothing changes).
    form = {"subject": valid.subject, "issuer": valid.issuer}
    assert second.post("/account/certificates/remove", form).status == 400
    overview = second.get("/account").text
    assert second.post("/account/certificates/remove",
                       {"csrf_token": csrf_token(overview), **form}).status == 302
    assert _stored(root, "tiijima") == {Certificate(renewed.subject, renewed.issuer)}
    old = tls_portal.client(valid)
    page = old.get("/login")
    assert old.post("/login/certificate",
                    {"csrf_token": csrf_token(page.text)}).location.endswith("/login")
    again = tls_portal.client(renewed)
    page = again.get("/login")
    assert again.post("/login/certificate", {"csrf_token": csrf_token(page.text)}
                      ).location.endswith("/account")


def _password_login(client, html: str) -> None:
    answer = client.post("/login", {"csrf_token": csrf_token(html), "account_name": "tiijima",
                                    "password": NEW_PASSWORD})
    assert answer.status == 302, answer.text[:500]


@pytest.mark.parametrize("which", ["none", "untrusted", "expired"])
def test_no_untrusted_or_expired_certificate_is_refused(tls_portal, grid, root, which):
    cert = {"none": None, "untrusted": grid.untrusted, "expired": grid.expired}[which]
    client = tls_portal.client(cert)
    page = client.get("/register/certificate")
    assert page.status == 403
    assert "SSL_ERROR_HANDSHAKE_FAILURE_ALERT" in page.text
    expected = "did not present" if which == "none" else "could not be verified"
    assert expected in page.text
    assert "certificate-login" not in client.get("/login").text
    # A POST gets nowhere either (and the password-login page still works).
    answer = client.post("/register/certificate", valid_form())
    assert answer.status in (400, 403)
    root.search(REQUESTS, "(uid=tiijima)", attributes=["uid"])
    assert not root.entries
    assert client.get("/login").status == 200


@pytest.mark.parametrize("cert", [None, "untrusted"])
def test_forged_headers_sent_to_nginx_are_overwritten(tls_portal, grid, cert):
    client = tls_portal.client(grid.untrusted if cert else None)
    page = client.get("/register/certificate", headers=FORGED)
    assert page.status == 403 and "Toru" not in page.text
    assert "certificate-login" not in client.get("/login", headers=FORGED).text


def test_forged_headers_straight_to_gunicorn_count_only_from_a_trusted_proxy(tls_portal):
    untrusted = plain(tls_portal, "127.0.0.2")
    assert untrusted.status == 403 and "did not present" in untrusted.text
    # The control: the same request from the trusted proxy's address is believed.
    trusted = plain(tls_portal, "127.0.0.1")
    assert trusted.status == 200 and 'value="Toru"' in trusted.text


def plain(tls_portal, source: str):
    from fixtures.tls import plain_request
    return plain_request(tls_portal.gunicorn.url, "/register/certificate", FORGED, source)


@pytest.mark.parametrize("verify, status", [("SUCCESS", 200), ("FAILED:certificate has expired",
                                                               403), ("NONE", 403), ("", 403)])
def test_only_a_successful_verification_is_a_certificate(slapd, smtp, verify, status):
    behind_proxy = create_app(portal_environment(slapd, smtp, PORTAL_TRUSTED_PROXIES="127.0.0.1"))
    page = behind_proxy.test_client().get("/register/certificate", headers={
        **FORGED, "X-SSL-Client-Verify": verify})
    assert page.status_code == status


# -- the names in a certificate ------------------------------------------------------------

@pytest.mark.parametrize("subject, given, middle, family, email", [
    ("CN=Toru Iijima 4711,OU=CRC,O=KEK,C=JP", "Toru", "", "Iijima", ""),
    ("CN=toru.iijima@kek.jp TORU IIJIMA,O=KEK", "Toru", "", "Iijima", "toru.iijima@kek.jp"),
    ("CN=Iijima\\, Toru,emailAddress=toru@kek.jp,O=KEK", "Toru", "", "Iijima", "toru@kek.jp"),
    ("CN=Jos\\C3\\A9 Mar\\C3\\ADa de la Cruz (CERN)+UID=jcruz,O=CERN", "José", "María",
     "de la Cruz", ""),
    ("1.2.840.113549.1.9.1=anna@desy.example,CN=Anna Schmidt,O=DESY", "Anna", "", "Schmidt",
     "anna@desy.example"),
    ("CN=12345,O=Robot", "", "", "", ""),
])
def test_names_from_the_certificate_are_sanitised(subject, given, middle, family, email):
    start = prefill(Certificate(subject, "CN=CA"))
    assert (start.given_name, start.middle_name, start.family_name, start.email) == \
        (given, middle, family, email)


def test_rfc2253_escapes_are_undone():
    assert parse_dn("CN=a\\,b\\+c,O=x\\22y") == [("CN", "a,b+c"), ("O", 'x"y')]


# -- PORTAL_TRUSTED_PROXIES ------------------------------------------------------------------

def test_trusted_proxies_are_addresses_or_networks(slapd, smtp):
    import ipaddress

    from app.settings import SettingsError, load_settings
    settings = load_settings(portal_environment(
        slapd, smtp, PORTAL_TRUSTED_PROXIES="10.0.0.0/24, 127.0.0.1"))
    assert settings.trusted_proxies == 1
    assert ipaddress.ip_network("10.0.0.0/24") in settings.trusted_proxy_networks
    assert load_settings(portal_environment(slapd, smtp)).trusted_proxy_networks == ()
    with pytest.raises(SettingsError) as refused:
        load_settings(portal_environment(slapd, smtp, PORTAL_TRUSTED_PROXIES="proxy.example"))
    assert "PORTAL_TRUSTED_PROXIES" in str(refused.value)


# -- one Chromium journey through nginx, presenting the client certificate -------------------

def test_certificate_journey_in_chromium_through_nginx(browser, tls_portal, grid, smtp, root):
    from playwright.sync_api import expect

    from fixtures.browser import TIMEOUT_MS
    from helpers import assert_accessible

    def context(cert=None):
        options = {"base_url": tls_portal.url, "ignore_https_errors": True,
                   "viewport": {"width": 1000, "height": 800}}
        if cert is not None:
            # Playwright presents it in the TLS handshake with nginx.
            options["client_certificates"] = [{"origin": tls_portal.url,
                                               "certPath": str(cert.cert),
                                               "keyPath": str(cert.key)}]
        made = browser.new_context(**options)
        made.set_default_timeout(TIMEOUT_MS)
        return made

    def local(mail) -> str:
        return tls_portal.url + _path(links_in(mail)[0])

    anonymous = context()
    page = anonymous.new_page()
    assert page.goto("/register/certificate").status == 403
    expect(page.locator("#certificate-missing")).to_contain_text("did not present")
    expect(page.locator("#handshake-failure")).to_have_text("SSL_ERROR_HANDSHAKE_FAILURE_ALERT")
    assert_accessible(page, "certificate route without a certificate")
    anonymous.close()

    holder = context(grid.valid)
    page = holder.new_page()
    before = len(smtp.messages)
    assert page.goto("/register/certificate").ok
    expect(page.locator("#certificate-prefill")).to_contain_text("Toru Iijima 4711")
    expect(page.locator("#given_name")).to_have_value("Toru")
    expect(page.locator("#family_name")).to_have_value("Iijima")
    assert_accessible(page, "registration form prefilled from the certificate")
    fill_registration(page, given_name=None, family_name=None)  # as the certificate says
    send_registration(page)
    assert page.url.endswith("/register/created"), page.url
    confirm = wait_until(lambda: mails_for(smtp, "toru.iijima@kek.example", before), 10,
                         "no confirmation mail")[-1]
    assert page.goto(local(confirm)).ok
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm my address").click()
    review = wait_for_mail(smtp, "membership request from", before, 10)
    assert page.goto(local(review)).ok
    expect(page.locator("#request-certificate")).to_contain_text(grid.valid.subject)
    assert_accessible(page, "review page of a certificate registration")
    with page.expect_navigation():
        page.get_by_role("button", name="Approve").click()
    expect(page.locator("h1")).to_have_text("Approved")
    assert _stored(root, "tiijima") == {Certificate(grid.valid.subject, grid.valid.issuer)}

    assert page.goto("/login").ok
    expect(page.locator("#certificate-login")).to_contain_text(grid.valid.subject)
    assert_accessible(page, "login page with a certificate")
    with page.expect_navigation():
        page.get_by_role("button", name="Log in with this certificate").click()
    assert page.url.endswith("/account/password"), page.url
    holder.close()


def mails_for(smtp, address: str, before: int) -> list:
    return [m for m in smtp.messages[before:] if address in str(m["To"])]


def test_the_dev_stack_makes_a_ca_a_server_and_a_demo_client_certificate(tmp_path,
                                                                          monkeypatch):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    import app.devstack.__main__ as devstack
    monkeypatch.setattr(devstack, "TLS_DIR", tmp_path / "tls")
    paths = devstack.dev_certificates()
    key, cert, _ = pkcs12.load_key_and_certificates(
        paths["client_p12"].read_bytes(), devstack.DEMO_P12_PASSWORD.encode())
    ca = x509.load_pem_x509_certificate(paths["ca"].read_bytes())
    assert key is not None and cert.issuer == ca.subject
    assert "Erika Mustermann" in cert.subject.rfc4514_string()
    assert oct(paths["client_key"].stat().st_mode & 0o777) == "0o600"
    # Made once: a second start keeps them.
    assert devstack.dev_certificates()["ca"].read_bytes() == paths["ca"].read_bytes()
