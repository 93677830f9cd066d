"""The IR console's pages in German and Japanese, at phone size with
axe-core, and one journey in Chromium: an IR logs in, opens a newcomer's
request from the console, approves it and finds the member in the roster."""
from __future__ import annotations

import pytest

from app.devstack.slapd import DEMO_IR_PASSWORD
from helpers import assert_accessible, csrf_token, decide
from test_ir_console import log_in, restoring_console_state
from test_languages import assert_no_english, heading, translator

KEK = "High Energy Accelerator Research Organization (KEK)"
# Directory data (names, institutions) is shown as it is; the category
# labels of the collaboration file are in the page's language.
DATA = (KEK, "Toru Iijima", "tiijima", "Toru Sato", "irkek", "CSV")


@pytest.fixture
def console_state(slapd, root):
    yield from restoring_console_state(slapd, root)


def without_data(page: str) -> str:
    for value in DATA:
        page = page.replace(value, "")
    return page


@pytest.mark.parametrize("lang", ["de", "ja"])
def test_console_pages_in_german_and_japanese(app, client, register_and_verify, console_state,
                                              lang):
    t = translator(lang)
    review = register_and_verify()
    client.set_cookie("lang", lang)
    log_in(client, "irkek")
    page = client.get("/ir").get_data(as_text=True)
    assert f'<html lang="{lang}">' in page
    assert heading(page) == t.gettext("Waiting requests")
    assert t.gettext("registration") in page and "Toru Iijima" in page
    assert_no_english(without_data(page), lang)
    decide(client, review)
    for path, title in (("/ir/members", t.gettext("Members of %(institution)s") % {
            "institution": KEK}), ("/ir/confirm", t.gettext(
                "Confirm the roster of %(institution)s") % {"institution": KEK}),
            ("/ir/members/tiijima", "Toru Iijima")):
        page = client.get(path).get_data(as_text=True)
        assert f'<html lang="{lang}">' in page and heading(page) == title, path
        assert_no_english(without_data(page), lang)
    page = client.get("/ir/members/tiijima").get_data(as_text=True)
    response = client.post("/ir/members/tiijima/end", data={"csrf_token": csrf_token(page),
                                                           "reason": ""})
    assert response.status_code == 400
    assert t.gettext("Give the reason: the member reads it.") in response.get_data(as_text=True)


@pytest.mark.browser
def test_an_ir_approves_from_the_console_in_a_browser(page, phone, live_server,
                                                      register_and_verify, console_state):
    from playwright.sync_api import expect

    register_and_verify()
    for browser_page in (page, phone):
        assert browser_page.goto("/login").ok
        browser_page.locator("#account_name").fill("irkek")
        browser_page.locator("#password").fill(DEMO_IR_PASSWORD)
        with browser_page.expect_navigation():
            browser_page.locator("form.form button[type=submit]").click()
        if "/account/conditions" in browser_page.url:
            browser_page.locator("#accept_conditions").check()
            with browser_page.expect_navigation():
                browser_page.locator("form.form button[type=submit]").click()
    # The header links the console; it lists the newcomer's request.
    with page.expect_navigation():
        page.get_by_role("link", name="Institute").click()
    expect(page.locator("h1")).to_have_text("Waiting requests")
    assert_accessible(page, "IR console: waiting requests")
    assert phone.goto("/ir").ok
    assert_accessible(phone, "IR console at phone size")
    with page.expect_navigation():
        page.get_by_role("link", name="Toru Iijima").click()
    assert "/review/" in page.url
    expect(page.locator("h1")).to_contain_text("Membership request for")
    with page.expect_navigation():
        page.get_by_role("button", name="Approve").click()
    expect(page.locator("main")).to_contain_text("was created")
    assert page.goto("/ir").ok
    expect(page.locator("#nothing-waiting")).to_be_visible()
    assert page.goto("/ir/members").ok
    expect(page.locator("#roster")).to_contain_text("Toru Iijima")
    assert_accessible(page, "IR console: roster")
    for path in ("/ir/members", "/ir/confirm", "/ir/members/tiijima"):
        assert phone.goto(path).ok
        assert_accessible(phone, f"{path} at phone size")
    assert page.goto("/ir/confirm").ok
    assert_accessible(page, "IR console: roster confirmation")
    assert page.console_errors == [] and phone.console_errors == []
