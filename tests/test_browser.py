"""The whole flow once in headless Chromium against the real app over HTTP:
register (with the live hints and a server-side error) -> confirm the address
from the mail -> the IR approves from the mail -> a member who can bind."""
from __future__ import annotations

import re
from pathlib import Path

import ldap3
import pytest

from helpers import (
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    assert_accessible,
    binds,
    decide,
    fill_registration,
    form_errors,
    links_in,
    mails_to,
    mails_with,
    read_entry,
    send_registration,
    wait_for_mail,
)

pytestmark = pytest.mark.browser

TIMEOUT_MS = 5000


def live_link(message, origin: str) -> str:
    """The first link in a mail's plain-text part, pointing at the live server."""
    return links_in(message)[0].replace("http://portal.test", origin)


def test_register_confirm_and_approve_in_a_browser(page, live_server, root, smtp, slapd,
                                                   tmp_path):
    from playwright.sync_api import expect

    # -- the registration form, with the script's live hints -------------------------
    response = page.goto("/register")
    assert response.ok
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    page.locator("#given_name").press_sequentially("toru")
    page.locator("#family_name").press_sequentially("iijima")
    expect(page.locator("#mail-preview code")).to_have_text("toru.iijima@example.org")
    expect(page.locator("#mail-preview")).to_contain_text(
        "Your collaboration mail address will be")
    chips = page.locator("#suggestions button.chip")
    expect(page.locator("#suggestions")).to_be_visible()
    expect(chips.first).to_be_visible()
    first = chips.first.inner_text().strip()
    assert re.fullmatch(r"[a-z][a-z0-9]{3,7}", first), first
    chips.first.click()
    expect(page.locator("#account_name")).to_have_value(first)
    # The chip is a plain button for the script: clicking it submits nothing.
    assert page.url == f"{live_server}/register"
    expect(page.locator("#account-name-status")).to_have_text("This account name is available.")
    account = first
    assert_accessible(page, "registration form with live hints")

    page.locator("#email").fill("toru.iijima@kek.example")
    page.locator("#institution").select_option("kek")
    page.locator("#category").select_option("phd-student")
    page.locator("#password").fill(STRONG_PASSWORD)
    page.locator("#password_confirm").fill(STRONG_PASSWORD + "-typo")
    page.locator("#accept_conditions").check()
    form_shot = tmp_path / "registration-form.png"
    page.screenshot(path=str(form_shot), full_page=True)
    print(f"\nscreenshot of the registration form: {form_shot}")

    # -- a wrong confirmation: the error next to the field, the input kept -----------
    with page.expect_navigation():
        page.get_by_role("button", name="Send registration request").click()
    assert page.url == f"{live_server}/register"
    expect(page.locator("#error-summary h2")).to_have_text(
        "Your registration was not sent yet. Please correct the fields marked below.")
    expect(page.locator("#password_confirm-error")).to_have_text(
        "The two passwords are not the same.")
    confirm_field = page.locator(".field", has=page.locator("#password_confirm"))
    expect(confirm_field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.locator("#password_confirm")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password_confirm")).to_have_attribute(
        "aria-describedby", "password_confirm-error")
    assert page.locator("p.error").count() == 1, page.locator("p.error").all_inner_texts()
    assert_accessible(page, "registration form after an error")
    expect(page.locator("#email")).to_have_value("toru.iijima@kek.example")
    # The server normalises the case of names typed all in lower case.
    expect(page.locator("#given_name")).to_have_value("Toru")
    expect(page.locator("#family_name")).to_have_value("Iijima")
    expect(page.locator("#account_name")).to_have_value(account)
    expect(page.locator("#institution")).to_have_value("kek")
    expect(page.locator("#category")).to_have_value("phd-student")
    expect(page.locator("#accept_conditions")).to_be_checked()
    # Passwords are never sent back to the browser.
    expect(page.locator("#password")).to_have_value("")
    expect(page.locator("#password_confirm")).to_have_value("")
    assert read_entry(root, f"uid={account},{REQUESTS}") is None
    assert not smtp.messages

    page.locator("#password").fill(STRONG_PASSWORD)
    page.locator("#password_confirm").fill(STRONG_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Send registration request").click()
    assert page.url == f"{live_server}/register/created"
    expect(page.locator("p.panel")).to_contain_text(
        "We received your registration for Example Collaboration. Desired account name:")
    expect(page.locator("p.panel code")).to_have_text(account)
    assert_accessible(page, "request created")

    # -- the confirmation link from the mail: GET changes nothing ----------------------
    [verify_mail] = mails_to(smtp, "toru.iijima@kek.example")
    verify_url = live_link(verify_mail, live_server)
    assert verify_url.startswith(f"{live_server}/register/verify/")
    assert page.goto(verify_url).ok
    expect(page.locator("h1")).to_have_text("Confirm your e-mail address")
    expect(page.locator("main")).to_contain_text("toru.iijima@kek.example")
    assert_accessible(page, "confirm the address")
    assert read_entry(root, f"uid={account},{REQUESTS}").portalRequestStatus.value == \
        "pending-verification"
    assert not mails_to(smtp, "toru.sato@kek.example")
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm my address").click()
    expect(page.locator("h1")).to_have_text("Thank you: your address is confirmed")
    assert_accessible(page, "address confirmed")
    assert read_entry(root, f"uid={account},{REQUESTS}").portalRequestStatus.value == \
        "pending-approval"

    # -- the IR approves from the review link in their mail ----------------------------
    [review_mail] = mails_to(smtp, "toru.sato@kek.example")  # the KEK IR
    review_url = live_link(review_mail, live_server)
    assert review_url.startswith(f"{live_server}/review/")
    assert page.goto(review_url).ok
    record = page.locator("dl.record")
    for shown in ("Toru Iijima", "toru.iijima@kek.example", "PhD student",
                  "toru.iijima@example.org", account):
        expect(record).to_contain_text(shown)
    assert_accessible(page, "review page")
    assert read_entry(root, f"uid={account},{PEOPLE}") is None
    with page.expect_navigation():
        page.get_by_role("button", name="Approve").click()
    expect(page.locator("h1")).to_have_text("Approved")
    expect(page.locator("main")).to_contain_text(f"The account {account} was created")
    assert_accessible(page, "approved")
    approved_shot = tmp_path / "approval-result.png"
    page.screenshot(path=str(approved_shot), full_page=True)
    print(f"screenshot of the approval result: {approved_shot}")

    member_dn = f"uid={account},{PEOPLE}"
    person = read_entry(root, member_dn)
    assert person is not None
    assert person.portalStatus.value == "active"
    assert person.mail.value == "toru.iijima@example.org"
    assert binds(slapd, member_dn, STRONG_PASSWORD)

    assert page.console_errors == []


def test_new_member_logs_in_changes_and_resets_the_password_in_a_browser(
        page, live_server, client, register_and_verify, smtp, slapd, tmp_path):
    """What a new member does after approval: log in with the initial password,
    be sent to the change page, choose a password, log out, forget it, reset it
    from the mailed link, and log in with the new one."""
    from playwright.sync_api import expect

    contact = "toru.iijima@kek.example"
    member_dn = f"uid=tiijima,{PEOPLE}"
    changed_password = "Copper-meadow-violin-73"
    reset_password = "Harbour-lantern-quartz-58"

    def bind_works(password: str) -> bool:
        return binds(slapd, member_dn, password)

    # -- an approved member, quickly and without the browser -------------------------
    response = decide(client, register_and_verify())
    assert response.status_code in (200, 302), form_errors(response.get_data(as_text=True))
    assert bind_works(STRONG_PASSWORD)

    # -- log in with the initial password: straight to the change page ----------------
    assert page.goto("/login").ok
    expect(page.locator("h1")).to_have_text("Log in")
    assert_accessible(page, "login")
    page.locator("#account_name").fill("TIIJIMA")  # account names are case-insensitive
    page.locator("#password").fill(STRONG_PASSWORD)
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name="Log in").click()
    assert page.url == f"{live_server}/account/password"
    expect(page.locator("h1")).to_have_text("Change your password")
    expect(page.locator("p.panel-warning")).to_contain_text(
        "You are still using the initial password.")
    expect(page.locator(".flash-warning")).to_contain_text("Please choose your own password now")
    assert_accessible(page, "change the initial password")
    # Nothing else is reachable before the change.
    page.goto("/account")
    assert page.url == f"{live_server}/account/password"
    expect(page.locator("p.panel-warning")).to_contain_text(
        "You are still using the initial password.")

    # -- a wrong confirmation, then a good new password --------------------------------
    page.locator("#current_password").fill(STRONG_PASSWORD)
    page.locator("#password").fill(changed_password)
    page.locator("#password_confirm").fill(changed_password + "-typo")
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name="Change password").click()
    assert page.url == f"{live_server}/account/password"
    expect(page.locator("#password_confirm-error")).to_have_text(
        "The two passwords are not the same.")
    expect(page.locator(".field", has=page.locator("#password_confirm"))).to_have_class(
        re.compile(r"\bhas-error\b"))
    expect(page.locator("#password_confirm")).to_have_attribute("aria-invalid", "true")
    assert page.locator("p.error").count() == 1, page.locator("p.error").all_inner_texts()
    assert_accessible(page, "password change after an error")
    # Still the initial password, still the warning; passwords are not sent back.
    expect(page.locator("p.panel-warning")).to_be_visible()
    for field_id in ("#current_password", "#password", "#password_confirm"):
        expect(page.locator(field_id)).to_have_value("")
    assert bind_works(STRONG_PASSWORD) and not bind_works(changed_password)
    assert not mails_to(smtp, contact, "password was changed")

    page.locator("#current_password").fill(STRONG_PASSWORD)
    page.locator("#password").fill(changed_password)
    page.locator("#password_confirm").fill(changed_password)
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name="Change password").click()
    assert page.url == f"{live_server}/account"
    expect(page.locator("h1")).to_have_text("My account")
    expect(page.locator(".flash-success")).to_contain_text("Your password was changed.")
    record = page.locator("dl.record")
    expect(record.locator("code")).to_have_text("tiijima")
    for shown in ("Toru Iijima", "toru.iijima@example.org", contact, "Password expires on",
                  "days left"):
        expect(record).to_contain_text(shown)
    expect(record).to_contain_text(re.compile(r"\b(179|180) days left\b"))
    assert_accessible(page, "my account")
    account_shot = tmp_path / "my-account.png"
    page.screenshot(path=str(account_shot), full_page=True)
    print(f"\nscreenshot of My account: {account_shot}")
    [changed_mail] = mails_to(smtp, contact, "password was changed")
    assert changed_password not in changed_mail.as_string()
    assert bind_works(changed_password) and not bind_works(STRONG_PASSWORD)

    # -- log out from the header ------------------------------------------------------
    with page.expect_navigation():
        page.locator("header").get_by_role("button", name="Log out").click()
    assert page.url == f"{live_server}/login"
    expect(page.locator(".flash-success")).to_have_text("You are logged out.")
    assert_accessible(page, "logged out")
    expect(page.locator("header")).not_to_contain_text("Log out")
    page.goto("/account")
    assert page.url == f"{live_server}/login"

    # -- forgot the password: the reset link by mail ------------------------------------
    with page.expect_navigation():
        page.get_by_role("link", name="Forgot your password, or it expired?").click()
    assert page.url == f"{live_server}/password/reset"
    expect(page.locator("h1")).to_have_text("Reset your password")
    assert_accessible(page, "reset request")
    before = len(smtp.messages)
    page.locator("#login").fill(contact)
    with page.expect_navigation():
        page.get_by_role("button", name="Send me a reset link").click()
    expect(page.locator("h1")).to_have_text("Check your mail")
    assert_accessible(page, "reset sent")
    # The mail goes out after the response.
    wait_for_mail(smtp, "reset your password", before)
    reset_mails = mails_with(smtp, "reset your password", before)
    assert len(reset_mails) == 1, [m["Subject"] for m in smtp.messages[before:]]
    assert contact in str(reset_mails[0]["To"])
    reset_url = live_link(reset_mails[0], live_server)
    assert reset_url.startswith(f"{live_server}/password/reset/")

    assert page.goto(reset_url).ok
    expect(page.locator("h1")).to_have_text("Choose a new password")
    expect(page.locator("main")).to_contain_text("For the account tiijima.")
    assert_accessible(page, "choose a new password")
    page.locator("#password").fill(reset_password)
    page.locator("#password_confirm").fill(reset_password)
    with page.expect_navigation():
        page.get_by_role("button", name="Set the new password").click()
    expect(page.locator("h1")).to_have_text("Your new password is set")
    assert_accessible(page, "new password set")
    expect(page.locator("main")).to_contain_text("tiijima")

    # -- log in with the new password ----------------------------------------------------
    with page.expect_navigation():
        page.locator("main").get_by_role("link", name="Log in").click()
    assert page.url == f"{live_server}/login"
    page.locator("#account_name").fill("tiijima")
    page.locator("#password").fill(reset_password)
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name="Log in").click()
    assert page.url == f"{live_server}/account"
    expect(page.locator("dl.record code")).to_have_text("tiijima")
    expect(page.locator("p.panel-warning")).to_have_count(0)
    assert_accessible(page, "my account after the reset")

    # -- the directory: only the newest password binds ----------------------------------
    assert bind_works(reset_password)
    assert not bind_works(changed_password)
    assert not bind_works(STRONG_PASSWORD)

    assert page.console_errors == []


@pytest.fixture
def german_representative(slapd, root):
    """The KEK representative (irkek) reads German; undone afterwards."""
    from helpers import root_connection
    dn = f"uid=irkek,{PEOPLE}"
    conn = root_connection(slapd)
    conn.modify(dn, {"preferredLanguage": [(ldap3.MODIFY_REPLACE, ["de"])]})
    yield dn
    conn = root_connection(slapd)
    conn.modify(dn, {"preferredLanguage": [(ldap3.MODIFY_REPLACE, [])]})
    conn.unbind()


def test_a_japanese_browser_registers_and_a_german_representative_approves(
        browser, live_server, root, smtp, german_representative):
    """Accept-Language ja-JP: the pages and the applicant's mails in Japanese;
    the IR (preferredLanguage de) gets a German mail and decides in German."""
    from babel.support import Translations
    from playwright.sync_api import expect

    ja = Translations.load(str(Path(__file__).resolve().parents[1] / "translations"), ["ja"])
    de = Translations.load(str(Path(__file__).resolve().parents[1] / "translations"), ["de"])
    applicant = browser.new_context(base_url=live_server, locale="ja-JP")
    applicant.set_default_timeout(TIMEOUT_MS)
    page = applicant.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # -- register in Japanese -----------------------------------------------------------
    assert page.goto("/register").ok
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("h1")).to_have_text(ja.gettext("Register for membership"))
    assert_accessible(page, "registration form in Japanese")
    page.locator("#given_name").press_sequentially("Toru")
    page.locator("#family_name").press_sequentially("Iijima")
    expect(page.locator("#mail-preview")).to_contain_text(
        ja.gettext("Your collaboration mail address will be"))
    page.locator("#account_name").fill("tiijima")
    expect(page.locator("#account-name-status")).to_have_text(
        ja.gettext("This account name is available."))
    fill_registration(page, given_name=None, family_name=None, account_name=None)
    send_registration(page, ja.gettext("Send registration request"))
    assert page.url == f"{live_server}/register/created"
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    assert read_entry(root, f"uid=tiijima,{REQUESTS}").preferredLanguage.value == "ja"

    # -- the confirmation mail is Japanese; confirm ----------------------------------------
    [verify_mail] = mails_to(smtp, "toru.iijima@kek.example")
    assert verify_mail["Subject"] == ja.gettext(
        "%(collaboration)s: please confirm your e-mail address") % {
        "collaboration": "Example Collaboration"}
    assert page.goto(live_link(verify_mail, live_server)).ok
    expect(page.locator("h1")).to_have_text(ja.gettext("Confirm your e-mail address"))
    with page.expect_navigation():
        page.get_by_role("button", name=ja.gettext("Confirm my address")).click()
    expect(page.locator("h1")).to_have_text(ja.gettext("Thank you: your address is confirmed"))
    assert_accessible(page, "address confirmed in Japanese")

    # -- the IR's mail is German; the IR's German browser approves --------------------------
    [review_mail] = mails_to(smtp, "toru.sato@kek.example")
    assert review_mail["Subject"].startswith("Example Collaboration: Antrag auf Mitgliedschaft")
    assert "Guten Tag" in review_mail.get_body(("plain",)).get_content()
    representative = browser.new_context(base_url=live_server, locale="de-DE")
    representative.set_default_timeout(TIMEOUT_MS)
    ir_page = representative.new_page()
    ir_page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert ir_page.goto(live_link(review_mail, live_server)).ok
    expect(ir_page.locator("html")).to_have_attribute("lang", "de")
    assert_accessible(ir_page, "review page in German")
    with ir_page.expect_navigation():
        ir_page.get_by_role("button", name=de.gettext("Approve"), exact=True).click()
    expect(ir_page.locator("h1")).to_have_text(de.gettext("Approved"))
    assert_accessible(ir_page, "approved in German")
    representative.close()

    # -- the new member's mail is Japanese ---------------------------------------------------
    assert read_entry(root, f"uid=tiijima,{PEOPLE}").preferredLanguage.value == "ja"
    ready = mails_to(smtp, "toru.iijima@kek.example")[-1]
    assert ready["Subject"] == ja.gettext(
        "%(collaboration)s: your account %(account)s is ready") % {
        "collaboration": "Example Collaboration", "account": "tiijima"}
    applicant.close()
    assert errors == []
