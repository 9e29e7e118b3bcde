"""The import contracts of pyproject.toml (``[tool.importlinter]``) hold: the service
never imports the offline job, and the scoring package needs only numpy and scipy. A new
import across either boundary fails the suite here (and ``make lint``)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    with loggers_left_as_they_were():
        exit_code = lint_imports(
            config_filename=os.fspath(ROOT / "pyproject.toml"), no_cache=True, no_logo=True
        )
    assert exit_code == 0, "an import contract is broken: run `lint-imports` to see which"


@contextlib.contextmanager
def loggers_left_as_they_were() -> Iterator[None]:
    """import-linter's CLI configures logging with ``disable_existing_loggers``: every
    logger created so far (``recsvc.web.auth``, say) would stay disabled for the tests
    that run after this one and check what is logged."""
    loggers = [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    disabled = [logger.disabled for logger in loggers]
    try:
        yield
    finally:
        for logger, was in zip(loggers, disabled, strict=True):
            logger.disabled = was
