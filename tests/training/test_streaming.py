"""The streaming matrix build gives the matrix the in-memory path gives, from any chunk
size, dropping repeated ids and non-interactions as the reader does."""

import json
from pathlib import Path

import numpy as np
import pytest

from training.loaders import load_events
from training.matrix import build_matrix
from training.streaming import stream_matrix
from training.weights import load_weights


def write_log(folder: Path, rng: np.random.Generator, days: int = 3, per_day: int = 400) -> None:
    kinds = ["product_view", "product_view", "add_to_cart", "purchase", "page_view"]
    n = 0
    for day in range(days):
        lines = []
        for k in range(per_day):
            n += 1
            kind = kinds[rng.integers(len(kinds))]
            record = {
                "id": f"{n:032x}",
                "type": kind,
                "visitor_id": f"v{rng.integers(60)}",
                "timestamp": f"2026-03-{day + 1:02d}T{k * 86399 // per_day // 3600:02d}:"
                f"{k % 60:02d}:00.000Z",
            }
            if kind != "page_view":
                record["item_id"] = f"i{rng.integers(40)}"
            if kind == "add_to_cart":
                record["quantity"] = int(rng.integers(1, 4))  # weighs as in training.loaders
            lines.append(json.dumps(record))
        lines.append(lines[5])  # a rewritten line: same id, same partition
        partition = folder / f"date=2026-03-{day + 1:02d}"
        partition.mkdir(parents=True)
        (partition / "part-a.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("chunk", [7, 100, 10_000])
@pytest.mark.parametrize("half_life", [0.0, 2.0])
def test_streamed_matrix_equals_the_in_memory_one(tmp_path, chunk, half_life):
    write_log(tmp_path, np.random.default_rng(3))
    config = load_weights(half_life_days=half_life)
    expected = build_matrix(load_events(tmp_path)[0], config)
    streamed = stream_matrix(tmp_path, config, chunk_events=chunk)

    def cells(m):
        dense = m.matrix.toarray()
        return {
            (m.users.labels[r], m.items.labels[c]): dense[r, c]
            for r, c in zip(*dense.nonzero(), strict=True)
        }

    want, got = cells(expected), cells(streamed)
    assert set(got) == set(want)
    assert np.allclose([got[k] for k in want], [want[k] for k in want], rtol=1e-5)
    assert streamed.report.duplicates == 3
    assert streamed.reference_time == pytest.approx(expected.reference_time)
