"""Listing photos: the exact layout, the composition graph, and the options on every surface."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_session import FakeSession
from PIL import Image

from alphacut import PRESETS, Options, imageio, listing, remove_background
from alphacut.errors import InputError, OptionsError
from alphacut.listing import layout
from alphacut.listing_graph import ListingComposer
from alphacut.options import parse_color

VECTORS = Path(__file__).parent / "data" / "listing_layouts.json"


def _alpha(width: int, height: int, rects: list[list[int]]) -> np.ndarray:
    alpha = np.zeros((height, width), np.uint8)
    for x0, y0, x1, y1, value in rects:
        alpha[y0:y1, x0:x1] = value
    return alpha


@pytest.fixture(scope="module")
def composer() -> ListingComposer:
    return ListingComposer()


# -- layout: the shared vectors and hand-computed cases ------------------------------------


def _vector_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(VECTORS.read_text())["cases"]
    return cases


@pytest.mark.parametrize("spec", _vector_cases(), ids=lambda spec: spec["name"])
def test_layout_vectors(spec: dict[str, Any]) -> None:
    """The engine gives the integers the page's port is checked against."""
    result = layout(_alpha(spec["width"], spec["height"], spec["rects"]), **spec["options"])
    want = spec["expected"]
    assert result.ints() == want["layout"]
    assert list(result.subject or []) == (want["subject"] or [])
    assert (result.shadow_blur, list(result.shadow_offset)) == (want["shadow_blur"], want["shadow_offset"])
    assert list(result.warnings) == want["warnings"]


def test_vectors_are_what_the_script_writes() -> None:
    """The JSON file is the script's output (regenerate it with scripts/listing_layouts.py)."""
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / "listing_layouts.py"
    spec = importlib.util.spec_from_file_location("listing_layouts", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.vectors() == json.loads(VECTORS.read_text())


def test_crop_box_by_hand() -> None:
    alpha = _alpha(100, 80, [[20, 10, 50, 70, 255]])  # subject x 20..49, y 10..69
    assert layout(alpha, crop=True).box == (20, 10, 50, 70)
    # 5 % of the longer side (60 px) = 3 px each side
    assert layout(alpha, crop=True, margin="5%").box == (17, 7, 53, 73)
    assert layout(alpha, crop=True, margin="12px").box == (8, -2, 62, 82)


def test_speck_far_away_is_ignored_but_a_faint_one_never_counts() -> None:
    alpha = _alpha(1000, 800, [[300, 200, 700, 600, 255], [5, 5, 7, 7, 255], [900, 700, 990, 790, 25]])
    assert layout(alpha, crop=True).subject == (300, 200, 699, 599)


def test_canvas_fill_and_alignment_by_hand() -> None:
    alpha = _alpha(400, 300, [[100, 50, 300, 250, 255]])  # 200 x 200 subject
    centre = layout(alpha, crop=True, canvas="1000x800", fill=50, upscale=True)
    # 50 % of 800 = 400 binds: 400 x 400, centred
    assert (centre.size, centre.canvas, centre.offset) == ((400, 400), (1000, 800), (300, 200))
    capped = layout(alpha, crop=True, canvas="1000x800", fill=50)
    assert capped.size == (200, 200)  # never upscaled unless asked ...
    assert any("200x200 px on the 1000x800 canvas" in w and "--upscale" in w for w in capped.warnings)
    assert not centre.warnings  # ... and said when the subject stays well under the fill (400 px asked)
    near = layout(alpha, crop=True, canvas="1000x800", fill=27)  # 216 px asked: within 5/4, nothing to say
    assert near.size == (200, 200) and not near.warnings
    bottom = layout(alpha, crop=True, canvas="1000x800", fill=50, upscale=True, align="bottom")
    # the gap below is (100 - 50) / 2 % of 800 = 200 px
    assert bottom.offset == (300, 800 - 400 - 200)
    square = layout(alpha, crop=True, canvas="1:1", fill=80)
    assert square.canvas == (250, 250) and square.size == (200, 200)  # 200 / 0.8


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("canvas", "2000by2000", "2000x2000"),
        ("canvas", "0x10", "out of range"),
        ("canvas", "4.5:5", "whole numbers"),
        ("margin", "5 percent", "5%"),
        ("margin", "2.5", "40px"),
        ("shadow_offset", "1;2", "x,y"),
    ],
)
def test_bad_layout_options_say_what_to_write(field: str, value: str, words: str) -> None:
    with pytest.raises(OptionsError, match=words) as info:
        layout(np.zeros((4, 4), np.uint8), crop=True, **{field: value})
    assert repr(value) in str(info.value)


# -- the composition graph ------------------------------------------------------------------


def test_identity_layout_keeps_the_cutout(composer: ListingComposer) -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    out = composer.compose(rgba, layout(rgba[..., 3]))
    assert np.array_equal(out[..., 3], rgba[..., 3])
    seen = rgba[..., 3] > 0
    assert np.array_equal(out[..., :3][seen], rgba[..., :3][seen])


def test_downscale_has_no_dark_fringe(composer: ListingComposer) -> None:
    """Premultiplied resampling: the black under transparent pixels never bleeds into the edge."""
    yy, xx = np.mgrid[0:200, 0:200]
    coverage = np.clip(60 - np.hypot(yy - 100, xx - 100), 0, 1)
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., 0] = np.where(coverage > 0, 255, 0)
    rgba[..., 3] = np.round(coverage * 255)
    plan = layout(rgba[..., 3], crop=True, canvas="37x37")
    out = composer.compose(rgba, plan)
    visible = out[..., 3] > 127
    assert visible.sum() > 500
    assert out[..., 0][visible].min() == 255 and out[..., 1:3].max() == 0


def _square_cutout(size: tuple[int, int], box: tuple[int, int, int, int],
                   colour: tuple[int, int, int] = (200, 40, 40)) -> np.ndarray:
    """An opaque ``colour`` rectangle (half-open ``box``) on a transparent ``size`` (width, height) cutout."""
    rgba = np.zeros((size[1], size[0], 4), np.uint8)
    x0, y0, x1, y1 = box
    rgba[y0:y1, x0:x1] = (*colour, 255)
    return rgba


def test_background_colour_and_subject_are_exact(composer: ListingComposer) -> None:
    rgba = _square_cutout((120, 90), (30, 20, 90, 80))  # 60 x 60 subject
    plan = layout(rgba[..., 3], crop=True, canvas="200x150", fill=40)
    out = composer.compose(rgba, plan, background="color", color=(12, 34, 56))
    assert out.shape == (150, 200, 4) and (out[..., 3] == 255).all()
    assert plan.size == (60, 60) and plan.offset == (70, 45)  # 40 % of 150 = 60: scale 1
    ox, oy = plan.offset
    inside = out[oy : oy + 60, ox : ox + 60]
    assert (inside[..., :3] == (200, 40, 40)).all()
    outside = np.ones((150, 200), bool)
    outside[oy : oy + 60, ox : ox + 60] = False
    assert (out[..., :3][outside] == (12, 34, 56)).all()


def test_fill_share_of_the_canvas(composer: ListingComposer) -> None:
    rgba = _square_cutout((300, 200), (50, 40, 250, 140))  # 200 x 100 subject
    plan = layout(rgba[..., 3], crop=True, canvas="400x400", fill=60)
    assert plan.size == (200, 100)  # 60 % of 400 = 240 > 200: never upscaled
    plan = layout(rgba[..., 3], crop=True, canvas="400x400", fill=60, upscale=True)
    out = composer.compose(rgba, plan, background="color", color=(255, 255, 255))
    rows, cols = np.nonzero(out[..., 1] < 128)  # the red subject's green channel is 40
    assert cols.max() + 1 - cols.min() == 240 and rows.max() + 1 - rows.min() == 120  # 60 % of the width
    assert (cols.min(), rows.min()) == ((400 - 240) // 2, (400 - 120) // 2)


def test_bottom_alignment_leaves_half_the_free_share_below(composer: ListingComposer) -> None:
    rgba = _square_cutout((100, 100), (20, 30, 80, 70))  # 60 x 40
    plan = layout(rgba[..., 3], crop=True, canvas="300x200", fill=80, align="bottom")
    out = composer.compose(rgba, plan, background="color", color=(255, 255, 255))
    rows = np.nonzero((out[..., 1] < 128).any(axis=1))[0]
    assert rows.max() == 200 - 1 - 20  # (100 - 80) / 2 % of 200 = 20 px below


def _shadow_box(out: np.ndarray, threshold: int) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(out[..., 3] >= threshold)
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


@pytest.mark.parametrize(("offset", "dxdy"), [("30,30", (12, 12)), ("-30,20", (-12, 8)), ("0,-25", (0, -10))])
def test_drop_shadow_is_the_silhouette_moved_by_the_offset(
    composer: ListingComposer, offset: str, dxdy: tuple[int, int]
) -> None:
    rgba = _square_cutout((100, 100), (30, 30, 70, 70))  # 40 x 40: offsets are percent of 40
    plan = layout(rgba[..., 3], crop=True, canvas="120x120", shadow="drop", shadow_blur=0, shadow_offset=offset)
    assert plan.shadow_offset == dxdy
    out = composer.compose(rgba, plan, shadow="drop", shadow_opacity=1.0)  # transparent: alpha = a + s (1 - a)
    x0, y0, x1, y1 = 40, 40, 79, 79  # the placed subject
    dx, dy = dxdy
    # Pixels at least half covered by the subject or its shadow: the union of the two squares.
    bx0, by0, bx1, by1 = _shadow_box(out, 128)
    assert abs(bx0 - min(x0, x0 + dx)) <= 1 and abs(bx1 - max(x1, x1 + dx)) <= 1
    assert abs(by0 - min(y0, y0 + dy)) <= 1 and abs(by1 - max(y1, y1 + dy)) <= 1
    shadow_only = (out[..., 3] > 0) & (out[..., 3] < 255)
    assert (out[..., :3][shadow_only] == 0).all()  # a black shadow, straight colours


def test_contact_shadow_darkest_just_under_the_subject(composer: ListingComposer) -> None:
    rgba = _square_cutout((200, 200), (50, 40, 150, 160))  # 100 x 120
    plan = layout(rgba[..., 3], crop=True, margin="10%", canvas="300x300", fill=80, align="bottom",
                  shadow="contact")
    out = composer.compose(rgba, plan, background="color", color=(255, 255, 255), shadow="contact",
                           shadow_opacity=0.5)
    subject_rows = np.nonzero((out[..., 1] < 100).any(axis=1))[0]
    bottom = int(subject_rows.max())
    below = out[bottom + 1 :, 150, 0].astype(int)
    assert below[0] < 230  # darkened right under the subject
    assert int(np.argmin(below)) <= 1 and (np.diff(below[:12]) >= 0).all()  # lightening downwards
    above = out[: int(subject_rows.min()), :, :3]
    assert (above == 255).all()  # nothing above the subject
    assert (out[..., 3] == 255).all()


def test_blur_background_shows_the_photos_mean_colour(composer: ListingComposer) -> None:
    photo = np.zeros((200, 300, 3), np.uint8)
    photo[:, 0::2] = (240, 20, 0)
    photo[:, 1::2] = (0, 40, 200)  # a fine stripe: blurred, its mean (120, 30, 100)
    rgba = _square_cutout((300, 200), (120, 80, 180, 120))
    plan = layout(rgba[..., 3], crop=True, canvas="400x400", fill=50)
    out = composer.compose(rgba, plan, background="blur", photo=photo)
    # The photo lies behind the canvas at the subject's scale (1): x 50..349, y 100..299. Points
    # inside it, away from the subject (x 170..229, y 180..219) and from where its edge is extended.
    free = out[[130, 130, 270, 270, 200, 200], [120, 280, 120, 280, 120, 280]]
    assert (free[:, 3] == 255).all()
    assert np.abs(free[:, :3].astype(int) - (120, 30, 100)).max() <= 3


def test_blur_background_keeps_the_subjects_own_surroundings(composer: ListingComposer) -> None:
    """The photo is placed like the subject: a subject on the red left half stays on red, where a
    canvas-centred crop of the photo would be half blue."""
    photo = np.zeros((200, 400, 3), np.uint8)
    photo[:, :200] = (220, 0, 0)
    photo[:, 200:] = (0, 0, 220)
    rgba = _square_cutout((400, 200), (40, 80, 80, 120))
    plan = layout(rgba[..., 3], crop=True, canvas="200x200", fill=50)
    out = composer.compose(rgba, plan, background="blur", photo=photo).astype(int)
    for x in (10, 100, 170):
        red, blue = out[30, x, 0], out[30, x, 2]
        assert red > 150 and blue < 60, (x, out[30, x])


def test_image_background_is_cover_fitted(composer: ListingComposer) -> None:
    backdrop = np.zeros((100, 300, 3), np.uint8)
    backdrop[:, :100] = (255, 0, 0)
    backdrop[:, 100:200] = (0, 255, 0)
    backdrop[:, 200:] = (0, 0, 255)
    rgba = _square_cutout((50, 50), (20, 20, 30, 30))
    plan = layout(rgba[..., 3], crop=True, canvas="90x90", fill=10)
    out = composer.compose(rgba, plan, background="image", bgimage=backdrop)
    # A square canvas from a 3:1 image keeps its middle third: all green.
    free = out[:, :40]
    assert (free[..., 1] >= 250).all() and (free[..., [0, 2]] <= 5).all()


# -- Options and presets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"fill": 85}, "needs a canvas"),
        ({"align": "bottom"}, "needs a canvas"),
        ({"upscale": True}, "needs a canvas"),
        ({"margin": "5%"}, "needs a crop"),
        ({"canvas": "2000*2000"}, "2000x2000"),
        ({"canvas": "1:1", "fill": 0}, "(0, 100]"),
        ({"canvas": "1:1", "fill": 120}, "(0, 100]"),
        ({"shadow": "soft"}, "'drop'"),
        ({"shadow_opacity": 1.5}, "0..1"),
        ({"shadow_blur": -1.0}, "0..100"),
        ({"shadow_offset": "2"}, "x,y"),
        ({"quality": 0}, "1..100"),
        ({"background": "#12345"}, "#rrggbb"),
        ({"background": "red", "background_image": "b.jpg"}, "keep one"),
    ],
)
def test_bad_listing_options_name_the_value_and_say_what_to_write(values: dict[str, Any], words: str) -> None:
    with pytest.raises(OptionsError, match=re.escape(words)) as info:
        Options(**values)
    bad = next(iter(values.items()))[1] if len(values) == 1 else list(values.values())[-1]
    assert repr(bad) in str(info.value) or str(bad) in str(info.value)


def test_presets_apply_and_explicit_options_override_them() -> None:
    options = Options.from_preset("square-white")
    assert (options.crop, options.canvas, options.fill, options.background, options.align) == (
        True, "2000x2000", 85.0, "#ffffff", "center")
    assert options.listing and options.background_kind == "color"
    tall = Options.from_preset("square-white", canvas="1600x2000", format="jpeg")
    assert tall.canvas == "1600x2000" and tall.fill == 85.0 and tall.format == "jpeg"
    assert Options.from_preset("story-9x16-blur").background_kind == "blur"
    assert Options.from_preset("transparent-crop").background_kind == "transparent"
    assert Options.from_preset("square-white-shadow").shadow == "contact"
    for name in PRESETS:
        Options.from_preset(name)  # every preset is valid as it stands
    with pytest.raises(OptionsError, match="square-white"):
        Options.from_preset("square")


def test_without_listing_options_exports_do_not_change() -> None:
    """The encoder is called as before the listing options existed: same bytes."""
    session = FakeSession()
    photo = np.random.default_rng(5).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    for values in ({}, {"format": "jpeg"}, {"format": "webp"}, {"background": "#336699"}, {"mask": True},
                   {"background": "transparent"}):
        options = Options(**values)
        assert not options.listing
        cutout = remove_background(photo, options=options, session=session)
        flatten = None if options.background in (None, "transparent") and options.format != "jpeg" else (
            (255, 255, 255) if options.background in (None, "transparent") else parse_color(options.background))
        before = imageio.encode(cutout.rgba, format=options.format, icc_profile=cutout.icc_profile,
                                flatten=flatten, mask=options.mask)
        assert cutout.encode(options) == before, values


def test_library_preset_and_encode_default(tmp_path: Path) -> None:
    photo = np.full((120, 160, 3), (30, 60, 90), np.uint8)
    options = Options.from_preset("square-white", canvas="500x500")
    cutout = remove_background(photo, options=options, session=FakeSession())
    assert cutout.rgba.shape == (120, 160, 4)  # the cutout itself stays as it was
    im = Image.open(io.BytesIO(cutout.encode()))  # encodes as it was cut out: the listing photo
    assert im.size == (500, 500) and im.mode == "RGB"  # flattened on white, as a colour background always was
    px = np.asarray(im)
    assert (px[0, 0] == (255, 255, 255)).all() and (px[250, 250] == (30, 60, 90)).all()


def test_quality_reaches_the_encoders() -> None:
    photo = np.random.default_rng(2).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    cutout = remove_background(photo, session=FakeSession())
    low, high = (len(cutout.encode(Options(format="jpeg", quality=q))) for q in (30, 95))
    assert low < high and cutout.encode(Options(format="jpeg", quality=95)) == cutout.encode(Options(format="jpeg"))
    lossy = Image.open(io.BytesIO(cutout.encode(Options(format="webp", quality=60))))
    lossless = Image.open(io.BytesIO(cutout.encode(Options(format="webp"))))
    assert not np.array_equal(np.asarray(lossy), np.asarray(lossless))
    assert np.array_equal(np.asarray(lossless)[..., 3], cutout.rgba[..., 3])


def test_no_subject_keeps_the_whole_photo_and_says_so() -> None:
    cutout = remove_background(np.zeros((40, 60, 3), np.uint8), session=FakeSession())
    cutout.rgba[..., 3] = 0
    canvas = cutout.listing(Options(crop=True, canvas="100x100", fill=90, background="white"))
    assert canvas.shape == (100, 100, 4)
    assert "no subject found: kept the whole photo" in cutout.warnings


def test_a_canvas_over_the_megapixel_cap_is_refused() -> None:
    cutout = remove_background(np.zeros((40, 60, 3), np.uint8), session=FakeSession())
    with pytest.raises(OptionsError, match="smaller canvas"):
        cutout.encode(Options(canvas="20000x20000", max_megapixels=100))


def test_mask_of_a_listing_is_the_placed_alpha() -> None:
    cutout = remove_background(np.full((90, 90, 3), 80, np.uint8), session=FakeSession())
    options = Options.from_preset("square-white-shadow", canvas="200x200", mask=True)
    mask = np.asarray(Image.open(io.BytesIO(cutout.encode(options))))
    # The 60-px disc stands on the floor: rows 125..184 (15 px below it), no shadow, no background.
    assert mask.shape == (200, 200) and mask[0, 0] == 0 and mask[190, 100] == 0
    assert mask[155, 100] == 255 and mask[120, 100] == 0


def test_blur_background_needs_the_photo() -> None:
    cutout = remove_background(np.full((40, 40, 3), 80, np.uint8), session=FakeSession())
    cutout.photo = None
    with pytest.raises(OptionsError, match="original photo"):
        cutout.encode(Options(background="blur"))


def test_image_background_from_a_file(tmp_path: Path) -> None:
    backdrop = tmp_path / "backdrop.png"
    Image.new("RGB", (30, 20), (0, 200, 0)).save(backdrop)
    cutout = remove_background(np.full((60, 60, 3), (200, 0, 0), np.uint8), session=FakeSession())
    px = np.asarray(Image.open(io.BytesIO(cutout.encode(Options(background_image=str(backdrop))))))
    assert px.shape == (60, 60, 4) and (px[0, 0] == (0, 200, 0, 255)).all() and (px[30, 30, :3] == (200, 0, 0)).all()
    with pytest.raises(InputError, match="not a file"):
        cutout.encode(Options(background_image=str(tmp_path / "missing.png")))


@pytest.mark.model
def test_real_photo_square_white(session, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """A real photo through the model and the square-white preset: the subject fills 85 % of the
    canvas along its limiting side (or keeps its own pixels), centred, on pure white."""
    options = Options.from_preset("square-white", format="jpeg")
    cutout = remove_background(data_dir / "photos" / "animal-2.jpg", options=options, session=session)
    plan = listing.layout(cutout.rgba[..., 3], crop=True, canvas="2000x2000", fill=85)
    im = Image.open(io.BytesIO(cutout.encode()))
    assert im.size == (2000, 2000) and im.format == "JPEG"
    px = np.asarray(im).astype(int)
    assert (px[:20, :20] >= 254).all() and (px[-20:, -20:] >= 254).all()
    tw, th = plan.size
    assert max(tw, th) == 1700 or plan.size == (plan.box[2] - plan.box[0], plan.box[3] - plan.box[1])
    ox, oy = plan.offset
    assert abs(ox - (2000 - tw) // 2) <= 1 and abs(oy - (2000 - th) // 2) <= 1
    # Something of the subject is in the placed box, and nothing but white far outside it.
    assert (px[oy : oy + th, ox : ox + tw] < 230).any()
    if ox > 10:
        assert (px[:, : ox - 5] >= 250).all()


def test_a_background_file_is_decoded_once_for_a_run_and_again_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch with --background FILE reads the file once, not once per photo (until the file changes)."""
    from alphacut import compose

    backdrop = tmp_path / "studio.png"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(backdrop)
    calls: list[str] = []
    real = compose.read_background_image

    def counting(source: Any, *, max_megapixels: float) -> np.ndarray:
        calls.append(str(source))
        return real(source, max_megapixels=max_megapixels)

    monkeypatch.setattr(compose, "read_background_image", counting)
    compose._decoded_background.cache_clear()
    options = Options(crop=True, canvas="100x100", background_image=str(backdrop))
    rgba = _square_cutout((80, 60), (20, 10, 60, 50))
    first, _ = compose.listing_canvas(rgba, options)
    second, _ = compose.listing_canvas(rgba, options)
    assert len(calls) == 1 and np.array_equal(first, second)
    assert tuple(first[0, 0, :3]) == (10, 200, 30)
    Image.new("RGB", (64, 48), (200, 10, 30)).save(backdrop)  # a new file at the same path
    os.utime(backdrop, ns=(1, 1))  # a different mtime even on coarse file-system clocks
    third, _ = compose.listing_canvas(rgba, options)
    assert len(calls) == 2 and tuple(third[0, 0, :3]) == (200, 10, 30)
