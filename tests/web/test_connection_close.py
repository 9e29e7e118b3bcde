"""A finished connection is closed at once unless the client left bytes unread
(recsvc.web.connection_close), so a client slow to close does not hold a sync worker."""

import socket
import time
from collections.abc import Iterator

import pytest

from recsvc.web.connection_close import prompt_close, unread


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A loopback TCP connection: (the server's side, the client's)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with server, client:
        yield server, client


def test_unread_tells_whether_the_client_sent_more(pair):
    server, client = pair
    assert unread(server) is False
    client.sendall(b"GET / HTTP/1.1\r\n")
    time.sleep(0.05)
    assert unread(server) is True
    assert server.recv(100)  # peeking left the bytes in place
    assert unread(server) is False


def test_a_connection_with_nothing_unread_closes_without_lingering(pair):
    server, client = pair
    lingered = []
    prompt_close(lingered.append)(server)
    assert lingered == []
    assert server.fileno() == -1
    client.settimeout(1)
    assert client.recv(10) == b""  # the client sees an orderly close (FIN), not a reset


def test_unread_bytes_get_gunicorns_lingering_close(pair):
    server, client = pair
    client.sendall(b"a pipelined request")
    time.sleep(0.05)
    lingered = []
    prompt_close(lingered.append)(server)
    assert lingered == [server]


def answered(port: int) -> tuple[socket.socket, bytes]:
    """A GET /healthz whose answer is read whole, its connection left open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return sock, answer


def test_clients_that_never_close_do_not_hold_the_sync_worker(served):
    """One worker; three clients read their answers and keep their sockets open. With
    gunicorn's lingering close each would hold the worker for 2 s."""
    port, _ = served
    started = time.monotonic()
    held = [answered(port) for _ in range(3)]
    elapsed = time.monotonic() - started
    try:
        assert all(answer.startswith(b"HTTP/1.1 200") for _, answer in held)
        assert elapsed < 1.5, f"three answers took {elapsed:.2f} s"
        for sock, _ in held:
            assert sock.recv(10) == b""  # the service closed its side
    finally:
        for sock, _ in held:
            sock.close()
