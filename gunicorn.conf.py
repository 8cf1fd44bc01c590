"""gunicorn settings for the Procfile's web process, all from the environment.

gevent workers serve many long-lived streams per process; the gevent worker
monkey-patches the process before it loads the app, and create_app() then
makes psycopg2 cooperative.
"""

import os

import config as _messenger_config

_settings_url = _messenger_config.database_url()

bind = f"0.0.0.0:{os.environ.get('PORT') or 8000}"
worker_class = "gevent"

# SQLite serialises writers, so one process is the default there; PostgreSQL
# shares work between two per host by default (API.md, WEB_CONCURRENCY).
workers = int(
    os.environ.get("WEB_CONCURRENCY")
    or (2 if _messenger_config.is_postgresql(_settings_url) else 1)
)

# Open connections (mostly idle streams) one worker serves at once.
worker_connections = int(os.environ.get("MESSENGER_WORKER_CONNECTIONS") or 1000)

# Heroku sends SIGTERM and kills 30 s later; streams must end well before.
graceful_timeout = 20

# A worker whose event loop is blocked this long is restarted.
timeout = 30

# Heroku's router keeps connections open to the dyno between requests.
keepalive = 5

# gunicorn's control socket lives at one path per user, so a second server on
# the same host (tests, several apps) would take it over; nothing here uses it.
control_socket_disable = True

# The app writes its own access line (with the token redacted), so gunicorn's
# is left off; everything goes to stderr as Heroku expects.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("MESSENGER_LOG_LEVEL", "info")

# How often a worker checks whether it was told to stop.
_STOP_CHECK_SECS = 0.2


def post_worker_init(worker):
    """End the worker's streams as soon as it is told to stop.

    On SIGTERM gunicorn's gevent worker stops accepting and then waits up to
    graceful_timeout for open requests, and a stream never finishes by
    itself. Ending the streams at once lets the worker exit within a second
    and the clients reconnect to a worker that stays.
    """
    import gevent

    from messenger import close_streams

    def close_when_stopping():
        while worker.alive:
            gevent.sleep(_STOP_CHECK_SECS)

        closed = close_streams(worker.wsgi)
        worker.log.info("worker stopping: closed %d streams", closed)

    gevent.spawn(close_when_stopping)


logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
        },
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"level": loglevel.upper(), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {
            "level": loglevel.upper(),
            "handlers": [],
            "propagate": True,
        },
    },
}
