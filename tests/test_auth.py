"""Accounts, sessions and username search: the auth blueprint against API.md.

Covers sign-up, login (with and without development login), the token
lifecycle (refresh, logout, expiry, forgery) and the guard that every
authenticated route shares, on both databases.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash
from werkzeug.test import TestResponse

import config
from messenger.schema import users
from messenger.tokens import TokenSigner
from tests.conftest import PASSWORD, Person

UNAUTHORIZED = {"message": "Unauthorized"}
BAD_LOGIN = {"message": "Invalid username or password"}

# API.md: RFC 3339 in UTC with a Z suffix, fractional seconds optional.
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")

# Wide enough for a slow CI machine; expiry is checked against the clock only
# to prove the configured lifetime is used, not how fast anything runs.
CLOCK_SLACK = timedelta(minutes=5)

GUARDED_ROUTES = [
    ("GET", "/api/auth_user"),
    ("POST", "/api/refresh_token"),
    ("POST", "/api/logout"),
    ("GET", "/api/usernames?search=a"),
    ("GET", "/api/conversations"),
    ("POST", "/api/conversations"),
    ("GET", "/api/conversations/1"),
    ("GET", "/api/conversations/1/other_participant"),
    ("GET", "/api/conversations/1/messages"),
    ("POST", "/api/conversations/1/messages"),
    ("POST", "/api/conversations/1/read_messages"),
]


def create_account(client: FlaskClient, username: str, password: str) -> TestResponse:
    """POST /api/users with a username and a password."""
    return client.post("/api/users", json={"username": username, "password": password})


def log_in(client: FlaskClient, **body: Any) -> TestResponse:
    """POST /api/login with the given JSON members."""
    return client.post("/api/login", json=body)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying a token."""
    return {"Authorization": f"Bearer {token}"}


def who_is(client: FlaskClient, token: str) -> TestResponse:
    """GET /api/auth_user with a token in the Authorization header."""
    return client.get("/api/auth_user", headers=bearer(token))


def parse_time(text: str) -> datetime:
    """Check a time is RFC 3339 UTC with a Z and return it as an aware datetime."""
    assert RFC3339_UTC.fullmatch(text), text
    return datetime.fromisoformat(text)


def assert_expires_in(text: str, lifetime_secs: int) -> None:
    """Check an expiresAt lies about ``lifetime_secs`` from now."""
    expected = datetime.now(UTC) + timedelta(seconds=lifetime_secs)
    assert abs(parse_time(text) - expected) < CLOCK_SLACK


def assert_login_payload(body: dict[str, Any], username: str) -> None:
    """Check the shape of a login payload for the given user."""
    assert set(body) == {"authUser", "token", "expiresAt"}
    assert set(body["authUser"]) == {"id", "username", "avatarURL"}
    assert body["authUser"]["username"] == username
    assert body["authUser"]["avatarURL"] is None
    assert isinstance(body["authUser"]["id"], str)
    assert body["authUser"]["id"].isdigit()
    assert isinstance(body["token"], str)
    assert body["token"]

    assert_expires_in(body["expiresAt"], config.DEFAULT_TOKEN_LIFETIME_SECS)


def validation_errors(response: TestResponse) -> dict[str, str]:
    """Check a response is a 422 and return its field errors."""
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert set(body) == {"message", "errors"}
    assert isinstance(body["message"], str)
    errors: dict[str, str] = body["errors"]
    return errors


def stored_password_hash(app: Flask, user_id: str) -> str:
    """The password_hash column of a user, read straight from the database."""
    db = app.extensions["messenger"].db
    with db.reading() as conn:
        value: str = conn.execute(
            sa.select(users.c.password_hash).where(users.c.id == int(user_id))
        ).scalar_one()

    return value


def signer(secret: str | None, lifetime_secs: int) -> TokenSigner:
    """A token signer like the app's, with a chosen secret and lifetime."""
    assert secret is not None
    return TokenSigner(secret, lifetime_secs)


@pytest.fixture
def dev_client(make_app: Callable[..., Flask]) -> FlaskClient:
    """A client of an app with development (password-less) login on."""
    return make_app(dev_login=True).test_client()


# Sign-up


def test_sign_up_returns_login_payload(client):
    response = create_account(client, "Alice", PASSWORD)

    assert response.status_code == 201
    body = response.get_json()
    assert_login_payload(body, "Alice")

    me = who_is(client, body["token"])
    assert me.status_code == 200
    assert me.get_json() == body["authUser"]


def test_sign_up_gives_each_user_their_own_id(client):
    first = create_account(client, "first", PASSWORD).get_json()
    second = create_account(client, "second", PASSWORD).get_json()

    assert first["authUser"]["id"] != second["authUser"]["id"]


def test_sign_up_expiry_follows_token_lifetime(make_app):
    client = make_app(token_lifetime_secs=3600).test_client()

    body = create_account(client, "alice", PASSWORD).get_json()

    assert_expires_in(body["expiresAt"], 3600)


@pytest.mark.parametrize(
    "username",
    ["a", "Z", "7", "a" * 39, "A1_-z", "9lives", "a__", "x-", "MiXeD_Case-09"],
)
def test_sign_up_accepts_valid_usernames(client, username):
    response = create_account(client, username, PASSWORD)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["authUser"]["username"] == username


@pytest.mark.parametrize(
    "username",
    [
        "a" * 40,
        "_abc",
        "-abc",
        "_",
        "-",
        "a b",
        " alice",
        "alice ",
        "al.ice",
        "al@ice",
        "al/ice",
        "élise",
        "\uff41lice",  # fullwidth a
        "al\nice",
        "alice\u200b",
    ],
)
def test_sign_up_rejects_invalid_usernames(client, username):
    response = create_account(client, username, PASSWORD)

    assert set(validation_errors(response)) == {"username"}


@pytest.mark.parametrize("body", [{"password": PASSWORD}, {"username": ""}])
def test_sign_up_requires_a_username(client, body):
    response = client.post("/api/users", json={"password": PASSWORD, **body})

    assert set(validation_errors(response)) == {"username"}


@pytest.mark.parametrize("length", [8, 9, 255, 256])
def test_sign_up_accepts_password_lengths(client, length):
    response = create_account(client, "alice", "p" * length)

    assert response.status_code == 201, response.get_json()
    assert log_in(client, username="alice", password="p" * length).status_code == 200


@pytest.mark.parametrize("password", ["", "p" * 7, "p" * 257, "p" * 1000])
def test_sign_up_rejects_password_lengths(client, password):
    response = create_account(client, "alice", password)

    assert set(validation_errors(response)) == {"password"}


def test_sign_up_requires_a_password(client):
    response = client.post("/api/users", json={"username": "alice"})

    assert set(validation_errors(response)) == {"password"}


def test_sign_up_counts_password_length_in_characters(client):
    # Eight characters that take sixteen bytes in UTF-8: long enough.
    response = create_account(client, "alice", "é" * 8)

    assert response.status_code == 201, response.get_json()
    assert log_in(client, username="alice", password="é" * 8).status_code == 200


def test_sign_up_reports_both_errors_together(client):
    response = create_account(client, "_bad", "short")

    errors = validation_errors(response)
    assert set(errors) == {"username", "password"}
    assert all(isinstance(text, str) and text for text in errors.values())


def test_sign_up_rejects_taken_username_in_any_case(client, alice):
    for taken in ("alice", "ALICE", "aLiCe"):
        response = create_account(client, taken, PASSWORD)

        assert response.status_code == 409, taken
        body = response.get_json()
        assert set(body) == {"message"}
        assert isinstance(body["message"], str)

    login = log_in(client, username="alice", password=PASSWORD)
    assert login.get_json()["authUser"]["id"] == alice.id


def test_sign_up_stores_only_a_salted_hash(app, client):
    first = create_account(client, "alice", PASSWORD).get_json()
    second = create_account(client, "bob", PASSWORD).get_json()

    alice_hash = stored_password_hash(app, first["authUser"]["id"])
    bob_hash = stored_password_hash(app, second["authUser"]["id"])
    assert PASSWORD not in alice_hash
    assert check_password_hash(alice_hash, PASSWORD)
    assert not check_password_hash(alice_hash, PASSWORD + "x")
    # Same password, different salt.
    assert alice_hash != bob_hash


@pytest.mark.parametrize("field", ["username", "password"])
def test_sign_up_rejects_nul_characters(client, field):
    body = {"username": "alice", "password": PASSWORD}
    body[field] = body[field] + "\x00"

    response = client.post("/api/users", json=body)

    assert set(validation_errors(response)) == {field}


@pytest.mark.parametrize("field", ["username", "password"])
def test_sign_up_rejects_non_string_fields(client, field):
    body: dict[str, Any] = {"username": "alice", "password": PASSWORD}
    body[field] = 12345678

    response = client.post("/api/users", json=body)

    assert response.status_code == 400
    assert set(response.get_json()) == {"message"}


@pytest.mark.parametrize("path", ["/api/users", "/api/login"])
def test_account_posts_require_json_content_type(client, path):
    response = client.post(
        path,
        data='{"username": "alice", "password": "correct horse battery"}',
        content_type="text/plain",
    )

    assert response.status_code == 415
    assert set(response.get_json()) == {"message"}


# Login


def test_login_returns_login_payload(client, alice):
    response = log_in(client, username="alice", password=PASSWORD)

    assert response.status_code == 200
    body = response.get_json()
    assert_login_payload(body, "alice")
    assert body["authUser"]["id"] == alice.id
    assert body["token"] != alice.token
    assert who_is(client, body["token"]).get_json()["id"] == alice.id


@pytest.mark.parametrize("typed", ["ALICE", "Alice", "aLICE"])
def test_login_ignores_username_case(client, sign_up, typed):
    person = sign_up("Alice")

    response = log_in(client, username=typed, password=PASSWORD)

    assert response.status_code == 200
    assert response.get_json()["authUser"] == {
        "id": person.id,
        "username": "Alice",
        "avatarURL": None,
    }


def test_login_password_is_case_sensitive(client, alice):
    response = log_in(client, username="alice", password=PASSWORD.upper())

    assert response.status_code == 401
    assert response.get_json() == BAD_LOGIN


def test_wrong_password_and_unknown_user_answer_the_same(client, alice):
    wrong_password = log_in(client, username="alice", password="wrong password")
    unknown_user = log_in(client, username="nobody", password=PASSWORD)
    empty_password = log_in(client, username="alice", password="")

    for response in (wrong_password, unknown_user, empty_password):
        assert response.status_code == 401
        assert response.get_json() == BAD_LOGIN

    assert wrong_password.data == unknown_user.data


@pytest.mark.parametrize("body", [{}, {"username": ""}, {"username": None}])
def test_login_requires_a_username(client, body):
    response = client.post("/api/login", json={"password": PASSWORD, **body})

    assert "username" in validation_errors(response)


@pytest.mark.parametrize("body", [{}, {"password": None}])
def test_login_without_password_needs_dev_login(client, alice, body):
    response = client.post("/api/login", json={"username": "alice", **body})

    assert set(validation_errors(response)) == {"password"}


# Development login


def test_dev_login_needs_only_a_username(dev_client, alice):
    response = log_in(dev_client, username="ALICE")

    assert response.status_code == 200
    body = response.get_json()
    assert_login_payload(body, "alice")
    assert body["authUser"]["id"] == alice.id
    assert who_is(dev_client, body["token"]).status_code == 200


def test_dev_login_of_unknown_user_is_not_found(dev_client, alice):
    response = log_in(dev_client, username="nobody")

    assert response.status_code == 404
    assert response.get_json() == {"message": "User not found"}


def test_dev_login_still_checks_a_given_password(dev_client, alice):
    response = log_in(dev_client, username="alice", password="wrong password")

    assert response.status_code == 401
    assert response.get_json() == BAD_LOGIN


def test_dev_login_still_requires_a_username(dev_client):
    response = log_in(dev_client, username="")

    assert "username" in validation_errors(response)


# auth_user and refresh_token


def test_auth_user_returns_the_caller(client, alice, bob):
    response = who_is(client, bob.token)

    assert response.status_code == 200
    assert response.get_json() == {"id": bob.id, "username": "bob", "avatarURL": None}


def test_refresh_gives_a_new_token_and_keeps_the_old(client, alice):
    response = client.post("/api/refresh_token", headers=alice.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token", "expiresAt"}
    assert_expires_in(body["expiresAt"], config.DEFAULT_TOKEN_LIFETIME_SECS)
    assert body["token"] != alice.token

    for token in (alice.token, body["token"]):
        me = who_is(client, token)
        assert me.status_code == 200
        assert me.get_json()["id"] == alice.id


def test_refreshed_token_survives_logout_of_the_old(client, alice):
    fresh = client.post("/api/refresh_token", headers=alice.headers).get_json()

    assert client.post("/api/logout", headers=alice.headers).status_code == 204

    assert who_is(client, alice.token).status_code == 401
    assert who_is(client, fresh["token"]).status_code == 200


# Logout


def test_logout_revokes_the_token_used(client, alice):
    response = client.post("/api/logout", headers=alice.headers)

    assert response.status_code == 204
    assert response.data == b""

    by_header = who_is(client, alice.token)
    assert by_header.status_code == 401
    assert by_header.get_json() == UNAUTHORIZED

    by_query = client.get("/api/auth_user", query_string={"token": alice.token})
    assert by_query.status_code == 401
    assert by_query.get_json() == UNAUTHORIZED


def test_revoked_token_cannot_refresh_or_log_out_again(client, alice):
    client.post("/api/logout", headers=alice.headers)

    for path in ("/api/refresh_token", "/api/logout"):
        response = client.post(path, headers=alice.headers)

        assert response.status_code == 401, path
        assert response.get_json() == UNAUTHORIZED


def test_logout_leaves_other_tokens_of_the_user_working(client, alice, bob):
    second = log_in(client, username="alice", password=PASSWORD).get_json()["token"]

    client.post("/api/logout", headers=alice.headers)

    assert who_is(client, alice.token).status_code == 401
    assert who_is(client, second).status_code == 200
    assert who_is(client, bob.token).status_code == 200


def test_logout_is_seen_by_every_app_on_the_database(make_app, client, alice):
    other_worker = make_app().test_client()
    assert who_is(other_worker, alice.token).status_code == 200

    client.post("/api/logout", headers=alice.headers)

    assert who_is(other_worker, alice.token).status_code == 401


# Token validity


def test_token_signed_with_the_app_secret_is_accepted(client, settings, alice):
    # The control for the forgery tests below: a token built the same way as
    # theirs, but valid, gets in.
    token, _ = signer(settings.secret_key, 3600).issue(int(alice.id))

    assert who_is(client, token).get_json()["id"] == alice.id


def test_expired_token_is_refused(client, settings, alice):
    token, claims = signer(settings.secret_key, -10).issue(int(alice.id))
    assert claims.expires_at < datetime.now(UTC)

    for response in (
        who_is(client, token),
        client.get("/api/auth_user", query_string={"token": token}),
        client.post("/api/refresh_token", headers=bearer(token)),
    ):
        assert response.status_code == 401
        assert response.get_json() == UNAUTHORIZED


def test_token_signed_with_another_secret_is_refused(client, alice):
    token, _ = signer("another-secret-key", 3600).issue(int(alice.id))

    response = who_is(client, token)

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_token_for_a_nonexistent_user_is_refused(client, settings, alice):
    token, _ = signer(settings.secret_key, 3600).issue(int(alice.id) + 1000)

    response = who_is(client, token)

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_token_of_a_deleted_user_is_refused(app, client, alice):
    db = app.extensions["messenger"].db
    with db.writing() as conn:
        conn.execute(sa.delete(users).where(users.c.id == int(alice.id)))

    response = who_is(client, alice.token)

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: "garbage",
        lambda token: "a.b",
        lambda token: ".",
        lambda token: token[:-1],
        lambda token: token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        lambda token: token + "x",
        lambda token: "x" + token,
        lambda token: token.swapcase(),
        lambda token: token + "A" * 600,
        lambda token: "A" * 100_000,
        lambda token: token.replace(".", "", 1),
    ],
)
def test_malformed_tokens_are_refused(client, alice, mangle):
    response = who_is(client, mangle(alice.token))

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


# The guard


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_guard_reads_bearer_scheme_in_any_case(client, alice, scheme):
    response = client.get(
        "/api/auth_user", headers={"Authorization": f"{scheme} {alice.token}"}
    )

    assert response.status_code == 200
    assert response.get_json()["id"] == alice.id


def test_guard_reads_token_query_parameter(client, alice):
    response = client.get("/api/auth_user", query_string={"token": alice.token})

    assert response.status_code == 200
    assert response.get_json()["id"] == alice.id


@pytest.mark.parametrize(
    "authorization",
    ["Basic {token}", "Token {token}", "{token}", "Bearer", "Bearer ", ""],
)
def test_guard_refuses_other_authorization_forms(client, alice, authorization):
    header = authorization.format(token=alice.token)

    response = client.get("/api/auth_user", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_guard_refuses_empty_token_query_parameter(client, alice):
    response = client.get("/api/auth_user?token=")

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


@pytest.mark.parametrize(("method", "path"), GUARDED_ROUTES)
def test_guarded_routes_refuse_missing_token(client, method, path):
    response = client.open(path, method=method, json={})

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


@pytest.mark.parametrize(("method", "path"), GUARDED_ROUTES)
def test_guarded_routes_refuse_forged_token(client, alice, method, path):
    forged, _ = signer("another-secret-key", 3600).issue(int(alice.id))

    response = client.open(path, method=method, json={}, headers=bearer(forged))

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_guard_runs_before_body_parsing(client):
    response = client.post(
        "/api/conversations", data="not json", content_type="text/plain"
    )

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


# Username search


def search(client: FlaskClient, person: Person, prefix: str | None) -> TestResponse:
    """GET /api/usernames as a person, with ``search`` unless it is None."""
    query = {} if prefix is None else {"search": prefix}
    return client.get("/api/usernames", query_string=query, headers=person.headers)


def found(client: FlaskClient, person: Person, prefix: str) -> list[str]:
    """The usernames a person's search for a prefix answers."""
    response = search(client, person, prefix)
    assert response.status_code == 200, response.get_json()
    names: list[str] = response.get_json()
    return names


def test_search_matches_prefix_ignoring_case(client, sign_up, alice):
    sign_up("Alicia")
    sign_up("ALINA")
    sign_up("bob")
    sign_up("malice")

    assert found(client, alice, "ALI") == ["Alicia", "ALINA"]
    assert found(client, alice, "alic") == ["Alicia"]
    assert found(client, alice, "lice") == []


def test_search_excludes_the_caller(client, sign_up, alice):
    alex = sign_up("alex")

    assert found(client, alice, "al") == ["alex"]
    assert found(client, alex, "al") == ["alice"]
    assert found(client, alice, "alice") == []


def test_search_sorts_ignoring_case(client, sign_up, alice):
    for name in ("qc", "QB", "qa", "Qd"):
        sign_up(name)

    assert found(client, alice, "q") == ["qa", "QB", "qc", "Qd"]


def test_search_returns_at_most_five(client, sign_up, alice):
    for name in ("zed7", "zed3", "zed1", "zed6", "zed2", "zed5", "zed4"):
        sign_up(name)

    assert found(client, alice, "zed") == ["zed1", "zed2", "zed3", "zed4", "zed5"]


def test_search_treats_wildcards_literally(client, sign_up, alice):
    sign_up("a_b")
    sign_up("axb")
    sign_up("a-c")
    sign_up("abc")

    assert found(client, alice, "a_") == ["a_b"]
    assert found(client, alice, "a-") == ["a-c"]
    for prefix in ("%", "_", "a%", "%b", "\\", "a\\", "\\%", "a[", "*"):
        assert found(client, alice, prefix) == [], prefix


def test_search_by_full_name_finds_it(client, sign_up, alice):
    sign_up("a" * 39)

    assert found(client, alice, "A" * 39) == ["a" * 39]
    assert found(client, alice, "a" * 40) == []


@pytest.mark.parametrize("prefix", [None, "", " ", "   ", "\t"])
def test_search_requires_a_prefix(client, alice, prefix):
    response = search(client, alice, prefix)

    assert set(validation_errors(response)) == {"search"}
