"""Gunicorn access log without secrets: signed links carry their token in
the URL path, so tokens are replaced before a line is written."""
from __future__ import annotations

from gunicorn.glogging import Logger

from .logs import redact

_URL_ATOMS = ("r", "U", "q", "{raw_uri}e", "f")


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in _URL_ATOMS:
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
