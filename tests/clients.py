"""Real directory clients for the tests: Apache httpd with mod_authnz_ldap
(Debian's apache2) in front of a test location, and python-ldap (libldap,
not the portal's ldap3), each binding with a service account of its own
made by the operator's command (``flask directory add-service``)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import ldap
import pytest

from app.devstack.slapd import free_port

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
BASE_DN = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE_DN}"
GROUPS = f"ou=groups,{BASE_DN}"


def service_account(slapd, name: str) -> tuple[str, str]:
    """(bind DN, password) of a new service account, made as the operator
    does it (the rootdn, through the CLI's module)."""
    from app import create_app, portal
    from app.directory.services_accounts import ServiceAccounts
    from tests.conftest import portal_environment

    class _NoSmtp:
        port = 1
    app = create_app(portal_environment(slapd, _NoSmtp()))
    with app.app_context():
        accounts = ServiceAccounts(portal().directory, slapd.settings.root_dn,
                                   slapd.settings.root_password)
        if name in {a.name for a in accounts.list()}:
            password = accounts.rotate(name)
        else:
            password = accounts.add(name, f"test client {name}")
        return accounts.dn(name), password


def python_ldap(url: str, dn: str | None = None, password: bytes | str | None = None,
                ca_file: str | None = None, start_tls: bool = False):
    """A python-ldap connection, bound when ``dn`` is given (raises on failure)."""
    conn = ldap.initialize(url)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
    if ca_file:
        conn.set_option(ldap.OPT_X_TLS_CACERTFILE, ca_file)
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    if start_tls:
        conn.start_tls_s()
    if dn is not None:
        conn.simple_bind_s(dn, password)
    return conn


APACHE_CONF = """
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}"
ErrorLog "{root}/error.log"
LogLevel warn authnz_ldap:info
LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule auth_basic_module {modules}/mod_auth_basic.so
LoadModule ldap_module {modules}/mod_ldap.so
LoadModule authnz_ldap_module {modules}/mod_authnz_ldap.so
{user}
DocumentRoot "{htdocs}"
<Directory "{htdocs}">
    Require all granted
</Directory>
# Caches off in the tests (a suspension shows at once); production: README.
LDAPCacheEntries 0
LDAPOpCacheEntries 0
LDAPConnectionPoolTTL 0

<Location "/members">
    AuthType Basic
    AuthName "Collaboration"
    AuthBasicProvider ldap
    AuthLDAPURL "{ldap_url}/{people}?uid?one?(objectClass=posixAccount)"
    AuthLDAPBindDN "{bind_dn}"
    AuthLDAPBindPassword "{bind_password}"
    AuthLDAPRemoteUserAttribute uid
    AuthLDAPGroupAttribute member
    AuthLDAPGroupAttributeIsDN on
    <RequireAll>
        Require ldap-group cn=members,{groups}
        Require ldap-attribute portalStatus=active
    </RequireAll>
</Location>

<Location "/naf">
    AuthType Basic
    AuthName "Analysis facility"
    AuthBasicProvider ldap
    AuthLDAPURL "{ldap_url}/{people}?uid?one?(objectClass=posixAccount)"
    AuthLDAPBindDN "{bind_dn}"
    AuthLDAPBindPassword "{bind_password}"
    AuthLDAPRemoteUserAttribute uid
    <RequireAll>
        Require ldap-group cn=naf,{groups}
        Require ldap-filter portalStatus=active
    </RequireAll>
</Location>
"""


class Apache:
    def __init__(self, root: Path, htdocs: Path, port: int, process: subprocess.Popen):
        self.root, self.htdocs, self.port, self.process = root, htdocs, port, process
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, user: str | None = None, password: str | bytes = "") -> int:
        request = urllib.request.Request(self.url + path)
        if user is not None:
            secret = password if isinstance(password, bytes) else password.encode("utf-8")
            token = b64encode(user.encode() + b":" + secret).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_apache(ldap_url: str, bind_dn: str, bind_password: str) -> Apache:
    # Apache refuses to serve as root: it drops to www-data, which must read
    # the documents (pytest's own temporary folders are 0700).
    root = Path(tempfile.mkdtemp(prefix="portal-apache-"))
    htdocs = root / "htdocs"
    for location in ("members", "naf"):
        (htdocs / location).mkdir(parents=True)
        (htdocs / location / "index.txt").write_text(f"{location}\n")
    for path in (root, htdocs, htdocs / "members", htdocs / "naf"):
        path.chmod(0o755)
    for attempt in range(5):
        port = free_port()
        conf = root / "httpd.conf"
        conf.write_text(APACHE_CONF.format(
            root=root, port=port, modules=APACHE_MODULES, htdocs=htdocs, ldap_url=ldap_url,
            people=PEOPLE, groups=GROUPS, bind_dn=bind_dn, bind_password=bind_password,
            user="User www-data\nGroup www-data" if os.geteuid() == 0 else ""))
        conf.chmod(0o600)  # it holds the service account's password
        process = subprocess.Popen([APACHE, "-X", "-f", str(conf)], cwd=root,
                                   stdout=subprocess.DEVNULL, stderr=open(root / "stderr.log", "ab"),
                                   start_new_session=True)
        apache = Apache(root, htdocs, port, process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                apache.get("/")
                return apache
            except OSError:
                time.sleep(0.05)
        stop_apache(apache, remove=False)
    raise RuntimeError("apache2 did not start: " + (root / "stderr.log").read_text()
                       + apache.log())


def stop_apache(apache: Apache, remove: bool = True) -> None:
    if apache.process.poll() is None:
        apache.process.terminate()
        try:
            apache.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            apache.process.kill()
            apache.process.wait()
    if remove:
        shutil.rmtree(apache.root, ignore_errors=True)


@pytest.fixture(scope="session")
def apache(slapd):
    bind_dn, password = service_account(slapd, "apache")
    server = start_apache(slapd.url, bind_dn, password)
    yield server
    stop_apache(server)


DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"

DOVECOT_LDAP_CONF = """\
uris = {ldap_url}
dn = {bind_dn}
dnpass = {bind_password}
# The password is checked by a bind as the entry pass_filter finds.
auth_bind = yes
base = {people}
pass_filter = (&(objectClass=posixAccount)(uid=%n)(portalStatus=active))
pass_attrs = uid=user
user_filter = (&(objectClass=posixAccount)(uid=%n)(portalStatus=active))
user_attrs = homeDirectory=home,uidNumber=uid,gidNumber=gid
"""

DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain
disable_plaintext_auth = no
# No delay after a failure in the tests (Dovecot's default is 2 s).
auth_failure_delay = 0
passdb {{
  driver = ldap
  args = {root}/dovecot-ldap.conf.ext
}}
userdb {{
  driver = ldap
  args = {root}/dovecot-ldap.conf.ext
}}
{users}
"""


class Dovecot:
    """Dovecot's auth service only (no mail protocols), asked with doveadm."""

    def __init__(self, root: Path, process: subprocess.Popen):
        self.root, self.process = root, process
        self.conf = root / "dovecot.conf"
        self.calls = 0

    def auth(self, user: str, password: str | bytes) -> bool:
        """doveadm auth test: the passdb (status filter, then a bind). Each
        call comes from another loopback address: Dovecot delays the next
        attempt from an address after a failure (2, 4, 8... s)."""
        secret = password if isinstance(password, bytes) else password.encode("utf-8")
        self.calls += 1
        address = f"127.0.{self.calls // 250}.{self.calls % 250 + 1}"
        result = subprocess.run([DOVEADM, "-c", str(self.conf), "auth", "test",
                                 "-x", f"rip={address}", user, secret],
                                capture_output=True, timeout=30)
        return result.returncode == 0

    def user(self, user: str) -> dict[str, str] | None:
        """doveadm user: the userdb's fields, None when it has no such user."""
        result = subprocess.run([DOVEADM, "-c", str(self.conf), "user", user],
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            return None
        return dict(line.split("\t", 1) for line in result.stdout.splitlines()[1:] if "\t" in line)


def start_dovecot(ldap_url: str, bind_dn: str, bind_password: str) -> Dovecot:
    root = Path(tempfile.mkdtemp(prefix="portal-dovecot-"))
    ldap_conf = root / "dovecot-ldap.conf.ext"
    ldap_conf.write_text(DOVECOT_LDAP_CONF.format(ldap_url=ldap_url, bind_dn=bind_dn,
                                                  bind_password=bind_password, people=PEOPLE))
    ldap_conf.chmod(0o600)
    # As root, the auth processes stay root to read the 0600 files of this folder.
    users = ("service auth {\n  user = root\n}\nservice auth-worker {\n  user = root\n}\n"
             if os.geteuid() == 0 else "")
    (root / "dovecot.conf").write_text(DOVECOT_CONF.format(root=root, users=users))
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=open(root / "stderr.log", "ab"),
                               start_new_session=True)
    dovecot = Dovecot(root, process)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and process.poll() is None:
        if (root / "run" / "auth-userdb").exists() and (root / "run" / "auth-client").exists():
            return dovecot
        time.sleep(0.05)
    stop_dovecot(dovecot, remove=False)
    raise RuntimeError("dovecot did not start: " + (root / "stderr.log").read_text())


def stop_dovecot(dovecot: Dovecot, remove: bool = True) -> None:
    if dovecot.process.poll() is None:
        dovecot.process.terminate()
        try:
            dovecot.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dovecot.process.kill()
            dovecot.process.wait()
    if remove:
        shutil.rmtree(dovecot.root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot(slapd):
    bind_dn, password = service_account(slapd, "dovecot")
    server = start_dovecot(slapd.url, bind_dn, password)
    yield server
    stop_dovecot(server)
