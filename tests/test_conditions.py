"""A new version of the conditions of use is accepted at the next login."""
from __future__ import annotations

import json

from app import create_app
from app.settings import DEFAULT_COLLABORATION_FILE
from helpers import (
    NEW_PASSWORD,
    PEOPLE,
    STRONG_PASSWORD,
    change_password,
    csrf_token,
    form_errors,
    login,
    portal_environment,
    read_entry,
)

DN = f"uid=tiijima,{PEOPLE}"


def test_new_conditions_must_be_accepted_before_anything_else(client, member, root,
                                                              slapd, smtp, tmp_path):
    login(client)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    assert client.get("/account").status_code == 200  # version 2026-01 accepted at registration

    collaboration = tmp_path / "collaboration.toml"
    collaboration.write_text(DEFAULT_COLLABORATION_FILE.read_text().replace(
        'version = "2026-01"', 'version = "2027-01"'))
    updated = create_app(portal_environment(slapd, smtp,
                                            PORTAL_COLLABORATION_FILE=str(collaboration)))
    member = updated.test_client()
    response = login(member, password=NEW_PASSWORD)
    assert response.headers["Location"].endswith("/account")
    response = member.get("/account")
    assert response.headers["Location"].endswith("/account/conditions")
    assert member.get("/account/password").headers["Location"].endswith("/account/conditions")
    page = member.get("/account/conditions").get_data(as_text=True)
    assert "2027-01" in page

    response = member.post("/account/conditions", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 200
    assert any("must accept" in e for e in form_errors(response.get_data(as_text=True)))
    assert read_entry(root, DN).portalConditionsVersion.value == "2026-01"

    response = member.post("/account/conditions", data={"csrf_token": csrf_token(page),
                                                        "accept_conditions": "y"})
    assert response.headers["Location"].endswith("/account")
    assert member.get("/account").status_code == 200
    person = read_entry(root, DN)
    assert person.portalConditionsVersion.value == "2027-01"
    accepted = [json.loads(e) for e in person.portalAuditEvent.values
                if "conditions-accepted" in e]
    assert accepted and accepted[0]["version"] == "2027-01"

    other = updated.test_client()
    assert login(other, password=NEW_PASSWORD).headers["Location"].endswith("/account")
    assert other.get("/account").status_code == 200  # asked once only
