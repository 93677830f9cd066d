"""The pages added with the consoles in German and Japanese, with no English
left in their visible text: the helpdesk's (search, person, request,
institutions, paper route), the invitations (console, preview, sent, the
invited form), the Grid certificate pages; the vocabulary shown in words
(one label map for both consoles) and the collaboration file's labels in the
reader's language."""
from __future__ import annotations

import re

import pytest
from flask_babel import force_locale

from app import create_app
from app.devstack.slapd import DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD
from app.vocabulary import MemberStatus, RequestKind, RequestStatus
from helpers import csrf_token, decide, portal_environment, valid_form
from test_helpdesk import MULLER, demo_accounts_restored, logged_in  # noqa: F401 (autouse)
from test_invitations import INVITEE, invitation_link, invite, preview
from test_invitations import logged_in as ir_logged_in
from test_languages import assert_no_english, heading, translator

KEK = "High Energy Accelerator Research Organization (KEK)"
DESY = "Deutsches Elektronen-Synchrotron (DESY)"
INFN = "Istituto Nazionale di Fisica Nucleare (INFN)"
# Directory data shown as it is: names, institutions, account names, addresses.
# What nginx sends for a verified Grid certificate.
CERTIFICATE = {"X-SSL-Client-Verify": "SUCCESS",
               "X-SSL-Client-S-DN": "CN=Toru Iijima,O=KEK,C=JP",
               "X-SSL-Client-I-DN": "CN=Test Grid CA,O=Test Grid,C=JP"}
DATA = (KEK, DESY, INFN, "Jürgen Müller", "Jürgen", "Müller", "jmuller", "Toru Iijima",
        "Toru Sato", "Toru", "Iijima", "tiijima", "irkek", "irdesy", "irinfn", "KEK", "DESY",
        "INFN", "Anna Schmidt", "flask requests remind", "Helpdesk", "CSV", "LDIF", "Mueller",
        "Muller",
        # Browsers, systems and a browser's error code, on the certificate pages.
        "Firefox", "Chrome", "Edge", "Windows", "macOS", "PKCS",
        "SSL_ERROR_HANDSHAKE_FAILURE_ALERT")


def without_data(page: str) -> str:
    """The page without directory data: the LDIF blocks, the history's
    reasons and actors, addresses, then the names above."""
    page = re.sub(r'<pre class="ldif".*?</pre>', " ", page, flags=re.S)
    page = re.sub(r"<code>.*?</code>", " ", page, flags=re.S)
    page = re.sub(r"[\w.+-]+@[\w.-]+", " ", page)
    for value in DATA:
        page = page.replace(value, " ")
    page = re.sub(r"\bdesy\b|\.p12\b|\.pfx\b", " ", page)  # an example id, file types
    return re.sub(r"\b[Ww]as\b", " ", page)  # German for "what"


@pytest.fixture
def helpdesk(app):
    return logged_in(app, DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD)


@pytest.mark.parametrize("lang", ["de", "ja"])
def test_helpdesk_pages_in_german_and_japanese(app, client, helpdesk, register_and_verify,
                                               lang):
    t = translator(lang)
    decide(client, register_and_verify(**MULLER))
    register_and_verify()  # tiijima waits for approval
    helpdesk.set_cookie("lang", lang)
    pages = {
        "/helpdesk": t.gettext("Helpdesk"),
        "/helpdesk?q=tiijima": t.gettext("Helpdesk"),
        "/helpdesk?q=mueller": t.gettext("Helpdesk"),
        "/helpdesk/people/jmuller": "Jürgen Müller",
        "/helpdesk/requests/tiijima": t.gettext("Request %(id)s") % {"id": "tiijima"},
        "/helpdesk/institutions": t.gettext("Institutions"),
        "/helpdesk/institutions/kek": KEK,
        "/helpdesk/requests/new": None,
    }
    for path, title in pages.items():
        response = helpdesk.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and f'<html lang="{lang}">' in page, path
        if title:
            assert heading(page) == title, path
        assert_no_english(without_data(page), lang)
    institutions = helpdesk.get("/helpdesk/institutions").get_data(as_text=True)
    assert {"de": "Japan", "ja": "日本"}[lang] in institutions  # countries by name
    # The vocabulary in words, the institution by its name.
    search = helpdesk.get("/helpdesk?q=tiijima").get_data(as_text=True)
    assert t.gettext("registration") in search and t.gettext("waiting for approval") in search
    assert ">pending-approval<" not in search and ">registration<" not in search
    search = helpdesk.get("/helpdesk?q=mueller").get_data(as_text=True)
    assert t.gettext("active") in search and DESY in search and ">desy<" not in search
    person = helpdesk.get("/helpdesk/people/jmuller").get_data(as_text=True)
    assert "cn=" not in person.split('id="ldif"')[0]  # groups by name, not DN
    assert t.gettext("main group (all members)") in person
    # Dates, the history's too, are written the language's way, not as ISO text.
    history = person.split('id="history"')[1].split("</table>")[0]
    assert not re.search(r"\d{4}-\d\d-\d\d", history)
    assert ("年" in history) == (lang == "ja") and "UTC" in history


@pytest.mark.parametrize("lang", ["de", "ja"])
def test_invitation_pages_in_german_and_japanese(app, smtp, lang):
    t = translator(lang)
    ir = ir_logged_in(app, "irkek")
    ir.set_cookie("lang", lang)
    page = ir.get("/invitations").get_data(as_text=True)
    assert f'<html lang="{lang}">' in page and heading(page) == t.gettext("Invitations")
    assert_no_english(without_data(page), lang)
    shown = preview(ir, f"{INVITEE}\nx@gmail.com").get_data(as_text=True)
    assert_no_english(without_data(shown), lang)
    sent = invite(ir, INVITEE).get_data(as_text=True)
    assert_no_english(without_data(sent), lang)
    page = ir.get("/invitations").get_data(as_text=True)
    assert_no_english(without_data(page), lang)
    invitee = app.test_client()
    invitee.set_cookie("lang", lang)
    path = invitation_link(smtp)
    form = invitee.get(path).get_data(as_text=True)
    assert f'<html lang="{lang}">' in form
    assert_no_english(without_data(form), lang)
    response = invitee.post(path, data={"csrf_token": csrf_token(form), **valid_form()},
                            follow_redirects=True)
    assert_no_english(without_data(response.get_data(as_text=True)), lang)
    again = invitee.get(path).get_data(as_text=True)
    assert_no_english(without_data(again), lang)


@pytest.fixture
def behind_nginx(slapd, smtp, root):
    """The portal as nginx's trusted peer: the test client's address
    (127.0.0.1) may send the client-certificate headers."""
    return create_app(portal_environment(slapd, smtp, PORTAL_TRUSTED_PROXIES="127.0.0.1"))


@pytest.mark.parametrize("lang", ["de", "ja"])
def test_certificate_pages_in_german_and_japanese(client, behind_nginx, lang):
    client.set_cookie("lang", lang)
    response = client.get("/register/certificate")
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and f'<html lang="{lang}">' in page
    assert_no_english(without_data(page), lang)
    page = client.get("/login").get_data(as_text=True)
    assert_no_english(without_data(page), lang)
    proxied = behind_nginx.test_client()
    proxied.set_cookie("lang", lang)
    response = proxied.get("/register/certificate", headers=CERTIFICATE)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and f'<html lang="{lang}">' in page
    assert_no_english(without_data(page.replace("Grid", "")), lang)


# -- the vocabulary in words -------------------------------------------------------------------

def test_every_status_and_kind_has_words_in_every_language(app):
    from app.web.labels import member_status_label, request_kind_label, request_status_label
    with app.test_request_context("/"):
        for lang in ("en", "de", "ja"):
            with force_locale(lang):
                shown = [member_status_label(s) for s in MemberStatus] + \
                    [request_status_label(s) for s in RequestStatus] + \
                    [request_kind_label(k) for k in RequestKind]
            assert all(shown) and len(set(shown)) == len(shown), (lang, shown)
            if lang == "en":
                english = shown
            else:
                assert not set(english) & set(shown), (lang, set(english) & set(shown))


def test_the_known_person_mail_names_statuses_in_words(app):
    from test_languages import mail_context
    mailer = app.extensions["portal"].mailer
    with app.test_request_context("/"):
        for lang in ("en", "de", "ja"):
            t = translator(lang)
            message = mailer.compose("known_person", ["x@example.org"], lang,
                                     **mail_context(RequestKind.REGISTRATION, 14))
            for part in (message.body, message.html):
                assert "pending-approval" not in part, lang
                assert f"({t.gettext('waiting for approval')})" in part, lang
                assert f"({t.gettext('active')})" in part, lang
