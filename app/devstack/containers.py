"""The directory image's configuration, made by the dev stack's own generator.

``python -m app.devstack.containers templates OUTDIR`` (run while the image
is built) calls ``render_slapd_conf`` and ``render_bootstrap_ldif`` of
``app/devstack/slapd.py`` with sentinel values and turns them into templates
with ``${NAME}`` placeholders, which the image's entrypoint
(``containers/directory/entrypoint.sh``) fills from environment variables at
first start. So the dev stack, the tests and the image share one
configuration: schema, modules, ACLs, indexes, limits, policies, tree.

``python -m app.devstack.containers mailcatcher`` runs the dev stack's mail
catcher in the foreground (the ``mail`` service of ``compose.yaml``).
"""
from __future__ import annotations

import argparse
import re
import shlex
import signal
import sys
import threading
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .slapd import (
    DEMO_HELPDESK_PASSWORD,
    DEMO_IR_PASSWORD,
    SCHEMA_DIR,
    SlapdSettings,
    anonymous_auth_lines,
    render_bootstrap_ldif,
    render_slapd_conf,
)

# Where the directory image keeps things (containers/directory/entrypoint.sh
# uses the same paths).
WORKDIR = Path("/var/lib/ldap-portal")      # data in WORKDIR/data (the volume)
TEMPLATE_DIR = Path("/usr/share/ldap-portal")  # these templates and portal.schema

# Sentinels passed through SlapdSettings; each becomes a ${NAME} placeholder.
# The base DN's first value (dc) has its own placeholder: the generator
# writes it into the root entry.
_BASE_SENTINEL = "dc=zzsentineldc,dc=zzsentinelbase"
_DC_SENTINEL = "zzsentineldc"
_SENTINELS = {  # SlapdSettings field -> (sentinel, placeholder name)
    "organisation": ("Zzsentinel Organisation", "LDAP_ORGANISATION"),
    "mail_domain": ("zzsentinel-mail.invalid", "LDAP_MAIL_DOMAIN"),
    "main_group": ("zzsentinelgroup", "LDAP_MAIN_GROUP"),
    "service_password": ("zzsentinel-service-password", None),
    "root_password": ("zzsentinel-root-password", None),
}
# Passwords the generator writes (in clear or hashed) -> placeholder of their hash.
_PASSWORDS = {
    _SENTINELS["service_password"][0]: "LDAP_SERVICE_PASSWORD_HASH",
    _SENTINELS["root_password"][0]: "LDAP_ROOT_PASSWORD_HASH",
    DEMO_IR_PASSWORD: "LDAP_DEMO_IR_PASSWORD_HASH",
    DEMO_HELPDESK_PASSWORD: "LDAP_DEMO_HELPDESK_PASSWORD_HASH",
}
# The entrypoint puts TLS directives here (global section, before the database).
TLS_PLACEHOLDER = "${LDAP_TLS_CONFIG}"
# ... and who may bind without TLS here (LDAP_REQUIRE_TLS: the files below).
AUTH_PLACEHOLDER = "${LDAP_ANONYMOUS_AUTH}"
AUTH_FILES = {False: "bind-anywhere.acl", True: "bind-tls-or-loopback.acl"}
DEFAULTS_HEADER = "# Defaults of the directory image (from app/devstack/slapd.py).\n"
TLS_FILE_DIRECTIVES = ("TLSCACertificateFile ", "TLSCertificateFile ", "TLSCertificateKeyFile ")
PLACEHOLDERS = (
    "LDAP_BASE_DN", "LDAP_DC", "LDAP_ORGANISATION", "LDAP_MAIL_DOMAIN", "LDAP_MAIN_GROUP",
    *_PASSWORDS.values(), "LDAP_TLS_CONFIG", "LDAP_ANONYMOUS_AUTH",
)
_HASH = re.compile(r"\{ARGON2\}\$argon2[a-z]*\$[^\s]+")
_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


def container_settings(**values) -> SlapdSettings:
    """The settings the image is made with: durable writes, no replication."""
    return SlapdSettings(workdir=WORKDIR, nosync=False, **values)


def _sentinel_settings(demo: bool) -> SlapdSettings:
    return container_settings(base_dn=_BASE_SENTINEL, demo=demo,
                              **{name: value for name, (value, _) in _SENTINELS.items()})


def _placeholders(text: str) -> str:
    """Sentinels and password hashes of the generator's output -> ${NAME}."""
    def hashed(match: re.Match) -> str:
        value = match.group(0)
        for password, name in _PASSWORDS.items():
            try:
                PasswordHasher().verify(value.removeprefix("{ARGON2}"), password)
            except (VerificationError, InvalidHashError):
                continue
            return "${" + name + "}"
        raise ValueError(f"the generator wrote a password hash of an unknown password: "
                         f"{value[:30]}...")

    text = _HASH.sub(hashed, text)
    for password, name in _PASSWORDS.items():  # passwords the generator writes in clear
        text = re.sub(rf"(?<=\s){re.escape(password)}(?=\s)", "${" + name + "}", text)
    text = text.replace(_BASE_SENTINEL, "${LDAP_BASE_DN}").replace(_DC_SENTINEL, "${LDAP_DC}")
    for value, name in _SENTINELS.values():
        if name:
            text = text.replace(value, "${" + name + "}")
    leftover = [s for s in ("zzsentinel", *_PASSWORDS) if s in text]
    if leftover:
        raise ValueError(f"sentinel values left in a container template: {leftover}")
    return text


def render_templates() -> dict[str, str]:
    """File name -> text of the directory image's templates and defaults."""
    conf = _placeholders(render_slapd_conf(_sentinel_settings(demo=False)))
    conf = conf.replace(str(SCHEMA_DIR / "portal.schema"), str(TEMPLATE_DIR / "portal.schema"))
    # The generator's certificate lines point at the dev stack's CA; in the
    # image, TLS is configured only when certificate files are mounted.
    lines = conf.splitlines(keepends=True)
    certificate_lines = [i for i, line in enumerate(lines) if line.startswith(TLS_FILE_DIRECTIVES)]
    slot = certificate_lines[0] if certificate_lines else next(
        i for i, line in enumerate(lines) if line.startswith("database "))
    lines = [line for i, line in enumerate(lines) if i not in certificate_lines]
    lines.insert(slot, TLS_PLACEHOLDER + "\n")
    # The generator's rule for binds without TLS (from anywhere, the image's
    # default) becomes a placeholder the entrypoint fills from AUTH_FILES.
    anywhere = anonymous_auth_lines(False) + "\n"
    [auth_line] = [i for i, line in enumerate(lines) if line == anywhere]
    lines[auth_line] = AUTH_PLACEHOLDER + "\n"
    defaults = SlapdSettings(workdir=WORKDIR)
    env = {
        "LDAP_BASE_DN": defaults.base_dn,
        "LDAP_ORGANISATION": defaults.organisation,
        "LDAP_MAIL_DOMAIN": defaults.mail_domain,
        "LDAP_MAIN_GROUP": defaults.main_group,
        "LDAP_DEMO_IR_PASSWORD": DEMO_IR_PASSWORD,
        "LDAP_DEMO_HELPDESK_PASSWORD": DEMO_HELPDESK_PASSWORD,
    }
    return {
        "slapd.conf.in": "".join(lines),
        "bootstrap.ldif.in": _placeholders(render_bootstrap_ldif(_sentinel_settings(demo=False))),
        "bootstrap-demo.ldif.in": _placeholders(
            render_bootstrap_ldif(_sentinel_settings(demo=True))),
        "defaults.env": DEFAULTS_HEADER + "".join(
            f"[ -n \"${{{name}+set}}\" ] || {name}={shlex.quote(value)}\n"
            for name, value in env.items()),
        "portal.schema": (SCHEMA_DIR / "portal.schema").read_text(),
        **{name: anonymous_auth_lines(strict) + "\n" for strict, name in AUTH_FILES.items()},
    }


def write_templates(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for name, text in render_templates().items():
        unknown = set(_PLACEHOLDER.findall(text)) - set(PLACEHOLDERS)
        if name.endswith(".in") and unknown:
            raise ValueError(f"{name}: placeholders the entrypoint does not fill: {unknown}")
        (outdir / name).write_text(text)


def run_mailcatcher(port: int, folder: Path, host: str) -> int:
    from .mailcatcher import MailCatcher
    catcher = MailCatcher(port, folder=folder, host=host)
    catcher.start()
    print(f"mail catcher on {host}:{port}, messages in {folder}/*.eml", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    catcher.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devstack.containers")
    commands = parser.add_subparsers(dest="command", required=True)
    templates = commands.add_parser("templates", help="write the directory image's templates")
    templates.add_argument("outdir", type=Path)
    catcher = commands.add_parser("mailcatcher", help="an SMTP catcher writing .eml files")
    catcher.add_argument("--port", type=int, default=2525)
    catcher.add_argument("--host", default="0.0.0.0")
    catcher.add_argument("--folder", type=Path, default=Path("var/mail"))
    args = parser.parse_args(argv)
    if args.command == "templates":
        write_templates(args.outdir)
        print(f"directory image templates written to {args.outdir}")
        return 0
    return run_mailcatcher(args.port, args.folder, args.host)


if __name__ == "__main__":
    sys.exit(main())
