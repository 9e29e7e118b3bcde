"""The retraining loop's decisions, kept in the local registry beside the versions.

``<models dir>/decisions.jsonl``: one JSON object per decision, appended and fsynced, so a
crash never leaves half a line and ``recsvc models`` can show the history. Each names the
candidate and the current version, the outcome, the reason in words and the figures the
gate used (``training.retrain`` writes them; this module only stores and reads them, so
the service side needs nothing of the offline job).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

DECISIONS_FILE = "decisions.jsonl"
# published: made current; refused: worse than the current version beyond the interval;
# skipped: nothing to evaluate on (no fresh test visitors); failed: an error, nothing
# published.
Outcome = Literal["published", "refused", "skipped", "failed"]


@dataclass
class Decision:
    """One run of the gate."""

    time: str
    outcome: Outcome
    reason: str
    candidate: str | None = None
    current: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)

    def summary(self) -> str:
        """One line: when, what, which versions, the gate's figure."""
        gate = self.figures.get("gate") or {}
        figure = ""
        if "candidate" in gate and "difference" not in gate:
            low, high = gate["candidate_interval"]
            figure = (
                f"  {gate['metric']} {gate['candidate']:.4f} (95% CI {low:.4f} – {high:.4f},"
                f" {gate['visitors']} visitors)"
            )
        if "difference" in gate:
            low, high = gate["difference_interval"]
            figure = (
                f"  {gate['metric']} {gate['candidate']:.4f} vs {gate['current']:.4f}"
                f" (B−A {gate['difference']:+.4f}, 95% CI {low:+.4f} – {high:+.4f},"
                f" p {gate['wilcoxon_p']:.2g}, {gate['visitors']} visitors)"
            )
        versions = f"{self.candidate or '-'} vs {self.current or '-'}"
        return f"{self.time}  {self.outcome:<9} {versions}{figure}  {self.reason}"


def record_decision(models_dir: Path, decision: Decision) -> Path:
    """Append ``decision`` to the registry's record; returns the file."""
    path = Path(models_dir) / DECISIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(decision.to_dict(), default=str, separators=(",", ":")) + "\n"
    with path.open("a", encoding="utf-8") as out:
        out.write(line)
        out.flush()
        os.fsync(out.fileno())
    return path


def read_decisions(models_dir: Path, last: int | None = None) -> list[Decision]:
    """The recorded decisions, oldest first (the ``last`` ones only, when given); a line
    that does not parse (a disk that filled mid-write) is skipped."""
    path = Path(models_dir) / DECISIONS_FILE
    if not path.exists():
        return []
    decisions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            decisions.append(Decision(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return decisions[-last:] if last else decisions
