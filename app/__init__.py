"""The membership portal: application factory."""
from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Mapping

from flask import Flask, abort, current_app, render_template, request, url_for
from flask_babel import Babel, format_datetime
from flask_babel import lazy_gettext as _l
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from .directory import Directory, DirectoryError, DirectoryUnavailable
from .logs import register_request_ids
from .mail import Mailer, mail
from .services.accounts import AccountService
from .services.approval import ApprovalService
from .services.changes import MembershipChanges
from .services.lifecycle import LifecycleService
from .services.reactivation import ReactivationService
from .services.review import Reviewers
from .services.errors import LinkExpired, LinkInvalid, NotAuthorised
from .services.registration import RegistrationService
from .services.tokens import LinkTokens
from .settings import ROOT, Settings, load_settings

log = logging.getLogger(__name__)
csrf = CSRFProtect()
babel = Babel()
# Limits are set per view; storage from PORTAL_RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=get_remote_address)


@dataclass(frozen=True)
class Portal:
    """Everything the views need, built once per application."""
    settings: Settings
    directory: Directory
    mailer: Mailer
    registration: RegistrationService
    approval: ApprovalService
    reviewers: Reviewers
    accounts: AccountService
    lifecycle: LifecycleService
    reactivation: ReactivationService
    changes: MembershipChanges


def portal() -> Portal:
    return current_app.extensions["portal"]


def after_response(response, work: Callable[[], None], what: str):
    """Run ``work`` (in an app context) once the response has been sent, so
    that its duration tells the client nothing; failures are logged."""
    app = current_app._get_current_object()

    def run() -> None:
        with app.app_context():
            try:
                work()
            except DirectoryError:
                log.exception("%s failed after the response", what)
    response.call_on_close(run)
    return response


def create_app(overrides: Mapping[str, str] | None = None) -> Flask:
    """Build the app from ``PORTAL_*`` variables (``overrides`` win)."""
    settings = load_settings({**os.environ, **(overrides or {})})
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
        TESTING=settings.env == "test",
        SESSION_COOKIE_SECURE=settings.is_production,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        # An IR may read a request for a while before deciding.
        WTF_CSRF_TIME_LIMIT=8 * 3600,
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
        RATELIMIT_HEADERS_ENABLED=True,
        BABEL_DEFAULT_LOCALE="en",
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "translations"),
    )
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,
                                x_proto=settings.trusted_proxies,
                                x_host=settings.trusted_proxies)
    csrf.init_app(app)
    babel.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)

    directory = Directory(
        settings.ldap_urls, settings.ldap_base_dn, settings.ldap_bind_dn,
        settings.ldap_bind_password, connect_timeout=settings.ldap_connect_timeout,
        receive_timeout=settings.ldap_receive_timeout, main_group=settings.main_group,
        ca_file=settings.ldap_ca_file, start_tls=settings.ldap_start_tls,
    )
    mailer = Mailer(directory, settings.mail_from)
    links = LinkTokens(settings.secret_key, settings.secret_key_fallbacks,
                       settings.link_max_age_days * 86400)

    def link_url(endpoint: str, token: str | None) -> str:
        # The configured base URL, never the request's Host header.
        values = {"token": token} if token is not None else {}
        with app.test_request_context(base_url=settings.base_url):
            return url_for(endpoint, _external=True, **values)

    reviewers = Reviewers(directory, mailer, links, settings, link_url)
    registration = RegistrationService(directory, mailer, links, settings, link_url, reviewers)
    accounts = AccountService(directory, mailer, links, settings, link_url)
    approval = ApprovalService(directory, mailer, links, settings, registration, reviewers,
                               accounts.send_reset_link)
    lifecycle = LifecycleService(directory, mailer, link_url)
    reactivation = ReactivationService(directory, mailer, links, settings, registration,
                                       reviewers, link_url)
    changes = MembershipChanges(directory, settings, reviewers)
    app.extensions["portal"] = Portal(settings, directory, mailer, registration, approval,
                                      reviewers, accounts, lifecycle, reactivation, changes)

    from .account.views import bp as account_bp
    from .cli import register_cli
    from .main.views import bp as main_bp
    from .reactivation.views import bp as reactivation_bp
    from .registration.views import bp as registration_bp
    from .review.views import bp as review_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(reactivation_bp)
    app.register_blueprint(registration_bp)
    app.register_blueprint(review_bp)
    if settings.is_dev and settings.dev_mail_dir:
        from .devmail.views import bp as devmail_bp
        app.register_blueprint(devmail_bp)
    register_cli(app)
    _register_template_globals(app, settings)
    _register_error_pages(app)
    _register_security_headers(app, settings.is_production)
    _register_input_limits(app)
    register_request_ids(app)
    return app


def _register_template_globals(app: Flask, settings: Settings) -> None:
    app.jinja_env.globals.update(
        collaboration=settings.collaboration_name,
        helpdesk_email=settings.helpdesk_email,
        base_url=settings.base_url,
        dev_mode=settings.is_dev,
        password_min_length=settings.password_min_length,
    )

    @app.template_filter("when")
    def when(value):
        return format_datetime(value, "yyyy-MM-dd HH:mm 'UTC'") if value else ""


def _register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template(
            "error.html", code=400, title=_l("The form has expired"),
            message=_l("Please go back, reload the page and submit the form again."),
        ), 400

    # A signed link that cannot be used, wherever it was opened.
    @app.errorhandler(LinkExpired)
    def link_expired(error):
        return render_template("link_problem.html", problem="expired"), 410

    @app.errorhandler(LinkInvalid)
    def link_invalid(error):
        return render_template("link_problem.html", problem="invalid"), 404

    @app.errorhandler(NotAuthorised)
    def not_authorised(error):
        return render_template("link_problem.html", problem="not-authorised"), 403

    @app.errorhandler(DirectoryUnavailable)
    def directory_unavailable(error):
        log.error("directory unavailable: %s", error)
        return render_template(
            "error.html", code=503, title=_l("Temporarily unavailable"),
            message=_l("The membership directory cannot be reached right now. Nothing was "
                       "changed. Please try again in a few minutes."),
        ), 503

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(error):
        response = app.make_response((render_template(
            "error.html", code=429, title=_l("Too many attempts"),
            message=_l("Please wait a few minutes before you try again. If you forgot your "
                       "password, use the password reset.")), 429))
        return response

    @app.errorhandler(HTTPException)
    def http_error(error):
        return render_template("error.html", code=error.code, title=error.name,
                               message=error.description), error.code

    @app.errorhandler(Exception)
    def unexpected_error(error):
        incident = uuid.uuid4().hex[:12]
        log.exception("unexpected error, incident %s", incident,
                      extra={"event": "error", "incident": incident})
        return render_template(
            "error.html", code=500, title=_l("Something went wrong"),
            message=_l("The error was recorded. If it persists, write to the helpdesk and "
                       "quote incident %(incident)s.", incident=incident),
        ), 500


# No form of the portal has more than a few dozen fields.
MAX_FORM_FIELDS = 100


def _register_input_limits(app: Flask) -> None:
    # MAX_CONTENT_LENGTH caps the body; this caps url-encoded field counts,
    # which MAX_FORM_PARTS (multipart only) does not.
    @app.before_request
    def limit_form_fields():
        if request.method == "POST" and \
                sum(1 for _ in request.form.items(multi=True)) > MAX_FORM_FIELDS:
            abort(413)


def _register_security_headers(app: Flask, production: bool) -> None:
    @app.after_request
    def security_headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Production is served over https only (PORTAL_BASE_URL must be https).
        if request.scheme == "https" or production:
            response.headers.setdefault("Strict-Transport-Security",
                                        "max-age=31536000; includeSubDomains")
        return response
