"""Listing layout: where the cutout goes on a listing photo, in exact integers.

The Python engine and the page (``static/listing.js``) compute the same layout
from the same alpha, so that both compose the same pixels: every step here is
integer (or :class:`fractions.Fraction`) arithmetic with the rounding written
out, never a float that could round differently in another language. The test
vectors in ``tests/data/listing_layouts.json`` pin it down for both.

Percentages (margin, fill, shadow blur and offset) are used in hundredths of a
percent: ``hundredths(p) = floor(p * 100 + 0.5)`` on the IEEE double ``p``
(what JavaScript's ``Math.floor(p * 100 + 0.5)`` gives too). All divisions of
integers round as written: ``half_up(n, d) = floor((2n + d) / 2d)`` (half
towards +infinity, also for negative ``n``), ``ceil_div``, ``floor_div``.

Steps (the spec of issue 13, with its exact rules):

1. Subject box, ignoring faint specks: cells of ``ceil(max(W, H) / 512)``
   pixels; a cell is occupied when a pixel in it has alpha >= 26; 8-connected
   components of occupied cells; those with at least
   ``max(1, ceil(largest / 100))`` cells are kept; the box is the min/max x, y
   of the pixels >= 26 inside kept cells. No such pixel: the whole photo (and a
   warning).
2. Crop box (half-open, may reach past the photo) = the subject box widened by
   the margin: ``N%`` is ``half_up(N% * max(bw, bh))`` pixels, ``Npx`` is N.
3. Canvas: none (the crop box's size), ``WxH``, or an aspect ``A:B`` (``photo``
   = W:H): the smallest canvas of that aspect holding the crop box at scale 1
   within fill: ``n = 10000 * max(bw * B, bh * A)``, ``CW = ceil(n / (F * B))``,
   ``CH = ceil(n / (F * A))`` with F the fill in hundredths of a percent.
4. Scale ``s = min(F * CW / (10000 * bw), F * CH / (10000 * bh))`` (a
   fraction), capped at 1 unless upscaling; ``tw = max(1, half_up(bw * s))``,
   ``th`` likewise.
5. Offset ``ox = (CW - tw) // 2``; centre ``oy = (CH - th) // 2``; bottom
   ``oy = CH - th - (CH * (10000 - F)) // 20000``; both clamped to >= 0.
6. Shadow, in pixels of the canvas, relative to ``L = max(tw, th)``: blur
   ``half_up(blur * L, 10000)``; drop offset ``half_up(dx * L, 10000)``,
   ``half_up(dy * L, 10000)``; contact: dx = 0 and dy = the placed subject's
   bottom edge minus the placed box's bottom edge (<= 0):
   ``oy + half_up(r * th, bh) - (oy + th)`` with ``r`` = rows from the crop
   box's top to the subject's bottom edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from .errors import OptionsError

__all__ = [
    "ALPHA_FLOOR",
    "Canvas",
    "Layout",
    "ceil_div",
    "half_up",
    "hundredths",
    "layout",
    "parse_canvas",
    "parse_margin",
    "parse_offset",
    "subject_box",
]

ALPHA_FLOOR = 26  # alpha (0..255) from which a pixel counts as subject (about 10 %)
CELL_GRID = 512  # the speck grid has at most this many cells on the longer side
SPECK_SHARE = 100  # components under 1/SPECK_SHARE of the largest one are specks
MAX_CANVAS_SIDE = 20000  # a WxH canvas side, and an aspect's terms (A:B), at most this
FULL = 10000  # 100 % in hundredths of a percent
NO_SUBJECT = "no subject found: kept the whole photo"
# Said when the cap at the subject's own pixels leaves it under 4/5 of the size the fill asks for.
SMALL_SUBJECT = (
    "the subject keeps its own {w}x{h} px on the {cw}x{ch} canvas, well under the fill asked:"
    " allow upscaling (upscale, --upscale) or choose a smaller canvas"
)

Align = Literal["center", "bottom"]
ShadowKind = Literal["none", "drop", "contact"]
Box = tuple[int, int, int, int]


def hundredths(percent: float) -> int:
    """A percent in hundredths of a percent: ``floor(p * 100 + 0.5)`` (IEEE double, like JS)."""
    return math.floor(float(percent) * 100.0 + 0.5)


def half_up(n: int, d: int) -> int:
    """``n / d`` rounded half towards +infinity (``d`` > 0)."""
    return (2 * n + d) // (2 * d)


def ceil_div(n: int, d: int) -> int:
    return -((-n) // d)


@dataclass(frozen=True)
class Canvas:
    """A parsed canvas: a fixed size (``size``) or an aspect (``aspect``; ``photo`` = the photo's)."""

    size: tuple[int, int] | None = None
    aspect: tuple[int, int] | None = None
    photo: bool = False


def _whole(text: str, what: str, example: str) -> int:
    if not text.isdigit():
        raise OptionsError(f"cannot read {what} {text!r}: write whole numbers, for example {example}")
    return int(text)


def parse_canvas(text: str) -> Canvas:
    """``"2000x2000"``, ``"4:5"`` or ``"photo"``."""
    value = text.strip().lower()
    hint = "a size like 2000x2000, an aspect like 1:1 or 4:5, or photo"
    if value == "photo":
        return Canvas(photo=True)
    for sep, kind in (("x", "size"), (":", "aspect")):
        if sep in value:
            left, _, right = value.partition(sep)
            example = "2000x2000" if kind == "size" else "4:5"
            a, b = _whole(left.strip(), f"canvas {text!r}:", example), _whole(right.strip(), f"canvas {text!r}:", example)
            if not (1 <= a <= MAX_CANVAS_SIDE and 1 <= b <= MAX_CANVAS_SIDE):
                raise OptionsError(
                    f"canvas {text!r} is out of range: each number must be 1..{MAX_CANVAS_SIDE} ({hint})"
                )
            return Canvas(size=(a, b)) if kind == "size" else Canvas(aspect=(a, b))
    raise OptionsError(f"cannot read canvas {text!r}: write {hint}")


def parse_margin(text: str) -> tuple[int, bool]:
    """``"5%"`` -> (500, True) (hundredths of a percent); ``"40px"`` or ``"40"`` -> (40, False)."""
    value = text.strip().lower()
    hint = "write a percent like 5% or whole pixels like 40px"
    if value.endswith("%"):
        try:
            percent = float(value[:-1])
        except ValueError:
            raise OptionsError(f"cannot read margin {text!r}: {hint}") from None
        if not 0 <= percent <= 1000:
            raise OptionsError(f"margin {text!r} is out of range: use 0% to 1000%")
        return hundredths(percent), True
    digits = value.removesuffix("px").strip()
    if not digits.isdigit():
        raise OptionsError(f"cannot read margin {text!r}: {hint}")
    pixels = int(digits)
    if pixels > 100_000:
        raise OptionsError(f"margin {text!r} is out of range: use at most 100000px")
    return pixels, False


def parse_offset(text: str) -> tuple[int, int]:
    """``"0,1.5"`` (x,y percent) -> hundredths of a percent (0, 150)."""
    parts = text.split(",")
    hint = "write x,y in percent of the subject's size, for example 0,1.5 or -2,3"
    if len(parts) != 2:
        raise OptionsError(f"cannot read shadow offset {text!r}: {hint}")
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise OptionsError(f"cannot read shadow offset {text!r}: {hint}") from None
    if not (abs(x) <= 100 and abs(y) <= 100):
        raise OptionsError(f"shadow offset {text!r} is out of range: each must be -100..100")
    return hundredths(x), hundredths(y)


@dataclass(frozen=True)
class Layout:
    """Where the cutout goes, in pixels.

    ``box``: the crop box in the photo, half-open ``(x0, y0, x1, y1)`` (may reach
    past the photo: transparent there); ``size``: the box scaled, ``(tw, th)``;
    ``canvas``: ``(CW, CH)``; ``offset``: the scaled box's top-left corner on the
    canvas; ``subject``: the subject box found (inclusive ``x0, y0, x1, y1``), or
    None when it was not needed; ``shadow_blur`` and ``shadow_offset``: the
    shadow's blur radius and offset ``(dx, dy)`` in canvas pixels (see the module
    doc for the contact shadow's).
    """

    box: Box
    size: tuple[int, int]
    canvas: tuple[int, int]
    offset: tuple[int, int]
    subject: Box | None = None
    shadow_blur: int = 0
    shadow_offset: tuple[int, int] = (0, 0)
    warnings: tuple[str, ...] = ()

    def ints(self) -> list[int]:
        """The graph's ``layout`` input: x0, y0, x1, y1, tw, th, CW, CH, ox, oy."""
        return [*self.box, *self.size, *self.canvas, *self.offset]

    @property
    def is_identity(self) -> bool:
        """The photo as it is: no crop, no resize, no canvas."""
        w, h = self.size
        return self.box == (0, 0, w, h) and self.canvas == (w, h) and self.offset == (0, 0)


def subject_box(alpha: np.ndarray) -> Box | None:
    """The subject's inclusive box ``(x0, y0, x1, y1)`` in ``alpha`` (uint8 HxW), faint specks ignored.

    None when no pixel reaches :data:`ALPHA_FLOOR`.
    """
    import cv2

    if alpha.ndim != 2 or alpha.dtype != np.uint8:
        raise ValueError(f"alpha must be uint8 HxW, got {alpha.dtype} {alpha.shape}")
    h, w = alpha.shape
    solid = alpha >= ALPHA_FLOOR
    if not solid.any():
        return None
    cell = ceil_div(max(w, h), CELL_GRID)
    gh, gw = ceil_div(h, cell), ceil_div(w, cell)
    padded = np.zeros((gh * cell, gw * cell), bool)
    padded[:h, :w] = solid
    occupied = padded.reshape(gh, cell, gw, cell).any(axis=(1, 3))
    cells = np.asarray(occupied, np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(cells, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    least = max(1, ceil_div(int(areas.max()), SPECK_SHARE))
    kept_ids = np.flatnonzero(areas >= least) + 1
    kept_cells = np.isin(labels, kept_ids)
    kept = solid & np.repeat(np.repeat(kept_cells, cell, axis=0), cell, axis=1)[:h, :w]
    rows = np.flatnonzero(kept.any(axis=1))
    cols = np.flatnonzero(kept.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _margin_pixels(margin: tuple[int, bool], bw: int, bh: int) -> int:
    value, percent = margin
    return half_up(value * max(bw, bh), FULL) if percent else value


def _canvas_size(canvas: Canvas | None, fill: int, bw: int, bh: int, photo: tuple[int, int]) -> tuple[int, int]:
    if canvas is None:
        return bw, bh
    if canvas.size is not None:
        return canvas.size
    a, b = photo if canvas.photo else (canvas.aspect or (1, 1))
    n = FULL * max(bw * b, bh * a)
    return max(1, ceil_div(n, fill * b)), max(1, ceil_div(n, fill * a))


def layout(
    alpha: np.ndarray,
    *,
    crop: bool = False,
    margin: str = "0",
    canvas: str | None = None,
    fill: float | None = None,
    align: Align = "center",
    upscale: bool = False,
    shadow: ShadowKind = "none",
    shadow_blur: float = 2.0,
    shadow_offset: str = "0,1.5",
) -> Layout:
    """The layout of ``alpha`` (uint8 HxW, ``round(alpha * 255)``) on a listing canvas.

    The arguments are the :class:`~alphacut.options.Options` fields of the same
    names, as written there (``margin="5%"``, ``canvas="4:5"``, ``fill=85``).
    """
    return _layout(
        alpha,
        crop=crop,
        margin=parse_margin(margin),
        canvas=parse_canvas(canvas) if canvas is not None else None,
        fill=FULL if fill is None else hundredths(fill),
        align=align,
        upscale=upscale,
        shadow=shadow,
        shadow_blur=hundredths(shadow_blur),
        shadow_offset=parse_offset(shadow_offset),
    )


def _layout(
    alpha: np.ndarray,
    *,
    crop: bool,
    margin: tuple[int, bool],
    canvas: Canvas | None,
    fill: int,
    align: Align,
    upscale: bool,
    shadow: ShadowKind,
    shadow_blur: int,
    shadow_offset: tuple[int, int],
) -> Layout:
    if not 1 <= fill <= FULL:
        raise OptionsError(f"fill must be in (0, 100] percent, got {fill / 100}")
    h, w = alpha.shape
    warnings: list[str] = []
    subject: Box | None = None
    if crop or shadow == "contact":
        subject = subject_box(alpha)
        if subject is None:
            if crop:
                warnings.append(NO_SUBJECT)
            subject = (0, 0, w - 1, h - 1)
    if crop:
        assert subject is not None
        x0, y0, x1, y1 = subject
        m = _margin_pixels(margin, x1 + 1 - x0, y1 + 1 - y0)
        box = (x0 - m, y0 - m, x1 + 1 + m, y1 + 1 + m)
    else:
        box = (0, 0, w, h)
    bw, bh = box[2] - box[0], box[3] - box[1]
    cw, ch = _canvas_size(canvas, fill, bw, bh, (w, h))
    if canvas is None:
        tw, th = bw, bh
    else:
        scale = min(Fraction(fill * cw, FULL * bw), Fraction(fill * ch, FULL * bh))
        if not upscale and scale > 1:
            if scale > Fraction(5, 4):
                warnings.append(SMALL_SUBJECT.format(w=bw, h=bh, cw=cw, ch=ch))
            scale = Fraction(1)
        tw = max(1, half_up(bw * scale.numerator, scale.denominator))
        th = max(1, half_up(bh * scale.numerator, scale.denominator))
    ox = max(0, (cw - tw) // 2)
    if align == "bottom":
        oy = max(0, ch - th - (ch * (FULL - fill)) // (2 * FULL))
    else:
        oy = max(0, (ch - th) // 2)
    longer = max(tw, th)
    blur = half_up(shadow_blur * longer, FULL)
    if shadow == "contact":
        assert subject is not None
        rows = subject[3] + 1 - box[1]  # from the box's top to the subject's bottom edge
        offset = (0, half_up(rows * th, bh) - th)
    else:
        offset = (half_up(shadow_offset[0] * longer, FULL), half_up(shadow_offset[1] * longer, FULL))
    return Layout(
        box=box,
        size=(tw, th),
        canvas=(cw, ch),
        offset=(ox, oy),
        subject=subject,
        shadow_blur=blur,
        shadow_offset=offset,
        warnings=tuple(warnings),
    )
