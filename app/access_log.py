"""Gunicorn access log without secrets: signed links carry their token in
the URL path, so tokens are replaced before a line is written."""
from __future__ import annotations

import re

from gunicorn.glogging import Logger

# itsdangerous tokens: base64url payload, dot, timestamp, dot, signature.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}")
_URL_ATOMS = ("r", "U", "q", "{raw_uri}e", "f")


def redact(text: str) -> str:
    return TOKEN_RE.sub("[token]", text)


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in _URL_ATOMS:
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
