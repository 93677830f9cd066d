"""Approval chains by category: IR first, then the institutional board."""
from __future__ import annotations

from app.services.links import ReviewLink
from helpers import (
    PEOPLE,
    REQUESTS,
    csrf_token,
    decide,
    forge_link,
    links_in,
    local_path,
    mails_to,
    read_entry,
)

IB_MEMBER = "giulia.rossi@infn.example"  # irinfn is in cn=ib (demo data)
DN = f"uid=tiijima,{PEOPLE}"


def review_link(smtp, address):
    return local_path(links_in(mails_to(smtp, address, "membership request")[-1])[0])


def test_two_stages_each_mailed_when_the_previous_approves(client, register_and_verify, root, smtp):
    ir_path = register_and_verify(category="physicist-permanent")
    assert not mails_to(smtp, IB_MEMBER)  # the board waits for the IR
    page = client.get(ir_path).get_data(as_text=True)
    assert "Approval stages" in page and "institutional board" in page

    response = decide(client, ir_path)
    assert "Approved at your stage" in response.get_data(as_text=True)
    entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert entry.portalRequestStatus.value == "pending-approval"
    assert entry.portalApprovalStage.value == "1"
    assert read_entry(root, DN) is None
    board_mail = mails_to(smtp, IB_MEMBER)[0].get_body(preferencelist=("plain",)).get_content()
    assert "You are asked as: institutional board" in board_mail
    # The board is not told it decides as the IR; the applicant learns where it waits.
    assert "As its representative" not in board_mail and "formal application" in board_mail
    [next_stage] = mails_to(smtp, "toru.iijima@kek.example", "next stage")
    text = next_stage.get_body(preferencelist=("plain",)).get_content()
    assert "institutional board" in text and "formal application" in text

    again = client.get(ir_path).get_data(as_text=True)
    assert "This stage is approved already" in again and "waiting" in again
    assert "Approve</button>" not in again

    board = review_link(smtp, IB_MEMBER)
    page = client.get(board).get_data(as_text=True)
    assert "This category needs a formal application" in page
    assert decide(client, board).status_code == 400  # no reference: nothing recorded
    assert read_entry(root, f"uid=tiijima,{REQUESTS}").portalApprovalStage.value == "1"
    response = client.post(board, data={"csrf_token": csrf_token(page), "decision": "approve",
                                        "reference": "Letter of 2026-11-20"})
    assert "<h1>Approved</h1>" in response.get_data(as_text=True)
    assert any("Letter of 2026-11-20" in e for e in
               read_entry(root, f"uid=tiijima,{REQUESTS}").portalAuditEvent.values)
    assert read_entry(root, DN).portalStatus.value == "active"
    assert mails_to(smtp, "toru.iijima@kek.example", "is ready")
    assert "already approved by Giulia Rossi (irinfn)" in client.get(ir_path).get_data(as_text=True)


def test_a_rejection_at_any_stage_ends_it(client, register_and_verify, root, smtp):
    ir_path = register_and_verify(category="physicist-permanent")
    decide(client, ir_path)
    response = decide(client, review_link(smtp, IB_MEMBER), "reject", "No formal application")
    assert "Rejected" in response.get_data(as_text=True)
    entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert entry.portalRequestStatus.value == "rejected"
    assert read_entry(root, DN) is None
    [mail] = mails_to(smtp, "toru.iijima@kek.example", "not approved")
    assert "No formal application" in mail.get_body(preferencelist=("plain",)).get_content()


def test_only_the_stage_approvers_may_decide_it(app, client, register_and_verify, root, smtp):
    ir_path = register_and_verify(category="physicist-permanent")
    # The KEK IR is not on the board; the board member is not KEK's IR.
    for payload, expected in (({"r": "tiijima", "ir": "irkek", "st": 1}, 403),
                              ({"r": "tiijima", "ir": "irinfn", "st": 0}, 403),
                              ({"r": "tiijima", "ir": "irkek", "st": 7}, 404)):  # no such stage
        token = forge_link(app, ReviewLink.purpose, payload)
        status = client.get(f"/review/{token}").status_code
        assert status == expected, (payload, status)
    decide(client, ir_path)
    # The IR's own (stage 0) link cannot decide stage 1.
    html = client.get("/register").get_data(as_text=True)  # a CSRF token of this session
    response = client.post(ir_path, data={"csrf_token": csrf_token(html), "decision": "reject",
                                          "reason": "changed my mind"})
    request_entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert request_entry.portalRequestStatus.value == "pending-approval"
    assert "This stage is approved already" in response.get_data(as_text=True)


def test_one_person_cannot_approve_two_stages(app, client, smtp, root, register_and_verify):
    review = register_and_verify(category="physicist-permanent", institution="infn")
    decide(client, review)
    # irinfn is both INFN's IR and the only board member.
    stage_1 = forge_link(app, ReviewLink.purpose, {"r": "tiijima", "ir": "irinfn", "st": 1})
    response = client.get(f"/review/{stage_1}")
    assert response.status_code == 403
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is None
