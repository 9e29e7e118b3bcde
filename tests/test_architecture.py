"""The import contracts of pyproject.toml (``[tool.importlinter]``) hold: the service
never imports the offline job, and the scoring package needs only numpy and scipy. A new
import across either boundary fails the suite here (and ``make lint``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    # lint_imports configures logging with dictConfig, which disables every logger that
    # exists already (the service's among them): later tests that read their records
    # would find none. Put them back as they were.
    loggers = [
        x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)
    ]
    enabled = [logger for logger in loggers if not logger.disabled]
    try:
        exit_code = lint_imports(
            config_filename=os.fspath(ROOT / "pyproject.toml"), no_cache=True, no_logo=True
        )
    finally:
        for logger in enabled:
            logger.disabled = False
    assert exit_code == 0, "an import contract is broken: run `lint-imports` to see which"
