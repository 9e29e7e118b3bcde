"""``recsvc demo``: the whole loop on one machine, in one command.

Generates a small synthetic storefront, trains an ALS model on it and publishes it to Redis
(the embedded one unless ``REDIS_URL`` is set), starts the service under gunicorn with API
keys of every role and an identity secret, replays the store's event log into it with the
server key (the log's events carry user ids, which only a server key may assert), and
prints ready ``curl`` lines: storefront calls with the public key, a profile read with an
identity token minted as a store's backend would, analytics with the analyst key. Ctrl-C
stops everything it started.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from recsvc.eventlog.reader import iter_records
from recsvc.identity.tokens import mint_token
from recsvc.keys import KeySpace
from recsvc.redis_client import EmbeddedRedis, connect, start_embedded
from recsvc.schemas.banners import BannerSchema
from recsvc.scoring.artifact import ModelArtifact
from recsvc.settings import Settings
from recsvc.store.banners import BannerStore
from recsvc.store.catalog import CatalogStore
from recsvc.store.models import ModelStore
from recsvc.store.namespace import delete_namespace
from recsvc.synth import generator
from recsvc.synth import replay as replayer

# Its own key namespace: the demo never touches a deployment's keys on a shared Redis.
DEMO_NAMESPACE = "recsvc-demo"
# The demo's API keys (it listens on loopback only); the identity secret is new each run.
DEMO_KEYS = {
    "RECSVC_PUBLIC_KEYS": "demo-public",
    "RECSVC_ANALYST_KEYS": "demo-analyst",
    "RECSVC_SERVER_KEYS": "demo-server",
    "RECSVC_ADMIN_KEYS": "demo-admin",
}


@click.command()
@click.option("--port", default=8000, show_default=True)
@click.option("--visitors", default=3000, show_default=True, help="Size of the sample store.")
@click.option("--items", default=400, show_default=True)
@click.option("--days", default=14, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--no-wait", is_flag=True, help="Stop after printing the curl lines.")
def demo(port: int, visitors: int, items: int, days: int, seed: int, no_wait: bool) -> None:
    """Generate a sample store, train and publish a model, serve, replay, print curl lines."""
    settings = Settings.from_env()
    store = settings.data_dir / "demo" / "store"
    click.secho("1/5 generating a sample storefront", bold=True)
    config = generator.GenerateConfig(
        visitors=visitors,
        items=items,
        days=days,
        seed=seed,
        out=store,
        end_date=datetime.now(UTC).date(),
    )
    result = generator.generate(config, progress=True)
    click.echo(f"    {result.events:,} events in {store}")
    click.secho("2/5 training an ALS model", bold=True)
    artifact = _train(store, settings.data_dir / "demo" / "models")

    _interrupt_on_sigterm()
    embedded = None if settings.redis_url else start_embedded(settings.data_dir)
    server = None
    secret = secrets.token_urlsafe(32)
    try:
        redis_url = settings.redis_url or embedded.url
        _publish(redis_url, artifact, store)
        click.secho(f"4/5 serving on http://127.0.0.1:{port}", bold=True)
        server = _start_server(port, redis_url, secret)
        _wait_ready(port, server)
        click.secho("5/5 replaying the store's events into the service", bold=True)
        base = f"http://127.0.0.1:{port}"
        server_key = DEMO_KEYS["RECSVC_SERVER_KEYS"]
        sent = replayer.replay(base, store, 500, server_key, None, progress=True)
        click.echo(f"    {sent.sent:,} events accepted")
        click.echo(_curl_lines(base, store, secret))
        if not no_wait:
            click.echo("Ctrl-C to stop.")
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop(server, embedded)


def _interrupt_on_sigterm() -> None:
    """A ``kill`` stops the demo as Ctrl-C does: its server and embedded Redis stop too."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _publish(redis_url: str, artifact: ModelArtifact, store: Path) -> None:
    """The model, the catalog and the sample banners, in a namespace emptied first."""
    _clear_namespace(redis_url)
    click.secho(f"3/5 publishing {artifact.version} and the catalog to Redis", bold=True)
    client, keys = connect(redis_url), KeySpace(DEMO_NAMESPACE)
    ModelStore(client, keys).publish(artifact, progress=True)
    _load_catalog(CatalogStore(client, keys), store / "items.csv")
    _create_banners(BannerStore(client, keys))


def _train(store: Path, models_dir: Path) -> ModelArtifact:
    """Fit ALS on the sample with parameters that suit it, evaluated like `recsvc train`."""
    from training.loaders import load_events
    from training.pipeline import TrainOptions, train
    from training.weights import load_weights

    interactions, _ = load_events(store / "events", "jsonl")
    options = TrainOptions(
        params={"factors": 32, "alpha": 10.0, "regularization": 0.5},
        compare=("als", "itemknn", "popular"),
        ground_truth=store / "ground_truth.jsonl",
        show_progress=False,
    )
    result = train(interactions, load_weights(), options)
    result.artifact.save(models_dir)
    metrics = result.artifact.manifest["metrics"]
    figures = ", ".join(f"{name} {m['ndcg@10']:.3f}" for name, m in metrics.items())
    click.echo(f"    {result.artifact.version}: NDCG@10 on the last 7 days: {figures}")
    return result.artifact


def _catalog_rows(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [
            {
                "item_id": row["item_id"],
                "category": row["category"],
                "price": float(row["price"]),
                "in_stock": row["in_stock"] == "true",
                "title": f"Item {row['item_id']} ({row['category']})",
            }
            for row in csv.DictReader(handle)
        ]


def _load_catalog(catalog: CatalogStore, path: Path) -> None:
    """The generated catalog, so tiles carry titles and filters know categories and stock."""
    rows = _catalog_rows(path)
    for start in range(0, len(rows), 1000):
        catalog.upsert(rows[start : start + 1000])


# Two banners for the curl lines: one for visitors who left a cart, one for everybody.
DEMO_BANNERS = [
    {
        "id": "demo-cart-rescue",
        "placement": "home",
        "priority": 10,
        "content": {"title": "Still thinking it over?", "cta": "Back to your cart"},
        "rules": {"segments": ["cart_abandoner"]},
        "frequency_cap_per_day": 3,
    },
    {
        "id": "demo-welcome",
        "placement": "home",
        "content": {"title": "New this week", "cta": "Have a look"},
    },
]


def _create_banners(banners: BannerStore) -> None:
    for body in DEMO_BANNERS:
        banners.create(BannerSchema().load(body))


def _clear_namespace(redis_url: str) -> None:
    """Start from nothing, so running the demo twice does not replay the store twice."""
    delete_namespace(connect(redis_url), DEMO_NAMESPACE)


def _start_server(port: int, redis_url: str, secret: str) -> subprocess.Popen:
    # The demo's own output matters more than per-request access logs.
    env = {"RECSVC_LOG_LEVEL": "WARNING", **os.environ, **DEMO_KEYS}
    env.update(REDIS_URL=redis_url, RECSVC_NAMESPACE=DEMO_NAMESPACE, RECSVC_IDENTITY_SECRETS=secret)
    command = [sys.executable, "-m", "recsvc.cli", "serve", "--port", str(port)]
    return subprocess.Popen(command, env=env)


def _wait_ready(port: int, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise click.ClickException("the service exited; is the port free?")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise click.ClickException("the service did not become ready")


def _stop(server: subprocess.Popen | None, embedded: EmbeddedRedis | None) -> None:
    if server is not None and server.poll() is None:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    if embedded is not None:
        embedded.stop()


def _curl_lines(base: str, store: Path, secret: str) -> str:
    """Ready commands: a sample visitor who left a cart, and a new visitor who views three
    items of one category (the session strategy brings that category back). Storefront
    calls carry the public key; reads about the sample visitor (recommendations, profile,
    nudges) also the visitor's identity token, as the store's backend would put it in the
    page; the funnel the analyst key."""
    carts: dict[str, int] = {}
    users: dict[str, str] = {}
    for record in iter_records(store / "events"):
        if record.get("user_id"):
            users[record["visitor_id"]] = record["user_id"]
        if record["type"] == "add_to_cart":
            carts[record["visitor_id"]] = carts.get(record["visitor_id"], 0) + 1
        elif record["type"] == "purchase":
            carts.pop(record["visitor_id"], None)
    visitor = max(carts, key=carts.get) if carts else "v-demo"
    rows = _catalog_rows(store / "items.csv")
    category = rows[0]["category"]
    viewed = [row["item_id"] for row in rows if row["category"] == category][:3]
    views = json.dumps(
        {"events": [{"type": "product_view", "visitor_id": "v-new", "item_id": i} for i in viewed]}
    )
    cart = json.dumps({"items": viewed[:2], "n": 5})
    pretty = "| python -m json.tool"
    key = f"-H 'X-API-Key: {DEMO_KEYS['RECSVC_PUBLIC_KEYS']}'"
    analyst = f"-H 'X-API-Key: {DEMO_KEYS['RECSVC_ANALYST_KEYS']}'"
    # As the store's backend would: the browser's visitor id, and its user when logged in.
    token = mint_token(secret, user_id=users.get(visitor), visitor_id=visitor, ttl_seconds=86400)
    proof = f"-H 'X-Identity-Token: {token}'"
    json_body = "-H 'Content-Type: application/json'"
    return "\n".join(
        [
            "",
            "Try (keys: public demo-public, analyst demo-analyst, server demo-server, admin "
            "demo-admin):",
            f"  curl -s {key} {proof} \\\n      {base}/v1/visitors/{visitor}/recommendations "
            f"{pretty}   # theirs: the token proves the visitor",
            f"  curl -s {key} {proof} \\\n      {base}/v1/visitors/{visitor}/profile {pretty}"
            "   # the browser's view: its token",
            f"  curl -s {analyst} {base}/v1/visitors/{visitor}/profile {pretty}   # the full one",
            f"  curl -s {key} -X POST {base}/v1/events {json_body} -d '{views}'",
            f"  curl -s {key} '{base}/v1/visitors/v-new/recommendations?n=5' {pretty}"
            f"   # {category}, from 3 views",
            f"  curl -s {key} '{base}/v1/items/{viewed[0]}/similar?n=5' {pretty}",
            f"  curl -s {key} -X POST {base}/v1/recommendations/cart {json_body}"
            f" -d '{cart}' {pretty}",
            f"  curl -s {key} '{base}/v1/visitors/{visitor}/banners?placement=home' {pretty}",
            f"  curl -s {key} {proof} \\\n      {base}/v1/visitors/{visitor}/nudges {pretty}"
            "   # the cart they left",
            f"  curl -s {analyst} '{base}/v1/analytics/funnel' {pretty}",
            f"  open {base}/docs  (the API, from its OpenAPI document)",
            "",
        ]
    )
