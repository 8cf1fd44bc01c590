"""The web app: one HTML shell for every page, its scripts, styles and jQuery.

The pages are drawn in the browser from the API; the server only sends the
shell, telling it which page the URL names. Every page answer carries a
Content-Security-Policy that allows scripts from this origin only, so a
message that slipped into the page as HTML could still run nothing.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, send_from_directory
from xstatic.pkg import jquery

from messenger.runtime import get_runtime

bp = Blueprint(
    "web",
    __name__,
    static_folder="static",
    static_url_path="/static",
    template_folder="templates",
)

# The version is in jQuery's URL, so browsers may keep it for a year.
JQUERY_PATH = f"/static/vendor/jquery-{jquery.VERSION}.min.js"
JQUERY_MAX_AGE_SECS = 365 * 24 * 3600

# Avatars may live on any https host; everything else comes from this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


@bp.get("/")
def home() -> Response:
    """The home page, or the access page for someone not logged in."""
    return _shell("home")


@bp.get("/conversations/<conversation_id>")
def conversation(conversation_id: str) -> Response:
    """One conversation; the page itself asks the API whether it exists."""
    return _shell("conversation", conversation_id)


@bp.get(JQUERY_PATH)
def jquery_script() -> Response:
    """jQuery, served from the XStatic-jQuery package."""
    response = send_from_directory(
        jquery.BASE_DIR, "jquery.min.js", max_age=JQUERY_MAX_AGE_SECS
    )
    response.cache_control.immutable = True
    return response


@bp.after_request
def add_page_headers(response: Response) -> Response:
    """Forbid inline script, framing and referrers on every page and file."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _shell(page: str, conversation_id: str = "") -> Response:
    html = render_template(
        "app.html",
        page=page,
        conversation_id=conversation_id,
        dev_login=get_runtime().settings.dev_login,
        jquery_path=JQUERY_PATH,
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response
