"""The import contracts of pyproject.toml (``[tool.importlinter]``) hold: the service
never imports the offline job, and the scoring package needs only numpy and scipy. A new
import across either boundary fails the suite here (and ``make lint``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    # In a process of its own: import-linter configures logging with dictConfig, which
    # disables every logger that exists already, and later tests read the service's logs.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"an import contract is broken:\n{done.stdout}{done.stderr}"
