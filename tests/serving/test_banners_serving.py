"""Banners ranked by model vectors for known visitors, and served without Redis."""

import numpy as np


def create(client, banner_id, **fields):
    body = {"id": banner_id, "placement": "home", "content": {"title": banner_id}, **fields}
    assert client.post("/v1/admin/banners", json=body).status_code == 201


def category_scores(artifact, items, user_row):
    """The user's model score for each category's centroid, as the service ranks them."""
    category_of = {item["item_id"]: item["category"] for item in items}
    rows: dict[str, list[int]] = {}
    for row, item_id in enumerate(artifact.item_ids):
        rows.setdefault(category_of[str(item_id)], []).append(row)
    user = artifact.user_factors[user_row]
    return {c: float(artifact.item_factors[r].mean(axis=0) @ user) for c, r in rows.items()}


def test_equal_priority_banners_ranked_by_the_model_vector(served):
    client, _svc, artifact, items = served
    scores = category_scores(artifact, items, 0)
    best, worst = max(scores, key=scores.get), min(scores, key=scores.get)
    create(client, "worst", promotes={"categories": [worst]})
    create(client, "best", promotes={"categories": [best]})
    body = client.get(f"/v1/visitors/{artifact.user_ids[0]}/banners?n=2").json
    assert [b["id"] for b in body["banners"]] == ["best", "worst"]
    assert np.isclose(body["banners"][0]["affinity"], scores[best], atol=1e-4)


def test_unknown_visitors_are_ranked_by_their_recent_items(served):
    client, _svc, _artifact, items = served
    shoes = [i for i in items if i["category"] == items[0]["category"]][:2]
    other = next(i["category"] for i in items if i["category"] != items[0]["category"])
    create(client, "other", promotes={"categories": [other]})
    create(client, "mine", promotes={"categories": [items[0]["category"]]})
    events = [
        {"type": "product_view", "visitor_id": "anon-b", "item_id": i["item_id"]} for i in shoes
    ]
    client.post("/v1/events", json={"events": events})
    body = client.get("/v1/visitors/anon-b/banners?n=2").json
    assert [b["id"] for b in body["banners"]] == ["mine", "other"]
    assert body["banners"][0]["affinity"] == 1.0


def test_redis_down_targets_a_new_visitor_from_memory(served, cut_redis):
    client, svc, artifact, _items = served
    create(client, "returning", rules={"visitor_type": "returning"}, priority=1)
    create(client, "welcome", rules={"visitor_type": "new"})
    visitor = str(artifact.user_ids[0])
    visits = [
        {"type": "page_view", "visitor_id": visitor, "timestamp": f"2026-03-{day}T10:00:00Z"}
        for day in ("08", "09")
    ]
    client.post("/v1/events", json={"events": visits})
    body = client.get(f"/v1/visitors/{visitor}/banners").json
    assert body["fallback"] is None and body["banners"][0]["id"] == "returning"
    restore = cut_redis(svc)
    for _ in range(4):  # timeouts, then the open breaker answers at once
        body = client.get(f"/v1/visitors/{visitor}/banners").json
        assert body["fallback"] == "unavailable"
        assert [b["id"] for b in body["banners"]] == ["welcome"]
    restore()


def test_a_banner_set_holds_each_placements_banners_in_stored_order():
    from recsvc.serving.banners import BannerSet

    stored = [
        {"id": "a", "placement": "home", "rules": {}},
        {"id": "b", "placement": "cart", "rules": {"categories": ["socks"]}},
        {"id": "c", "placement": "home", "rules": {}, "promotes": {"items": ["i1"]}},
    ]
    held = BannerSet.of(stored)
    assert [b["id"] for b in held.at("home")] == ["a", "c"]
    assert held.at("checkout") == [] and held.at(None) == stored
    assert held.promoted["b"] == (frozenset(), frozenset({"socks"}))
    assert held.promoted["c"] == (frozenset({"i1"}), frozenset())


def test_preload_reads_the_banners_and_categories_before_any_request(app, client):
    create(client, "early")
    service = app.extensions["recsvc"].banner_service
    service.preload()
    assert [b["id"] for b in service.banners.value.banners] == ["early"]
    assert service.banners.held_version >= 1
