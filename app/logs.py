"""Logging of the processes that serve the portal: one JSON object per line
with the request id, client address (after ProxyFix: trusted proxies only),
actor and outcome where the code gives them. Set up from wsgi.py, not from
the factory: tests and CLI keep their own logging."""
from __future__ import annotations

import json
import logging
import re
import sys
import uuid

from flask import Flask, g, has_request_context, request

# itsdangerous tokens (links in mail): base64url payload, timestamp, signature.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    """The text with link tokens replaced: paths are logged, tokens never."""
    return TOKEN_RE.sub("[token]", text)


# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items()
                      if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


class RequestContextFilter(logging.Filter):
    """Adds the request id, client address and path to records made while a
    request is served."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id", "")
            record.client = request.remote_addr or ""
            record.path = redact(request.path)
            if g.get("account"):
                record.session_account = g.account
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def register_request_ids(app: Flask) -> None:
    """Every request gets an id (echoed as X-Request-ID) for its log lines."""
    @app.before_request
    def assign_request_id() -> None:
        g.request_id = uuid.uuid4().hex[:16]

    @app.after_request
    def echo_request_id(response):
        if g.get("request_id"):
            response.headers["X-Request-ID"] = g.request_id
        return response
