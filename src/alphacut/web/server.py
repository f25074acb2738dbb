"""uvicorn, with the limits a server facing slow or hostile clients needs.

uvicorn closes a keep-alive connection that stays idle (``timeout_keep_alive``) and
caps header size (h11), but has no deadline for the request headers and no cap on
open connections: 200 idle sockets exhaust a small ``ulimit -n`` and a client
that sends its headers a byte at a time holds a connection for ever. The
protocol here adds both:

* **header timeout**: a connection that has not sent a whole request head within
  ``header_timeout`` seconds (of connecting, or of its previous response) is closed;
* **write timeout**: a client that reads nothing of its answer for ``write_timeout``
  seconds (the 88 MB model, say, while the send buffer stays full) is cut off, so
  stalled readers cannot hold connections and tasks for ever;
* **connection cap**: past ``max_connections`` open connections, a new one evicts
  the connection that has waited longest *without a request in progress* (an idle
  keep-alive socket, or one still dribbling its headers); only when every
  connection is busy is the newcomer itself closed. Idle sockets thus cannot
  starve real requests.

The body deadline is the API's (it reads the body): see :mod:`alphacut.web.api`.

The answers this layer writes itself carry the security headers too
(:mod:`alphacut.web.headers`): uvicorn's own 400 for a malformed request, and the
503 of the task backstop (requests still running after their clients left), which
is checked here rather than by uvicorn's ``limit_concurrency`` so that it can.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass
from typing import Any

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .headers import raw_headers

__all__ = ["ServerLimits", "uvicorn_config"]

_LINGER_SECONDS = 1.0
_LINGER_BYTES = 1024 * 1024


def _default_max_connections() -> int:
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover
        soft = 1024
    if soft == resource.RLIM_INFINITY:
        soft = 1024
    # Half the descriptors at most: the model, the static files and the logs need some.
    return max(8, min(100, soft // 2))


@dataclass(frozen=True)
class ServerLimits:
    """Per-connection limits of the HTTP server (seconds, counts)."""

    header_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    write_timeout: float = 60.0
    max_connections: int = 0  # 0: min(100, half of RLIMIT_NOFILE)
    max_header_bytes: int = 16 * 1024

    def __post_init__(self) -> None:
        if min(self.header_timeout, self.keep_alive_timeout, self.write_timeout) <= 0 or self.max_connections < 0:
            raise ValueError(f"bad server limits: {self}")

    @property
    def connections(self) -> int:
        return self.max_connections or _default_max_connections()


class _GuardedH11(H11Protocol):
    """H11Protocol with a header deadline and an evicting connection cap (class attributes set per server)."""

    header_timeout = 10.0
    write_timeout = 60.0
    max_connections = 100
    max_tasks = 200

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = self._backstop(self.app)
        self._header_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._waiting_since = time.monotonic()
        self._linger: asyncio.TimerHandle | None = None
        self._discarded = 0
        self._linger_cycle: Any = None

    def _awaiting_request(self) -> bool:
        return self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._waiting_since = time.monotonic()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._awaiting_request() and not self.transport.is_closing():
            self.logger.info("closing a connection that sent no complete request within %gs", self.header_timeout)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def _make_room(self) -> None:
        idle = [c for c in self.connections
                if isinstance(c, _GuardedH11) and c is not self and c._awaiting_request()
                and not c.transport.is_closing()]
        victim = min(idle, key=lambda c: c._waiting_since) if idle else self
        if victim is self:
            self.logger.warning("%d connections, all busy: refusing a new one", len(self.connections) - 1)
        victim.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._linger is not None:
            self._discarded += len(data)
            if self._discarded > _LINGER_BYTES:
                self.transport.close()
                return
        super().data_received(data)
        if self._linger is not None and (self.cycle is not self._linger_cycle
                                         or self.conn.their_state is not h11.SEND_BODY):
            # The client finished that body after all: keep the connection.
            self._linger.cancel()
            self._linger = None
            if self._awaiting_request():
                self._arm_header_timer()
        if not self._awaiting_request():
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before the body was all read (413, 503, 408, 405, ...): uvicorn would read and
            # discard the rest for as long as it comes, and a chunked body may never end. Linger a
            # moment (so the client reads the answer rather than a reset), then close.
            self._discarded = 0
            self._linger_cycle = self.cycle
            self._linger = self.loop.call_later(_LINGER_SECONDS, self.transport.close)
        super().on_response_complete()
        if not self.transport.is_closing() and self._awaiting_request():
            self._arm_header_timer()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout, self._write_timed_out)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timed_out(self) -> None:
        self._write_timer = None
        self.logger.info("cutting off a client that read nothing for %gs", self.write_timeout)
        self.transport.abort()  # close() would wait for the unread buffer to drain

    def _backstop(self, app: ASGIApp) -> ASGIApp:
        """``app``, answering 503 (with the security headers) while too many requests are running."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and len(self.tasks) > self.max_tasks:  # this request's task included
                self.logger.warning("%d requests running: answering 503", len(self.tasks))
                body = b'{"error": "the server is busy: try again in a moment"}'
                await send({"type": "http.response.start", "status": 503, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"), (b"connection", b"close"), *raw_headers()]})
                await send({"type": "http.response.body", "body": body})
                return
            await app(scope, receive, send)

        return guarded

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse, with the security headers."""
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"), *raw_headers()]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=msg.encode("ascii", "replace")), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)


def protocol_class(limits: ServerLimits) -> type[H11Protocol]:
    """A protocol class carrying ``limits`` (uvicorn builds one instance per connection)."""
    return type("GuardedH11Protocol", (_GuardedH11,), {
        "header_timeout": limits.header_timeout,
        "write_timeout": limits.write_timeout,
        "max_connections": limits.connections,
        "max_tasks": 2 * limits.connections,
    })


def uvicorn_config(app: Any, *, host: str, port: int, limits: ServerLimits, log_level: str = "info") -> Any:
    """A ``uvicorn.Config`` that applies ``limits``."""
    import uvicorn

    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, server_header=False,
        http=protocol_class(limits), ws="none", lifespan="off",
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
        # The backstop on tasks is the protocol's (it answers with the security headers).
        limit_concurrency=None,
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )
