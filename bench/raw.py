"""Raw ldap3 rates for the LDAP work under the portal's flows, measured in
processes (one connection each, like a gunicorn worker's thread) for a fixed
time: what the portal is compared to. Same transport as the portal
(StartTLS verified against the bench CA, get_info=NONE)."""
from __future__ import annotations

import multiprocessing
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
    conn.start_tls()
    if bind and not conn.bind():
        raise RuntimeError(f"bind {dn}: {conn.result}")
    return conn


def _member_dn(cfg, uid):
    return f"uid={uid},ou=people,{cfg['base']}"


def _worker(args):
    op, cfg, slot, until_start, duration = args
    # This process's own members (those of the password changes apart).
    people = cfg["self_members" if op == "bind_pm_self" else "members"][slot]
    state = {}
    service = None
    if op in ("search", "add", "modify", "pm_service", "memberof", "compare", "group_read",
              "bind_pm_self"):
        service = _connect(cfg, cfg["service_dn"], cfg["service_password"])
    persistent = None
    if op == "bind_persistent":
        persistent = _connect(cfg, _member_dn(cfg, people[0]), cfg["password"], bind=False)
    current = {uid: cfg["password"] for uid in people}
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
            # A member entry as the approval writes it (pre-hashed password
            # under the initial policy).
            name = f"x{slot:02d}{k:05d}"
            ok = service.add(f"uid={name},ou=people,{cfg['base']}", attributes={
                "objectClass": ["inetOrgPerson", "posixAccount", "portalMember"],
                "uid": name, "cn": "Raw Add", "sn": "Add", "givenName": "Raw",
                "mail": f"{name}@raw.example", "portalContactMail": f"{name}@raw.example",
                "portalStatus": MemberStatus.ACTIVE.value,
                "uidNumber": str(900000 + slot * 100000 + k),
                "portalHomeInstitution": "inst001", "portalCategory": "physicist-postdoc",
                "gidNumber": "30000", "homeDirectory": f"/home/{name}",
                "userPassword": cfg["hash"],
                "pwdPolicySubentry": f"cn=initial,ou=policies,{cfg['base']}"})
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
    state["count"], state["errors"] = count, errors
    return state


def measure(op: str, cfg: dict, c: int, duration: float) -> dict:
    """Ops per second with c processes for ``duration`` seconds."""
    start = time.time() + 0.3 + 0.02 * c
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(c) as pool:
        results = pool.map(_worker, [(op, cfg, slot, start, duration) for slot in range(c)])
    count = sum(r["count"] for r in results)
    first_error = next((r["first_error"] for r in results if "first_error" in r), None)
    return {"c": c, "ops": count, "errors": sum(r["errors"] for r in results),
            "rps": round(count / duration, 1),
            **({"first_error": first_error} if first_error else {})}
