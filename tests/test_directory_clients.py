"""The directory as the collaborative services see it, through clients the
portal does not use: Apache httpd (mod_authnz_ldap) and python-ldap
(libldap). Each binds with a service account of its own."""
from __future__ import annotations

import os
import re
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ldap
import ldap.filter
import ldap3
import pytest
from ldap.controls import DecodeControlTuples, SimplePagedResultsControl
from ldap.controls.ppolicy import PasswordPolicyControl

from app.devstack.slapd import ARGON2_PARAMETERS
from app.portal import portal
from app.services.passwords import hash_password
from app.vocabulary import MemberStatus
from fixtures.clients import (
    GROUPS,
    python_ldap,
    service_account,
    start_apache,
    stop_apache,
    stop_server,
)
from helpers import BASE_DN, MAIN_GROUP, PEOPLE, STRONG_PASSWORD, csrf_token, post_registration

MEMBER_DN = f"uid=tiijima,{PEOPLE}"
CHANGED_PASSWORD = "Copper-meadow-violin-73"


@pytest.fixture
def approve(client, register_and_verify):
    """Register and approve 'tiijima' (or another account) through the portal."""
    def run(**changes) -> str:
        review = register_and_verify(**changes)
        html = client.get(review).get_data(as_text=True)
        client.post(review, data={"csrf_token": csrf_token(html), "decision": "approve"})
        return changes.get("account_name", "tiijima")
    return run


@pytest.fixture(scope="module")
def reader(slapd):
    """A service account, as a wiki or tracker sync would have it."""
    return service_account(slapd, "sync")


def login(client, account_name: str, password: str):
    html = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"csrf_token": csrf_token(html),
                                       "account_name": account_name, "password": password})


def change_password(client, current: str, new: str):
    html = client.get("/account/password").get_data(as_text=True)
    return client.post("/account/password", data={
        "csrf_token": csrf_token(html), "current_password": current, "password": new,
        "password_confirm": new})


def binds(slapd, dn: str, password: str | bytes) -> bool:
    try:
        python_ldap(slapd.url, dn, password).unbind_s()
        return True
    except ldap.INVALID_CREDENTIALS:
        return False


def cli(app, *args) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


# -- Apache httpd with mod_authnz_ldap --------------------------------------------------

def test_apache_lets_an_approved_member_in_and_refuses_a_wrong_password(apache, approve):
    approve()
    assert apache.get("/members/index.txt") == 401
    assert apache.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 200
    assert apache.get("/members/index.txt", "tiijima", "Wrong-password-1") == 401
    assert apache.get("/members/index.txt", "nobody1", STRONG_PASSWORD) == 401
    # AuthLDAPRemoteUserAttribute uid: REMOTE_USER is the directory's uid,
    # whatever case was typed.
    assert apache.get("/members/index.txt", "TiiJima", STRONG_PASSWORD) == 200
    assert apache.remote_users()[-2:] == ["tiijima", "tiijima"]


def test_apache_verifies_the_directorys_certificate(slapd, reader, other_ca, approve):
    """The README's Apache snippet talks ldaps:// with LDAPTrustedGlobalCert
    (the fixture does): with a CA that did not sign the directory's
    certificate nobody gets in."""
    approve()
    server = start_apache(slapd.ldaps_url, *reader, Path(other_ca))
    try:
        assert server.get("/members/index.txt", "tiijima", STRONG_PASSWORD) != 200
    finally:
        stop_apache(server)


def test_apaches_cache_keeps_a_suspended_member_in_for_the_ttl_only(slapd, reader, approve, app):
    """With caches on (the README's LDAPCacheTTL), a member suspended after a
    login still gets in until the TTL has passed, then no longer."""
    approve()
    ttl = 5
    server = start_apache(slapd.ldaps_url, *reader, slapd.settings.ca_file, cache_ttl=ttl)
    try:
        assert server.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 200
        cached_at = time.monotonic()
        cli(app, "members", "suspend", "tiijima", "--reason", "test", "--by", "helpdesk")
        status = server.get("/members/index.txt", "tiijima", STRONG_PASSWORD)
        if time.monotonic() - cached_at < ttl - 1:
            assert status == 200  # the cache answered, not the directory
        deadline = cached_at + ttl + 15
        while server.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 200:
            assert time.monotonic() < deadline, "still let in long after the cache TTL"
            time.sleep(0.2)
        assert time.monotonic() - cached_at >= ttl - 1
    finally:
        stop_server(server.process, server.root)


def test_apache_refuses_suspended_and_expired_members(apache, approve, app, root):
    approve(category="student")
    assert apache.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 200
    cli(app, "members", "suspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    assert apache.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 401
    cli(app, "members", "unsuspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    assert apache.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 200
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["portalMemberUntil"])
    until = root.entries[0].portalMemberUntil.value
    cli(app, "members", "expire", "--now",
        (until + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert apache.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 401


def test_apache_status_rule_holds_without_the_lock(apache, approve, root):
    """Require ldap-attribute portalStatus=active refuses a member whose
    status is not active even if the directory still lets them bind."""
    approve()
    root.modify(MEMBER_DN, {"portalStatus": [(ldap3.MODIFY_REPLACE, ["suspended"])]})
    assert apache.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 401
    root.modify(MEMBER_DN, {"portalStatus": [(ldap3.MODIFY_REPLACE, ["active"])]})
    assert apache.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 200


def test_apache_extra_group_rule_and_groups_for_both_posix_schemas(apache, approve, app, slapd,
                                                                  reader):
    approve()
    assert apache.get("/naf/index.txt", "tiijima", STRONG_PASSWORD) == 401  # not in naf
    naf = f"cn=naf,{GROUPS}"
    with app.app_context():
        portal().directory.add_group_member(naf, MEMBER_DN)
    try:
        assert apache.get("/naf/index.txt", "tiijima", STRONG_PASSWORD) == 200, apache.log()[-3000:]
        service = python_ldap(slapd.url, *reader)
        [(_, group)] = service.search_s(naf, ldap.SCOPE_BASE, attrlist=["*"])
        # rfc2307bis (member DNs) and rfc2307 (memberUid), a gidNumber; the
        # portal's placeholder is not shown to services.
        assert group["member"] == [MEMBER_DN.encode()]
        assert group["memberUid"] == [b"tiijima"]
        assert group["gidNumber"]
        # Every group there is (as the rootdn lists them): a gidNumber, no
        # placeholder; a static group lists each person member by memberUid too.
        everything = python_ldap(slapd.url, slapd.settings.root_dn, slapd.settings.root_password)
        stored = everything.search_ext_s(
            GROUPS, ldap.SCOPE_ONELEVEL, "(objectClass=groupOfNames)", ["objectClass"],
            serverctrls=[ldap.controls.LDAPControl("2.16.840.1.113730.3.4.2", True)])
        assert {"members", "helpdesk", "ib", "naf-managers", "naf"} <= {
            dn.split(",")[0].split("=")[1] for dn, _ in stored}
        for group_dn, classes in stored:
            [(_, g)] = service.search_s(group_dn, ldap.SCOPE_BASE,
                                        attrlist=["gidNumber", "member", "memberUid"])
            assert g.get("gidNumber"), group_dn
            assert b"cn=portal,ou=services," + BASE_DN.encode() not in g.get("member", []), \
                group_dn
            if b"portalDynamicGroup" not in classes["objectClass"]:
                people = {m.decode().split(",")[0].split("=")[1] for m in g.get("member", [])
                          if m.decode().lower().endswith(PEOPLE.lower())}
                assert {u.decode() for u in g.get("memberUid", [])} == people, group_dn
        # Suspension leaves every group (re-applied after reactivation).
        cli(app, "members", "suspend", "tiijima", "--reason", "test", "--by", "helpdesk")
        [(_, group)] = service.search_s(naf, ldap.SCOPE_BASE, attrlist=["member", "memberUid"])
        assert MEMBER_DN.encode() not in group.get("member", [])
        assert b"tiijima" not in group.get("memberUid", [])
        [(_, person)] = service.search_s(MEMBER_DN, ldap.SCOPE_BASE, attrlist=["shadowExpire"])
        assert person["shadowExpire"] == [b"1"]  # SSSD's account check refuses
        cli(app, "members", "unsuspend", "tiijima", "--reason", "test", "--by", "helpdesk")
        [(_, person)] = service.search_s(MEMBER_DN, ldap.SCOPE_BASE, attrlist=["shadowExpire"])
        assert "shadowExpire" not in person
    finally:
        with app.app_context():
            portal().directory.remove_group_member(naf, MEMBER_DN)


def test_the_dynamic_main_group_as_services_see_it(approve, app, slapd, reader):
    """The main group stores no value per member (dynlist computes them from
    portalStatus), yet a service sees the member in it every way a client
    asks: member values, a compare (Apache's ldap-group), a filter on member
    (SSSD's rfc2307bis initgroups), memberOf on the member and a filter on
    memberOf, and the main group's gidNumber as the primary group (rfc2307);
    a suspended member is in none of them, an unsuspended one is back."""
    approve()
    service = python_ldap(slapd.url, *reader)
    member = MEMBER_DN.encode()

    def views() -> tuple[bool, ...]:
        [(_, group)] = service.search_s(MAIN_GROUP, ldap.SCOPE_BASE, attrlist=["member"])
        by_filter = {dn for dn, _ in service.search_s(
            GROUPS, ldap.SCOPE_ONELEVEL, f"(member={MEMBER_DN})", ["cn"])}
        [(_, person)] = service.search_s(MEMBER_DN, ldap.SCOPE_BASE,
                                         attrlist=["memberOf", "gidNumber"])
        members_of = {dn for dn, _ in service.search_s(
            PEOPLE, ldap.SCOPE_ONELEVEL, f"(memberOf={MAIN_GROUP})", ["uid"])}
        return (member in group["member"], service.compare_s(MAIN_GROUP, "member", member),
                MAIN_GROUP in by_filter, MAIN_GROUP.encode() in person.get("memberOf", []),
                MEMBER_DN in members_of)

    assert views() == (True,) * 5
    [(_, group)] = service.search_s(MAIN_GROUP, ldap.SCOPE_BASE, attrlist=["gidNumber"])
    [(_, person)] = service.search_s(MEMBER_DN, ldap.SCOPE_BASE, attrlist=["gidNumber"])
    assert person["gidNumber"] == group["gidNumber"]
    # The documented difference: no memberUid (rfc2307 clients see the
    # members by their primary gidNumber).
    [(_, group)] = service.search_s(MAIN_GROUP, ldap.SCOPE_BASE, attrlist=["memberUid"])
    assert "memberUid" not in group
    # Nothing was written to the group: as stored (manageDSAit) it holds
    # the placeholder and its URL only.
    root = python_ldap(slapd.url, slapd.settings.root_dn, slapd.settings.root_password)
    [(_, stored)] = root.search_ext_s(
        MAIN_GROUP, ldap.SCOPE_BASE, attrlist=["member", "memberUid", "memberURL"],
        serverctrls=[ldap.controls.LDAPControl("2.16.840.1.113730.3.4.2", True)])
    assert stored["member"] == [f"cn=portal,ou=services,{BASE_DN}".encode()]
    assert "memberUid" not in stored and stored["memberURL"]
    cli(app, "members", "suspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    assert views() == (False,) * 5
    cli(app, "members", "unsuspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    assert views() == (True,) * 5


def test_expiry_withdraws_the_member_from_every_group_and_the_posix_account(
        approve, app, slapd, reader, root, apache):
    """An expired member leaves the extra groups (member and memberUid) and
    the dynamic main group, gets shadowExpire (SSSD's account check, ssh-key
    logins included) and is refused by Apache's group rule; reactivation is a
    new application for the extra groups (README, "Expiry and suspension")."""
    approve(category="student")
    naf = f"cn=naf,{GROUPS}"
    with app.app_context():
        portal().directory.add_group_member(naf, MEMBER_DN)
    assert apache.get("/naf/index.txt", "tiijima", STRONG_PASSWORD) == 200
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["portalMemberUntil"])
    until = root.entries[0].portalMemberUntil.value
    cli(app, "members", "expire", "--now",
        (until + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    service = python_ldap(slapd.url, *reader)
    [(_, group)] = service.search_s(naf, ldap.SCOPE_BASE, attrlist=["member", "memberUid"])
    assert MEMBER_DN.encode() not in group.get("member", [])
    assert b"tiijima" not in group.get("memberUid", [])
    assert not service.compare_s(MAIN_GROUP, "member", MEMBER_DN.encode())
    [(_, person)] = service.search_s(MEMBER_DN, ldap.SCOPE_BASE,
                                     attrlist=["shadowExpire", "memberOf", "portalStatus"])
    assert person["shadowExpire"] == [b"1"] and "memberOf" not in person
    assert person["portalStatus"] == [MemberStatus.EXPIRED.encode()]
    assert apache.get("/naf/index.txt", "tiijima", STRONG_PASSWORD) == 401
    assert apache.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 401


# -- Dovecot (passdb and userdb ldap) -----------------------------------------------------

def test_dovecot_follows_the_members_status(dovecot, approve, app, root):
    approve(category="student")
    assert dovecot.auth("tiijima", STRONG_PASSWORD)
    assert not dovecot.auth("tiijima", "Wrong-password-1")
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["uidNumber"])
    fields = dovecot.user("tiijima")
    assert (fields["uid"], fields["gid"], fields["home"]) == (
        str(root.entries[0].uidNumber.value), "30000", "/home/tiijima")
    cli(app, "members", "suspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    assert not dovecot.auth("tiijima", STRONG_PASSWORD)
    assert dovecot.user("tiijima") is None  # the userdb no longer knows them
    cli(app, "members", "unsuspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    assert dovecot.auth("tiijima", STRONG_PASSWORD) and dovecot.user("tiijima")
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["portalMemberUntil"])
    until = root.entries[0].portalMemberUntil.value
    cli(app, "members", "expire", "--now",
        (until + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert not dovecot.auth("tiijima", STRONG_PASSWORD)
    assert dovecot.user("tiijima") is None


# -- passwords reach the directory only through the portal -------------------------------

def test_members_cannot_write_a_password_in_any_form(approve, slapd, root):
    approve()
    me = python_ldap(slapd.url, MEMBER_DN, STRONG_PASSWORD)
    for value in (b"Cleartext-Stored-Pass-1", b"{SSHA}aGVsbG8gd29ybGQxMjM0NTY3OA==",
                  hash_password("x")):
        with pytest.raises(ldap.INSUFFICIENT_ACCESS):
            me.modify_s(MEMBER_DN, [(ldap.MOD_REPLACE, "userPassword", [value])])
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):  # ldappasswd's Password Modify
        me.passwd_s(MEMBER_DN, STRONG_PASSWORD, "tiijima-Velvet-harbour-9")
    assert binds(slapd, MEMBER_DN, STRONG_PASSWORD)


def test_services_cannot_write_passwords_or_members(approve, slapd, reader):
    approve()
    service = python_ldap(slapd.url, *reader)
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        service.modify_s(MEMBER_DN, [(ldap.MOD_REPLACE, "userPassword", [b"Cleartext-1234567"])])
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        service.passwd_s(MEMBER_DN, None, "Velvet-harbour-tide-31")
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        service.modify_s(MEMBER_DN, [(ldap.MOD_REPLACE, "mail", [b"x@example.org"])])


def test_the_portals_account_cannot_store_weak_or_prehashed_passwords(approve, client, slapd):
    """Under the default policy (after the first change) slapd itself refuses
    what breaks its rules, even from the portal's own account."""
    approve()
    login(client, "tiijima", STRONG_PASSWORD)
    assert change_password(client, STRONG_PASSWORD, CHANGED_PASSWORD).status_code == 302
    conn = python_ldap(slapd.url, slapd.settings.service_dn, slapd.settings.service_password)
    for value in (hash_password("Some-other-long-pass-1"), b"{SSHA}aGVsbG8gd29ybGQxMjM0NTY3OA=="):
        with pytest.raises(ldap.CONSTRAINT_VIOLATION):
            conn.modify_s(MEMBER_DN, [(ldap.MOD_REPLACE, "userPassword", [value])])
    with pytest.raises(ldap.CONSTRAINT_VIOLATION):
        conn.passwd_s(MEMBER_DN, None, "short")  # pwdMinLength
    with pytest.raises(ldap.CONSTRAINT_VIOLATION):
        conn.passwd_s(MEMBER_DN, None, STRONG_PASSWORD)  # history
    assert binds(slapd, MEMBER_DN, CHANGED_PASSWORD)


def test_cleartext_written_by_anyone_allowed_to_is_stored_hashed(approve, client, slapd, root):
    """ppolicy_hash_cleartext: a cleartext userPassword written by the
    portal's account (default policy) or by the rootdn is stored as slapd's
    argon2 hash, never as the clear text; the password then binds."""
    approve()
    login(client, "tiijima", STRONG_PASSWORD)
    assert change_password(client, STRONG_PASSWORD, CHANGED_PASSWORD).status_code == 302
    writers = {"the portal": (slapd.settings.service_dn, slapd.settings.service_password),
               "the rootdn": (slapd.settings.root_dn, slapd.settings.root_password)}
    for n, (who, (dn, password)) in enumerate(writers.items()):
        clear = f"Quartz-harbour-meadow-{n}{n + 7}"
        python_ldap(slapd.url, dn, password).modify_s(
            MEMBER_DN, [(ldap.MOD_REPLACE, "userPassword", [clear.encode()])])
        root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
        [stored] = root.response[0]["raw_attributes"]["userPassword"]
        assert stored.startswith(b"{ARGON2}$argon2i$") and clear.encode() not in stored, who
        assert binds(slapd, MEMBER_DN, clear), who


def test_a_changed_password_is_hashed_by_slapd_with_the_configured_cost(approve, client, slapd,
                                                                       root):
    approve()
    login(client, "tiijima", STRONG_PASSWORD)
    assert change_password(client, STRONG_PASSWORD, CHANGED_PASSWORD).status_code == 302
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE,
                attributes=["userPassword", "pwdPolicySubentry"])
    [stored] = root.response[0]["raw_attributes"]["userPassword"]
    # Debian's module makes argon2i; memory and time as configured (OWASP's minimum).
    m, t, p = (part.split("=")[1] for part in ARGON2_PARAMETERS.split())
    assert stored.startswith(f"{{ARGON2}}$argon2i$v=19$m={m},t={t},p={p}$".encode()), stored[:40]
    assert not root.response[0]["attributes"]["pwdPolicySubentry"]  # the initial state ended
    assert binds(slapd, MEMBER_DN, CHANGED_PASSWORD)


# -- nothing private readable --------------------------------------------------------------

# The portal's own attribute types that services may read (README, "Who
# reads what"): of members their middle name, status, institution and
# category; of institutions the id, representatives and deputies. Every
# other attribute type in portal.schema, present or added later, is private.
PUBLIC_PORTAL_ATTRIBUTES = frozenset({
    "portalMiddleName", "portalStatus", "portalHomeInstitution", "portalCategory",
    "portalInstitutionId", "portalRepresentative", "portalDeputy"})
# A value of each syntax portal.schema uses, to write every attribute type.
SYNTAX_VALUES = {
    "1.3.6.1.4.1.1466.115.121.1.15": b"Private value",         # Directory String
    "1.3.6.1.4.1.1466.115.121.1.24": b"20260101000000Z",       # Generalized Time
    "1.3.6.1.4.1.1466.115.121.1.26": b"private-value",         # IA5 String
    "1.3.6.1.4.1.1466.115.121.1.27": b"7",                     # Integer
    "1.3.6.1.4.1.1466.115.121.1.40": b"private-octets",        # Octet String
    "1.3.6.1.4.1.1466.115.121.1.12": f"uid=irkek,{PEOPLE}".encode(),  # DN (SUP distinguishedName)
}
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "ldap_schema" / "portal.schema"


def portal_attribute_types() -> dict[str, str]:
    """Name -> syntax OID of every attribute type in portal.schema."""
    types = {}
    for block in re.split(r"\n(?=attributetype|objectclass)", SCHEMA_FILE.read_text()):
        if not block.startswith("attributetype"):
            continue
        name = re.search(r"NAME '(\w+)'", block).group(1)
        syntax = re.search(r"SYNTAX ([\d.]+)", block)
        types[name] = syntax.group(1) if syntax else "1.3.6.1.4.1.1466.115.121.1.12"
        assert syntax or "SUP distinguishedName" in block, block
    return types


def private_attributes(slapd) -> list[str]:
    """Every private attribute a member entry may carry: portal.schema's but
    the public ones, the password, every operational attribute of the
    password policy (from slapd's own subschema: pwd* with directoryOperation
    usage) and modifyTimestamp (it would show who had a password change)."""
    root = python_ldap(slapd.url, slapd.settings.root_dn, slapd.settings.root_password)
    [(_, subschema)] = root.search_s("cn=Subschema", ldap.SCOPE_BASE, "(objectClass=*)",
                                     ["attributeTypes"])
    policy_state = {re.search(r"NAME '(\w+)'", d.decode()).group(1)
                    for d in subschema["attributeTypes"]
                    if re.search(r"NAME '(pwd\w+)'", d.decode())
                    and "USAGE directoryOperation" in d.decode()}
    assert {"pwdHistory", "pwdFailureTime", "pwdChangedTime", "pwdAccountLockedTime",
            "pwdPolicySubentry", "pwdReset", "pwdGraceUseTime"} <= policy_state
    portal_private = set(portal_attribute_types()) - PUBLIC_PORTAL_ATTRIBUTES
    return sorted(portal_private | policy_state | {"userPassword", "modifyTimestamp"})


def test_policy_state_and_private_attributes_are_invisible_to_members_and_services(
        approve, client, slapd, root, reader):
    private = private_attributes(slapd)
    approve()
    login(client, "tiijima", STRONG_PASSWORD)
    assert change_password(client, STRONG_PASSWORD, CHANGED_PASSWORD).status_code == 302
    for _ in range(3):
        binds(slapd, MEMBER_DN, "Wrong-password-1")
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["pwdHistory"])
    assert root.response[0]["attributes"]["pwdHistory"]  # there, for the rootdn
    viewers = {"another member": (f"uid=irkek,{PEOPLE}", "Demo-representative-2026"),
               "a service": reader, "the member": (MEMBER_DN, CHANGED_PASSWORD)}
    for who, (dn, password) in viewers.items():
        conn = python_ldap(slapd.url, dn, password)
        [(_, attributes)] = conn.search_s(MEMBER_DN, ldap.SCOPE_BASE, attrlist=["*", "+"] + private)
        shown = {a.lower() for a in attributes} & {a.lower() for a in private}
        assert not shown, (who, shown)
        assert attributes["uid"] == [b"tiijima"] and attributes["mail"], who
        for probe in ("(pwdFailureTime=*)", "(pwdHistory=*)", "(portalContactMail=*)",
                      "(pwdChangedTime=*)"):
            assert conn.search_s(PEOPLE, ldap.SCOPE_SUBTREE, probe, ["uid"]) == [], (who, probe)


def test_no_private_portal_attribute_is_readable_or_matchable(slapd, root, reader):
    """Every private attribute type of portal.schema (derived from the file,
    so a new one is covered without touching this test), written on a
    member, a group and an institution (extensibleObject allows any): other
    members, services and the member themself read none of them and find no
    entry by one, with a presence, an equality or (where the type has a
    SUBSTR rule) a substring filter; the public ones and
    the entries stay readable. Entries in the portal's own subtrees
    (requests, invitations, outbox, counters, staff) carrying every
    attribute type are not seen at all."""
    types = portal_attribute_types()
    substring_types = {re.search(r"NAME '(\w+)'", block).group(1)
                       for block in re.split(r"\n(?=attributetype|objectclass)",
                                             SCHEMA_FILE.read_text())
                       if block.startswith("attributetype") and "SUBSTR" in block}
    assert "portalExpiryNotice" in substring_types
    assert PUBLIC_PORTAL_ATTRIBUTES <= set(types)
    private = sorted(set(types) - PUBLIC_PORTAL_ATTRIBUTES)
    assert len(private) > 50, private
    targets = [f"uid=irinfn,{PEOPLE}", f"cn=naf,{GROUPS}",
               f"portalInstitutionId=infn,ou=institutions,{BASE_DN}"]
    for target in targets:
        root.search(target, "(objectClass=*)", ldap3.BASE, attributes=private)
        present = {a.lower() for a, v in root.response[0]["raw_attributes"].items() if v}
        changes = {"objectClass": [(ldap3.MODIFY_ADD, ["extensibleObject"])]}
        changes.update({name: [(ldap3.MODIFY_ADD, [SYNTAX_VALUES[types[name]]])]
                        for name in private if name.lower() not in present})
        assert root.modify(target, changes), (target, root.result)
        root.search(target, "(objectClass=*)", ldap3.BASE, attributes=private)
        assert all(root.response[0]["raw_attributes"].get(n) for n in private), target
    # The substring probe below finds the entries for the rootdn.
    root.search(BASE_DN, "(portalExpiryNotice=pri*)", attributes=["1.1"])
    assert len(root.response) >= len(targets), root.response
    # The portal's own subtrees hide their entries whole, public attributes included.
    hidden = [f"cn=probe,ou={ou},{BASE_DN}"
              for ou in ("requests", "invitations", "outbox", "counters", "staff")]
    for dn in hidden:
        assert root.add(dn, ["applicationProcess", "extensibleObject"], {
            "cn": "probe", **{name: SYNTAX_VALUES[syntax] for name, syntax in types.items()}}), \
            (dn, root.result)
    viewers = {"another member": (f"uid=irkek,{PEOPLE}", "Demo-representative-2026"),
               "a service": reader, "the member": (targets[0], "Demo-representative-2026")}
    for who, (dn, password) in viewers.items():
        conn = python_ldap(slapd.url, dn, password)
        for target in targets:
            [(_, attributes)] = conn.search_s(target, ldap.SCOPE_BASE,
                                              attrlist=["*", "+", *private])
            shown = {a.lower() for a in attributes} & {a.lower() for a in private}
            assert not shown, (who, target, shown)
            assert attributes.get("objectClass"), (who, target)
        for name in private:
            value = SYNTAX_VALUES[types[name]].decode()
            probes = [f"({name}=*)", f"({name}={ldap.filter.escape_filter_chars(value)})"]
            if name in substring_types:  # e.g. portalExpiryNotice, which the portal tests so
                probes.append(f"({name}={ldap.filter.escape_filter_chars(value[:3])}*)")
            for probe in probes:
                found = conn.search_s(BASE_DN, ldap.SCOPE_SUBTREE, probe, ["1.1"])
                assert found == [], (who, probe, found)
        for dn in hidden:
            try:
                assert conn.search_s(dn, ldap.SCOPE_BASE, attrlist=["*", "+"]) == [], (who, dn)
            except ldap.NO_SUCH_OBJECT:
                pass  # slapd does not even admit that it exists
        assert conn.search_s(BASE_DN, ldap.SCOPE_SUBTREE, "(cn=probe)", ["1.1"]) == [], who
        # The public ones stay readable and searchable.
        [(_, person)] = conn.search_s(targets[0], ldap.SCOPE_BASE,
                                      attrlist=["portalStatus", "portalHomeInstitution"])
        assert person["portalStatus"] == [MemberStatus.ACTIVE.encode()], who
        assert conn.search_s(f"ou=institutions,{BASE_DN}", ldap.SCOPE_ONELEVEL,
                             f"(portalRepresentative=uid=irinfn,{PEOPLE})", ["o"]), who


def test_the_portal_reads_no_history_and_no_failures(approve, slapd):
    approve()
    binds(slapd, MEMBER_DN, "Wrong-password-1")
    conn = python_ldap(slapd.url, slapd.settings.service_dn, slapd.settings.service_password)
    [(_, attributes)] = conn.search_s(MEMBER_DN, ldap.SCOPE_BASE,
                                      attrlist=["pwdHistory", "pwdFailureTime", "userPassword"])
    assert attributes == {}
    assert conn.search_s(PEOPLE, ldap.SCOPE_SUBTREE, "(pwdHistory=*)", ["uid"]) == []


# -- lockout cannot be used against a member ---------------------------------------------

def test_failed_binds_lock_nobody_out_and_reveal_nothing(approve, app, slapd, root):
    approve()
    for _ in range(15):
        assert not binds(slapd, MEMBER_DN, "Wrong-password-1")
    assert binds(slapd, MEMBER_DN, STRONG_PASSWORD)
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE,
                attributes=["pwdFailureTime", "pwdAccountLockedTime"])
    attributes = root.response[0]["attributes"]
    assert not attributes["pwdFailureTime"] and not attributes["pwdAccountLockedTime"]
    # A locked (suspended) account answers a wrong password exactly like any
    # other wrong password: no "account locked" in the policy control.
    cli(app, "members", "suspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    for password in ("Wrong-password-1", STRONG_PASSWORD):
        conn = python_ldap(slapd.url)
        with pytest.raises(ldap.INVALID_CREDENTIALS) as failure:
            conn.simple_bind_s(MEMBER_DN, password, serverctrls=[PasswordPolicyControl()])
        controls = DecodeControlTuples(failure.value.args[0].get("ctrls", []))
        assert all(getattr(c, "error", None) is None for c in controls), password


# -- service accounts ------------------------------------------------------------------------

def test_service_accounts_survive_failed_binds_and_age(slapd, reader, root, client):
    dn, password = reader
    for account_dn, secret in ((dn, password),
                               (slapd.settings.service_dn, slapd.settings.service_password)):
        for _ in range(12):
            assert not binds(slapd, account_dn, "wrong")
        assert binds(slapd, account_dn, secret)
        # Older than any member's maximum age (relax control: pwdChangedTime
        # is not writable otherwise).
        old = (datetime.now(timezone.utc) - timedelta(days=400)).strftime("%Y%m%d%H%M%SZ")
        root.modify(account_dn, {"pwdChangedTime": [(ldap3.MODIFY_REPLACE, [old])]},
                    controls=[("1.3.6.1.4.1.4203.666.5.12", True, None)])
        assert binds(slapd, account_dn, secret)
    assert client.get("/register").status_code == 200  # the portal still works
    root.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["userPassword", "pwdPolicySubentry"])
    assert root.response[0]["raw_attributes"]["userPassword"][0].startswith(b"{ARGON2}")
    assert root.response[0]["attributes"]["pwdPolicySubentry"] == \
        f"cn=services,ou=policies,{BASE_DN}"


def test_a_service_pages_through_more_than_500_members(slapd, root, reader):
    for n in range(620):
        root.add(f"uid=bulk{n:04d},{PEOPLE}", ["inetOrgPerson", "posixAccount"], {
            "uid": f"bulk{n:04d}", "cn": "Bulk Member", "sn": "Member", "uidNumber": 60000 + n,
            "gidNumber": 30000, "homeDirectory": f"/home/bulk{n:04d}"})
    # The README's python-ldap snippet: ldaps://, the directory's CA.
    service = python_ldap(slapd.ldaps_url, *reader, ca_file=str(slapd.settings.ca_file))
    with pytest.raises(ldap.SIZELIMIT_EXCEEDED):  # unpaged: the default cap holds
        service.search_s(PEOPLE, ldap.SCOPE_ONELEVEL, "(uid=bulk*)", ["uid"])
    control = SimplePagedResultsControl(True, size=200, cookie="")
    found = 0
    while True:
        msgid = service.search_ext(PEOPLE, ldap.SCOPE_ONELEVEL, "(uid=bulk*)", ["uid"],
                                   serverctrls=[control])
        _, entries, _, controls = service.result3(msgid)
        found += len(entries)
        [page] = [c for c in controls if c.controlType == SimplePagedResultsControl.controlType]
        if not page.cookie:
            break
        control.cookie = page.cookie
    assert found == 620
    # The README's ldapsearch line (-w for -W), over ldaps with the CA.
    dn, password = reader
    result = subprocess.run(
        ["ldapsearch", "-H", slapd.ldaps_url, "-x", "-D", dn, "-w", password, "-b", PEOPLE,
         "-E", "pr=500/noprompt", "(uid=bulk*)", "uid", "cn", "mail", "memberOf"],
        capture_output=True, text=True, env={**os.environ,
                                             "LDAPTLS_CACERT": str(slapd.settings.ca_file)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\ndn: uid=bulk") == 620


# -- one treatment of passwords --------------------------------------------------------------

@pytest.mark.parametrize("password", [
    "Glacier\u00a0lantern-orbit-42",              # NBSP (SASLprep makes it a space)
    "Cafe\u0301-lantern-orbit-42",                # NFD accent
    "\uff27\uff4c\uff41\uff43\uff49\uff45\uff52-orbit-42",  # full-width letters
], ids=["nbsp", "nfd", "fullwidth"])
def test_a_password_works_the_same_through_the_portal_and_a_raw_bind(
        password, approve, client, slapd, apache):
    approve(password=password, password_confirm=password)
    raw = password.encode("utf-8")
    assert binds(slapd, MEMBER_DN, raw)
    assert apache.get("/members/index.txt", "tiijima", raw) == 200
    response = login(client, "tiijima", password)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    # A change to such a password: portal, raw bind and Apache agree again.
    new = password.replace("42", "57")
    assert change_password(client, password, new).status_code == 302
    assert binds(slapd, MEMBER_DN, new.encode("utf-8"))
    assert apache.get("/members/index.txt", "tiijima", new.encode("utf-8")) == 200
    assert not binds(slapd, MEMBER_DN, raw)


def test_a_control_character_in_a_login_password_is_a_plain_failure(approve, client):
    approve()
    for account in ("tiijima", "nobody1"):
        response = login(client, account, "Glacier\x07lantern-orbit-42")
        assert response.status_code == 200
        assert "The account name or password is not right." in response.get_data(as_text=True)


@pytest.mark.parametrize("password, reason", [
    ("Glacier\u200blantern-orbit-42", "cannot contain control or invisible formatting characters"),
    ("{SSHA}Glacier-lantern-orbit-42", "cannot start with a word in braces such as {SSHA}"),
], ids=["invisible", "like-a-hash"])
def test_registration_refuses_an_invisible_character_or_a_hash_like_start_in_the_password(
        client, root, password, reason):
    """The form says why; nothing is stored."""
    response = post_registration(client, password=password, password_confirm=password)
    assert response.status_code == 200
    assert reason in response.get_data(as_text=True)
    root.search(f"ou=requests,{BASE_DN}", "(uid=tiijima)", attributes=["uid"])
    assert root.entries == []


# -- TLS -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """A CA that did not sign the directory's certificate."""
    from app.devstack.certificates import make_certificates
    folder = tmp_path_factory.mktemp("other-ca")
    make_certificates(folder)
    return str(folder / "ca.pem")


def _portal_over(slapd, smtp, **extra):
    from app import create_app
    from helpers import portal_environment
    return create_app(portal_environment(slapd, smtp, **extra))


@pytest.mark.parametrize("mode", ["ldaps", "starttls"])
def test_the_portal_talks_tls_and_verifies_the_certificate(mode, slapd, smtp, other_ca):
    from app.directory import DirectoryUnavailable
    url = slapd.ldaps_url if mode == "ldaps" else slapd.url
    start_tls = "true" if mode == "starttls" else "false"
    good = _portal_over(slapd, smtp, PORTAL_LDAP_URLS=url, PORTAL_LDAP_START_TLS=start_tls,
                        PORTAL_LDAP_CA_FILE=str(slapd.settings.ca_file))
    with good.app_context():
        directory = portal().directory
        assert directory.ping().startswith("dn:cn=portal")
        assert directory.authenticate("irkek", "Demo-representative-2026").ok
        assert not directory.authenticate("irkek", "Wrong-password-1").ok
    bad = _portal_over(slapd, smtp, PORTAL_LDAP_URLS=url, PORTAL_LDAP_START_TLS=start_tls,
                       PORTAL_LDAP_CA_FILE=other_ca)
    with bad.app_context():
        directory = portal().directory
        with pytest.raises(DirectoryUnavailable):
            directory.authenticate("irkek", "Demo-representative-2026")
        with pytest.raises(DirectoryUnavailable) as failure:  # 503, never a login failure
            directory.ping()
        assert "CERTIFICATE_VERIFY_FAILED" in str(failure.value)


def test_python_ldap_over_tls_verifies_the_certificate(slapd, reader, other_ca):
    ca = str(slapd.settings.ca_file)
    python_ldap(slapd.ldaps_url, *reader, ca_file=ca).unbind_s()
    python_ldap(slapd.url, *reader, ca_file=ca, start_tls=True).unbind_s()
    with pytest.raises(ldap.SERVER_DOWN):
        python_ldap(slapd.ldaps_url, *reader, ca_file=other_ca)
    with pytest.raises(ldap.CONNECT_ERROR):
        python_ldap(slapd.url, *reader, ca_file=other_ca, start_tls=True)


def test_production_refuses_plain_ldap_to_another_host():
    from app.settings import SettingsError, load_settings
    from test_settings import production_environment
    with pytest.raises(SettingsError) as caught:
        load_settings(production_environment(PORTAL_LDAP_URLS="ldap://ldap1.example.org"))
    assert any("sends passwords in clear" in p for p in caught.value.problems)
    remote = "ldap://ldap1.example.org"
    for allowed in ({"PORTAL_LDAP_URLS": remote, "PORTAL_LDAP_START_TLS": "true"},
                    {"PORTAL_LDAP_URLS": remote, "PORTAL_LDAP_ALLOW_PLAIN": "true"},
                    {"PORTAL_LDAP_URLS": "ldap://127.0.0.1:389"},
                    {"PORTAL_LDAP_URLS": "ldaps://ldap1.example.org"}):
        assert load_settings(production_environment(**allowed)).ldap_urls


# -- the operator's commands for service accounts ------------------------------------------

def test_add_rotate_list_and_remove_a_service_account(app, slapd, monkeypatch, root):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["directory", "add-service", "wiki"])
    assert result.exit_code != 0 and "PORTAL_LDAP_ADMIN_DN" in result.output
    monkeypatch.setenv("PORTAL_LDAP_ADMIN_DN", slapd.settings.root_dn)
    monkeypatch.setenv("PORTAL_LDAP_ADMIN_PASSWORD", slapd.settings.root_password)
    dn = f"cn=wiki,ou=services,{BASE_DN}"
    try:
        output = cli(app, "directory", "add-service", "wiki", "--description", "The wiki")
        password = output.split("password", 1)[1].split()[0]
        assert dn in output and len(password) >= 40
        assert binds(slapd, dn, password)
        root.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
        assert root.response[0]["raw_attributes"]["userPassword"][0].startswith(b"{ARGON2}$")
        again = runner.invoke(args=["directory", "add-service", "wiki"])
        assert again.exit_code != 0 and "--rotate" in again.output
        rotated = cli(app, "directory", "add-service", "wiki", "--rotate")
        new_password = rotated.split("password", 1)[1].split()[0]
        assert new_password != password
        assert binds(slapd, dn, new_password) and not binds(slapd, dn, password)
        listing = cli(app, "directory", "list-services")
        assert "wiki\t" + dn in listing and "portal\t" in listing
        assert f"cn=services,ou=policies,{BASE_DN}" in listing
        for bad in (["add-service", "portal"], ["remove-service", "portal"],
                    ["add-service", "Bad,Name"], ["remove-service", "nosuch"]):
            assert runner.invoke(args=["directory", *bad]).exit_code != 0, bad
        cli(app, "directory", "remove-service", "wiki")
        assert not binds(slapd, dn, new_password)
        assert "wiki\t" not in cli(app, "directory", "list-services")
    finally:
        try:
            root.delete(dn)
        except ldap3.core.exceptions.LDAPNoSuchObjectResult:
            pass  # removed by the test


def test_the_portals_own_account_cannot_make_service_accounts(slapd):
    conn = python_ldap(slapd.url, slapd.settings.service_dn, slapd.settings.service_password)
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        conn.add_s(f"cn=evil,ou=services,{BASE_DN}", [
            ("objectClass", [b"organizationalRole", b"simpleSecurityObject"]),
            ("cn", [b"evil"]), ("userPassword", [b"Evil-password-123456"])])
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        conn.passwd_s(f"cn=portal,ou=services,{BASE_DN}", None, "Own-new-password-123456")

