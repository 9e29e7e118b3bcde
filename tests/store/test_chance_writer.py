"""The background writer of onsite nudge chances: once per cart and process, in batches,
off the caller's thread, retried after a failure, fresh in a forked child."""

import os
import threading
import time

import pytest

from recsvc.store.chance_writer import Chance, ChanceWriter


class Sink:
    """A ``write`` that records its batches and the thread that wrote them."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[Chance]] = []
        self.threads: list[str] = []
        self.fail = fail
        self.wrote = threading.Event()

    def __call__(self, batch: list[Chance]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("Redis is down")
        self.batches.append(batch)
        self.threads.append(threading.current_thread().name)
        self.wrote.set()

    @property
    def written(self) -> list[Chance]:
        return [chance for batch in self.batches for chance in batch]


def chance(owner: str = "v:v1", changed: float = 100.0, now: float = 200.0) -> Chance:
    return Chance(owner, "onsite", changed, False, now)


def test_each_cart_is_queued_once_per_process():
    sink = Sink()
    writer = ChanceWriter(sink, linger=60)
    assert writer.add(chance()) is True
    assert writer.add(chance(now=300.0)) is False  # the same cart, a later page
    assert writer.add(chance(changed=150.0)) is True  # the cart changed: a new chance
    writer.flush()
    assert [c.changed for c in sink.written] == [100.0, 150.0]
    assert sink.threads == [threading.current_thread().name]


def test_the_thread_writes_what_gathered_in_one_batch():
    sink = Sink()
    writer = ChanceWriter(sink, linger=0.2)
    for n in range(5):
        writer.add(chance(owner=f"v:v{n}"))
    assert sink.wrote.wait(5)
    assert len(sink.batches) == 1 and len(sink.written) == 5
    assert sink.threads == ["nudge-chances"]


def test_flush_waits_for_the_batch_in_flight():
    started, release = threading.Event(), threading.Event()
    written: list[Chance] = []

    def slow(batch: list[Chance]) -> None:
        started.set()
        release.wait(5)
        written.extend(batch)

    writer = ChanceWriter(slow, linger=0)
    writer.add(chance())
    assert started.wait(5)
    flusher = threading.Thread(target=writer.flush)
    flusher.start()
    time.sleep(0.05)
    assert flusher.is_alive()  # still waiting for the thread's batch
    release.set()
    flusher.join(5)
    assert written == [chance()]


def test_a_failed_write_is_forgotten_so_a_later_page_queues_it_again():
    sink = Sink(fail=1)
    writer = ChanceWriter(sink, linger=60)
    writer.add(chance())
    writer.flush()  # fails: logged, not raised
    assert sink.written == []
    assert writer.add(chance()) is True
    writer.flush()
    assert sink.written == [chance()]


def test_the_memory_of_queued_carts_is_bounded():
    sink = Sink()
    writer = ChanceWriter(sink, linger=60, remember=2)
    for n in range(3):
        writer.add(chance(owner=f"v:v{n}"))
    assert writer.add(chance(owner="v:v0")) is True  # forgotten: the oldest
    assert writer.add(chance(owner="v:v2")) is False


def test_an_idle_thread_stops_and_the_next_chance_starts_another():
    sink = Sink()
    writer = ChanceWriter(sink, linger=0, idle=0.05)
    writer.add(chance())
    assert sink.wrote.wait(5)
    deadline = time.monotonic() + 5
    while writer._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer._thread is None
    sink.wrote.clear()
    writer.add(chance(owner="v:v2"))
    assert sink.wrote.wait(5)
    assert len(sink.written) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_nothing_queued_or_remembered():
    sink = Sink()
    writer = ChanceWriter(sink, linger=60)
    writer.add(chance())  # queued in the parent, not written yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it holds, then leave without cleanup
        fresh = not writer._queued and writer.add(chance()) and writer._thread is not None
        os.write(write, b"1" if fresh else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    writer.flush()
    assert sink.written == [chance()]  # the parent's queue is its own
