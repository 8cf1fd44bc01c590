"""Hostile input: malformed, oversized, wrong-typed and malicious requests.

Every endpoint that reads a body, a path id, a cursor or a query parameter
is fed input meant to break it. Each must answer with a 4xx JSON error (or
store the text verbatim where text is allowed), never a 500, and another
user's ids must read exactly like ids that do not exist. The last test
throws the whole corpus at a populated database and checks that nothing
stored was lost or changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from messenger.schema import metadata
from tests.conftest import PASSWORD, Person, assert_json_error, send

# A body this size is over the 64 KiB limit of API.md.
OVERSIZED_CHARS = 70 * 1024

MAX_CONTENT_CHARS = 480

SQL_FRAGMENTS = [
    "'; DROP TABLE users; --",
    '" OR 1=1 --',
    "1; DELETE FROM messages WHERE 1=1",
    "Robert'); DROP TABLE conversations;--",
]

MARKUP = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
]

# Text that template engines, log parsers or terminals treat specially.
ODD_TEXT = [
    "%_\\ 100% _literal_ C:\\path",
    "{{7*7}} ${jndi:ldap://example.invalid/a}",
    "\u202eright-to-left override",
    "e\u0301 combining accent, \u200b zero width",
]

HOSTILE_TEXT = SQL_FRAGMENTS + MARKUP + ODD_TEXT

# Ids and cursors that are not positive decimal integers of at most 18
# digits, so each must read as "no such id".
HOSTILE_IDS = [
    "abc",
    "-1",
    "1.5",
    "0",
    "1e3",
    "1" * 30,
    "9" * 19,
    "9223372036854775808",
    "\x00",
    "%00",
    "\u0661\u0662",  # Arabic-Indic digits, which str.isdigit() accepts
    "\uff11",  # a fullwidth digit one
    "\u00b2",  # superscript two
    "1_0",
    "0x1",
    "' OR 1=1 --",
]

# Spellings of a real id that a lax parser (int(), float()) would accept.
REAL_ID_DISGUISES = [
    "0{}",
    "00{}",
    "+{}",
    "-{}",
    " {}",
    "{} ",
    "{}.0",
    "{}e0",
    "{}\x00",
    "{}abc",
]

HOSTILE_LIMITS = [
    "0",
    "101",
    "-1",
    "abc",
    "1.5",
    "1e2",
    "",
    "\x00",
    "\u0661\u0662",
    "\uff15",
    "9" * 30,
    " 5",
    "5 ",
    "+5",
    "0x10",
    "1_0",
]

NOT_FOUND = {"message": "Conversation not found"}
MESSAGE_NOT_FOUND = {"message": "Message not found"}


def path_segment(text: str) -> str:
    """Percent-encode text so that it arrives as exactly one path segment."""
    return quote(text, safe="")


@dataclass(frozen=True)
class BodyEndpoint:
    """A POST route that reads a JSON body, and a body it accepts."""

    name: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    fields: tuple[str, ...]
    success: int

    def post(
        self,
        client: FlaskClient,
        data: bytes | str,
        content_type: str | None = "application/json",
    ) -> TestResponse:
        """POST raw data to the route as its caller."""
        return client.post(
            self.path, data=data, content_type=content_type, headers=self.headers
        )

    def post_json(self, client: FlaskClient, **changes: Any) -> TestResponse:
        """POST the accepted body with some members changed."""
        return self.post(client, json.dumps({**self.body, **changes}))

    def with_member(self, raw_value: bytes) -> bytes:
        """The accepted body as bytes, plus a member holding raw JSON text."""
        valid = json.dumps(self.body).encode()
        return valid[:-1] + b', "extra": ' + raw_value + b"}"


BODY_ENDPOINTS = ["sign_up", "login", "start_conversation", "send_message"]


def body_endpoint(
    name: str, alice: Person, conversation: dict[str, Any]
) -> BodyEndpoint:
    """Describe one of the body-taking routes, called as Alice where it needs a user."""
    if name == "sign_up":
        return BodyEndpoint(
            name,
            "/api/users",
            {},
            {"username": "newcomer", "password": PASSWORD},
            ("username", "password"),
            201,
        )

    if name == "login":
        return BodyEndpoint(
            name,
            "/api/login",
            {},
            {"username": "alice", "password": PASSWORD},
            ("username", "password"),
            200,
        )

    if name == "start_conversation":
        # Bob's conversation already exists, so success is a 200.
        return BodyEndpoint(
            name,
            "/api/conversations",
            alice.headers,
            {"username": "bob"},
            ("username",),
            200,
        )

    return BodyEndpoint(
        name,
        f"/api/conversations/{conversation['id']}/messages",
        alice.headers,
        {"content": "hello", "clientId": "client-1"},
        ("content", "clientId"),
        201,
    )


@pytest.fixture(params=BODY_ENDPOINTS)
def endpoint(
    request: pytest.FixtureRequest, alice: Person, conversation: dict[str, Any]
) -> BodyEndpoint:
    """Each body-taking route in turn."""
    return body_endpoint(request.param, alice, conversation)


# Content types --------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/jsonp",
        "application/json-patch+json",
    ],
)
def test_a_body_that_is_not_declared_json_is_415(client, endpoint, content_type):
    if content_type == "application/x-www-form-urlencoded":
        data = urlencode(endpoint.body)
    else:
        data = json.dumps(endpoint.body)

    response = endpoint.post(client, data, content_type)

    body = assert_json_error(response, 415)
    assert "application/json" in body["message"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/json;charset=UTF-8"],
)
def test_json_with_a_charset_parameter_is_accepted(client, endpoint, content_type):
    response = endpoint.post(client, json.dumps(endpoint.body), content_type)

    assert response.status_code == endpoint.success, response.get_json()


# Malformed bodies -------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b" ",
        b"{",
        b"}",
        b"[]",
        b'"str"',
        b"null",
        b"123",
        b"true",
        b'{"a": 1} trailing',
        b"{'single': 'quotes'}",
        b'{"a": 1,}',
        b"\xff\xfe\x00{",
        "{}".encode("utf-16"),
    ],
    ids=repr,
)
def test_a_body_that_is_not_a_json_object_is_400(client, endpoint, data):
    assert_json_error(endpoint.post(client, data), 400)


@pytest.mark.parametrize(
    "raw_value",
    [
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b'"\xff\xfe"',
        b'"\xed\xa0\x80"',  # a surrogate encoded as UTF-8, which is invalid
        b'"a\x00b"',  # an unescaped control character
        b"[" * 39 + b"]" * 39,  # 40 levels, counting the body itself
        b'{"a":' * 39 + b"1" + b"}" * 39,
        b"[" * 500 + b"]" * 500,
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=lambda raw: repr(raw[:12]),
)
def test_a_body_with_an_invalid_value_is_400(client, endpoint, raw_value):
    assert_json_error(endpoint.post(client, endpoint.with_member(raw_value)), 400)


def test_nesting_up_to_32_levels_is_accepted(client, endpoint):
    thirty_two_levels = b"[" * 31 + b"]" * 31
    thirty_three_levels = b"[" * 32 + b"]" * 32

    response = endpoint.post(client, endpoint.with_member(thirty_two_levels))
    assert response.status_code == endpoint.success, response.get_json()

    response = endpoint.post(client, endpoint.with_member(thirty_three_levels))
    assert_json_error(response, 400)


@pytest.mark.parametrize(
    "value", [5, 1.5, -1, ["x"], [], {"a": "b"}, {}, True, False], ids=repr
)
def test_a_string_field_of_another_type_is_400(client, endpoint, value):
    for field in endpoint.fields:
        response = endpoint.post_json(client, **{field: value})

        body = assert_json_error(response, 400)
        assert field in body["message"]


def test_an_oversized_body_is_413(client, endpoint):
    for field in (*endpoint.fields, "padding"):
        response = endpoint.post_json(client, **{field: "x" * OVERSIZED_CHARS})

        assert_json_error(response, 413)


@pytest.mark.parametrize(
    "value",
    ["a\x00b", "\x00", "\ud800", "a\udfffb", "x\ud83dy"],
    ids=repr,
)
def test_nul_or_a_lone_surrogate_in_a_string_field_is_422(client, endpoint, value):
    for field in endpoint.fields:
        # json.dumps writes both as \u escapes, which JSON allows.
        response = endpoint.post_json(client, **{field: value})

        body = assert_json_error(response, 422)
        assert set(body["errors"]) == {field}


def test_unauthenticated_hostile_bodies_are_401(client, conversation):
    paths = [
        "/api/conversations",
        f"/api/conversations/{conversation['id']}/messages",
    ]
    for path in paths:
        for data, content_type in [
            (b"{", "application/json"),
            (b"username=bob", "text/plain"),
            (b"username=bob", None),
        ]:
            response = client.post(path, data=data, content_type=content_type)

            assert response.status_code == 401
            assert response.get_json() == {"message": "Unauthorized"}

        # An announced oversized body is refused before anything else runs.
        oversized = client.post(
            path, data=b"x" * OVERSIZED_CHARS, content_type="application/json"
        )
        assert_json_error(oversized, 413)


# Malicious text ---------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_message_text_is_stored_and_returned_verbatim(
    client, alice, bob, conversation, text
):
    response = send(client, alice, conversation["id"], text, clientId=text)

    assert response.status_code == 201
    sent = response.get_json()
    assert sent["content"] == text

    for person in (alice, bob):
        listing = client.get(
            f"/api/conversations/{conversation['id']}/messages",
            headers=person.headers,
        ).get_json()
        assert [message["content"] for message in listing] == [text]

        shown = client.get(
            f"/api/conversations/{conversation['id']}", headers=person.headers
        ).get_json()
        assert shown["lastMessage"]["content"] == text

    retry = send(client, alice, conversation["id"], "other", clientId=text)
    assert retry.status_code == 200
    assert retry.get_json() == sent


def test_an_escaped_surrogate_pair_is_one_character(client, alice, conversation):
    raw = b'{"content": "smile \\ud83d\\ude00"}'
    response = client.post(
        f"/api/conversations/{conversation['id']}/messages",
        data=raw,
        content_type="application/json",
        headers=alice.headers,
    )

    assert response.status_code == 201
    assert response.get_json()["content"] == "smile \U0001f600"


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_usernames_are_refused_by_the_username_rules(client, text):
    response = client.post("/api/users", json={"username": text, "password": PASSWORD})

    body = assert_json_error(response, 422)
    assert set(body["errors"]) == {"username"}


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_usernames_match_nobody(client, alice, text):
    login = client.post("/api/login", json={"username": text, "password": PASSWORD})
    assert assert_json_error(login, 401)["message"] == "Invalid username or password"

    start = client.post(
        "/api/conversations", json={"username": text}, headers=alice.headers
    )
    assert assert_json_error(start, 404)["message"] == "User not found"

    search = client.get(
        "/api/usernames", query_string={"search": text}, headers=alice.headers
    )
    assert search.status_code == 200
    assert search.get_json() == []


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_passwords_work_verbatim(client, text):
    password = f"{text}-long-enough"
    response = client.post(
        "/api/users", json={"username": "careful", "password": password}
    )
    assert response.status_code == 201

    right = client.post(
        "/api/login", json={"username": "careful", "password": password}
    )
    assert right.status_code == 200

    wrong = client.post(
        "/api/login", json={"username": "careful", "password": password[1:]}
    )
    assert wrong.status_code == 401


# Multi-byte text --------------------------------------------------------------


@pytest.mark.parametrize(
    "unit",
    [
        "\u00e9",
        "\u65e5",
        "\U0001f600",
        "\U0001f469\u200d\U0001f469\u200d\U0001f467",  # five code points
    ],
    ids=["two-bytes", "three-bytes", "four-bytes", "zwj-sequence"],
)
def test_480_multi_byte_characters_are_accepted(client, alice, conversation, unit):
    content = unit * (MAX_CONTENT_CHARS // len(unit))
    assert len(content) == MAX_CONTENT_CHARS

    response = send(client, alice, conversation["id"], content)
    assert response.status_code == 201
    assert response.get_json()["content"] == content

    listing = client.get(
        f"/api/conversations/{conversation['id']}/messages", headers=alice.headers
    ).get_json()
    assert listing[0]["content"] == content

    too_long = send(client, alice, conversation["id"], content + "\u00e9")
    body = assert_json_error(too_long, 422)
    assert body["errors"] == {"content": "Message too long. 480 max"}


def test_multi_byte_passwords_count_characters(client):
    password = "\u5bc6" * 256
    response = client.post(
        "/api/users", json={"username": "wide", "password": password}
    )
    assert response.status_code == 201

    login = client.post("/api/login", json={"username": "wide", "password": password})
    assert login.status_code == 200

    too_long = client.post(
        "/api/users", json={"username": "wider", "password": password + "x"}
    )
    assert set(assert_json_error(too_long, 422)["errors"]) == {"password"}


# Hostile ids ------------------------------------------------------------------

PATH_ROUTES = [
    ("GET", "/api/conversations/{}"),
    ("GET", "/api/conversations/{}/other_participant"),
    ("GET", "/api/conversations/{}/messages"),
    ("POST", "/api/conversations/{}/messages"),
    ("POST", "/api/conversations/{}/read_messages"),
]


def call_route(
    client: FlaskClient, person: Person, method: str, route: str, raw_id: str
) -> TestResponse:
    """Call a route with an id in its path, sending a valid body where it takes one."""
    path = route.format(path_segment(raw_id))
    body = {"content": "probe"} if path.endswith("/messages") else None
    return client.open(path, method=method, json=body, headers=person.headers)


@pytest.mark.parametrize(("method", "route"), PATH_ROUTES)
def test_hostile_path_ids_read_as_missing(client, alice, conversation, method, route):
    missing = call_route(client, alice, method, route, "999999999999999999")
    assert missing.status_code == 404
    assert missing.get_json() == NOT_FOUND

    disguised = [form.format(conversation["id"]) for form in REAL_ID_DISGUISES]
    for raw_id in HOSTILE_IDS + disguised:
        response = call_route(client, alice, method, route, raw_id)

        assert response.status_code == 404, raw_id
        assert response.get_json() == NOT_FOUND, raw_id


@pytest.mark.parametrize(("method", "route"), PATH_ROUTES)
def test_another_users_conversation_reads_as_missing(
    client, alice, mallory, conversation, method, route
):
    send(client, alice, conversation["id"], "private")

    response = call_route(client, mallory, method, route, conversation["id"])

    assert response.status_code == 404
    assert response.get_json() == NOT_FOUND


def test_a_stranger_changes_nothing_in_a_conversation(
    client, alice, bob, mallory, conversation
):
    send(client, alice, conversation["id"], "private")
    path = f"/api/conversations/{conversation['id']}"
    before = {
        person.username: client.get(path, headers=person.headers).get_json()
        for person in (alice, bob)
    }

    send(client, mallory, conversation["id"], "intrusion")
    client.post(f"{path}/read_messages", headers=mallory.headers)

    after = {
        person.username: client.get(path, headers=person.headers).get_json()
        for person in (alice, bob)
    }
    assert after == before
    assert after["bob"]["unreadCount"] == 1
    assert after["alice"]["otherReadAt"] is None

    listing = client.get(f"{path}/messages", headers=alice.headers).get_json()
    assert [message["content"] for message in listing] == ["private"]

    theirs = client.get("/api/conversations", headers=mallory.headers)
    assert theirs.get_json() == []


def test_hostile_conversation_cursors_read_as_missing(client, alice, conversation):
    disguised = [form.format(conversation["id"]) for form in REAL_ID_DISGUISES]
    for raw_id in ["", "999999999999999999", *HOSTILE_IDS, *disguised]:
        response = client.get(
            "/api/conversations",
            query_string={"before": raw_id},
            headers=alice.headers,
        )

        assert response.status_code == 404, repr(raw_id)
        assert response.get_json() == NOT_FOUND, repr(raw_id)


def test_another_users_conversation_is_no_cursor(client, mallory, conversation):
    response = client.get(
        "/api/conversations",
        query_string={"before": conversation["id"]},
        headers=mallory.headers,
    )

    assert response.status_code == 404
    assert response.get_json() == NOT_FOUND


def test_hostile_message_cursors_read_as_missing(client, alice, conversation):
    message_id = send(client, alice, conversation["id"], "one").get_json()["id"]
    path = f"/api/conversations/{conversation['id']}/messages"

    disguised = [form.format(message_id) for form in REAL_ID_DISGUISES]
    for raw_id in ["", "999999999999999999", *HOSTILE_IDS, *disguised]:
        response = client.get(
            path, query_string={"before": raw_id}, headers=alice.headers
        )

        assert response.status_code == 404, repr(raw_id)
        assert response.get_json() == MESSAGE_NOT_FOUND, repr(raw_id)


def test_a_message_of_another_conversation_is_no_cursor(
    client, alice, bob, mallory, conversation
):
    started = client.post(
        "/api/conversations", json={"username": "mallory"}, headers=alice.headers
    )
    elsewhere = started.get_json()["id"]
    foreign_id = send(client, mallory, elsewhere, "elsewhere").get_json()["id"]
    send(client, alice, conversation["id"], "here")

    for person in (alice, bob):
        response = client.get(
            f"/api/conversations/{conversation['id']}/messages",
            query_string={"before": foreign_id},
            headers=person.headers,
        )

        assert response.status_code == 404
        assert response.get_json() == MESSAGE_NOT_FOUND


# Hostile query parameters -----------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"search": "\x00"},
        {"search": "%00"},
        {"search": "a\x00"},
        {"search": "a" * OVERSIZED_CHARS},
        {"search": "%"},
        {"search": "_"},
        {"search": "\\"},
        {"search": "\u0661\u0662"},
        {"search": " "},
        "search=%FF",
        "search=%ED%A0%80",
        "search=a&search=b",
        *({"search": text} for text in HOSTILE_TEXT),
    ],
    ids=lambda query: repr(query)[:40],
)
def test_hostile_searches_are_answered_not_crashed(client, alice, bob, query):
    response = client.get("/api/usernames", query_string=query, headers=alice.headers)

    if response.status_code == 422:
        assert set(assert_json_error(response, 422)["errors"]) == {"search"}
    else:
        assert response.status_code == 200
        assert response.get_json() == []


@pytest.mark.parametrize("limit", HOSTILE_LIMITS, ids=repr)
def test_hostile_page_sizes_are_422(client, alice, conversation, limit):
    for path in [
        "/api/conversations",
        f"/api/conversations/{conversation['id']}/messages",
    ]:
        response = client.get(
            path, query_string={"limit": limit}, headers=alice.headers
        )

        assert set(assert_json_error(response, 422)["errors"]) == {"limit"}


def test_page_sizes_at_the_bounds_are_accepted(client, alice, conversation):
    for path in [
        "/api/conversations",
        f"/api/conversations/{conversation['id']}/messages",
    ]:
        for limit in ("1", "100"):
            response = client.get(
                path, query_string={"limit": limit}, headers=alice.headers
            )

            assert response.status_code == 200


# Hostile tokens ---------------------------------------------------------------


def hostile_authorizations(alice: Person, bob: Person) -> list[str]:
    """Authorization values that must not let anyone in."""
    alice_payload, _, alice_signature = alice.token.rpartition(".")
    bob_payload, _, _ = bob.token.rpartition(".")
    # The first signature character: every one of its bits counts, unlike the
    # last, whose padding bits can change without changing the signature.
    flipped = "B" if alice_signature[0] == "A" else "A"
    tampered = f"{alice_payload}.{flipped}{alice_signature[1:]}"
    return [
        "Bearer",
        "Bearer ",
        "Bearer null",
        f"Basic {alice.token}",
        f"Bearer {tampered}",
        f"Bearer {bob_payload}.{alice_signature}",
        f"Bearer {alice_payload}",
        f"Bearer {alice.token} extra",
        f"Bearer {alice.token}\x00",
        "Bearer " + "A" * OVERSIZED_CHARS,
        "Bearer ' OR 1=1 --",
    ]


def test_hostile_tokens_are_401(client, alice, bob):
    for value in hostile_authorizations(alice, bob):
        response = client.get(
            "/api/auth_user", environ_base={"HTTP_AUTHORIZATION": value}
        )

        assert response.status_code == 401, value[:60]
        assert response.get_json() == {"message": "Unauthorized"}

    for token in ["", "\x00", "x" * OVERSIZED_CHARS, alice.token[:-2]]:
        response = client.get("/api/auth_user", query_string={"token": token})

        assert response.status_code == 401
        assert response.get_json() == {"message": "Unauthorized"}


# Nothing stored is lost -------------------------------------------------------


def table_counts(app: Flask) -> dict[str, int]:
    """The number of rows in every table of the schema."""
    db = app.extensions["messenger"].db
    with db.reading() as conn:
        return {
            table.name: conn.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
            for table in metadata.sorted_tables
        }


def snapshot(client: FlaskClient, people: list[Person]) -> dict[str, Any]:
    """Everything each person can read through the API."""
    seen: dict[str, Any] = {}
    for person in people:
        conversations = client.get(
            "/api/conversations", query_string={"limit": 100}, headers=person.headers
        ).get_json()
        details = {}
        for conversation in conversations:
            path = f"/api/conversations/{conversation['id']}"
            details[conversation["id"]] = {
                "conversation": client.get(path, headers=person.headers).get_json(),
                "other": client.get(
                    f"{path}/other_participant", headers=person.headers
                ).get_json(),
                "messages": client.get(
                    f"{path}/messages",
                    query_string={"limit": 100},
                    headers=person.headers,
                ).get_json(),
            }

        seen[person.username] = {
            "me": client.get("/api/auth_user", headers=person.headers).get_json(),
            "conversations": conversations,
            "details": details,
        }

    return seen


def hostile_corpus(
    alice: Person, bob: Person, mallory: Person, conversation_id: str
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Requests that must all fail: (method, path, arguments for client.open)."""
    conversation = {"id": conversation_id}
    # Bodies that are well formed yet must fail: each request below only
    # breaks the body further, so it must fail too.
    refused = {
        "sign_up": ({}, {"username": "ALICE", "password": "replaced password"}, 409),
        "login": ({}, {"username": "alice", "password": "not the password"}, 401),
        "start_conversation": (alice.headers, {"username": "alice"}, 403),
        "send_message": (mallory.headers, None, 404),
    }
    for name in BODY_ENDPOINTS:
        endpoint = body_endpoint(name, alice, conversation)
        headers, body, status = refused[name]
        endpoint = replace(
            endpoint, headers=headers, body=body or endpoint.body, success=status
        )

        base = {"headers": endpoint.headers}
        for content_type in (None, "text/plain"):
            yield (
                "POST",
                endpoint.path,
                {
                    **base,
                    "data": json.dumps(endpoint.body),
                    "content_type": content_type,
                },
            )

        raw_bodies = [b"", b"{", b"[]", b'"str"', b"null", b"123", b"\xff{"]
        raw_values = [b"NaN", b"Infinity", b"[" * 600 + b"]" * 600]
        raw_bodies += [endpoint.with_member(value) for value in raw_values]
        for field in endpoint.fields:
            for value in [5, ["x"], {"a": 1}, True, "\x00", "\ud800"]:
                raw_bodies.append(json.dumps({**endpoint.body, field: value}).encode())

            oversized = {**endpoint.body, field: "x" * OVERSIZED_CHARS}
            raw_bodies.append(json.dumps(oversized).encode())

        raw_bodies.append(json.dumps(endpoint.body).encode())
        for data in raw_bodies:
            yield (
                "POST",
                endpoint.path,
                {**base, "data": data, "content_type": "application/json"},
            )

    for text in HOSTILE_TEXT:
        yield "POST", "/api/users", {"json": {"username": text, "password": text}}
        yield "POST", "/api/login", {"json": {"username": text, "password": text}}
        yield (
            "POST",
            "/api/conversations",
            {"json": {"username": text}, "headers": alice.headers},
        )

    disguised = [form.format(conversation_id) for form in REAL_ID_DISGUISES]
    for method, route in PATH_ROUTES:
        for raw_id in HOSTILE_IDS + disguised:
            path = route.format(path_segment(raw_id))
            yield method, path, {"json": {"content": "x"}, "headers": alice.headers}

        path = route.format(conversation_id)
        yield method, path, {"json": {"content": "x"}, "headers": mallory.headers}

    for raw_id in HOSTILE_IDS + disguised:
        for person in (alice, mallory):
            yield (
                "GET",
                "/api/conversations",
                {"query_string": {"before": raw_id}, "headers": person.headers},
            )
            yield (
                "GET",
                f"/api/conversations/{conversation_id}/messages",
                {"query_string": {"before": raw_id}, "headers": person.headers},
            )

    for limit in HOSTILE_LIMITS:
        yield (
            "GET",
            "/api/conversations",
            {"query_string": {"limit": limit}, "headers": bob.headers},
        )

    for value in hostile_authorizations(alice, bob):
        yield (
            "POST",
            f"/api/conversations/{conversation_id}/messages",
            {
                "json": {"content": "forged"},
                "environ_base": {"HTTP_AUTHORIZATION": value},
            },
        )


def test_the_hostile_corpus_loses_nothing(
    app, client, sign_up: Callable[[str], Person], alice, bob, mallory, conversation
):
    carol = sign_up("carol")
    for text in [*SQL_FRAGMENTS, *MARKUP, "\U0001f600 " + "\u65e5" * 100]:
        assert send(client, alice, conversation["id"], text).status_code == 201

    assert send(client, bob, conversation["id"], "reply").status_code == 201
    path = f"/api/conversations/{conversation['id']}/read_messages"
    assert client.post(path, headers=alice.headers).status_code == 204

    other = client.post(
        "/api/conversations", json={"username": "carol"}, headers=mallory.headers
    ).get_json()
    assert send(client, carol, other["id"], "carol was here").status_code == 201
    client.post("/api/conversations", json={"username": "carol"}, headers=alice.headers)

    people = [alice, bob, mallory, carol]
    before = snapshot(client, people)
    counts = table_counts(app)
    assert counts["messages"] == len(SQL_FRAGMENTS) + len(MARKUP) + 3
    assert counts["conversations"] == 3

    calls = 0
    for method, path, arguments in hostile_corpus(
        alice, bob, mallory, conversation["id"]
    ):
        response = client.open(path, method=method, **arguments)
        calls += 1

        assert 400 <= response.status_code < 500, (method, path[:80])
        assert isinstance(response.get_json()["message"], str)

    assert calls >= 300
    assert snapshot(client, people) == before
    assert table_counts(app) == counts

    stored = before["bob"]["details"][conversation["id"]]["messages"]
    expected = ["reply", "\U0001f600 " + "\u65e5" * 100, *reversed(MARKUP)]
    expected += list(reversed(SQL_FRAGMENTS))
    assert [message["content"] for message in stored] == expected

    for person in people:
        login = client.post(
            "/api/login", json={"username": person.username, "password": PASSWORD}
        )
        assert login.status_code == 200
