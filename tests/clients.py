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


def wait_until(check, timeout: float = 5.0, interval: float = 0.02):
    """Poll ``check`` until it returns something true (refint and dynlist
    work after the response); the last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
