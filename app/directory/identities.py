"""Who holds a name, an address or a certificate: people and requests
looked up together (account names and addresses are unique across both;
the duplicate check looks at both)."""
from __future__ import annotations

from typing import Iterable

from ..vocabulary import ACCOUNT_NAME_RE, ENDED_STATUSES
from .connection import DirectoryConnection
from .mapping import Attr, AttributeMap, time_attr
from .people import PERSON
from .records import EarlierRecord
from .requests import REQUEST
from .values import any_of, eq

# The duplicate check's view of people and requests (names from their maps).
EARLIER = AttributeMap(
    account_name=PERSON["account_name"],
    mail=PERSON["mail"],
    contact_mail=PERSON["contact_mail"],
    institution=PERSON["institution"],
    name_keys=Attr(PERSON["name_key"], multi=True),
    person_status=PERSON["status"],
    request_status=REQUEST["status"],
    cert_subjects=Attr(PERSON["cert_subject"], multi=True),
    language=PERSON["language"],
    request_id=REQUEST["request_id"],
    kind=REQUEST["kind"],
    decided_by=REQUEST["decided_by"],
    decision_reason=REQUEST["decision_reason"],
    decided_at=time_attr(REQUEST["decided_at"]),
)


class Identities(DirectoryConnection):
    def account_names_in_use(self, names: Iterable[str]) -> set[str]:
        """Which of ``names`` are held by anyone: people, staff, requests
        (a rejected or withdrawn request holds none)."""
        names = sorted({n for n in names if n})
        if not names:
            return set()
        uid = PERSON["account_name"]
        ended = any_of(REQUEST["status"], ENDED_STATUSES)
        entries = self._search(
            self.base_dn, "(&(|" + "".join(eq(uid, n) for n in names) + f")(!{ended}))", [uid])
        held = {u.lower() for e in entries for u in e["attributes"].get(uid) or []}
        return held & set(names)

    def mail_addresses_in_use(self, addresses: Iterable[str],
                              exclude_account: str = "") -> set[str]:
        """Which collaboration addresses are taken by members or open/approved
        requests (other than those of ``exclude_account``)."""
        addresses = sorted({a.lower() for a in addresses if a})
        if not addresses:
            return set()
        mail, collab = PERSON["mail"], REQUEST["collab_mail"]
        wanted = "".join(eq(mail, a) + eq(collab, a) for a in addresses)
        exclude = f"(!{eq(PERSON['account_name'], exclude_account)})" if exclude_account else ""
        ended = any_of(REQUEST["status"], ENDED_STATUSES)
        entries = self._search(self.base_dn, f"(&(|{wanted})(!{ended}){exclude})",
                               [mail, collab])
        found = {v.lower() for e in entries
                 for v in (e["attributes"].get(mail) or []) + (e["attributes"].get(collab) or [])}
        return found & set(addresses)

    def earlier_records(self, emails: Iterable[str] = (), name_keys: Iterable[str] = (),
                        account_names: Iterable[str] = (),
                        cert_subjects: Iterable[str] = ()) -> list[EarlierRecord]:
        """People (any status, with or without the collaboration's class) and
        requests (any state) sharing an address, a name key, an account name
        or a certificate subject."""
        parts = [eq(PERSON[field], e) for e in emails if e for field in ("mail", "contact_mail")]
        parts += [eq(PERSON["name_key"], k) for k in name_keys if k]
        parts += [eq(PERSON["account_name"], n) for n in account_names
                  if ACCOUNT_NAME_RE.match(n or "")]
        parts += [eq(PERSON["cert_subject"], s) for s in cert_subjects if s]
        if not parts:
            return []
        # One search over the tree: people and requests (others left out).
        people, requests = f",{self.people_dn}".lower(), f",{self.requests_dn}".lower()
        found = []
        for entry in self._search(self.base_dn, f"(|{''.join(parts)})", EARLIER.names()):
            dn = entry["dn"].lower()
            if not dn.endswith(people) and not dn.endswith(requests):
                continue
            values = EARLIER.read(entry)
            status = values.pop("person_status") or values.pop("request_status")
            values.pop("request_status", None)  # when the person status was there
            found.append(EarlierRecord(dn=entry["dn"], is_person=dn.endswith(people),
                                       status=status, **values))
        return sorted(found, key=lambda r: not r.is_person)  # people first
