"""A throwaway slapd for the dev stack and the tests.

This is the one place where the slapd configuration is generated: the schema,
modules (argon2, ppolicy, dynlist), indexes, limits and ACLs of
``ldap_schema/`` are put together here, loaded with ``slapadd`` and served by
a real ``slapd`` process on loopback.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from argon2 import PasswordHasher

from .certificates import make_certificates
from .processes import stop_process

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "ldap_schema"
SYSTEM_SCHEMAS = ("core", "cosine", "inetorgperson", "nis", "dyngroup")
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SLAPTEST = shutil.which("slaptest") or "/usr/sbin/slaptest"

# Demo accounts of the dev stack; their passwords are printed at start-up.
DEMO_IRS = {"desy": "irdesy", "kek": "irkek", "infn": "irinfn"}
DEMO_IR_PASSWORD = "Demo-representative-2026"
DEMO_HELPDESK_PASSWORD = "Demo-helpdesk-2026"
DEMO_HELPDESK = "helpdesk"  # the demo helpdesk member's account name

_DAY = 86400
# Hashes slapd makes (Password Modify, hashed cleartext): OWASP's argon2
# memory and time minimum. Debian's module (libargon2) makes argon2i only.
ARGON2_PARAMETERS = "m=19456 t=2 p=1"


@dataclass
class SlapdSettings:
    workdir: Path
    base_dn: str = "dc=example,dc=org"
    organisation: str = "Example Collaboration"
    mail_domain: str = "example.org"
    main_group: str = "members"
    main_gid_number: int = 30000
    first_uid_number: int = 40000
    service_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    root_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    password_max_age_days: int = 180
    password_expire_warning_days: int = 30
    initial_password_days: int = 5
    password_min_length: int = 12
    # What slapd hashes new passwords with. {SSHA} only for the bench's
    # side run (README "Performance"): it measures the portal with cheap
    # hashing, never a setting for a directory in use.
    password_hash: str = "{ARGON2}"
    demo: bool = True
    # Tests and the dev stack do not need durable writes.
    nosync: bool = True
    # Multi-provider replication: this server's id (1, 2, ...) and the URLs
    # of all providers in id order (this one included); empty: standalone.
    server_id: int = 0
    providers: tuple[str, ...] = ()
    # mdb's map size in bytes: the database can never grow past it. 10 GiB
    # holds 1,000,000 members (100,000 members and 11,000 requests took
    # 469 MB); the file grows only as it is used (README, "Scaling").
    mdb_maxsize: int = 10 * 1024 ** 3
    # A read-only consumer (syncrepl from one provider, for the services'
    # binds and searches): the provider's URL; a provider with consumers
    # sets ``syncprov``.
    consumer_of: str = ""
    syncprov: bool = False
    # Simple binds (a password) over a connection without TLS only from
    # loopback (and ldapi): production's setting. False: from anywhere.
    plain_binds_from_loopback_only: bool = False

    @property
    def service_dn(self) -> str:
        return f"cn=portal,ou=services,{self.base_dn}"

    @property
    def services_dn(self) -> str:
        return f"ou=services,{self.base_dn}"

    @property
    def root_dn(self) -> str:
        return f"cn=admin,{self.base_dn}"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "slapd.conf"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def tls_dir(self) -> Path:
        return self.workdir / "tls"

    @property
    def run_dir(self) -> Path:
        return self.workdir

    @property
    def schema_dir(self) -> Path:
        return SCHEMA_DIR

    @property
    def root_password_value(self) -> str:
        # Dev and tests: the throwaway password itself (slapd.conf is 0600).
        return self.root_password

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"


def _fill(path: Path, values: dict) -> str:
    return Template(path.read_text()).substitute(values)


def _argon2(password: str) -> str:
    # Cheap parameters: these are throwaway demo and test accounts.
    return "{ARGON2}" + PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


def render_slapd_conf(s: SlapdSettings) -> str:
    includes = [f"include /etc/ldap/schema/{name}.schema" for name in SYSTEM_SCHEMAS]
    includes.append(f"include {s.schema_dir / 'portal.schema'}")
    acl = _fill(SCHEMA_DIR / "acl.conf", {"base": s.base_dn, "service": s.service_dn,
                                          "anonymous_auth": _anonymous_auth(s)})
    indexes = [
        "objectClass eq", "uid eq,sub", "mail eq", "cn eq,sub", "sn eq,sub", "givenName eq,sub",
        "portalContactMail eq", "portalCollabMail eq", "portalStatus eq",
        "portalRequestStatus eq", "portalHomeInstitution eq", "portalInstitutionId eq",
        "member eq", "uidNumber eq", "entryUUID eq", "portalNameKey eq,sub",
        # The duplicate check of a registration looks certificate subjects up.
        "portalCertSubject eq",
        # The IR console's roster filters by category within an institution.
        "portalCategory eq",
        # Certificate login, and the members list of the review page.
        "portalCertificate eq", "portalListedMail eq", "portalListedCertificate eq",
        # Invitations are looked up by their state and by who invited.
        "portalInvitationState eq", "portalInvitedBy eq",
        # Only what is tested for equality: an eq index on a date that is
        # searched by range (pwdChangedTime, portalMemberUntil) makes those
        # searches much slower (README, "Performance").
    ]
    replicated = bool(s.providers)
    syncprov = replicated or s.syncprov
    lines = [
        *includes,
        f"pidfile {s.run_dir / 'slapd.pid'}",
        f"argsfile {s.run_dir / 'slapd.args'}",
        *(f"serverID {n} {url}" for n, url in enumerate(s.providers, start=1)),
        "modulepath /usr/lib/ldap",
        "moduleload back_mdb",
        *(["moduleload syncprov"] if syncprov else []),
        # Modules before password-hash, indexes and overlays (OPENLDAP-NOTES).
        f"moduleload argon2 {ARGON2_PARAMETERS}",
        "moduleload ppolicy",
        "moduleload dynlist",
        f"password-hash {s.password_hash}",
        f"TLSCACertificateFile {s.ca_file}",
        f"TLSCertificateFile {s.tls_dir / 'server.pem'}",
        f"TLSCertificateKeyFile {s.tls_dir / 'server.key'}",
        "TLSProtocolMin 3.3",
        "sizelimit 500",
        # Static groups' values kept sorted: an add or a delete finds its
        # place by binary search instead of a scan.
        "sortvals member memberUid",
        "database mdb",
        f"maxsize {s.mdb_maxsize}",
        f'suffix "{s.base_dn}"',
        f'rootdn "{s.root_dn}"',
        f"rootpw {s.root_password_value}",
        f"directory {s.data_dir}",
        *(["dbnosync"] if s.nosync else []),
        *(f"index {ix}" for ix in indexes),
        f'limits dn.exact="{s.service_dn}" size=unlimited time=unlimited',
        # Services page through every member; an unpaged search stays capped.
        f'limits dn.children="{s.services_dn}" size.soft=500 size.hard=500 '
        'size.prtotal=unlimited time=unlimited',
        *(_replication_lines(s) if replicated else []),
        *(_consumer_lines(s) if s.consumer_of else []),
        *(["index entryCSN eq", "overlay syncprov", "syncprov-checkpoint 100 1"]
          if s.syncprov and not replicated else []),
        "overlay ppolicy",
        f'ppolicy_default "cn=default,ou=policies,{s.base_dn}"',
        # Cleartext in an add or modify is hashed (password-hash); a bind with
        # a wrong password never says "locked" (no ppolicy_use_lockout).
        "ppolicy_hash_cleartext",
        "overlay dynlist",
        # The main group is dynamic (portalDynamicGroup): its member values
        # are the active members, computed on read, compare and filter, so no
        # approval or expiry writes one huge entry; memberOf of every member
        # names it. dynlist 2.5.13 expands a group by its first matching
        # attrset only, and a mapped attrset (memberUid from uid) loses the
        # DN list and compares: the main group lists no memberUid (README,
        # "Directory"). "@groupOfUniqueNames" (a class no group here has):
        # with a static class named, a compare on a static group falls back
        # to slapd's own compare; without one dynlist answers FALSE for every
        # static group (measured). The second line: memberOf of the static
        # groups.
        "dynlist-attrset portalDynamicGroup memberURL member+memberOf@groupOfUniqueNames",
        "dynlist-attrset groupOfURLs memberURL member+memberOf@groupOfNames",
        acl,
    ]
    return "\n".join(lines) + "\n"


# A simple bind needs auth access to userPassword as anonymous. ssf=71:
# TLS (the cipher's strength, 128 or more) or ldapi (71); peername: the
# loopback addresses. Anything else is answered invalidCredentials, as a
# wrong password (measured on slapd 2.5.13: tests/test_slapd_config.py).
# The rootdn's rootpw is checked before any ACL: it is not covered.
_AUTH_OVER_TLS_OR_LOOPBACK = (
    "\tby anonymous ssf=71 auth\n"
    "\tby anonymous peername.ip=127.0.0.1 auth\n"
    "\tby anonymous peername.ipv6=::1 auth")


def anonymous_auth_lines(loopback_only: bool) -> str:
    """The userPassword rule's lines for binds: without TLS from loopback
    (and ldapi) only, or from anywhere."""
    return _AUTH_OVER_TLS_OR_LOOPBACK if loopback_only else "\tby anonymous auth"


def _anonymous_auth(s: SlapdSettings) -> str:
    return anonymous_auth_lines(s.plain_binds_from_loopback_only)


@dataclass
class ProductionSlapdSettings(SlapdSettings):
    """The production form of the same configuration: Debian's paths, the
    base DN and the rootdn's password hash left as ${...} placeholders,
    durable writes. ``python -m app.devstack slapd-config`` writes it to
    config/slapd/slapd.conf.template (a test checks the file is current)."""
    workdir: Path = Path("/var/lib/ldap")
    base_dn: str = "${base}"
    root_password: str = "${root_password_hash}"
    nosync: bool = False
    demo: bool = False
    plain_binds_from_loopback_only: bool = True

    @property
    def data_dir(self) -> Path:
        return self.workdir

    @property
    def tls_dir(self) -> Path:
        return Path("/etc/ldap/tls")

    @property
    def run_dir(self) -> Path:
        return Path("/run/slapd")

    @property
    def schema_dir(self) -> Path:
        return Path("/etc/ldap/schema")


PRODUCTION_CONF_HEADER = """\
# slapd.conf of the membership portal's directory (OpenLDAP 2.5, Debian 12).
# Generated by `python -m app.devstack slapd-config` from app/devstack/slapd.py,
# the same source as the dev stack's and the tests' slapd: do not edit here.
# Fill in ${base} (e.g. dc=example,dc=org) and ${root_password_hash}
# (slappasswd -o module-load=argon2 -h {ARGON2}); copy ldap_schema/portal.schema
# to /etc/ldap/schema/; install the CA, certificate and key in /etc/ldap/tls/
# (key readable by the openldap user only); keep this file 0640 root:openldap.
# Convert to cn=config if wanted: slaptest -f slapd.conf -F /etc/ldap/slapd.d
# Then load ldap_schema/bootstrap.ldif (filled in) with slapadd.
# Listen on ldap:/// (StartTLS), ldaps:/// and ldapi:/// (Debian: SLAPD_SERVICES
# in /etc/default/slapd). A password bind without TLS is accepted from loopback
# and ldapi only (the userPassword rule below); the rootdn's rootpw is checked
# before any rule, so bind as the rootdn over ldapi:/// or with TLS (-ZZ) only.
"""


def render_production_slapd_conf() -> str:
    return PRODUCTION_CONF_HEADER + render_slapd_conf(ProductionSlapdSettings())


def _replication_lines(s: SlapdSettings) -> list[str]:
    """Every provider pulls from every other one (refreshAndPersist)."""
    lines = ["index entryCSN eq"]  # entryUUID is indexed for every server
    for n, url in enumerate(s.providers, start=1):
        lines.append(
            f'syncrepl rid={n:03d} provider={url} bindmethod=simple binddn="{s.root_dn}" '
            f'credentials={s.root_password} searchbase="{s.base_dn}" type=refreshAndPersist '
            'retry="1 +" timeout=3')
    lines += ["multiprovider on", "overlay syncprov", "syncprov-checkpoint 100 1"]
    return lines


def _consumer_lines(s: SlapdSettings) -> list[str]:
    """A read-only consumer of ``consumer_of`` (refreshAndPersist); writes
    sent to it are refused with a referral to the provider."""
    return [
        "index entryCSN eq",
        f'syncrepl rid=100 provider={s.consumer_of} bindmethod=simple binddn="{s.root_dn}" '
        f'credentials={s.root_password} searchbase="{s.base_dn}" type=refreshAndPersist '
        'retry="1 +" timeout=3',
        f"updateref {s.consumer_of}",
    ]


def render_bootstrap_ldif(s: SlapdSettings) -> str:
    dc = s.base_dn.split(",")[0].split("=", 1)[1]
    values = {
        "base": s.base_dn,
        "dc": dc,
        "organisation": s.organisation,
        "mail_domain": s.mail_domain,
        "main_group": s.main_group,
        "main_gid_number": s.main_gid_number,
        "helpdesk_members": f"member: uid={DEMO_HELPDESK},ou=people,{s.base_dn}\n"
                            f"memberUid: {DEMO_HELPDESK}\n" if s.demo else "",
        "helpdesk_gid_number": s.main_gid_number + 1,
        "first_uid_number": s.first_uid_number,
        "service_password_hash": _argon2(s.service_password),
        "password_max_age": s.password_max_age_days * _DAY,
        "password_expire_warning": s.password_expire_warning_days * _DAY,
        "initial_password_max_age": s.initial_password_days * _DAY,
        "password_min_length": s.password_min_length,
        "ir_password_hash": _argon2(DEMO_IR_PASSWORD),
        "helpdesk_password_hash": _argon2(DEMO_HELPDESK_PASSWORD),
    }
    text = _fill(SCHEMA_DIR / "bootstrap.ldif", values)
    if s.demo:
        text += "\n" + _fill(SCHEMA_DIR / "demo.ldif", values)
    return text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlapdProcess:
    """Create (once), start and stop one slapd serving ``settings.workdir``."""

    def __init__(self, settings: SlapdSettings, port: int | None = None,
                 tls_port: int | None = None):
        self.settings = settings
        self.port = port
        self.tls_port = tls_port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Plain LDAP (StartTLS offered) on loopback."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def initialised(self) -> bool:
        return (self.settings.data_dir / "data.mdb").exists()

    def initialise(self, load: bool = True) -> None:
        """Write the config and load the bootstrap tree (and demo data);
        ``load=False`` leaves the database empty (a replica fills it)."""
        s = self.settings
        if s.data_dir.exists():
            shutil.rmtree(s.data_dir)
        s.data_dir.mkdir(parents=True)
        s.data_dir.chmod(0o700)  # the database holds password hashes
        make_certificates(s.tls_dir)
        write_secret(s.conf_path, render_slapd_conf(s))
        if not load:
            return
        ldif = s.workdir / "bootstrap.ldif"
        write_secret(ldif, render_bootstrap_ldif(s))
        server = ["-S", str(s.server_id), "-w"] if s.providers else []
        _run([SLAPADD, "-q", *server, "-f", str(s.conf_path), "-l", str(ldif)])
        ldif.unlink()

    def write_config(self) -> None:
        make_certificates(self.settings.tls_dir)
        write_secret(self.settings.conf_path, render_slapd_conf(self.settings))

    def start(self, attempts: int = 5) -> None:
        fixed_port = self.port is not None
        fixed_tls_port = self.tls_port is not None
        log = open(self.settings.workdir / "slapd.log", "ab")
        for _ in range(attempts):
            if not fixed_port:
                self.port = free_port()
            if not fixed_tls_port:
                self.tls_port = free_port()
            self.process = subprocess.Popen(
                [SLAPD, "-d", "none", "-f", str(self.settings.conf_path),
                 "-h", f"{self.url} {self.ldaps_url}",
                 *(["-n", f"slapd{self.settings.server_id}"] if self.settings.server_id else [])],
                stdout=log, stderr=log, start_new_session=True,
            )
            if self._wait_listening():
                return
            self.stop()
            if fixed_port and fixed_tls_port:
                break
        raise RuntimeError(
            f"slapd did not start on {self.url}; see {self.settings.workdir / 'slapd.log'}"
        )

    def _wait_listening(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                for port in (self.port, self.tls_port):
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        pass
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


def write_secret(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds passwords or keys),
    created 0600 from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")


def ensure_executables() -> None:
    missing = [p for p in (SLAPD, SLAPADD) if not os.access(p, os.X_OK)]
    if missing:
        raise RuntimeError(
            "OpenLDAP server tools not found (" + ", ".join(missing) + "): "
            "install Debian's slapd and ldap-utils (make run/make test do it as root)"
        )
