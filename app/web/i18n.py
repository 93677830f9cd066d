"""Languages: which one a page is shown in, the switcher, and a member's
own choice (``preferredLanguage``, used for the mails they get).

A member's choice is saved from "My account" (app/account/views.py).
A page is shown in the language of the ``lang`` cookie (set by the
switcher on every page), else the best match of the browser's
Accept-Language among ``PORTAL_LANGUAGES``, else the first of those.
Mails are rendered in their recipient's language (see app/mail.py).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import urlsplit

from babel import Locale
from babel.dates import format_skeleton
from flask import (
    Blueprint,
    Flask,
    current_app,
    has_request_context,
    redirect,
    request,
    url_for,
)
from flask_babel import get_babel, get_locale
from flask_babel import lazy_gettext as _l

from ..settings import ROOT

log = logging.getLogger(__name__)

TRANSLATIONS = ROOT / "translations"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

bp = Blueprint("i18n", __name__)


def languages() -> tuple[str, ...]:
    """The supported languages, the fallback first."""
    return current_app.extensions["languages"]


def supported(code: str | None) -> str | None:
    """``code`` when it is a supported language, else None."""
    return code if code and code in languages() else None


def select_locale() -> str:
    if has_request_context():
        chosen = supported(request.cookies.get(COOKIE))
        if chosen:
            return chosen
        best = request.accept_languages.best_match(languages())
        if best:
            return best
    return languages()[0]


def current_language() -> str:
    """The language being rendered, as a BCP 47 tag for ``lang`` attributes."""
    return str(get_locale() or languages()[0]).replace("_", "-")


def language_choices() -> list[tuple[str, str]]:
    """(code, the language's own name) for each supported language."""
    return [(code, autonym(code)) for code in languages()]


def autonym(code: str) -> str:
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def format_when(value: datetime | None) -> str:
    """A point in time, in UTC, the way the current language writes it."""
    if not value:
        return ""
    locale = get_locale() or Locale.parse(languages()[0])
    date = format_skeleton("yMMMd", value, tzinfo=timezone.utc, locale=locale)
    time = format_skeleton("Hm", value, tzinfo=timezone.utc, locale=locale)
    pattern = str(locale.datetime_formats.get("medium", "{1} {0}"))
    return pattern.replace("{1}", date).replace("{0}", time) + " UTC"


# Werkzeug's names and descriptions of HTTP errors are English only.
_HTTP_ERRORS = {
    400: (_l("Bad request"), _l("The browser sent something the portal cannot understand.")),
    403: (_l("Forbidden"), _l("You may not open this page.")),
    404: (_l("Page not found"), _l("There is no page at this address. Check the link, or "
                                   "start from the home page.")),
    405: (_l("Not allowed"), _l("This page cannot be used this way.")),
    413: (_l("Too much data"), _l("The form sent more data than the portal accepts.")),
}


def http_error_text(error) -> tuple:
    """Title and message of an HTTP error page, in the page's language."""
    return _HTTP_ERRORS.get(error.code, (_l("Error %(code)s", code=error.code),
                                         _l("The request could not be completed.")))


def safe_next(target: str | None) -> str:
    """Where to go after switching: a path on this site, nothing else."""
    target = (target or "").strip()
    parts = urlsplit(target)
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or parts.scheme or parts.netloc or any(ord(c) < 32 for c in target)):
        return url_for("main.index")
    return target.rstrip("?") or url_for("main.index")


def remember_language(response, code: str):
    response.set_cookie(COOKIE, code, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


@bp.route("/language/<code>", methods=["GET", "POST"])
def switch(code: str):
    """Show the portal in ``code`` from now on; back to ``next``. Only a
    cookie changes, so a plain link does."""
    response = redirect(safe_next(request.values.get("next")))
    chosen = supported(code)
    return remember_language(response, chosen) if chosen else response


def register_languages(app: Flask, codes: tuple[str, ...]) -> None:
    """Catalogs, the locale selector, the switcher and the template helpers."""
    app.extensions["languages"] = tuple(codes)
    state = get_babel(app)
    state.translation_directories = [str(TRANSLATIONS)]
    state.locale_selector = select_locale
    # Message ids are extracted trimmed (babel.cfg); render them the same way.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.globals.update(current_language=current_language,
                                 language_choices=language_choices)
    app.register_blueprint(bp)
    for code in codes[1:]:
        if not (TRANSLATIONS / code / "LC_MESSAGES" / "messages.mo").exists():
            log.warning("language %s has no compiled catalog: run 'make messages-compile'",
                        code)
