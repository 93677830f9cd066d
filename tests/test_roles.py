"""Roles beyond one's own account: institute representatives and the
helpdesk, read from the directory at every check."""
from __future__ import annotations

import re

import ldap3

from app.devstack.slapd import DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD, DEMO_IR_PASSWORD
from helpers import BASE_DN, PEOPLE, login

KEK = f"portalInstitutionId=kek,ou=institutions,{BASE_DN}"
HELPDESK_GROUP = f"cn=helpdesk,ou=groups,{BASE_DN}"


def roles(app, account):
    with app.app_context():
        return app.extensions["portal"].roles.roles_of(account)


def test_the_demo_helpdesk_logs_in_and_has_the_helpdesk_role(app, client):
    response = login(client, DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")
    # Like every demo account it is asked to accept the conditions first.
    assert client.get("/account").headers["Location"].endswith("/account/conditions")
    found = roles(app, DEMO_HELPDESK)
    assert found.helpdesk and not found.is_representative


def test_representatives_represent_their_own_institution_only(app):
    found = roles(app, "irkek")
    assert found.institution_ids == {"kek"} and not found.helpdesk
    assert found.represents("kek") and not found.represents("desy")
    assert not roles(app, "tiijima").is_representative  # not a member at all
    assert roles(app, "nosuchone").institution_ids == frozenset()


def test_a_role_ends_the_moment_the_directory_says_so(app, root):
    assert roles(app, "irkek").represents("kek")
    try:
        assert root.modify(KEK, {"portalRepresentative": [
            (ldap3.MODIFY_DELETE, [f"uid=irkek,{PEOPLE}"])]}), root.result
        assert not roles(app, "irkek").is_representative
        assert root.modify(HELPDESK_GROUP, {"member": [
            (ldap3.MODIFY_DELETE, [f"uid={DEMO_HELPDESK},{PEOPLE}"])]}), root.result
        assert not roles(app, DEMO_HELPDESK).helpdesk
    finally:
        # The root fixture removes added entries only: later modules need these.
        root.modify(KEK, {"portalRepresentative": [
            (ldap3.MODIFY_ADD, [f"uid=irkek,{PEOPLE}"])]})
        root.modify(HELPDESK_GROUP, {"member": [
            (ldap3.MODIFY_ADD, [f"uid={DEMO_HELPDESK},{PEOPLE}"])]})


def test_a_suspended_representative_has_no_role(app, root):
    try:
        assert root.modify(f"uid=irdesy,{PEOPLE}", {"portalStatus": [
            (ldap3.MODIFY_REPLACE, ["suspended"])]}), root.result
        assert not roles(app, "irdesy").is_representative
    finally:
        root.modify(f"uid=irdesy,{PEOPLE}", {"portalStatus": [
            (ldap3.MODIFY_REPLACE, ["active"])]})
    assert roles(app, "irdesy").represents("desy")


def test_the_header_links_the_consoles_of_ones_roles_only(app):
    def header_links(account, password):
        client = app.test_client()
        login(client, account, password)
        page = client.get("/account/conditions").get_data(as_text=True)
        return set(re.findall(r'href="/(ir|invitations|helpdesk)"', page))
    assert header_links("irkek", DEMO_IR_PASSWORD) == {"ir", "invitations"}
    assert header_links(DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD) == {"helpdesk"}


def test_the_header_follows_the_institutions_catalog_and_the_console_checks_at_once(app, root):
    """The header's console links come from the institutions' short-lived
    catalog (no search per page); the console itself asks the directory on
    every request: a removed representative gets 403 at once, and the link
    goes when the catalog is read again (after its minute, or at once in
    the process that changed it through the helpdesk)."""
    client = app.test_client()
    login(client, "irkek", DEMO_IR_PASSWORD)
    client.post("/account/conditions", data={
        "csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(
            "/account/conditions").get_data(as_text=True)).group(1), "accept_conditions": "y"})

    def header_links():
        page = client.get("/account").get_data(as_text=True)
        return set(re.findall(r'href="/(ir|invitations|helpdesk)"', page))
    catalog = app.extensions["portal"].institutions
    catalog.invalidate()
    assert header_links() == {"ir", "invitations"}
    assert client.get("/ir").status_code == 200
    # A value an operator typed with other spacing and case is the same DN
    # (slapd keeps DN values without the spaces; the catalog ignores case).
    assert root.modify(KEK, {"portalRepresentative": [
        (ldap3.MODIFY_DELETE, [f"uid=irkek,{PEOPLE}"]),
        (ldap3.MODIFY_ADD, [f"UID=irkek, ou=People, {BASE_DN}"])]}), root.result
    catalog.invalidate()
    assert header_links() == {"ir", "invitations"}
    try:
        assert root.modify(KEK, {"portalRepresentative": [
            (ldap3.MODIFY_DELETE, [f"uid=irkek,{PEOPLE}"])]}), root.result
        assert client.get("/ir").status_code == 403  # at once
        assert header_links() == {"ir", "invitations"}  # the catalog is still fresh
        catalog.invalidate()
        assert header_links() == set()
    finally:
        root.modify(KEK, {"portalRepresentative": [
            (ldap3.MODIFY_ADD, [f"uid=irkek,{PEOPLE}"])]})
        catalog.invalidate()
    assert header_links() == {"ir", "invitations"}
