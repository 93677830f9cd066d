"""Work done once the response has been sent."""
from __future__ import annotations

import logging
from typing import Callable

from flask import current_app

from ..services.errors import DirectoryError

log = logging.getLogger(__name__)


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
