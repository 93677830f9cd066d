"""The invitation route in headless Chromium: the IR invites from the
console (desktop), the invitee opens the mail's link on a phone-size page
and registers, the IR approves from the review mail; axe-core on every
page state on the way."""
from __future__ import annotations

import pytest

from app.devstack.slapd import DEMO_IR_PASSWORD
from fixtures.browser import PHONE
from helpers import (
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    assert_accessible,
    binds,
    links_in,
    mails_to,
    read_entry,
    wait_for_mail,
)

pytestmark = pytest.mark.browser
INVITEE = "maria.rossi@infn.example"


def live(url: str, origin: str) -> str:
    return url.replace("http://portal.test", origin)


def test_ir_invites_invitee_registers_on_a_phone_ir_approves(page, phone, live_server, root,
                                                             smtp, slapd):
    from playwright.sync_api import expect

    # -- the IR logs in and invites -----------------------------------------------------
    assert page.goto("/login").ok
    page.locator("#account_name").fill("irinfn")
    page.locator("#password").fill(DEMO_IR_PASSWORD)
    with page.expect_navigation():
        page.locator("main").get_by_role("button", name="Log in").click()
    if "/account/conditions" in page.url:
        page.locator("#accept_conditions").check()
        with page.expect_navigation():
            page.get_by_role("button", name="Accept and continue").click()
    expect(page.locator("header nav")).to_contain_text("Invitations")
    with page.expect_navigation():
        page.locator("header nav").get_by_role("link", name="Invitations").click()
    expect(page.locator("h1")).to_have_text("Invitations")
    assert_accessible(page, "invitation console")
    page.locator("#emails").fill(f"{INVITEE}, maria, rossi, phd-student\nsomeone@gmail.com\n"
                                 "luca.bianchi@infn.example")
    with page.expect_navigation():
        page.get_by_role("button", name="Check the list").click()
    expect(page.locator("h1")).to_have_text("Check the invitations")
    expect(page.locator("main")).to_contain_text("Will be invited")
    expect(page.locator("main")).to_contain_text("A webmail address")
    assert not mails_to(smtp, INVITEE)
    assert_accessible(page, "invitation preview")
    with page.expect_navigation():
        page.get_by_role("button", name="Send 2 invitations").click()
    # Both good lines went through the confirmation (a hidden field keeps the lines apart).
    expect(page.locator("h1")).to_have_text("2 invitations sent")
    assert mails_to(smtp, "luca.bianchi@infn.example")
    assert_accessible(page, "invitations sent")
    page.goto("/invitations")
    expect(page.locator(".invitation-list")).to_contain_text(INVITEE)
    expect(page.locator(".invitation-list")).to_contain_text("Open: the link works until")
    assert_accessible(page, "invitation console with an open invitation")

    # -- the invitee, on a phone ----------------------------------------------------------
    mail = mails_to(smtp, INVITEE, "invited to register")[-1]
    link = next(u for u in links_in(mail) if "/register/invited/" in u)
    assert phone.goto(live(link, live_server)).ok
    expect(phone.locator("#invited-email")).to_have_text(INVITEE)
    expect(phone.locator("#invited-institution")).to_contain_text("INFN")
    expect(phone.locator("#given_name")).to_have_value("Maria")
    expect(phone.locator("#family_name")).to_have_value("Rossi")
    expect(phone.locator("#category")).to_have_value("phd-student")
    assert phone.locator("#email").count() == 0 and phone.locator("#institution").count() == 0
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert_accessible(phone, "invited registration form (phone)")
    phone.locator("#account_name").fill("mrossi")
    phone.locator("#password").fill(STRONG_PASSWORD)
    phone.locator("#password_confirm").fill(STRONG_PASSWORD)
    phone.locator("#accept_conditions").check()
    with phone.expect_navigation():
        phone.get_by_role("button", name="Send registration request").click()
    expect(phone.locator("h1")).to_have_text("Thank you: your registration was sent")
    assert_accessible(phone, "invited registration sent (phone)")
    request = read_entry(root, f"uid=mrossi,{REQUESTS}")
    assert request.portalRequestStatus.value == "pending-approval"
    assert request.portalContactMail.value == INVITEE
    # The link is spent.
    phone.goto(live(link, live_server))
    expect(phone.locator("h1")).to_have_text("This invitation was used already")
    assert_accessible(phone, "used invitation link (phone)")

    # -- the IR approves --------------------------------------------------------------------
    review = wait_for_mail(smtp, "membership request from")
    assert page.goto(live(links_in(review)[0], live_server)).ok
    with page.expect_navigation():
        page.get_by_role("button", name="Approve").click()
    expect(page.locator("main")).to_contain_text("was created")
    assert binds(slapd, f"uid=mrossi,{PEOPLE}", STRONG_PASSWORD)
    page.goto("/invitations")
    expect(page.locator(".invitation-list")).to_contain_text("Used: the registration was sent")
    # The console at phone size too.
    page.set_viewport_size(PHONE)
    page.goto("/invitations")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page, "invitation console (phone)")
    # The used link's page is answered 410 on purpose; nothing else went wrong.
    errors = [e for e in page.console_errors + phone.console_errors if "(GONE)" not in e]
    assert not errors, errors
