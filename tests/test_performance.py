"""What the performance work (bench/, README "Performance") relies on: the
institutions cached for a short time, the expiry walks selected by slapd,
the directory's indexes and sorted group values."""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import ldap3

from app.devstack.slapd import ProductionSlapdSettings, SlapdSettings, render_slapd_conf
from app.directory import expiry_notice
from app.services.institutions import InstitutionCatalog
from helpers import (
    BASE_DN,
    NEW_PASSWORD,
    PEOPLE,
    STRONG_PASSWORD,
    change_password,
    csrf_token,
    login,
)

INSTITUTION = f"portalInstitutionId=cern,ou=institutions,{BASE_DN}"


def test_institutions_come_from_the_cache_until_it_is_stale(app, root):
    directory = app.extensions["portal"].directory
    clock = [1000.0]
    catalog = InstitutionCatalog(directory, ttl_seconds=60, monotonic=lambda: clock[0])
    before = [i.id for i in catalog.all()]
    assert "kek" in before and "cern" not in before
    assert root.add(INSTITUTION, ["portalInstitution"], {
        "portalInstitutionId": "cern", "o": "CERN", "c": "CH"})
    try:
        clock[0] += 59
        assert [i.id for i in catalog.all()] == before
        assert catalog.get("cern") is None
        clock[0] += 1
        assert "cern" in [i.id for i in catalog.all()]
        assert catalog.get("cern").name == "CERN"
        root.modify(INSTITUTION, {"o": [(ldap3.MODIFY_REPLACE, ["CERN (Geneva)"])]})
        assert catalog.get("cern").name == "CERN"
        catalog.invalidate()
        assert catalog.get("cern").name == "CERN (Geneva)"
    finally:
        root.delete(INSTITUTION)


def test_slapd_selects_the_members_whose_password_expires_in_the_window(
        app, client, member, root):
    login(client)
    response = change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302
    root.search(f"uid=tiijima,{PEOPLE}", "(objectClass=*)", ldap3.BASE,
                attributes=["pwdChangedTime"])
    expires = root.entries[0].pwdChangedTime.value + timedelta(days=180)
    directory = app.extensions["portal"].directory

    def selected(days_before: float, thresholds=(30, 7, 1)) -> list[str]:
        now = expires - timedelta(days=days_before)
        return [p.account_name for p, _ in directory.members_with_password_expiring(
            now, thresholds)]

    assert "tiijima" not in selected(45)
    assert "tiijima" in selected(29.9)
    assert "tiijima" in selected(0.01)
    assert "tiijima" not in selected(-1)  # expired already
    assert "tiijima" not in selected(10, thresholds=(7,))
    # The representatives of the demo data never changed their password
    # through the portal either way: no pwdChangedTime in the window.
    assert selected(29.9) == ["tiijima"]

    # A warning sent is not selected again for its threshold, but the next
    # threshold's is; a notice left from another password (another day)
    # does not hide this one's.
    dn = f"uid=tiijima,{PEOPLE}"
    changed = root.entries[0].pwdChangedTime.value

    def notices(*values):
        root.modify(dn, {"portalExpiryNotice": [(ldap3.MODIFY_REPLACE, list(values))]})

    notices(expiry_notice(changed, 30))
    assert "tiijima" not in selected(20)
    assert "tiijima" in selected(5)
    notices(expiry_notice(changed, 30), expiry_notice(changed, 7))
    assert "tiijima" not in selected(5) and "tiijima" not in selected(20)
    assert "tiijima" in selected(0.5)
    notices(expiry_notice(changed - timedelta(days=180), 30))
    assert "tiijima" in selected(20)
    notices()


def test_members_on_the_initial_password_are_not_walked(app, member):
    directory = app.extensions["portal"].directory
    now = datetime.now(timezone.utc) + timedelta(days=3)
    assert [p.account_name for p, _ in directory.members_with_password_expiring(
        now, (400,))] == []


def test_expiry_of_memberships_is_selected_by_slapd_and_streamed(app, member, root):
    directory = app.extensions["portal"].directory
    root.modify(f"uid=tiijima,{PEOPLE}", {
        "portalMemberUntil": [(ldap3.MODIFY_REPLACE, ["20270101000000Z"])]})
    due = directory.members_due_to_expire(datetime(2027, 1, 2, tzinfo=timezone.utc))
    assert not isinstance(due, list)  # a generator: one page in memory at a time
    assert [p.account_name for p in due] == ["tiijima"]
    assert list(directory.members_due_to_expire(datetime(2026, 12, 31, tzinfo=timezone.utc))) \
        == []


def test_the_generated_config_indexes_what_is_looked_up_and_sorts_the_group_values(tmp_path):
    for conf in (render_slapd_conf(SlapdSettings(workdir=tmp_path)),
                 render_slapd_conf(ProductionSlapdSettings())):
        lines = conf.splitlines()
        assert "index portalCertSubject eq" in lines
        assert "sortvals member memberUid" in lines
        assert not any(line.startswith("index pwdChangedTime") or
                       line.startswith("index portalMemberUntil") for line in lines)
        assert f"maxsize {10 * 1024 ** 3}" in lines
    assert "maxsize 4096" in render_slapd_conf(
        SlapdSettings(workdir=tmp_path, mdb_maxsize=4096)).splitlines()


def test_the_generator_writes_a_read_only_consumer_and_its_providers_syncprov(tmp_path):
    consumer = render_slapd_conf(SlapdSettings(
        workdir=tmp_path, consumer_of="ldap://10.0.0.1:389")).splitlines()
    assert any(line.startswith("syncrepl rid=100 provider=ldap://10.0.0.1:389 ")
               and "type=refreshAndPersist" in line for line in consumer)
    assert "updateref ldap://10.0.0.1:389" in consumer
    assert "overlay syncprov" not in consumer and "multiprovider on" not in consumer
    provider = render_slapd_conf(SlapdSettings(workdir=tmp_path, syncprov=True)).splitlines()
    assert "moduleload syncprov" in provider and "overlay syncprov" in provider
    assert not any(line.startswith("syncrepl") for line in provider)
    # The main group: dynamic member values and memberOf; static groups
    # keep their own compare and memberOf.
    assert "dynlist-attrset portalDynamicGroup memberURL member+memberOf@groupOfUniqueNames" \
        in provider
    assert "dynlist-attrset groupOfURLs memberURL member+memberOf@groupOfNames" in provider


def test_group_values_are_added_and_removed_together_or_one_by_one(app, root):
    directory = app.extensions["portal"].directory
    group, dn = f"cn=naf,ou=groups,{BASE_DN}", f"uid=irkek,{PEOPLE}"

    def values() -> tuple[bool, bool]:
        root.search(group, "(objectClass=*)", ldap3.BASE, attributes=["member", "memberUid"])
        entry = root.entries[0]
        return (dn.lower() in {v.lower() for v in entry.member.values},
                "irkek" in entry.memberUid.values)

    assert values() == (False, False)
    directory.add_group_member(group, dn)
    assert values() == (True, True)
    directory.add_group_member(group, dn)  # again: nothing to do
    assert values() == (True, True)
    root.modify(group, {"memberUid": [(ldap3.MODIFY_DELETE, ["irkek"])]})
    directory.add_group_member(group, dn)  # only memberUid was missing
    assert values() == (True, True)
    root.modify(group, {"member": [(ldap3.MODIFY_DELETE, [dn])]})
    directory.remove_group_member(group, dn)  # only memberUid was left
    assert values() == (False, False)
    directory.remove_group_member(group, dn)
    assert values() == (False, False)


def test_an_approval_reads_the_link_request_and_representatives_once(app, client, root,
                                                                    register_and_verify):
    """The POST of an approval: the link's checks (request, approver,
    institution, whether the approver may decide) and the duplicate check
    each once, then the decision and the member: no repeated round trips
    (the duplicate check ran twice and every representative was read again
    to see whether the approver is one). The decision's modify and the
    member's add return the entries they wrote (post-read), the uid
    counter is one increment: the request was read again after its
    decision, the member before and after its add, the counter before its
    compare-and-swap."""
    review = register_and_verify()
    directory = app.extensions["portal"].directory
    html = client.get(review).get_data(as_text=True)
    calls: list[str] = []
    original_call = directory._call
    searches = {"institution": 0, "earlier_records": 0, "person_by_dn": 0, "person": 0,
                "request": 0}

    def counting(operation):
        calls.append(getattr(operation, "__qualname__", ""))
        return original_call(operation)

    def counted(name):
        method = getattr(directory, name)

        def wrapper(*args, **kwargs):
            searches[name] += 1
            return method(*args, **kwargs)
        return wrapper

    directory._call = counting
    for name in searches:
        setattr(directory, name, counted(name))
    try:
        response = client.post(review, data={"csrf_token": csrf_token(html),
                                             "decision": "approve"})
    finally:
        del directory._call
        for name in searches:
            delattr(directory, name)
    assert response.status_code == 200 and "was created" in response.get_data(as_text=True)
    print("directory operations of one approval:", len(calls), searches)
    assert searches["institution"] == 1  # the link's check
    # The approver only; no representative's entry read to check the
    # approver, the new member not read at all.
    assert searches["person_by_dn"] == searches["person"] == 1
    assert searches["request"] == 1  # the link's check
    assert searches["earlier_records"] == 1  # one duplicate check, page and approval
    # The link's 5 reads, the decision, the address check, the uid number,
    # the add, the completion mark, the mail queued; the main group's
    # gidNumber (once per process); the test's sender claiming and deleting
    # the mail.
    assert len(calls) == 14, calls


def _counting_operations(directory):
    """Count the directory operations (searches, writes, binds as a member)."""
    calls: list[str] = []
    original_call, original_bind = directory._call, directory._bind_as

    def counting(operation):
        calls.append(getattr(operation, "__qualname__", ""))
        return original_call(operation)

    def counting_as(*args, **kwargs):
        calls.append("bind as the member")
        return original_bind(*args, **kwargs)

    directory._call, directory._bind_as = counting, counting_as
    return calls


def test_a_page_of_a_logged_in_member_and_a_login_read_the_entry_once(app, client, member):
    """My account read the member's entry four times (session epoch,
    person, password state, roles) and searched once per kind of open
    application and once more for the helpdesk group, and later once for
    the institutions represented (for the header); a login read the entry
    three times around its bind."""
    login(client)
    assert change_password(client, STRONG_PASSWORD, NEW_PASSWORD).status_code == 302
    directory = app.extensions["portal"].directory
    calls = _counting_operations(directory)
    try:
        page = client.get("/account")
        overview_calls = list(calls)
        client.post("/logout", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
        html = client.get("/login").get_data(as_text=True)
        calls.clear()
        response = client.post("/login", data={"csrf_token": csrf_token(html),
                                               "account_name": "tiijima",
                                               "password": NEW_PASSWORD})
        login_calls = list(calls)
    finally:
        del directory._call, directory._bind_as
    assert page.status_code == 200 and "tiijima" in page.get_data(as_text=True)
    # The entry with its password state and epoch; the open applications
    # (every kind in one search); the default policy's maximum age (read
    # once per process: the member has just left the initial policy). The
    # header's console links come from the institutions' catalog, which the
    # page's institution list has read already.
    assert len(overview_calls) == 3, overview_calls
    assert response.status_code == 302 and response.location.endswith("/account")
    # The entry (its policy's maximum age is known by now) and the bind.
    assert len(login_calls) == 2 and "bind as the member" in login_calls, login_calls


def test_the_portal_sends_its_requests_to_slapd_without_delay(app, client, member):
    """TCP_NODELAY on every connection the portal opens (its own, the
    paged walks', the one for members' binds): without it a request written
    right after a TLS handshake waited for slapd's delayed ACK, 40 ms per
    new connection (README "Performance")."""
    directory = app.extensions["portal"].directory
    login(client)

    def no_delay(conn) -> int:
        return conn.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    assert no_delay(directory._connection())
    walk = directory._bound_as_portal()
    try:
        assert no_delay(walk)
    finally:
        walk.unbind()
    # The test client runs the views in this thread: its binder is this one's.
    assert no_delay(directory._binder())
