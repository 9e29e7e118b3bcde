"""``recsvc serve``: the service under gunicorn, on the embedded Redis if REDIS_URL is unset."""

from __future__ import annotations

import os
from typing import Any

import click
from gunicorn.app.base import Application

from recsvc.redis_client import start_embedded
from recsvc.settings import Settings


class RecsvcGunicorn(Application):
    """gunicorn with our config module, then the command line's overrides."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        super().__init__()

    def init(self, parser, opts, args) -> None:  # gunicorn's hook; nothing to parse here
        return None

    def load_config(self) -> None:
        """Our config module, then ``GUNICORN_CMD_ARGS`` (as plain gunicorn reads it, so
        operators can tune e.g. ``--max-requests`` without code), then our options."""
        self.load_config_from_module_name_or_filename("python:recsvc.web.gunicorn_conf")
        env_args = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        for name, value in vars(env_args).items():
            if value is not None and name != "args":
                self.cfg.set(name.lower(), value)
        for name, value in self.overrides.items():
            self.cfg.set(name, value)

    def load(self):
        from recsvc.web.app import create_app

        return create_app()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=int, help="gunicorn workers [default: 1 per core]")
@click.option("--threads", type=int, help="threads per worker [default: 1, sync; >1: gthread]")
def serve(host: str, port: int, workers: int | None, threads: int | None) -> None:
    """Run the service under gunicorn.

    With REDIS_URL unset, an embedded Redis is started with its data under RECSVC_DATA_DIR
    (default ./var) and stopped when the service stops.
    """
    settings = Settings.from_env()
    embedded = None
    if not settings.redis_url:
        embedded = start_embedded(settings.data_dir)
        os.environ["REDIS_URL"] = embedded.url
        click.echo(f"embedded Redis at {embedded.url} (data in {embedded.data_dir})", err=True)
    overrides: dict[str, Any] = {"bind": [f"{host}:{port}"]}
    if workers:
        overrides["workers"] = workers
    if threads:
        overrides["threads"] = threads
    try:
        RecsvcGunicorn(overrides).run()
    finally:
        if embedded is not None:
            embedded.stop()
