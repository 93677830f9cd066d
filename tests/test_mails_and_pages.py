"""Issue 10, "Mails and pages": every mail that asks for an action carries
the link that does it, history in words, and the small untruths (0 days, a
used link that "may be incomplete", Message-IDs at localhost, "Nothing was
changed" after a fault)."""
from __future__ import annotations

from datetime import timedelta

import ldap3

from app import create_app
from app.devstack.slapd import free_port
from helpers import (
    NEW_PASSWORD,
    PEOPLE,
    STRONG_PASSWORD,
    change_password,
    csrf_token,
    forge_link,
    links_in,
    local_path,
    login,
    mails_to,
    mails_with,
    portal_environment,
    post_registration,
    valid_form,
    wait_until,
)

CONTACT = "toru.iijima@kek.example"
MEMBER_DN = f"uid=tiijima,{PEOPLE}"


def text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_part(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def logged_in(client, member) -> None:
    login(client, member)
    response = change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


# -- point 9: the one link that does it -------------------------------------------------------

def test_the_account_ready_mail_links_to_the_login_that_changes_the_initial_password(
        client, member, smtp):
    [ready] = mails_to(smtp, CONTACT, "is ready")
    assert "http://portal.test/login" in links_in(ready)
    assert 'href="http://portal.test/login"' in html_part(ready)
    # The link leads to the change of the initial password.
    response = login(client, member)
    assert response.headers["Location"].endswith("/account/password")


def test_the_password_changed_mail_links_to_the_reset(client, member, smtp):
    logged_in(client, member)
    [changed] = mails_to(smtp, CONTACT, "password was changed")
    assert "reset your password at once" in text(changed)
    assert "http://portal.test/password/reset" in links_in(changed)


def test_the_expiry_warning_links_to_the_change_and_never_says_0_days(app, client, member,
                                                                     root, smtp):
    logged_in(client, member)
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["pwdChangedTime"])
    expires = root.entries[0].pwdChangedTime.value + timedelta(days=180)
    now = (expires - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = app.test_cli_runner().invoke(args=["accounts", "notify-expiring", "--now", now])
    assert result.exit_code == 0, result.output
    [warning] = mails_to(smtp, CONTACT, "your password expires")
    assert warning["Subject"].endswith("your password expires in 1 day"), warning["Subject"]
    assert "http://portal.test/account/password" in links_in(warning)


# -- point 10: history in words and people ----------------------------------------------------

def test_history_shows_words_and_the_approving_representative(client, member):
    logged_in(client, member)
    page = client.get("/account").get_data(as_text=True)
    history = page.split("<h2>History</h2>")[1]
    assert "Account created: membership approved" in history
    assert "<td>Toru Sato (irkek)</td>" in history   # KEK's representative approved
    assert "Password changed" in history and "<td>You</td>" in history
    for code in ("member.created", "account.password-changed", "system"):
        assert code not in history, code


# -- point 13: small untruths -----------------------------------------------------------------

def test_message_ids_use_the_mail_domain(client, member, smtp):
    assert smtp.messages
    for message in smtp.messages:
        assert message["Message-ID"].endswith("@example.org>"), message["Message-ID"]


def test_a_used_reset_link_says_it_was_used(client, member, smtp):
    html = client.get("/password/reset").get_data(as_text=True)
    before = len(smtp.messages)
    client.post("/password/reset", data={"csrf_token": csrf_token(html),
                                         "login": member}).close()  # then the mail is sent
    wait_until(lambda: mails_with(smtp, "reset your password", before))
    path = local_path(links_in(mails_with(smtp, "reset your password", before)[0])[0])
    form = client.get(path).get_data(as_text=True)
    response = client.post(path, data={"csrf_token": csrf_token(form),
                                       "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert "Your new password is set" in response.get_data(as_text=True)
    again = client.get(path)
    page = again.get_data(as_text=True)
    assert again.status_code == 410
    assert "This link was used already" in page and "may be incomplete" not in page


def test_a_fault_mid_step_does_not_claim_that_nothing_was_changed(slapd, smtp):
    """The directory can go away after a step was written (an approval that
    created the account): the page must not say that nothing was changed."""
    down = create_app(portal_environment(slapd, smtp,
                                         PORTAL_LDAP_URLS=f"ldap://127.0.0.1:{free_port()}",
                                         PORTAL_LDAP_CONNECT_TIMEOUT="1"))
    token = forge_link(down, "review-request", {"r": "tiijima", "ir": "irkek", "st": 0})
    response = down.test_client().get(f"/review/{token}")
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Nothing was changed" not in page
    assert "what was already done is kept" in page


def test_the_confirmation_link_is_promised_only_as_long_as_the_request_is_kept(client, smtp):
    # An unconfirmed registration is withdrawn after PORTAL_UNCONFIRMED_REQUEST_DAYS (7),
    # sooner than a link's own lifetime (14): the mail names the 7.
    post_registration(client)
    [mail] = mails_to(smtp, valid_form()["email"], "confirm")
    text = " ".join(mail.get_body(preferencelist=("plain",)).get_content().split())
    assert "valid for 7 days" in text and "14 days" not in text
