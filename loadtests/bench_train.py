"""Training benchmark: the whole ``recsvc train`` against the bare ``implicit`` ALS fit.

    python -m loadtests.bench_train [--visitors 250000] [--factors 64] [--iterations 15]

On a generated store of about 1M interactions, one run measures (1) the bare
``AlternatingLeastSquares.fit`` on the very matrix ``recsvc train`` builds, and (2) the
whole ``recsvc train`` command (load, matrix, evaluation of ALS and the baselines, final
fit, artifact), each in its own process so peak memory is its own. Target (DESIGN.md): the
whole command within 2.5x the bare fit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

BARE_FIT = """
import json, resource, sys, time
from training.loaders import load_events
from training.matrix import build_matrix
from training.threads import default_num_threads, single_threaded_blas
from training.weights import load_weights
from implicit.cpu.als import AlternatingLeastSquares
interactions, _ = load_events(sys.argv[1], "jsonl")
matrix = build_matrix(interactions, load_weights()).matrix
with single_threaded_blas():
    model = AlternatingLeastSquares(factors=int(sys.argv[2]), iterations=int(sys.argv[3]),
                                    num_threads=default_num_threads(), random_state=42)
    started = time.perf_counter()
    model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - started
print(json.dumps({"fit_s": seconds, "nnz": int(matrix.nnz), "shape": list(matrix.shape),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# The recsvc command in-process, then its own peak memory as JSON on stderr.
TRAIN_WITH_PEAK = """
import json, resource, sys
from recsvc.cli import main
try:
    main(sys.argv[1:])
finally:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": peak}), file=sys.stderr)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=250_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recsvc-bench-train-"))
    from recsvc.synth.generator import GenerateConfig, generate

    generate(
        GenerateConfig(
            visitors=args.visitors,
            items=args.items,
            days=30,
            seed=1,
            out=work / "store",
            end_date=date(2026, 5, 31),
        ),
        progress=True,
    )
    events = work / "store" / "events"
    bare = json.loads(
        subprocess.run(
            [sys.executable, "-c", BARE_FIT, str(events), str(args.factors), str(args.iterations)],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    started = time.perf_counter()
    command = [
        sys.executable,
        "-c",
        TRAIN_WITH_PEAK,
        "train",
        "--events",
        str(events),
        "--models-dir",
        str(work / "models"),
        "--factors",
        str(args.factors),
        "--iterations",
        str(args.iterations),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    whole = time.perf_counter() - started
    marker = done.stderr.rindex('{"peak_rss_mib"')  # after any progress-bar output
    train_peak = json.loads(done.stderr[marker:].splitlines()[0])["peak_rss_mib"]
    version = done.stdout.strip().splitlines()[-1]
    manifest = json.loads((work / "models" / version / "manifest.json").read_text())
    report = {
        "interactions": manifest["load"]["kept"],
        "matrix": bare["shape"],
        "nonzeros": bare["nnz"],
        "bare_fit_s": round(bare["fit_s"], 2),
        "recsvc_train_s": round(whole, 2),
        "ratio": round(whole / bare["fit_s"], 2),
        "target_ratio": 2.5,
        "stages_s": manifest["seconds"],
        "peak_rss_mib": {
            "bare_fit": round(bare["peak_rss_mib"]),
            "recsvc_train": round(train_peak),
        },
        "metrics": manifest["metrics"],
    }
    print(
        f"{report['interactions']:,} interactions, matrix {bare['shape']} "
        f"({bare['nnz']:,} nonzeros): bare fit {bare['fit_s']:.1f} s, recsvc train "
        f"{whole:.1f} s, ratio {report['ratio']} (target <= 2.5)"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
