"""Raw ldap3 rates for the LDAP work under the portal's flows, measured in
processes (one connection each, like a gunicorn worker's thread) for a fixed
time: what the portal is compared to. Same transport as the portal
(StartTLS verified against the bench CA, get_info=NONE)."""
from __future__ import annotations

import itertools
import multiprocessing
import random
import socket
import ssl
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from ldap3 import NONE, SYNC, Connection, Server, Tls
from ldap3.protocol.rfc4527 import post_read_control
from ldap3.utils.conv import escape_filter_chars

from app.directory import Directory, NewMember
from app.directory.controls import post_read_entry
from app.directory.people import ADDED_PERSON_ATTRS, UID_COUNTER
from app.directory.requests import REQUEST, REQUEST_ATTRS, completion_changes, decision_changes
from app.services.audit import SYSTEM, Actor, audit_event
from app.services.names import person_key
from app.vocabulary import MemberStatus, RequestStatus
from bench import ldif


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


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, d = divmod(n, 36)
        out = digits[d] + out
        if not n:
            return out


# Registrations one process can approve in a window: the processes together
# at 90/s (the most measured at any level: 66/s, at 10,000 members on a quiet
# moment), and 3 more each; a process that runs out stops with an error,
# listed under the raw table.
def _approvals_per_process(c: int, duration: float) -> int:
    return int(duration * 90 / c) + 3


def _pending_requests(cfg, series: int, processes: int, count: int) -> list[list[dict]]:
    """Confirmed registrations for each process to approve, ``count``
    each, written by the caller before the clock as the bench's population
    has them (bench/ldif.py). Removed again if writing them fails."""
    service = _connect(cfg, cfg["service_dn"], cfg["service_password"])
    made: list[list[dict]] = []
    try:
        submitted = datetime.now(timezone.utc) - timedelta(hours=2)
        for slot in range(processes):
            rnd = random.Random(series * 100 + slot)
            made.append([])
            for n in range(count):
                # Account names of the portal's form (8 characters at most),
                # unique per measurement, process and request.
                uid = "q" + _base36((series * 64 + slot) * 4096 + n).rjust(6, "0")
                given, family = rnd.choice(ldif.GIVEN), rnd.choice(ldif.FAMILY)
                inst = ldif.institution_id(1 + n % ldif.INSTITUTIONS)
                collab = f"{uid}@{cfg['mail_domain']}"
                dn, pairs = ldif.pending_request(cfg["base"], uid, given, family, inst, collab,
                                                 submitted, cfg["hash"])
                attributes: dict[str, list] = {}
                for name, value in pairs:
                    attributes.setdefault(name, []).append(value)
                if not service.add(dn, attributes=attributes):
                    raise RuntimeError(f"pending request {dn}: {service.result}")
                made[-1].append({"dn": dn, "uid": uid, "given": given, "family": family,
                                 "inst": inst, "contact": f"{uid}@{inst}.example",
                                 "collab": collab})
    except BaseException:
        _delete_all(service, [r["dn"] for rows in made for r in rows])
        raise
    finally:
        service.unbind()
    return made


def _delete_all(service, dns) -> None:
    for dn in dns:
        service.delete(dn)


def _approve_raw(service, cfg, directory: Directory, request: dict) -> bool:
    """An approval's writes, in its order, with the portal's own values
    (app/directory: the decision's and the completion's modifies, the
    member's entry), and nothing else: the decision (a compare-and-swap on
    the request's status), the uid counter (one increment, its value read
    by the same modify), the member, the completion mark, the mail queued.
    No read, no HTTP, no rendering, no check."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    approver = Actor("ir001", "127.0.0.1")
    # The portal reads the decided request and the added member back with
    # the same writes (the post-read control): so does this.
    decided = service.modify(request["dn"], decision_changes(
        0, RequestStatus.APPROVED, approver="ir001", approver_label="Jürgen Müller (ir001)",
        at=now, from_="127.0.0.1",
        audit_event=audit_event("request.approved", approver, now, stage="ir")),
        controls=[post_read_control(REQUEST_ATTRS + REQUEST.names("password_hash"))])
    if not decided:
        return False
    if not service.modify(directory.uid_counter_dn, UID_COUNTER.increment("next_uid"),
                          controls=[post_read_control(UID_COUNTER.names(), True)]):
        return False
    counter = post_read_entry(directory.uid_counter_dn, service.result)
    uid_number = UID_COUNTER.read(counter)["next_uid"] - 1
    dn, attributes = directory.member_attributes(NewMember(
        account_name=request["uid"], given_name=request["given"], middle_name="",
        family_name=request["family"], mail=request["collab"],
        contact_mail=request["contact"], institution=request["inst"],
        category="physicist-postdoc", conditions_version=ldif.CONDITIONS_VERSION,
        member_since=now, initial_password_deadline=now + timedelta(days=5),
        uid_number=uid_number, gid_number=cfg["main_gid_number"],
        audit_event=audit_event("member.created", SYSTEM, now, request=request["uid"],
                                approved_by="Jürgen Müller (ir001)"),
        password_hash=cfg["hash"], name_key=person_key(request["given"], request["family"]),
        language="en"))
    return service.add(dn, attributes=attributes,
                       controls=[post_read_control(ADDED_PERSON_ATTRS)]) and service.modify(
        request["dn"], completion_changes(now, audit_event("request.account-created",
                                                           SYSTEM, now)))


def _uid_number(kind: int, series: int, slot: int, k: int) -> int:
    """Unique per added member (raw ``add``: kind 1), above the population's numbers."""
    return 10_000_000 * kind + 100_000 * series + 5_000 * slot + k


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
    pending: list[dict] = cfg["pending"][slot] if op == "approval_writes" else []
    # Its DNs and entries only (it never connects).
    directory = Directory([cfg["url"]], cfg["base"], "", "") if pending else None
    queued = state["queued"] = []
    late = time.time() - until_start  # set-up past the start: a shorter window
    if late > 0.05:
        state["late_s"] = round(late, 2)
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
            if k > len(pending):
                state.setdefault("first_error", "the pending requests ran out: more needed")
                errors += 1
                break
            ok = _approve_raw(service, cfg, directory, pending[k - 1]) and _add_outbox(
                service, cfg, f"rawa{series:03d}{slot:02d}{k:06d}", queued)
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
    state.pop("queued")
    state["count"], state["errors"] = count, errors
    return state


def measure(op: str, cfg: dict, c: int, duration: float,
            settle: Callable[[], object] | None = None) -> dict:
    """Ops per second with c processes for ``duration`` seconds. For
    ``approval_writes`` the requests to approve are written first, then
    ``settle`` runs (the bench waits until the consumer has them), then the
    clock; afterwards the requests go (their members stay, as raw adds do)."""
    ctx = multiprocessing.get_context("fork")
    series = next(_SERIES)
    pending = _pending_requests(cfg, series, c, _approvals_per_process(c, duration)) \
        if op == "approval_writes" else []
    try:
        if pending and settle is not None:
            settle()
        start = time.time() + 0.3 + 0.02 * c
        cfg = {**cfg, "pending": pending}
        with ctx.Pool(c) as pool:
            results = pool.map(_worker, [(op, cfg, slot, start, duration, series)
                                         for slot in range(c)])
    finally:
        if pending:
            service = _connect(cfg, cfg["service_dn"], cfg["service_password"])
            _delete_all(service, [r["dn"] for rows in pending for r in rows])
            service.unbind()
    count = sum(r["count"] for r in results)
    first_error = next((r["first_error"] for r in results if "first_error" in r), None)
    late = max((r.get("late_s", 0) for r in results), default=0)
    return {"c": c, "ops": count, "errors": sum(r["errors"] for r in results),
            "rps": round(count / duration, 1),
            **({"first_error": first_error} if first_error else {}),
            # A process that started late counted in a shorter window.
            **({"late_s": late} if late else {})}
