"""The server's guards in-process: the Host parser, the same-origin check on every state-changing
route, security headers and JSON on every answer (404, 405, 500 included), and `serve`'s refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fake_session import FakeSession
from image_builders import solid
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from alphacut.cli import cli
from alphacut.web import app as web_app
from alphacut.web.api import api_routes
from alphacut.web.guards import is_loopback, parse_host


@pytest.fixture(autouse=True)
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path))  # no model, no runtime: the page explains; routes still work


def _request(app: Any, method: str, url: str, host: str = "127.0.0.1", **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
            return await c.request(method, url, **kw)

    return asyncio.run(go())


def _assert_security_headers(r: httpx.Response) -> None:
    for name, value in web_app.SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, (r.status_code, name)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("127.0.0.1", ("127.0.0.1", None)), ("LOCALHOST:8000", ("localhost", 8000)), ("[::1]", ("[::1]", None)),
     ("[::1]:8000", ("[::1]", 8000)), ("[0:0:0:0:0:0:0:1]:80", ("[::1]", 80)), ("example.com", ("example.com", None)),
     ("[::1].evil", None), ("[::1]evil", None), ("[::1]:80:80", None), ("[::1]:", None), ("127.0.0.1:", None),
     ("127.0.0.1:80x", None), ("127.0.0.1:99999", None), ("a b", None), ("", None), ("[::1", None),
     ("[evil]", None), ("127.0.0.1@evil", None), ("127.0.0.1/x", None), ("-evil", None)],
)
def test_host_parser_is_strict(header: str, expected: tuple[str, int | None] | None) -> None:
    assert parse_host(header) == expected


@pytest.mark.parametrize("host", ["[::1].evil", "[::1]evil:8000", "[::1]:80:80", "127.0.0.1:80x", "localhost.",
                                  "127.0.0.1.evil.example", "[::2]"])
def test_foreign_or_malformed_host_headers_are_400(host: str) -> None:
    r = _request(web_app.create_app(), "GET", "/sw.js", headers={"Host": host})
    assert r.status_code == 400
    _assert_security_headers(r)


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "[::1]:8000", "[0::1]", "localhost"])
def test_loopback_host_headers_are_accepted(host: str) -> None:
    assert _request(web_app.create_app(), "GET", "/sw.js", headers={"Host": host}).status_code == 200


def test_loopback_detection() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.20", "example.com", "localhost.evil"]))


def test_cross_origin_state_changing_requests_are_403_on_every_route() -> None:
    calls = []

    def change(request: Request) -> PlainTextResponse:
        calls.append(request.method)
        return PlainTextResponse("changed")

    app = web_app.create_app(extra_routes=[Route("/settings", change, methods=["POST", "DELETE"]),
                                           *api_routes(FakeSession)])
    for method, url in [("POST", "/settings"), ("DELETE", "/settings"), ("POST", "/api/v1/cutout"),
                        ("GET", "/api/v1/openapi.json"), ("POST", "/")]:
        r = _request(app, method, url, headers={"Origin": "http://evil.example"}, content=solid((32, 24), (10, 200, 30)))
        assert r.status_code == 403, (method, url)
        assert "cross-origin" in r.json()["error"]
        _assert_security_headers(r)
    assert calls == []
    # A page may still be *viewed* from a link on another site; and same-origin requests go through.
    assert _request(app, "GET", "/sw.js", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200
    assert _request(app, "POST", "/settings", headers={"Origin": "http://127.0.0.1"}).status_code == 200
    r = _request(app, "POST", "/api/v1/cutout", headers={"Sec-Fetch-Site": "same-origin"}, content=solid((32, 24), (10, 200, 30)))
    assert r.status_code == 200
    _assert_security_headers(r)


def test_every_error_carries_the_security_headers_and_api_errors_are_json() -> None:
    def crash(request: Request) -> PlainTextResponse:
        raise RuntimeError("boom")

    app = web_app.create_app(extra_routes=[Route("/api/v1/crash", crash), Route("/crash", crash),
                                           *api_routes(FakeSession)])
    cases = [("GET", "/api/v1/nothing", 404), ("GET", "/api/v1/cutout", 405), ("GET", "/api/v1/crash", 500),
             ("POST", "/api/v1/cutout", 422), ("GET", "/nothing", 404), ("GET", "/crash", 500)]
    for method, url, status in cases:
        r = _request(app, method, url)
        assert r.status_code == status, url
        _assert_security_headers(r)
        if url.startswith("/api/"):
            assert r.headers["content-type"] == "application/json" and r.json()["error"], url
        assert "boom" not in r.text  # no internals leak
    assert "POST" in _request(app, "GET", "/api/v1/cutout").headers["allow"]


def test_serve_refuses_the_api_on_a_public_address_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    started = []
    monkeypatch.setattr(web_app, "serve", lambda **kw: started.append(kw))
    monkeypatch.delenv("ALPHACUT_API_KEY", raising=False)
    runner = CliRunner()

    r = runner.invoke(cli, ["serve", "--api", "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "--api-key" in r.output and started == []
    r = runner.invoke(cli, ["serve", "--api", "--host", "0.0.0.0", "--api-key", "short"])
    assert r.exit_code == 2 and "16 printable" in r.output and started == []
    r = runner.invoke(cli, ["serve", "--api-key", "x" * 32])
    assert r.exit_code == 2 and "add --api" in r.output and started == []

    key = "A" * 16 + "-b_c"
    r = runner.invoke(cli, ["serve", "--api", "--host", "0.0.0.0"], env={"ALPHACUT_API_KEY": key})
    assert r.exit_code == 0, r.output
    assert started[-1]["api_key"] == key and started[-1]["host"] == "0.0.0.0"
    r = runner.invoke(cli, ["serve", "--host", "0.0.0.0"], env={"ALPHACUT_API_KEY": key})  # no API: no key needed
    assert r.exit_code == 0 and started[-1]["api_key"] is None
    r = runner.invoke(cli, ["serve", "--api", "--body-timeout", "5", "--max-connections", "20"])
    assert r.exit_code == 0 and started[-1]["body_timeout"] == 5 and started[-1]["limits"].connections == 20


def test_the_library_refuses_the_api_on_a_public_address_without_a_key() -> None:
    with pytest.raises(ValueError, match="needs an API key"):
        web_app.serve(host="192.168.1.20", api=True)
