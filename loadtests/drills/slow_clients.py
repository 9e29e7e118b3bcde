"""Drill: slow clients and oversized bodies, against gunicorn directly and behind nginx.

    python -m loadtests.drills.slow_clients [--phase 10] [--slow 64] [--bodies 8]

Starts its own Redis and the service on it (sync workers, the default), and nginx in
front of it with ``loadtests/drills/nginx.conf`` (the documented deployment). Normal
storefront traffic (recommendations and similar items, 5 s client timeout, ``--rate``
requests a second at most) runs for ``--phase`` seconds in each of six phases: through
each of the two front doors, alone (the baseline), beside ``--slow`` connections that send
their headers a byte a second and never finish, and beside ``--bodies`` clients that keep
posting a 50 MiB body at 1 MiB a second.

What happens to the normal clients is measured in every phase (req/s, p50, p99, max,
failures: no answer within 5 s, or a 5xx). Verdict: behind nginx, the normal clients
fail nothing and their p99 stays within 3x the baseline's (plus 50 ms) in both attacks,
and oversized bodies get a 413 in the service's error shape; directly, the figures show
what the attacks cost (no verdict: that is the deployment this drill argues against).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
import uuid
from collections import Counter

from loadtests.drills import support
from loadtests.server import KEYS, running_service

BODY_BYTES = 50 * 1024 * 1024
CHUNK = 64 * 1024


class SlowHeaders(threading.Thread):
    """``count`` connections that send a request's headers one byte a second, forever;
    a connection the server closes is opened again (and counted)."""

    def __init__(self, port: int, count: int) -> None:
        super().__init__(daemon=True)
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.reopened = 0

    def _open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.sendall(b"GET /v1/items/i1/similar HTTP/1.1\r\nHost: shop\r\nX-Slow: ")
            return sock
        except OSError:
            return None

    def run(self) -> None:
        sockets = [self._open() for _ in range(self.count)]
        while not self.stop.wait(1.0):
            for n, sock in enumerate(sockets):
                try:
                    if sock is None:
                        raise OSError
                    sock.sendall(b"a")
                except OSError:
                    if sock is not None:
                        sock.close()
                    sockets[n] = self._open()
                    self.reopened += 1
        for sock in sockets:
            if sock is not None:
                sock.close()


class BigBodies(threading.Thread):
    """``count`` clients, each posting a 50 MiB body at 1 MiB a second, again and again;
    the statuses they got (0: the server closed the connection without an answer)."""

    def __init__(self, port: int, count: int) -> None:
        super().__init__(daemon=True)
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.statuses: Counter = Counter()
        self._lock = threading.Lock()

    def run(self) -> None:
        senders = [threading.Thread(target=self._sender, daemon=True) for _ in range(self.count)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()

    def _sender(self) -> None:
        head = (
            f"POST /v1/events HTTP/1.1\r\nHost: shop\r\nX-API-Key: {KEYS['admin']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {BODY_BYTES}\r\n\r\n"
        ).encode()
        while not self.stop.is_set():
            status = 0
            with contextlib.suppress(OSError):
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                with sock:
                    sock.sendall(head)
                    status = self._send_body(sock)
            with self._lock:
                self.statuses[status] += 1

    def _send_body(self, sock: socket.socket) -> int:
        """Send the body at 1 MiB/s until done, stopped or answered; the answer's status."""
        sent = 0
        chunk = b"x" * CHUNK
        sock.setblocking(False)
        while sent < BODY_BYTES and not self.stop.is_set():
            answer = _answer_status(sock)
            if answer is not None:
                return answer
            with contextlib.suppress(BlockingIOError):
                sent += sock.send(chunk)
            time.sleep(CHUNK / (1024 * 1024))
        sock.setblocking(True)
        sock.settimeout(5)
        return _answer_status(sock, wait=True) or 0


def _answer_status(sock: socket.socket, wait: bool = False) -> int | None:
    """The status of an answer already sent by the server, if any."""
    try:
        data = sock.recv(64) if wait else sock.recv(64, socket.MSG_DONTWAIT)
    except (BlockingIOError, TimeoutError):
        return None
    except OSError:
        return 0
    if not data:
        return 0
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def normal_traffic(port: int, store: support.DrillStore, rate: float) -> support.Traffic:
    every = 4 / rate
    return (
        support.Traffic(port, timeout=5)
        .add("known", support.known_recommendations(store), 2, every)
        .add("similar", support.similar_items(store), 2, every)
    )


def phase(port: int, store, args, attack: str) -> dict:
    """Normal traffic for ``--phase`` seconds beside ``attack`` (none, slow, bodies)."""
    attacker: SlowHeaders | BigBodies | None = None
    if attack == "slow":
        attacker = SlowHeaders(port, args.slow)
    elif attack == "bodies":
        attacker = BigBodies(port, args.bodies)
    if attacker:
        attacker.start()
        time.sleep(1)  # the attack is in place
    traffic = normal_traffic(port, store, args.rate)
    with traffic:
        time.sleep(args.phase)
    if attacker:
        attacker.stop.set()
        attacker.join(timeout=15)
    answers = traffic.answers
    failed = [a for a in answers if a.status == 0 or a.status >= 500]
    figures = {
        **support.latency_figures(answers),
        "rps": round(len(answers) / args.phase, 1),
        "failed": len(failed),
        "failures": dict(Counter(a.error or str(a.status) for a in failed).most_common(3)),
    }
    if isinstance(attacker, SlowHeaders):
        figures["slow connections closed by the server"] = attacker.reopened
    if isinstance(attacker, BigBodies):
        figures["oversized posts answered"] = dict(attacker.statuses)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", type=float, default=10)
    parser.add_argument("--slow", type=int, default=64, help="slow-header connections")
    parser.add_argument("--bodies", type=int, default=8, help="clients posting 50 MiB")
    parser.add_argument("--rate", type=float, default=200, help="normal requests a second")
    parser.add_argument("--workers", type=int, default=2)
    raise SystemExit(run(parser.parse_args()).report())


def run(args: argparse.Namespace) -> support.Verdict:
    verdict = support.Verdict("slow_clients")
    namespace = f"drill{uuid.uuid4().hex[:6]}"
    results: dict[str, dict] = {}
    with (
        support.time_limit(6 * (args.phase + 20) + 120, "slow_clients"),
        support.own_redis() as redis_server,
    ):
        _artifact, store = support.publish_drill_store(redis_server.url, namespace, 20_000, 5_000)
        with (
            running_service(redis_server.url, namespace=namespace, workers=args.workers) as svc,
            support.nginx_in_front(svc.port) as nginx_port,
        ):
            for door, port in (("direct", svc.port), ("nginx", nginx_port)):
                for attack in ("none", "slow", "bodies"):
                    results[f"{door}, {attack}"] = phase(port, store, args, attack)
                    print(f"{door}, {attack}: {results[f'{door}, {attack}']}", flush=True)
            too_large = too_large_answer(nginx_port)
    judge(verdict, results, too_large)
    return verdict


def too_large_answer(port: int) -> tuple[int, bytes]:
    """What nginx answers a body declared over the limit."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.putrequest("POST", "/v1/events")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(BODY_BYTES))
    connection.endheaders()
    response = connection.getresponse()
    return response.status, response.read()


def judge(verdict: support.Verdict, results: dict[str, dict], too_large) -> None:
    base = results["nginx, none"]
    limit = 3 * base["p99_ms"] + 50
    for attack in ("slow", "bodies"):
        line = results[f"nginx, {attack}"]
        verdict.check(
            f"behind nginx, beside {attack!r} clients: no normal request failed",
            line["failed"] == 0,
            f"{line['failed']} of {line['requests']}",
        )
        verdict.check(
            f"behind nginx, beside {attack!r} clients: p99 within 3x the baseline's + 50 ms",
            line["p99_ms"] <= limit,
            f"{line['p99_ms']} ms, baseline {base['p99_ms']} ms",
        )
    status, body = too_large
    verdict.check(
        "behind nginx, an oversized body gets 413 in the service's error shape",
        status == 413 and b'"payload_too_large"' in body,
        f"{status} {body[:80]!r}",
    )
    verdict.figures.update(results)


if __name__ == "__main__":
    main()
