"""The web app in headless Chromium: a real cutout, parity with Python, privacy, offline.

One module-scoped first visit (load, cut out, export PNG and WebP) is shared by the
tests that check it; the offline test goes on from there (second visit with the
server up, then a reload with the server stopped), so it runs last.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image


pytestmark = [pytest.mark.browser, pytest.mark.model]

PHOTOS = Path(__file__).parents[1] / "data" / "photos"
PHOTO = PHOTOS / "girl-1.jpg"
PHOTO_WITH_ALPHA = PHOTOS / "plants-1.jpg"  # a PNG with transparency behind a .jpg name
MORE_PHOTOS = [PHOTOS / "car-3.jpg", PHOTOS / "animal-2.jpg"]  # other subjects and aspect ratios
PARITY_MAE = 0.01
LOAD_TIMEOUT_MS = 120_000
CUT_TIMEOUT_MS = 180_000


@dataclass
class Visit:
    page: Any
    requests: list[dict[str, Any]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    downloads: dict[str, Path] = field(default_factory=dict)
    hits_before: int = 0


def _record_request(sink: list[dict[str, Any]]) -> Any:
    def record(request: Any) -> None:
        sink.append(
            {
                "url": request.url,
                "method": request.method,
                "body": request.post_data_buffer,
                "headers": request.headers,
                "type": request.resource_type,
            }
        )

    return record


def _wait_ready(page: Any) -> None:
    page.wait_for_selector('body[data-ready="true"]', state="attached", timeout=LOAD_TIMEOUT_MS)


def _cut(page: Any, photo: Path, timeout_ms: int = CUT_TIMEOUT_MS) -> None:
    previous = page.evaluate("document.body.dataset.result || ''")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_function(
        "prev => (document.body.dataset.result || '') !== prev"
        " || document.getElementById('status').dataset.state === 'error'",
        arg=previous,
        timeout=timeout_ms,
    )
    status = page.text_content("#status-text")
    assert page.evaluate("document.getElementById('status').dataset.state") != "error", status


def _export(page: Any, button: str, folder: Path) -> Path:
    with page.expect_download(timeout=60_000) as info:
        page.click(button)
    download = info.value
    path = folder / download.suggested_filename
    download.save_as(path)
    return path


def _alpha(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))[..., 3].astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def reference(session: Any) -> Any:
    """Python engine cutouts of the test photos, by name."""
    from alphacut import remove_background

    return {p.name: remove_background(p, session=session) for p in (PHOTO, PHOTO_WITH_ALPHA, *MORE_PHOTOS)}


@pytest.fixture(scope="module")
def first_visit(browser: Any, live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Visit:
    """Load the page, cut out a photo, export PNG and WebP; every request recorded."""
    folder = tmp_path_factory.mktemp("downloads")
    visit = Visit(page=None, hits_before=len(live_server.hits))  # type: ignore[arg-type]
    record = _record_request(visit.requests)
    browser.on("request", record)
    try:
        page = browser.new_page()
        visit.page = page
        page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: visit.console_errors.append(str(e)))
        page.on("websocket", lambda ws: visit.console_errors.append(f"websocket opened: {ws.url}"))
        page.goto(f"{live_server.url}/?backend=wasm")
        _wait_ready(page)
        _cut(page, PHOTO)
        visit.downloads["png"] = _export(page, "#export-png", folder)
        visit.downloads["webp"] = _export(page, "#export-webp", folder)
        # The model and runtime are in the offline cache once the badge shows.
        page.wait_for_selector('body[data-offline="true"]', state="attached", timeout=60_000)
    finally:
        browser.remove_listener("request", record)
    return visit


def test_page_is_isolated_and_clean(first_visit: Visit) -> None:
    page = first_visit.page
    assert page.evaluate("crossOriginIsolated") is True, "COOP/COEP make threads available"
    assert page.evaluate("document.body.dataset.backend") == "wasm"
    assert re.search(r"WebAssembly, \d+ thread", page.text_content("#backend-badge"))
    assert page.evaluate("!!navigator.serviceWorker.controller")
    # No CSP violation, no uncaught error, no WebSocket.
    assert first_visit.console_errors == []


def test_export_matches_the_python_engine(first_visit: Visit, reference: dict[str, Any]) -> None:
    png = first_visit.downloads["png"]
    assert png.name == "girl-1-cutout.png"
    want = reference[PHOTO.name]
    with Image.open(png) as im:
        assert im.format == "PNG" and im.mode == "RGBA"
        assert im.size == want.size
        rgba = np.asarray(im)
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    assert float(np.abs(alpha - want.alpha).mean()) <= PARITY_MAE
    # RGB is the estimated foreground, as in Python.
    solid = want.alpha > 0.5
    rgb_err = np.abs(rgba[..., :3].astype(np.float32) - want.rgba[..., :3].astype(np.float32))[solid]
    assert float(rgb_err.mean()) <= 2.0
    assert 0.05 < float(alpha.mean()) < 0.95, "a subject was found"


def test_webp_export_is_lossless_alpha(first_visit: Visit) -> None:
    webp = first_visit.downloads["webp"]
    assert webp.name == "girl-1-cutout.webp"
    with Image.open(webp) as im:
        assert im.format == "WEBP"
        webp_rgba = np.asarray(im.convert("RGBA"))
    with Image.open(first_visit.downloads["png"]) as im:
        png_rgba = np.asarray(im)
    assert np.array_equal(webp_rgba[..., 3], png_rgba[..., 3])
    opaque = png_rgba[..., 3] == 255
    assert np.array_equal(webp_rgba[opaque][:, :3], png_rgba[opaque][:, :3])


def test_privacy_nothing_leaves_the_tab(first_visit: Visit, live_server: Any) -> None:
    """Every request of the whole session is a body-less GET of the app's own files."""
    origin = live_server.url
    image = PHOTO.read_bytes()
    needles = [image[i : i + 48] for i in range(200, len(image) - 48, len(image) // 8)]
    text_needles = [base64.b64encode(n).decode() for n in needles] + [n.hex() for n in needles]
    config = json.loads(
        first_visit.page.text_content("#alphacut-config")  # the page's own list of assets
    )
    assert first_visit.requests, "requests were recorded"
    for request in first_visit.requests:
        url = request["url"]
        parts = urlsplit(url)
        if parts.scheme in ("blob", "data"):
            continue  # in-memory URLs of this tab (the export download)
        assert f"{parts.scheme}://{parts.netloc}" == origin, f"request to another origin: {url}"
        assert request["method"] == "GET", f"{request['method']} {url}"
        assert not request["body"], f"a request with a body: {url}"
        assert parts.path in ("/", "/sw.js") or parts.path.startswith("/assets/"), url
        blob = (url + json.dumps(request["headers"])).encode()
        assert not any(n in blob for n in needles)
        assert not any(t.encode() in blob for t in text_needles)
    # The server's side agrees: only GET/HEAD, no request body, only known files.
    hits = live_server.hits[first_visit.hits_before :]
    assert hits
    known = {"/", "/sw.js"}
    for hit in hits:
        assert hit.method in ("GET", "HEAD"), hit
        assert hit.body_bytes == 0, hit
        assert hit.path in known or hit.path.startswith("/assets/"), hit
        assert hit.status in (200, 304), hit
    assert config["model"]["wasm"] in {h.path for h in hits}


@pytest.mark.parametrize("photo", MORE_PHOTOS, ids=lambda p: p.name)
def test_more_photos_match_the_python_engine(
    first_visit: Visit, reference: dict[str, Any], photo: Path, tmp_path: Path
) -> None:
    """Parity on other subjects and shapes: the same alpha as Python, in the same page."""
    page = first_visit.page
    _cut(page, photo)
    png = _export(page, "#export-png", tmp_path)
    assert png.name == f"{photo.stem}-cutout.png"
    want = reference[photo.name]
    alpha = _alpha(png)
    assert alpha.shape == want.alpha.shape
    assert float(np.abs(alpha - want.alpha).mean()) <= PARITY_MAE
    inter = np.logical_and(alpha > 0.5, want.alpha > 0.5).sum()
    union = np.logical_or(alpha > 0.5, want.alpha > 0.5).sum()
    assert inter / union >= 0.99


def _empty_mask_model() -> bytes:
    """A stand-in for ISNet that runs anywhere and returns an all-zero mask: what some
    WebGPU kernels return without an error."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["input", "axes"], ["sum"], keepdims=1),
            helper.make_node("Mul", ["sum", "zero"], ["output"]),
        ],
        "empty_mask",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 1024, 1024])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1024, 1024])],
        initializer=[
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_webgpu_failure_mid_cut_falls_back_to_wasm(
    launch_browser: Any,
    server_for: Any,
    isnet_model_path: Path,
    web_runtime: Path,
    reference: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WebGPU fails in the middle of a cutout (an empty mask): the page redoes the cutout
    on the CPU, says so, and the result is still the Python engine's.

    The server hands the page a stand-in WebGPU model; everything else is real. Headless
    Chromium's software adapter (SwiftShader) runs the stand-in in a moment.
    """
    from alphacut.web import variants
    from alphacut.web.app import create_app

    real_build = variants.build_variant

    def build(path: Path, variant: str, *, output: str = "output") -> bytes:
        if variant.startswith("webgpu"):
            return _empty_mask_model()
        return real_build(path, variant, output=output)  # type: ignore[arg-type]

    monkeypatch.setattr(variants, "build_variant", build)
    server = server_for(create_app(model=os.environ.get("ALPHACUT_TEST_MODEL_NAME", "medium")))
    context = launch_browser(tmp_path, ["--enable-unsafe-webgpu", "--enable-unsafe-swiftshader"])
    try:
        page = context.new_page()
        page.goto(f"{server.url}/?backend=webgpu")
        _wait_ready(page)
        assert page.evaluate("document.body.dataset.backend") == "webgpu", page.text_content("#status-text")
        _cut(page, PHOTO)
        assert page.evaluate("document.body.dataset.backend") == "wasm"
        assert "empty mask" in page.evaluate("document.body.dataset.fallback")
        status = page.text_content("#status-text")
        assert "Redone on the CPU" in status and "WebGPU failed" in status, status
        assert "WebAssembly" in page.text_content("#backend-badge")
        png = _export(page, "#export-png", tmp_path)
    finally:
        context.close()
        server.stop()
    want = reference[PHOTO.name]
    assert float(np.abs(_alpha(png) - want.alpha).mean()) <= PARITY_MAE


@pytest.mark.slow
@pytest.mark.webgpu  # deselected unless ALPHACUT_TEST_WEBGPU=1 (tests/web/conftest.py)
def test_webgpu_path_matches_python(
    launch_browser: Any,
    live_server: Any,
    reference: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The WebGPU path gives the same cutout as Python.

    Headless Chromium only has the software SwiftShader adapter (no shader-f16, so
    the page picks the fp32 variant); one 1024 x 1024 inference takes minutes there,
    and ISNet's resize sizes are baked in for 1024, so no smaller input is possible.
    """
    folder = tmp_path_factory.mktemp("webgpu")
    context = launch_browser(folder, ["--enable-unsafe-webgpu", "--enable-unsafe-swiftshader"])
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/?backend=webgpu")
        _wait_ready(page)
        if page.evaluate("document.body.dataset.backend") != "webgpu":
            pytest.skip("no WebGPU adapter in this Chromium")
        assert "WebGPU" in page.text_content("#backend-badge")
        _cut(page, PHOTO, timeout_ms=1_200_000)
        assert page.evaluate("document.body.dataset.backend") == "webgpu", "no fallback to WASM"
        png = _export(page, "#export-png", folder)
    finally:
        context.close()
    want = reference[PHOTO.name]
    assert float(np.abs(_alpha(png) - want.alpha).mean()) <= PARITY_MAE


def test_second_visit_and_offline(
    first_visit: Visit,
    live_server: Any,
    reference: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A second visit fetches no asset at all; with the server stopped the app still works."""
    page = first_visit.page
    config = json.loads(page.text_content("#alphacut-config"))
    start = len(live_server.hits)
    page.reload()
    _wait_ready(page)
    second = live_server.hits[start:]
    assert {h.path for h in second} <= {"/", "/sw.js"}, [h.path for h in second]
    model_bytes = sum(h.sent_bytes for h in second if h.path == config["model"]["wasm"])
    assert model_bytes == 0

    live_server.stop()
    page.reload()
    _wait_ready(page)
    assert page.evaluate("crossOriginIsolated") is True, "the cached page keeps its headers"
    _cut(page, PHOTO_WITH_ALPHA)
    png = _export(page, "#export-png", tmp_path_factory.mktemp("offline"))
    assert png.name == "plants-1-cutout.png"
    want = reference[PHOTO_WITH_ALPHA.name]
    assert float(np.abs(_alpha(png) - want.alpha).mean()) <= PARITY_MAE
