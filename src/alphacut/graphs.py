"""Pre- and post-processing expressed as ONNX graphs.

The Python engine (onnxruntime) and the browser app (onnxruntime-web) run the
very same graphs, so both give the same cutout. The graphs are built from code
here (deterministically: same parameters, same bytes) and never committed as
binaries. Only ops implemented by onnxruntime's CPU execution provider are
used (the WASM build shares those kernels). Opset 18.

Contract
--------
Pre-processing graph, ``build_preprocess_graph(size=1024)``:

- input ``image``: uint8 ``[1, H, W, C]``, C = 3 (RGB) or 4 (RGBA, alpha is
  ignored), any H, W >= 1.
- output ``input``: float32 ``[1, 3, size, size]`` = ``(rgb - 128) / 256``
  where ``rgb`` is the photo resized to ``size x size`` with an anti-aliased
  (triangle) filter. No image-dependent normalisation.

Post-processing, in two stages that can also run as one graph:

``build_postprocess_graph(params)`` (single call; what the browser runs):

- input ``image``: the same uint8 ``[1, H, W, C]`` tensor the pre graph got.
- input ``mask``: float32 ``[1, 1, h, w]`` (ISNet's ``output``, 1024 x 1024,
  already in 0..1; any size works). Never min-max rescaled.
- output ``alpha``: float32 ``[1, 1, H, W]`` in [0, 1].
- output ``rgba``: uint8 ``[1, H, W, 4]``, the cutout: the estimated colour
  of the subject (background colour removed from edge pixels), straight (not
  premultiplied), with ``round(alpha * 255)`` (half to even) as its alpha.
  What Pillow and canvas ``ImageData`` take as they are. With foreground
  estimation off its colours are the photo itself.
- output ``alpha_small``: float32 ``[1, 1, h', w']``, the refined alpha at the
  working resolution (long side ``params.work_size`` or less): cheap input for
  :func:`alphacut.confidence.edge_confidence` on huge photos.

``build_coefficients_graph(params)``: inputs ``image`` and ``mask`` as above;
outputs ``alpha_small`` and four small float32 maps (grid resolution, NCHW):
``coef_a`` ``[1, 3, ga, gb]`` and ``coef_b`` ``[1, 1, ga, gb]`` (alpha =
``a . rgb255 + b``), ``coef_fg`` and ``coef_bg`` ``[1, 3, fa, fb]`` (blurred
subject and background colours, 0..255). Their sizes do not depend on H, W
beyond the aspect ratio.

``build_apply_graph(params)``: inputs ``image`` (a strip of rows,
``[1, n, W, C]``), ``rows`` (int64 ``[2]``: the strip's first row and the
whole photo's height H) and the four ``coef_*`` maps; outputs ``alpha``
``[1, 1, n, W]`` and ``rgba`` ``[1, n, W, 4]`` for those rows, the same
values as the single call gives for them (so the engine runs it in strips:
bounded memory, cache-sized work). The strip = the whole photo works too.

How the post-processing works (and why)
----------------------------------------
Everything expensive happens at a *working resolution* (long side 512 by
default, never above the photo's size): the model's mask is 1024 x 1024 and
the window statistics are means over many pixels, so sampling them at 512
costs a quarter and changes the results by ~1 % (edge error on the lemur
composites 0.0422 vs 0.0419 at 1024). Window means are antialiased
downscales onto a coarse grid (a triangle window, O(1) per pixel, and
multi-threaded in onnxruntime; exact CumSum box filters were ~10x slower).
"Radii" below are grid cell sizes in pixels of the photo scaled to a 1024-px
long side (the model's grid; the photo's own pixels when it is smaller),
whatever the working resolution. Only smooth maps on those grids reach full
resolution: the apply stage upsamples them (bilinear) and does a fixed
number of per-pixel steps, so its cost is linear in pixels.

1. Despeckle (edge stabilisation): a pixel keeps its alpha only if the share
   of confident foreground within a ``speck_radius`` window reaches
   ``speck_mass``; the same test on the background fills pin-holes. Thin
   hair attached to the subject has plenty of subject in its window and is
   kept; an isolated blob of a few pixels is not.
2. Colour projection near the outline (see ``_colour_projection``).
3. Colour guided filter (He et al.), "fast" variant: the coefficients
   ``alpha ~ a . rgb + b`` are fitted at working resolution, upsampled
   bilinearly and applied to the full-resolution photo, so edges follow the
   photo's real edges at full resolution and stay soft where colours blend
   (hair, fur).
4. A gentle linear snap (``snap_low``..``snap_high`` -> 0..1) folded into the
   coefficients: removes faint haze and lifts nearly opaque interiors.
5. Blur-fusion foreground estimation (Forte & Pitie 2021), two iterations at
   working resolution; the final correction
   ``F = F_blur + a (I - B_blur - a (F_blur - B_blur))`` runs at full
   resolution, in the apply stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "OPSET",
    "PostprocessParams",
    "build_apply_graph",
    "build_coefficients_graph",
    "build_postprocess_graph",
    "build_preprocess_graph",
    "to_bytes",
]

OPSET = 18
REF_SIZE = 1024  # radii are in pixels of the photo scaled to this long side (the model's grid)


@dataclass(frozen=True)
class PostprocessParams:
    """Build-time parameters of the post-processing graph.

    Radii are window (grid cell) sizes in pixels of the photo scaled to a
    1024-px long side (``REF_SIZE``, the model's own grid), so they scale
    with the photo and do not depend on ``work_size``. Defaults were chosen on
    the lemur composites of ``benchmarks/quality.py``.
    """

    refine: bool = True  # guided-filter edge refinement against the photo
    foreground: bool = True  # blur-fusion foreground colour estimation
    despeckle: bool = True  # remove isolated specks, fill pin-holes
    project: bool = True  # re-estimate alpha near the outline from local colours
    work_size: int = 512  # long side of the working resolution
    gf_radius: int = 8  # guided filter window radius
    gf_eps: float = 1e-3  # guided filter regulariser (larger = smoother)
    speck_radius: int = 16  # despeckle window radius
    speck_mass: float = 0.04  # minimum share of subject (or background) nearby
    colour_radius: int = 16  # window for local subject / background colours
    band_radius: int = 4  # re-estimate alpha only this close to the outline
    colour_contrast: float = 0.05  # |F - B|^2 at which the colour estimate is fully trusted
    colour_sigma2: float = 0.03  # |I - B|^2 scale at which a subject colour "looks like" background
    colour_ambiguity: float = 0.1  # share of such subject colours at which the estimate is not trusted
    colour_step: float = 0.5  # largest change of alpha the colour estimate may make
    snap_low: float = 0.02  # alpha below this becomes 0
    snap_high: float = 0.98  # alpha above this becomes 1
    fg_radius_coarse: int = 24  # blur-fusion first pass radius
    fg_radius_fine: int = 3  # blur-fusion second pass radius

    def __post_init__(self) -> None:
        if self.work_size < 8:
            raise ValueError(f"work_size must be >= 8, got {self.work_size}")
        for name in (
            "gf_radius",
            "speck_radius",
            "colour_radius",
            "band_radius",
            "fg_radius_coarse",
            "fg_radius_fine",
        ):
            value = getattr(self, name)
            if not 1 <= value <= 256:
                raise ValueError(f"{name} must be in 1..256, got {value}")
        if not 0 < self.colour_step <= 1:
            raise ValueError(f"colour_step must be in (0, 1], got {self.colour_step}")
        if not self.colour_contrast > 0:
            raise ValueError(f"colour_contrast must be > 0, got {self.colour_contrast}")
        if not self.gf_eps > 0:
            raise ValueError(f"gf_eps must be > 0, got {self.gf_eps}")
        if not 0 <= self.speck_mass < 0.5:
            raise ValueError(f"speck_mass must be in [0, 0.5), got {self.speck_mass}")
        if not 0 <= self.snap_low < self.snap_high <= 1:
            raise ValueError(
                f"need 0 <= snap_low < snap_high <= 1, got {self.snap_low}, {self.snap_high}"
            )


class _Graph:
    """Tiny graph builder: deterministic names, constants as initializers."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0
        self._consts: dict[tuple[str, bytes, tuple[int, ...]], str] = {}
        self.work_hw: str | None = None  # int64 [2]: working (h, w), post graph only
        self.ref_hw: str | None = None  # int64 [2]: reference (h, w) that radii are measured in

    def _name(self, op: str) -> str:
        self._n += 1
        return f"{op.lower()}_{self._n}"

    def op(self, op: str, *inputs: str, out: str | None = None, **attrs: object) -> str:
        name = out or self._name(op)
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=f"n_{name}", **attrs))
        return name

    def ops(self, op: str, *inputs: str, n: int, **attrs: object) -> list[str]:
        names = [self._name(op) for _ in range(n)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=f"n_{names[0]}", **attrs))
        return names

    def const(self, value: object, dtype: type = np.float32) -> str:
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.tobytes(), arr.shape)
        if key not in self._consts:
            name = f"c_{len(self._consts)}"
            self.inits.append(numpy_helper.from_array(arr, name))
            self._consts[key] = name
        return self._consts[key]

    def i64(self, *values: int) -> str:
        return self.const(list(values), np.int64)

    # -- composite helpers -------------------------------------------------

    def add(self, a: str, b: str) -> str:
        return self.op("Add", a, b)

    def sub(self, a: str, b: str) -> str:
        return self.op("Sub", a, b)

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", a, b)

    def div(self, a: str, b: str) -> str:
        return self.op("Div", a, b)

    def clip(self, x: str, lo: float = 0.0, hi: float = 1.0, out: str | None = None) -> str:
        return self.op("Clip", x, self.const(lo), self.const(hi), out=out)

    def channel(self, x: str, start: int, stop: int) -> str:
        return self.op("Slice", x, self.i64(start), self.i64(stop), self.i64(1))

    def grid(self, x: str, cell: int) -> str:
        """Local means on a coarse grid: antialiased downscale onto ``cell``-px cells.

        ``cell`` is in pixels of the reference resolution (``ref_hw``), so the
        grid does not depend on the working resolution the statistics are
        sampled at. The triangle filter of an antialiased linear Resize is a
        normalised, non-negative window (renormalised at the borders), so the
        result is a set of local weighted means, O(1) per pixel and
        multi-threaded in onnxruntime. We tried exact CumSum box filters
        first: ~10x slower.
        """
        assert self.ref_hw is not None
        cells = self.op(
            "Max",
            self.op(
                "Cast",
                self.op("Ceil", self.mul(self.op("Cast", self.ref_hw, to=TensorProto.FLOAT), self.const(1 / cell))),
                to=TensorProto.INT64,
            ),
            self.i64(1, 1),
        )
        channels = self.op("Slice", self.op("Shape", x), self.i64(0), self.i64(2))
        return self.resize(x, self.op("Concat", channels, cells, axis=0))

    def to_size(self, x: str, hw: str) -> str:
        channels = self.op("Slice", self.op("Shape", x), self.i64(0), self.i64(2))
        return self.resize(x, self.op("Concat", channels, hw, axis=0))

    def smooth(self, x: str, cell: int) -> str:
        """Local mean at working resolution: down to the grid and back up."""
        assert self.work_hw is not None
        return self.to_size(self.grid(x, cell), self.work_hw)

    def resize(
        self, x: str, sizes: str, mode: str = "linear", out: str | None = None, antialias: int = 1
    ) -> str:
        # antialias=1: the filter widens when downscaling (no aliasing on 24 MP
        # photos); upscaling is plain bilinear / bicubic. Linear never
        # overshoots, which matters for alpha and coefficient maps.
        return self.op("Resize", x, "", "", sizes, mode=mode, antialias=antialias, out=out)

    def model(
        self, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], name: str
    ) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="alphacut"
        )
        model.ir_version = 8  # readable by onnxruntime >= 1.14 and onnxruntime-web
        onnx.checker.check_model(model)
        return model


def _image_input() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("image", TensorProto.UINT8, [1, "H", "W", "C"])


def _rgb_nchw(g: _Graph) -> str:
    """uint8 [1,H,W,C] -> uint8 [1,3,H,W] (alpha channel dropped)."""
    rgb = g.op("Slice", "image", g.i64(0), g.i64(3), g.i64(3))
    return g.op("Transpose", rgb, perm=[0, 3, 1, 2])


def build_preprocess_graph(size: int = 1024) -> onnx.ModelProto:
    """Photo (uint8 NHWC, RGB or RGBA) -> ISNet input ``(rgb - 128) / 256``."""
    if not 1 <= size <= 8192:
        raise ValueError(f"size must be in 1..8192, got {size}")
    g = _Graph()
    # Resize the uint8 NHWC photo first (all channels, cheapest layout for
    # onnxruntime's antialiased kernel), then drop alpha / transpose / cast on
    # the small result: full-resolution passes are what costs on 24 MP.
    channels = g.op("Slice", g.op("Shape", "image"), g.i64(3), g.i64(4))
    nhwc_size = g.op("Concat", g.i64(1, size, size), channels, axis=0)
    # Cubic (a = -0.75) rather than linear: when small photos are upscaled to
    # 1024 it keeps them sharp like the Lanczos resize ISNet was used with
    # (IoU on the lemur composites 0.950 vs 0.944 with linear); antialias=1
    # widens the kernel when downscaling. uint8 output saturates, no overshoot.
    small = g.resize("image", nhwc_size, mode="cubic")
    small = g.op("Transpose", g.op("Slice", small, g.i64(0), g.i64(3), g.i64(3)), perm=[0, 3, 1, 2])
    small = g.op("Cast", small, to=TensorProto.FLOAT)
    # (x - 128) / 256 as one affine step: x / 256 - 0.5
    g.op("Add", g.mul(small, g.const(1 / 256)), g.const(-0.5), out="input")
    return g.model(
        [_image_input()],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        "alphacut_preprocess",
    )


def _guided_filter(g: _Graph, guide: str, p: str, cell: int, eps: float) -> tuple[str, str]:
    """Colour guided filter (He et al.) with its statistics on a coarse grid.

    ``guide`` is [1,3,h,w] centred on 0, ``p`` is [1,1,h,w]. All window means
    are taken on a grid of ``cell``-pixel cells (like the "fast" guided
    filter, but averaging the full working-resolution products rather than
    subsampling them), the per-cell 3x3 system is solved there, and the
    coefficients ``a`` [1,3,..] and ``b`` [1,1,..] are returned on the grid,
    to be upsampled to any resolution: ``q = sum_c a_c * guide_c + b``.
    """
    i0, i1, i2 = (g.channel(guide, c, c + 1) for c in range(3))
    products = [g.mul(x, y) for x, y in ((i0, i0), (i0, i1), (i0, i2), (i1, i1), (i1, i2), (i2, i2))]
    stack = g.op("Concat", guide, p, *products, g.mul(guide, p), axis=1)
    means = g.grid(stack, cell)
    m = g.ops("Split", means, g.i64(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3), n=11, axis=1)
    mi = m[0:3]
    mp = m[3]
    mii = m[4:10]
    mip = m[10]
    mi3 = g.op("Concat", *mi, axis=1)
    cov_ip = g.sub(mip, g.mul(mi3, mp))
    v = g.ops("Split", cov_ip, g.i64(1, 1, 1), n=3, axis=1)
    e = g.const(eps)
    s00 = g.add(g.sub(mii[0], g.mul(mi[0], mi[0])), e)
    s01 = g.sub(mii[1], g.mul(mi[0], mi[1]))
    s02 = g.sub(mii[2], g.mul(mi[0], mi[2]))
    s11 = g.add(g.sub(mii[3], g.mul(mi[1], mi[1])), e)
    s12 = g.sub(mii[4], g.mul(mi[1], mi[2]))
    s22 = g.add(g.sub(mii[5], g.mul(mi[2], mi[2])), e)

    def det2(a: str, b: str, c: str, d: str) -> str:
        return g.sub(g.mul(a, b), g.mul(c, d))

    # Symmetric 3x3 inverse by cofactors (eps > 0 keeps it positive definite).
    c00 = det2(s11, s22, s12, s12)
    c01 = det2(s02, s12, s01, s22)
    c02 = det2(s01, s12, s02, s11)
    c11 = det2(s00, s22, s02, s02)
    c12 = det2(s01, s02, s00, s12)
    c22 = det2(s00, s11, s01, s01)
    det = g.add(g.add(g.mul(s00, c00), g.mul(s01, c01)), g.mul(s02, c02))
    inv_det = g.op("Reciprocal", det)

    def row(x: str, y: str, z: str) -> str:
        dot = g.add(g.add(g.mul(x, v[0]), g.mul(y, v[1])), g.mul(z, v[2]))
        return g.mul(dot, inv_det)

    a = g.op("Concat", row(c00, c01, c02), row(c01, c11, c12), row(c02, c12, c22), axis=1)
    b = g.sub(mp, g.op("ReduceSum", g.mul(a, mi3), g.i64(1), keepdims=1))
    # The guided filter's second averaging (mean of a, b over the windows a
    # pixel belongs to): a 3x3 mean on the tiny grid.
    ab = g.op(
        "AveragePool",
        g.op("Concat", a, b, axis=1),
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
        count_include_pad=0,
    )
    a_mean, b_mean = g.ops("Split", ab, g.i64(3, 1), n=2, axis=1)
    return a_mean, b_mean


def _despeckle(g: _Graph, p: str, mask: str, cell: int, mass: float) -> str:
    """Drop alpha far from any real amount of subject; fill tiny holes.

    ``mass`` is the share of the window that must be confident
    subject (alpha > 0.5) for a pixel to keep its alpha (window: ``cell``
    pixels, see ``_Graph.grid``); the ramp over
    [mass/2, mass] avoids a hard cut. Symmetrically for background.
    The share is counted on the model's own ``mask`` (any size: the grid is
    fixed), so a 2-px strand of hair is not averaged away at a smaller
    working resolution before it is counted.
    """
    hard = g.op("Cast", g.op("Greater", mask, g.const(0.5)), to=TensorProto.FLOAT)
    fg_share = g.to_size(g.grid(hard, cell), g.work_hw or "")
    lo, width = mass / 2, max(mass / 2, 1e-6)

    def ramp(x: str) -> str:
        return g.clip(g.mul(g.sub(x, g.const(lo)), g.const(1 / width)))

    keep = ramp(fg_share)
    keep_bg = ramp(g.sub(g.const(1.0), fg_share))
    p = g.mul(p, keep)
    # 1 - (1 - p) * keep_bg: pixels with almost no background around become opaque
    return g.sub(g.const(1.0), g.mul(g.sub(g.const(1.0), p), keep_bg))


def _colour_projection(g: _Graph, image: str, p: str, params: PostprocessParams) -> str:
    """Re-estimate alpha near the outline from local subject/background colours.

    F and B are the mean colours of the confident subject (alpha > 0.98) and
    background (alpha < 0.02) within ``colour_radius``; a pixel's alpha is its
    projection on the line B -> F. That is what a matting solver does, in
    closed form with box filters. It is trusted only within ``band_radius`` of
    the outline, where F and B differ (weight ramps up to ``colour_contrast``)
    and where the subject nearby has few colours like the background's: on
    white, white fur next to black fur projects as "background" although it
    is subject, so the weight falls to 0 as the share of confident subject
    pixels within ``colour_sigma2`` of B reaches ``colour_ambiguity``.
    Elsewhere the model's mask stays.
    """
    r = params.colour_radius
    fg_w = g.op("Cast", g.op("Greater", p, g.const(0.98)), to=TensorProto.FLOAT)
    bg_w = g.op("Cast", g.op("Less", p, g.const(0.02)), to=TensorProto.FLOAT)
    stack = g.op("Concat", fg_w, bg_w, g.mul(image, fg_w), g.mul(image, bg_w), axis=1)
    means = g.grid(stack, r)
    fg_share, bg_share, fg_sum, bg_sum = g.ops("Split", means, g.i64(1, 1, 3, 3), n=4, axis=1)
    tiny = g.const(1e-6)
    # Ratios on the grid, then upsampled: colours stay valid mixtures.
    f = g.div(fg_sum, g.add(fg_share, tiny))
    b = g.div(bg_sum, g.add(bg_share, tiny))

    def norm2(x: str) -> str:
        return g.op("ReduceSum", g.mul(x, x), g.i64(1), keepdims=1)

    trust = g.clip(g.mul(norm2(g.sub(f, b)), g.const(1 / params.colour_contrast)))

    def positive(x: str) -> str:
        return g.op("Cast", g.op("Greater", x, g.const(1e-3)), to=TensorProto.FLOAT)

    trust = g.mul(trust, g.mul(positive(fg_share), positive(bg_share)))
    grid_maps = g.op("Concat", f, b, fg_share, bg_share, trust, axis=1)
    f, b, fg_share, bg_share, trust = g.ops(
        "Split", g.to_size(grid_maps, g.work_hw or ""), g.i64(3, 3, 1, 1, 1), n=5, axis=1
    )
    # Ambiguity: the share of the confident subject whose colour is close to
    # the local background colour (white fur on white), and vice versa. Where
    # it is high, a background-coloured pixel may well be subject.
    sigma = g.const(-1 / params.colour_sigma2)
    like_b = g.op("Exp", g.mul(norm2(g.sub(image, b)), sigma))
    amb = g.grid(g.op("Concat", g.mul(like_b, fg_w), fg_w, axis=1), r)
    amb_n, amb_d = g.ops("Split", amb, g.i64(1, 1), n=2, axis=1)
    amb = g.div(amb_n, g.add(amb_d, tiny))
    amb = g.to_size(g.clip(g.sub(g.const(1.0), g.mul(amb, g.const(1 / params.colour_ambiguity)))), g.work_hw or "")
    trust = g.mul(trust, amb)
    d = g.sub(f, b)
    d2 = norm2(d)
    dot = g.op("ReduceSum", g.mul(g.sub(image, b), d), g.i64(1), keepdims=1)
    projected = g.clip(g.div(dot, g.add(d2, g.const(1e-3))))

    hard = g.op("Cast", g.op("Greater", p, g.const(0.5)), to=TensorProto.FLOAT)
    near = g.smooth(hard, params.band_radius)
    # Both subject and background within band_radius: the outline band.
    in_band = g.mul(positive(near), positive(g.sub(g.const(1.0), near)))
    weight = g.mul(trust, in_band)
    # Bounded step: where the local subject colour is a mixture (black and
    # white fur) the projection can be badly wrong, so it may move the
    # model's alpha by at most ``colour_step``.
    step = g.clip(g.mul(weight, g.sub(projected, p)), -params.colour_step, params.colour_step)
    return g.add(p, step)


def _blur_fusion(g: _Graph, f: str, b: str, alpha: str, cell: int) -> tuple[str, str]:
    """One blur-fusion step (Forte & Pitie 2021): blurred F and B on the grid.

    The alpha-weighted means are taken on the grid and divided there, so only
    smooth colour fields are ever upsampled.
    """
    one = g.const(1.0)
    inv_alpha = g.sub(one, alpha)
    stack = g.op("Concat", alpha, g.mul(f, alpha), g.mul(b, inv_alpha), axis=1)
    means = g.grid(stack, cell)
    blur_a, blur_fa, blur_ba = g.ops("Split", means, g.i64(1, 3, 3), n=3, axis=1)
    blur_f = g.div(blur_fa, g.add(blur_a, g.const(1e-5)))
    blur_b = g.div(blur_ba, g.add(g.sub(one, blur_a), g.const(1e-5)))
    return blur_f, blur_b


def _fuse(g: _Graph, image: str, alpha: str, blur_f: str, blur_b: str) -> str:
    """F = Fb + a (I - Bb - a (Fb - Bb)), clipped: the blur-fusion correction."""
    diff = g.sub(blur_f, blur_b)
    resid = g.sub(g.sub(image, blur_b), g.mul(alpha, diff))
    return g.clip(g.add(blur_f, g.mul(alpha, resid)))


def _coef(g: _Graph, x: str, scale: float, out: str) -> str:
    """A coefficient-map output (scaled for the apply stage's 0..255 colours)."""
    return g.op("Mul", x, g.const(scale), out=out) if scale != 1.0 else g.op("Identity", x, out=out)


def _coefficients(g: _Graph, params: PostprocessParams) -> None:
    """Working-resolution stage: ``image``, ``mask`` -> the ``coef_*`` maps and ``alpha_small``."""
    shape = g.op("Shape", "image")
    hw_full = g.op("Slice", shape, g.i64(1), g.i64(3))
    hw_f = g.op("Cast", hw_full, to=TensorProto.FLOAT)
    longest = g.op("ReduceMax", hw_f, keepdims=1)

    def scaled(size: int) -> str:
        # round(scale * (H, W)) with scale = min(size / long side, 1)
        scale = g.op("Min", g.div(g.const([float(size)]), longest), g.const([1.0]))
        return g.op("Max", g.op("Cast", g.op("Round", g.mul(hw_f, scale)), to=TensorProto.INT64), g.i64(1, 1))

    def sizes(channels: int, hw: str) -> str:
        return g.op("Concat", g.i64(1, channels), hw, axis=0)

    hw_work = scaled(params.work_size)
    g.work_hw, g.ref_hw = hw_work, scaled(REF_SIZE)
    mask = "mask"  # clipped after resizing: fewer pixels

    def placeholder(out: str) -> None:
        """A [1,3,1,1] zero map for an output the apply stage will not read (added only when
        used: an unused initializer makes onnxruntime warn at every session)."""
        if not any(init.name == "coef_unused" for init in g.inits):
            g.inits.append(numpy_helper.from_array(np.zeros((1, 3, 1, 1), np.float32), "coef_unused"))
        g.op("Identity", "coef_unused", out=out)

    if not params.refine:
        # Plain upsample (the baseline the refinement is measured against):
        # b is the mask itself, at most at the photo's size.
        hw_mask = g.op("Slice", g.op("Shape", mask), g.i64(2), g.i64(4))
        m = g.resize(mask, sizes(1, g.op("Min", hw_mask, hw_full)))
        placeholder("coef_a")
        _coef(g, g.clip(m), 1.0, out="coef_b")
        alpha_small = g.clip(g.resize(mask, sizes(1, hw_work)), out="alpha_small")
        if not params.foreground:
            placeholder("coef_fg")
            placeholder("coef_bg")
            return
        small = g.mul(g.op("Cast", _small_rgb(g, hw_work), to=TensorProto.FLOAT), g.const(1 / 255))
    else:
        small = g.mul(g.op("Cast", _small_rgb(g, hw_work), to=TensorProto.FLOAT), g.const(1 / 255))
        p = g.clip(g.resize(mask, sizes(1, hw_work)))
        if params.despeckle:
            p = _despeckle(g, p, mask, params.speck_radius, params.speck_mass)
        if params.project:
            p = _colour_projection(g, small, p, params)
        a, b = _guided_filter(g, g.sub(small, g.const(0.5)), p, params.gf_radius, params.gf_eps)
        # Fold the snap and the centring into the coefficients so the
        # full-resolution work is one multiply-sum-add-clip.
        k = 1.0 / (params.snap_high - params.snap_low)
        a = g.mul(a, g.const(k))
        b = g.mul(g.sub(b, g.const(params.snap_low)), g.const(k))
        b = g.sub(b, g.mul(g.op("ReduceSum", a, g.i64(1), keepdims=1), g.const(0.5)))
        q = g.op("ReduceSum", g.mul(g.to_size(a, hw_work), small), g.i64(1), keepdims=1)
        alpha_small = g.clip(g.add(q, g.to_size(b, hw_work)), out="alpha_small")
        # The apply stage sees 0..255 colours: fold 1/255 into a.
        _coef(g, a, 1 / 255, out="coef_a")
        _coef(g, b, 1.0, out="coef_b")
        if not params.foreground:
            placeholder("coef_fg")
            placeholder("coef_bg")
            return
    bf, bb = _blur_fusion(g, small, small, alpha_small, params.fg_radius_coarse)
    f1 = _fuse(g, small, alpha_small, g.to_size(bf, hw_work), g.to_size(bb, hw_work))
    bf, bb = _blur_fusion(g, f1, g.to_size(bb, hw_work), alpha_small, params.fg_radius_fine)
    _coef(g, bf, 255.0, out="coef_fg")
    _coef(g, bb, 255.0, out="coef_bg")


def _small_rgb(g: _Graph, hw: str) -> str:
    """The photo at ``hw``: uint8 [1,3,h,w]; resized first, in its own layout (cheapest)."""
    channels = g.op("Slice", g.op("Shape", "image"), g.i64(3), g.i64(4))
    small = g.resize("image", g.op("Concat", g.i64(1), hw, channels, axis=0))
    return g.op("Transpose", g.op("Slice", small, g.i64(0), g.i64(3), g.i64(3)), perm=[0, 3, 1, 2])


def _apply(g: _Graph, params: PostprocessParams, rows: str) -> None:
    """Full-resolution stage on rows of the photo: ``image`` (a strip), coefficient maps -> ``alpha``, ``rgba``.

    ``rows`` is int64 [2]: the strip's first row and the whole photo's height.
    Each map is upsampled bilinearly (half-pixel centres, clamped at the
    borders, like Resize) with explicit per-row coordinates, so a strip's
    rows are bit-identical to the same rows of the whole image.
    """
    shape = g.op("Shape", "image")
    n = g.op("Slice", shape, g.i64(1), g.i64(2))
    width = g.op("Slice", shape, g.i64(2), g.i64(3))
    first, height = g.ops("Split", rows, g.i64(1, 1), n=2, axis=0)
    first_s = g.op("Squeeze", first, g.i64(0))
    y = g.op("Range", first_s, g.add(first_s, g.op("Squeeze", n, g.i64(0))), g.const(1, np.int64))
    y = g.op("Add", g.op("Cast", y, to=TensorProto.FLOAT), g.const(0.5))
    height_f = g.op("Cast", height, to=TensorProto.FLOAT)

    def upsample(coef: str) -> str:
        cshape = g.op("Shape", coef)
        gh_f = g.op("Cast", g.op("Slice", cshape, g.i64(2), g.i64(3)), to=TensorProto.FLOAT)
        last = g.sub(gh_f, g.const(1.0))
        sy = g.op("Max", g.op("Min", g.sub(g.mul(y, g.div(gh_f, height_f)), g.const(0.5)), last), g.const(0.0))
        i0f = g.op("Floor", sy)
        w = g.op("Reshape", g.sub(sy, i0f), g.i64(1, 1, -1, 1))
        i0 = g.op("Cast", i0f, to=TensorProto.INT64)
        i1 = g.op("Cast", g.op("Min", g.add(i0f, g.const(1.0)), last), to=TensorProto.INT64)
        r0 = g.op("Gather", coef, i0, axis=2)
        r1 = g.op("Gather", coef, i1, axis=2)
        vertical = g.add(r0, g.mul(w, g.sub(r1, r0)))
        k = g.op("Slice", cshape, g.i64(1), g.i64(2))
        # Horizontal: a Resize of the width alone (scale 1 on the rows is exact).
        return g.resize(vertical, g.op("Concat", g.i64(1), k, n, width, axis=0), antialias=0)

    rgb8 = g.op("Transpose", g.op("Slice", "image", g.i64(0), g.i64(3), g.i64(3)), perm=[0, 3, 1, 2])
    image = g.op("Cast", rgb8, to=TensorProto.FLOAT)  # 0..255, [1,3,n,W]
    b = upsample("coef_b")
    if params.refine:
        q = g.op("ReduceSum", g.mul(upsample("coef_a"), image), g.i64(1), keepdims=1)
        b = g.add(q, b)
    alpha = g.clip(b, out="alpha")
    alpha8 = g.op("Cast", g.op("Round", g.mul(alpha, g.const(255.0))), to=TensorProto.UINT8)
    if params.foreground:
        fb, bb = upsample("coef_fg"), upsample("coef_bg")
        # F = Fb + a (I - Bb - a (Fb - Bb)), in 0..255
        resid = g.sub(g.sub(image, bb), g.mul(alpha, g.sub(fb, bb)))
        f = g.clip(g.add(fb, g.mul(alpha, resid)), 0.0, 255.0)
        rgb8 = g.op("Cast", g.op("Round", f), to=TensorProto.UINT8)
    g.op("Transpose", g.op("Concat", rgb8, alpha8, axis=1), perm=[0, 2, 3, 1], out="rgba")


def _coef_infos() -> list[onnx.ValueInfoProto]:
    return [
        helper.make_tensor_value_info("coef_a", TensorProto.FLOAT, [1, 3, "ga", "gb"]),
        helper.make_tensor_value_info("coef_b", TensorProto.FLOAT, [1, 1, "ga", "gb"]),
        helper.make_tensor_value_info("coef_fg", TensorProto.FLOAT, [1, 3, "fa", "fb"]),
        helper.make_tensor_value_info("coef_bg", TensorProto.FLOAT, [1, 3, "fa", "fb"]),
    ]


def _mask_input() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, "h", "w"])


def _apply_outputs() -> list[onnx.ValueInfoProto]:
    return [
        helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 1, "H", "W"]),
        helper.make_tensor_value_info("rgba", TensorProto.UINT8, [1, "H", "W", 4]),
    ]


def _alpha_small_info() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("alpha_small", TensorProto.FLOAT, [1, 1, None, None])


def build_postprocess_graph(params: PostprocessParams | None = None) -> onnx.ModelProto:
    """ISNet mask + full-resolution photo -> refined alpha and RGBA cutout, in one call.

    The coefficient and apply stages chained on the whole image: the same
    results as :func:`build_coefficients_graph` followed by
    :func:`build_apply_graph` over any split of the rows into strips.
    """
    params = params or PostprocessParams()
    g = _Graph()
    _coefficients(g, params)
    height = g.op("Slice", g.op("Shape", "image"), g.i64(1), g.i64(2))
    _apply(g, params, g.op("Concat", g.i64(0), height, axis=0))
    return g.model([_image_input(), _mask_input()], [*_apply_outputs(), _alpha_small_info()], "alphacut_postprocess")


def build_coefficients_graph(params: PostprocessParams | None = None) -> onnx.ModelProto:
    """Working-resolution stage: photo + mask -> small ``coef_*`` maps and ``alpha_small``."""
    params = params or PostprocessParams()
    g = _Graph()
    _coefficients(g, params)
    return g.model([_image_input(), _mask_input()], [*_coef_infos(), _alpha_small_info()], "alphacut_coefficients")


def build_apply_graph(params: PostprocessParams | None = None) -> onnx.ModelProto:
    """Full-resolution stage on a strip of rows: photo strip + ``rows`` + ``coef_*`` maps -> ``alpha``, ``rgba``."""
    params = params or PostprocessParams()
    g = _Graph()
    _apply(g, params, "rows")
    rows = helper.make_tensor_value_info("rows", TensorProto.INT64, [2])
    return g.model([_image_input(), rows, *_coef_infos()], _apply_outputs(), "alphacut_apply")


def to_bytes(model: onnx.ModelProto) -> bytes:
    """Serialise deterministically (same model -> same bytes)."""
    return model.SerializeToString(deterministic=True)
