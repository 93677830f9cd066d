"""The Flask extensions, created once here and bound to the app by
``init_extensions``: blueprints import them from this module."""
from __future__ import annotations

from flask import Flask
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

# Flask-Mail with a connect timeout; it lives with the Mailer that uses it.
from .mail import mail

csrf = CSRFProtect()
babel = Babel()
# Limits are set per view; storage from PORTAL_RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=get_remote_address)

__all__ = ["babel", "csrf", "init_extensions", "limiter", "mail"]


def init_extensions(app: Flask) -> None:
    csrf.init_app(app)
    babel.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)
