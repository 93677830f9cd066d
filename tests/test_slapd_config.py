"""The slapd configuration: the production file shipped in config/slapd/ is
what the one generator (app/devstack/slapd.py) makes, it loads in slapd, and
files with secrets are never readable by others."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from app.devstack.slapd import (
    ARGON2_PARAMETERS,
    SCHEMA_DIR,
    SLAPTEST,
    render_production_slapd_conf,
)

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
    tls = slapd.settings.tls_dir
    filled = (text.replace("${base}", "dc=example,dc=org")
              .replace("${root_password_hash}", "{ARGON2}$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$"
                                                 "aGFzaGhhc2hoYXNoaGFzaA")
              .replace("/etc/ldap/schema/portal.schema", str(SCHEMA_DIR / "portal.schema"))
              .replace("/etc/ldap/tls", str(tls))
              .replace("/var/lib/ldap", str(tmp_path))
              .replace("/run/slapd", str(tmp_path)))
    conf = tmp_path / "slapd.conf"
    conf.write_text(filled)
    result = subprocess.run([SLAPTEST, "-u", "-f", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_files_with_secrets_are_owner_only(slapd):
    s = slapd.settings
    for path in (s.conf_path, s.tls_dir / "server.key", s.tls_dir / "ca.key"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))
    assert stat.S_IMODE(s.data_dir.stat().st_mode) & 0o077 == 0
    assert s.root_password in s.conf_path.read_text()  # which is why it is 0600
