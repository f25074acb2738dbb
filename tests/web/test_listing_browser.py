"""Listing photos in the page, in headless Chromium: the layout port, parity with Python,
the preview, JPEG export, privacy, the controls (accessibility, a phone, remembered settings).

One module-scoped visit (its own page and server): three photos cut out once, downloaded
as a ZIP of plain cutouts and as a ZIP of "square-white" listing photos, then the one under
review exported as JPEG, on its blurred photo and on a background image; the tests check
what it gathered, then go on in the same page (the reload comes last).
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from axe_audit import serious_violations
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.model]

DATA = Path(__file__).parents[1] / "data"
PHOTOS = [DATA / "photos" / name for name in ("girl-1.jpg", "car-3.jpg", "animal-2.jpg")]
PRESET = "square-white"
PARITY_MAE = 1 / 255  # over the composed pixels, 0..1
LOAD_TIMEOUT_MS = 120_000
CUT_TIMEOUT_MS = 180_000
LAYOUT_KEYS = ("box", "size", "canvas", "offset", "subject", "shadow_blur", "shadow_offset", "warnings")

# Runs the shared layout vectors through the page's own listing.js.
RUN_VECTORS = """async (cases) => {
  const config = JSON.parse(document.getElementById("alphacut-config").textContent);
  const listing = await import(config.listing.module);
  return cases.map((c) => {
    const alpha = new Uint8Array(c.width * c.height);
    for (const [x0, y0, x1, y1, v] of c.rects)
      for (let y = y0; y < y1; y++) alpha.fill(v, y * c.width + x0, y * c.width + x1);
    try {
      const l = listing.layout(alpha, c.width, c.height, c.options);
      return {name: c.name, layout: Array.from(listing.layoutVector(l), Number), box: l.box, size: l.size,
              canvas: l.canvas, offset: l.offset, subject: l.subject, shadow_blur: l.shadowBlur,
              shadow_offset: l.shadowOffset, warnings: l.warnings};
    } catch (error) {
      return {name: c.name, error: String(error.message || error)};
    }
  });
}"""

# The after view's listing canvas, as pixels.
PREVIEW_PIXELS = """() => {
  const canvas = document.getElementById("listing-after");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let text = "";
  for (let i = 0; i < data.length; i += 32768) text += String.fromCharCode(...data.subarray(i, i + 32768));
  return {width: canvas.width, height: canvas.height, data: btoa(text)};
}"""


@dataclass
class ListingVisit:
    page: Any
    folder: Path
    background: Path
    requests: list[dict[str, Any]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    vectors: list[dict[str, Any]] = field(default_factory=list)
    cutouts: dict[str, np.ndarray] = field(default_factory=dict)  # the page's plain cutouts
    composed: dict[str, np.ndarray] = field(default_factory=dict)  # its square-white listing photos
    zip_names: list[str] = field(default_factory=list)
    reviewed: str = ""  # the photo under review
    preview: np.ndarray | None = None
    jpeg: Path | None = None
    webp_lossless: Path | None = None
    webp_lossy: Path | None = None
    blur: Path | None = None
    image: Path | None = None
    image_summary: str = ""
    blur_options: dict[str, Any] = field(default_factory=dict)
    image_options: dict[str, Any] = field(default_factory=dict)
    axe: list[dict[str, Any]] = field(default_factory=list)


def _rgba(path_or_bytes: Path | bytes) -> np.ndarray:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as im:
        return np.asarray(im.convert("RGBA"))


def _webp_chunks(path: Path) -> list[str]:
    """The RIFF chunks of a WebP file: "VP8L" holds a lossless image, "VP8 " a lossy one."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", path
    chunks, at = [], 12
    while at + 8 <= len(data):
        size = int.from_bytes(data[at + 4 : at + 8], "little")
        chunks.append(data[at : at + 4].decode("latin-1"))
        at += 8 + size + (size & 1)
    return chunks


def _wait_ready(page: Any) -> None:
    page.wait_for_selector('body[data-ready="true"]', state="attached", timeout=LOAD_TIMEOUT_MS)


def _composed(page: Any, previous: str) -> dict[str, Any]:
    """Waits for the after view to show a new listing photo; returns its options."""
    page.wait_for_function(
        "prev => (document.body.dataset.composed || '') !== prev"
        " || document.getElementById('status').dataset.state === 'error'",
        arg=previous,
        timeout=60_000,
    )
    assert page.evaluate("document.getElementById('status').dataset.state") != "error", page.text_content("#status-text")
    options: dict[str, Any] = json.loads(page.evaluate("document.body.dataset.composed"))[2]
    return options


def _download(page: Any, button: str, folder: Path) -> Path:
    with page.expect_download(timeout=120_000) as info:
        page.click(button)
    path = folder / info.value.suggested_filename
    info.value.save_as(path)
    return path


def _unzip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        return {name: _rgba(archive.read(name)) for name in archive.namelist()}


def _noise_png(path: Path) -> Path:
    """An opaque background image whose bytes appear nowhere else (for the privacy check)."""
    rng = np.random.default_rng(13)
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), "RGB").save(path)
    return path


@pytest.fixture(scope="module")
def vectors() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((DATA / "listing_layouts.json").read_text())["cases"]
    return cases


@pytest.fixture(scope="module")
def visit(
    browser: Any, live_server: Any, axe_source: str, vectors: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> ListingVisit:
    folder = tmp_path_factory.mktemp("listing")
    result = ListingVisit(page=None, folder=folder, background=_noise_png(folder / "backdrop.png"))
    sink = result.requests

    def record(request: Any) -> None:
        sink.append({"url": request.url, "method": request.method, "body": request.post_data_buffer,
                     "headers": request.headers})

    browser.on("request", record)
    try:
        page = browser.new_page()
        result.page = page
        page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: result.console_errors.append(str(e)))
        page.goto(f"{live_server.url}/?backend=wasm")
        _wait_ready(page)
        result.vectors = page.evaluate(RUN_VECTORS, vectors)

        # Three photos, each cut out once; their plain cutouts as a ZIP.
        page.set_input_files("#file-input", [str(p) for p in PHOTOS])
        page.wait_for_function(
            "() => { const q = JSON.parse(document.body.dataset.queue || '[]');"
            " return q.length === 3 && q.every(s => s === 'done' || s === 'failed'); }",
            timeout=CUT_TIMEOUT_MS * len(PHOTOS),
        )
        assert json.loads(page.evaluate("document.body.dataset.queue")) == ["done"] * 3
        page.select_option("#format", "png")
        result.cutouts = _unzip(_download(page, "#download-all", folder))

        # The preset: the after view and "Download all" give the listing photos.
        page.click("#listing-panel > summary")
        previous = page.evaluate("document.body.dataset.composed || ''")
        page.select_option("#listing-preset", PRESET)
        _composed(page, previous)
        result.reviewed = page.locator(".queue-item[aria-selected=true] .name").text_content()
        shot = page.evaluate(PREVIEW_PIXELS)
        pixels = np.frombuffer(base64.b64decode(shot["data"]), np.uint8)
        result.preview = pixels.reshape(shot["height"], shot["width"], 4)
        listing_zip = _download(page, "#download-all", folder)
        with zipfile.ZipFile(listing_zip) as archive:
            result.zip_names = archive.namelist()
        result.composed = _unzip(listing_zip)
        result.axe = serious_violations(page, axe_source)

        # JPEG at quality 80: the canvas encoder.
        page.select_option("#format", "jpeg")
        page.evaluate("() => { const q = document.getElementById('quality'); q.value = '80';"
                      " q.dispatchEvent(new Event('input')); q.dispatchEvent(new Event('change')); }")
        result.jpeg = _download(page, "#export", folder)
        # WebP: lossless unless "Lossy" is ticked, then at the quality set (as Options.quality).
        page.select_option("#format", "webp")
        (folder / "webp-lossless").mkdir()
        result.webp_lossless = _download(page, "#export", folder / "webp-lossless")
        page.check("#webp-lossy")
        (folder / "webp-lossy").mkdir()
        result.webp_lossy = _download(page, "#export", folder / "webp-lossy")
        page.uncheck("#webp-lossy")
        page.select_option("#format", "png")

        # The blurred photo behind the subject (the worker decodes the photo again).
        previous = page.evaluate("document.body.dataset.composed || ''")
        page.select_option("#listing-preset", "story-9x16-blur")
        result.blur_options = _composed(page, previous)
        (folder / "blur").mkdir()
        result.blur = _download(page, "#export", folder / "blur")

        # An image of the user's behind it, with a drop shadow.
        previous = page.evaluate("document.body.dataset.composed || ''")
        page.set_input_files("#listing-image-input", str(result.background))
        page.select_option("#listing-shadow", "drop")
        result.image_options = _composed(page, previous)
        while result.image_options.get("shadow") != "drop":  # the image came first, then the shadow
            result.image_options = _composed(page, page.evaluate("document.body.dataset.composed"))
        result.image_summary = page.text_content("#listing-summary") or ""
        (folder / "image").mkdir()
        result.image = _download(page, "#export", folder / "image")
    finally:
        browser.remove_listener("request", record)
    return result


@pytest.fixture(scope="module")
def reference(session: Any) -> dict[str, np.ndarray]:
    """The Python engine's square-white listing photos of the three photos."""
    from alphacut import Options, remove_background

    options = Options.from_preset(PRESET)
    return {p.name: remove_background(p, options=options, session=session).listing(options) for p in PHOTOS}


def _engine_canvas(cutout: np.ndarray, options: dict[str, Any], **extra: Any) -> np.ndarray:
    """The engine's listing photo of the page's own cutout under the page's options."""
    from alphacut.compose import listing_canvas
    from alphacut.options import Options

    fields = {k: v for k, v in options.items() if k != "background" or v != "image"}
    if options.get("background") == "image":
        fields["background"] = None
    canvas, _ = listing_canvas(cutout, Options(**fields), **extra)
    return canvas


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean() / 255)


def test_layout_vectors_match_python(visit: ListingVisit, vectors: list[dict[str, Any]]) -> None:
    """listing.js gives alphacut.listing.layout's integers on every shared vector."""
    assert len(visit.vectors) == len(vectors) >= 20
    for case, got in zip(vectors, visit.vectors, strict=True):
        want = case["expected"]
        assert "error" not in got, (case["name"], got)
        assert got["layout"] == want["layout"], case["name"]
        for key in LAYOUT_KEYS:
            assert got[key] == want[key], (case["name"], key, got[key], want[key])


def test_preset_matches_python_on_three_photos(visit: ListingVisit, reference: dict[str, np.ndarray]) -> None:
    """Download all under "square-white" gives the Python engine's listing photos:
    2000 x 2000, MAE <= 1/255 over the composed pixels, for each of three photos."""
    assert sorted(visit.zip_names) == sorted(p.stem + "-cutout.png" for p in PHOTOS)
    for photo in PHOTOS:
        got = visit.composed[photo.stem + "-cutout.png"]
        want = reference[photo.name]
        assert got.shape == (2000, 2000, 4), (photo.name, got.shape)
        assert (got[..., 3] == 255).all(), "square-white is opaque"
        mae = _mae(got, want)
        assert mae <= PARITY_MAE, (photo.name, mae * 255)


def test_summary_names_the_background_image(visit: ListingVisit) -> None:
    """The panel's summary says which image is behind the subject (never "your image" before one is open)."""
    assert visit.background.name in visit.image_summary, visit.image_summary


def test_composition_is_the_engines_on_the_pages_cutout(visit: ListingVisit) -> None:
    """The page composes its cutout exactly as the engine composes the same cutout (the
    model's small browser/Python differences left out): colour, blurred photo, image."""
    from alphacut.compose import read_background_image

    for photo in PHOTOS:
        cutout = visit.cutouts[photo.stem + "-cutout.png"]
        want = _engine_canvas(cutout, {"crop": True, "canvas": "2000x2000", "fill": 85.0, "background": "#ffffff"})
        got = visit.composed[photo.stem + "-cutout.png"]
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, photo.name
    reviewed = next(p for p in PHOTOS if p.name == visit.reviewed)
    cutout = visit.cutouts[reviewed.stem + "-cutout.png"]
    with Image.open(reviewed) as im:
        photo_pixels = np.asarray(im.convert("RGB"))
    assert visit.blur is not None and visit.blur_options["background"] == "blur"
    want = _engine_canvas(cutout, visit.blur_options, photo=photo_pixels)
    got = _rgba(visit.blur)
    assert got.shape == (1920, 1080, 4)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert visit.image is not None and visit.image_options["shadow"] == "drop"
    backdrop = read_background_image(visit.background, max_megapixels=100)
    want = _engine_canvas(cutout, visit.image_options, background_image=backdrop)
    got = _rgba(visit.image)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert float(np.abs(got[..., :3].astype(int) - _rgba(visit.blur)[..., :3].astype(int)).mean()) > 5


def test_after_view_is_the_export(visit: ListingVisit) -> None:
    """The after view holds the composed canvas itself: the pixels of the download."""
    assert visit.preview is not None
    exported = visit.composed[Path(visit.reviewed).stem + "-cutout.png"]
    assert visit.preview.shape == exported.shape == (2000, 2000, 4)
    assert np.array_equal(visit.preview, exported)


def test_jpeg_export_is_the_canvas(visit: ListingVisit) -> None:
    assert visit.jpeg is not None
    assert visit.jpeg.name == Path(visit.reviewed).stem + "-cutout.jpg"
    with Image.open(visit.jpeg) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert im.size == (2000, 2000)
        pixels = np.asarray(im)
    png = visit.composed[Path(visit.reviewed).stem + "-cutout.png"][..., :3]
    assert _mae(pixels, png) < 2 / 255, "the JPEG is the listing photo"


def test_webp_is_lossless_unless_a_quality_is_asked_for(visit: ListingVisit) -> None:
    """As the engine's Options.quality: WebP is lossless by default, lossy at the quality
    slider's value once "Lossy" is ticked (the slider shows only then)."""
    assert visit.webp_lossless is not None and visit.webp_lossy is not None
    assert "VP8L" in _webp_chunks(visit.webp_lossless), "the default WebP is lossless"
    assert "VP8 " in _webp_chunks(visit.webp_lossy), "a WebP with a quality is lossy"
    png = visit.composed[Path(visit.reviewed).stem + "-cutout.png"]
    exact, rough = _rgba(visit.webp_lossless), _rgba(visit.webp_lossy)
    opaque = png[..., 3] == 255
    assert np.array_equal(exact[opaque], png[opaque])
    assert not np.array_equal(rough[opaque], png[opaque]) and _mae(rough, png) < 3 / 255
    page = visit.page
    page.select_option("#format", "webp")
    try:
        assert page.is_visible("#webp-lossy") and page.is_hidden("#quality")
        page.check("#webp-lossy")
        assert page.is_visible("#quality")
    finally:
        page.uncheck("#webp-lossy")
        page.select_option("#format", "png")


def test_privacy_no_image_leaves_the_tab(visit: ListingVisit, live_server: Any) -> None:
    """Listing photos, their ZIP and the background image stay in the tab: every request is
    a body-less GET of the app's own files, and none carries a byte of an image."""
    origin = live_server.url
    needles: list[bytes] = []
    for source in (*PHOTOS, visit.background):
        data = source.read_bytes()
        needles += [data[i : i + 48] for i in range(200, len(data) - 48, len(data) // 8)]
    text_needles = [base64.b64encode(n) for n in needles] + [n.hex().encode() for n in needles]
    assert visit.requests
    for request in visit.requests:
        parts = urlsplit(request["url"])
        if parts.scheme in ("blob", "data"):
            continue
        assert f"{parts.scheme}://{parts.netloc}" == origin, request["url"]
        assert request["method"] == "GET" and not request["body"], request["url"]
        assert parts.path in ("/", "/sw.js") or parts.path.startswith("/assets/"), request["url"]
        blob = (request["url"] + json.dumps(request["headers"])).encode()
        assert not any(n in blob for n in needles) and not any(t in blob for t in text_needles)
    for hit in live_server.hits:
        assert hit.method in ("GET", "HEAD") and hit.body_bytes == 0, hit
    stored = visit.page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert len(stored) < 600, stored
    assert "backdrop" not in stored and "image" not in stored
    assert not visit.console_errors, visit.console_errors


def test_controls_are_accessible(visit: ListingVisit, axe_source: str) -> None:
    """No serious axe finding with the listing panel open; every control has a name; the
    panel opens from the keyboard."""
    assert visit.axe == [], visit.axe
    page = visit.page
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('#listing-panel input, #listing-panel select, #listing-panel button,'
                  + ' #quality')].filter(e => !e.labels?.length && !e.getAttribute('aria-label')
                  && !e.closest('label') && e.type !== 'file' && !(e.tagName === 'BUTTON' && e.textContent.trim()))
                  .map(e => e.id)"""
    )
    assert unnamed == []
    page.evaluate("document.getElementById('listing-panel').open = false")
    page.focus("#listing-panel > summary")
    page.keyboard.press("Enter")
    assert page.evaluate("document.getElementById('listing-panel').open")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "listing-preset"


def test_queue_is_one_tab_stop_with_arrow_keys(visit: ListingVisit) -> None:
    """The queue is a listbox: one Tab stop (the image under review), the arrow keys, Home
    and End move between the images and show the one they reach; Tab leaves the queue."""
    page = visit.page
    assert page.get_attribute("#queue", "role") == "listbox"
    items = page.locator(".queue-item")
    assert items.count() == 3
    names = items.locator(".name").all_text_contents()
    state = """() => ({stops: [...document.querySelectorAll('.queue-item')].filter(e => e.tabIndex === 0)
                                 .map(e => e.querySelector('.name').textContent),
                       roles: [...document.querySelectorAll('.queue-item')].map(e => e.getAttribute('role')),
                       focused: document.activeElement.closest('.queue-item')?.querySelector('.name').textContent ?? null,
                       selected: document.querySelector('.queue-item[aria-selected=true] .name')?.textContent})"""
    start = page.evaluate(state)
    assert start["roles"] == ["option"] * 3
    assert start["stops"] == [start["selected"]], "one Tab stop: the image under review"
    page.focus("#clear-done")
    page.keyboard.press("Tab")
    assert page.evaluate(state)["focused"] == start["selected"]
    try:
        page.keyboard.press("Home")
        now = page.evaluate(state)
        assert now["focused"] == now["selected"] == names[0] and now["stops"] == [names[0]]
        page.keyboard.press("ArrowRight")
        now = page.evaluate(state)
        assert now["focused"] == now["selected"] == names[1] and now["stops"] == [names[1]]
        page.keyboard.press("End")
        page.keyboard.press("ArrowRight")  # stays on the last
        now = page.evaluate(state)
        assert now["focused"] == now["selected"] == names[2]
        page.keyboard.press("ArrowLeft")
        assert page.evaluate(state)["selected"] == names[1]
        page.keyboard.press("Tab")
        assert page.evaluate(state)["focused"] is None, "Tab leaves the queue"
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(state)["focused"] == names[1]
    finally:
        page.click(f'.queue-item >> text="{start["selected"]}"')


def test_controls_fit_a_phone(visit: ListingVisit) -> None:
    """At 390 x 844 the listing panel and the export controls fit the width (nothing to
    scroll sideways for) and are 44 px touch targets."""
    page = visit.page
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.select_option("#listing-shadow", "drop")
        page.select_option("#listing-canvas", "size")
        page.select_option("#format", "jpeg")  # shows the quality slider
        page.wait_for_timeout(100)
        # Checkboxes count by their label (the whole row is the target).
        report = page.evaluate(
            """() => ({
              width: document.documentElement.clientWidth,
              controls: [...document.querySelectorAll('#listing-panel :is(select, input, button, summary, .listing-check),'
                                                      + ' #format, #quality, #export')]
                .filter(e => e.offsetParent !== null && e.type !== 'checkbox')
                .map(e => { const r = e.getBoundingClientRect();
                            return {id: e.id || e.className, type: e.type, left: r.left, right: r.right, height: r.height}; }),
            })"""
        )
        assert len(report["controls"]) >= 15
        for control in report["controls"]:
            assert control["left"] >= 0 and control["right"] <= report["width"], control
            if control["type"] != "range":  # a slider is dragged anywhere along its track
                assert control["height"] >= 44, control
    finally:
        page.select_option("#format", "png")
        page.set_viewport_size({"width": 1280, "height": 900})


def test_settings_are_remembered_but_not_the_image(visit: ListingVisit) -> None:
    """The listing settings come back after a reload; the background image never does."""
    page = visit.page
    page.select_option("#listing-preset", "square-white-shadow")
    page.select_option("#format", "jpeg")
    page.reload()
    _wait_ready(page)
    assert page.input_value("#listing-preset") == "square-white-shadow"
    assert page.input_value("#format") == "jpeg"
    assert page.input_value("#listing-background") == "color"
    assert page.text_content("#listing-image-name").startswith("None chosen")
    page.evaluate("localStorage.clear()")
