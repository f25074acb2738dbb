"""Who may talk to the server: the Host check, the same-origin check, the API key.

* **Host** (DNS rebinding): the Host header must name this server exactly, a
  loopback name or address or the address it is bound to, with an optional port.
  ``127.0.0.1.evil.example`` or ``[::1].evil`` are not ``127.0.0.1`` or ``[::1]``.
* **Origin** (cross-site request forgery): a page on another site can make the
  user's browser POST to ``127.0.0.1`` without a preflight (a form or multipart
  body is a "simple" request). Browsers say where a request comes from, in
  ``Origin`` and ``Sec-Fetch-Site``; the API and every state-changing request
  refuse (403) any origin other than the server's own. Scripts and ``curl`` send
  neither header and are not affected.
* **API key**: callers from other machines prove who they are with
  ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "LOOPBACK_HOSTS",
    "OriginCheck",
    "api_key_refusal",
    "cross_origin_refusal",
    "is_loopback",
    "normalise_host",
    "parse_host",
]

LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # "none": the user typed the URL
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
_BRACKETED = re.compile(r"\[([0-9a-f:.]+)\](?::(\d{1,5}))?")


def normalise_host(host: str) -> str:
    """Lower case; IPv6 addresses in brackets (``::1`` -> ``[::1]``)."""
    host = host.strip().lower()
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            return f"[{ipaddress.ip_address(host.strip('[]')).compressed}]"
    except ValueError:
        pass
    return host


def parse_host(header: str) -> tuple[str, int | None] | None:
    """``name[:port]`` or ``[v6][:port]`` -> (normalised name, port); None if malformed.

    Strict: nothing may follow the name but one ``:port`` (so ``[::1].evil``,
    ``[::1]:80:80`` and ``a b`` are malformed, not hosts).
    """
    text = header.strip().lower()
    if text.startswith("["):
        m = _BRACKETED.fullmatch(text)
        if m is None:
            return None
        try:
            addr = ipaddress.IPv6Address(m.group(1))
        except ValueError:
            return None
        name, port = f"[{addr.compressed}]", m.group(2)
    else:
        name, sep, port = text.partition(":")
        if (sep and not port.isdigit()) or _NAME.fullmatch(name) is None:
            return None
        port = port or None
    number = int(port) if port is not None else None
    if number is not None and not 0 < number < 65536:
        return None
    return name, number


def is_loopback(host: str) -> bool:
    """True for an address or name that only this machine can reach."""
    host = host.strip().lower().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cross_origin_refusal(scope: Scope) -> str | None:
    """Why this request comes from another site (to answer 403), or None when it does not."""
    site = _header(scope, b"sec-fetch-site")
    if site is not None and site.strip().lower() not in _SAME_ORIGIN_FETCH:
        return (f"cross-origin request refused (Sec-Fetch-Site: {site}): the API only takes requests from"
                " this server's own page or from programs such as curl; call it from a script, not a web page")
    origin = _header(scope, b"origin")
    if origin is None:
        return None
    default_port = 443 if scope.get("scheme") == "https" else 80
    host = parse_host(_header(scope, b"host") or "")
    own = (host[0], host[1] or default_port) if host else None
    try:
        parts = urlsplit(origin.strip())
        theirs = None
        if parts.scheme in ("http", "https") and parts.hostname and not parts.path.strip("/"):
            theirs = (normalise_host(parts.hostname), parts.port or (443 if parts.scheme == "https" else 80))
    except ValueError:
        theirs = None
    if own is None or theirs != own:
        return (f"cross-origin request refused (Origin: {origin}): the API only takes requests from this"
                " server's own page or from programs such as curl; call it from a script, not a web page")
    return None


def api_key_refusal(scope: Scope, api_key: str | None) -> str | None:
    """Why the request lacks the API key (to answer 401), or None when it has it or none is set."""
    if api_key is None:
        return None
    given = _header(scope, b"x-api-key")
    auth = _header(scope, b"authorization")
    if given is None and auth is not None:
        kind, _, token = auth.strip().partition(" ")
        if kind.lower() == "bearer":
            given = token.strip()
    if given is None:
        return "this server needs an API key: send it as `Authorization: Bearer KEY` or `X-API-Key: KEY`"
    if not hmac.compare_digest(given.encode("utf-8"), api_key.encode("utf-8")):
        return "wrong API key: send the key the server was started with (--api-key or ALPHACUT_API_KEY)"
    return None


class OriginCheck:
    """403 for cross-origin requests to ``/api/`` and for any state-changing request."""

    def __init__(self, app: ASGIApp, *, protected_prefixes: Sequence[str] = ("/api/",)) -> None:
        self.app = app
        self.prefixes = tuple(protected_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            scope["method"] not in SAFE_METHODS or str(scope["path"]).startswith(self.prefixes)
        ):
            reason = cross_origin_refusal(scope)
            if reason is not None:
                response = JSONResponse({"error": reason}, status_code=403,
                                        headers={"Cache-Control": "no-store"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
