"""Raw ldap3 rates for the LDAP work under the portal's flows, measured in
processes (one connection each, like a gunicorn worker's thread) for a fixed
time: what the portal is compared to. Same transport as the portal
(StartTLS verified against the bench CA, get_info=NONE)."""
from __future__ import annotations

import itertools
import multiprocessing
import socket
import ssl
import time

from ldap3 import NONE, SYNC, Connection, Server, Tls
from ldap3.utils.conv import escape_filter_chars

from app.vocabulary import MemberStatus


def _server(url: str, ca: str) -> Server:
    return Server(url, get_info=NONE, tls=Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca))


def _connect(cfg, dn, password, bind=True) -> Connection:
    conn = Connection(_server(cfg["url"], cfg["ca"]), dn, password, client_strategy=SYNC,
                      raise_exceptions=False)
    conn.open()
    # As the portal does (app/directory/connection.py _open): without it each
    # new connection waits 40 ms for slapd's delayed ACK after StartTLS.
    conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.start_tls()
    if bind and not conn.bind():
        raise RuntimeError(f"bind {dn}: {conn.result}")
    return conn


def _member_dn(cfg, uid):
    return f"uid={uid},ou=people,{cfg['base']}"


# A queued message of a usual size (to slapd only the size matters, not that
# the portal now stores a rendered letter rather than MIME).
_MESSAGE = (b"From: Registry <registry@example.org>\r\nTo: someone@inst001.example\r\n"
            b"Subject: Your account is ready\r\nMIME-Version: 1.0\r\n\r\n"
            + b"Your account is ready; sign in at https://portal.example.org/login. " * 40)


def _add_member(service, cfg, name: str, uid_number: int) -> bool:
    """A member entry as the approval writes it (pre-hashed password under
    the initial policy)."""
    return service.add(f"uid={name},ou=people,{cfg['base']}", attributes={
        "objectClass": ["inetOrgPerson", "posixAccount", "portalMember"],
        "uid": name, "cn": "Raw Add", "sn": "Add", "givenName": "Raw",
        "mail": f"{name}@raw.example", "portalContactMail": f"{name}@raw.example",
        "portalStatus": MemberStatus.ACTIVE.value, "uidNumber": str(uid_number),
        "portalHomeInstitution": "inst001", "portalCategory": "physicist-postdoc",
        "gidNumber": "30000", "homeDirectory": f"/home/{name}",
        "userPassword": cfg["hash"],
        "pwdPolicySubentry": f"cn=initial,ou=policies,{cfg['base']}"})


def _add_outbox(service, cfg, message_id: str, queued: list) -> bool:
    """An outbox message as the portal queues one; not before 2099, so that
    the bench's mail sender leaves it (the worker removes it afterwards)."""
    dn = f"portalOutboxId={message_id},ou=outbox,{cfg['base']}"
    queued.append(dn)
    return service.add(dn, attributes={
        "objectClass": ["portalOutboxEntry"], "portalOutboxId": message_id,
        "portalOutboxMessage": _MESSAGE, "portalOutboxRecipient": ["someone@inst001.example"],
        "portalOutboxAttempts": "0",
        "portalSubmittedAt": time.strftime("%Y%m%d%H%M%SZ", time.gmtime()),
        "portalOutboxClaim": "-", "portalOutboxNotBefore": "20990101000000Z"})


def _scratch_request(service, cfg, slot: int) -> str:
    """A request entry of this process's own for the approval's swaps."""
    dn = f"uid=rawreq{slot:02d},ou=requests,{cfg['base']}"
    service.delete(dn)
    if not service.add(dn, attributes={
            "objectClass": ["portalRequest"], "uid": f"rawreq{slot:02d}",
            "portalRequestStatus": "raw-pending", "portalApprovalStage": "0",
            "givenName": "Raw", "sn": "Request", "portalContactMail": "raw@inst001.example",
            "portalHomeInstitution": "inst001", "portalCategory": "physicist-postdoc"}):
        raise RuntimeError(f"scratch request: {service.result}")
    return dn


def _uid_number(kind: int, series: int, slot: int, k: int) -> int:
    """Unique per added member, above the population's numbers."""
    return 10_000_000 * kind + 100_000 * series + 5_000 * slot + k


def _swap(service, dn: str, attribute: str, old: str, new: str) -> bool:
    """A compare-and-swap, as the portal writes one: delete the value it
    read and add its own in one modify."""
    return service.modify(dn, {attribute: [("MODIFY_DELETE", [old]), ("MODIFY_ADD", [new])]})


# Each measurement's own names for what it adds (members, outbox messages):
# a level or a pass after another would otherwise add names that exist.
_SERIES = itertools.count(1)


def _worker(args):
    op, cfg, slot, until_start, duration, series = args
    # This process's own members (those of the password changes apart).
    people = cfg["self_members" if op == "bind_pm_self" else "members"][slot]
    state = {}
    service = None
    if op in ("search", "add", "add_outbox", "approval_writes", "modify", "pm_service",
              "memberof", "compare", "group_read", "bind_pm_self"):
        service = _connect(cfg, cfg["service_dn"], cfg["service_password"])
    persistent = None
    if op == "bind_persistent":
        persistent = _connect(cfg, _member_dn(cfg, people[0]), cfg["password"], bind=False)
    current = {uid: cfg["password"] for uid in people}
    if op == "approval_writes":
        state["request"] = _scratch_request(service, cfg, slot)
    queued = state["queued"] = []
    while time.time() < until_start:
        time.sleep(0.005)
    end = until_start + duration
    count = errors = k = 0
    while time.time() < end:
        k += 1
        uid = people[k % len(people)]
        dn = _member_dn(cfg, uid)
        ok = True
        if op == "bind_new":
            conn = _connect(cfg, dn, cfg["password"], bind=False)
            ok = conn.bind()
            conn.unbind()
        elif op == "bind_persistent":
            persistent.user, persistent.password = dn, cfg["password"]
            ok = persistent.bind()
        elif op == "search":
            ok = service.search(f"ou=people,{cfg['base']}", f"(uid={escape_filter_chars(uid)})",
                                attributes=["cn", "mail", "portalStatus"]) \
                and len(service.response) >= 1
        elif op == "add":
            ok = _add_member(service, cfg, f"x{series:03d}{slot:02d}{k:05d}",
                             _uid_number(1, series, slot, k))
        elif op == "add_outbox":
            ok = _add_outbox(service, cfg, f"raw{series:03d}{slot:02d}{k:06d}", queued)
        elif op == "approval_writes":
            # What an approval must write, in its order, and nothing else:
            # the decision (a compare-and-swap on the request's status), the
            # uid counter (a compare-and-swap; here on the request, so that
            # processes do not race for one counter), the member, the
            # completion mark on the request and the outbox message. No read, no HTTP,
            # no rendering: the floor of an approval with these guarantees.
            request = state["request"]
            name = f"y{series:03d}{slot:02d}{k:05d}"
            ok = (_swap(service, request, "portalRequestStatus", "raw-pending", "raw-approved")
                  and _swap(service, request, "portalApprovalStage", str(k - 1), str(k))
                  and _add_member(service, cfg, name, _uid_number(2, series, slot, k))
                  and _swap(service, request, "portalRequestStatus", "raw-approved",
                            "raw-pending")
                  and _add_outbox(service, cfg, f"rawa{series:03d}{slot:02d}{k:06d}", queued))
        elif op == "modify":
            ok = service.modify(dn, {"portalSessionEpoch": [("MODIFY_REPLACE", [str(k)])]})
        elif op == "memberof":
            # A service's look-up of a member with the groups (memberOf of
            # the dynamic main group is computed by dynlist on every read).
            ok = service.search(f"ou=people,{cfg['base']}", f"(uid={escape_filter_chars(uid)})",
                                attributes=["uid", "memberOf"]) \
                and any(cfg["main_group_dn"].lower() == v.lower() for v in
                        service.response[0]["attributes"]["memberOf"])
        elif op == "compare":
            # Apache's "Require ldap-group": a compare of member on the group.
            ok = service.compare(cfg["main_group_dn"], "member", dn)
        elif op == "group_read":
            # Every member of the main group, as a group enumeration reads it.
            ok = service.search(cfg["main_group_dn"], "(objectClass=*)", "BASE",
                                attributes=["member"]) \
                and len(service.response[0]["raw_attributes"]["member"]) >= cfg["min_members"]
        elif op == "pm_service":
            new = f"Raw-service-{slot}-{k}-pass"
            ok = bool(service.extend.standard.modify_password(dn, new_password=new.encode()))
        elif op == "bind_pm_self":
            # What a member's change is underneath: a bind as the member on a
            # new connection (members may not write their password), then
            # Password Modify by the service on its open connection.
            conn = _connect(cfg, dn, current[uid].encode(), bind=False)
            new = f"Raw-self-{slot}-{k}-pass"
            ok = conn.bind() and bool(service.extend.standard.modify_password(
                dn, new_password=new.encode()))
            if ok:
                current[uid] = new
            elif "first_error" not in state:
                state["first_error"] = str(conn.result) + str(service.result)
            conn.unbind()
        if ok:
            count += 1
        else:
            errors += 1
            if "first_error" not in state:
                failed = service or persistent
                state["first_error"] = str(failed.result if failed else op)
    for dn in queued:  # after the clock: the outbox as it was
        service.delete(dn)
    if "request" in state:
        service.delete(state.pop("request"))
    state.pop("queued")
    state["count"], state["errors"] = count, errors
    return state


def measure(op: str, cfg: dict, c: int, duration: float) -> dict:
    """Ops per second with c processes for ``duration`` seconds."""
    start = time.time() + 0.3 + 0.02 * c
    ctx = multiprocessing.get_context("fork")
    series = next(_SERIES)
    with ctx.Pool(c) as pool:
        results = pool.map(_worker, [(op, cfg, slot, start, duration, series)
                                     for slot in range(c)])
    count = sum(r["count"] for r in results)
    first_error = next((r["first_error"] for r in results if "first_error" in r), None)
    return {"c": c, "ops": count, "errors": sum(r["errors"] for r in results),
            "rps": round(count / duration, 1),
            **({"first_error": first_error} if first_error else {})}
