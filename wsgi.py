"""WSGI entry point: ``gunicorn -c config/gunicorn.conf.py wsgi:app`` and
``flask --app wsgi ...``."""
import os

from app import create_app
from app.logs import configure_logging

configure_logging(os.environ.get("PORTAL_LOG_LEVEL", "INFO"))
app = create_app()
