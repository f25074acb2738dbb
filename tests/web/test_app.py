"""The web app in-process (httpx.ASGITransport): headers, caching, routes, Host check."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from alphacut import models
from alphacut.web import app as web_app
from alphacut.web import runtime

BASE = "http://127.0.0.1:8000"


class Client:
    """A tiny synchronous wrapper over an async httpx client bound to the ASGI app."""

    def __init__(self, app: Any, base_url: str = BASE) -> None:
        self.app = app
        self.base_url = base_url

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)


def _fake_runtime(home: Path) -> None:
    folder = home / "runtime" / f"onnxruntime-web-{runtime.ORT_VERSION}"
    folder.mkdir(parents=True)
    for name in runtime.RUNTIME_FILES:
        (folder / name).write_bytes(f"// stand-in for {name}\n".encode())
    zip_folder = home / "runtime" / f"client-zip-{runtime.ZIP_VERSION}"
    zip_folder.mkdir(parents=True)
    (zip_folder / runtime.ZIP_FILE).write_bytes(b"export function downloadZip() {}\n")


def _fake_model(home: Path, name: str = "medium") -> Path:
    """A file at the cache path of ``name`` (content is not checked at serve time)."""
    spec = models.get_spec(name)
    path = home / "models" / f"{spec.name}-{spec.sha256[:12]}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    # A tiny real ONNX graph, so the WebGPU variant detection can read it.
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])],
    )
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def client(home: Path) -> Iterator[Client]:
    _fake_runtime(home)
    _fake_model(home)
    yield Client(web_app.create_app())


def _config(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="alphacut-config">(.*?)</script>', page, re.S)
    assert match, "the page embeds its config"
    return json.loads(match.group(1))


def _asset_urls(page: str) -> list[str]:
    config = _config(page)
    graphs = [v for v in config["graphs"].values() if isinstance(v, str)] + list(config["graphs"]["edges"].values())
    urls = [config["worker"], config["zip"], *graphs, config["model"]["wasm"]]
    urls += list(config["model"]["webgpu"].values())
    for bundle in config["runtime"].values():
        urls += list(bundle.values())
    urls += re.findall(r'(?:src|href)="(/assets/[^"]+)"', page)
    return urls


SECURITY = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (response.url, name)
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert directives["connect-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval'" not in csp.replace("wasm-unsafe-eval'", "")
    assert "*" not in csp and "http" not in csp


def test_page_is_served_with_strict_headers_and_no_cache(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    _assert_security_headers(response)
    # No inline script: only the JSON data block and an external module.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.S)
    for attrs, body in scripts:
        assert 'type="application/json"' in attrs or (body.strip() == "" and "src=" in attrs)
    assert "http://" not in response.text and "https://" not in response.text, "no CDN, no external URL"


def test_every_asset_has_a_content_hashed_immutable_url(client: Client, home: Path) -> None:
    page = client.get("/").text
    urls = _asset_urls(page)
    assert len(urls) >= 12
    for url in urls:
        assert re.fullmatch(r"/assets/[0-9a-f]{16}/[A-Za-z0-9._-]+", url), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        _assert_security_headers(response)
    # Static files are keyed by their content's SHA-256.
    config = _config(page)
    worker = client.get(config["worker"])
    assert config["worker"].split("/")[2] == hashlib.sha256(worker.content).hexdigest()[:16]
    # The model is keyed by its verified SHA-256 and the recipe of the derived file.
    from alphacut.web import variants

    key = variants.variant_key(models.get_spec("medium").sha256, "wasm")
    assert config["model"]["wasm"] == f"/assets/{key}/medium-wasm.onnx"


def test_media_types(client: Client) -> None:
    config = _config(client.get("/").text)
    assert client.get(config["runtime"]["wasm"]["wasm"]).headers["content-type"] == "application/wasm"
    assert client.get(config["runtime"]["wasm"]["bundle"]).headers["content-type"].startswith("text/javascript")
    assert client.get(config["worker"]).headers["content-type"].startswith("text/javascript")
    assert client.get(config["graphs"]["preprocess"]).headers["content-type"] == "application/octet-stream"


def test_graphs_are_the_engines_graphs(client: Client) -> None:
    from alphacut.graphs import (
        EDGES,
        PostprocessParams,
        build_apply_graph,
        build_coefficients_graph,
        build_preprocess_graph,
        edge_params,
        to_bytes,
    )

    config = _config(client.get("/").text)
    assert client.get(config["graphs"]["preprocess"]).content == to_bytes(build_preprocess_graph(1024))
    # One apply graph serves every edge style: they differ only in the coefficient stage.
    apply = client.get(config["graphs"]["apply"]).content
    assert apply == to_bytes(build_apply_graph(PostprocessParams()))
    assert set(config["graphs"]["edges"]) == set(EDGES)
    for edges, url in config["graphs"]["edges"].items():
        assert to_bytes(build_apply_graph(edge_params(edges))) == apply, edges
        assert client.get(url).content == to_bytes(build_coefficients_graph(edge_params(edges))), edges
    assert client.get(config["graphs"]["edges"]["auto"]).content == to_bytes(build_coefficients_graph(PostprocessParams()))


def test_unknown_asset_is_404_and_changed_hash_is_404(client: Client) -> None:
    config = _config(client.get("/").text)
    worker = config["worker"]
    assert client.get(worker.replace(worker.split("/")[2], "0" * 16)).status_code == 404
    assert client.get("/assets/0000000000000000/secret.txt").status_code == 404
    assert client.get("/../pyproject.toml").status_code == 404
    response = client.get("/nope")
    assert response.status_code == 404
    _assert_security_headers(response)


def test_service_worker_is_not_cached_and_lists_the_assets(client: Client) -> None:
    page = client.get("/").text
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["content-type"].startswith("text/javascript")
    manifest = json.loads(re.search(r"const MANIFEST = (\{.*?\});", response.text).group(1))
    assert set(_asset_urls(page)) <= set(manifest["assets"])


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/", "/sw.js", "ASSET"])
def test_page_routes_accept_no_uploads(client: Client, method: str, path: str) -> None:
    if path == "ASSET":
        path = _config(client.get("/").text)["worker"]
    response = client.request(method, path, content=b"\xff\xd8\xff fake jpeg bytes")
    assert response.status_code == 405
    _assert_security_headers(response)


def test_no_upload_route_exists(client: Client) -> None:
    app = client.app
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        assert methods <= {"GET", "HEAD"}, (route, methods)
    for path in ("/upload", "/api/upload", "/cut", "/api/v1/cut"):
        assert client.request("POST", path, content=b"x").status_code in (404, 405)


def test_head_is_allowed(client: Client) -> None:
    assert client.request("HEAD", "/").status_code == 200


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil", "[::2]:8000", ""],
)
def test_foreign_host_header_is_rejected(client: Client, host: str) -> None:
    response = client.get("/", headers={"Host": host})
    assert response.status_code == 400
    _assert_security_headers(response)


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:1234", "LOCALHOST", "[::1]:8000", "127.0.0.1"])
def test_local_host_headers_are_accepted(client: Client, host: str) -> None:
    assert client.get("/", headers={"Host": host}).status_code == 200


def test_bound_host_is_allowed(home: Path) -> None:
    _fake_runtime(home)
    _fake_model(home)
    app = web_app.create_app(allowed_hosts=web_app.allowed_hosts_for("192.168.1.20"))
    client = Client(app, base_url="http://192.168.1.20:8000")
    assert client.get("/").status_code == 200
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400


def test_extra_routes_are_mounted_with_the_same_headers(home: Path) -> None:
    _fake_runtime(home)
    _fake_model(home)

    def ping(request: Any) -> PlainTextResponse:
        return PlainTextResponse("pong")

    app = web_app.create_app(extra_routes=[Route("/api/v1/ping", ping, methods=["POST"])])
    client = Client(app)
    response = client.request("POST", "/api/v1/ping")
    assert response.text == "pong"
    _assert_security_headers(response)
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400


def test_missing_model_page_names_the_command(home: Path) -> None:
    _fake_runtime(home)
    response = Client(web_app.create_app()).get("/")
    assert response.status_code == 503
    assert "alphacut models pull medium" in response.text
    _assert_security_headers(response)


def test_missing_runtime_page_names_the_command(home: Path) -> None:
    _fake_model(home)
    response = Client(web_app.create_app()).get("/")
    assert response.status_code == 503
    assert runtime.PULL_COMMAND in response.text
    with pytest.raises(runtime.RuntimeNotFoundError, match="alphacut runtime pull"):
        runtime.runtime_path()


def test_unknown_model_is_reported(home: Path) -> None:
    _fake_runtime(home)
    response = Client(web_app.create_app(model="nope")).get("/")
    assert response.status_code == 503
    assert "unknown model" in response.text


def test_webgpu_variants_are_offered_for_fp16_models_only(home: Path) -> None:
    from alphacut.web import variants

    path = _fake_model(home)
    assert variants.webgpu_variants(path) == ("webgpu-f32",)
    keys = {variants.variant_key("ab" * 32, v) for v in variants.VARIANTS}
    assert len(keys) == 3
    assert variants.variant_key("cd" * 32, "wasm") not in keys


@pytest.mark.model
@pytest.mark.slow
def test_real_model_variants(isnet_model_path: Path) -> None:
    """The variants compute what the original computes. Both float32 ones (WASM, and
    WebGPU without shader-f16) keep the float16 weights, each read by one Cast to float,
    so they download no more than the original, and give exactly the fully upcast model's
    result; the WebGPU ones have no MaxPool ceil_mode."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from alphacut import variants as recipes
    from alphacut.web import variants

    assert variants.webgpu_variants(isnet_model_path) == ("webgpu-f16", "webgpu-f32")
    x = np.random.default_rng(0).random((1, 3, 1024, 1024), dtype=np.float32) - 0.5
    so = ort.SessionOptions()
    so.log_severity_level = 3

    def run(model: bytes | str) -> np.ndarray:
        return ort.InferenceSession(model, so).run(["output"], {"input": x})[0]

    want = run(str(isnet_model_path))
    upcast = run(recipes.derive(isnet_model_path, ["main_output", "fp32"]))
    size = isnet_model_path.stat().st_size
    for name in ("wasm", "webgpu-f32", "webgpu-f16"):
        data = variants.build_variant(isnet_model_path, name)  # type: ignore[arg-type]
        assert data == variants.build_variant(isnet_model_path, name), "deterministic"  # type: ignore[arg-type]
        assert len(data) < size * 1.01, name
        model = onnx.load_from_string(data)
        assert [o.name for o in model.graph.output] == ["output"], name
        for node in model.graph.node:
            for attr in node.attribute:
                if name.startswith("webgpu"):
                    assert not (node.op_type == "MaxPool" and attr.name == "ceil_mode" and attr.i == 1)
        if name == "webgpu-f16":
            continue  # float16 arithmetic: onnxruntime's CPU gives no reference for the GPU's
        fp16 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
        assert fp16, name
        for node in model.graph.node:
            if set(node.input) & fp16:
                assert node.op_type == "Cast" and node.attribute[0].i == onnx.TensorProto.FLOAT
            for attr in node.attribute:
                assert not (node.op_type == "Cast" and attr.name == "to" and attr.i == onnx.TensorProto.FLOAT16)
        got = run(data)
        assert np.abs(want - got).max() < 1e-3, name
        assert np.abs(upcast - got).max() < 1e-6, name


def test_pull_runtime_from_tarball(home: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A tarball with the wrong integrity is refused (and deleted), nothing is unpacked."""
    from alphacut.errors import IntegrityError

    bad = tmp_path_factory.mktemp("tgz") / "onnxruntime-web-1.30.0.tgz"
    bad.write_bytes(b"not the real tarball")
    with pytest.raises(IntegrityError):
        runtime.pull_runtime(tarball=bad)
    assert not runtime.runtime_dir().exists()


def test_missing_zip_library_page_names_the_command(home: Path) -> None:
    _fake_runtime(home)
    _fake_model(home)
    import shutil

    shutil.rmtree(home / "runtime" / f"client-zip-{runtime.ZIP_VERSION}")
    response = Client(web_app.create_app()).get("/")
    assert response.status_code == 503
    assert runtime.PULL_COMMAND in response.text and "client-zip" in response.text


def test_pull_refuses_a_small_package_with_the_wrong_integrity(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every package is verified, not only onnxruntime-web: a tampered client-zip is refused."""
    from alphacut import models as models_mod
    from alphacut.errors import IntegrityError

    _fake_runtime(home)
    import shutil

    shutil.rmtree(home / "runtime" / f"client-zip-{runtime.ZIP_VERSION}")
    bad = tmp_path_factory.mktemp("tgz") / "client-zip.tgz"
    monkeypatch.setattr(models_mod, "_npm_pack", lambda source: (bad.write_bytes(b"tampered"), bad)[1])
    with pytest.raises(IntegrityError):
        runtime.pull_runtime()
    with pytest.raises(runtime.RuntimeNotFoundError, match="client-zip"):
        runtime.zip_path()


def test_pull_fetches_the_test_tools_only_when_asked(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Users get what the page needs; the accessibility checker comes only with --test-tools."""
    from alphacut import models as models_mod

    _fake_runtime(home)  # the page's files (without their package.json: fetched again below)
    asked: list[str] = []
    monkeypatch.setattr(models_mod, "_npm_pack", lambda source: (asked.append(source.package), home / "x.tgz")[1])
    monkeypatch.setattr(runtime, "_unpack", lambda tgz, source, dest, wanted: None)
    runtime.pull_runtime()
    assert "axe-core" not in asked and "onnxruntime-web" in asked
    with pytest.raises(runtime.RuntimeNotFoundError, match="--test-tools"):
        runtime.axe_path()
    asked.clear()
    runtime.pull_runtime(test_tools=True)
    assert "axe-core" in asked
