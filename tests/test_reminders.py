"""Issue 12, "Reminders and escalation": `flask requests remind --now`
reminds the approvers of a waiting request every PORTAL_REMINDER_DAYS,
escalates once per stage after PORTAL_ESCALATION_DAYS (the institution's
deputies and the helpdesk, the applicant told), expires unconfirmed
registrations after PORTAL_UNCONFIRMED_REQUEST_DAYS; each exactly once per
period, against a real slapd and SMTP server with a shifted clock."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

import ldap3
import pytest

from helpers import (
    BASE_DN,
    PEOPLE,
    REQUESTS,
    csrf_token,
    decide,
    links_in,
    local_path,
    mails_to,
    mails_with,
    post_registration,
    read_entry,
    root_connection,
)

APPLICANT = "toru.iijima@kek.example"
IR = "toru.sato@kek.example"  # irkek
DEPUTY = "anna.schmidt@desy.example"  # irdesy, made KEK's deputy below
IB_MEMBER = "giulia.rossi@infn.example"  # irinfn, on the board
HELPDESK = "helpdesk@example.org"
KEK = f"portalInstitutionId=kek,ou=institutions,{BASE_DN}"
ENTRY = f"uid=tiijima,{REQUESTS}"


@pytest.fixture
def kek_deputy(slapd, root):
    """irdesy is a deputy of KEK's IRs for the test."""
    conn = root_connection(slapd)
    conn.modify(KEK, {"objectClass": [(ldap3.MODIFY_ADD, ["portalFollowUp"])],
                      "portalDeputy": [(ldap3.MODIFY_ADD, [f"uid=irdesy,{PEOPLE}"])]})
    yield
    conn.modify(KEK, {"portalDeputy": [(ldap3.MODIFY_DELETE, [])],
                      "objectClass": [(ldap3.MODIFY_DELETE, ["portalFollowUp"])]})
    conn.unbind()


def remind(app, at) -> str:
    result = app.test_cli_runner().invoke(args=["requests", "remind", "--now", at.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output


def counts(output: str) -> tuple[int, int, int]:
    match = re.search(r"reminded (\d+), escalated (\d+), expired (\d+) request", output)
    assert match, output
    return tuple(int(n) for n in match.groups())


def confirmed_at(root):
    return read_entry(root, ENTRY).portalEmailVerifiedAt.value


def reminders_to(smtp, address):
    return mails_to(smtp, address, "reminder")


def body(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def confirm(client, smtp):
    path = local_path(links_in(mails_to(smtp, APPLICANT, "confirm")[-1])[0])
    page = client.get(path).get_data(as_text=True)
    client.post(path, data={"csrf_token": csrf_token(page)})


def test_remind_then_every_period_escalate_once_with_deputies(
        app, client, register_and_verify, root, smtp, kek_deputy):
    register_and_verify()
    since = confirmed_at(root)
    assert counts(remind(app, since + timedelta(days=2, hours=23))) == (0, 0, 0)
    assert not reminders_to(smtp, IR)

    # Day 3: the IR is reminded, with a fresh link that opens the review page.
    out = remind(app, since + timedelta(days=3, minutes=1))
    assert counts(out) == (1, 0, 0)
    assert "reminded tiijima (stage institute representative" in out and "Toru Sato" in out
    [first] = reminders_to(smtp, IR)
    assert "waits for your decision" in str(first["Subject"])
    assert "Example Collaboration" in str(first["Subject"])
    [link] = links_in(first)
    page = client.get(local_path(link)).get_data(as_text=True)
    assert "Approve</button>" in page
    # The same day again, and a day later: nothing.
    assert counts(remind(app, since + timedelta(days=3, hours=5))) == (0, 0, 0)
    assert counts(remind(app, since + timedelta(days=5))) == (0, 0, 0)
    assert len(reminders_to(smtp, IR)) == 1
    assert not reminders_to(smtp, DEPUTY) and not mails_to(smtp, HELPDESK)
    entry = read_entry(root, ENTRY)
    assert entry.portalLastReminded.value == since + timedelta(days=3, minutes=1)

    # Day 6: the next period.
    assert counts(remind(app, since + timedelta(days=6, minutes=2))) == (1, 0, 0)
    assert len(reminders_to(smtp, IR)) == 2

    # Day 10: escalated once: the deputy, the helpdesk, the applicant.
    out = remind(app, since + timedelta(days=10, minutes=3))
    assert counts(out) == (1, 1, 0)
    assert "escalated tiijima" in out and "Anna Schmidt (irdesy)" in out
    assert len(reminders_to(smtp, IR)) == 3
    [deputy] = reminders_to(smtp, DEPUTY)
    assert "deputies of the institute representatives" in body(deputy)
    [helpdesk] = mails_to(smtp, HELPDESK, "waits too long")
    assert "Toru Sato" in body(helpdesk) and "Anna Schmidt" in body(helpdesk)
    # The one link it carries opens the request in the helpdesk console.
    assert [local_path(u) for u in links_in(helpdesk)] == ["/helpdesk/requests/tiijima"]
    [told] = mails_to(smtp, APPLICANT, "longer than usual")
    [status_link] = links_in(told)
    status = client.get(local_path(status_link)).get_data(as_text=True)
    assert "Anna Schmidt" in status and "Toru Sato" in status  # who decides now
    # Last reminded: now, the day of the escalation.
    reminded = since + timedelta(days=10, minutes=3)
    shown = re.search(r"<dt>Last reminded</dt><dd>(.*?)</dd>", status).group(1)
    assert f"{reminded:%b} {reminded.day}, {reminded.year}" in shown, shown
    assert counts(remind(app, since + timedelta(days=10, hours=2))) == (0, 0, 0)
    assert counts(remind(app, since + timedelta(days=12))) == (0, 0, 0)
    assert len(mails_to(smtp, HELPDESK)) == 1 and len(mails_to(smtp, APPLICANT,
                                                                "longer than usual")) == 1

    # Day 13: reminded again, deputy and helpdesk included; never escalated twice.
    assert counts(remind(app, since + timedelta(days=13, minutes=4))) == (1, 0, 0)
    assert len(reminders_to(smtp, IR)) == 4 and len(reminders_to(smtp, DEPUTY)) == 2
    assert len(mails_to(smtp, HELPDESK, "waits too long")) == 2
    events = read_entry(root, ENTRY).portalAuditEvent.values
    assert sum('"request.escalated"' in e for e in events) == 1
    assert sum('"request.reminded"' in e for e in events) == 4

    # The deputy decides from the reminder's link.
    response = decide(client, local_path(links_in(reminders_to(smtp, DEPUTY)[-1])[0]))
    assert "was created" in response.get_data(as_text=True)
    assert counts(remind(app, since + timedelta(days=30))) == (0, 0, 0)


def test_a_deputy_is_no_approver_before_the_escalation(app, client, register_and_verify, root,
                                                      smtp, kek_deputy):
    from app.services.links import ReviewLink
    register_and_verify()
    with app.app_context():
        portal = app.extensions["portal"]
        token = portal.approval._links.token(ReviewLink("tiijima", "irdesy", 0))
    assert client.get(f"/review/{token}").status_code == 403
    remind(app, confirmed_at(root) + timedelta(days=10, minutes=1))
    assert "Approve</button>" in client.get(f"/review/{token}").get_data(as_text=True)


def test_the_next_stage_is_reminded_and_escalated_afresh(app, client, register_and_verify,
                                                          root, smtp):
    ir_path = register_and_verify(category="physicist-permanent")
    since = confirmed_at(root)
    assert counts(remind(app, since + timedelta(days=10, minutes=1))) == (1, 1, 0)
    assert len(mails_to(smtp, HELPDESK, "waits too long")) == 1
    # The board's stage begins with the IR's approval (the real clock's now)
    # and has its own periods.
    start = datetime.now(timezone.utc).replace(microsecond=0)
    decide(client, ir_path)
    assert counts(remind(app, start + timedelta(days=2))) == (0, 0, 0)
    out = remind(app, start + timedelta(days=3, minutes=1))
    assert counts(out) == (1, 0, 0) and "institutional board" in out and "Giulia Rossi" in out
    [board] = reminders_to(smtp, IB_MEMBER)
    assert "you are asked as: institutional board" in " ".join(body(board).split())
    assert len(reminders_to(smtp, IR)) == 1  # the IR is done
    out = remind(app, start + timedelta(days=10, minutes=2))
    assert counts(out) == (1, 1, 0) and "deputies -" in out  # a group has no deputies
    assert len(mails_to(smtp, HELPDESK, "waits too long")) == 2
    assert len(mails_to(smtp, APPLICANT, "longer than usual")) == 2
    assert counts(remind(app, start + timedelta(days=10, hours=3))) == (0, 0, 0)
    page = client.get(local_path(links_in(reminders_to(smtp, IB_MEMBER)[-1])[0]))
    assert "This category needs a formal application" in page.get_data(as_text=True)


def test_unconfirmed_requests_expire_once_and_free_the_name(app, client, root, smtp):
    assert post_registration(client).status_code == 302
    submitted = read_entry(root, ENTRY).portalSubmittedAt.value
    assert counts(remind(app, submitted + timedelta(days=6, hours=23))) == (0, 0, 0)
    out = remind(app, submitted + timedelta(days=7, minutes=1))
    assert counts(out) == (0, 0, 1)
    assert "expired tiijima" in out and "tiijima is free again" in out
    assert read_entry(root, ENTRY) is None
    assert counts(remind(app, submitted + timedelta(days=7, hours=1))) == (0, 0, 0)
    # Nobody was asked to approve it, nothing reminded.
    assert not mails_to(smtp, IR)
    # The name is free: someone registers it again, and that request waits afresh.
    assert post_registration(client).status_code == 302
    resubmitted = read_entry(root, ENTRY).portalSubmittedAt.value
    assert counts(remind(app, resubmitted + timedelta(days=7, minutes=1))) == (0, 0, 1)


def test_confirmed_requests_do_not_expire(app, client, register_and_verify, root, smtp):
    register_and_verify()
    out = remind(app, confirmed_at(root) + timedelta(days=8))
    assert counts(out)[2] == 0 and read_entry(root, ENTRY) is not None


def test_two_runs_at_once_send_each_mail_once(app, client, register_and_verify, root, smtp,
                                             kek_deputy):
    register_and_verify()
    at = confirmed_at(root) + timedelta(days=10, minutes=1)
    reports = []

    def run():
        with app.app_context():
            reports.append(app.extensions["portal"].reminders.run(at))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.escalated for r in reports) == 1 and sum(r.reminded for r in reports) == 1
    assert len(reminders_to(smtp, IR)) == 1 and len(reminders_to(smtp, DEPUTY)) == 1
    assert len(mails_with(smtp, "waits too long")) == 1


def test_the_periods_are_settings(slapd, smtp, root, ratestore):
    from app import create_app
    from helpers import portal_environment
    smtp.clear()
    app = create_app(portal_environment(slapd, smtp, PORTAL_REMINDER_DAYS="1",
                                        PORTAL_ESCALATION_DAYS="2"))
    client = app.test_client()
    assert post_registration(client).status_code == 302
    confirm(client, smtp)
    since = confirmed_at(root)
    assert counts(remind(app, since + timedelta(days=1, minutes=1))) == (1, 0, 0)
    assert counts(remind(app, since + timedelta(days=2, minutes=1))) == (1, 1, 0)
