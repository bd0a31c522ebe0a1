"""Why a service could not be reached, in one line: name not resolved, connection refused, TLS verification
failed, timeout, connection dropped.

requests, urllib3 and botocore each wrap the socket error in two or three layers whose own messages say only
"Max retries exceeded" or "Could not connect to the endpoint URL". An operator needs the cause underneath (a
DNS typo, a firewall, a proxy's certificate, a slow link), so this walks the chain of wrapped exceptions and
names the first cause it recognises, with the host. Nothing here prints headers or bodies.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
import urllib3.exceptions as u3

try:  # botocore is always installed with sh2jira; the import is guarded only to keep this module standalone
    import botocore.exceptions as bce
except ImportError:  # pragma: no cover
    bce = None  # type: ignore[assignment]


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps (cause, context, urllib3's `reason`, botocore's `error`, args)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner: list[object] = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        kwargs = getattr(current, "kwargs", None)
        if isinstance(kwargs, dict):
            inner.append(kwargs.get("error"))
        inner += list(getattr(current, "args", ()) or ())
        todo += [e for e in inner if isinstance(e, BaseException)]


def _host_of(exc: BaseException, url: str | None) -> str:
    if url:
        parts = urlsplit(url)
        if parts.hostname:
            return parts.hostname + (f":{parts.port}" if parts.port else "")
    for e in causes(exc):
        kwargs = getattr(e, "kwargs", None)
        if isinstance(kwargs, dict) and kwargs.get("endpoint_url"):
            return _host_of(e, str(kwargs["endpoint_url"]))
        for holder in (getattr(e, "conn", None), getattr(e, "pool", None)):
            host = getattr(holder, "host", None)
            if host:
                port = getattr(holder, "port", None)
                return f"{host}:{port}" if port else str(host)
        request = getattr(e, "request", None)
        if request is not None and getattr(request, "url", None):
            return _host_of(e, str(request.url))
    return "the server"


def unreachable_reason(exc: BaseException, url: str | None = None) -> str | None:
    """'name not resolved: jira.example.com', 'connection refused by host:port', 'TLS verification failed for
    host X: ...', 'timed out ...', 'connection to X dropped' — or None when `exc` is not a network failure."""
    host = _host_of(exc, url)
    chain = list(causes(exc))
    for e in chain:
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return f"name not resolved: {host.rsplit(':', 1)[0] if host.count(':') == 1 else host} (DNS)"
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            detail = e.verify_message or "certificate not trusted"
            return f"TLS verification failed for host {host}: {detail}"
    for e in chain:
        if isinstance(e, ssl.SSLError | requests.exceptions.SSLError | u3.SSLError) or (
                bce is not None and isinstance(e, bce.SSLError)):
            return f"TLS verification failed for host {host}"
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return f"connection refused by {host}"
    for e in chain:
        if isinstance(e, requests.exceptions.ConnectTimeout | u3.ConnectTimeoutError) or (
                bce is not None and isinstance(e, bce.ConnectTimeoutError)):
            return f"timeout connecting to {host}"
    for e in chain:
        if isinstance(e, requests.exceptions.ReadTimeout | u3.ReadTimeoutError | socket.timeout | TimeoutError) or (
                bce is not None and isinstance(e, bce.ReadTimeoutError)):
            return f"timeout waiting for {host} to answer"
    for e in chain:
        if isinstance(e, ConnectionResetError | ConnectionAbortedError | u3.ProtocolError) or (
                bce is not None and isinstance(e, bce.ConnectionClosedError)):
            return f"connection to {host} dropped before an answer"
    for e in chain:
        if isinstance(e, requests.exceptions.ConnectionError | u3.NewConnectionError | OSError) or (
                bce is not None and isinstance(e, bce.EndpointConnectionError)):
            return f"cannot connect to {host} ({type(e).__name__})"
    return None


def is_unreachable(exc: BaseException) -> bool:
    """A network-level failure: the service never answered (no HTTP status)."""
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    return bce is not None and isinstance(exc, bce.EndpointConnectionError | bce.ConnectTimeoutError
                                          | bce.ReadTimeoutError | bce.SSLError | bce.ConnectionClosedError)
