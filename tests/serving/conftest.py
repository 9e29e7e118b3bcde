"""Fixtures for the serving tests: a real small model trained on a generated store (with
planted category structure), published to the test Redis with its catalog."""

import csv
from datetime import date

import pytest
import redis

from recsvc.store.catalog import CatalogStore
from recsvc.store.models import ModelStore
from recsvc.synth.generator import GenerateConfig, generate
from training.loaders import load_events
from training.pipeline import TrainOptions, train
from training.weights import load_weights


@pytest.fixture(scope="session")
def store_and_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    generate(
        GenerateConfig(
            visitors=2000, items=200, days=21, seed=11, out=out, end_date=date(2026, 3, 1)
        )
    )
    interactions, _ = load_events(out / "events", "jsonl")
    options = TrainOptions(
        params={"factors": 16, "alpha": 10.0, "regularization": 0.5},
        test_days=0,
        show_progress=False,
    )
    artifact = train(interactions, load_weights(), options).artifact
    with (out / "items.csv").open() as handle:
        items = [
            {
                "item_id": r["item_id"],
                "category": r["category"],
                "price": float(r["price"]),
                "in_stock": r["in_stock"] == "true",
                "title": f"Item {r['item_id']}",
            }
            for r in csv.DictReader(handle)
        ]
    return out, artifact, items


@pytest.fixture
def served(app, client, store_and_model):
    """The app with the model published, the catalog loaded and the holder refreshed."""
    from recsvc.web.services import Services

    _out, artifact, items = store_and_model
    svc: Services = app.extensions["recsvc"]
    CatalogStore(svc.client, svc.keys).upsert(items)
    ModelStore(svc.client, svc.keys).publish(artifact)
    svc.holder.refresh()
    return client, svc, artifact, items


@pytest.fixture
def cut_redis():
    """Point the recommender's fast client at a closed TCP port, whatever it used before
    (a TCP Redis, or the embedded one's unix socket), dropping the connections it holds;
    returns a function that points it back."""

    def cut(svc):
        pool = svc.reader.client.connection_pool
        saved = pool.connection_class, pool.connection_kwargs
        dead = {k: v for k, v in saved[1].items() if k != "path"}
        pool.connection_class = redis.Connection
        pool.connection_kwargs = {**dead, "host": "127.0.0.1", "port": 1}
        pool.disconnect()
        pool.reset()

        def restore():
            pool.connection_class, pool.connection_kwargs = saved
            pool.disconnect()
            pool.reset()

        return restore

    return cut
