"""nginx in front of gunicorn for the dev stack and the tests, configured
from the shipped config/nginx/portal.conf: its HTTPS server block with the
lines marked "site:" replaced (port, certificates, client CA, gunicorn)."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
PORTAL_CONF = ROOT / "config" / "nginx" / "portal.conf"


def nginx_executable() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    return found


def server_block(text: str, *, port: int, certificate: Path, key: Path, client_ca: Path,
                 upstream: str) -> str:
    """The HTTPS server block of portal.conf, its site lines replaced."""
    blocks = re.findall(r"^server \{.*?^\}", text, flags=re.S | re.M)
    https = next(b for b in blocks if "ssl_verify_client" in b)
    replacements = {
        "listen": f"listen 127.0.0.1:{port} ssl http2;",
        "server_name": "server_name 127.0.0.1 localhost;",
        "ssl_certificate": f"ssl_certificate {certificate};",
        "ssl_certificate_key": f"ssl_certificate_key {key};",
        "ssl_client_certificate": f"ssl_client_certificate {client_ca};",
        "proxy_pass": f"proxy_pass {upstream};",
    }

    def site(match: re.Match) -> str:
        indent, directive = match.group(1), match.group(2)
        return indent + replacements[directive]
    result, count = re.subn(r"^(\s*)(\S+)\s[^\n]*# site:[^\n]*$", site, https, flags=re.M)
    if count != len(replacements) + 1:  # proxy_pass twice
        raise ValueError(f"{PORTAL_CONF}: expected {len(replacements)} site lines, found {count}")
    return result


def render_nginx_conf(workdir: Path, **site) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = {name: workdir / name for name in ("client_body", "proxy", "fastcgi", "uwsgi",
                                               "scgi")}
    return f"""{user}worker_processes 1;
daemon off;
pid {workdir / 'nginx.pid'};
error_log {workdir / 'error.log'} info;
events {{ worker_connections 256; }}
http {{
    access_log {workdir / 'access.log'};
    client_body_temp_path {temp['client_body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    default_type application/octet-stream;
{server_block(PORTAL_CONF.read_text(), **site)}
}}
"""


class NginxProcess:
    """nginx on 127.0.0.1:``port`` (TLS, client certificates optional) in
    front of ``upstream``; its config and logs in ``workdir``."""

    def __init__(self, workdir: Path, port: int, *, certificate: Path, key: Path,
                 client_ca: Path, upstream: str):
        self.workdir = Path(workdir)
        self.port = port
        self.site = dict(port=port, certificate=certificate, key=key, client_ca=client_ca,
                         upstream=upstream)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(render_nginx_conf(self.workdir, **self.site))
        executable = nginx_executable()
        check = subprocess.run([executable, "-t", "-q", "-e", str(self.workdir / "error.log"),
                                "-p", str(self.workdir), "-c", str(conf)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
        log = open(self.workdir / "stderr.log", "ab")
        self.process = subprocess.Popen(
            [executable, "-e", str(self.workdir / "error.log"), "-p", str(self.workdir),
             "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("nginx did not start:\n" + (
                        self.workdir / "error.log").read_text(errors="replace")) from None
                time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
