# Gunicorn settings for the portal: `gunicorn -c config/gunicorn.conf.py wsgi:app`.
# The bind address and worker count come from the command line or
# GUNICORN_CMD_ARGS; what is here must hold everywhere.
accesslog = "-"
errorlog = "-"
# Links in mail carry a signed token in their path: never log it.
logger_class = "app.access_log.RedactingLogger"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# Referer may hold a token page's URL; the portal sends no-referrer, but
# other sites' links could: it is left out of the format above.
timeout = 60


def on_starting(server):
    """Rate limits in memory:// count in each worker alone: with N workers a
    client gets N times the limit. Production settings refuse memory://;
    here every environment is warned."""
    import os
    storage = os.environ.get("PORTAL_RATELIMIT_STORAGE_URI", "").strip() or "memory://"
    if server.cfg.workers > 1 and storage.startswith("memory://"):
        server.log.warning(
            "WARNING: PORTAL_RATELIMIT_STORAGE_URI is memory:// with %d workers: each worker "
            "counts alone, so every rate limit is %d times too high. Use a shared store "
            "(redis://127.0.0.1:6379/0).", server.cfg.workers, server.cfg.workers)
