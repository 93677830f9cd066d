"""Headers on every response and limits on every request's input."""
from __future__ import annotations

from flask import Flask, abort, request

# No form of the portal has more than a few dozen fields.
MAX_FORM_FIELDS = 100
# Endpoints whose form has a field per listed item (the IR's roster
# confirmation: one per member), with their own limit.
FORM_FIELD_LIMITS: dict[str, int] = {}


def register_input_limits(app: Flask) -> None:
    # MAX_CONTENT_LENGTH caps the body; this caps url-encoded field counts,
    # which MAX_FORM_PARTS (multipart only) does not.
    @app.before_request
    def limit_form_fields():
        if request.method == "POST" and \
                sum(1 for _ in request.form.items(multi=True)) > \
                FORM_FIELD_LIMITS.get(request.endpoint or "", MAX_FORM_FIELDS):
            abort(413)


def register_security_headers(app: Flask, production: bool) -> None:
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
