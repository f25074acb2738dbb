"""Touch-up in the page: brushes on a cutout's mask, refined again after each stroke.

One module-scoped visit (its own browser, with touch): a photo is cut out, the touch-up
opened, and a series of edits made with Playwright's mouse (and one finger), each
followed by a PNG export: an erase stroke, undo, redo, reset, a stroke that follows the
photo's edges, a restore stroke, a touch stroke. The tests compare the exported pixels
with the model's cutout and with the Python engine given the page's downloaded mask.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from axe_audit import serious_violations
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.model]

PHOTO = Path(__file__).parents[1] / "data" / "photos" / "girl-1.jpg"  # 600 x 399, shown at 100 %
LOAD_TIMEOUT_MS = 120_000
CUT_TIMEOUT_MS = 240_000
PARITY_MAE = 0.01
# The queue's memory budget, lowered: the photo, its cutout and the same photo again fit in
# it, not once the touch-up's bytes (the model's mask alone is 1 MiB) count too.
QUEUE_BYTES = 1024 * 1024
# Strokes, in photo pixels: (x0, y0) -> (x1, y1), brush diameter. At fit the photo is at 100 %.
ERASE = ((215, 300), (255, 300), 30)  # across the white shirt
EDGES = ((240, 335), (172, 335), 24)  # from the shirt across a dark strap, following the edges
RESTORE = ((260, 40), (320, 40), 30)  # in the sky
TOUCH = ((205, 360), (250, 360), 30)  # one finger, lower on the shirt


@dataclass
class Visit:
    page: Any
    pngs: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    axe: list[dict[str, Any]] = field(default_factory=list)
    thumbs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    queue_full: str = ""
    closed_status: str = ""
    focus_after_close: str = ""
    restyled_status: str = ""


def _export(page: Any, folder: Path, name: str) -> np.ndarray:
    page.select_option("#format", "png")
    with page.expect_download(timeout=60_000) as info:
        page.click("#export")
    path = folder / f"{name}.png"
    info.value.save_as(path)
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        return np.asarray(im).copy()


def _settled(page: Any) -> None:
    """Wait until the result shown is the edited mask's (the refinement is back)."""
    page.wait_for_function("() => document.body.dataset.touchup === 'idle'", timeout=CUT_TIMEOUT_MS)


def _to_screen(page: Any, x: float, y: float) -> tuple[float, float]:
    box = page.evaluate(
        "() => { const r = document.getElementById('after').getBoundingClientRect();"
        " const c = document.getElementById('after'); return [r.left, r.top, r.width / c.width]; }"
    )
    return box[0] + x * box[2], box[1] + y * box[2]


def _set_brush(page: Any, *, tool: str, size: int, edges: bool = False) -> None:
    page.check(f'input[name="touchup-tool"][value="{tool}"]')
    page.evaluate(
        "size => { const s = document.getElementById('touchup-size'); s.value = String(size);"
        " s.dispatchEvent(new Event('input')); }",
        size,
    )
    page.set_checked("#touchup-edges", edges)


def _stroke(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    (x0, y0), (x1, y1) = _to_screen(page, *start), _to_screen(page, *end)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=12)
    page.mouse.up()


def _touch_stroke(page: Any, cdp: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    (x0, y0), (x1, y1) = _to_screen(page, *start), _to_screen(page, *end)

    def touch(kind: str, points: list[tuple[float, float]]) -> None:
        cdp.send("Input.dispatchTouchEvent",
                 {"type": kind, "touchPoints": [{"x": x, "y": y, "id": 0} for x, y in points]})

    touch("touchStart", [(x0, y0)])
    for k in range(1, 13):
        touch("touchMove", [(x0 + (x1 - x0) * k / 12, y0 + (y1 - y0) * k / 12)])
    touch("touchEnd", [])


def _thumb(page: Any) -> str:
    return str(page.get_attribute(".queue-item img", "src"))


@pytest.fixture(scope="module")
def visit(
    playwright_driver: Any, live_server: Any, axe_source: str, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    from headless_chromium import launch

    folder = tmp_path_factory.mktemp("touchup")
    context = launch(playwright_driver, folder / "browser", viewport={"width": 1280, "height": 900}, has_touch=True)
    try:
        page = context.new_page()
        v = Visit(page=page)
        page.on("console", lambda m: v.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: v.console_errors.append(str(e)))
        def lower_limit(route: Any) -> None:
            response = route.fetch()
            body = response.text().replace('"graphs":', f'"limits":{{"queueBytes":{QUEUE_BYTES}}},"graphs":', 1)
            route.fulfill(response=response, body=body)

        page.route(f"{live_server.url}/?backend=wasm", lower_limit)
        page.goto(f"{live_server.url}/?backend=wasm")
        page.wait_for_selector('body[data-ready="true"]', state="attached", timeout=LOAD_TIMEOUT_MS)
        assert page.is_disabled("#touchup-toggle"), "nothing to touch up before a cutout"
        page.set_input_files("#file-input", str(PHOTO))
        page.wait_for_function("() => document.body.dataset.result === '1'", timeout=CUT_TIMEOUT_MS)
        v.pngs["model"] = _export(page, folder, "model")
        v.thumbs.append(_thumb(page))

        page.click("#touchup-toggle")
        _settled(page)
        page.evaluate("document.getElementById('stage').scrollIntoView({block: 'start'})")
        v.axe = serious_violations(page, axe_source)
        # Hardness by keyboard: the slider's End key.
        page.focus("#touchup-hardness")
        page.keyboard.press("End")
        _set_brush(page, tool="erase", size=ERASE[2])
        _stroke(page, ERASE[0], ERASE[1])
        _settled(page)
        v.pngs["erased"] = _export(page, folder, "erased")
        v.thumbs.append(_thumb(page))
        with page.expect_download(timeout=60_000) as info:
            page.click("#touchup-mask")
        v.files["mask"] = folder / info.value.suggested_filename
        info.value.save_as(v.files["mask"])
        with page.expect_download(timeout=60_000) as info:
            page.click("#download-all")
        v.files["zip"] = folder / "all.zip"
        info.value.save_as(v.files["zip"])

        page.focus("#stage")
        page.keyboard.press("Control+z")
        _settled(page)
        v.pngs["undone"] = _export(page, folder, "undone")
        page.keyboard.press("Control+Shift+z")
        _settled(page)
        v.pngs["redone"] = _export(page, folder, "redone")
        page.click("#touchup-undo")
        _settled(page)
        page.keyboard.press("Control+y")
        _settled(page)
        v.pngs["redone-y"] = _export(page, folder, "redone-y")
        page.click("#touchup-reset")
        _settled(page)
        v.pngs["reset"] = _export(page, folder, "reset")
        page.click("#touchup-undo")  # the reset is a step too
        _settled(page)
        v.pngs["reset-undone"] = _export(page, folder, "reset-undone")

        _set_brush(page, tool="erase", size=EDGES[2], edges=True)
        _stroke(page, EDGES[0], EDGES[1])
        _settled(page)
        v.pngs["edges"] = _export(page, folder, "edges")
        _set_brush(page, tool="restore", size=RESTORE[2])
        _stroke(page, RESTORE[0], RESTORE[1])
        _settled(page)
        v.pngs["restored"] = _export(page, folder, "restored")
        _set_brush(page, tool="erase", size=TOUCH[2])
        _touch_stroke(page, context.new_cdp_session(page), TOUCH[0], TOUCH[1])
        _settled(page)
        v.pngs["touched"] = _export(page, folder, "touched")

        page.keyboard.press("Escape")  # no stroke in progress: Esc closes the touch-up
        assert page.evaluate("document.body.dataset.touchup") == "off"
        v.focus_after_close = page.evaluate("document.activeElement?.id || ''")
        v.closed_status = page.text_content("#status-text") or ""
        v.pngs["closed"] = _export(page, folder, "closed")
        v.files["closed"] = folder / "closed.png"
        # Another edge style for the edited cutout on screen: refined again from its edited mask.
        page.click("summary >> text=Settings and privacy")
        page.select_option("#edges", "crisp")
        page.wait_for_function(
            "() => document.body.dataset.restyled === '1:crisp'"
            " || document.getElementById('status').dataset.state === 'error'",
            timeout=CUT_TIMEOUT_MS,
        )
        v.restyled_status = page.text_content("#status-text") or ""
        v.pngs["closed-crisp"] = _export(page, folder, "closed-crisp")
        page.set_input_files("#file-input", str(PHOTO))
        page.wait_for_function("() => document.getElementById('status').dataset.state === 'error'")
        v.queue_full = page.text_content("#status-text") or ""
        yield v
    finally:
        context.close()


def _near(shape: tuple[int, ...], start: tuple[int, int], end: tuple[int, int]) -> np.ndarray:
    """Each pixel's distance to the segment start-end (photo pixels, pixel centres)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (dx * dx + dy * dy), 0, 1)
    distance: np.ndarray = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))
    return distance


def _alpha(rgba: np.ndarray) -> np.ndarray:
    return rgba[..., 3].astype(np.float32) / 255.0


def test_an_erase_stroke_makes_its_region_transparent(visit: Visit) -> None:
    model, erased = _alpha(visit.pngs["model"]), _alpha(visit.pngs["erased"])
    distance = _near(model.shape, ERASE[0], ERASE[1])
    radius = ERASE[2] / 2
    core = distance <= radius - 3
    assert model[core].min() > 0.9, "the stroke went over the subject"
    assert erased[core].max() <= 1 / 255, "nothing left under the stroke"
    away = distance > radius + 16
    assert float(np.abs(erased[away] - model[away]).mean()) <= 0.002
    assert float(np.abs(erased[away] - model[away]).max()) <= 0.1
    # The item's result is the edited cutout: its thumbnail changed, and Download all has it.
    assert visit.thumbs[0] != visit.thumbs[1]
    with zipfile.ZipFile(visit.files["zip"]) as archive:
        (name,) = archive.namelist()
        with Image.open(io.BytesIO(archive.read(name))) as im:
            assert np.array_equal(np.asarray(im), visit.pngs["erased"])
    assert visit.console_errors == []


def test_another_edge_style_keeps_the_edits(visit: Visit) -> None:
    """Settings > Edges with an edited cutout on screen (its touch-up closed): the edited mask
    is refined again in the new style, so the erased stroke stays erased while the edges change."""
    assert visit.restyled_status == "girl-1.jpg: edges crisp.", visit.restyled_status
    closed, crisp = _alpha(visit.pngs["closed"]), _alpha(visit.pngs["closed-crisp"])
    core = _near(crisp.shape, ERASE[0], ERASE[1]) <= ERASE[2] / 2 - 3
    assert closed[core].max() <= 1 / 255 and crisp[core].max() <= 1 / 255, "the edit is kept"
    changed = np.abs(crisp - closed) > 0.1
    assert changed.sum() > 1000, "the style took effect"  # 2042 measured
    # Crisp edges: fewer partly transparent pixels than the automatic style's.
    partial = lambda a: int(((a > 0.02) & (a < 0.98)).sum())  # noqa: E731
    assert partial(crisp) < partial(closed)


def test_undo_redo_and_reset_bring_back_the_results(visit: Visit) -> None:
    pngs = visit.pngs
    assert np.array_equal(pngs["undone"], pngs["model"]), "undo: the model's cutout again"
    assert np.array_equal(pngs["redone"], pngs["erased"]), "redo (Shift+Ctrl+Z): the edit again"
    assert np.array_equal(pngs["redone-y"], pngs["erased"]), "redo (Ctrl+Y)"
    assert np.array_equal(pngs["reset"], pngs["model"]), "reset: the model's cutout"
    assert np.array_equal(pngs["reset-undone"], pngs["erased"]), "the reset undone"


def test_the_downloaded_mask_gives_the_page_cutout_in_python(visit: Visit, session: Any) -> None:
    from alphacut import remove_background

    mask_path = visit.files["mask"]
    assert mask_path.name == "girl-1-mask.png"
    with Image.open(mask_path) as im:
        assert im.mode == "L" and im.size == (600, 399)
    page_cut = visit.pngs["erased"]
    cutout = remove_background(PHOTO, session=session, start_mask=mask_path)
    alpha = _alpha(page_cut)
    assert float(np.abs(alpha - cutout.alpha).mean()) <= PARITY_MAE
    solid = cutout.alpha > 0.5
    rgb_err = np.abs(page_cut[..., :3].astype(np.float32) - cutout.rgba[..., :3].astype(np.float32))[solid]
    assert float(rgb_err.mean()) <= 2.0
    core = _near(alpha.shape, ERASE[0], ERASE[1]) <= ERASE[2] / 2 - 3
    assert cutout.alpha[core].max() <= 1 / 255


def _photo() -> np.ndarray:
    with Image.open(PHOTO) as im:
        return np.asarray(im.convert("RGB")).astype(np.float32)


def test_the_edge_aware_brush_keeps_what_differs_from_where_it_started(visit: Visit) -> None:
    """Erasing from the white shirt across a dark strap with Follow the photo's edges: the
    white goes, the strap stays."""
    before, after = _alpha(visit.pngs["reset-undone"]), _alpha(visit.pngs["edges"])
    luma = _photo() @ np.array([0.299, 0.587, 0.114], np.float32)
    core = (_near(before.shape, EDGES[0], EDGES[1]) <= EDGES[2] / 2 - 3) & (before > 0.9)
    dark, light = core & (luma < 60), core & (luma > 215)
    assert dark.sum() > 30 and light.sum() > 100, (dark.sum(), light.sum())
    assert float(after[light].mean()) < 0.1, "the shirt's white is erased"
    assert float(after[dark].mean()) > 0.6, "the dark strap, unlike where the stroke began, stays"


def test_restore_and_touch_strokes(visit: Visit) -> None:
    before, restored = _alpha(visit.pngs["edges"]), _alpha(visit.pngs["restored"])
    core = _near(before.shape, RESTORE[0], RESTORE[1]) <= RESTORE[2] / 2 - 3
    assert before[core].max() < 0.05, "the sky was background"
    assert float(restored[core].mean()) > 0.9, "restored"
    touched = _alpha(visit.pngs["touched"])
    core = _near(before.shape, TOUCH[0], TOUCH[1]) <= TOUCH[2] / 2 - 3
    assert restored[core].min() > 0.9 and touched[core].max() <= 1 / 255, "one finger erases too"
    # Closing the touch-up keeps the result.
    assert np.array_equal(visit.pngs["closed"], visit.pngs["touched"])


def test_touchup_controls_have_no_serious_axe_violation(visit: Visit) -> None:
    assert visit.axe == [], visit.axe


def test_the_touchup_counts_in_the_queue_memory_budget(visit: Visit) -> None:
    """Without the touch-up's bytes the same photo would fit in the lowered budget again."""
    assert 2 * PHOTO.stat().st_size + visit.files["closed"].stat().st_size < QUEUE_BYTES
    assert visit.queue_full.startswith("The queue is full"), visit.queue_full


def test_closing_says_the_edits_are_kept(visit: Visit) -> None:
    """Closing the touch-up (with Esc, when no stroke is in progress) replaces its painting instructions in the status line with
    what became of the edits."""
    assert not visit.closed_status.startswith("Touch-up: paint"), visit.closed_status
    assert visit.closed_status.startswith("Touch-up closed") and "keeps its edits" in visit.closed_status
    assert visit.focus_after_close == "touchup-toggle", "Esc closed it: focus goes back to its button"
