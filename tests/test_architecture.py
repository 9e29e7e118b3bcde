"""The import contracts of pyproject.toml (``[tool.importlinter]``) hold: the service
never imports the offline job, and the scoring package needs only numpy and scipy. A new
import across either boundary fails the suite here (and ``make lint``)."""

from __future__ import annotations

import os
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    exit_code = lint_imports(
        config_filename=os.fspath(ROOT / "pyproject.toml"), no_cache=True, no_logo=True
    )
    assert exit_code == 0, "an import contract is broken: run `lint-imports` to see which"
