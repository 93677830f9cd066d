"""Languages: complete catalogs, placeholders kept, pages and mails in the
reader's language (cookie, Accept-Language, preferredLanguage)."""
from __future__ import annotations

import html as htmllib
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ldap3
import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from babel.support import Translations
from flask_babel import force_locale

from app.directory import EarlierRecord, Institution, Person, RequestRecord
from app.settings import SettingsError, load_settings
from app.vocabulary import RequestKind
from helpers import (
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    csrf_token,
    form_errors,
    links_in,
    local_path,
    mails_to,
    post_registration,
    read_entry,
    valid_form,
)

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "translations"
# Every catalog in translations/ is checked; de and ja are the shipped ones.
SHIPPED = tuple(sorted(p.parent.parent.name
                       for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")))
PLURAL_FORMS = {"de": 2, "ja": 1}
PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[sd]|\{\{\s*(\w+)\s*\}\}")
assert {"de", "ja"} <= set(SHIPPED)
TAG_RE = re.compile(r"</?\w+")
IR_DN = f"uid=irkek,{PEOPLE}"
KEK = "High Energy Accelerator Research Organization (KEK)"  # the demo directory's name
CONTACT = "toru.iijima@kek.example"


def catalog(lang: str):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=lang)


def translator(lang: str) -> Translations:
    return Translations.load(str(TRANSLATIONS), [lang])


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER_RE.findall(text)}


def fresh_extraction() -> set:
    with open(ROOT / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, str(ROOT / "babel.cfg"))
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    return {message for _, _, message, *_ in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords)}


# -- the catalogs --------------------------------------------------------------------------

@pytest.mark.parametrize("lang", SHIPPED)
def test_every_message_is_translated_and_none_is_fuzzy(lang):
    shipped = catalog(lang)
    expected = PLURAL_FORMS.get(lang, get_plural(lang).num_plurals)
    assert shipped.num_plurals == expected
    problems = []
    for message in shipped:
        if not message.id:
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.pluralizable and len(forms) != shipped.num_plurals:
            problems.append(f"{len(forms)} plural forms: {message.id!r}")
        if not all(f and f.strip() for f in forms):
            problems.append(f"untranslated: {message.id!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", SHIPPED)
def test_no_message_is_defined_twice(lang):
    """Catalogs merge as a union of branches: the same msgid added twice
    must fail here (msgfmt refuses such a file; Babel keeps one silently)."""
    text = (ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po").read_text("utf-8")
    ids = []
    for block in re.split(r"\n\s*\n", text):
        match = re.search(r'^msgid ((?:".*"\n?)+)', block, re.M)
        if match:
            ids.append("".join(re.findall(r'"(.*)"', match.group(1))))
    twice = sorted({i for i in ids if i and ids.count(i) > 1})
    assert not twice, twice


def test_a_fresh_extraction_finds_no_string_missing_from_the_catalogs():
    """A new or changed string fails here until 'make messages' and a translation."""
    extracted = fresh_extraction()
    assert len(extracted) > 300
    for lang in SHIPPED:
        ids = {m.id for m in catalog(lang) if m.id}
        missing = {m if isinstance(m, str) else m[0] for m in extracted} - \
            {i if isinstance(i, str) else i[0] for i in ids}
        assert not missing, f"{lang}: not in the catalog: {sorted(missing)}"


@pytest.mark.parametrize("lang", SHIPPED)
def test_placeholders_and_markup_survive_translation(lang):
    problems = []
    for message in catalog(lang):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set().union(*(placeholders(i) for i in ids))
        tags = sorted(TAG_RE.findall(ids[-1]))
        for form in forms:
            if placeholders(form) != wanted:
                problems.append(f"{ids[0]!r}: {sorted(placeholders(form))} != {sorted(wanted)}")
            if sorted(TAG_RE.findall(form)) != tags:
                problems.append(f"{ids[0]!r}: markup {TAG_RE.findall(form)} != {tags}")
    assert not problems, "\n".join(problems)


# -- every mail template in every language ---------------------------------------------------

NOW = datetime(2026, 3, 7, 14, 5, tzinfo=timezone.utc)
SAMPLE_PERSON = Person(
    dn=f"uid=tsample,{PEOPLE}", account_name="tsample", given_name="Toru", middle_name="",
    family_name="Sample", display_name="Toru Sample", mail="toru.sample@example.org",
    contact_mail="toru.sample@kek.example", institution="kek", category="phd-student",
    status="active", member_since=NOW, initial_password_deadline=NOW + timedelta(days=7),
    uid_number=10001, groups=())
SAMPLE_IR = Person(
    dn=IR_DN, account_name="irkek", given_name="Ren", middle_name="", family_name="Sato",
    display_name="Ren Sato", mail="ren.sato@example.org", contact_mail="ren.sato@kek.example",
    institution="kek", category="physicist-permanent", status="active", member_since=NOW,
    initial_password_deadline=None, uid_number=10000, groups=())
SAMPLE_INSTITUTION = Institution("kek", "KEK", "JP", (IR_DN,))
SAMPLE_TARGET = Institution("desy", "DESY", "DE", ())


def sample_request(kind: str) -> RequestRecord:
    return RequestRecord(
        dn=f"uid=tsample,{REQUESTS}", id="tsample", account_name="tsample",
        status="pending-approval", given_name="Toru", middle_name="", family_name="Sample",
        contact_mail="toru.sample@kek.example", institution="kek", category="phd-student",
        collab_mail="toru.sample@example.org", conditions_version="1", submitted_at=NOW,
        submitted_from="192.0.2.1", decided_by="Ren Sato (irkek)", decided_at=NOW,
        decision_reason="", completed_at=None, kind=kind, target_group="naf")


def mail_context(kind: str, days: int) -> dict:
    return dict(
        request=sample_request(kind), person=SAMPLE_PERSON, representative=SAMPLE_IR,
        institution=SAMPLE_INSTITUTION, target=SAMPLE_TARGET, link="http://portal.test/l/x",
        reset_link="http://portal.test/password/reset",
        reactivate_link="http://portal.test/reactivate", max_age_days=days, deadline=NOW,
        initial_password_days=days, reason="Zzreason", when=NOW, expires=NOW,
        days_left=days, minutes=60, group="NAF", category="PhD student",
        stage_label="IB", records=[
            EarlierRecord(dn=SAMPLE_PERSON.dn, is_person=True, account_name="tsample",
                          institution="kek", contact_mail="toru.sample@kek.example", mail="",
                          name_keys=(), status="active"),
            EarlierRecord(dn=f"uid=tsample,{REQUESTS}", is_person=False, account_name="tsample",
                          institution="kek", contact_mail="toru.sample@kek.example", mail="",
                          name_keys=(), status="pending-approval")])


MAIL_TEMPLATES = sorted(p.stem for p in (ROOT / "templates" / "mail").glob("*.txt"))


@pytest.mark.parametrize("template", MAIL_TEMPLATES)
def test_every_mail_renders_in_every_language(app, template):
    mailer = app.extensions["portal"].mailer
    with app.test_request_context("/"):
        for kind in RequestKind:
            for days in (1, 14):
                english = mailer.compose(template, ["x@example.org"], "en",
                                         **mail_context(kind, days))
                for lang in ("en",) + SHIPPED:
                    message = mailer.compose(template, ["x@example.org"], lang,
                                             **mail_context(kind, days))
                    for part in (message.subject, message.body, message.html):
                        assert part.strip()
                        assert "%(" not in part and "{{" not in part and "{%" not in part, \
                            (lang, kind, part)
                    assert f'<html lang="{lang}">' in message.html
                    assert "Example Collaboration" in message.subject + message.body
                    if lang != "en":
                        assert message.subject != english.subject, (lang, message.subject)
                        assert message.body != english.body


# -- page templates rendered with sample values ------------------------------------------------

SAMPLE_PAGES = [
    ("index.html", {}),
    ("error.html", {"code": 404, "title": "T", "message": "M"}),
    ("link_problem.html", {"problem": "expired"}),
    ("link_problem.html", {"problem": "invalid"}),
    ("link_problem.html", {"problem": "not-authorised"}),
    ("account/reset_sent.html", {"minutes": 60}),
    ("account/reset_done.html", {"person": SAMPLE_PERSON}),
    ("link_problem.html", {"problem": "used"}),
    ("registration/verified.html", {"application": sample_request(RequestKind.REGISTRATION)}),
    ("registration/verified.html", {"application": sample_request(RequestKind.REGISTRATION),
                                    "again": True}),
    ("registration/created.html", {"account_name": "tsample", "email": "t@kek.example"}),
    ("reactivation/sent.html", {}),
    ("reactivation/submitted.html", {"application": sample_request(RequestKind.REACTIVATION)}),
]


@pytest.mark.parametrize("lang", SHIPPED)
def test_simple_pages_render_translated_with_their_values(app, lang):
    from flask import render_template
    with app.test_request_context("/"):
        for name, context in SAMPLE_PAGES:
            with force_locale("en"):
                english = render_template(name, **context)
            with force_locale(lang):
                page = render_template(name, **context)
            assert f'<html lang="{lang}">' in page, name
            assert "%(" not in page and page != english, name
            for value in ("tsample", "t@kek.example", "60"):
                assert (value in page) == (value in english), (name, value)


# -- pages in German and Japanese ----------------------------------------------------------------

# Not English for this test: names, addresses, codes, directory and config data.
ALLOWED_WORDS = {
    "example", "collaboration", "english", "deutsch", "utc", "ir", "smtp", "toru", "iijima",
    "sato", "kek", "org", "tiijima", "irkek", "name", "institute", "e", "mail", "helpdesk",
    "a", "z", "id", "version", "status", "link", "phd", "http", "portal", "test",
}
ENGLISH_WORDS = {"the", "and", "your", "you", "please", "account", "password", "with", "for",
                 "not", "this", "is", "of", "to", "are", "was", "will", "request", "membership",
                 "register", "log", "reset", "approve", "reject", "choose", "enter"}


def visible_text(page: str) -> str:
    """What a reader sees, without config/directory data (conditions text,
    select options, suggested account names) and without markup."""
    page = re.sub(r"<(script|style|select|title)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r'<div class="conditions".*?</div>', " ", page, flags=re.S)
    page = re.sub(r'<ul class="chips">.*?</ul>', " ", page, flags=re.S)  # account names
    page = re.sub(r'<legend>.*?</legend>', lambda m: re.sub(
        r"^<legend>[^<(]*", "<legend>", m.group(0)), page, flags=re.S)  # conditions title
    page = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", htmllib.unescape(page)).strip()


def assert_no_english(page: str, lang: str) -> None:
    text = visible_text(page)
    text = text.replace("Example Collaboration", "").replace("helpdesk@example.org", "")
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
    if lang == "ja":
        leftover = words - ALLOWED_WORDS
    else:
        leftover = words & ENGLISH_WORDS
    assert not leftover, f"English in the {lang} page: {sorted(leftover)}\n{text}"


def heading(page: str) -> str:
    return re.sub(r"\s+", " ", re.search(r"<h1>(.*?)</h1>", page, re.S).group(1)).strip()


def in_language(client, lang: str, how: str):
    if how == "cookie":
        client.set_cookie("lang", lang)
        return {}
    return {"headers": {"Accept-Language": f"{lang}-XX,{lang};q=0.9,en;q=0.5"}}


@pytest.mark.parametrize("lang,how", [("de", "cookie"), ("ja", "cookie"),
                                      ("de", "header"), ("ja", "header")])
def test_registration_page_and_its_errors(client, lang, how):
    t = translator(lang)
    extra = in_language(client, lang, how)
    page = client.get("/register", **extra).get_data(as_text=True)
    assert f'<html lang="{lang}">' in page
    assert heading(page) == t.gettext("Register for membership")
    assert_no_english(page, lang)
    response = client.post("/register", **extra, data={
        "csrf_token": csrf_token(page),
        **valid_form(password_confirm=STRONG_PASSWORD + "-typo", email="not-an-address")})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<html lang="{lang}">' in page
    errors = form_errors(page)
    assert t.gettext("The two passwords are not the same.") in errors
    assert t.gettext("Enter a complete e-mail address, like name@institute.org.") in errors
    assert t.gettext("Your registration was not sent yet. Please correct the fields marked "
                     "below.") in page
    assert_no_english(page.replace("not-an-address", ""), lang)


@pytest.mark.parametrize("lang", SHIPPED)
def test_login_and_reset_pages(client, lang):
    t = translator(lang)
    client.set_cookie("lang", lang)
    page = client.get("/login").get_data(as_text=True)
    assert f'<html lang="{lang}">' in page and heading(page) == t.gettext("Log in")
    assert_no_english(page, lang)
    response = client.post("/login", data={"csrf_token": csrf_token(page),
                                           "account_name": "nobody1", "password": "wrong"})
    page = response.get_data(as_text=True)
    assert t.gettext("The account name or password is not right.") in page
    assert_no_english(page.replace("nobody1", ""), lang)
    page = client.get("/password/reset").get_data(as_text=True)
    assert heading(page) == t.gettext("Reset your password")
    assert_no_english(page, lang)
    page = client.post("/password/reset", data={"csrf_token": csrf_token(page),
                                                "login": "irkek"},
                       follow_redirects=True).get_data(as_text=True)
    assert heading(page) == t.gettext("Check your mail")
    assert_no_english(page, lang)


@pytest.mark.parametrize("lang", SHIPPED)
def test_reset_form_from_the_mail(client, app, smtp, lang):
    t = translator(lang)
    with app.app_context():
        portal = app.extensions["portal"]
        portal.accounts.send_reset_link(portal.directory.person("irkek"))
    [mail] = [m for m in smtp.messages if "toru.sato@kek.example" in str(m["To"])]
    client.set_cookie("lang", lang)
    page = client.get(local_path(links_in(mail)[0])).get_data(as_text=True)
    assert f'<html lang="{lang}">' in page
    assert heading(page) == t.gettext("Choose a new password")
    assert_no_english(page, lang)


@pytest.mark.parametrize("lang", SHIPPED)
def test_review_page(client, register_and_verify, lang):
    t = translator(lang)
    review_path = register_and_verify()
    client.set_cookie("lang", lang)
    page = client.get(review_path).get_data(as_text=True)
    assert f'<html lang="{lang}">' in page
    assert heading(page) == t.gettext("Membership request for %(institution)s") % {
        "institution": KEK}
    for button in ("Approve", "Reject"):
        assert t.gettext(button) in page
    # The category label is the collaboration file's in this language.
    assert t.gettext("PhD student") == "PhD student" and "PhD student" not in page
    assert_no_english(page.replace(KEK, ""), lang)
    response = client.post(review_path, data={"csrf_token": csrf_token(page),
                                              "decision": "approve"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert heading(page) == t.gettext("Approved")
    assert_no_english(page, lang)


def test_unsupported_languages_fall_back_to_english(client):
    page = client.get("/register", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="en">' in page.get_data(as_text=True)
    client.set_cookie("lang", "xx")
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)


def test_the_switcher_sets_the_cookie_and_stays_on_the_site(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/language/ja?next=/login"' in page and ">日本語<" in page
    response = client.get("/language/ja?next=/login")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "lang=ja" in response.headers["Set-Cookie"]
    assert '<html lang="ja">' in client.get("/login").get_data(as_text=True)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example",
                   "javascript:alert(1)", "/x\r\nSet-Cookie: a=b", "login"):
        response = client.get("/language/de", query_string={"next": target})
        assert response.headers["Location"] == "/", target
    response = client.get("/language/fr?next=/login")
    assert "Set-Cookie" not in response.headers


def test_dates_follow_the_language(app):
    from app.web.i18n import format_when
    with app.test_request_context("/"):
        shown = {}
        for lang in ("en", "de", "ja"):
            with force_locale(lang):
                shown[lang] = format_when(NOW)
    assert shown == {"en": "Mar 7, 2026, 14:05 UTC", "de": "7. März 2026, 14:05 UTC",
                     "ja": "2026年3月7日 14:05 UTC"}


# -- mails in the recipient's language -----------------------------------------------------------

@pytest.fixture
def german_ir(slapd, root):
    """The KEK representative (irkek) reads German; undone afterwards."""
    from helpers import root_connection
    conn = root_connection(slapd)
    assert conn.modify(IR_DN, {"preferredLanguage": [(ldap3.MODIFY_REPLACE, ["de"])]})
    yield "irkek"
    conn = root_connection(slapd)
    conn.modify(IR_DN, {"preferredLanguage": [(ldap3.MODIFY_REPLACE, [])]})
    conn.unbind()


def test_applicant_and_representative_each_get_mails_in_their_language(
        client, smtp, root, german_ir):
    ja, de = translator("ja"), translator("de")
    client.set_cookie("lang", "ja")
    response = post_registration(client)
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))
    assert read_entry(root, f"uid=tiijima,{REQUESTS}").preferredLanguage.value == "ja"
    [verify] = mails_to(smtp, CONTACT)
    assert verify["Subject"] == ja.gettext(
        "%(collaboration)s: please confirm your e-mail address") % {
        "collaboration": "Example Collaboration"}
    # The applicant confirms from a browser that says English: the mails stay Japanese.
    client.set_cookie("lang", "en")
    verify_path = local_path(links_in(verify)[0])
    page = client.get(verify_path).get_data(as_text=True)
    client.post(verify_path, data={"csrf_token": csrf_token(page)})
    [review] = mails_to(smtp, "toru.sato@kek.example")
    assert review["Subject"] == de.gettext(
        "%(collaboration)s: membership request from %(name)s (%(institution)s)") % {
        "collaboration": "Example Collaboration", "name": "Toru Iijima", "institution": KEK}
    assert "Institutsvertretung" in review.get_body(("plain",)).get_content()
    review_path = local_path(links_in(review)[0])
    page = client.get(review_path).get_data(as_text=True)
    client.post(review_path, data={"csrf_token": csrf_token(page), "decision": "approve"})
    assert read_entry(root, f"uid=tiijima,{PEOPLE}").preferredLanguage.value == "ja"
    ready = mails_to(smtp, CONTACT)[-1]
    subject = ja.gettext("%(collaboration)s: your account %(account)s is ready")
    assert ready["Subject"] == subject % {"collaboration": "Example Collaboration",
                                          "account": "tiijima"}
    assert '<html lang="ja">' in ready.get_body(("html",)).get_content()


@pytest.fixture
def representative_restored(slapd, root):
    """irkek's language, conditions version and audit trail put back afterwards."""
    from helpers import root_connection
    kept = ("preferredLanguage", "portalConditionsVersion", "portalAuditEvent")
    before = read_entry(root, IR_DN, kept)
    yield
    conn = root_connection(slapd)
    conn.modify(IR_DN, {name: [(ldap3.MODIFY_REPLACE, list(before[name].values))]
                        for name in kept})
    conn.unbind()


def test_a_member_sets_the_language_in_my_account(client, smtp, root, representative_restored):
    from app.devstack.slapd import DEMO_IR_PASSWORD
    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"csrf_token": csrf_token(page), "account_name": "irkek",
                                "password": DEMO_IR_PASSWORD})
    page = client.get("/account", follow_redirects=True).get_data(as_text=True)
    if 'name="accept_conditions"' in page:
        client.post("/account/conditions", data={"csrf_token": csrf_token(page),
                                                 "accept_conditions": "y"})
    page = client.get("/account").get_data(as_text=True)
    assert 'action="/account/language"' in page
    # No CSRF token: refused, nothing stored.
    assert client.post("/account/language", data={"language": "de"}).status_code == 400
    assert not read_entry(root, IR_DN, ["preferredLanguage"]).preferredLanguage.values
    response = client.post("/account/language", data={"csrf_token": csrf_token(page),
                                                      "language": "de"})
    assert response.status_code == 302 and "lang=de" in response.headers["Set-Cookie"]
    entry = read_entry(root, IR_DN, ["preferredLanguage", "portalAuditEvent"])
    assert entry.preferredLanguage.value == "de"
    assert any('"member.language-changed"' in e and '"actor": "irkek"' in e
               for e in entry.portalAuditEvent.values)
    page = client.get("/account").get_data(as_text=True)
    assert '<html lang="de">' in page and "Ihre Sprache ist gespeichert" in page
    assert '<option value="de" lang="de" selected>' in page
    client.post("/account/language", data={"csrf_token": csrf_token(page), "language": "xx"})
    assert read_entry(root, IR_DN, ["preferredLanguage"]).preferredLanguage.value == "de"
    # Later mails to the member are German, whatever the page language.
    client.set_cookie("lang", "ja")
    portal = client.application.extensions["portal"]
    with client.application.app_context():
        portal.accounts.send_reset_link(portal.directory.person("irkek"))
    assert mails_to(smtp, "toru.sato@kek.example")[-1]["Subject"] == \
        "Example Collaboration: Ihr Passwort zurücksetzen"


# -- configuration -------------------------------------------------------------------------------

def test_languages_setting_is_validated(slapd, smtp):
    from helpers import portal_environment
    assert load_settings(portal_environment(slapd, smtp)).languages == ("en", "de", "ja")
    for value, problem in (("en fr", "there is no catalog for 'fr'"),
                           ("en de-DE", "is not a language code"),
                           ("en de de", "names a language twice")):
        with pytest.raises(SettingsError) as caught:
            load_settings(portal_environment(slapd, smtp, PORTAL_LANGUAGES=value))
        assert problem in str(caught.value), value
