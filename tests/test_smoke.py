from tests.conftest import send


def test_send_and_list(client, alice, bob, conversation):
    response = send(client, alice, conversation["id"], "  hello \t  world \n\n bye ")
    assert response.status_code == 201
    assert response.get_json()["content"] == "hello world\nbye"
    listing = client.get("/api/conversations", headers=bob.headers).get_json()
    assert listing[0]["unreadCount"] == 1
    assert listing[0]["lastMessage"]["mine"] is False
