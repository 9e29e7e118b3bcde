"""Banners: admin CRUD with rules validated on write, and GET /v1/visitors/<id>/banners
against real Redis with the app's manual clock."""

import pytest

from recsvc.web.app import create_app


@pytest.fixture
def live(settings, clock):
    """An app whose workers re-read banners on every request, so a test may change them."""
    return create_app(settings.replace(marketing_poll_seconds=0), clock=clock).test_client()


def create(client, banner_id, **fields):
    body = {"id": banner_id, "placement": "home", "content": {"title": banner_id}, **fields}
    response = client.post("/v1/admin/banners", json=body)
    assert response.status_code == 201, response.json
    return response.json


def send(client, *events):
    response = client.post("/v1/events", json={"events": list(events)})
    assert response.status_code == 202, response.json


def shown(client, visitor="v1", **query):
    response = client.get(f"/v1/visitors/{visitor}/banners", query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def shown_ids(client, visitor="v1", **query):
    return [b["id"] for b in shown(client, visitor, **query)["banners"]]


def test_crud_round_trip(client):
    made = create(
        client,
        "b1",
        rules={"stages": ["decision"], "start": "2026-03-01T00:00:00+01:00"},
        priority=3,
        frequency_cap_per_day=2,
        experiment={"id": "x", "variant": "a"},
    )
    assert made["rules"]["start"] == "2026-02-28T23:00:00.000Z"
    assert made["created_at"] == "2026-03-10T12:00:00.000Z"
    assert client.get("/v1/admin/banners/b1").json == made
    assert [b["id"] for b in client.get("/v1/admin/banners").json["banners"]] == ["b1"]
    replaced = client.put(
        "/v1/admin/banners/b1", json={"placement": "cart", "content": {"title": "new"}}
    )
    assert replaced.status_code == 200
    assert replaced.json["placement"] == "cart" and replaced.json["rules"] == {}
    assert client.delete("/v1/admin/banners/b1").status_code == 204
    assert client.get("/v1/admin/banners/b1").status_code == 404
    assert client.delete("/v1/admin/banners/b1").status_code == 404


def test_create_without_id_makes_one_and_duplicates_conflict(client):
    made = client.post("/v1/admin/banners", json={"placement": "home", "content": {"title": "t"}})
    assert made.status_code == 201 and made.json["id"].startswith("b-")
    again = client.post("/v1/admin/banners", json={**made.json})
    assert again.status_code == 422  # created_at/updated_at are not writable
    body = {"id": made.json["id"], "placement": "home", "content": {"title": "t"}}
    assert client.post("/v1/admin/banners", json=body).status_code == 409


def test_put_of_a_missing_banner_or_another_id(client):
    body = {"placement": "home", "content": {"title": "t"}}
    assert client.put("/v1/admin/banners/nope", json=body).status_code == 404
    create(client, "b1")
    wrong = client.put("/v1/admin/banners/b1", json={**body, "id": "b2"})
    assert wrong.status_code == 422 and wrong.json["error"]["details"]["errors"][0]["field"] == "id"


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"stages": ["browsing"]}, "rules.stages.0"),
        ({"segments": ["vip"]}, "rules.segments.0"),
        ({"sources": ["tv"]}, "rules.sources.0"),
        ({"colour": "red"}, "rules.colour"),
        ({"visitor_type": "old"}, "rules.visitor_type"),
        ({"has_cart": "yes"}, "rules.has_cart"),
        ({"cart_value_min": 10, "cart_value_max": 5}, "rules.cart_value_min"),
        ({"days": ["monday"]}, "rules.days.0"),
        ({"hours": [24]}, "rules.hours.0"),
        ({"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "rules.start"),
        ({"stages": []}, "rules.stages"),
    ],
)
def test_invalid_rules_are_422_naming_the_field(client, rules, field):
    body = {"placement": "home", "content": {"title": "t"}, "rules": rules}
    response = client.post("/v1/admin/banners", json=body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json["error"]["details"]["errors"]]


def test_rules_target_the_real_time_profile(live, clock):
    create(live, "decision", rules={"stages": ["decision"], "cart_value_min": 50}, priority=1)
    create(live, "everyone")
    assert shown_ids(live, n=5) == ["everyone"]
    send(live, {"type": "add_to_cart", "visitor_id": "v1", "item_id": "i1", "price": 60.0})
    answer = shown(live, n=5)
    assert [b["id"] for b in answer["banners"]] == ["decision", "everyone"]
    assert answer["banners"][0]["matched"] == {"stages": "decision", "cart_value_min": 60.0}
    assert answer["banners"][0]["reason"] == "in the decision stage; cart worth 60.0"
    assert answer["stage"] == "decision"


def test_a_segment_entered_as_time_passes(live, clock):
    create(live, "come-back", rules={"segments": ["cart_abandoner"]})
    send(live, {"type": "add_to_cart", "visitor_id": "v1", "item_id": "i1"})
    clock.advance(1799)
    assert shown_ids(live) == []
    clock.advance(1)
    assert shown_ids(live) == ["come-back"]


def test_frequency_cap_counts_todays_impressions(live, clock):
    create(live, "capped", frequency_cap_per_day=2, priority=1)
    create(live, "other")
    impression = {
        "type": "banner_impression",
        "visitor_id": "v1",
        "properties": {"banner_id": "capped", "placement": "home"},
    }
    send(live, impression)
    assert shown_ids(live) == ["capped"]
    send(live, impression)
    assert shown_ids(live) == ["other"]
    clock.advance(12 * 3600 + 1)  # past midnight UTC: a new day, a new cap
    assert shown_ids(live) == ["capped"]


def test_placement_filter_and_unknown_query_parameters(live):
    create(live, "home-1")
    create(live, "cart-1", placement="cart")
    assert shown_ids(live, placement="cart") == ["cart-1"]
    assert shown_ids(live, placement="checkout") == []
    assert live.get("/v1/visitors/v1/banners?placment=cart").status_code == 422
    assert live.get("/v1/visitors/v1/banners?n=0").status_code == 422


def test_a_deleted_banner_is_no_longer_shown(live):
    create(live, "gone")
    assert shown_ids(live) == ["gone"]
    live.delete("/v1/admin/banners/gone")
    assert shown_ids(live) == []


def test_admin_endpoints_need_the_admin_key(settings, clock):
    keyed = create_app(
        settings.replace(public_keys=("pub",), admin_keys=("adm",)), clock=clock
    ).test_client()
    body = {"placement": "home", "content": {"title": "t"}}
    denied = keyed.post("/v1/admin/banners", json=body, headers={"X-API-Key": "pub"})
    assert denied.status_code == 403
    made = keyed.post("/v1/admin/banners", json=body, headers={"X-API-Key": "adm"})
    assert made.status_code == 201
    public = keyed.get("/v1/visitors/v1/banners", headers={"X-API-Key": "pub"})
    assert public.status_code == 200 and len(public.json["banners"]) == 1


# --- links (issue 13) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        "/cart",  # refused before as "Not a valid URL"
        "/p/sku-1?ref=banner#top",
        "/",
        "https://shop.example.com/sale",
        "http://localhost:8000/cart",
    ],
)
def test_storefront_paths_and_http_urls_are_accepted(client, link):
    body = {"placement": "home", "content": {"title": "t", "link": link, "image_url": link}}
    response = client.post("/v1/admin/banners", json=body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["content"]["link"] == link


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "java\tscript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "//evil.example.com/x",
        "/\\evil.example.com",
        "cart",
        "",
        "https://" + "a" * 2100 + ".com",
    ],
)
def test_other_schemes_and_tricks_are_422(client, redis_conn, keys, link):
    for field in ("link", "image_url"):
        body = {"placement": "home", "content": {"title": "t", field: link}}
        response = client.post("/v1/admin/banners", json=body)
        assert response.status_code == 422, (field, link)
        errors = response.get_json()["error"]["details"]["errors"]
        assert [e["field"] for e in errors] == [f"content.{field}"]
    assert not redis_conn.exists(keys.banners())
