"""Conversation routes: starting one, the list and its paging, one conversation.

Also the access rule every conversation route shares: a stranger's request
gets the very answer a nonexistent or malformed id gets, so ids cannot be
probed. Everything runs on both databases.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import Person, send

CONVERSATION_KEYS = {
    "id",
    "otherParticipant",
    "lastMessage",
    "hasUnreadMessages",
    "unreadCount",
    "otherReadAt",
}

NOT_FOUND = {"message": "Conversation not found"}

# Ids that are not positive decimal numbers of at most 18 digits; each must
# be answered exactly like an id that names nothing.
MALFORMED_IDS = ["abc", "-1", "1.5", "0", "1" * 30, "007"]

UNKNOWN_ID = "999999"


def start(client: FlaskClient, person: Person, username: Any) -> Any:
    """POST /api/conversations as ``person`` and return the response."""
    return client.post(
        "/api/conversations", json={"username": username}, headers=person.headers
    )


def start_ok(client: FlaskClient, person: Person, username: str) -> Any:
    """Start or find a conversation and return its body."""
    response = start(client, person, username)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def listing(client: FlaskClient, person: Person, **params: str) -> Any:
    """GET /api/conversations as ``person`` with the given query parameters."""
    return client.get("/api/conversations", query_string=params, headers=person.headers)


def listed(client: FlaskClient, person: Person, **params: str) -> list[Any]:
    """The conversation list ``person`` sees, asserting a 200."""
    response = listing(client, person, **params)
    assert response.status_code == 200, response.get_json()
    body: list[Any] = response.get_json()
    return body


def unread_of(client: FlaskClient, person: Person) -> tuple[int, bool]:
    """The unread count and flag of the one conversation ``person`` has."""
    (only,) = listed(client, person)
    assert isinstance(only["hasUnreadMessages"], bool)
    return only["unreadCount"], only["hasUnreadMessages"]


def read_messages(client: FlaskClient, person: Person, conversation_id: str) -> None:
    """Move ``person``'s read marker in a conversation, asserting a 204."""
    response = client.post(
        f"/api/conversations/{conversation_id}/read_messages", headers=person.headers
    )
    assert response.status_code == 204, response.get_json()


def user_shape(person: Person) -> dict[str, Any]:
    """The User shape the API gives for ``person``."""
    return {"id": person.id, "username": person.username, "avatarURL": None}


def ids(conversations: list[Any]) -> list[str]:
    """The ids of a list of conversations, in order."""
    return [conversation["id"] for conversation in conversations]


# --- POST /api/conversations ---


def test_start_answers_201_with_the_full_shape(client, alice, bob):
    response = start(client, alice, "bob")

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == CONVERSATION_KEYS
    assert isinstance(body["id"], str)
    assert body["id"].isdigit()
    assert body["otherParticipant"] == user_shape(bob)
    assert body["lastMessage"] is None
    assert body["hasUnreadMessages"] is False
    assert body["unreadCount"] == 0
    assert body["otherReadAt"] is None


def test_starting_again_from_either_side_answers_200_with_the_same_id(
    client, alice, bob, conversation
):
    again = start(client, alice, "bob")
    assert again.status_code == 200
    assert again.get_json() == conversation

    reverse = start(client, bob, "alice")
    assert reverse.status_code == 200
    body = reverse.get_json()
    assert body["id"] == conversation["id"]
    assert body["otherParticipant"] == user_shape(alice)

    assert ids(listed(client, alice)) == [conversation["id"]]
    assert ids(listed(client, bob)) == [conversation["id"]]


@pytest.mark.parametrize("username", ["  bob  ", "BOB", "\tBoB\n"])
def test_username_is_trimmed_and_matched_in_any_case(client, alice, bob, username):
    first = start(client, alice, username)
    assert first.status_code == 201
    assert first.get_json()["otherParticipant"] == user_shape(bob)

    second = start(client, alice, "bob")
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]


def test_starting_with_yourself_is_403(client, alice):
    for username in ("alice", " ALICE "):
        response = start(client, alice, username)
        assert response.status_code == 403
        assert set(response.get_json()) == {"message"}

    assert listed(client, alice) == []


def test_unknown_user_is_404(client, alice):
    response = start(client, alice, "nobody")

    assert response.status_code == 404
    assert response.get_json() == {"message": "User not found"}


@pytest.mark.parametrize("username", ["", "   ", None])
def test_empty_username_is_422(client, alice, username):
    response = start(client, alice, username)

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"username"}


def test_missing_username_is_422(client, alice):
    response = client.post("/api/conversations", json={}, headers=alice.headers)

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"username"}


def test_username_of_another_type_is_400(client, alice, bob):
    response = start(client, alice, ["bob"])

    assert response.status_code == 400
    assert listed(client, alice) == []


# --- GET /api/conversations ---


def test_list_includes_conversations_without_messages(client, alice, bob, conversation):
    for person, other in ((alice, bob), (bob, alice)):
        (only,) = listed(client, person)
        assert set(only) == CONVERSATION_KEYS
        assert only["id"] == conversation["id"]
        assert only["otherParticipant"] == user_shape(other)
        assert only["lastMessage"] is None
        assert only["unreadCount"] == 0
        assert only["hasUnreadMessages"] is False


def test_list_is_newest_activity_first(client, alice, sign_up):
    friends = [sign_up(name) for name in ("carol", "dave", "erin")]
    started = [start_ok(client, alice, friend.username)["id"] for friend in friends]
    carol_id, dave_id, erin_id = started

    assert ids(listed(client, alice)) == [erin_id, dave_id, carol_id]

    assert send(client, alice, carol_id, "back to you").status_code == 201
    assert ids(listed(client, alice)) == [carol_id, erin_id, dave_id]

    # A message from the other side moves it for both participants.
    assert send(client, friends[1], dave_id, "me too").status_code == 201
    assert ids(listed(client, alice)) == [dave_id, carol_id, erin_id]
    assert ids(listed(client, friends[1])) == [dave_id]


def test_a_new_conversation_goes_above_older_messages(client, alice, bob, sign_up):
    first = start_ok(client, alice, "bob")["id"]
    assert send(client, bob, first, "hi").status_code == 201
    carol = sign_up("carol")

    second = start_ok(client, carol, "alice")["id"]

    assert ids(listed(client, alice)) == [second, first]


def test_last_message_is_seen_per_viewer(client, alice, bob, conversation):
    sent = send(client, alice, conversation["id"], "hello bob").get_json()

    (for_alice,) = listed(client, alice)
    (for_bob,) = listed(client, bob)

    expected = {key: sent[key] for key in ("id", "content", "createdAt")}
    assert for_alice["lastMessage"] == {**expected, "mine": True}
    assert for_bob["lastMessage"] == {**expected, "mine": False}
    assert "conversationId" not in for_bob["lastMessage"]


def test_unread_count_counts_the_others_messages_after_the_marker(
    client, alice, bob, conversation
):
    conversation_id = conversation["id"]
    assert send(client, alice, conversation_id, "one").status_code == 201
    read_messages(client, bob, conversation_id)
    assert send(client, alice, conversation_id, "two").status_code == 201
    assert send(client, alice, conversation_id, "three").status_code == 201

    assert unread_of(client, bob) == (2, True)

    # Alice's own messages never count as unread for her.
    assert unread_of(client, alice) == (0, False)

    assert send(client, bob, conversation_id, "four").status_code == 201
    assert unread_of(client, alice) == (1, True)

    # Bob replied, which read everything before his reply.
    assert unread_of(client, bob) == (0, False)

    read_messages(client, alice, conversation_id)
    assert unread_of(client, alice) == (0, False)


def test_unread_counts_are_per_conversation(client, alice, bob, sign_up):
    carol = sign_up("carol")
    with_bob = start_ok(client, alice, "bob")["id"]
    with_carol = start_ok(client, alice, "carol")["id"]
    for text in ("a", "b", "c"):
        assert send(client, bob, with_bob, text).status_code == 201

    assert send(client, carol, with_carol, "d").status_code == 201

    counts = {item["id"]: item["unreadCount"] for item in listed(client, alice)}
    assert counts == {with_bob: 3, with_carol: 1}


def test_other_read_at_is_set_once_the_other_reads(client, alice, bob, conversation):
    conversation_id = conversation["id"]
    assert listed(client, alice)[0]["otherReadAt"] is None

    read_messages(client, bob, conversation_id)

    other_read_at = listed(client, alice)[0]["otherReadAt"]
    assert isinstance(other_read_at, str)
    assert other_read_at.endswith("Z")

    # Bob's own view is about Alice's marker, which has not moved.
    assert listed(client, bob)[0]["otherReadAt"] is None


# --- keyset paging ---


@pytest.fixture
def seven(client: FlaskClient, alice: Person, sign_up: Any) -> list[str]:
    """Seven conversations of Alice, as her list orders them (newest first)."""
    friends = [sign_up(f"friend{number}") for number in range(7)]
    started = [start_ok(client, alice, friend.username)["id"] for friend in friends]
    return started[::-1]


def test_paging_returns_each_conversation_once_in_order(client, alice, seven):
    assert ids(listed(client, alice)) == seven

    walked: list[str] = []
    pages = listed(client, alice, limit="2")
    while pages:
        assert len(pages) <= 2
        walked += ids(pages)
        pages = listed(client, alice, limit="2", before=walked[-1])
        # Seven conversations fit in four pages; a loop here is a bug.
        assert len(walked) <= len(seven)

    assert walked == seven


def test_paging_has_no_repeats_or_skips_while_new_messages_arrive(client, alice, seven):
    walked: list[str] = []
    pages = listed(client, alice, limit="2")
    while pages:
        walked += ids(pages)
        cursor = walked[-1]
        # New messages land in conversations already shown (the first one,
        # the last cursor, one on this page): they move to the top, above
        # the cursor, and must not come round again.
        touched = {walked[0], *walked[-3:-1]} - {cursor}
        for conversation_id in sorted(touched):
            assert send(client, alice, conversation_id, "news").status_code == 201

        pages = listed(client, alice, limit="2", before=cursor)
        assert len(walked) <= len(seven)

    assert walked == seven
    assert len(set(walked)) == len(walked)


def test_paging_continues_the_order_after_activity(client, alice, seven):
    # Move the two oldest to the top; the order becomes theirs, then the rest.
    assert send(client, alice, seven[-1], "old one").status_code == 201
    assert send(client, alice, seven[-2], "older one").status_code == 201
    order = [seven[-2], seven[-1], *seven[:-2]]

    walked: list[str] = []
    pages = listed(client, alice, limit="3")
    while pages:
        walked += ids(pages)
        pages = listed(client, alice, limit="3", before=walked[-1])
        assert len(walked) <= len(seven)

    assert walked == order


def test_default_page_is_25_and_limit_100_is_allowed(client, alice, sign_up):
    friends = [sign_up(f"pal{number}") for number in range(27)]
    for friend in friends:
        start_ok(client, friend, "alice")

    assert len(listed(client, alice)) == 25
    assert len(listed(client, alice, limit="100")) == 27
    assert len(listed(client, alice, limit="1")) == 1


@pytest.mark.parametrize("limit", ["0", "101", "abc", "1.5", "-1", ""])
def test_bad_limit_is_422(client, alice, conversation, limit):
    response = listing(client, alice, limit=limit)

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"limit"}


def test_unknown_foreign_or_malformed_cursor_is_404(
    client, alice, bob, mallory, conversation
):
    foreign = start_ok(client, mallory, "bob")["id"]

    for before in [UNKNOWN_ID, foreign, *MALFORMED_IDS]:
        response = listing(client, alice, before=before)
        assert response.status_code == 404, before
        assert response.get_json() == NOT_FOUND


def test_cursor_at_the_end_gives_an_empty_page(client, alice, conversation):
    assert listed(client, alice, before=conversation["id"]) == []


# --- GET /api/conversations/<id> ---


def test_get_one_fills_last_message_and_unread_fields(client, alice, bob, conversation):
    conversation_id = conversation["id"]
    assert send(client, alice, conversation_id, "first").status_code == 201
    sent = send(client, alice, conversation_id, "second").get_json()

    response = client.get(f"/api/conversations/{conversation_id}", headers=bob.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == CONVERSATION_KEYS
    assert body["id"] == conversation_id
    assert body["otherParticipant"] == user_shape(alice)
    assert body["lastMessage"] == {
        "id": sent["id"],
        "content": "second",
        "createdAt": sent["createdAt"],
        "mine": False,
    }
    assert body["unreadCount"] == 2
    assert body["hasUnreadMessages"] is True

    # The same as its entry in the list.
    assert listed(client, bob) == [body]

    mine = client.get(f"/api/conversations/{conversation_id}", headers=alice.headers)
    assert mine.get_json()["lastMessage"]["mine"] is True
    assert mine.get_json()["unreadCount"] == 0
    assert mine.get_json()["otherParticipant"] == user_shape(bob)


def test_get_one_without_messages(client, bob, conversation):
    response = client.get(
        f"/api/conversations/{conversation['id']}", headers=bob.headers
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["lastMessage"] is None
    assert body["unreadCount"] == 0
    assert body["hasUnreadMessages"] is False
    assert body["otherReadAt"] is None


def test_get_other_participant(client, alice, bob, conversation):
    path = f"/api/conversations/{conversation['id']}/other_participant"

    for_alice = client.get(path, headers=alice.headers)
    for_bob = client.get(path, headers=bob.headers)

    assert for_alice.status_code == 200
    assert for_alice.get_json() == user_shape(bob)
    assert for_bob.status_code == 200
    assert for_bob.get_json() == user_shape(alice)


# --- access control ---

ROUTES = [
    pytest.param("GET", "/api/conversations/{}", None, id="conversation"),
    pytest.param(
        "GET", "/api/conversations/{}/other_participant", None, id="other_participant"
    ),
    pytest.param("GET", "/api/conversations/{}/messages", None, id="list_messages"),
    pytest.param(
        "POST", "/api/conversations/{}/messages", {"content": "hi"}, id="send_message"
    ),
    pytest.param("POST", "/api/conversations/{}/read_messages", None, id="read"),
]


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
def test_a_stranger_gets_the_answer_of_a_nonexistent_id(
    client, alice, bob, mallory, conversation, method, template, body
):
    def ask(person: Person, conversation_id: str) -> tuple[int, bytes, str | None]:
        response = client.open(
            template.format(conversation_id),
            method=method,
            json=body,
            headers=person.headers,
        )
        return response.status_code, response.data, response.mimetype

    real = conversation["id"]
    # A real id with leading zeros must not reach the conversation either.
    malformed = [*MALFORMED_IDS, f"00{real}"]

    answers = {
        "mallory on a real id": ask(mallory, real),
        "mallory on an unknown id": ask(mallory, UNKNOWN_ID),
        "alice on an unknown id": ask(alice, UNKNOWN_ID),
    }
    for bad_id in malformed:
        answers[f"alice on {bad_id!r}"] = ask(alice, bad_id)
        answers[f"mallory on {bad_id!r}"] = ask(mallory, bad_id)

    reference = answers["alice on an unknown id"]
    assert reference[0] == 404
    assert reference[2] == "application/json"
    assert json.loads(reference[1]) == NOT_FOUND
    for label, answer in answers.items():
        assert answer == reference, label

    # Nothing the stranger did touched the conversation.
    history = client.get(f"/api/conversations/{real}/messages", headers=alice.headers)
    assert history.get_json() == []
    (for_alice,) = listed(client, alice)
    assert for_alice["otherReadAt"] is None
    assert listed(client, mallory) == []


def test_participants_still_reach_the_conversation(client, alice, bob, conversation):
    # The control for the test above: the same routes work for its members.
    real = conversation["id"]
    for person in (alice, bob):
        for suffix in ("", "/other_participant", "/messages"):
            response = client.get(
                f"/api/conversations/{real}{suffix}", headers=person.headers
            )
            assert response.status_code == 200, suffix

    assert send(client, bob, real, "hi").status_code == 201
    read_messages(client, alice, real)
