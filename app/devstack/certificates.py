"""A CA and a server certificate for the dev stack's and the tests' slapd
(openssl, EC P-256), made once under the slapd folder."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


def make_certificates(tls_dir: Path, days: int = 825, extra_ips: tuple[str, ...] = ()) -> None:
    """A CA and a server certificate for 127.0.0.1/localhost (and
    ``extra_ips``), made once (openssl; EC P-256 keys, private keys 0600)."""
    if (tls_dir / "server.pem").exists() and (tls_dir / "ca.pem").exists():
        return
    tls_dir.mkdir(parents=True, exist_ok=True)
    tls_dir.chmod(0o700)
    ca_key, ca, key = tls_dir / "ca.key", tls_dir / "ca.pem", tls_dir / "server.key"
    request, ext = tls_dir / "server.csr", tls_dir / "server.ext"
    old = os.umask(0o077)
    try:
        _openssl(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", str(days),
              "-subj", "/CN=Membership portal development CA", "-addext",
              "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        _openssl(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes",
              "-keyout", str(key), "-out", str(request), "-subj", "/CN=localhost"])
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost"
                       + "".join(f",IP:{ip}" for ip in extra_ips) + "\n"
                       "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
        _openssl(["openssl", "x509", "-req", "-in", str(request), "-CA", str(ca),
                  "-CAkey", str(ca_key),
              "-CAcreateserial", "-out", str(tls_dir / "server.pem"), "-days", str(days),
              "-extfile", str(ext)])
    finally:
        os.umask(old)
    ca.chmod(0o644)
    request.unlink()
    ext.unlink()


def _openssl(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{result.stdout}{result.stderr}")
