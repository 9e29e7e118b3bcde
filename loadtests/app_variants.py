"""The service with parts of its per-request middleware taken out, to measure what each costs.

    gunicorn -c python:recsvc.web.gunicorn_conf 'loadtests.app_variants:create("no-metrics")'

Only for ``loadtests.bench_variants``: the shipped service is ``recsvc.web.app:create_app``.
Each variant builds the shipped app and then removes hooks by the module that registered
them, so it measures exactly the code the service runs, less one piece:

- ``shipped``: as served;
- ``no-access-log``: the JSON access line per request off (the ``recsvc.access`` logger at
  WARNING; the request id is still read or made and echoed);
- ``no-request-id``: the request id and access log hooks removed (``recsvc.web.logs``);
- ``no-metrics``: the Prometheus hooks removed (``recsvc.web.metrics``);
- ``metrics-in-process``: the Prometheus hooks kept, values in process memory instead of
  the multiprocess files (what a single-process server would pay; ``/metrics`` then shows
  one worker's counts only, so it is no deployment option, only a measure of the files);
- ``no-auth``: the API key check removed (``recsvc.web.auth``);
- ``bare``: every one of those removed;
- ``lingering-close``: the app as served, under gunicorn's own close of each connection
  (it waits for the client to close first; :mod:`recsvc.web.connection_close`).
"""

from __future__ import annotations

import logging
import os

from flask import Flask

from recsvc.settings import Settings

HOOK_MODULES = {
    "shipped": (),
    "no-access-log": (),
    "no-request-id": ("recsvc.web.logs",),
    "no-metrics": ("recsvc.web.metrics",),
    "metrics-in-process": (),
    "no-auth": ("recsvc.web.auth",),
    "bare": ("recsvc.web.logs", "recsvc.web.metrics", "recsvc.web.auth"),
    "lingering-close": (),
}
VARIANTS = tuple(HOOK_MODULES)
ACCESS_LOG_OFF = ("no-access-log", "bare")


def apply_logging(variant: str) -> None:
    """Turn the access log off for the variants without it (a process-wide logger: a
    process serving several variants calls this before each)."""
    level = logging.WARNING if variant in ACCESS_LOG_OFF else logging.NOTSET
    logging.getLogger("recsvc.access").setLevel(level)


def create(variant: str, settings: Settings | None = None) -> Flask:
    """The shipped app (on ``settings``, default the environment's) less what ``variant``
    names (see the module docstring)."""
    if variant not in HOOK_MODULES:
        raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    if variant == "metrics-in-process":
        # prometheus_client picks its value class when first imported, which is here.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from recsvc.web.app import create_app

    app = create_app(settings)
    apply_logging(variant)
    if variant == "lingering-close":
        # The app is made in gunicorn's master, before the fork: the workers' post_fork
        # then finds nothing to install.
        from recsvc.web import connection_close

        connection_close.install = lambda: None
    drop = HOOK_MODULES[variant]
    for hooks in (app.before_request_funcs, app.after_request_funcs):
        for key, functions in hooks.items():
            hooks[key] = [f for f in functions if f.__module__ not in drop]
    return app
