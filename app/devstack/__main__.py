"""The dev stack: ``python -m app.devstack run`` (what ``make run`` calls).

Starts a real slapd (data kept under var/ldap), a mail catcher writing
var/mail/*.eml, redis-server for the rate limits, the portal under gunicorn
with nginx in front of it (TLS on PORTAL_DEV_TLS_PORT, Grid client certificates)
and the mail sender (``flask mail send --loop``); Ctrl-C stops them all.
``reset`` forgets the data; ``env`` prints the PORTAL_* variables so that
``flask --app wsgi ...`` commands reach the running stack.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from .mailcatcher import MailCatcher
from .nginx import NginxProcess
from .ratestore import RateStore
from .slapd import (
    DEMO_HELPDESK,
    DEMO_HELPDESK_PASSWORD,
    DEMO_IR_PASSWORD,
    DEMO_IRS,
    SlapdProcess,
    SlapdSettings,
    ensure_executables,
    write_secret,
)

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"
STATE = VAR / "dev-stack.json"


def _ports() -> tuple[int, int, int]:
    return (int(os.environ.get("PORTAL_DEV_LDAP_PORT", "3389")),
            int(os.environ.get("PORTAL_DEV_SMTP_PORT", "2525")),
            int(os.environ.get("PORT", "5000")))


def _ldaps_port() -> int:
    return int(os.environ.get("PORTAL_DEV_LDAPS_PORT", "3636"))


def _redis_port() -> int:
    return int(os.environ.get("PORTAL_DEV_REDIS_PORT", "6380"))


def _tls_port() -> int:
    return int(os.environ.get("PORTAL_DEV_TLS_PORT", "5443"))


TLS_DIR = VAR / "tls"
DEMO_P12_PASSWORD = "demo"
DEMO_CLIENT = (("C", "DE"), ("O", "GridKa Dev"), ("OU", "DESY"),
               ("CN", "Erika Mustermann 0042"), ("emailAddress", "erika.mustermann@desy.example"))


def dev_certificates() -> dict[str, Path]:
    """The dev stack's Grid CA, nginx's server certificate and a demo client
    certificate (PEM and PKCS#12), made once under var/tls/."""
    from .gridca import GridCA, name
    paths = {"ca": TLS_DIR / "grid-ca.pem", "server": TLS_DIR / "server.pem",
             "server_key": TLS_DIR / "server.key", "client": TLS_DIR / "demo-client.pem",
             "client_key": TLS_DIR / "demo-client.key", "client_p12": TLS_DIR / "demo-client.p12"}
    if all(path.exists() for path in paths.values()):
        return paths
    TLS_DIR.mkdir(parents=True, exist_ok=True)
    TLS_DIR.chmod(0o700)
    ca = GridCA(name(("C", "DE"), ("O", "GridKa Dev"), ("CN", "Membership portal dev Grid CA")))
    ca.write(paths["ca"])
    ca.issue(name(("CN", "localhost")), server_names=("127.0.0.1", "localhost")).write(
        TLS_DIR, "server")
    ca.issue(name(*DEMO_CLIENT)).write(TLS_DIR, "demo-client", p12_password=DEMO_P12_PASSWORD)
    return paths


def _state() -> dict:
    """Secrets of this dev stack, made once and kept with its data."""
    if STATE.exists():
        return json.loads(STATE.read_text())
    state = {"service_password": secrets.token_urlsafe(24),
             "root_password": secrets.token_urlsafe(24),
             "secret_key": secrets.token_urlsafe(48)}
    VAR.mkdir(exist_ok=True)
    write_secret(STATE, json.dumps(state))  # 0600 from the start
    return state


def _slapd_settings(state: dict) -> SlapdSettings:
    return SlapdSettings(workdir=VAR / "ldap", service_password=state["service_password"],
                         root_password=state["root_password"])


def portal_environment(state: dict) -> dict[str, str]:
    ldap_port, smtp_port, web_port = _ports()
    s = _slapd_settings(state)
    return {
        "PORTAL_ENV": "dev",
        "PORTAL_SECRET_KEY": state["secret_key"],
        "PORTAL_BASE_URL": f"http://127.0.0.1:{web_port}",
        "PORTAL_LDAP_URLS": f"ldap://127.0.0.1:{ldap_port}",
        # StartTLS, verified against the dev stack's own CA.
        "PORTAL_LDAP_START_TLS": "true",
        "PORTAL_LDAP_CA_FILE": str(s.ca_file),
        "PORTAL_LDAP_BASE_DN": s.base_dn,
        "PORTAL_LDAP_BIND_DN": s.service_dn,
        "PORTAL_LDAP_BIND_PASSWORD": state["service_password"],
        "PORTAL_SMTP_HOST": "127.0.0.1",
        "PORTAL_SMTP_PORT": str(smtp_port),
        "PORTAL_MAIL_FROM": f"Membership registry <registry@{s.mail_domain}>",
        "PORTAL_COLLABORATION_NAME": s.organisation,
        "PORTAL_MAIL_DOMAIN": s.mail_domain,
        "PORTAL_MAIN_GROUP": s.main_group,
        "PORTAL_HELPDESK_EMAIL": f"helpdesk@{s.mail_domain}",
        "PORTAL_DEV_MAIL_DIR": str(VAR / "mail"),
        # Both gunicorn workers count in one store, as in production.
        "PORTAL_RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{_redis_port()}/0",
        # Web workers queue; the sender started next to gunicorn delivers.
        "PORTAL_MAIL_DELIVERY": "outbox",
        # nginx on PORTAL_DEV_TLS_PORT passes the client certificate on.
        "PORTAL_TRUSTED_PROXIES": "127.0.0.1",
    }


def admin_ldapsearch(slapd: SlapdProcess) -> str:
    """The rootdn's ldapsearch the dev stack prints: StartTLS required
    (-ZZ) and the certificate verified against the dev stack's CA, so the
    password never crosses the connection in clear."""
    s = slapd.settings
    return (f"LDAPTLS_CACERT={s.ca_file} ldapsearch -x -ZZ -H {slapd.url} -D '{s.root_dn}' "
            f"-w '{s.root_password}' -b '{s.base_dn}'")


def run() -> int:
    ensure_executables()
    ldap_port, smtp_port, web_port = _ports()
    state = _state()
    slapd = SlapdProcess(_slapd_settings(state), port=ldap_port, tls_port=_ldaps_port())
    if not slapd.initialised:
        print("Creating the dev directory under var/ldap (schema, tree, demo data)...")
        slapd.settings.workdir.mkdir(parents=True, exist_ok=True)
        slapd.initialise()
    else:
        slapd.write_config()
    catcher = MailCatcher(smtp_port, folder=VAR / "mail")
    ratestore = RateStore(VAR / "ratelimits", port=_redis_port())
    tls = dev_certificates()
    nginx = NginxProcess(VAR / "nginx", _tls_port(), certificate=tls["server"],
                         key=tls["server_key"], client_ca=tls["ca"],
                         upstream=f"http://127.0.0.1:{web_port}")
    gunicorn = sender = None
    try:
        slapd.start()
        catcher.start()
        ratestore.start()
        nginx.start()
        env = {**os.environ, **portal_environment(state)}
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
             "--bind", f"127.0.0.1:{web_port}", "--workers", "2", "wsgi:app"],
            cwd=ROOT, env=env)
        sender = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "mail", "send", "--loop",
             "--interval", "1"], cwd=ROOT, env=env)
        s = slapd.settings
        print(f"""
Dev stack running (Ctrl-C stops it; data stays in var/ until `make reset`):
  portal      http://127.0.0.1:{web_port}/          (register at /register)
  caught mail http://127.0.0.1:{web_port}/dev/mail  (files in var/mail/)
  directory   {slapd.url} (StartTLS) and {slapd.ldaps_url}  base {s.base_dn}
              CA certificate {s.ca_file}
              admin: {admin_ldapsearch(slapd)}
  smtp        127.0.0.1:{smtp_port}  (mail leaves through the outbox: flask mail list)
  rate limits {ratestore.url} (redis-server)
  nginx       {nginx.url}/  (TLS, Grid certificates: {nginx.url}/register/certificate)
              dev Grid CA {tls["ca"]}  server certificate {tls["server"]}
              demo client certificate {tls["client"]} + {tls["client_key"]}
              (PKCS#12 for the browser: {tls["client_p12"]}, password {DEMO_P12_PASSWORD})
Demo accounts (directory binds as uid=<name>,ou=people,{s.base_dn}):
  institute representatives {', '.join(f'{uid} ({inst})' for inst, uid in DEMO_IRS.items())}
      password {DEMO_IR_PASSWORD}
  helpdesk   {DEMO_HELPDESK} (helpdesk console)  password {DEMO_HELPDESK_PASSWORD}
""", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        return gunicorn.wait()
    except KeyboardInterrupt:
        print("\nStopping the dev stack...")
        return 0
    finally:
        for process in (gunicorn, sender):
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)
        nginx.stop()
        ratestore.stop()
        catcher.stop()
        slapd.stop()


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def reset() -> int:
    for path in (VAR / "ldap", VAR / "mail", VAR / "ratelimits", VAR / "tls", VAR / "nginx",
                 STATE):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    print("Dev data removed; the next `make run` creates a fresh directory.")
    return 0


def write_schema_ldif() -> int:
    import tempfile

    from .schema_tools import schema_as_ldif
    from .slapd import SCHEMA_DIR
    with tempfile.TemporaryDirectory() as work:
        text = schema_as_ldif(SCHEMA_DIR / "portal.schema", Path(work))
    (SCHEMA_DIR / "portal.ldif").write_text(text)
    print("ldap_schema/portal.ldif written from ldap_schema/portal.schema")
    return 0


def write_slapd_config() -> int:
    from .slapd import render_production_slapd_conf
    target = ROOT / "config" / "slapd" / "slapd.conf.template"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_production_slapd_conf())
    print(f"{target.relative_to(ROOT)} written from app/devstack/slapd.py")
    return 0


def print_env() -> int:
    state = _state()
    for name, value in portal_environment(state).items():
        print(f"export {name}='{value}'")
    # For the operator's commands (flask directory ...), not for the portal.
    s = _slapd_settings(state)
    print(f"export PORTAL_LDAP_ADMIN_DN='{s.root_dn}'")
    print(f"export PORTAL_LDAP_ADMIN_PASSWORD='{state['root_password']}'")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devstack")
    parser.add_argument("command", choices=("run", "reset", "env", "schema-ldif", "slapd-config"))
    command = parser.parse_args().command
    return {"run": run, "reset": reset, "env": print_env, "schema-ldif": write_schema_ldif,
            "slapd-config": write_slapd_config}[command]()


if __name__ == "__main__":
    sys.exit(main())
