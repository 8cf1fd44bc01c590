"""Operations: the health check, request ids, the access log and what it hides.

The access log must let an operator follow a request (method, path, status,
request id) without ever holding a secret: tokens in the query are redacted,
and message text, passwords and Authorization headers never reach any log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import PASSWORD, Person, send

GENERATED_ID = re.compile(r"[0-9a-f]{16,128}")


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The access log lines captured so far, formatted."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "messenger.access"
    ]


def line_for(caplog: pytest.LogCaptureFixture, request_id: str) -> str:
    """The one access line of the request with that id."""
    lines = [line for line in access_lines(caplog) if request_id in line]
    assert len(lines) == 1, lines
    return lines[0]


# Health -------------------------------------------------------------------------


def test_healthz_answers_without_auth(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_healthz_ignores_a_bad_token(client):
    response = client.get("/healthz", headers={"Authorization": "Bearer forged"})

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


# Request ids --------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_id",
    ["abc-123", "req.42:A_b", "0" * 32, "a" * 128, "x"],
)
def test_a_sane_request_id_is_echoed(client, request_id):
    for path in ("/healthz", "/api/nope", "/api/auth_user"):
        response = client.get(path, headers={"X-Request-ID": request_id})

        assert response.headers["X-Request-ID"] == request_id


def test_a_request_id_is_generated_when_absent(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]

    assert GENERATED_ID.fullmatch(first)
    assert GENERATED_ID.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "hostile",
    [
        "x" * 300,
        "a" * 129,
        "abc def",
        "abc\ndef",
        "abc\r\nSet-Cookie: stolen=1",
        "abc\x00def",
        "<script>alert(1)</script>",
        "a;b",
        '"quoted"',
        "\u0438\u0434".encode().decode("latin-1"),  # UTF-8 bytes, as WSGI hands them
    ],
    ids=lambda value: repr(value)[:30],
)
def test_a_hostile_request_id_is_replaced(client, caplog, hostile):
    caplog.set_level(logging.INFO, logger="messenger.access")

    response = client.get("/healthz", environ_base={"HTTP_X_REQUEST_ID": hostile})

    given_back = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(given_back)
    assert line_for(caplog, given_back)
    assert hostile not in caplog.text


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_blank_request_id_is_replaced(client, blank):
    response = client.get("/healthz", environ_base={"HTTP_X_REQUEST_ID": blank})

    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


# The access log -----------------------------------------------------------------


def test_every_request_gets_one_access_line(client, alice, conversation, caplog):
    caplog.set_level(logging.INFO, logger="messenger.access")
    path = f"/api/conversations/{conversation['id']}"
    calls = [
        ("GET", "/api/conversations?limit=5", 200, "/api/conversations?limit=5"),
        ("POST", f"{path}/messages", 201, f"{path}/messages"),
        ("POST", f"{path}/read_messages", 204, f"{path}/read_messages"),
        ("GET", "/api/conversations/999999", 404, "/api/conversations/999999"),
        ("GET", "/api/nope", 404, "/api/nope"),
        ("DELETE", "/api/users", 405, "/api/users"),
        ("GET", "/healthz", 200, "/healthz"),
    ]

    for number, (method, url, status, logged_path) in enumerate(calls):
        request_id = f"trace-{number}"
        response = client.open(
            url,
            method=method,
            json={"content": "hi"} if method == "POST" else None,
            headers={**alice.headers, "X-Request-ID": request_id},
        )
        assert response.status_code == status

        line = line_for(caplog, request_id)
        assert f'"{method} {logged_path}"' in line
        assert f" {status} " in line

    assert len(access_lines(caplog)) == len(calls)


def test_an_unauthorized_request_is_logged_too(client, caplog):
    caplog.set_level(logging.INFO, logger="messenger.access")

    client.get("/api/auth_user", headers={"X-Request-ID": "no-token"})

    assert '"GET /api/auth_user" 401' in line_for(caplog, "no-token")


@pytest.mark.parametrize(
    "path",
    [
        '/api/nope%0A0123 "GET /api/admin" 200 0.1ms',
        "/api/nope%0D%0Aforged",
        "/api/nope%00forged",
        '/api/nope"forged',
    ],
)
def test_a_hostile_path_cannot_forge_an_access_line(client, caplog, path):
    caplog.set_level(logging.INFO, logger="messenger.access")

    client.get(path, headers={"X-Request-ID": "forgery"})

    line = line_for(caplog, "forgery")
    assert "\n" not in line
    assert "\r" not in line
    assert "\x00" not in line
    assert line.count('"') == 2


# Secrets stay out of the logs -------------------------------------------------


def test_a_query_token_is_redacted(client, alice, caplog):
    caplog.set_level(logging.DEBUG)

    response = client.get(
        "/api/auth_user",
        query_string={"token": alice.token},
        headers={"X-Request-ID": "query-token"},
    )

    assert response.status_code == 200
    assert alice.token not in caplog.text
    assert "token=[redacted]" in line_for(caplog, "query-token")


@pytest.mark.parametrize(
    "query",
    [
        "%74oken={token}",
        "%74%6F%6B%65%6E={token}",
        "limit=5&token={token}&search=x",
        "token={token}&token={token}",
        "token={token}&token=",
    ],
)
def test_every_spelling_of_the_token_parameter_is_redacted(
    client, alice, caplog, query
):
    caplog.set_level(logging.DEBUG)

    response = client.get(
        "/api/auth_user",
        query_string=query.format(token=alice.token),
        headers={"X-Request-ID": "spelled-token"},
    )

    assert response.status_code == 200
    assert alice.token not in caplog.text
    assert "[redacted]" in line_for(caplog, "spelled-token")


def test_a_rejected_query_token_is_redacted(client, alice, caplog):
    assert client.post("/api/logout", headers=alice.headers).status_code == 204
    caplog.set_level(logging.DEBUG)

    response = client.get("/api/auth_user", query_string={"token": alice.token})

    assert response.status_code == 401
    assert alice.token not in caplog.text
    assert "[redacted]" in caplog.text


def test_the_other_query_parameters_stay_readable(client, alice, caplog):
    caplog.set_level(logging.INFO, logger="messenger.access")

    client.get(
        "/api/usernames?search=bo&token=" + alice.token,
        headers={"X-Request-ID": "readable"},
    )

    line = line_for(caplog, "readable")
    assert "search=bo" in line
    assert "token=[redacted]" in line


def everything_a_user_does(
    client: FlaskClient, sign_up: Callable[[str], Person], marker: str
) -> list[TestResponse]:
    """Sign up, talk, read, fail in every way, with ``marker`` in the text sent."""
    alice = sign_up("alice")
    sign_up("bob")
    started = client.post(
        "/api/conversations", json={"username": "bob"}, headers=alice.headers
    )
    conversation_id = started.get_json()["id"]
    path = f"/api/conversations/{conversation_id}"
    return [
        started,
        send(client, alice, conversation_id, f"hello {marker}"),
        send(client, alice, conversation_id, f"again {marker}", clientId=marker),
        send(client, alice, conversation_id, f"again {marker}", clientId=marker),
        send(client, alice, conversation_id, marker * 100),
        send(client, alice, conversation_id, f"{marker}\x00"),
        send(client, alice, "999999", f"nowhere {marker}"),
        client.get(f"{path}/messages", headers=alice.headers),
        client.get(path, headers=alice.headers),
        client.get("/api/conversations", headers=alice.headers),
        client.post(f"{path}/read_messages", headers=alice.headers),
    ]


def test_message_text_is_never_logged(client, sign_up, caplog):
    caplog.set_level(logging.DEBUG)
    marker = "Zq7mMarkerOfMessageText"

    responses = everything_a_user_does(client, sign_up, marker)

    statuses = [response.status_code for response in responses]
    assert statuses == [201, 201, 201, 200, 422, 422, 404, 200, 200, 200, 204]
    assert len(access_lines(caplog)) >= len(responses)
    assert marker not in caplog.text


def test_sql_logging_hides_message_text(client, sign_up, caplog):
    # An operator who turns on SQLAlchemy's statement log still sees no
    # message text: the engines are built with hide_parameters.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    marker = "Yp3kMarkerInSqlParameters"

    everything_a_user_does(client, sign_up, marker)

    assert "INSERT INTO messages" in caplog.text
    assert marker not in caplog.text


def test_passwords_are_never_logged(client, caplog):
    caplog.set_level(logging.DEBUG)
    password = "Xw9vMarkerOfPassword"
    wrong = "Xw9vMarkerOfWrongGuess"

    calls: list[tuple[str, dict[str, Any], int]] = [
        ("/api/users", {"username": "carol", "password": password}, 201),
        ("/api/users", {"username": "carol", "password": password}, 409),
        ("/api/users", {"username": "bad name", "password": password}, 422),
        ("/api/users", {"username": "dave", "password": password * 20}, 422),
        ("/api/users", {"username": "erin", "password": f"{password}\x00"}, 422),
        ("/api/login", {"username": "carol", "password": password}, 200),
        ("/api/login", {"username": "carol", "password": wrong}, 401),
        ("/api/login", {"username": "nobody", "password": wrong}, 401),
    ]
    for path, body, status in calls:
        assert client.post(path, json=body).status_code == status

    assert access_lines(caplog)
    assert password not in caplog.text
    assert wrong not in caplog.text


def test_authorization_headers_are_never_logged(client, alice, caplog):
    caplog.set_level(logging.DEBUG)
    forged = "Vt5nMarkerOfForgedToken"

    login = client.post("/api/login", json={"username": "alice", "password": PASSWORD})
    fresh = login.get_json()["token"]
    refreshed = client.post("/api/refresh_token", headers=alice.headers)
    newer = refreshed.get_json()["token"]
    client.get("/api/auth_user", headers={"Authorization": f"Bearer {fresh}"})
    client.get("/api/auth_user", headers={"Authorization": f"Bearer {forged}"})
    client.get("/api/auth_user", headers={"Authorization": f"Basic {forged}"})
    client.post("/api/logout", headers={"Authorization": f"Bearer {newer}"})
    client.get("/api/auth_user", headers={"Authorization": f"Bearer {newer}"})

    assert len(access_lines(caplog)) == 7
    for secret in (alice.token, fresh, newer, forged):
        assert secret not in caplog.text


# Response headers ---------------------------------------------------------------


def api_responses(
    client: FlaskClient, alice: Person, conversation: dict[str, Any]
) -> dict[str, TestResponse]:
    """One API response of each kind: successes and every error status."""
    path = f"/api/conversations/{conversation['id']}"
    return {
        "200": client.get("/api/auth_user", headers=alice.headers),
        "201": send(client, alice, conversation["id"], "hi"),
        "204": client.post(f"{path}/read_messages", headers=alice.headers),
        "400": client.post(
            f"{path}/messages",
            data=b"{",
            content_type="application/json",
            headers=alice.headers,
        ),
        "401": client.get("/api/auth_user"),
        "404": client.get("/api/conversations/999999", headers=alice.headers),
        "404 path": client.get("/api/nope"),
        "405": client.delete("/api/users"),
        "413": client.post(
            "/api/users",
            data=b"x" * (65 * 1024),
            content_type="application/json",
        ),
        "415": client.post("/api/users", data="x", content_type="text/plain"),
        "422": client.get("/api/conversations?limit=0", headers=alice.headers),
    }


def test_api_responses_are_not_cached_or_sniffed(client, alice, conversation):
    for kind, response in api_responses(client, alice, conversation).items():
        assert response.status_code == int(kind.split()[0])
        assert "no-store" in response.headers.get("Cache-Control", ""), kind
        assert response.headers.get("X-Content-Type-Options") == "nosniff", kind


def test_healthz_is_not_sniffed(client):
    response = client.get("/healthz")

    assert response.headers["X-Content-Type-Options"] == "nosniff"
