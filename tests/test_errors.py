"""The error family: every failure leaves as JSON, and none leaks internals.

Covers unknown paths (404), wrong methods (405 with Allow), oversized and
undeclared bodies (413, 415), an unexpected crash (500, logged with its
traceback but answered generically) and a database that cannot be reached
(503).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import PASSWORD, Person, assert_json_error

# Nothing listens on port 1, so connecting fails at once with "refused".
UNREACHABLE_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:1/messenger"

# Text that would only be in a body if internals leaked into it.

BODY_LIMIT_BYTES = 64 * 1024


def allowed_methods(response: TestResponse) -> set[str]:
    """The methods named by a response's Allow header."""
    header = response.headers.get("Allow", "")
    return {method.strip() for method in header.split(",") if method.strip()}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/nope"),
        ("POST", "/api/nope"),
        ("GET", "/api/"),
        ("GET", "/api"),
        ("GET", "/api/users/1"),
        ("GET", "/api/conversations/1/nope"),
        ("DELETE", "/api/conversations/1/messages/1"),
        ("GET", "/api/conversations/1/messages/1"),
        ("GET", "/api/%00"),
        ("GET", "/api/" + "a" * 5000),
    ],
)
def test_an_unknown_api_path_is_404_json(client, method, path):
    response = client.open(path, method=method)

    body = assert_json_error(response, 404)
    assert body == {"message": "Not found"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/users", {"POST"}),
        ("PUT", "/api/users", {"POST"}),
        ("GET", "/api/login", {"POST"}),
        ("DELETE", "/api/login", {"POST"}),
        ("POST", "/api/auth_user", {"GET"}),
        ("GET", "/api/refresh_token", {"POST"}),
        ("GET", "/api/logout", {"POST"}),
        ("POST", "/api/usernames", {"GET"}),
        ("DELETE", "/api/conversations", {"GET", "POST"}),
        ("PUT", "/api/conversations", {"GET", "POST"}),
        ("PATCH", "/api/conversations/1", {"GET"}),
        ("DELETE", "/api/conversations/1", {"GET"}),
        ("POST", "/api/conversations/1/other_participant", {"GET"}),
        ("PUT", "/api/conversations/1/messages", {"GET", "POST"}),
        ("DELETE", "/api/conversations/abc/messages", {"GET", "POST"}),
        ("GET", "/api/conversations/1/read_messages", {"POST"}),
        ("POST", "/healthz", {"GET"}),
    ],
)
def test_a_wrong_method_is_405_json_with_allow(client, method, path, allowed):
    response = client.open(path, method=method)

    body = assert_json_error(response, 405)
    assert body == {"message": "Method not allowed"}

    named = allowed_methods(response)
    assert named - {"HEAD", "OPTIONS"} == allowed
    if "GET" in allowed:
        assert "HEAD" in named


def test_the_wrong_method_wins_over_a_missing_token(client):
    response = client.put("/api/conversations")

    assert_json_error(response, 405)


def padded_sign_up(username: str, size: int) -> bytes:
    """A sign-up body padded with an ignored member to exactly ``size`` bytes."""
    body = {"username": username, "password": PASSWORD, "padding": ""}
    shortfall = size - len(json.dumps(body).encode())
    body["padding"] = "p" * shortfall
    data = json.dumps(body).encode()
    assert len(data) == size
    return data


def test_a_body_at_the_limit_is_read(client):
    data = padded_sign_up("roomy", BODY_LIMIT_BYTES)

    response = client.post("/api/users", data=data, content_type="application/json")

    assert response.status_code == 201


def test_a_body_over_the_limit_is_413_json(client):
    data = padded_sign_up("bloated", BODY_LIMIT_BYTES + 1)

    response = client.post("/api/users", data=data, content_type="application/json")

    body = assert_json_error(response, 413)
    assert body == {"message": "Request body too large. 64 KiB max"}

    login = client.post("/api/login", json={"username": "bloated", "password": "x"})
    assert login.status_code == 401


def test_an_oversized_body_is_413_even_where_no_body_is_read(client, alice):
    response = client.post(
        "/api/logout", data=b"x" * (BODY_LIMIT_BYTES + 1), headers=alice.headers
    )

    assert_json_error(response, 413)
    assert client.get("/api/auth_user", headers=alice.headers).status_code == 200


def test_an_undeclared_body_is_415_json(client):
    response = client.post(
        "/api/users",
        data=json.dumps({"username": "plain", "password": PASSWORD}),
        content_type="text/plain",
    )

    body = assert_json_error(response, 415)
    assert "application/json" in body["message"]


ErrorCase = Callable[[FlaskClient, Person, dict[str, Any]], TestResponse]

ERROR_CASES: dict[str, tuple[int, ErrorCase]] = {
    "malformed json": (
        400,
        lambda client, alice, _: client.post(
            "/api/conversations",
            data=b"{",
            content_type="application/json",
            headers=alice.headers,
        ),
    ),
    "wrong type": (
        400,
        lambda client, alice, conversation: client.post(
            f"/api/conversations/{conversation['id']}/messages",
            json={"content": 5},
            headers=alice.headers,
        ),
    ),
    "no token": (401, lambda client, _, __: client.get("/api/conversations")),
    "wrong password": (
        401,
        lambda client, _, __: client.post(
            "/api/login", json={"username": "alice", "password": "wrong password"}
        ),
    ),
    "yourself": (
        403,
        lambda client, alice, _: client.post(
            "/api/conversations", json={"username": "alice"}, headers=alice.headers
        ),
    ),
    "no such conversation": (
        404,
        lambda client, alice, _: client.get(
            "/api/conversations/999999", headers=alice.headers
        ),
    ),
    "no such user": (
        404,
        lambda client, alice, _: client.post(
            "/api/conversations", json={"username": "nobody"}, headers=alice.headers
        ),
    ),
    "wrong method": (405, lambda client, _, __: client.delete("/api/users")),
    "taken name": (
        409,
        lambda client, _, __: client.post(
            "/api/users", json={"username": "ALICE", "password": PASSWORD}
        ),
    ),
    "too large": (
        413,
        lambda client, _, __: client.post(
            "/api/users",
            data=b"{" + b" " * BODY_LIMIT_BYTES + b"}",
            content_type="application/json",
        ),
    ),
    "not json": (
        415,
        lambda client, _, __: client.post("/api/login", data="username=alice"),
    ),
    "invalid field": (
        422,
        lambda client, alice, conversation: client.post(
            f"/api/conversations/{conversation['id']}/messages",
            json={"content": " \n\t "},
            headers=alice.headers,
        ),
    ),
    "bad limit": (
        422,
        lambda client, alice, _: client.get(
            "/api/conversations?limit=0", headers=alice.headers
        ),
    ),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_every_error_is_json_with_a_message(client, alice, conversation, case):
    status, make_request = ERROR_CASES[case]

    response = make_request(client, alice, conversation)

    body = assert_json_error(response, status)
    assert set(body) <= {"message", "errors"}
    if status == 422:
        assert body["errors"]
        assert all(isinstance(text, str) for text in body["errors"].values())


def test_an_unhandled_exception_is_logged_and_answered_generically(make_app, caplog):
    app = make_app()

    def explode() -> None:
        raise RuntimeError("secret detail")

    app.add_url_rule("/api/explode", "explode", explode, methods=["GET", "POST"])
    caplog.set_level(logging.ERROR, logger="messenger.errors")

    response = app.test_client().get("/api/explode")

    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert response.get_json() == {"message": "Internal server error"}
    assert "secret detail" not in response.get_data(as_text=True)
    assert "RuntimeError" not in response.get_data(as_text=True)

    logged = [
        record
        for record in caplog.records
        if record.name == "messenger.errors" and record.exc_info
    ]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[0] is RuntimeError
    assert "/api/explode" in logged[0].getMessage()
    assert "Traceback" in caplog.text
    assert "secret detail" in caplog.text


def test_a_crash_after_reading_the_body_is_still_500_json(make_app, caplog):
    app = make_app()

    def explode_with_body() -> None:
        raise KeyError("secret key name")

    app.add_url_rule("/api/explode", "explode", explode_with_body, methods=["POST"])
    caplog.set_level(logging.ERROR, logger="messenger.errors")

    response = app.test_client().post("/api/explode", json={"a": 1})

    assert response.status_code == 500
    assert response.get_json() == {"message": "Internal server error"}
    assert "secret key name" not in response.get_data(as_text=True)
    assert "secret key name" in caplog.text


@pytest.fixture
def unreachable_app(make_app: Callable[..., Flask]) -> Flask:
    """An app whose database does not answer."""
    return make_app(database_url=UNREACHABLE_DATABASE_URL)


def test_healthz_is_503_json_when_the_database_is_down(unreachable_app):
    response = unreachable_app.test_client().get("/healthz")

    body = assert_json_error(response, 503)
    assert body["status"] == "unavailable"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/auth_user", None),
        ("GET", "/api/conversations", None),
        ("POST", "/api/conversations", {"username": "bob"}),
        ("POST", "/api/conversations/1/messages", {"content": "hello"}),
    ],
)
def test_a_guarded_route_is_503_json_when_the_database_is_down(
    unreachable_app, alice, caplog, method, path, body
):
    # Alice's token is signed with the same secret, so it passes the signature
    # check and the guard then needs the database to look her up.
    caplog.set_level(logging.ERROR, logger="messenger.errors")

    response = unreachable_app.test_client().open(
        path, method=method, json=body, headers=alice.headers
    )

    assert_json_error(response, 503)
    assert response.headers["Retry-After"].isdigit()
    assert "127.0.0.1" not in response.get_data(as_text=True)
    assert "database unavailable" in caplog.text


def test_login_is_503_json_when_the_database_is_down(unreachable_app):
    response = unreachable_app.test_client().post(
        "/api/login", json={"username": "alice", "password": PASSWORD}
    )

    assert_json_error(response, 503)


def test_a_bad_token_is_still_401_when_the_database_is_down(unreachable_app):
    response = unreachable_app.test_client().get(
        "/api/auth_user", headers={"Authorization": "Bearer forged"}
    )

    assert assert_json_error(response, 401) == {"message": "Unauthorized"}
