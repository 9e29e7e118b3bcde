"""Benchmark phases against the no-op reference: same generator, same server, same run.

A run measures the no-op (``GET /healthz``), then each phase, then the no-op again, each
for the same seconds at the same connections with wrk; a phase's ratios are over the
mean of the two no-op measurements that bracket it in that run (the drift between them
is printed: on a shared machine it says how far to trust the run). ``--runs N`` repeats
the whole sequence on the same server and prints each run, then the median and range of
every ratio over the runs. Beside every figure: the CPU the generator, the service,
an owned Redis and everybody else used meanwhile (``loadtests.procstat``), in cores.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loadtests import procstat, wrk
from loadtests.server import ADMIN_HEADERS, Service

NOOP = "noop"
NOOP_END = "noop_end"


@dataclass
class Phase:
    """Requests wrk rotates through for one measurement.

    ``marker``: a substring every answer should hold (a model version, ``"fallback":null``),
    counted so a misconfigured run (every answer a fallback) shows (with
    ``every_answer_marked`` False only counted, for the check to judge); ``allowed``: the
    statuses that are not a problem (anything else is reported, as is a request that got
    no answer); ``check``: reads the result right after the phase and returns problems
    (empty when fine); ``capture``: a file wrk writes the 2xx bodies to, for the check.
    """

    name: str
    requests: list[wrk.Request]
    marker: str | tuple[str, ...] = ""
    every_answer_marked: bool = True
    allowed: frozenset[int] = frozenset({200})
    check: Callable[[wrk.Result], list[str]] | None = None
    capture: Path | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(ADMIN_HEADERS))


def noop_phase(name: str = NOOP) -> Phase:
    return Phase(name, [wrk.Request("GET", "/healthz")], marker='"ok"')


def redis_pid(client) -> int | None:
    """The pid of the Redis server ``client`` talks to when it runs on this machine (its
    CPU is then reported; on a Redis shared with others it includes their work)."""
    try:
        pid = int(client.info("server")["process_id"])
    except Exception:  # a Redis we cannot ask: report no Redis CPU
        return None
    return pid if procstat.process_name(pid).startswith("redis-server") else None


def add_arguments(parser: argparse.ArgumentParser, seconds: float = 15.0) -> None:
    """The options every benchmark shares."""
    parser.add_argument("--duration", type=float, default=seconds, help="seconds per phase")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole sequence")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per worker (>1: gthread; default: the service's own)",
    )


@dataclass
class Runner:
    service: Service
    seconds: float
    connections: int
    wrk_threads: int = 1
    redis_pid: int | None = None
    _files: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_args(
        cls, service: Service, args: argparse.Namespace, redis_pid: int | None = None
    ) -> Runner:
        return cls(service, args.duration, args.connections, args.wrk_threads, redis_pid)

    def measure(self, phase: Phase, seconds: float | None = None) -> wrk.Result:
        """One wrk run of ``phase``, with the CPU used meanwhile attached."""
        path = self._files.get(phase.name)
        if path is None:
            path = wrk.write_requests(phase.requests, phase.headers)
            self._files[phase.name] = path
        before = procstat.snapshot(self.service.master_pid, self.redis_pid)
        result = wrk.run(
            self.service.url,
            path,
            seconds=seconds or self.seconds,
            connections=self.connections,
            threads=self.wrk_threads,
            name=phase.name,
            marker=phase.marker,
            capture=phase.capture,
        )
        after = procstat.snapshot(self.service.master_pid, self.redis_pid)
        result.cpu = procstat.cpu_between(before, after, result.generator_cpu_s)
        return result

    def warm_up(self, phases: list[Phase], seconds: float = 2.0) -> None:
        """A short unmeasured run of each phase: workers build what they cache lazily."""
        for phase in [noop_phase(), *phases]:
            self.measure(phase, seconds)

    def run(self, phases: list[Phase], runs: int, on_run: Callable[[dict], None] | None = None):
        """``runs`` times: no-op, every phase, no-op. Returns one report per run."""
        reports = []
        for number in range(1, runs + 1):
            results = {NOOP: self.measure(noop_phase())}
            checked = {}
            for phase in phases:
                results[phase.name] = self.measure(phase)
                # Right after the phase: a check may read state the next phase changes.
                checked[phase.name] = phase.check(results[phase.name]) if phase.check else []
            results[NOOP_END] = self.measure(noop_phase(NOOP_END))
            report = run_report(number, phases, results, checked)
            report["memory"] = procstat.service_memory(self.service.master_pid)
            reports.append(report)
            if on_run:
                on_run(report)
        return reports


def run_report(
    number: int,
    phases: list[Phase],
    results: dict[str, wrk.Result],
    checked: dict[str, list[str]],
) -> dict:
    """Figures and ratios of one run; ``checked``: each phase's own check's problems."""
    start, end = results[NOOP], results[NOOP_END]
    noop_rps = (start.rps + end.rps) / 2
    noop_p99 = (start.p99_ms + end.p99_ms) / 2
    lines = {}
    for name, result in results.items():
        line = result.summary()
        line["rps_over_noop"] = round(result.rps / noop_rps, 3) if noop_rps else None
        line["p99_over_noop"] = round(result.p99_ms / noop_p99, 2) if noop_p99 else None
        lines[name] = line
    for phase in [noop_phase(), *phases]:
        if not phase.marker:
            lines[phase.name]["marked"] = None  # nothing was looked for
    problems = {}
    for phase in phases:
        found = list(checked.get(phase.name, []))
        result = results[phase.name]
        unexpected = {s: n for s, n in result.statuses.items() if s not in phase.allowed}
        if unexpected:
            found.append(f"unexpected answers {unexpected}")
        unanswered = {k: n for k, n in result.socket_errors.items() if k != "status" and n}
        if unanswered:
            found.append(f"requests without an answer {unanswered}")
        if result.no_retry_after:
            found.append(f"{result.no_retry_after} 429/503 answers without Retry-After")
        if phase.marker and phase.every_answer_marked and result.marked < result.requests:
            found.append(f"{result.requests - result.marked} answers without {phase.marker!r}")
        if found:
            problems[phase.name] = found
    return {
        "run": number,
        "noop_rps": round(noop_rps, 1),
        "noop_p99_ms": round(noop_p99, 3),
        "noop_drift": round(end.rps / start.rps, 3) if start.rps else None,
        "phases": lines,
        "problems": problems,
    }


def print_run(report: dict) -> None:
    print(
        f"\nrun {report['run']}: no-op {report['noop_rps']:.0f} req/s, p99 "
        f"{report['noop_p99_ms']:.2f} ms (end/start {report['noop_drift']})"
    )
    print(
        f"  {'phase':<16}{'req/s':>8}{'p50':>8}{'p99':>8}{'max':>8}{'x rps':>7}{'x p99':>7}"
        f"  {'cores: gen':>10}{'svc':>6}{'redis':>6}{'others':>7}  answers"
    )
    for name, line in report["phases"].items():
        cpu = line["cpu_cores"]
        statuses = " ".join(f"{k}:{v}" for k, v in line["statuses"].items())
        errors = " ".join(f"{k}:{v}" for k, v in line["socket_errors"].items())
        print(
            f"  {name:<16}{line['rps']:>8.0f}{line['p50_ms']:>8.2f}{line['p99_ms']:>8.2f}"
            f"{line['max_ms']:>8.1f}{line['rps_over_noop']:>7.2f}{line['p99_over_noop']:>7.2f}"
            f"  {cpu['generator']:>10.2f}{cpu['service']:>6.2f}{cpu['redis']:>6.2f}"
            f"{cpu['others']:>7.2f}  {statuses} {errors}"
            + (f" marked:{line['marked']}" if line["marked"] is not None else "")
        )
    mem = report["memory"]
    print(
        f"  memory MiB: master PSS {mem['master']['pss_mib']}; workers PSS "
        + ", ".join(str(w["pss_mib"]) for w in mem["workers"])
        + f"; total PSS {mem['total_pss_mib']} (RSS {mem['total_rss_mib']})"
    )
    for name, found in report["problems"].items():
        print(f"  PROBLEM {name}: {'; '.join(found)}")


def over_runs(reports: list[dict]) -> dict[str, dict]:
    """Median, min and max of each phase's ratios over the runs."""
    out: dict[str, dict] = {}
    for name in reports[0]["phases"]:
        if name in (NOOP, NOOP_END):
            continue
        figures = {}
        for ratio in ("rps_over_noop", "p99_over_noop"):
            values = [r["phases"][name][ratio] for r in reports]
            figures[ratio] = {
                "median": round(statistics.median(values), 3),
                "min": min(values),
                "max": max(values),
            }
        figures["rps_median"] = round(statistics.median(r["phases"][name]["rps"] for r in reports))
        figures["generator_cores_max"] = max(
            r["phases"][name]["cpu_cores"]["generator"] for r in reports
        )
        figures["others_cores_max"] = max(r["phases"][name]["cpu_cores"]["others"] for r in reports)
        out[name] = figures
    return out


def print_over_runs(summary: dict[str, dict], targets: dict[str, tuple[float, float]]) -> bool:
    """Print the medians (and ranges) against ``targets`` (phase -> (min req/s ratio,
    max p99 ratio)); True when every targeted phase's median meets both."""
    print("\nover runs: median [min-max]")
    met = True
    for name, figures in summary.items():
        rps, p99 = figures["rps_over_noop"], figures["p99_over_noop"]
        text = (
            f"  {name:<16} x rps {rps['median']:.2f} [{rps['min']:.2f}-{rps['max']:.2f}]"
            f"  x p99 {p99['median']:.2f} [{p99['min']:.2f}-{p99['max']:.2f}]"
            f"  gen <= {figures['generator_cores_max']:.2f} cores,"
            f" others <= {figures['others_cores_max']:.2f}"
        )
        if name in targets:
            low, high = targets[name]
            ok = rps["median"] >= low and p99["median"] <= high
            met &= ok
            text += f"  target x rps >= {low}, x p99 <= {high}: {'met' if ok else 'MISSED'}"
        print(text)
    return met
