"""The project's schema checked and converted with OpenLDAP's own tools:
``slaptest`` over both forms, and the cn=config LDIF made from portal.schema
(``python -m app.devstack schema-ldif``)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .slapd import SLAPADD, SLAPTEST, SYSTEM_SCHEMAS, _run


def slaptest_schema(schema_file: Path, workdir: Path) -> subprocess.CompletedProcess:
    """Validate one form of the project's schema (``.schema`` or cn=config ``.ldif``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if schema_file.suffix == ".schema":
        conf = workdir / "slapd.conf"
        conf.write_text(
            "".join(f"include /etc/ldap/schema/{n}.schema\n" for n in SYSTEM_SCHEMAS)
            + f"include {schema_file}\n"
        )
        return subprocess.run([SLAPTEST, "-u", "-f", str(conf)], capture_output=True, text=True)
    confdir = workdir / "slapd.d"
    confdir.mkdir(exist_ok=True)
    ldif = workdir / "config.ldif"
    parts = [
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\n",
        "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n",
    ]
    parts += [
        Path(f"/etc/ldap/schema/{n}.ldif").read_text() for n in SYSTEM_SCHEMAS
    ]
    parts.append(schema_file.read_text())
    ldif.write_text("\n".join(p.strip() + "\n" for p in parts))
    load = subprocess.run(
        [SLAPADD, "-n0", "-F", str(confdir), "-l", str(ldif)], capture_output=True, text=True
    )
    if load.returncode != 0:
        return load
    return subprocess.run([SLAPTEST, "-u", "-F", str(confdir)], capture_output=True, text=True)


LDIF_HEADER = """# Membership portal schema in cn=config form: the same as portal.schema
# (see that file for the OID arc). Load with
#   ldapadd -Y EXTERNAL -H ldapi:/// -f portal.ldif
# Generated from portal.schema: python -m app.devstack schema-ldif
"""
_OPERATIONAL = re.compile(r"^(structuralObjectClass|entryUUID|creatorsName|createTimestamp|"
                          r"entryCSN|modifiersName|modifyTimestamp):")


def schema_as_ldif(schema_file: Path, workdir: Path) -> str:
    """portal.schema converted by slaptest into its cn=config LDIF form."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "convert.conf"
    conf.write_text("".join(f"include /etc/ldap/schema/{n}.schema\n" for n in SYSTEM_SCHEMAS)
                    + f"include {schema_file}\n")
    confdir = workdir / "slapd.d"
    confdir.mkdir(exist_ok=True)
    _run([SLAPTEST, "-f", str(conf), "-F", str(confdir)])
    [converted] = (confdir / "cn=config" / "cn=schema").glob("cn={*}" + schema_file.stem + ".ldif")
    lines = []
    for line in converted.read_text().splitlines():
        if line.startswith("#") or _OPERATIONAL.match(line):
            continue
        line = re.sub(r"^dn: cn=\{\d+\}(\w+)$", r"dn: cn=\1,cn=schema,cn=config", line)
        line = re.sub(r"^cn: \{\d+\}(\w+)$", r"cn: \1", line)
        lines.append(line)
    return LDIF_HEADER + "\n".join(lines).strip() + "\n"
