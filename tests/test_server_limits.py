"""The server's limits against a real uvicorn on a free port: held uploads, never-ending chunked
uploads, idle and half-sent connections, and more connections than the cap. The limits are
made small here (fractions of a second) so that each case ends quickly; the assertions are
about what happens (an answer, a closed socket), never about how fast."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fake_session import FakeSession
from image_builders import solid

from alphacut.web.api import api_routes
from alphacut.web.app import create_app
from alphacut.web.headers import SECURITY_HEADERS
from alphacut.web.server import ServerLimits, uvicorn_config

URL = "/api/v1/cutout"
WAIT = 20.0  # the most any socket read below waits before the test fails (a hang, not a timing check)


@dataclass
class Live:
    port: int
    session: FakeSession
    server: Any

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
        return s

    def open_connections(self) -> int:
        return len(self.server.server_state.connections)


@contextlib.contextmanager
def _serving(app: Any, limits: ServerLimits) -> Iterator[tuple[int, Any]]:
    """``app`` served by uvicorn with our protocol on a free port: (port, server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn_config(app, host="127.0.0.1", port=0, limits=limits, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1], server
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
        sock.close()


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """The app with the API over a fake engine, served by uvicorn (our protocol) on a free port."""
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path))
    session = FakeSession(delay=0.2)
    app = create_app(extra_routes=api_routes(lambda: session, queue=1, max_bytes=200_000, body_timeout=1.0))
    limits = ServerLimits(header_timeout=0.5, keep_alive_timeout=0.5, max_connections=8)
    with _serving(app, limits) as (port, server):
        yield Live(port, session, server)


def _head(port: int, method: str, path: str, extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()


def _read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response (status, headers, body by Content-Length) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = s.recv(65536)
        assert chunk, "closed in the middle of a response"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _closed(s: socket.socket) -> bool:
    """True once the server has closed the connection (reads until EOF or a reset)."""
    try:
        while True:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _keep_sending(s: socket.socket, piece: bytes, pause: float, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        try:
            while not stop.is_set():
                s.sendall(piece)
                time.sleep(pause)
        except OSError:  # the server closed the connection: what the test waits for
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_normal_request_is_served(live: Live) -> None:
    r = httpx.post(live.base + URL, content=solid(), timeout=WAIT)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "server" not in r.headers


def test_held_upload_gets_408_and_is_closed(live: Live) -> None:
    body = solid()
    s = live.connect()
    s.sendall(_head(live.port, "POST", URL, f"Content-Type: image/png\r\nContent-Length: {len(body)}\r\n"))
    s.sendall(body[:-1])  # one byte short, then nothing
    status, headers, payload = _read_response(s)
    assert status == 408 and "did not arrive" in json.loads(payload)["error"]
    assert headers["x-content-type-options"] == "nosniff"
    assert _closed(s)
    assert httpx.post(live.base + URL, content=body, timeout=WAIT).status_code == 200  # its place is free again


def test_never_ending_slow_chunked_upload_gets_408_and_is_closed(live: Live) -> None:
    s = live.connect()
    s.sendall(_head(live.port, "POST", URL, "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n"))
    stop = threading.Event()
    sender = _keep_sending(s, b"10\r\n" + b"x" * 16 + b"\r\n", 0.05, stop)
    try:
        status, _, payload = _read_response(s)
        assert status == 408 and "error" in json.loads(payload)
        assert _closed(s)  # not read and discarded for ever
    finally:
        stop.set()
        sender.join(WAIT)


def test_never_ending_fast_chunked_upload_gets_413_and_is_closed(live: Live) -> None:
    s = live.connect()
    s.sendall(_head(live.port, "POST", URL, "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n"))
    stop = threading.Event()
    sender = _keep_sending(s, b"4000\r\n" + b"x" * 0x4000 + b"\r\n", 0.0, stop)
    try:
        status, _, payload = _read_response(s)
        assert status == 413 and "byte cap" in json.loads(payload)["error"]
        assert _closed(s)
    finally:
        stop.set()
        sender.join(WAIT)


def test_held_uploads_fill_the_byte_budget_yet_small_requests_are_served(live: Live) -> None:
    held = []
    for _ in range(2):  # two uploads at the cap (200 000 bytes) fill the budget (2.5 x the cap) ...
        s = live.connect()
        s.sendall(_head(live.port, "POST", URL, "Content-Length: 200000\r\n") + b"\0" * 199_999)
        held.append(s)
    time.sleep(0.2)  # let the server admit both (a test of order, not of speed)
    s = live.connect()
    # ... so a third large one is refused before its body is sent (Expect: 100-continue, as curl
    # sends for large files, would have asked for it) ...
    s.sendall(_head(live.port, "POST", URL, "Content-Length: 150000\r\nExpect: 100-continue\r\n"))
    status, headers, payload = _read_response(s)
    assert status == 503 and int(headers["retry-after"]) >= 1 and "busy" in json.loads(payload)["error"]
    # ... while a small request, meanwhile, is served: the held ones take no place in the queue.
    assert httpx.post(live.base + URL, content=solid(), timeout=WAIT).status_code == 200
    for h in held:
        assert _read_response(h)[0] == 408


def test_answers_written_by_the_protocol_carry_the_security_headers(live: Live) -> None:
    """uvicorn answers a request it cannot parse itself (400), and the task backstop answers 503
    without the app: both carry the same security headers as the app's own answers."""
    s = live.connect()
    s.sendall(b"NOT A REQUEST\r\n\r\n")
    status, headers, _ = _read_response(s)
    assert status == 400
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == value, name
    live.server.config.http_protocol_class.max_tasks = 0  # every request is one too many
    r = httpx.get(live.base + "/", timeout=WAIT)
    assert r.status_code == 503 and "busy" in r.json()["error"] and int(r.headers["retry-after"]) >= 1
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, name


def test_a_client_that_stops_reading_is_cut_off() -> None:
    """A client that reads none of a large answer (the model, say) does not hold its connection
    for ever: once the send buffer stays full for write_timeout, the server drops it."""
    size = 64 * 1024 * 1024  # far more than the socket buffers hold

    async def big(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        chunk = b"\0" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    limits = ServerLimits(header_timeout=5, keep_alive_timeout=5, write_timeout=0.5, max_connections=8)
    with _serving(big, limits) as (port, server):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(WAIT)
        s.connect(("127.0.0.1", port))
        s.sendall(_head(port, "GET", "/"))
        deadline = time.monotonic() + WAIT
        while not server.server_state.connections:
            assert time.monotonic() < deadline, "the server never saw the connection"
            time.sleep(0.01)
        while server.server_state.connections:  # reads nothing meanwhile
            assert time.monotonic() < deadline, "the stalled reader still holds its connection"
            time.sleep(0.1)
        received = 0
        try:
            while chunk := s.recv(1 << 20):
                received += len(chunk)
        except OSError:
            pass  # a reset is a fine way to be cut off
        assert received < size
        s.close()


def test_half_sent_headers_and_silent_connections_are_closed(live: Live) -> None:
    silent = live.connect()
    dribble = live.connect()
    dribble.sendall(b"GET /sw.js HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
    assert _closed(silent) and _closed(dribble)


def test_idle_keep_alive_connection_is_closed(live: Live) -> None:
    s = live.connect()
    s.sendall(_head(live.port, "GET", "/api/v1/openapi.json"))
    status, headers, _ = _read_response(s)
    assert status == 200 and headers.get("connection") != "close"
    assert _closed(s)


def test_idle_connections_cannot_starve_requests(live: Live) -> None:
    idle = [live.connect() for _ in range(3 * 8)]  # three times the cap of 8
    for s in idle:
        s.settimeout(0.05)
    try:
        r = httpx.post(live.base + URL, content=solid(), timeout=WAIT)
        assert r.status_code == 200
        assert live.open_connections() <= 8
        assert _closed(idle[0])  # the oldest idle ones made room
    finally:
        for s in idle:
            s.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ulimit and /proc: Linux")
def test_200_idle_connections_under_ulimit_256_do_not_starve_the_server(tmp_path: Path) -> None:
    """The reported case, end to end: `alphacut serve` in a process limited to 256 descriptors."""

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ALPHACUT_HOME": str(tmp_path)}

    # The child lowers its own limit (ulimit -n 256) before alphacut starts: no preexec_fn in a threaded parent.
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256));"
            f" sys.argv = ['alphacut', 'serve', '--port', '{port}']; from alphacut.cli import main; main()")
    server = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/sw.js", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        for _ in range(200):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=WAIT))
        for _ in range(5):
            assert httpx.get(f"http://127.0.0.1:{port}/sw.js", timeout=WAIT).status_code == 200
        fds = len(os.listdir(f"/proc/{server.pid}/fd"))
        assert fds < 256
    finally:
        for s in idle:
            s.close()
        server.terminate()
        try:
            _, err = server.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            server.kill()
            err = ""
    assert "Too many open files" not in (err or "")
