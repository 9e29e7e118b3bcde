def test_profile_after_events(client):
    events = [
        {
            "type": "page_view",
            "visitor_id": "v1",
            "source": "social",
            "timestamp": "2026-03-09T10:00:00Z",
        },
        {
            "type": "product_view",
            "visitor_id": "v1",
            "item_id": 7,
            "timestamp": "2026-03-09T10:01:00+01:00",
        },  # an offset: stored as UTC
        {
            "type": "add_to_cart",
            "visitor_id": "v1",
            "item_id": "7",
            "quantity": 2,
            "price": 4.5,
            "timestamp": "2026-03-09T10:02:00Z",
        },
    ]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    profile = client.get("/v1/visitors/v1/profile").json
    assert profile["stage"] == "decision"
    # The earliest event (09:01 UTC) carried no source: first touch is the page view.
    assert profile["first_seen"] == "2026-03-09T09:01:00.000Z"
    assert profile["first_touch"] == {"source": "social", "at": "2026-03-09T10:00:00.000Z"}
    assert profile["cart"]["items"] == [{"item_id": "7", "quantity": 2, "price": 4.5}]
    assert profile["cart"]["value"] == 9.0
    assert [s["stage"] for s in profile["stage_history"]] == ["awareness", "decision"]
    # The clock is past the cart's last change by more than cart_abandon_seconds: the
    # visitor entered cart_abandoner 30 minutes after adding, with no event of theirs.
    assert profile["segments"] == ["new_visitor", "has_cart", "cart_abandoner"]
    assert profile["segment_history"][-1] == {
        "segment": "cart_abandoner",
        "action": "enter",
        "at": "2026-03-09T10:32:00.000Z",
    }


def test_unknown_visitor_is_404(client):
    response = client.get("/v1/visitors/ghost/profile")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_invalid_visitor_id_is_422(client):
    response = client.get("/v1/visitors/bad%20id%7B/profile")
    assert response.status_code == 422
    assert response.json["error"]["details"]["errors"][0]["field"] == "visitor_id"


def test_profile_reads_at_risk_once_recency_lapses(client, clock):
    client.post(
        "/v1/events",
        json={
            "type": "purchase",
            "visitor_id": "v2",
            "item_id": "a",
            "timestamp": "2026-03-10T11:00:00Z",
        },
    )
    assert client.get("/v1/visitors/v2/profile").json["stage"] == "retention"
    clock.advance(61 * 86400)
    assert client.get("/v1/visitors/v2/profile").json["stage"] == "at_risk"
