"""Service accounts: ``cn=<name>,ou=services,<base>``, one per collaborative
service (wiki, tracker, mail, SSSD) that binds to look members up.

They are managed by the operator with the directory's rootdn
(``flask --app wsgi directory add-service NAME``), never by the web portal's
own account: that account (write access to the members' OUs) cannot create,
read or change the credentials of another service. Each account gets the
``cn=services`` password policy (no expiry, no lockout), a generated password
shown once, and the access and limits acl.conf/slapd.py give every entry
under ou=services (read what services need, page through every member).
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from ldap3 import LEVEL, Connection

from .errors import NoSuchEntry
from .gateway import Directory
from .mapping import Attr, AttributeMap

SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
# The portal's own account is made with the directory (bootstrap.ldif).
PROTECTED = frozenset({"portal"})
SERVICE = AttributeMap(
    object_classes=Attr("objectClass", multi=True),
    name="cn",
    description="description",
    password="userPassword",
    policy="pwdPolicySubentry",
)


@dataclass(frozen=True)
class ServiceAccount:
    name: str
    dn: str
    description: str
    policy: str


class ServiceAccounts:
    def __init__(self, directory: Directory, admin_dn: str, admin_password: str):
        self._directory = directory
        self._admin_dn = admin_dn
        self._admin_password = admin_password
        self.services_dn = f"ou=services,{directory.base_dn}"
        self.policy_dn = f"cn=services,ou=policies,{directory.base_dn}"

    def dn(self, name: str) -> str:
        if not isinstance(name, str) or not SERVICE_NAME_RE.match(name):
            raise ValueError("a service name is 2-32 characters: a-z, digits and '-', "
                             "starting with a letter")
        return f"cn={name},{self.services_dn}"

    def _run(self, operation):
        """``operation`` on a connection bound as the administrator (errors
        mapped as everywhere in the gateway)."""
        with self._directory._as(self._admin_dn, self._admin_password, raise_errors=True) as conn:
            conn.bind()
            return operation(conn)

    def add(self, name: str, description: str = "") -> str:
        """Create the account; returns its generated password (not stored
        anywhere else: slapd hashes it, ppolicy_hash_cleartext)."""
        if name in PROTECTED:
            raise ValueError(f"{name} is the portal's own account")
        dn, password = self.dn(name), _new_password()
        attributes = SERVICE.entry(
            object_classes=["organizationalRole", "simpleSecurityObject"], name=name,
            description=description or f"Service account of {name}", password=password,
            policy=self.policy_dn)
        self._run(lambda conn: conn.add(dn, attributes=attributes))
        return password

    def rotate(self, name: str) -> str:
        """A new generated password (Password Modify: slapd hashes it)."""
        dn, password = self.dn(name), _new_password()

        def run(conn: Connection) -> None:
            conn.search(dn, "(objectClass=simpleSecurityObject)", attributes=["cn"])
            if not conn.entries:
                raise NoSuchEntry(dn)
            conn.extend.standard.modify_password(dn, None, password.encode())
        self._run(run)
        return password

    def list(self) -> list[ServiceAccount]:
        def run(conn: Connection) -> list[dict]:
            conn.search(self.services_dn, "(objectClass=simpleSecurityObject)", LEVEL,
                        attributes=SERVICE.names("name", "description", "policy"))
            return [r for r in conn.response if r.get("type") == "searchResEntry"]
        accounts = [ServiceAccount(dn=e["dn"], **SERVICE.read(e, "name", "description", "policy"))
                    for e in self._run(run)]
        return sorted(accounts, key=lambda a: a.name)

    def remove(self, name: str) -> None:
        if name in PROTECTED:
            raise ValueError(f"{name} is the portal's own account")
        dn = self.dn(name)
        self._run(lambda conn: conn.delete(dn))


def _new_password() -> str:
    return secrets.token_urlsafe(32)
