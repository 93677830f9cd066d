"""The helpdesk's journeys in headless Chromium against the real app over
HTTP, axe-core at every page state, desktop and phone size:
search -> person -> suspend -> unsuspend; a paper request -> the IR
approves from the mail -> the member sets the password from the mail ->
logs in."""
from __future__ import annotations

import pytest

from app.devstack.slapd import DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD
from helpers import (
    NEW_PASSWORD,
    PEOPLE,
    assert_accessible,
    binds,
    decide,
    links_in,
    mails_to,
    mails_with,
    read_entry,
)
from test_helpdesk import MULLER, demo_accounts_restored  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.browser


def log_in(page, account: str, password: str) -> None:
    assert page.goto("/login").ok
    page.locator("#account_name").fill(account)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name="Log in").click()
    if page.url.endswith("/account/conditions"):
        page.locator("#accept_conditions").check()
        with page.expect_navigation():
            page.get_by_role("button", name="Accept and continue").click()


def fits_the_screen(page) -> bool:
    """Nothing wider than the viewport (wide tables and LDIF scroll in their boxes)."""
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("size", ["page", "phone"])
def test_helpdesk_finds_suspends_and_unsuspends_a_member(request, size, client,
                                                         register_and_verify, root, slapd,
                                                         tmp_path):
    from playwright.sync_api import expect
    page = request.getfixturevalue(size)
    decide(client, register_and_verify(**MULLER))
    log_in(page, DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD)
    with page.expect_navigation():
        page.locator("header").get_by_role("link", name="Helpdesk").click()
    assert_accessible(page, f"helpdesk front page ({size})")
    page.locator("#q").fill("Juergen Mueller")  # stored as Jürgen Müller
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    assert_accessible(page, f"helpdesk search results ({size})")
    assert fits_the_screen(page)
    shot = tmp_path / f"helpdesk-search-{size}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot of the helpdesk search: {shot}")
    with page.expect_navigation():
        page.locator("#people").get_by_role("link", name="Jürgen Müller").click()
    expect(page.locator("h1")).to_have_text("Jürgen Müller")
    expect(page.locator("#ldif")).to_contain_text("dn: uid=jmuller,ou=people,dc=example,dc=org")
    expect(page.locator("#history")).to_contain_text("Account created: membership approved")
    assert "userPassword" not in page.locator("#ldif").inner_text()
    assert_accessible(page, f"helpdesk person page ({size})")
    assert fits_the_screen(page)
    shot = tmp_path / f"helpdesk-person-{size}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot of the helpdesk person page: {shot}")
    page.locator("#suspend-reason").fill("Account shared, reported by the IR")
    with page.expect_navigation():
        page.get_by_role("button", name="Suspend the member").click()
    expect(page.locator(".flash-success")).to_have_text("The member is suspended.")
    expect(page.locator("#status-value")).to_have_text("suspended")
    assert not binds(slapd, f"uid=jmuller,{PEOPLE}", "Glacier-lantern-orbit-42")
    assert_accessible(page, f"helpdesk person suspended ({size})")
    page.locator("#unsuspend-reason").fill("Cleared with the IR")
    with page.expect_navigation():
        page.get_by_role("button", name="Lift the suspension").click()
    expect(page.locator("#status-value")).to_have_text("active")
    history = page.locator("#history")
    expect(history).to_contain_text("Account shared, reported by the IR")
    expect(history).to_contain_text("Cleared with the IR")
    assert binds(slapd, f"uid=jmuller,{PEOPLE}", "Glacier-lantern-orbit-42")
    assert_accessible(page, f"helpdesk person unsuspended ({size})")
    assert not page.console_errors, page.console_errors


def test_paper_request_ir_approval_and_first_password_in_a_browser(page, phone, live_server,
                                                                  smtp, root, slapd, tmp_path):
    from playwright.sync_api import expect
    log_in(page, DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD)
    assert page.goto("/helpdesk").ok
    with page.expect_navigation():
        page.get_by_role("link", name="File a paper registration").click()
    assert_accessible(page, "paper registration form")
    page.locator("#given_name").fill("Toru")
    page.locator("#family_name").fill("Iijima")
    page.locator("#account_name").fill("tiijima")
    page.locator("#email").fill("toru.iijima@kek.example")
    page.locator("#institution").select_option("kek")
    page.locator("#category").select_option("phd-student")
    page.locator("#verified_by").fill("Yuki Sato")
    shot = tmp_path / "helpdesk-paper.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot of the paper registration: {shot}")
    with page.expect_navigation():
        page.get_by_role("button", name="File the request").click()
    expect(page.locator("#verified-by")).to_have_text("Yuki Sato")
    assert_accessible(page, "paper request page")
    # The IR approves from the review mail (on a phone).
    review = mails_with(smtp, "membership request from")[-1]
    assert phone.goto(links_in(review)[0].replace("http://portal.test", live_server)).ok
    with phone.expect_navigation():
        phone.get_by_role("button", name="Approve").click()
    assert read_entry(root, f"uid=tiijima,{PEOPLE}", ["portalStatus"]).portalStatus == "active"
    # The member sets the password from the mail, then logs in.
    mail = mails_to(smtp, "toru.iijima@kek.example", "is ready")[-1]
    link = next(u for u in links_in(mail) if "/password/initial/" in u)
    member = phone.context.browser.new_context(base_url=live_server,
                                               viewport={"width": 390, "height": 844})
    tab = member.new_page()
    assert tab.goto(link.replace("http://portal.test", live_server)).ok
    expect(tab.locator("h1")).to_have_text("Set your password")
    assert_accessible(tab, "first password form (phone)")
    tab.locator("#password").fill(NEW_PASSWORD)
    tab.locator("#password_confirm").fill(NEW_PASSWORD)
    with tab.expect_navigation():
        tab.get_by_role("button", name="Set the password").click()
    assert tab.url.endswith("/login")
    log_in(tab, "tiijima", NEW_PASSWORD)
    assert tab.url.endswith("/account")
    assert binds(slapd, f"uid=tiijima,{PEOPLE}", NEW_PASSWORD)
    assert_accessible(tab, "the paper member's account")
    member.close()
    assert not page.console_errors, page.console_errors


def test_the_other_console_pages_pass_axe_at_phone_size(phone, register_and_verify):
    register_and_verify()  # a request waiting for KEK's representative
    log_in(phone, DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD)
    for path, state in (("/helpdesk/requests/tiijima", "request page with the preview"),
                        ("/helpdesk/institutions", "institutions"),
                        ("/helpdesk/institutions/kek", "one institution"),
                        ("/helpdesk/requests/new", "paper registration form")):
        assert phone.goto(path).ok, path
        assert_accessible(phone, f"{state} (phone)")
        assert fits_the_screen(phone), path
    # A form that comes back with its errors.
    phone.goto("/helpdesk/requests/new")
    with phone.expect_navigation():
        phone.get_by_role("button", name="File the request").click()
    assert phone.locator("#error-summary").is_visible()
    assert_accessible(phone, "paper registration with errors (phone)")
    assert not phone.console_errors, phone.console_errors
