"""The local web app: a page that cuts images out *in the browser tab*.

The server only hands out static files: the page, its scripts, the onnxruntime-web
runtime, the model and the pre/post-processing graphs. No route accepts an upload;
images never leave the tab. Every file except the page and the service worker is
served under a content-hashed URL (``/assets/<hash>/<name>``) with immutable
caching, so a second visit fetches nothing large and the service worker can keep
the app working offline.

:func:`create_app` builds the ASGI app (test it in-process with
``httpx.ASGITransport``); :func:`serve` runs it with uvicorn.
"""

from __future__ import annotations

import hashlib
import html
import json
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import models
from ..errors import ModelError, RuntimeNotFoundError
from ..graphs import (
    EDGES,
    build_apply_graph,
    build_coefficients_graph,
    build_preprocess_graph,
    edge_params,
    to_bytes,
)
from ..listing_graph import BACKGROUND_KINDS, SHADOW_KINDS, build_listing_graph, graph_name
from ..presets import PRESETS
from . import runtime, variants
from .guards import LOOPBACK_HOSTS, OriginCheck, is_loopback, normalise_host, parse_host
from .headers import CONTENT_SECURITY_POLICY, SECURITY_HEADERS, raw_headers
from .server import ServerLimits, uvicorn_config

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DEFAULT_ALLOWED_HOSTS",
    "IMMUTABLE",
    "SECURITY_HEADERS",
    "allowed_hosts_for",
    "create_app",
    "serve",
]

STATIC = Path(__file__).parent / "static"
DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = LOOPBACK_HOSTS

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
}

# Files of static/ served under hashed URLs (index.html, error.html and sw.js are templates).
_STATIC_ASSETS = ("app.js", "worker.js", "deflate.js", "review.js", "touchup.js", "listing.js", "style.css", "icon.svg")


@dataclass
class _Asset:
    """One immutable file: on disk, or bytes built once on first request."""

    name: str
    key: str
    path: Path | None = None
    build: Callable[[], bytes] | None = None
    data: bytes | None = None
    size: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"/assets/{self.key}/{self.name}"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES.get(Path(self.name).suffix, "application/octet-stream")

    def bytes(self) -> bytes:
        with self._lock:
            if self.data is None:
                assert self.build is not None
                self.data = self.build()
            return self.data


def _hash_file(path: Path) -> str:
    return models.sha256_file(path)[:16]


def _bytes_asset(name: str, data: bytes) -> _Asset:
    return _Asset(name=name, key=hashlib.sha256(data).hexdigest()[:16], data=data, size=len(data))


def _file_asset(path: Path, name: str | None = None, key: str | None = None) -> _Asset:
    return _Asset(
        name=name or path.name, key=key or _hash_file(path), path=path, size=path.stat().st_size
    )


class _Assets:
    """Everything the page needs, by hashed URL, plus the config the page reads."""

    def __init__(self, model: str) -> None:
        self.by_url: dict[str, _Asset] = {}
        self.errors: list[str] = []
        self.config: dict[str, Any] = {}  # the page's JSON config
        self.shell: list[str] = []  # small files the service worker caches at install

        static = {name: self._add(_file_asset(STATIC / name)) for name in _STATIC_ASSETS}
        self.shell += [a.url for a in static.values()]
        self.static = static

        pre = self._add(_bytes_asset("preprocess.onnx", to_bytes(build_preprocess_graph(1024))))
        # The page applies the library's default options: refined edges, foreground colours;
        # one coefficient graph per edge style (Options.edges), the default's first, and
        # the apply graph they share (the engine's two stages: see Session.postprocess).
        edge_graphs = {
            edges: self._add(
                _bytes_asset(
                    "coefficients.onnx" if edges == "auto" else f"coefficients-{edges}.onnx",
                    to_bytes(build_coefficients_graph(edge_params(edges))),
                )
            )
            for edges in EDGES
        }
        apply = self._add(_bytes_asset("apply.onnx", to_bytes(build_apply_graph(edge_params("auto")))))
        self.shell += [pre.url, apply.url, *(graph.url for graph in edge_graphs.values())]
        # The listing photo's graphs, one per (background, shadow) kind: small, so all are
        # in the offline shell; the page's layout code is listing.js.
        listing_graphs: dict[str, str] = {}
        for background in BACKGROUND_KINDS:
            for shadow in SHADOW_KINDS:
                name = graph_name(background, shadow)
                graph = self._add(_bytes_asset(f"{name}.onnx", to_bytes(build_listing_graph(background, shadow))))
                listing_graphs[f"{background}-{shadow}"] = graph.url
                self.shell.append(graph.url)

        runtime_cfg: dict[str, dict[str, str]] = {}
        try:
            folder = runtime.runtime_path()
        except RuntimeNotFoundError as exc:
            self.errors.append(str(exc))
        else:
            rt = {name: self._add(_file_asset(folder / name)) for name in runtime.RUNTIME_FILES}
            runtime_cfg = {
                "wasm": {
                    "bundle": rt["ort.wasm.min.mjs"].url,
                    "mjs": rt["ort-wasm-simd-threaded.mjs"].url,
                    "wasm": rt["ort-wasm-simd-threaded.wasm"].url,
                },
                "webgpu": {
                    "bundle": rt["ort.webgpu.min.mjs"].url,
                    "mjs": rt["ort-wasm-simd-threaded.asyncify.mjs"].url,
                    "wasm": rt["ort-wasm-simd-threaded.asyncify.wasm"].url,
                },
            }
            self.shell += [a.url for a in rt.values() if a.name.endswith(".mjs")]
        zip_url = ""
        try:
            zip_url = self._add(_file_asset(runtime.zip_path())).url
            self.shell.append(zip_url)
        except RuntimeNotFoundError as exc:
            if not self.errors:  # one message naming the command is enough
                self.errors.append(str(exc))

        model_cfg: dict[str, object] = {}
        try:
            spec = models.get_spec(model)
            path = models.model_path(spec)
        except ModelError as exc:
            self.errors.append(str(exc))
        else:
            size = path.stat().st_size
            urls: dict[str, str] = {}
            for variant in ("wasm", *variants.webgpu_variants(path)):
                asset = _Asset(
                    name=f"{spec.name}-{variant}.onnx",
                    key=variants.variant_key(spec.sha256, variant),
                    build=lambda v=variant: variants.build_variant(path, v, output=spec.output_name),  # type: ignore[misc]
                )
                urls[variant] = self._add(asset).url
            model_cfg = {
                "name": spec.name,
                "description": spec.description,
                "license": spec.license,
                "sha256": spec.sha256,
                "size": size,
                "inputSize": spec.input_size,
                "wasm": urls.pop("wasm"),
                "webgpu": {k.removeprefix("webgpu-"): v for k, v in urls.items()},
            }
        self.config = {
            "model": model_cfg,
            "graphs": {
                "preprocess": pre.url,
                "apply": apply.url,
                "edges": {edges: graph.url for edges, graph in edge_graphs.items()},
            },
            "runtime": runtime_cfg,
            "worker": static["worker.js"].url,
            "deflate": static["deflate.js"].url,
            "review": static["review.js"].url,
            "touchup": static["touchup.js"].url,
            "listing": {"module": static["listing.js"].url, "graphs": listing_graphs, "presets": _presets()},
            "zip": zip_url,
        }
        # Changes whenever any served file changes: the service worker's version.
        digest = hashlib.sha256(json.dumps(sorted(self.by_url), sort_keys=True).encode())
        self.version = digest.hexdigest()[:16]

    def prebuild(self) -> None:
        """Build the derived model file the page loads by default now, not on first request."""
        wasm = self.config.get("model", {}).get("wasm")
        if wasm:
            self.by_url[wasm].bytes()

    def _add(self, asset: _Asset) -> _Asset:
        self.by_url[asset.url] = asset
        return asset


def _presets() -> list[dict[str, Any]]:
    """The listing presets for the page's menu: name, label, rule and Options values."""
    return [{"name": p.name, "label": p.label, "rule": p.rule, "values": dict(p.values)} for p in PRESETS.values()]


def _json_for_html(data: object) -> str:
    # Safe inside <script type="application/json">: no "</script>" or "<!--" possible.
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _render(template: str, values: dict[str, str]) -> str:
    text = (STATIC / template).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


class _SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.raw = raw_headers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in self.raw}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": headers + self.raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _host_name(host_header: str) -> str | None:
    """``example.com:8000`` -> ``example.com``; ``[::1]:8000`` -> ``[::1]``; None if malformed."""
    parsed = parse_host(host_header)
    return parsed[0] if parsed is not None else None


class _HostCheck:
    """400 for any Host header not allowed: a foreign name means DNS rebinding.

    The header must be exactly one allowed name (``[::1].evil`` is not ``[::1]``).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed = {_normalise_host(h) for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "*" not in self.allowed:
            hosts = [v for k, v in scope.get("headers", []) if k == b"host"]
            host = _host_name(hosts[0].decode("latin-1")) if len(hosts) == 1 else None
            if host is None or host not in self.allowed:
                response = Response("Invalid host header", status_code=400, media_type="text/plain")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _normalise_host(host: str) -> str:
    return normalise_host(host)


async def _server_error(request: Request, exc: Exception) -> Response:
    """A fault of the server: JSON for the API, plain text elsewhere (the traceback goes to the log)."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "internal error: the server log has the details; please report it"},
                            status_code=500, headers={"Cache-Control": "no-store"})
    return PlainTextResponse("Internal Server Error", status_code=500, headers={"Cache-Control": "no-store"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405, ...: under /api/ a JSON ``{"error": ...}`` like every other API answer."""
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        hint = {404: "no such API route: see /api/v1/openapi.json", 405: "wrong method for this route"}
        return JSONResponse({"error": hint.get(exc.status_code, exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


class _App(Starlette):
    """Starlette, with the security headers outside everything, its 500 answer included."""

    def build_middleware_stack(self) -> ASGIApp:
        return _SecurityHeaders(super().build_middleware_stack())


def create_app(
    *,
    model: str = "medium",
    allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The web app as an ASGI application.

    ``model`` names the registry model the page runs. ``allowed_hosts`` are the
    Host header names accepted (``"*"`` disables the check). ``extra_routes`` are
    mounted before the page routes (for example an HTTP API under ``/api/v1/``).
    A missing model or runtime does not stop the app: the page explains what to run.
    """
    assets = _Assets(model)
    static = assets.static

    def page(request: Request) -> Response:
        if assets.errors:
            body = _render(
                "error.html",
                {
                    "style": static["style.css"].url,
                    "icon": static["icon.svg"].url,
                    "errors": "".join(f"<li>{html.escape(e)}</li>" for e in assets.errors),
                },
            )
            return HTMLResponse(body, status_code=503, headers={"Cache-Control": "no-store"})
        body = _render(
            "index.html",
            {
                "style": static["style.css"].url,
                "app": static["app.js"].url,
                "icon": static["icon.svg"].url,
                "config": _json_for_html(assets.config),
                "model_name": html.escape(str(assets.config["model"]["name"])),
            },
        )
        return HTMLResponse(body, headers={"Cache-Control": NO_CACHE})

    sw_body = _render(
        "sw.js",
        {
            "manifest": json.dumps(
                {"version": assets.version, "shell": assets.shell, "assets": sorted(assets.by_url)},
                separators=(",", ":"),
            )
        },
    ).encode()

    def service_worker(request: Request) -> Response:
        return Response(
            sw_body,
            media_type=_MEDIA_TYPES[".js"],
            headers={"Cache-Control": NO_CACHE},
        )

    def asset(request: Request) -> Response:
        found = assets.by_url.get(request.url.path)
        if found is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        headers = {"Cache-Control": IMMUTABLE}
        if found.path is not None:
            return FileResponse(found.path, media_type=found.media_type, headers=headers)
        return Response(found.bytes(), media_type=found.media_type, headers=headers)

    routes: list[BaseRoute] = [
        *extra_routes,
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/sw.js", service_worker, methods=["GET", "HEAD"]),
        Route("/assets/{key}/{name}", asset, methods=["GET", "HEAD"]),
    ]
    app = _App(routes=routes, exception_handlers={500: _server_error, HTTPException: _http_error})
    # Outermost first: the Host check, then the same-origin check (the API, and any state-changing request).
    app.add_middleware(OriginCheck)
    app.add_middleware(_HostCheck, allowed_hosts=list(allowed_hosts))
    app.state.assets = assets
    return app


def allowed_hosts_for(host: str) -> tuple[str, ...]:
    """The Host names to accept when bound to ``host``."""
    hosts = list(DEFAULT_ALLOWED_HOSTS)
    if host in ("0.0.0.0", "::", ""):
        # Bound to every interface: accept this machine's own names and addresses.
        name = socket.gethostname()
        hosts += [name, socket.getfqdn()]
        try:
            hosts += [str(info[4][0]) for info in socket.getaddrinfo(name, None)]
        except OSError:
            pass
    else:
        hosts.append(host)
    return tuple(dict.fromkeys(_normalise_host(h) for h in hosts))


def serve(
    *, host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False, model: str = "medium",
    api: bool = False, max_upload_mb: float = 25.0, api_key: str | None = None, body_timeout: float | None = None,
    limits: ServerLimits | None = None,
) -> None:
    """Run the web app with uvicorn until interrupted (``api``: also the opt-in upload API).

    ``limits`` are the connection limits (header and keep-alive timeouts, connection cap);
    ``body_timeout`` and ``api_key`` are the API's. The API on an address other machines can
    reach needs an ``api_key``: this raises :class:`ValueError` without one.
    """
    import uvicorn

    from .api import DEFAULT_BODY_TIMEOUT, default_api_routes  # the API accepts uploads: only when asked for

    if api and api_key is None and not is_loopback(host):
        raise ValueError(f"--api on {host}, an address other machines can reach, needs an API key: pass"
                         " --api-key KEY (or set ALPHACUT_API_KEY), or bind 127.0.0.1")
    extra = default_api_routes(model, max_upload_mb=max_upload_mb, api_key=api_key,
                               body_timeout=body_timeout or DEFAULT_BODY_TIMEOUT) if api else []
    app = create_app(model=model, allowed_hosts=allowed_hosts_for(host), extra_routes=extra)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}/"
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.Server(uvicorn_config(app, host=host, port=port, limits=limits or ServerLimits())).run()
