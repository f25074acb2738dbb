"""Listing composition as an ONNX graph: the cutout placed on a canvas over a background, with a shadow.

Like :mod:`alphacut.graphs`, the engine (onnxruntime) and the page
(onnxruntime-web) run the same graph, so both give the same pixels; the
integers that say where things go come from :func:`alphacut.listing.layout`
(ported exactly to the page). One graph per (background kind, shadow kind):
backgrounds ``transparent``, ``color`` (opaque), ``blur`` (the photo),
``image``; shadows ``none``, ``drop``, ``contact``.

Contract (all images NHWC)
--------------------------
Inputs:

- ``rgba``: uint8 ``[1, H, W, 4]``, the cutout (straight colours + alpha).
- ``layout``: int64 ``[10]`` = x0, y0, x1, y1 (the crop box in the photo,
  half-open, may reach past it), tw, th (its size on the canvas), CW, CH (the
  canvas), ox, oy (where the scaled box's top-left corner goes).
- ``style``: float32 ``[8]`` = background r, g, b (0..255; read by the
  ``color`` kind), background alpha (1 for ``color``, 0 for ``transparent``;
  informative: the kind decides), shadow opacity (0..1), shadow blur
  radius, dx, dy (whole canvas pixels; for ``contact``, dy moves the band's
  centre from the placed box's bottom edge to the subject's).
- ``photo``: uint8 ``[1, PH, PW, C]`` (C = 3 or 4, alpha ignored), background
  ``blur`` only: the photo the cutout came from, placed like the subject and blurred.
- ``bgimage``: uint8 ``[1, h, w, 3]``, background ``image`` only: cover-fitted.

Output ``out``: uint8 ``[1, CH, CW, 4]``, straight RGBA (alpha 255 everywhere on
an opaque background).

Steps: the crop box is cut from ``rgba`` (zeros outside the photo), its
colours premultiplied (float), resized to ``th x tw`` (linear, antialiased:
a triangle filter as wide as the scale on downscaling, so area-like, and with
premultiplied colours no dark fringe) and placed at ``(ox, oy)``. The shadow
comes from the placed alpha: ``drop`` shifts it by ``(dx, dy)``; ``contact``
squashes the placed box's alpha to a band ``max(1, (8 th + 50) // 100)`` rows
high centred on the subject's bottom edge. It is blurred (downscaled by
``k = max(1, (blur + 2) // 4)``, two 5x5 box means, upscaled back: a reach of
about ``blur`` pixels whatever the size) and multiplied by the opacity. The
background: a colour; the photo scaled and moved exactly like the subject, on a
grid of 64 px on the canvas's longer side, its border pixels extended where it
does not reach the canvas's edge (see ``_behind``), three 5x5 box means,
upscaled: the subject in front of its own surroundings, blurred; or the given
image cover-fitted.
Composite (premultiplied): background, then the black shadow (alpha s), then
the subject; on a transparent background the colours are un-premultiplied
(alpha = a + s (1 - a)). Rounded once at the end: QuantizeLinear with scale 1
(half to even, saturated to 0..255).
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper

from .graphs import _box, _Graph, to_bytes
from .listing import Layout

__all__ = [
    "BACKGROUND_KINDS",
    "SHADOW_KINDS",
    "BackgroundKind",
    "ListingComposer",
    "ShadowKind",
    "build_listing_graph",
    "default_composer",
    "graph_name",
    "style_vector",
]

BackgroundKind = Literal["transparent", "color", "blur", "image"]
ShadowKind = Literal["none", "drop", "contact"]
BACKGROUND_KINDS: tuple[BackgroundKind, ...] = ("transparent", "color", "blur", "image")
SHADOW_KINDS: tuple[ShadowKind, ...] = ("none", "drop", "contact")
BLUR_GRID = 64  # the blurred background is computed at this many pixels on the canvas's longer side
CONTACT_BAND = 8  # the contact shadow's height, percent of the placed box's height


def graph_name(background: BackgroundKind, shadow: ShadowKind) -> str:
    """The graph's file name stem, e.g. ``listing-color-none``."""
    return f"listing-{background}-{shadow}"


class _Ints:
    """int64 ``[1]`` arithmetic in the graph (the layout's numbers)."""

    def __init__(self, g: _Graph) -> None:
        self.g = g

    def at(self, vector: str, i: int) -> str:
        return self.g.op("Slice", vector, self.g.i64(i), self.g.i64(i + 1))

    def dim(self, x: str, axis: int) -> str:
        return self.g.op("Slice", self.g.op("Shape", x), self.g.i64(axis), self.g.i64(axis + 1))

    def max(self, a: str, b: str) -> str:
        return self.g.op("Max", a, b)

    def min(self, a: str, b: str) -> str:
        return self.g.op("Min", a, b)

    def neg(self, a: str) -> str:
        return self.g.op("Neg", a)

    def floordiv(self, a: str, d: int | str) -> str:
        # int64 Div truncates; every numerator here is >= 0, so this is floor division.
        return self.g.op("Div", a, self.g.i64(d) if isinstance(d, int) else d)

    def c(self, value: int) -> str:
        return self.g.i64(value)


def _place(g: _Graph, n: _Ints, x: str, top: str, left: str, out_h: str, out_w: str) -> str:
    """``x`` (NHWC) put with its top-left corner at (top, left) on a zero ``out_h x out_w`` image.

    Slices what falls inside, then pads (never pads the whole of a large input).
    """
    zero = n.c(0)

    def span(pos: str, size: str, out: str) -> tuple[str, str, str, str]:
        start = n.min(n.max(n.neg(pos), zero), size)
        end = n.min(n.max(g.sub(out, pos), start), size)
        before = n.min(n.max(pos, zero), out)
        after = g.sub(g.sub(out, before), g.sub(end, start))
        return start, end, before, after

    y0, y1, top_pad, bottom_pad = span(top, n.dim(x, 1), out_h)
    x0, x1, left_pad, right_pad = span(left, n.dim(x, 2), out_w)
    part = g.op("Slice", x, g.op("Concat", y0, x0, axis=0), g.op("Concat", y1, x1, axis=0), g.i64(1, 2))
    pads = g.op("Concat", zero, top_pad, left_pad, zero, zero, bottom_pad, right_pad, zero, axis=0)
    return g.op("Pad", part, pads)


def _resize_nhwc(g: _Graph, x: str, h: str, w: str, channels: int) -> str:
    return g.resize(x, g.op("Concat", g.i64(1), h, w, g.i64(channels), axis=0))


def _blur_map(g: _Graph, x: str, channels: int, h: str, w: str, small_h: str, small_w: str, passes: int) -> str:
    """NHWC float ``x`` downscaled to (small_h, small_w), ``passes`` 5x5 box means, back to (h, w)."""
    small = _resize_nhwc(g, x, small_h, small_w, channels)
    nchw = g.op("Transpose", small, perm=[0, 3, 1, 2])
    for _ in range(passes):
        nchw = _box(g, nchw, 2)
    return _resize_nhwc(g, g.op("Transpose", nchw, perm=[0, 2, 3, 1]), h, w, channels)


def _cover(g: _Graph, n: _Ints, image: str, cw: str, ch: str) -> str:
    """The centred part of ``image`` (uint8 NHWC) with the canvas's aspect (cover fit)."""
    sh, sw = n.dim(image, 1), n.dim(image, 2)
    wider = g.op("GreaterOrEqual", g.mul(sw, ch), g.mul(sh, cw))
    # half_up(n, d) = (2n + d) // 2d
    crop_w = n.max(n.min(n.floordiv(g.add(g.mul(n.c(2), g.mul(sh, cw)), ch), g.mul(n.c(2), ch)), sw), n.c(1))
    crop_h = n.max(n.min(n.floordiv(g.add(g.mul(n.c(2), g.mul(sw, ch)), cw), g.mul(n.c(2), cw)), sh), n.c(1))
    crop_w = g.op("Where", wider, crop_w, sw)
    crop_h = g.op("Where", wider, sh, crop_h)
    x0 = n.floordiv(g.sub(sw, crop_w), 2)
    y0 = n.floordiv(g.sub(sh, crop_h), 2)
    starts = g.op("Concat", y0, x0, n.c(0), axis=0)
    ends = g.op("Concat", g.add(y0, crop_h), g.add(x0, crop_w), n.c(3), axis=0)
    return g.op("Slice", image, starts, ends, g.i64(1, 2, 3))


def _floordiv(g: _Graph, a: str, b: str) -> str:
    """Floor division of int64 tensors, also for negative ``a`` (int64 Div truncates; Mod floors)."""
    return g.op("Div", g.sub(a, g.op("Mod", a, b)), b)


def _behind(g: _Graph, n: _Ints, photo: str, box: tuple[str, str, str, str], placed: tuple[str, str, str, str],
            canvas: tuple[str, str], grid: tuple[str, str]) -> str:
    """The photo as it lies behind the placed subject, on the small ``grid`` (float NHWC), edges extended.

    The photo is scaled and moved exactly like the subject (``k = bw / tw`` photo pixels per canvas
    pixel, the crop box's centre on the placed box's centre), so the subject sits in front of its own
    surroundings: no second, differently scaled copy of it shows in the background. Where the photo
    so placed does not reach the canvas's edge, its border pixels are extended (on the small grid:
    cheap at any size), which the blur turns into the photo's colours running on.
    """
    x0, y0, x1, y1 = box
    tw, th, ox, oy = placed
    cw, ch = canvas
    small_h, small_w = grid
    ph, pw = n.dim(photo, 1), n.dim(photo, 2)
    num, den = g.sub(x1, x0), tw
    two, one, zero = n.c(2), n.c(1), n.c(0)

    def axis(lo: str, hi: str, offset: str, placed_size: str, canvas_size: str, limit: str, cells: str
             ) -> tuple[str, str, str, str]:
        # The canvas's extent in photo pixels: start (floor) and size (half up), then the part inside
        # the photo, then where that part falls on the grid (half up), at least one cell.
        size = n.max(n.floordiv(g.add(g.mul(two, g.mul(canvas_size, num)), den), g.mul(two, den)), one)
        centre = g.sub(g.mul(g.add(lo, hi), den), g.mul(g.add(g.mul(two, offset), placed_size), num))
        start = _floordiv(g, centre, g.mul(two, den))
        inside0 = n.min(n.max(start, zero), g.sub(limit, one))
        inside1 = n.max(n.min(g.add(start, size), limit), g.add(inside0, one))

        def cell(x: str) -> str:
            return n.floordiv(g.add(g.mul(two, g.mul(g.sub(x, start), cells)), size), g.mul(two, size))

        c0 = n.min(cell(inside0), g.sub(cells, one))
        c1 = n.max(n.min(cell(inside1), cells), g.add(c0, one))
        return inside0, inside1, c0, c1

    px0, px1, cx0, cx1 = axis(x0, x1, ox, tw, cw, pw, small_w)
    py0, py1, cy0, cy1 = axis(y0, y1, oy, th, ch, ph, small_h)
    part = g.op("Slice", photo, g.op("Concat", py0, px0, axis=0), g.op("Concat", py1, px1, axis=0), g.i64(1, 2))
    small = _resize_nhwc(g, part, g.sub(cy1, cy0), g.sub(cx1, cx0), 3)
    pads = g.op("Concat", zero, cy0, cx0, zero, zero, g.sub(small_h, cy1), g.sub(small_w, cx1), zero, axis=0)
    return g.op("Cast", g.op("Pad", small, pads, mode="edge"), to=TensorProto.FLOAT)


def build_listing_graph(background: BackgroundKind = "color", shadow: ShadowKind = "none") -> onnx.ModelProto:
    """The listing composition graph for one background kind and one shadow kind (see the module doc)."""
    if background not in BACKGROUND_KINDS:
        raise ValueError(f"background must be one of {BACKGROUND_KINDS}, got {background!r}")
    if shadow not in SHADOW_KINDS:
        raise ValueError(f"shadow must be one of {SHADOW_KINDS}, got {shadow!r}")
    g = _Graph()
    n = _Ints(g)
    x0, y0, x1, y1, tw, th, cw, ch, ox, oy = (n.at("layout", i) for i in range(10))
    style = [g.op("Slice", "style", g.i64(i), g.i64(i + 1)) for i in range(8)]
    one = g.const(1.0)
    inputs = [helper.make_tensor_value_info("rgba", TensorProto.UINT8, [1, "H", "W", 4])]

    # The subject: crop box -> premultiplied float -> resized -> padded onto the canvas.
    # Every full-size pass costs (memory-bound): as few as the maths allows.
    box = g.op("Cast", _place(g, n, "rgba", n.neg(y0), n.neg(x0), g.sub(y1, y0), g.sub(x1, x0)), to=TensorProto.FLOAT)
    rgb, alpha = g.ops("Split", box, g.i64(3, 1), n=2, axis=3)
    premul = g.op("Concat", g.mul(rgb, g.mul(alpha, g.const(1 / 255))), alpha, axis=3)
    scaled = _resize_nhwc(g, premul, th, tw, 4)
    zero = n.c(0)
    pads = g.op(
        "Concat", zero, oy, ox, zero, zero, g.sub(g.sub(ch, th), oy), g.sub(g.sub(cw, tw), ox), zero, axis=0
    )
    sub_rgb, sub_a = g.ops("Split", g.op("Pad", scaled, pads), g.i64(3, 1), n=2, axis=3)
    through = g.add(g.mul(sub_a, g.const(-1 / 255)), one)  # what the subject lets through

    # The background (premultiplied, 0..255; None: transparent) and its alpha.
    bg_rgb: str | None = None
    bg_a: str | None = None
    if background == "color":
        bg_rgb = g.op("Reshape", g.op("Slice", "style", g.i64(0), g.i64(3)), g.i64(1, 1, 1, 3))
    elif background == "blur":
        inputs.append(helper.make_tensor_value_info("photo", TensorProto.UINT8, [1, "PH", "PW", "C"]))
        photo = g.op("Slice", "photo", g.i64(0), g.i64(3), g.i64(3))
        longer = n.max(cw, ch)
        small_h = n.max(n.floordiv(g.add(g.mul(ch, n.c(BLUR_GRID)), g.sub(longer, n.c(1))), longer), n.c(1))
        small_w = n.max(n.floordiv(g.add(g.mul(cw, n.c(BLUR_GRID)), g.sub(longer, n.c(1))), longer), n.c(1))
        small = _behind(g, n, photo, (x0, y0, x1, y1), (tw, th, ox, oy), (cw, ch), (small_h, small_w))
        nchw = g.op("Transpose", small, perm=[0, 3, 1, 2])
        for _ in range(3):
            nchw = _box(g, nchw, 2)
        bg_rgb = _resize_nhwc(g, g.op("Transpose", nchw, perm=[0, 2, 3, 1]), ch, cw, 3)
    elif background == "image":
        inputs.append(helper.make_tensor_value_info("bgimage", TensorProto.UINT8, [1, "h", "w", 3]))
        fitted = _resize_nhwc(g, _cover(g, n, "bgimage", cw, ch), ch, cw, 3)
        bg_rgb = g.op("Cast", fitted, to=TensorProto.FLOAT)

    # The shadow: s in 0..1 on the canvas, black, between the background and the subject.
    if shadow != "none":
        dx = g.op("Cast", style[6], to=TensorProto.INT64)
        dy = g.op("Cast", style[7], to=TensorProto.INT64)
        if shadow == "drop":
            source = _place(g, n, sub_a, dy, dx, ch, cw)
        else:
            band = n.max(n.floordiv(g.add(g.mul(th, n.c(CONTACT_BAND)), n.c(50)), 100), n.c(1))
            squashed = _resize_nhwc(g, g.op("Slice", scaled, g.i64(3), g.i64(4), g.i64(3)), band, tw, 1)
            top = g.sub(g.add(g.add(oy, th), dy), n.floordiv(band, 2))
            source = _place(g, n, squashed, top, ox, ch, cw)
        blur = g.op("Cast", style[5], to=TensorProto.INT64)
        k = n.max(n.floordiv(g.add(n.max(blur, zero), n.c(2)), 4), n.c(1))
        small_h = n.floordiv(g.add(ch, g.sub(k, n.c(1))), k)
        small_w = n.floordiv(g.add(cw, g.sub(k, n.c(1))), k)
        soft = _blur_map(g, source, 1, ch, cw, small_h, small_w, passes=2)
        s = g.clip(g.mul(soft, g.mul(style[4], g.const(1 / 255))))
        if bg_rgb is None:
            bg_a = g.mul(s, g.const(255.0))
        else:
            bg_rgb = g.mul(bg_rgb, g.sub(one, s))

    if bg_rgb is None:
        # Transparent: straight colours = premultiplied / alpha (the shadow adds alpha, no colour).
        out_a = sub_a if bg_a is None else g.add(sub_a, g.mul(bg_a, through))
        out_rgb = g.mul(sub_rgb, g.div(g.const(255.0), g.op("Max", out_a, g.const(1e-3))))
    else:
        out_rgb = g.add(sub_rgb, g.mul(bg_rgb, through))
        out_a = g.op("Expand", g.const([[[[255.0]]]]), g.op("Shape", sub_a))
    # QuantizeLinear with scale 1: round half to even and saturate to 0..255 in one pass.
    g.op("QuantizeLinear", g.op("Concat", out_rgb, out_a, axis=3), one, g.const(0, np.uint8), out="out")
    inputs += [
        helper.make_tensor_value_info("layout", TensorProto.INT64, [10]),
        helper.make_tensor_value_info("style", TensorProto.FLOAT, [8]),
    ]
    outputs = [helper.make_tensor_value_info("out", TensorProto.UINT8, [1, "CH", "CW", 4])]
    return g.model(inputs, outputs, graph_name(background, shadow).replace("-", "_"))


def style_vector(
    layout: Layout, *, color: tuple[int, int, int] | None = None, shadow_opacity: float = 0.0
) -> np.ndarray:
    """The graph's ``style`` input: colour (None: transparent), shadow opacity, and the layout's shadow pixels."""
    r, g, b = color or (0, 0, 0)
    dx, dy = layout.shadow_offset
    values = [r, g, b, 0 if color is None else 1, shadow_opacity, layout.shadow_blur, dx, dy]
    return np.array(values, np.float32)


class ListingComposer:
    """Runs the listing graphs with onnxruntime (CPU), one session per kind, built on first use.

    Thread-safe; holds no per-image state.
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self._sessions: dict[tuple[BackgroundKind, ShadowKind], Any] = {}
        self._lock = threading.Lock()

    def _session(self, background: BackgroundKind, shadow: ShadowKind) -> Any:
        import onnxruntime as ort

        with self._lock:
            session = self._sessions.get((background, shadow))
            if session is None:
                so = ort.SessionOptions()
                # Full-resolution tensors of any size: an arena would keep the largest one's peak.
                so.enable_cpu_mem_arena = False
                so.inter_op_num_threads = 1
                if self.threads:
                    so.intra_op_num_threads = self.threads
                so.log_severity_level = 3
                model = to_bytes(build_listing_graph(background, shadow))
                session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
                self._sessions[background, shadow] = session
            return session

    def compose(
        self,
        rgba: np.ndarray,
        layout: Layout,
        *,
        background: BackgroundKind = "transparent",
        color: tuple[int, int, int] | None = None,
        shadow: ShadowKind = "none",
        shadow_opacity: float = 0.35,
        photo: np.ndarray | None = None,
        bgimage: np.ndarray | None = None,
    ) -> np.ndarray:
        """The listing canvas (uint8 CHxCWx4, straight RGBA) for the cutout ``rgba`` (uint8 HxWx4).

        ``color`` is the ``color`` kind's background; ``photo`` (HxWx3/4 uint8) the
        ``blur`` kind's, ``bgimage`` (hxwx3 uint8) the ``image`` kind's.
        """
        if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
            raise ValueError(f"rgba must be uint8 HxWx4, got {rgba.dtype} {rgba.shape}")
        feeds: dict[str, np.ndarray] = {
            "rgba": np.ascontiguousarray(rgba)[None],
            "layout": np.array(layout.ints(), np.int64),
            "style": style_vector(
                layout,
                color=(color or (255, 255, 255)) if background == "color" else None,
                shadow_opacity=shadow_opacity if shadow != "none" else 0.0,
            ),
        }
        if background == "blur":
            if photo is None:
                raise ValueError("the blur background needs the photo")
            feeds["photo"] = np.ascontiguousarray(photo)[None]
        elif background == "image":
            if bgimage is None:
                raise ValueError("the image background needs the image")
            feeds["bgimage"] = np.ascontiguousarray(bgimage[..., :3])[None]
        (out,) = self._session(background, shadow).run(["out"], feeds)
        result: np.ndarray = out[0]
        return result


_default: list[ListingComposer] = []
_default_lock = threading.Lock()


def default_composer() -> ListingComposer:
    """The composer shared by the callers that bring none (made once)."""
    with _default_lock:
        if not _default:
            _default.append(ListingComposer())
        return _default[0]
