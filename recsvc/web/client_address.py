"""The client's address, for per-address rate limits (``recsvc.web.rate_limit``).

The address is the socket's peer (``REMOTE_ADDR``), unless ``RECSVC_TRUSTED_PROXIES`` is
set to the number of proxies in front of the service (nginx: 1; a CDN and nginx: 2). Then
it is taken from ``X-Forwarded-For`` by werkzeug's ``ProxyFix`` (``x_for`` = that number):
each proxy appends the address it received the request from, so the value that many
places from the right was written by the outermost trusted proxy and is the client's;
anything left of it came from the client and is ignored. A header with fewer values than
trusted proxies is ignored too (the socket's address is kept). Leave it at 0 when nothing
in front of the service sets the header: a client could otherwise name any address and
get a bucket of its own per request.

An IPv6 address counts as its /64 network: one host (a home, a phone) is handed a whole
/64 and may pick any address in it.
"""

from __future__ import annotations

import hashlib
import ipaddress

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from recsvc.settings import Settings

# Addresses of one IPv6 host: the /64 it is handed.
IPV6_HOST_PREFIX = 64


def init_app(app: Flask, settings: Settings) -> None:
    """Trust ``settings.trusted_proxies`` proxies' ``X-Forwarded-For`` (ProxyFix's
    semantics); the other ``X-Forwarded-*`` headers are left alone."""
    if settings.trusted_proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0, x_host=0, x_port=0
        )


def address_key(address: str | None) -> str:
    """The name of an address's bucket: an IPv4 address as written, an IPv6 address as its
    /64, anything else (a unix socket's empty peer, a forwarded value that is no address)
    as ``other-`` and 16 hex digits of its SHA-256, so no caller-written text becomes
    part of a Redis key."""
    try:
        parsed = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return "other-" + hashlib.sha256((address or "").encode()).hexdigest()[:16]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(parsed), IPV6_HOST_PREFIX), strict=False))
    return str(parsed)


def client_address() -> str:
    """The bucket name of the current request's client address."""
    return address_key(request.remote_addr)
