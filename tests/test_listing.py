"""Listing photos: the exact layout, the composition graph, and the options on every surface."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alphacut.errors import OptionsError
from alphacut.listing import layout
from alphacut.listing_graph import ListingComposer

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
    assert capped.size == (200, 200)  # never upscaled unless asked
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
