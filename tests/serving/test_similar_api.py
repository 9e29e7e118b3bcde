"""GET /v1/items/<id>/similar against real Redis and a real trained model."""

import numpy as np
import pytest

from recsvc.store.catalog import CatalogStore


def similar(client, item, **query):
    response = client.get(f"/v1/items/{item}/similar", query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def popular_ids(artifact, count):
    return [str(artifact.item_ids[int(row)]) for row in artifact.popular[:count]]


def test_similar_items_are_mostly_of_the_item_category(served):
    """The generated store plants categories: visitors browse within a few. Chance
    agreement here is about 0.15 (the sum of squared category shares)."""
    client, _svc, artifact, items = served
    category = {i["item_id"]: i["category"] for i in items}
    same = total = 0
    for item in popular_ids(artifact, 20):
        body = similar(client, item, n=10)
        assert body["item_id"] == item and body["fallback"] is None
        assert body["model_version"] == artifact.version
        assert len(body["items"]) == 10
        returned = [i["item_id"] for i in body["items"]]
        assert item not in returned and len(set(returned)) == 10
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)
        assert {i["reason"] for i in body["items"]} == {f"similar to {item}"}
        assert all("title" in i for i in body["items"])  # catalog fields for the tile
        same += sum(i["category"] == category[item] for i in body["items"])
        total += len(body["items"])
    assert same / total >= 0.4, same / total


def test_answer_follows_the_published_list(served):
    client, _svc, artifact, items = served
    in_stock = {i["item_id"] for i in items if i["in_stock"]}
    row = int(artifact.popular[0])
    listed = [str(artifact.item_ids[r]) for r in artifact.similar_items[row] if r >= 0]
    expected = [i for i in listed if i in in_stock][:10]  # the catalog knows stock
    returned = [i["item_id"] for i in similar(client, artifact.item_ids[row])["items"]]
    assert returned == expected


def test_filters(served):
    client, svc, artifact, items = served
    item = popular_ids(artifact, 1)[0]
    first = [i["item_id"] for i in similar(client, item, n=5)["items"]]
    again = similar(client, item, n=5, exclude=",".join(first[:2]))["items"]
    assert len(again) == 5 and not set(first[:2]) & {i["item_id"] for i in again}
    for category in sorted({i["category"] for i in items}):
        only = similar(client, item, n=5, category=category)["items"]
        assert len(only) == 5 and all(i["category"] == category for i in only)
    # Stock: by default in stock only (the catalog knows stock); in_stock=false lifts it.
    out_of_stock = {i["item_id"] for i in items if not i["in_stock"]}
    wide = similar(client, item, n=100)["items"]
    assert not out_of_stock & {i["item_id"] for i in wide}
    anything = similar(client, item, n=100, in_stock="false")["items"]
    assert out_of_stock & {i["item_id"] for i in anything}
    CatalogStore(svc.client, svc.keys).upsert([{"item_id": first[0], "in_stock": False}])
    svc.holder.refresh()
    assert first[0] not in [i["item_id"] for i in similar(client, item, n=5)["items"]]


def test_a_list_filtered_short_is_topped_up_from_the_factors(served):
    client, _svc, artifact, _items = served
    row = int(artifact.popular[0])
    item = str(artifact.item_ids[row])
    listed = [str(artifact.item_ids[r]) for r in artifact.similar_items[row] if r >= 0]
    # Every listed item excluded: the whole answer is the top-up.
    body = similar(client, item, n=10, exclude=",".join(listed), in_stock="false")
    returned = [i["item_id"] for i in body["items"]]
    assert len(returned) == 10 and item not in returned
    assert not set(returned) & set(listed)
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # ...the factor neighbours among the rest: from the 4 × 10 best dot products, those
    # of highest cosine, scored by cosine.
    factors = np.asarray(artifact.item_factors, np.float32)
    dots = factors @ factors[row]
    cosines = dots / (np.linalg.norm(factors, axis=1) * np.linalg.norm(factors[row]))
    ids = [str(i) for i in artifact.item_ids]
    rest = [i for i in range(len(ids)) if ids[i] not in set(listed) | {item}]
    by_dot = sorted(rest, key=lambda i: -dots[i])[:40]
    assert set(returned) == set(
        sorted((ids[i] for i in by_dot), key=lambda i: -cosines[ids.index(i)])[:10]
    )
    assert scores == pytest.approx([float(cosines[ids.index(i)]) for i in returned], abs=1e-4)
    best_rest = max(float(cosines[i]) for i in rest)
    assert scores[0] >= 0.8 * best_rest  # close to the exact cosine top
    # More than the list holds: 50 listed, then the top-up, still best first.
    many = similar(client, item, n=80, in_stock="false")["items"]
    assert [i["item_id"] for i in many][: len(listed)] == listed and len(many) == 80
    assert [i["score"] for i in many] == sorted((i["score"] for i in many), reverse=True)


def test_category_with_few_listed_items_is_topped_up(served):
    client, _svc, artifact, items = served
    category = {i["item_id"]: i["category"] for i in items}
    row = int(artifact.popular[0])
    listed = [str(artifact.item_ids[r]) for r in artifact.similar_items[row] if r >= 0]
    counts = {c: sum(category[i] == c for i in listed) for c in set(category.values())}
    rare = min(counts, key=counts.get)
    size = sum(c == rare for c in category.values())
    n = min(size, counts[rare] + 5)
    body = similar(client, artifact.item_ids[row], n=n, category=rare, in_stock="false")
    assert len(body["items"]) == n > counts[rare]
    assert all(i["category"] == rare for i in body["items"])


def test_unknown_item_is_404_and_bad_queries_422(served):
    client, *_ = served
    response = client.get("/v1/items/no-such-item/similar")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    for query in ({"n": 0}, {"n": 101}, {"bogus": 1}, {"in_stock": "maybe"}):
        response = client.get("/v1/items/i000001/similar", query_string=query)
        assert response.status_code == 422, query
        assert response.json["error"]["code"] == "validation_error"
    response = client.get("/v1/items/bad%20id/similar")
    assert response.status_code == 422
    assert response.json["error"]["details"]["errors"][0]["field"] == "item_id"


def test_item_details_still_route_to_the_catalog(served):
    client, _svc, artifact, _items = served
    item = popular_ids(artifact, 1)[0]
    response = client.get(f"/v1/items/{item}")
    assert response.status_code == 200 and response.json["item_id"] == item
    # An id with a slash: the similar rule takes everything before "/similar".
    assert client.get("/v1/items/shop/x/similar").status_code == 404


def test_no_model_yet_is_an_empty_fallback(client):
    response = client.get("/v1/items/i000001/similar")
    assert response.status_code == 200
    assert response.json == {
        "item_id": "i000001",
        "items": [],
        "model_version": None,
        "fallback": "popular",
    }


def test_redis_down_answers_from_the_model_in_memory(served, cut_redis):
    """Similar items, their tiles included, come from the worker's memory: Redis down
    changes nothing, not even the breaker."""
    client, svc, artifact, _items = served
    item = popular_ids(artifact, 1)[0]
    before = similar(client, item, n=5)["items"]
    assert all("title" in i for i in before)
    cut_redis(svc)
    for _ in range(5):
        body = similar(client, item, n=5)
        assert body["items"] == before
        assert body["model_version"] == artifact.version and body["fallback"] is None
    assert svc.reader.breaker.state == "closed"


def test_tiles_outside_the_model_are_read_and_close_the_breaker(served, cut_redis, clock):
    """Items the model does not hold (a cart line, say) get their tiles from Redis: when
    that read is a half-open trial it must close the breaker, or it would stay half-open
    for every endpoint."""
    _client, svc, _artifact, _items = served
    svc.catalog.upsert([{"item_id": "new-item", "title": "New"}])
    tiles = svc.tiles
    restore = cut_redis(svc)
    for _ in range(4):
        assert tiles.add([{"item_id": "new-item"}]) == [{"item_id": "new-item"}]
    assert tiles.breaker.state == "open"
    restore()
    clock.advance(svc.settings.breaker_reset_seconds)
    assert tiles.add([{"item_id": "new-item"}]) == [{"item_id": "new-item", "title": "New"}]
    assert tiles.breaker.state == "closed"
