"""The hand parser of the banner query: the schema's answer for plain queries without the
schema, the schema's own answer (errors included) for everything else."""

from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import MultiDict

from recsvc.api import banners
from recsvc.api.query_parser import QuickQueryParser, plain_int, single_values

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

    parser = QuickQueryParser(Mine, lambda _args: {"n": 99})
    with Flask(__name__).test_request_context("/?n=1"):
        assert parser.parse(Mine(), location="query") == {"n": 99}
        assert parser.parse(Other(), location="query") == {"n": 1}
