"""The LDAP controls and features the portal uses, and the one place that
reads a post-read control's answer (ldap3 builds the controls; the
connection sends them; bench/raw.py reads the counter's answer here too)."""
from __future__ import annotations

from typing import Mapping

from ldap3.utils.ciDict import CaseInsensitiveDict

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
POST_READ_OID = "1.3.6.1.1.13.2"  # RFC 4527: the entry as a write left it
MODIFY_INCREMENT_OID = "1.3.6.1.1.14"  # RFC 4525, a supportedFeatures value
# manageDSAit (RFC 3296): entries as stored, without slapo-dynlist's
# computed values (the dynamic main group's member list is not expanded).
MANAGE_DSA_IT = ("2.16.840.1.113730.3.4.2", False, None)


def post_read_entry(dn: str, result: dict, raw: tuple[str, ...] = ()) -> dict | None:
    """A post-read control's entry in the form of a search result, or None
    (the caller then reads the entry): when the server sent none, or when a
    value of a ``raw`` attribute is not ASCII. ldap3 hands the control's
    values over decoded, as UTF-8 or else as Latin-1, so only ASCII text
    gives back its exact bytes (every hash the portal stores is ASCII)."""
    control = ((result or {}).get("controls") or {}).get(POST_READ_OID) or {}
    values = (control.get("value") or {}).get("result")
    if not isinstance(values, Mapping):
        return None
    exact = {name.lower() for name in raw}
    attributes, raw_values = CaseInsensitiveDict(), CaseInsensitiveDict()
    for name, found in values.items():
        texts = [v if isinstance(v, str) else bytes(v).decode("latin-1") for v in found or []]
        if name.lower() in exact and not all(t.isascii() for t in texts):
            return None
        attributes[name] = texts
        raw_values[name] = [t.encode("utf-8") for t in texts]
    return {"dn": dn, "type": "searchResEntry", "attributes": attributes,
            "raw_attributes": raw_values}
