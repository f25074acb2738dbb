"""Fixtures for the web app: a live server in a thread and a headless Chromium.

The server is wrapped in a recorder that logs every request it receives (method,
path, body size), so tests can check what the page asked for from the server's
side too. The browser runs with a fresh profile and a scratch HOME.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from headless_chromium import CHROMIUM
from headless_chromium import launch as launch_chromium


@dataclass
class Hit:
    method: str
    path: str
    query: str
    body_bytes: int
    status: int = 0
    sent_bytes: int = 0


@dataclass
class Recorder:
    """ASGI wrapper that records every HTTP request the server answers."""

    app: Any
    hits: list[Hit] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hit = Hit(scope["method"], scope["path"], scope.get("query_string", b"").decode(), 0)
        self.hits.append(hit)

        async def counting_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                hit.body_bytes += len(message.get("body", b""))
            return message

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                hit.status = message["status"]
            elif message["type"] == "http.response.body":
                hit.sent_bytes += len(message.get("body", b""))
            await send(message)

        await self.app(scope, counting_receive, counting_send)


class LiveServer:
    """uvicorn on a free 127.0.0.1 port, in a daemon thread; ``stop()`` ends it."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.recorder = Recorder(app)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.recorder, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="alphacut-test-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hits(self) -> list[Hit]:
        return self.recorder.hits

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "webgpu: runs the WebGPU path (set ALPHACUT_TEST_WEBGPU=1)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The WebGPU test needs a real GPU adapter to finish in reasonable time: it is
    deselected (not skipped, so CI's skip guard is unaffected) unless
    ALPHACUT_TEST_WEBGPU=1."""
    if os.environ.get("ALPHACUT_TEST_WEBGPU") == "1":
        return
    dropped = [item for item in items if "webgpu" in item.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if "webgpu" not in item.keywords]


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set ALPHACUT_CHROMIUM to another binary)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright)")
    return CHROMIUM


@pytest.fixture(scope="session")
def web_runtime() -> Path:
    from alphacut.web import runtime

    try:
        return runtime.runtime_path()
    except runtime.RuntimeNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def live_server(isnet_model_path: Path, web_runtime: Path) -> Iterator[LiveServer]:
    from alphacut.web.app import create_app

    server = LiveServer(create_app(model=os.environ.get("ALPHACUT_TEST_MODEL_NAME", "medium")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def server_for() -> Any:
    """``server_for(app)`` -> a LiveServer of another app (call ``stop()`` when done)."""
    return LiveServer


@pytest.fixture(scope="session")
def playwright_driver(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


def launch(driver: Any, profile: Path, extra_args: list[str] | None = None) -> Any:
    """A persistent context with a fresh profile; Chromium's files stay in ``profile``."""
    return launch_chromium(driver, profile, extra_args or [], viewport={"width": 1280, "height": 900})


@pytest.fixture(scope="session")
def launch_browser(playwright_driver: Any) -> Any:
    """``launch_browser(folder, extra_args=[])`` -> a fresh persistent Chromium context."""
    return lambda folder, extra_args=(): launch(playwright_driver, folder, list(extra_args))


@pytest.fixture(scope="module")
def browser(playwright_driver: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium")
    context = launch(playwright_driver, profile)
    yield context
    context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's browser build (fetched by `alphacut runtime pull --test-tools`)."""
    from alphacut.web import runtime

    try:
        return runtime.axe_path().read_text(encoding="utf-8")
    except runtime.RuntimeNotFoundError as exc:
        pytest.skip(str(exc))
