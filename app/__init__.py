"""The membership portal: application factory."""
from __future__ import annotations

import os
from datetime import timedelta
from typing import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .account.views import bp as account_bp
from .certificates.views import bp as certificates_bp
from .cli import register_cli
from .devmail.views import bp as devmail_bp
from .extensions import init_extensions
from .helpdesk.views import bp as helpdesk_bp
from .helpdesk.views import initial_bp as initial_password_bp
from .invitations.views import bp as invitations_bp
from .invitations.views import invited_bp
from .ir.views import bp as ir_bp
from .logs import register_request_ids
from .main.views import bp as main_bp
from .portal import init_portal
from .reactivation.views import bp as reactivation_bp
from .registration.views import bp as registration_bp
from .review.views import bp as review_bp
from .settings import ROOT, Settings, load_settings
from .web.certificates import TrustedProxies
from .web.errors import register_error_pages
from .web.i18n import register_languages
from .web.security import register_input_limits, register_security_headers
from .web.sessions import register_sessions
from .web.templating import register_template_helpers


def create_app(overrides: Mapping[str, str] | None = None) -> Flask:
    """Build the app from ``PORTAL_*`` variables (``overrides`` win)."""
    settings = load_settings({**os.environ, **(overrides or {})})
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    app.config.update(_flask_config(settings))
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,
                                x_proto=settings.trusted_proxies,
                                x_host=settings.trusted_proxies)
    # Outermost: only trusted proxies' forwarded and certificate headers get through.
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxy_networks)
    init_extensions(app)
    init_portal(app, settings)

    app.register_blueprint(main_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(reactivation_bp)
    app.register_blueprint(registration_bp)
    app.register_blueprint(review_bp)
    app.register_blueprint(ir_bp)
    app.register_blueprint(certificates_bp)
    app.register_blueprint(helpdesk_bp)
    app.register_blueprint(initial_password_bp)
    app.register_blueprint(invitations_bp)
    app.register_blueprint(invited_bp)
    if settings.is_dev and settings.dev_mail_dir:
        app.register_blueprint(devmail_bp)
    register_cli(app)
    register_sessions(app)
    register_template_helpers(app, settings)
    register_languages(app, settings.languages)
    register_error_pages(app)
    register_security_headers(app, settings.is_production)
    register_input_limits(app)
    register_request_ids(app)
    return app


def _flask_config(settings: Settings) -> dict:
    return dict(
        SECRET_KEY=settings.secret_key,
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
        TESTING=settings.env == "test",
        SESSION_COOKIE_SECURE=settings.is_production,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        # An IR may read a request for a while before deciding.
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        # Behind TLS Flask-WTF would also demand a same-origin Referer, which
        # browsers never send: every page says Referrer-Policy: no-referrer.
        # The token (bound to the session) and SameSite=Lax cookies remain.
        WTF_CSRF_SSL_STRICT=False,
        MAX_CONTENT_LENGTH=256 * 1024,
        MAX_FORM_PARTS=200,
        MAIL_SERVER=settings.smtp_host,
        MAIL_PORT=settings.smtp_port,
        MAIL_USE_TLS=settings.smtp_use_tls,
        MAIL_USE_SSL=settings.smtp_use_ssl,
        MAIL_USERNAME=settings.smtp_username or None,
        MAIL_PASSWORD=settings.smtp_password or None,
        MAIL_DEFAULT_SENDER=settings.mail_from,
        MAIL_TIMEOUT=settings.smtp_timeout,
        # Flask-Mail would silently drop mail under TESTING; tests use a real SMTP server.
        MAIL_SUPPRESS_SEND=False,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_KEY_PREFIX=settings.ratelimit_key_prefix,
        # No X-RateLimit-* headers: one more store round trip on every limited
        # request, read by no browser; a 429 says Retry-After (web/errors.py).
        RATELIMIT_HEADERS_ENABLED=False,
        BABEL_DEFAULT_LOCALE="en",
    )
