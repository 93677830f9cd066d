"""Error pages: what a visitor sees when a request cannot be served."""
from __future__ import annotations

import logging
import uuid

from flask import Flask, render_template
from flask_babel import lazy_gettext as _l
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..services.errors import (
    DirectoryUnavailable,
    LinkExpired,
    LinkInvalid,
    LinkUsed,
    NotAuthorised,
)
from .i18n import http_error_text

log = logging.getLogger(__name__)


def register_error_pages(app: Flask) -> None:
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

    @app.errorhandler(LinkUsed)
    def link_used(error):
        return render_template("link_problem.html", problem="used"), 410

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
            # A step may have been written before the directory went away: say
            # what is true either way (repeating a step is safe).
            message=_l("The membership directory cannot be reached right now, so this step "
                       "could not be finished. Please try again in a few minutes: what was "
                       "already done is kept and not done twice."),
        ), 503

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(error):
        response = app.make_response((render_template(
            "error.html", code=429, title=_l("Too many attempts"),
            message=_l("Please wait a few minutes before you try again. If you forgot your "
                       "password, use the password reset.")), 429))
        # The whole window: by then the limit has room again, whatever the count.
        response.headers["Retry-After"] = str(error.limit.limit.get_expiry())
        return response

    @app.errorhandler(HTTPException)
    def http_error(error):
        title, message = http_error_text(error)
        return render_template("error.html", code=error.code, title=title,
                               message=message), error.code

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
