"""Closing a connection whose answer is written, without waiting for the client to close.

gunicorn (27, from benoitc/gunicorn#3590) ends every connection with
``gunicorn.util.close_graceful``: it half-closes, then reads until the client closes its
side (for up to 2 s) before closing. That lingering read is RFC 9112 §9.6's remedy for
one hazard: closing a socket that still holds unread request bytes makes the kernel send
a reset, which can destroy the end of the answer before the client reads it.

A sync worker serves one connection at a time, so it spends that read doing nothing else:
every request holds the worker for one more round trip to the client (under wrk on
loopback, about a third of a no-op request's time), and a client that is slow to close
(a busy load generator, a browser on a slow network) holds it for as long as it takes,
with every other request queued behind it. ``install`` keeps gunicorn's lingering close
for the connections that need it and closes the others at once: when nothing the client
sent is left unread, closing sends a FIN after the answer, never a reset. The
connections that still linger: unread bytes in the buffer (a body the app did not read,
a pipelined request), and TLS sockets, whose buffered bytes cannot be peeked at.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable

Close = Callable[[socket.socket], None]


def unread(sock: socket.socket) -> bool | None:
    """Whether the client sent bytes not read yet: True, False, or None when this cannot
    be told (a TLS socket, a socket already failing)."""
    if isinstance(sock, ssl.SSLSocket):
        return None
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False  # nothing buffered, the client still connected
    except OSError:
        return None


def prompt_close(lingering: Close) -> Close:
    """A close that falls back to ``lingering`` (gunicorn's) only where it is needed."""

    def close(sock: socket.socket) -> None:
        if unread(sock) is not False:
            lingering(sock)
            return
        with contextlib.suppress(OSError):
            sock.close()

    return close


def install() -> None:
    """Make gunicorn's workers close finished connections promptly (in this process)."""
    from gunicorn import util

    lingering = getattr(util, "close_graceful", None)
    if lingering is None or getattr(lingering, "recsvc_prompt", False):
        return  # a gunicorn that closes at once already, or installed before
    close = prompt_close(lingering)
    close.recsvc_prompt = True  # type: ignore[attr-defined]
    util.close_graceful = close
