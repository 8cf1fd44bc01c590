"""The web app as the server sends it: the shell, its headers, scripts and jQuery.

What the pages do is tested in a real browser (tests/browser); here are the
promises the server and the files make by themselves: no inline script
anywhere, a policy that forbids it, and scripts that never build HTML from
text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from messenger.web import JQUERY_PATH
from tests.conftest import PROJECT_DIR, assert_json_error

SCRIPTS_DIR = PROJECT_DIR / "messenger" / "static" / "js"

# Ways a script could turn text into markup; the pages use .text() instead.
HTML_SINKS = [
    r"\.html\(",
    r"innerHTML",
    r"outerHTML",
    r"insertAdjacentHTML",
    r"document\.write",
    r"\beval\(",
    r"new Function",
    r"\.(append|prepend|after|before|replaceWith|wrap)\(\s*[\"'`]",
    r"\$\(\s*[\"'`]<(?!\w+>[\"'`])",  # only bare tags such as $("<li>")
    r"\.attr\(\s*[\"']on",
]


class ShellParser(HTMLParser):
    """Collects the script tags and event-handler attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.script_text = ""
        self.handlers: list[str] = []
        self.body: dict[str, str | None] = {}
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        elif tag == "body":
            self.body = dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def parse(html: str) -> ShellParser:
    """The scripts, handlers and body attributes of a page."""
    parser = ShellParser()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("path", ["/", "/conversations/1"])
def test_pages_forbid_inline_script(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.partition(" ")[::2] for part in policy.split("; "))
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in policy
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_shell_has_no_inline_script_or_handler(client):
    page = parse(client.get("/").get_data(as_text=True))

    assert page.script_text.strip() == ""
    assert page.handlers == []
    sources = [script["src"] for script in page.scripts]
    assert sources[0] == JQUERY_PATH
    for source in sources:
        assert source is not None
        assert source.startswith("/static/")
        assert client.get(source).status_code == 200


def test_a_conversation_link_names_its_page(client):
    page = parse(client.get("/conversations/42").get_data(as_text=True))

    assert page.body["data-page"] == "conversation"
    assert page.body["data-conversation-id"] == "42"


def test_a_hostile_conversation_path_stays_an_attribute(client):
    hostile = '"><img src=x onerror=alert(1)><script>alert(2)<\\script>'
    response = client.get("/conversations/" + hostile)

    page = parse(response.get_data(as_text=True))
    assert page.script_text.strip() == ""
    assert page.handlers == []
    assert page.body["data-conversation-id"] == hostile


def test_home_names_its_page(client):
    page = parse(client.get("/").get_data(as_text=True))

    assert page.body["data-page"] == "home"
    assert page.body["data-dev-login"] == "0"


def test_the_development_login_is_offered_only_when_allowed(make_app):
    closed = make_app().test_client().get("/").get_data(as_text=True)
    opened = make_app(dev_login=True).test_client().get("/").get_data(as_text=True)

    assert "username only" not in closed
    assert "username only" in opened
    assert parse(opened).body["data-dev-login"] == "1"


def test_jquery_comes_from_the_package_and_may_be_cached(client):
    response = client.get(JQUERY_PATH)

    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.get_data(as_text=True).startswith("/*! jQuery v3.7.1")
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert response.cache_control.immutable


def test_own_scripts_are_revalidated(client):
    response = client.get("/static/js/main.js")

    assert response.status_code == 200
    assert response.cache_control.no_cache
    assert response.headers["ETag"]


@pytest.mark.parametrize(
    "path", ["/nope", "/static/nope.js", "/static/../config.py", "/api/nope"]
)
def test_unknown_paths_still_answer_json(client, path):
    assert_json_error(client.get(path), 404)


@pytest.mark.parametrize(
    "script", sorted(SCRIPTS_DIR.glob("*.js")), ids=lambda path: path.name
)
def test_scripts_never_build_html_from_text(script):
    source = script.read_text()

    assert source.startswith("//")
    assert '"use strict";' in source
    for sink in HTML_SINKS:
        assert not re.search(sink, source), f"{script.name} matches {sink}"
