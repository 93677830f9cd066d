"""The directory schema in both forms: slaptest accepts them, they agree."""
from __future__ import annotations

import re

import pytest

from app.devstack.schema_tools import schema_as_ldif, slaptest_schema
from app.devstack.slapd import SCHEMA_DIR

SCHEMA = SCHEMA_DIR / "portal.schema"
LDIF = SCHEMA_DIR / "portal.ldif"
OID_RE = re.compile(r"\(\s*(1\.3\.6\.1\.4\.1\.32473\.1\.(\d+)\.(\d+))\s+NAME\s+'([^']+)'")


def unfold_ldif(text: str) -> str:
    """RFC 2849: a line starting with one space continues the previous one."""
    return re.sub(r"\r?\n ", "", text)


def schema_definitions(text: str) -> list[str]:
    """Each attributetype/objectclass definition of a .schema file, whitespace collapsed."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    parts = re.split(r"^(?:attributetype|objectclass)\s+", text, flags=re.M | re.I)[1:]
    return [" ".join(p.split()) for p in parts]


def ldif_definitions(text: str) -> list[str]:
    values = re.findall(r"^olc(?:AttributeTypes|ObjectClasses):\s*(?:\{\d+\})?(.*)$",
                        unfold_ldif(text), flags=re.M)
    return [" ".join(v.split()) for v in values]


def oids(definitions: list[str]) -> dict[str, str]:
    found = {}
    for definition in definitions:
        match = OID_RE.match(definition)
        assert match, definition
        assert match.group(1) not in found, f"duplicate OID {match.group(1)}"
        found[match.group(1)] = match.group(4)
    return found


def test_schema_file_passes_slaptest(tmp_path):
    result = slaptest_schema(SCHEMA, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ldif_file_passes_slaptest(tmp_path):
    result = slaptest_schema(LDIF, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_forms_define_the_same_oids_and_names():
    in_schema = oids(schema_definitions(SCHEMA.read_text()))
    in_ldif = oids(ldif_definitions(LDIF.read_text()))
    assert len(in_schema) >= 30
    assert in_schema == in_ldif
    # The documented arcs: .1.N attribute types, .2.N object classes.
    arcs = {oid.split(".")[-2] for oid in in_schema}
    assert arcs == {"1", "2"}
    assert in_schema["1.3.6.1.4.1.32473.1.2.2"] == "portalRequest"


def test_every_oid_mentioned_in_either_file_is_defined_in_both():
    pattern = re.compile(r"1\.3\.6\.1\.4\.1\.32473\.1\.\d+\.\d+")
    in_schema = set(pattern.findall(SCHEMA.read_text()))
    in_ldif = set(pattern.findall(unfold_ldif(LDIF.read_text())))
    assert in_schema == in_ldif


def test_both_forms_have_identical_definitions():
    schema = schema_definitions(SCHEMA.read_text())
    ldif = ldif_definitions(LDIF.read_text())
    assert schema == ldif


def test_ldif_ordinals_are_consecutive():
    text = unfold_ldif(LDIF.read_text())
    for attribute in ("olcAttributeTypes", "olcObjectClasses"):
        ordinals = [int(n) for n in re.findall(rf"^{attribute}:\s*\{{(\d+)\}}", text, re.M)]
        assert ordinals == list(range(len(ordinals))), attribute


# name: (original text, replacement, what slaptest/slapadd complains about)
BREAKAGES = {
    "undefined attribute in an object class":
        ("$ portalAuditEvent $", "$ portalNoSuchAttribute $", "portalNoSuchAttribute"),
    "duplicate OID":
        ("1.3.6.1.4.1.32473.1.1.2 NAME", "1.3.6.1.4.1.32473.1.1.1 NAME",
         "1.3.6.1.4.1.32473.1.1.1"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_schema_file_fails_slaptest(tmp_path, breakage):
    assert_breakage_fails(SCHEMA.read_text(), tmp_path / "broken.schema", breakage)


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_ldif_file_fails_slaptest(tmp_path, breakage):
    assert_breakage_fails(unfold_ldif(LDIF.read_text()), tmp_path / "broken.ldif", breakage)


def assert_breakage_fails(text: str, broken, breakage: str) -> None:
    """slaptest refuses ``text`` with ``breakage`` applied, saying why."""
    old, new, complaint = BREAKAGES[breakage]
    assert old in text
    broken.write_text(text.replace(old, new, 1))
    result = slaptest_schema(broken, broken.parent / "work")
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def test_the_ldif_is_the_schema_converted(tmp_path):
    """portal.ldif is what slaptest makes of portal.schema (regenerate with
    `python -m app.devstack schema-ldif`)."""
    assert LDIF.read_text() == schema_as_ldif(SCHEMA, tmp_path)
