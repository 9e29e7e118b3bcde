"""The application factory."""

from __future__ import annotations

import logging

from flask import Flask
from flask_smorest import Api
from flask_swagger_ui import get_swaggerui_blueprint

from recsvc import __version__
from recsvc.api import (
    admin_models,
    analytics,
    banners,
    catalog,
    events,
    nudges,
    ops,
    recommendations,
    similar,
    visitors,
)
from recsvc.clock import Clock
from recsvc.identity.tokens import check_secrets
from recsvc.redis_client import start_embedded
from recsvc.schemas.catalog import CatalogItemSchema, CatalogUpsertSchema
from recsvc.schemas.common import ApiErrorSchema, item_id_property
from recsvc.schemas.events import EVENT_SCHEMA_RULES, EventBatchSchema, EventSchema
from recsvc.settings import Settings
from recsvc.web import auth, client_address, logs, metrics, rate_limit, request_guard
from recsvc.web.errors import register_error_handlers
from recsvc.web.json_body import StrictJSONProvider
from recsvc.web.services import EXTENSION, Services

API_BLUEPRINTS = (
    events.blp,
    visitors.blp,
    recommendations.blp,
    similar.blp,
    analytics.blp,
    catalog.items_blp,
    catalog.admin_blp,
    admin_models.blp,
    banners.admin_blp,
    banners.visitor_blp,
    nudges.blp,
)


class _Api(Api):
    # The "default" response of every operation documents the error shape we answer
    # (recsvc.web.errors), not flask-smorest's own.
    ERROR_SCHEMA = ApiErrorSchema


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Flask:
    """Build the service. Settings default to the environment; without a Redis URL an
    embedded Redis is started under ``settings.data_dir`` for this process."""
    settings = settings or Settings.from_env()
    logs.configure_logging(settings.log_level)
    check_secrets(settings.identity_secrets)
    rate_limit.check_bursts(settings)
    app = Flask("recsvc")
    # Route paths as written: merging "//" redirected with an HTML body, or matched a
    # route under a spelling that prefix checks did not expect.
    app.url_map.merge_slashes = False
    app.json = StrictJSONProvider(app)
    app.json.max_depth = settings.max_json_depth
    if not settings.redis_url:
        embedded = start_embedded(settings.data_dir)
        app.extensions["recsvc_embedded_redis"] = embedded
        settings = settings.replace(redis_url=embedded.url)
    app.config.update(_flask_config(settings))
    app.extensions[EXTENSION] = Services.build(settings, clock)
    # Order matters: request id first, so metrics and refusals are logged with it; then
    # oversized requests, refused before any key is looked up.
    logs.init_app(app)
    metrics.init_app(app)
    request_guard.init_app(app, settings)
    auth.init_app(app, settings)
    rate_limit.init_app(app)  # after auth: the key decides whether a request is limited
    client_address.init_app(app, settings)
    _warn_without_identity(settings)
    _init_api(app)
    app.register_blueprint(ops.blp)
    app.register_blueprint(
        get_swaggerui_blueprint("/docs", "/openapi.json", config={"app_name": "recsvc API"}),
        url_prefix="/docs",
    )
    register_error_handlers(app)
    return app


def _warn_without_identity(settings: Settings) -> None:
    if settings.auth_enabled and not settings.identity_secrets:
        logging.getLogger(__name__).warning(
            "RECSVC_IDENTITY_SECRETS is not set: events with a user_id and profile reads "
            "need a server key (a public key cannot prove an identity)"
        )


def _flask_config(settings: Settings) -> dict:
    return {
        "RECSVC_SETTINGS": settings,
        "MAX_CONTENT_LENGTH": settings.max_body_bytes,
        "API_TITLE": "recsvc",
        "API_VERSION": __version__,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
    }


def _init_api(app: Flask) -> None:
    api = _Api(
        app,
        spec_kwargs={
            "info": {"description": "Onsite personalization and recommendations."},
            "security": [{"ApiKey": []}],
        },
    )
    api.spec.components.security_scheme(
        "ApiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    )
    api.ma_plugin.converter.add_attribute_function(item_id_property)
    api.spec.components.schema("Event", EVENT_SCHEMA_RULES, schema=EventSchema)
    api.spec.components.schema("EventBatch", schema=EventBatchSchema)
    api.spec.components.schema("CatalogItem", schema=CatalogItemSchema)
    api.spec.components.schema("CatalogUpsert", schema=CatalogUpsertSchema)
    for blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint)
