"""The slapd configuration: the production file shipped in config/slapd/ is
what the one generator (app/devstack/slapd.py) makes, it loads in slapd, and
files with secrets are never readable by others."""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import ldap
import pytest
from argon2 import PasswordHasher

from app.devstack.__main__ import admin_ldapsearch
from app.devstack.certificates import make_certificates
from app.devstack.processes import stop_process
from app.devstack.slapd import (
    ARGON2_PARAMETERS,
    SCHEMA_DIR,
    SLAPADD,
    SLAPD,
    SLAPTEST,
    SlapdSettings,
    free_port,
    render_bootstrap_ldif,
    render_production_slapd_conf,
)
from fixtures.clients import python_ldap
from helpers import BASE_DN, PEOPLE

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config" / "slapd" / "slapd.conf.template"


def test_the_shipped_production_config_is_the_generators():
    assert SHIPPED.read_text() == render_production_slapd_conf(), \
        "regenerate with: python -m app.devstack slapd-config"


def test_the_shipped_production_config_loads_in_slapd(slapd, tmp_path):
    text = SHIPPED.read_text()
    for key in ("ppolicy_hash_cleartext", f"moduleload argon2 {ARGON2_PARAMETERS}",
                "size.prtotal=unlimited", "TLSCertificateFile"):
        assert key in text
    lines = {line.strip() for line in text.splitlines()}
    assert "ppolicy_use_lockout" not in lines  # a wrong password never says "locked"
    assert "dbnosync" not in text
    # Binds without TLS from loopback only (the dev stack's "from anywhere" line is not there).
    assert "by anonymous peername.ip=127.0.0.1 auth" in lines
    assert "by anonymous auth" not in lines
    conf = tmp_path / "slapd.conf"
    (tmp_path / "data").mkdir()
    conf.write_text(filled_production_conf(
        slapd.settings.tls_dir, tmp_path,
        "{ARGON2}$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"))
    result = subprocess.run([SLAPTEST, "-u", "-f", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def filled_production_conf(tls_dir: Path, workdir: Path, root_password_hash: str) -> str:
    """The shipped file with its placeholders and Debian's paths filled in
    as a sysadmin would, pointing at ``workdir``."""
    return (SHIPPED.read_text().replace("${base}", BASE_DN)
            .replace("${root_password_hash}", root_password_hash)
            .replace("/etc/ldap/schema/portal.schema", str(SCHEMA_DIR / "portal.schema"))
            .replace("/etc/ldap/tls", str(tls_dir))
            .replace("/var/lib/ldap", str(workdir / "data"))
            .replace("/run/slapd", str(workdir)))


# Put on the loopback interface for the test when the machine has no
# address of its own outside 127/8 (a host without a network): a connection
# to it still comes from outside 127/8, as one from another host would.
TEST_NET_ADDRESS = "192.0.2.213"


def _global_addresses() -> list[str]:
    listing = subprocess.run(["ip", "-j", "-4", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, check=True).stdout
    return [a["local"] for interface in json.loads(listing)
            for a in interface.get("addr_info", [])]


@contextmanager
def non_loopback_address() -> Iterator[str]:
    """An IPv4 address of this machine that is not loopback: a connection to
    it comes from it, as one from another host would. Without one (and as
    root), TEST_NET_ADDRESS on lo for as long as the test needs it."""
    addresses = _global_addresses()
    if addresses:
        yield addresses[0]
        return
    added = subprocess.run(["ip", "addr", "add", f"{TEST_NET_ADDRESS}/32", "dev", "lo"],
                           capture_output=True, text=True)
    assert added.returncode == 0, \
        f"no non-loopback IPv4 address, and none could be added: {added.stderr}"
    try:
        yield TEST_NET_ADDRESS
    finally:
        subprocess.run(["ip", "addr", "del", f"{TEST_NET_ADDRESS}/32", "dev", "lo"],
                       capture_output=True)


ROOT_PASSWORD = "Production-root-password-1"
SERVICE_PASSWORD = "Production-portal-password-1"


@pytest.fixture(scope="module")
def production_slapd(tmp_path_factory):
    """A slapd run from the shipped production slapd.conf (filled in), with
    the bootstrap tree and the demo accounts, listening on loopback, on a
    non-loopback address of this machine (plain and ldaps) and on ldapi."""
    work = tmp_path_factory.mktemp("production")
    with non_loopback_address() as address:
        tls = work / "tls"
        make_certificates(tls, extra_ips=(address,))
        (work / "data").mkdir(mode=0o700)
        root_hash = "{ARGON2}" + PasswordHasher(time_cost=1, memory_cost=1024,
                                                parallelism=1).hash(ROOT_PASSWORD)
        conf = work / "slapd.conf"
        conf.write_text(filled_production_conf(tls, work, root_hash))
        ldif = work / "bootstrap.ldif"
        ldif.write_text(render_bootstrap_ldif(SlapdSettings(workdir=work, base_dn=BASE_DN,
                                                            service_password=SERVICE_PASSWORD)))
        subprocess.run([SLAPADD, "-q", "-f", str(conf), "-l", str(ldif)], check=True,
                       capture_output=True)
        port, tls_port = free_port(), free_port()
        urls = {"loopback": f"ldap://127.0.0.1:{port}", "remote": f"ldap://{address}:{port}",
                "remote ldaps": f"ldaps://{address}:{tls_port}",
                "ldapi": "ldapi://" + urllib.parse.quote(str(work / "ldapi"), safe="")}
        log = open(work / "slapd.log", "ab")
        process = subprocess.Popen(
            [SLAPD, "-d", "none", "-f", str(conf), "-h", " ".join(urls.values())],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, (work / "slapd.log").read_text()
            try:
                for host, p in ((address, port), (address, tls_port)):
                    socket.create_connection((host, p), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "slapd did not start"
                time.sleep(0.05)
        yield urls, str(tls / "ca.pem")
        stop_process(process)
        log.close()


def test_production_refuses_binds_without_tls_from_another_host(production_slapd):
    """With the shipped slapd.conf a simple bind (a member, the portal's own
    account) over plain ldap:// from a non-loopback address is refused like a
    wrong password; StartTLS and ldaps (certificate verified), loopback and
    ldapi are accepted. The rootdn is the documented exception: its rootpw is
    checked before any ACL (README, "Directory", TLS)."""
    urls, ca = production_slapd
    accounts = {"a member": (f"uid=irkek,{PEOPLE}", "Demo-representative-2026"),
                "the portal": (f"cn=portal,ou=services,{BASE_DN}", SERVICE_PASSWORD)}
    for who, (dn, password) in accounts.items():
        with pytest.raises(ldap.INVALID_CREDENTIALS):
            python_ldap(urls["remote"], dn, password)
        with pytest.raises(ldap.INVALID_CREDENTIALS):
            python_ldap(urls["remote"], dn, "Wrong-password-1")
        tls = python_ldap(urls["remote"], dn, password, ca_file=ca, start_tls=True)
        assert tls.whoami_s() == f"dn:{dn}", who
        assert python_ldap(urls["remote ldaps"], dn, password, ca_file=ca).whoami_s() == \
            f"dn:{dn}", who
        for local in ("loopback", "ldapi"):
            assert python_ldap(urls[local], dn, password).whoami_s() == f"dn:{dn}", (who, local)
    root = python_ldap(urls["remote"], f"cn=admin,{BASE_DN}", ROOT_PASSWORD)
    assert root.whoami_s() == f"dn:cn=admin,{BASE_DN}"


def test_files_with_secrets_are_owner_only(slapd):
    s = slapd.settings
    for path in (s.conf_path, s.tls_dir / "server.key", s.tls_dir / "ca.key"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))
    assert stat.S_IMODE(s.data_dir.stat().st_mode) & 0o077 == 0
    assert s.root_password in s.conf_path.read_text()  # which is why it is 0600


def test_the_dev_stacks_admin_command_requires_tls_and_verifies_the_ca(slapd, tmp_path):
    """The ldapsearch line `make run` prints for the rootdn: StartTLS
    required (-ZZ), verified against the dev stack's CA; a foreign CA fails."""
    command = admin_ldapsearch(slapd)
    assert " -ZZ " in command and f"LDAPTLS_CACERT={slapd.settings.ca_file} " in command
    result = subprocess.run(["sh", "-c", command + " -s base dn"], capture_output=True, text=True)
    assert result.returncode == 0 and f"dn: {BASE_DN}" in result.stdout, result.stderr
    make_certificates(tmp_path)
    foreign = command.replace(str(slapd.settings.ca_file), str(tmp_path / "ca.pem"))
    result = subprocess.run(["sh", "-c", foreign + " -s base dn"], capture_output=True, text=True)
    assert result.returncode != 0 and "ldap_start_tls" in result.stderr, result.stderr


def test_the_dev_stacks_secrets_file_is_owner_only(tmp_path, monkeypatch):
    """var/dev-stack.json (the rootdn's and the portal's passwords, the
    secret key) is created 0600, whatever the umask."""
    import app.devstack.__main__ as devstack
    monkeypatch.setattr(devstack, "VAR", tmp_path)
    monkeypatch.setattr(devstack, "STATE", tmp_path / "dev-stack.json")
    old = os.umask(0)
    try:
        state = devstack._state()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "dev-stack.json").stat().st_mode) == 0o600
    assert devstack._state() == state  # made once, then kept
