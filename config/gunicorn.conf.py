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
