"""The hand parsers of the hot queries (banners, recommendations, similar items): the
schema's answer for plain queries without the schema, the schema's own answer (errors
included) for everything else."""

import json

import pytest
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import MultiDict

from recsvc.api import banners, recommendations, similar
from recsvc.api.quick_parser import QuickParser, plain_int, single_values

QUERIES = [
    "",
    "placement=home",
    "n=3",
    "n=20&placement=cart",
    "placement=a:b/c-d",
    # The hand parser steps aside for these: the schema decides.
    "n=0",
    "n=21",
    "n=01",
    "n=+3",
    "n=%203",
    "n=3.0",
    "n=",
    "placement=",
    "placement=a%20b",
    "placement=home&placement=cart",
    "placment=cart",
    "placement=home&extra=1",
]


def answers(client):
    return {
        query: (response.status_code, response.json)
        for query in QUERIES
        for response in [client.get(f"/v1/visitors/v1/banners?{query}")]
    }


def test_every_query_is_answered_as_the_schema_answers_it(app, monkeypatch):
    client = app.test_client()
    quick = answers(client)
    monkeypatch.setattr(banners.visitor_blp.ARGUMENTS_PARSER, "quick", lambda _args: None)
    assert quick == answers(client)
    assert quick["n=0"][0] == quick["placment=cart"][0] == 422


def test_plain_queries_do_not_load_the_schema(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the schema was loaded")

    monkeypatch.setattr(FlaskParser, "parse", refuse)
    for query in ("", "placement=home", "n=2&placement=checkout"):
        assert client.get(f"/v1/visitors/v1/banners?{query}").status_code == 200
    for query in ("", "n=10", "n=3&category=c01"):
        assert client.get(f"/v1/visitors/v1/recommendations?{query}").status_code == 200
        assert client.get(f"/v1/items/sku-1/similar?{query}").status_code != 500


def test_the_hand_parser_vouches_only_for_plain_values():
    assert banners.quick_banners_query(MultiDict()) == {"n": 1}
    assert banners.quick_banners_query(MultiDict([("placement", "home"), ("n", "5")])) == {
        "n": 5,
        "placement": "home",
    }
    assert single_values(MultiDict([("a", "1"), ("a", "2")]), frozenset({"a"})) is None
    assert single_values(MultiDict([("b", "1")]), frozenset({"a"})) is None
    assert [plain_int(text, 1, 20) for text in ("1", "20", "0", "21", "07", "٣", "-1")] == [
        1,
        20,
        None,
        None,
        None,
        None,
        None,
    ]


def test_only_queries_of_its_schema_are_parsed_by_hand():
    from flask import Flask
    from marshmallow import Schema, fields

    class Mine(Schema):
        n = fields.Integer()

    class Other(Schema):
        n = fields.Integer()

    parser = QuickParser(Mine, lambda _args: {"n": 99})
    with Flask(__name__).test_request_context("/?n=1"):
        assert parser.parse(Mine(), location="query") == {"n": 99}
        assert parser.parse(Other(), location="query") == {"n": 1}


LIST_QUERIES = [
    "",
    "n=1",
    "n=100",
    "category=c01",
    "n=5&category=" + "c" * 128,
    # Left to the schema:
    "n=0",
    "n=101",
    "n=05",
    "n=x",
    "category=",
    "category=" + "c" * 129,
    "category=a&category=b",
    "in_stock=false",
    "n=5&exclude=i1,i2",
    "diversity=0.5",
    "ctegory=c01",
]


@pytest.mark.parametrize(
    ("blueprint", "path"),
    [
        (recommendations.blp, "/v1/visitors/v1/recommendations"),
        (similar.blp, "/v1/items/sku-1/similar"),
    ],
)
def test_list_queries_are_answered_as_the_schema_answers_them(app, monkeypatch, blueprint, path):
    client = app.test_client()

    def list_answers():
        return {
            query: (response.status_code, response.json)
            for query in LIST_QUERIES
            for response in [client.get(f"{path}?{query}")]
        }

    quick = list_answers()
    monkeypatch.setattr(blueprint.ARGUMENTS_PARSER, "quick", lambda _args: None)
    assert quick == list_answers()
    assert quick["n=0"][0] == quick["ctegory=c01"][0] == 422


def test_the_list_parser_loads_the_schemas_defaults():
    quick = recommendations.blp.ARGUMENTS_PARSER.quick
    assert quick(MultiDict()) == {"n": 10, "exclude_seen": False, "boost": 2.0}
    assert quick(MultiDict([("n", "3"), ("category", "c01")])) == {
        "n": 3,
        "exclude_seen": False,
        "boost": 2.0,
        "category": "c01",
    }
    assert similar.blp.ARGUMENTS_PARSER.quick(MultiDict([("n", "7")])) == {"n": 7}


CART_BODIES = [
    {"items": ["sku-1", "sku-2"]},
    {"items": ["sku-1"], "n": 50},
    {"items": ["sku-1"], "n": 1, "visitor_id": "v-1"},
    {"items": [f"sku-{i}" for i in range(100)]},
    # Left to the schema:
    {"items": []},
    {"items": [f"sku-{i}" for i in range(101)]},
    {"items": [1, 2]},
    {"items": ["sku 1"]},
    {"items": "sku-1"},
    {"items": ["sku-1"], "n": 0},
    {"items": ["sku-1"], "n": 51},
    {"items": ["sku-1"], "n": True},
    {"items": ["sku-1"], "n": 10.0},
    {"items": ["sku-1"], "visitor_id": None},
    {"items": ["sku-1"], "visitor_id": "a b"},
    {"items": ["sku-1"], "extra": 1},
    {"n": 5},
    ["sku-1"],
    None,
]


def test_cart_bodies_are_answered_as_the_schema_answers_them(app, monkeypatch):
    client = app.test_client()

    def cart_answers():
        answers = {}
        for body in CART_BODIES:
            response = client.post("/v1/recommendations/cart", json=body)
            answers[json.dumps(body)] = (response.status_code, response.json)
        for raw, mimetype in (
            ("{not json", "application/json"),
            ('{"items": ["a"]}', "text/plain"),
        ):
            response = client.post("/v1/recommendations/cart", data=raw, content_type=mimetype)
            answers[raw + mimetype] = (response.status_code, response.json)
        return answers

    quick = cart_answers()
    monkeypatch.setattr(similar.blp.ARGUMENTS_PARSER, "quick_body", None)
    assert quick == cart_answers()
    statuses = [status for status, _ in quick.values()]
    assert statuses[:4] == [200] * 4 and statuses[4] == 422


def test_a_plain_cart_body_does_not_load_the_schema(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the schema was loaded")

    monkeypatch.setattr(FlaskParser, "parse", refuse)
    response = client.post("/v1/recommendations/cart", json={"items": ["sku-1"], "n": 3})
    assert response.status_code == 200
