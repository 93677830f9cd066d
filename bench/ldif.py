"""The bench directory as LDIF for slapadd: the portal's bootstrap tree (from
the dev stack's generator), 150 institutions with one representative each,
N members (non-ASCII names, varied password ages, a few due to expire), the
main group (dynamic: every active member), and pending registrations.

Account names: members m0000001.., representatives ir001.., requests r000001..
Every member's password is MEMBER_PASSWORD (one argon2id hash with the
production parameters, shared: the cost of a bind is what matters); every
request's password is REQUEST_PASSWORD. The first FLOW_MEMBERS members have
a recent password and a known reset nonce (RESET_NONCE) so the flows can use
them one each.
"""
from __future__ import annotations

import base64
import hashlib
import random
from datetime import datetime, timedelta

from argon2 import PasswordHasher

from app.devstack.slapd import SlapdSettings, render_bootstrap_ldif
from app.services.names import mail_candidates, mail_local_part, name_key
from app.vocabulary import IR_STAGE, MemberStatus, RequestKind, RequestStatus

MEMBER_PASSWORD = "Bench-member-pass-2026"
REQUEST_PASSWORD = "Bench-request-pass-2026"
RESET_NONCE = "bench-reset-nonce"
INSTITUTIONS = 150
CONDITIONS_VERSION = "2026-01"
GIVEN = ["Jürgen", "Zoë", "Søren", "Łukasz", "José", "François", "Ayşe", "Dvořák", "Björn",
         "Anna", "Giulia", "Toru", "太郎", "花子", "Ἀλέξανδρος", "Михаил", "Nguyễn", "Siân"]
FAMILY = ["Müller", "Ørsted", "Gonçalves", "Nowak", "Šťastný", "Yılmaz", "García", "Öztürk",
          "Rossi", "Sato", "山田", "佐藤", "Παπαδόπουλος", "Иванов", "Trần", "O'Brien", "Schmidt"]


def member_name(i: int) -> str:
    return f"m{i:07d}"


def request_name(i: int) -> str:
    return f"r{i:06d}"


def ir_name(n: int) -> str:
    return f"ir{n:03d}"


def institution_id(n: int) -> str:
    return f"inst{n:03d}"


def _hash(password: str, scheme: str = "{ARGON2}") -> bytes:
    if scheme == "{SSHA}":  # the side run with cheap hashing (README "Performance")
        salt = hashlib.sha256(password.encode()).digest()[:8]
        digest = hashlib.sha1(password.encode() + salt).digest()
        return b"{SSHA}" + base64.b64encode(digest + salt)
    # The production parameters (app/devstack/slapd.py ARGON2_PARAMETERS).
    return ("{ARGON2}" + PasswordHasher(time_cost=2, memory_cost=19456,
                                        parallelism=1).hash(password)).encode()


def _line(attr: str, value) -> str:
    if isinstance(value, bytes) or not value.isascii() or value[:1] in (" ", ":", "<"):
        raw = value if isinstance(value, bytes) else value.encode()
        return f"{attr}:: {base64.b64encode(raw).decode()}\n"
    return f"{attr}: {value}\n"


def _entry(dn: str, attrs: list[tuple[str, object]]) -> str:
    return _line("dn", dn) + "".join(_line(a, v) for a, v in attrs) + "\n"


def _t(when: datetime) -> str:
    return when.strftime("%Y%m%d%H%M%SZ")


def password_changed(now: datetime) -> datetime:
    """The flow members' pwdChangedTime (the reset links are bound to it)."""
    return (now - timedelta(days=10)).replace(microsecond=0)


def pending_request(base: str, uid: str, given: str, family: str, inst: str, collab: str,
                    submitted: datetime, password_hash: bytes) -> tuple[str, list]:
    """A confirmed registration waiting for its IR: DN and attributes (also
    the raw approval's own requests, bench/raw.py). The name key ends in the
    account name, so that the bench's few names do not make every request
    a look-alike of hundreds of members."""
    return f"uid={uid},ou=requests,{base}", [
        ("objectClass", "portalRequest"), ("uid", uid),
        ("portalRequestType", RequestKind.REGISTRATION.value),
        ("portalApprovalChain", IR_STAGE),
        ("portalApprovalStage", "0"),
        ("portalRequestStatus", RequestStatus.PENDING_APPROVAL.value),
        ("givenName", given), ("sn", family), ("cn", f"{given} {family}"),
        ("portalNameKey", f"{name_key(given)}|{name_key(family)}|{uid}"),
        ("portalContactMail", f"{uid}@{inst}.example"),
        ("portalHomeInstitution", inst), ("portalCategory", "physicist-postdoc"),
        *([("portalCollabMail", collab)] if collab else []),
        ("portalConditionsVersion", CONDITIONS_VERSION),
        ("portalSubmittedAt", _t(submitted)), ("portalSubmittedFrom", "127.0.0.1"),
        ("portalEmailVerifiedAt", _t(submitted + timedelta(minutes=5))),
        ("portalPasswordHash", password_hash), ("preferredLanguage", "en")]


def write(path, settings: SlapdSettings, members: int, requests: int, flow_members: int,
          now: datetime, seed: int = 13) -> dict:
    rnd = random.Random(seed)
    base = settings.base_dn
    people = f"ou=people,{base}"
    member_hash = _hash(MEMBER_PASSWORD, settings.password_hash)
    request_hash = _hash(REQUEST_PASSWORD)
    nonce_hash = hashlib.sha256(RESET_NONCE.encode()).hexdigest()
    counts = {"members": members, "requests": requests, "institutions": INSTITUTIONS,
              "warning_due": 0, "expired_passwords": 0, "membership_due": 0}
    names = []
    with open(path, "w", encoding="utf-8") as out:
        out.write(render_bootstrap_ldif(settings).rstrip("\n") + "\n")
        # The main group is dynamic (slapo-dynlist): no value per member.
        out.write("\n")

        def person(uid, number, given, family, inst, category, changed, extra=()):
            return _entry(f"uid={uid},{people}", [
                ("objectClass", "inetOrgPerson"), ("objectClass", "posixAccount"),
                ("objectClass", "portalMember"), ("uid", uid), ("cn", f"{given} {family}"),
                ("displayName", f"{given} {family}"), ("givenName", given), ("sn", family),
                ("portalNameKey", f"{name_key(given)}|{name_key(family)}|{uid}"),
                ("mail", f"{uid}@{settings.mail_domain}"),
                ("portalContactMail", f"{uid}@{inst}.example"),
                ("portalHomeInstitution", inst), ("portalCategory", category),
                ("portalStatus", MemberStatus.ACTIVE.value),
                ("portalMemberSince", "20200101000000Z"),
                ("portalConditionsVersion", CONDITIONS_VERSION),
                ("uidNumber", str(number)), ("gidNumber", str(settings.main_gid_number)),
                ("homeDirectory", f"/home/{uid}"), ("loginShell", "/bin/bash"),
                ("userPassword", member_hash), ("pwdChangedTime", _t(changed)), *extra])

        for n in range(1, INSTITUTIONS + 1):
            out.write(person(ir_name(n), 20000 + n, rnd.choice(GIVEN), rnd.choice(FAMILY),
                             institution_id(n), "physicist-permanent", password_changed(now)))
            out.write(_entry(f"portalInstitutionId={institution_id(n)},ou=institutions,{base}", [
                ("objectClass", "portalInstitution"), ("portalInstitutionId", institution_id(n)),
                ("o", f"Institut Nummer {n} für Physik — {rnd.choice(FAMILY)}"),
                ("c", rnd.choice(["DE", "JP", "IT", "FR", "PL", "CZ", "TR", "GR"])),
                ("portalRepresentative", f"uid={ir_name(n)},{people}")]))
        for i in range(1, members + 1):
            uid = member_name(i)
            inst = institution_id(1 + i % INSTITUTIONS)
            extra = []
            category = "physicist-postdoc"
            if i <= flow_members:
                changed = password_changed(now)
                extra.append(("portalResetNonce", nonce_hash))
            else:
                roll = rnd.random()
                if roll < 0.05:  # inside the 30-day warning window
                    changed = now - timedelta(days=rnd.uniform(151, 179.5))
                    counts["warning_due"] += 1
                elif roll < 0.06:  # expired already
                    changed = now - timedelta(days=rnd.uniform(181, 400))
                    counts["expired_passwords"] += 1
                else:
                    changed = now - timedelta(days=rnd.uniform(0, 149))
                if rnd.random() < 0.005:
                    category = "student"
                    extra.append(("portalMemberUntil", _t(now - timedelta(days=1))))
                    counts["membership_due"] += 1
            out.write(person(uid, 100000 + i, rnd.choice(GIVEN), rnd.choice(FAMILY), inst,
                             category, changed, extra))
        previewed: set[str] = set()
        for i in range(1, requests + 1):
            uid = request_name(i)
            given, family = rnd.choice(GIVEN), rnd.choice(FAMILY)
            # The address the registration form previewed, as the portal
            # picks it (the first one no member or earlier request holds;
            # members here have uid@domain): the approval finds it free and
            # keeps it, as it does for a real registration.
            local = mail_local_part(given, "", family)
            candidates = mail_candidates(local, settings.mail_domain) if local else [""]
            collab = next((c for c in candidates if c not in previewed), candidates[-1])
            previewed.add(collab)
            inst = institution_id(1 + i % INSTITUTIONS)
            submitted = now - timedelta(hours=2)
            out.write(_entry(*pending_request(base, uid, given, family, inst, collab,
                                              submitted, request_hash)))
            names.append((uid, ir_name(1 + i % INSTITUTIONS)))
    counts["reviews"] = names
    return counts
