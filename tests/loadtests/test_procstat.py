"""CPU and memory figures read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from loadtests import procstat

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_process_cpu_seconds_grows_with_work():
    before = procstat.process_cpu_seconds(os.getpid())
    _spin(0.2)
    assert procstat.process_cpu_seconds(os.getpid()) - before >= 0.15


def test_a_gone_process_reads_as_nothing():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert procstat.process_cpu_seconds(child.pid) == 0.0
    assert procstat.memory_mib(child.pid)["pss_mib"] == 0.0
    assert procstat.process_name(child.pid) == ""


def test_children_and_descendants():
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys,time; "
            "p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(5)']); time.sleep(5)",
        ]
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(procstat.descendants(child.pid)) < 2:
            time.sleep(0.05)
        assert child.pid in procstat.children(os.getpid())
        assert len(procstat.descendants(child.pid)) == 2
        memory = procstat.service_memory(child.pid)
        assert len(memory["workers"]) == 1
        assert memory["total_pss_mib"] > memory["master"]["pss_mib"] > 0
    finally:
        for pid in reversed(procstat.descendants(child.pid)):
            os.kill(pid, 9)
        child.wait()


def test_cpu_between_splits_the_machine():
    before = procstat.snapshot(os.getpid())
    _spin(0.3)
    after = procstat.snapshot(os.getpid())
    cpu = procstat.cpu_between(before, after, generator_cpu_s=0.0)
    wall = after.wall - before.wall
    # This process spun 0.3 s of CPU, however long a shared machine made that take.
    assert cpu["service"] * wall == pytest.approx(0.3, abs=0.05)
    assert cpu["machine"] >= cpu["service"] - 0.05
    assert cpu["cores"] == pytest.approx(os.cpu_count(), abs=0.5)
    assert cpu["others"] >= 0
