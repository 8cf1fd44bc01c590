"""The WSGI entry point: ``gunicorn wsgi:app`` (see the Procfile)."""

from messenger import create_app

app = create_app()
