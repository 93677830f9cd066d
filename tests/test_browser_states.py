"""Page states beyond the happy journeys, in headless chromium: the
registration form after an error at phone size (focus, title, summary,
the "this is not me" question), the live name rule, the known applicant's
answer, a used link; axe-core on each (0 serious or critical)."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import STRONG_PASSWORD, assert_accessible, fill_registration
from helpers import send_registration as send

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots-j10b")


def test_the_registration_after_an_error_on_a_phone(phone, live_server, root):
    from playwright.sync_api import expect

    assert phone.goto("/register").ok
    assert_accessible(phone, "registration form on a phone")
    # An address pasted into the account name is kept whole: the right message.
    fill_registration(phone, account_name="toru.iijima@kek.example",
                      password_confirm=STRONG_PASSWORD + "-typo")
    expect(phone.locator("#account_name")).to_have_value("toru.iijima@kek.example")
    expect(phone.locator("#account-name-status")).to_contain_text(
        "The account name is not an e-mail address")
    send(phone)
    assert phone.url == f"{live_server}/register"
    expect(phone).to_have_title("Please check your registration · Example Collaboration")
    summary = phone.locator("#error-summary")
    # Focused at once (no script needed), at the top of the screen.
    expect(summary).to_be_focused()
    box = summary.bounding_box()
    assert box is not None and box["y"] < 844, box
    expect(summary.locator("li")).to_have_count(2)
    expect(summary).to_contain_text("please type both passwords again")
    expect(phone.locator("#accept_conditions")).to_be_checked()
    # The account-name rule once (the field's description), not three times.
    expect(phone.locator("main").get_by_text("starting with a letter")).to_have_count(1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / "registration-error-phone.png"))
    phone.screenshot(path=str(SHOTS / "registration-error-phone-full.png"), full_page=True)
    assert_accessible(phone, "registration form after an error on a phone")
    # A link of the summary leads to its field.
    summary.get_by_role("link", name="The two passwords are not the same.").click()
    expect(phone.locator("#password_confirm")).to_be_focused()
    assert phone.console_errors == []


def test_the_not_me_question_is_announced_on_a_phone(phone, live_server, root):
    from playwright.sync_api import expect

    assert phone.goto("/register").ok
    fill_registration(phone, given_name="Toru", family_name="Sato", account_name="tsato",
                      email="toru.sato@desy.example", institution="desy")
    send(phone)
    summary = phone.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("We may already know you")
    assert summary.bounding_box()["y"] < 844
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / "registration-not-me-phone.png"))
    assert_accessible(phone, "registration with the 'this is not me' question")
    summary.get_by_role("link").click()
    expect(phone.locator("#not_me")).to_be_focused()


def test_the_live_name_rule_is_the_servers(page, live_server, root):
    from playwright.sync_api import expect

    assert page.goto("/register").ok
    page.locator("#given_name").press_sequentially("Ivan")
    page.locator("#family_name").press_sequentially("Иванов")
    expect(page.locator("#names-status")).to_contain_text("Please write this name in Latin")
    expect(page.locator("#mail-preview")).to_have_text("")
    page.locator("#given_name").fill("")
    page.locator("#family_name").fill("")
    page.locator("#given_name").press_sequentially("IIJIMA")
    page.locator("#family_name").press_sequentially("Toru")
    expect(page.locator("#names-status")).to_contain_text("Given and family name look swapped")
    assert_accessible(page, "registration with live name problems")
    assert page.console_errors == []


def test_skip_link_and_the_answer_to_a_known_applicant(page, live_server, root, smtp):
    from playwright.sync_api import expect

    assert page.goto("/register").ok
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    expect(skip).to_be_focused()
    skip.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # irkek's address: the same page as for a new applicant.
    fill_registration(page, given_name="Toru", family_name="Sato", account_name="tsato",
                      email="toru.sato@kek.example")
    send(page)
    assert page.url == f"{live_server}/register/created"
    expect(page.locator("h1")).to_have_text("Thank you: please check your mail")
    assert_accessible(page, "registration received")


def test_a_used_link_and_an_unknown_page(page, live_server):
    from playwright.sync_api import expect

    response = page.goto("/password/reset/not-a-token")
    assert response.status == 404
    assert_accessible(page, "invalid link")
    assert page.goto("/no/such/page").status == 404
    expect(page.locator("h1")).to_be_visible()
    assert_accessible(page, "page not found")
