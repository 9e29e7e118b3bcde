"""The storefront load test run whole: locust headless against a running service, with the
SLOs deciding its exit code (in a subprocess: locust patches the process with gevent)."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from loadtests.server import KEYS, running_service
from recsvc.eventlog.reader import iter_records
from recsvc.keys import KeySpace
from recsvc.scoring.artifact import ModelArtifact
from recsvc.store.catalog import CatalogStore
from recsvc.store.models import ModelStore
from recsvc.synth.generator import GenerateConfig, generate

pytestmark = pytest.mark.slow
LOCUST = Path(sys.executable).with_name("locust")
LOCUSTFILE = Path(__file__).parents[2] / "loadtests" / "locustfile.py"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A generated store and a model of its items and visitors (random factors)."""
    root = tmp_path_factory.mktemp("shop")
    generate(
        GenerateConfig(
            visitors=300, items=60, days=5, seed=5, out=root / "store", end_date=date(2026, 3, 1)
        )
    )
    with (root / "store" / "items.csv").open() as handle:
        items = list(csv.DictReader(handle))
    visitors = list(dict.fromkeys(r["visitor_id"] for r in iter_records(root / "store")))[:50]
    rng = np.random.default_rng(0)
    artifact = ModelArtifact(
        version="lt-v1",
        manifest={"model": "als", "created": "test", "params": {"factors": 8}},
        item_ids=[i["item_id"] for i in items],
        user_ids=visitors,
        item_factors=rng.normal(size=(len(items), 8)),
        user_factors=rng.normal(size=(len(visitors), 8)),
        popular=np.arange(10),
        trending=np.arange(5),
        similar_items=np.stack(
            [np.roll(np.arange(len(items)), -k - 1)[:5] for k in range(len(items))]
        ),
        similar_scores=np.ones((len(items), 5)),
    )
    return root / "store", artifact.save(root / "models"), artifact, items


@pytest.fixture
def service(shop, settings, redis_conn, keys: KeySpace):
    _store, _folder, artifact, items = shop
    ModelStore(redis_conn, keys).publish(artifact)
    CatalogStore(redis_conn, keys).upsert(
        [
            {"item_id": i["item_id"], "category": i["category"], "price": float(i["price"])}
            for i in items
        ]
    )
    extra = {"RECSVC_CART_ABANDON_SECONDS": "2", "RECSVC_NUDGE_QUIET_HOURS": ""}
    with running_service(
        settings.redis_url, namespace=settings.namespace, workers=1, settings=extra
    ) as svc:
        yield svc


def run_locust(service, shop, slo: Path, seconds: int) -> subprocess.CompletedProcess:
    store, model, _artifact, _items = shop
    command = [str(LOCUST), "-f", str(LOCUSTFILE), "--host", service.url, "--headless"]
    command += ["-u", "4", "-r", "4", "-t", f"{seconds}s", "--only-summary"]
    command += ["--store", str(store), "--model", str(model), "--slo", str(slo)]
    command += ["--api-key", KEYS["admin"]]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_met_slos_exit_0_and_every_page_asks_for_its_reads(service, shop, tmp_path):
    slo = tmp_path / "slo.toml"
    slo.write_text(
        "[default]\np95_ms = 5000\np99_ms = 5000\nerror_rate = 0.0\n"
        + "".join(
            f'[endpoint."{name}"]\n'
            for name in ("GET recommendations", "GET banners", "GET nudges", "POST events")
        )
    )
    done = run_locust(service, shop, slo, seconds=8)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SLOs met" in done.stderr
    assert "journeys: " in done.stderr and "landing pages" in done.stderr


def test_a_missed_slo_exits_1_naming_it(service, shop, tmp_path):
    slo = tmp_path / "slo.toml"
    slo.write_text('[endpoint."GET recommendations"]\np95_ms = 0\n[endpoint."GET nothing"]\n')
    done = run_locust(service, shop, slo, seconds=3)
    assert done.returncode == 1
    assert "GET recommendations: p95" in done.stderr
    assert "GET nothing: no request" in done.stderr
