"""What processes and the machine spent while a phase ran, read from ``/proc``.

Figures on a shared 2-core machine mean little without the CPU the load generator, the
service and everybody else used meanwhile, so every benchmark phase is bracketed by
``snapshot`` calls and reported with ``cpu_between``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0.0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def process_name(pid: int) -> str:
    """The command name of a process ("" when it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers, for its master)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children(current))
    return out


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores summed
    (``/proc/stat``; idle and iowait count as not busy)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / TICKS, total / TICKS


@dataclass(frozen=True)
class Snapshot:
    wall: float
    machine_busy: float
    machine_total: float
    service: dict[int, float]  # pid -> CPU seconds of the service's processes
    redis: float  # CPU seconds of the Redis the benchmark owns (0 when shared)


def snapshot(service_pid: int | None, redis_pid: int | None = None) -> Snapshot:
    busy, total = machine_busy_seconds()
    pids = descendants(service_pid) if service_pid else []
    return Snapshot(
        wall=time.monotonic(),
        machine_busy=busy,
        machine_total=total,
        service={pid: process_cpu_seconds(pid) for pid in pids},
        redis=process_cpu_seconds(redis_pid) if redis_pid else 0.0,
    )


def cpu_between(before: Snapshot, after: Snapshot, generator_cpu_s: float) -> dict[str, float]:
    """CPU used between two snapshots, in cores (CPU seconds per wall second):
    ``generator`` (given: the load generator's own rusage), ``service`` (gunicorn master
    and workers; a worker that exited meanwhile is missed), ``redis`` (when owned),
    ``machine`` (everything) and ``others`` (the machine less all of those: other people's
    work on a shared machine), plus the machine's ``cores``."""
    wall = max(after.wall - before.wall, 1e-9)
    service = sum(
        max(0.0, after.service[pid] - before.service.get(pid, 0.0)) for pid in after.service
    )
    machine = after.machine_busy - before.machine_busy
    redis = max(0.0, after.redis - before.redis)
    cores = (after.machine_total - before.machine_total) / wall
    return {
        "generator": round(generator_cpu_s / wall, 3),
        "service": round(service / wall, 3),
        "redis": round(redis / wall, 3),
        "machine": round(machine / wall, 3),
        "others": round(max(0.0, machine - service - redis - generator_cpu_s) / wall, 3),
        "cores": round(cores, 2),
    }


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and PSS of one process, in MiB (zeros when it is gone). Workers forked from a
    preloaded master share pages: RSS counts shared pages in every process, PSS splits
    them among the processes sharing them."""
    out = {"pid": pid, "rss_mib": 0.0, "pss_mib": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mib"] = round(int(line.split()[1]) / 1024, 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["pss_mib"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def service_memory(master: int) -> dict:
    """RSS and PSS of the gunicorn master and each worker, and totals, in MiB."""
    workers = [memory_mib(pid) for pid in children(master)]
    master_mem = memory_mib(master)
    return {
        "master": master_mem,
        "workers": workers,
        "total_rss_mib": round(master_mem["rss_mib"] + sum(w["rss_mib"] for w in workers), 1),
        "total_pss_mib": round(master_mem["pss_mib"] + sum(w["pss_mib"] for w in workers), 1),
    }
