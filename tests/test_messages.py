"""Message routes: sending, idempotent retries, history, read markers, events.

Events are read straight from the events table with the data layer's own
reader, since the stream endpoint is tested on its own. Everything runs on
both databases.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from messenger.data.events import list_events_after
from tests.conftest import Person, send

MESSAGE_KEYS = {"id", "content", "createdAt", "mine"}

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")

# Larger than any test's event count, so one read returns everything.
EVENT_PAGE = 10_000


def parse_time(text: str) -> datetime:
    """Parse an API timestamp, asserting it is RFC 3339 in UTC with a Z."""
    assert RFC3339_UTC.fullmatch(text), text
    return datetime.fromisoformat(text)


def history(
    client: FlaskClient, person: Person, conversation_id: str, **params: str
) -> Any:
    """GET a conversation's messages as ``person``; return the response."""
    return client.get(
        f"/api/conversations/{conversation_id}/messages",
        query_string=params,
        headers=person.headers,
    )


def messages_of(
    client: FlaskClient, person: Person, conversation_id: str, **params: str
) -> list[Any]:
    """The messages ``person`` sees in a conversation, asserting a 200."""
    response = history(client, person, conversation_id, **params)
    assert response.status_code == 200, response.get_json()
    body: list[Any] = response.get_json()
    return body


def sent(client: FlaskClient, person: Person, conversation_id: str, text: str) -> Any:
    """Send a message, assert it was stored now, and return its body."""
    response = send(client, person, conversation_id, text)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def view(client: FlaskClient, person: Person, conversation_id: str) -> Any:
    """The conversation as ``person`` sees it."""
    response = client.get(
        f"/api/conversations/{conversation_id}", headers=person.headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def read_messages(client: FlaskClient, person: Person, conversation_id: str) -> Any:
    """POST read_messages as ``person``; return the response."""
    return client.post(
        f"/api/conversations/{conversation_id}/read_messages", headers=person.headers
    )


def user_events(app: Flask, person: Person) -> list[tuple[int, str, Any]]:
    """All stream events of a person as (id, kind, payload), in id order."""
    with app.extensions["messenger"].db.reading() as conn:
        rows = list_events_after(conn, int(person.id), 0, EVENT_PAGE)

    return [(row.id, row.kind, json.loads(row.payload)) for row in rows]


def payloads(app: Flask, person: Person, kind: str) -> list[Any]:
    """The payloads of one kind of event of a person, in id order."""
    return [payload for _id, each, payload in user_events(app, person) if each == kind]


def assert_content_error(response: Any, text: str) -> None:
    """Assert a 422 on the content field with the given text."""
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"] == {"content": text}


# --- sending ---


def test_send_answers_201_with_the_message(client, alice, conversation):
    before = datetime.now(UTC)
    response = send(client, alice, conversation["id"], "hello")
    after = datetime.now(UTC)

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {*MESSAGE_KEYS, "conversationId"}
    assert isinstance(body["id"], str)
    assert body["id"].isdigit()
    assert body["conversationId"] == conversation["id"]
    assert body["content"] == "hello"
    assert body["mine"] is True
    assert before <= parse_time(body["createdAt"]) <= after


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        pytest.param("hello   world", "hello world", id="spaces"),
        pytest.param("hello\t\t \tworld", "hello world", id="tabs"),
        pytest.param("one\r\ntwo\r\n", "one\ntwo", id="crlf"),
        pytest.param("a \r\r b\fc", "a b c", id="cr-ff-inside-a-line"),
        pytest.param("one\n\n\n\ntwo", "one\ntwo", id="blank-lines"),
        pytest.param("  \n\t hi there \t\n  ", "hi there", id="outer-blanks"),
        pytest.param("one\n    \n\t\t\ntwo", "one\ntwo", id="blank-only-lines"),
        pytest.param("  a  b  \n  c\t d  ", "a b\nc d", id="each-line-trimmed"),
        pytest.param("a\u00a0b", "a\u00a0b", id="nbsp-kept"),
    ],
)
def test_content_is_normalised(client, alice, bob, conversation, raw, stored):
    body = sent(client, alice, conversation["id"], raw)

    assert body["content"] == stored
    (listed,) = messages_of(client, bob, conversation["id"])
    assert listed["content"] == stored


@pytest.mark.parametrize("raw", ["", " ", "\t\t", "\n\n", " \r\n \t \n "])
def test_empty_content_is_422(client, alice, conversation, raw):
    response = send(client, alice, conversation["id"], raw)

    assert_content_error(response, "Message content required")
    assert messages_of(client, alice, conversation["id"]) == []


def test_missing_content_is_422(client, alice, conversation):
    response = client.post(
        f"/api/conversations/{conversation['id']}/messages",
        json={},
        headers=alice.headers,
    )

    assert_content_error(response, "Message content required")


def test_content_of_another_type_is_400(client, alice, conversation):
    response = send(client, alice, conversation["id"], 5)  # type: ignore[arg-type]

    assert response.status_code == 400
    assert messages_of(client, alice, conversation["id"]) == []


@pytest.mark.parametrize("char", ["a", "é", "😀", "中"])
def test_480_code_points_fit(client, alice, conversation, char):
    text = char * 480

    body = sent(client, alice, conversation["id"], text)

    assert body["content"] == text
    (listed,) = messages_of(client, alice, conversation["id"])
    assert listed["content"] == text


@pytest.mark.parametrize("char", ["a", "é", "😀"])
def test_481_code_points_are_too_long(client, alice, conversation, char):
    response = send(client, alice, conversation["id"], char * 481)

    assert_content_error(response, "Message too long. 480 max")
    assert messages_of(client, alice, conversation["id"]) == []


def test_length_is_measured_after_normalising(client, alice, conversation):
    padded = "  " + "x" * 240 + " \t  \n\n  " + "y" * 239 + "   "

    body = sent(client, alice, conversation["id"], padded)

    assert body["content"] == "x" * 240 + "\n" + "y" * 239
    assert len(body["content"]) == 480


# --- clientId ---


def test_retry_with_the_same_client_id_returns_the_first_message(
    client, alice, bob, conversation
):
    conversation_id = conversation["id"]
    first = send(client, alice, conversation_id, "hello", clientId="c-1")
    retry = send(client, alice, conversation_id, "hello", clientId="c-1")
    changed = send(client, alice, conversation_id, "edited", clientId="c-1")

    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.get_json() == first.get_json()
    # Even a retry with other content answers with what was stored.
    assert changed.status_code == 200
    assert changed.get_json() == first.get_json()

    (only,) = messages_of(client, bob, conversation_id)
    assert only["id"] == first.get_json()["id"]
    assert only["content"] == "hello"
    assert view(client, bob, conversation_id)["unreadCount"] == 1
    assert len(payloads(client.application, bob, "message")) == 1


def test_a_different_client_id_is_a_new_message(client, alice, conversation):
    conversation_id = conversation["id"]
    first = send(client, alice, conversation_id, "hello", clientId="c-1")
    second = send(client, alice, conversation_id, "hello", clientId="c-2")
    plain = send(client, alice, conversation_id, "hello")

    assert [first.status_code, second.status_code, plain.status_code] == [201] * 3
    new_ids = {each.get_json()["id"] for each in (first, second, plain)}
    assert len(new_ids) == 3
    assert len(messages_of(client, alice, conversation_id)) == 3


def test_the_same_client_id_from_the_other_participant_is_separate(
    client, alice, bob, conversation
):
    conversation_id = conversation["id"]
    from_alice = send(client, alice, conversation_id, "hi bob", clientId="same")
    from_bob = send(client, bob, conversation_id, "hi alice", clientId="same")

    assert from_alice.status_code == 201
    assert from_bob.status_code == 201
    assert from_bob.get_json()["id"] != from_alice.get_json()["id"]
    assert from_bob.get_json()["content"] == "hi alice"
    assert from_bob.get_json()["mine"] is True

    contents = [each["content"] for each in messages_of(client, alice, conversation_id)]
    assert contents == ["hi alice", "hi bob"]


def test_the_same_client_id_in_another_conversation_is_separate(
    client, alice, bob, sign_up, conversation
):
    sign_up("carol")
    other = client.post(
        "/api/conversations", json={"username": "carol"}, headers=alice.headers
    ).get_json()["id"]

    first = send(client, alice, conversation["id"], "to bob", clientId="same")
    second = send(client, alice, other, "to carol", clientId="same")

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.get_json()["conversationId"] == other
    assert second.get_json()["content"] == "to carol"


def test_client_id_of_64_characters_is_allowed(client, alice, conversation):
    response = send(client, alice, conversation["id"], "hi", clientId="k" * 64)

    assert response.status_code == 201


@pytest.mark.parametrize("client_id", ["", "k" * 65])
def test_client_id_of_bad_length_is_422(client, alice, conversation, client_id):
    response = send(client, alice, conversation["id"], "hi", clientId=client_id)

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"clientId"}
    assert messages_of(client, alice, conversation["id"]) == []


@pytest.mark.parametrize("client_id", [5, ["c-1"], {"id": "c-1"}, True])
def test_client_id_of_another_type_is_400(client, alice, conversation, client_id):
    response = send(client, alice, conversation["id"], "hi", clientId=client_id)

    assert response.status_code == 400
    assert messages_of(client, alice, conversation["id"]) == []


# --- read markers moved by sending ---


def test_sending_moves_only_the_senders_read_marker(client, alice, bob, conversation):
    conversation_id = conversation["id"]
    sent(client, bob, conversation_id, "are you there?")
    assert view(client, alice, conversation_id)["unreadCount"] == 1

    sent(client, alice, conversation_id, "yes")
    sent(client, alice, conversation_id, "here")

    # Replying read Bob's message; her own never count.
    assert view(client, alice, conversation_id)["unreadCount"] == 0
    assert view(client, alice, conversation_id)["hasUnreadMessages"] is False
    assert view(client, bob, conversation_id)["unreadCount"] == 2
    assert view(client, bob, conversation_id)["hasUnreadMessages"] is True


# --- GET messages ---


def test_list_is_newest_first_with_mine_per_viewer(client, alice, bob, conversation):
    conversation_id = conversation["id"]
    first = sent(client, alice, conversation_id, "one")
    second = sent(client, bob, conversation_id, "two")
    third = sent(client, alice, conversation_id, "three")

    for_alice = messages_of(client, alice, conversation_id)
    for_bob = messages_of(client, bob, conversation_id)

    newest_first = [third, second, first]
    assert [each["id"] for each in for_alice] == [each["id"] for each in newest_first]
    assert [each["content"] for each in for_alice] == ["three", "two", "one"]
    assert [each["mine"] for each in for_alice] == [True, False, True]
    assert [each["mine"] for each in for_bob] == [False, True, False]
    for listed, original in zip(for_alice, newest_first, strict=True):
        assert set(listed) == MESSAGE_KEYS
        assert listed["createdAt"] == original["createdAt"]

    ids = [int(each["id"]) for each in for_alice]
    assert ids == sorted(ids, reverse=True)


def test_list_of_an_empty_conversation(client, bob, conversation):
    assert messages_of(client, bob, conversation["id"]) == []


@pytest.fixture
def sixty(client: FlaskClient, alice: Person, conversation: Any) -> list[str]:
    """Sixty messages from Alice to Bob; their ids, oldest first."""
    return [
        sent(client, alice, conversation["id"], f"message {number}")["id"]
        for number in range(60)
    ]


def test_default_page_is_25_and_limit_changes_it(client, bob, conversation, sixty):
    conversation_id = conversation["id"]

    default = messages_of(client, bob, conversation_id)
    assert [each["id"] for each in default] == sixty[::-1][:25]

    assert len(messages_of(client, bob, conversation_id, limit="7")) == 7
    assert len(messages_of(client, bob, conversation_id, limit="100")) == 60
    assert len(messages_of(client, bob, conversation_id, limit="1")) == 1


def test_paging_with_before_reaches_the_first_message(client, bob, conversation, sixty):
    conversation_id = conversation["id"]
    walked: list[str] = []
    page = messages_of(client, bob, conversation_id)
    page_sizes = []
    while page:
        page_sizes.append(len(page))
        walked += [each["id"] for each in page]
        page = messages_of(client, bob, conversation_id, before=walked[-1])
        # Sixty messages fit in three pages; a loop here is a bug.
        assert len(walked) <= len(sixty)

    assert page_sizes == [25, 25, 10]
    assert walked == sixty[::-1]
    assert walked[-1] == sixty[0]


def test_before_with_limit(client, alice, conversation, sixty):
    page = messages_of(client, alice, conversation["id"], before=sixty[10], limit="4")

    assert [each["id"] for each in page] == sixty[9:5:-1]
    assert [each["content"] for each in page] == [
        "message 9",
        "message 8",
        "message 7",
        "message 6",
    ]


@pytest.mark.parametrize("limit", ["0", "101", "abc", "1.5"])
def test_bad_limit_is_422(client, alice, conversation, limit):
    response = history(client, alice, conversation["id"], limit=limit)

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"limit"}


def test_unknown_or_foreign_cursor_is_404(
    client, alice, bob, mallory, sign_up, conversation
):
    sent(client, alice, conversation["id"], "here")
    carol = sign_up("carol")
    elsewhere = client.post(
        "/api/conversations", json={"username": "carol"}, headers=alice.headers
    ).get_json()["id"]
    foreign = sent(client, carol, elsewhere, "not in the bob conversation")["id"]
    strangers = client.post(
        "/api/conversations", json={"username": "mallory"}, headers=bob.headers
    ).get_json()["id"]
    theirs = sent(client, mallory, strangers, "private")["id"]

    for before in ["999999", foreign, theirs, "abc", "0", "007", "1" * 30]:
        response = history(client, alice, conversation["id"], before=before)
        assert response.status_code == 404, before
        assert response.get_json() == {"message": "Message not found"}


def test_listing_marks_nothing_read(client, alice, bob, conversation):
    conversation_id = conversation["id"]
    sent(client, alice, conversation_id, "one")
    sent(client, alice, conversation_id, "two")
    events_before = user_events(client.application, bob)

    assert len(messages_of(client, bob, conversation_id)) == 2
    assert len(messages_of(client, bob, conversation_id, limit="1")) == 1

    assert view(client, bob, conversation_id)["unreadCount"] == 2
    assert view(client, alice, conversation_id)["otherReadAt"] is None
    assert user_events(client.application, bob) == events_before


# --- read_messages ---


def test_read_messages_clears_unread_and_sets_other_read_at(
    client, alice, bob, conversation
):
    conversation_id = conversation["id"]
    sent(client, alice, conversation_id, "one")
    last = sent(client, alice, conversation_id, "two")
    assert view(client, bob, conversation_id)["unreadCount"] == 2

    response = read_messages(client, bob, conversation_id)

    assert response.status_code == 204
    assert response.data == b""
    for_bob = view(client, bob, conversation_id)
    assert for_bob["unreadCount"] == 0
    assert for_bob["hasUnreadMessages"] is False

    seen_at = view(client, alice, conversation_id)["otherReadAt"]
    assert parse_time(seen_at) >= parse_time(last["createdAt"])


def test_messages_after_the_read_marker_are_unread_again(
    client, alice, bob, conversation
):
    conversation_id = conversation["id"]
    sent(client, alice, conversation_id, "one")
    assert read_messages(client, bob, conversation_id).status_code == 204

    sent(client, alice, conversation_id, "two")

    assert view(client, bob, conversation_id)["unreadCount"] == 1


def test_read_marker_never_moves_back(client, alice, bob, conversation):
    conversation_id = conversation["id"]
    sent(client, alice, conversation_id, "one")

    assert read_messages(client, bob, conversation_id).status_code == 204
    first_seen = view(client, alice, conversation_id)["otherReadAt"]
    assert read_messages(client, bob, conversation_id).status_code == 204
    second_seen = view(client, alice, conversation_id)["otherReadAt"]

    assert parse_time(second_seen) >= parse_time(first_seen)
    reads = payloads(client.application, alice, "read")
    assert [each["readAt"] for each in reads] == [first_seen, second_seen]


def test_reading_an_empty_conversation(client, alice, bob, conversation):
    response = read_messages(client, bob, conversation["id"])

    assert response.status_code == 204
    assert view(client, bob, conversation["id"])["unreadCount"] == 0
    assert view(client, alice, conversation["id"])["otherReadAt"] is not None


# --- events ---


def test_conversation_events_show_each_side_its_own_view(app, client, alice, bob):
    response = client.post(
        "/api/conversations", json={"username": "bob"}, headers=alice.headers
    )
    assert response.status_code == 201
    created = response.get_json()

    (for_alice,) = payloads(app, alice, "conversation")
    (for_bob,) = payloads(app, bob, "conversation")

    assert for_alice == created
    assert for_bob["id"] == created["id"]
    assert for_bob["otherParticipant"]["id"] == alice.id
    assert for_bob["otherParticipant"]["username"] == "alice"
    assert for_alice["otherParticipant"]["id"] == bob.id
    for payload in (for_alice, for_bob):
        assert payload["lastMessage"] is None
        assert payload["unreadCount"] == 0


def test_finding_an_existing_conversation_emits_nothing(
    app, client, alice, bob, conversation
):
    before = (user_events(app, alice), user_events(app, bob))

    again = client.post(
        "/api/conversations", json={"username": "alice"}, headers=bob.headers
    )

    assert again.status_code == 200
    assert (user_events(app, alice), user_events(app, bob)) == before


def test_message_events_carry_mine_per_recipient(app, client, alice, bob, conversation):
    message = sent(client, alice, conversation["id"], "hello bob")

    (for_alice,) = payloads(app, alice, "message")
    (for_bob,) = payloads(app, bob, "message")

    assert for_alice == message
    assert for_bob == {**message, "mine": False}
    assert for_bob["conversationId"] == conversation["id"]


def test_read_events_reach_both_participants(app, client, alice, bob, conversation):
    sent(client, alice, conversation["id"], "hello")

    assert read_messages(client, bob, conversation["id"]).status_code == 204

    (for_alice,) = payloads(app, alice, "read")
    (for_bob,) = payloads(app, bob, "read")
    assert for_alice == for_bob
    assert set(for_alice) == {"conversationId", "userId", "readAt"}
    assert for_alice["conversationId"] == conversation["id"]
    assert for_alice["userId"] == bob.id
    assert for_alice["readAt"] == view(client, alice, conversation["id"])["otherReadAt"]


def test_a_stranger_causes_no_events(app, client, alice, bob, mallory, conversation):
    before = [user_events(app, person) for person in (alice, bob, mallory)]

    send(client, mallory, conversation["id"], "let me in")
    read_messages(client, mallory, conversation["id"])

    assert [user_events(app, person) for person in (alice, bob, mallory)] == before


def test_event_ids_count_up_by_one_per_user(app, client, alice, bob, sign_up):
    carol = sign_up("carol")
    with_bob = client.post(
        "/api/conversations", json={"username": "bob"}, headers=alice.headers
    ).get_json()["id"]
    with_carol = client.post(
        "/api/conversations", json={"username": "alice"}, headers=carol.headers
    ).get_json()["id"]
    sent(client, alice, with_bob, "one")
    sent(client, bob, with_bob, "two")
    sent(client, carol, with_carol, "three")
    send(client, alice, with_bob, "four", clientId="x")
    # A retry stores nothing, so it announces nothing.
    send(client, alice, with_bob, "four", clientId="x")
    assert read_messages(client, bob, with_bob).status_code == 204
    assert read_messages(client, alice, with_carol).status_code == 204

    kinds = {
        "alice": [
            "conversation",
            "conversation",
            "message",
            "message",
            "message",
            "message",
            "read",
            "read",
        ],
        "bob": ["conversation", "message", "message", "message", "read"],
        "carol": ["conversation", "message", "read"],
    }
    for person in (alice, bob, carol):
        events = user_events(app, person)
        assert [event_id for event_id, _kind, _payload in events] == list(
            range(1, len(events) + 1)
        )
        assert [kind for _id, kind, _payload in events] == kinds[person.username]
