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

``build_postprocess_graph(params)`` (single call; the reference the others match):

- input ``image``: the same uint8 ``[1, H, W, C]`` tensor the pre graph got.
- input ``mask``: float32 ``[1, 1, h, w]`` (ISNet's ``output``, 1024 x 1024,
  already in 0..1; any size works). Never min-max rescaled.
- output ``alpha``: float32 ``[1, 1, H, W]`` in [0, 1].
- output ``rgba``: uint8 ``[1, H, W, 4]``, the cutout: the estimated colour
  of the subject (background colour removed from edge pixels), straight (not
  premultiplied), with ``round(alpha * 255)`` (half to even) as its alpha.
  What Pillow and canvas ``ImageData`` take as they are. With foreground
  estimation off its colours are the photo itself. Where alpha is 0 the RGB
  is 0 too: nothing of the photo is kept where no one sees it.
- output ``alpha_small``: float32 ``[1, 1, h', w']``, the refined alpha at the
  working resolution (long side ``params.work_size`` or less): a small preview
  of the matte (the engine's edge confidence scores the model's mask instead).

``build_coefficients_graph(params)``: inputs ``image`` and ``mask`` as above;
outputs ``alpha_small`` and five float32 maps (NCHW, at most working
resolution): ``coef_a`` ``[1, 3, ga, gb]`` and ``coef_b`` ``[1, 1, ga, gb]``
(alpha = ``a . rgb255 + b``), ``coef_lim`` ``[1, 2, la, lb]`` (the lower and
upper bound that alpha is clamped to), ``coef_fg`` and ``coef_bg`` ``[1, 3,
fa, fb]`` (blurred subject and background colours, 0..255). Their sizes do
not depend on H, W beyond the aspect ratio and the working resolution.

``build_apply_graph(params)``: inputs ``image`` (a window of the photo,
``[1, n, m, C]``), ``region`` (int64 ``[4]``: the window's first row and
first column, the whole photo's height H and width W) and the five ``coef_*``
maps; outputs ``alpha`` ``[1, 1, n, m]`` and ``rgba`` ``[1, n, m, 4]`` for
those pixels, bit for bit what the single call gives for them. So the engine
and the page run it in windows (bounded memory, cache-sized work), and only
where the model is unsure: :func:`plan_windows` says where alpha is exactly 0
or 1 and the window can be filled without running it. The window = the whole
photo works too.

How the post-processing works (and why)
----------------------------------------
The model's mask is right about *what* is subject far more often than any
local colour statistic is; what it lacks is resolution (1024 x 1024 for any
photo) and, at fur and hair, the soft partial coverage of fine strands. So the
refinement keeps the mask's decisions and only works inside its own
transition, adapting to what is at the edge (``_adaptive_alpha``):

1. Crisp outlines (the mask's transition is narrow) keep the mask, sharpened
   about 0.5 (``sharpen`` times the upscale factor, so the outline is as crisp
   in a 4000-px photo's pixels as at working resolution).
2. Where the photo's colours explain the mask's transition well (a fine guided
   filter's fit R^2 is high), the alpha follows the photo: ``alpha ~ a . rgb +
   b`` fitted at working resolution and applied to the full-resolution photo,
   so the edge sits on the photo's real edge at full resolution.
3. Soft edges (a wide transition: fur, hair, fluff) with a good colour fit
   over a wider window get the coarse guided filter: soft alpha following the
   strands.
4. The result is clamped to the mask's own minimum and maximum within
   ``clamp_radius``: no haze or ghost of the background past the model's
   transition, no holes in what it is sure of.
5. Where the model doubts what the subject is over a wide area (most of the
   mask within ``doubt_radius`` is unsure: a half-transparent plant, a second
   object it half takes for the subject), its mask is kept as it is, neither
   sharpened nor fitted to colours (``_doubt``): such an area is not an edge,
   and refining it made three of the twenty matting photos worse than the mask.
   The ``soft`` style lifts the mask there (``mask ** doubt_gamma``): on the
   matting photos, the lemur and products such areas are mostly subject; on
   everyday photos as often a second object or a shadow, so ``auto`` keeps the
   mask as it is (``benchmarks/RESULTS.md``).
6. A gentle linear snap (``snap_low``..``snap_high`` -> 0..1) folded into the
   coefficients; optional despeckle (off by default: it changes the model's
   decisions).
7. Before steps 1-6 (``matting``; on in ``auto`` and ``soft``, see
   :func:`edge_params`): closed-form matting with large-kernel Laplacians (He,
   Sun and Tang 2010) solved by a fixed number of conjugate-gradient steps
   inside the mask's soft transitions (``_matting``), at half the working
   size, where the background beside them is plain and a colour model fits.
   Its result is the mask steps 1-3 refine; step 4's bounds stay the
   model's own. Measured on every set in ``benchmarks/quality.py``: better on
   fur (the lemur), the matting photos and products, everyday photos within
   0.3 % of before, at 25-50 ms more per photo; see ``benchmarks/RESULTS.md``.
   The ``crisp`` style drops it and step 3.
8. Blur-fusion foreground estimation (Forte & Pitie 2021), two iterations at
   working resolution; the final correction
   ``F = F_blur + a (I - B_blur - a (F_blur - B_blur))`` runs at full
   resolution, in the apply stage.

Everything that looks at windows happens at a *working resolution*: the
photo's own pixels up to ``work_size`` (640) on the long side, the photo
scaled to that above, so radii and widths mean the same from a thumbnail to
50 MP (1024 gave the same quality on every set at 1.6x the cost). Guided-filter windows are
exact box means (separable AveragePool, renormalised at the borders); the
blur-fusion and despeckle means are antialiased downscales onto a coarse grid
(a triangle window, O(1) per pixel). Only maps at working resolution reach
full resolution: the apply stage upsamples them (bilinear) and does a fixed
number of per-pixel steps (a multiply-sum-add, a clamp), so its cost is
linear in pixels, and it runs only in windows where the model is unsure
(:func:`plan_windows`: about a fifth of a typical large photo). Measured on real photos in ``benchmarks/quality.py``
(matting photos, everyday photos, generated products, the lemur): see
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "CLEAR",
    "COMPUTE",
    "EDGES",
    "OPAQUE",
    "OPSET",
    "WINDOW",
    "PostprocessParams",
    "build_apply_graph",
    "build_coefficients_graph",
    "build_postprocess_graph",
    "build_preprocess_graph",
    "edge_params",
    "plan_windows",
    "to_bytes",
]

OPSET = 18
REF_SIZE = 1024  # radii are in pixels of the photo scaled to this long side (the model's grid)


@dataclass(frozen=True)
class PostprocessParams:
    """Build-time parameters of the post-processing graph.

    Guided-filter, clamp and width radii are in working pixels (the photo's
    own, or the photo scaled to ``work_size`` for larger ones); despeckle and
    blur-fusion radii are grid cell sizes in pixels of the photo scaled to a
    1024-px long side (``REF_SIZE``). Defaults were chosen on all the sets of
    ``benchmarks/quality.py`` at once (matting photos, everyday photos,
    products, the lemur), never on one alone.
    """

    refine: bool = True  # adaptive edge refinement against the photo
    foreground: bool = True  # blur-fusion foreground colour estimation
    despeckle: bool = False  # remove isolated specks, fill pin-holes (changes the model's decisions)
    work_size: int = 640  # long side of the working resolution
    fine_radius: int = 2  # fine guided filter: exact box window radius, working pixels
    gf_radius: int = 8  # coarse guided filter: exact box window radius, working pixels
    gf_eps: float = 1e-3  # guided filter regulariser (larger = smoother)
    soft_edges: bool = True  # soft (wide) transitions get the coarse colour fit; False: every edge is crisp
    fine_fit: tuple[float, float] = (0.6, 0.9)  # fit R^2 from which (to which) the fine filter takes over
    coarse_fit: tuple[float, float] = (0.3, 0.7)  # the same for the coarse filter, on soft edges only
    clamp_radius: int = 2  # alpha stays within the mask's own min/max over this radius
    clamp_to_mask: bool = True  # ... the model's mask (False: the matte's, which may reach past the model's transition)
    soft_radius: int = 8  # window in which the width of the mask's transition is measured
    soft_low: float = 4.0  # transition width (px) below which an edge is crisp: the mask stays ...
    soft_high: float = 8.0  # ... and above which it is soft (fur, hair): the colour fit takes over
    sharpen: float = 2.0  # the mask's slope at 0.5 is multiplied by this (and the upscale factor)
    sharpen_soft: bool = True  # False: soft (wide) transitions keep the mask's own slope (tried: RESULTS.md)
    doubt_radius: int = 48  # window in which the share of the mask's unsure pixels is measured ...
    doubt: tuple[float, float] | None = (0.4, 0.7)  # ... the share from which (to which) the mask is kept as it is
    doubt_gamma: float = 1.0  # ... raised to this power there (< 1 lifts it: see RESULTS.md) ...
    doubt_colour: tuple[float, float] | None = None  # ... only where the colours are the subject's (ramp)
    speck_radius: int = 16  # despeckle window radius
    speck_mass: float = 0.04  # minimum share of subject (or background) nearby
    snap_low: float = 0.02  # alpha below this becomes 0
    snap_high: float = 0.98  # alpha above this becomes 1
    fg_radius_coarse: int = 24  # blur-fusion first pass radius
    fg_radius_fine: int = 3  # blur-fusion second pass radius
    matting: bool = True  # closed-form matting inside the mask's soft transitions first (see RESULTS.md)
    matting_radius: int = 4  # matting Laplacian window radius, working pixels
    matting_eps: float = 1e-3  # its regulariser (per window; divided by the window's size)
    matting_iters: int = 8  # conjugate-gradient steps (from the mask: more change little)
    matting_weak: float = 0.02  # pull towards the mask inside its transition (1 where it is sure)
    matting_known: tuple[float, float] = (0.05, 0.95)  # mask below / above this: sure (0 / 1)
    matting_soft_only: bool = True  # the matte replaces the mask only at soft edges (see soft_low/high)
    matting_fit: tuple[float, float] | None = (0.2, 0.5)  # ... and where a colour model fits (R^2 ramp)
    matting_half: bool = True  # solve the matte at half work_size (wider reach, a quarter of the work)
    matting_plain: tuple[float, float] | None = (0.01, 0.02)  # ... only where the background is plain (texture ramp)

    def __post_init__(self) -> None:
        if self.work_size < 8:
            raise ValueError(f"work_size must be >= 8, got {self.work_size}")
        for name in (
            "fine_radius",
            "gf_radius",
            "clamp_radius",
            "soft_radius",
            "speck_radius",
            "fg_radius_coarse",
            "fg_radius_fine",
            "matting_radius",
            "doubt_radius",
        ):
            value = getattr(self, name)
            if not 1 <= value <= 256:
                raise ValueError(f"{name} must be in 1..256, got {value}")
        for name in ("fine_fit", "coarse_fit", "matting_known", "matting_fit", "doubt", "matting_plain", "doubt_colour"):
            if getattr(self, name) is None:
                continue
            low, high = getattr(self, name)
            if not 0 <= low < high <= 1:
                raise ValueError(f"{name} must be (low, high) with 0 <= low < high <= 1, got {(low, high)}")
        if not 0 <= self.soft_low < self.soft_high:
            raise ValueError(f"need 0 <= soft_low < soft_high, got {self.soft_low}, {self.soft_high}")
        if not self.sharpen >= 1:
            raise ValueError(f"sharpen must be >= 1, got {self.sharpen}")
        if not 0 <= self.matting_iters <= 200:
            raise ValueError(f"matting_iters must be in 0..200, got {self.matting_iters}")
        if not (self.matting_eps > 0 and self.matting_weak > 0):
            raise ValueError(f"matting_eps and matting_weak must be > 0, got {self.matting_eps}, {self.matting_weak}")
        if not self.gf_eps > 0:
            raise ValueError(f"gf_eps must be > 0, got {self.gf_eps}")
        if not 0 < self.doubt_gamma <= 1:
            raise ValueError(f"doubt_gamma must be in (0, 1], got {self.doubt_gamma}")
        if not 0 <= self.speck_mass < 0.5:
            raise ValueError(f"speck_mass must be in [0, 0.5), got {self.speck_mass}")
        if not 0 <= self.snap_low < self.snap_high <= 1:
            raise ValueError(
                f"need 0 <= snap_low < snap_high <= 1, got {self.snap_low}, {self.snap_high}"
            )


# Each edge style's changes to the defaults (see edge_params).
_EDGE_STYLES: dict[str, dict[str, Any]] = {
    "auto": {},
    "crisp": {"soft_edges": False, "matting": False},
    "soft": {"matting_fit": None, "clamp_to_mask": False, "doubt_gamma": 0.6},
}
EDGES = tuple(_EDGE_STYLES)


def edge_params(edges: str = "auto", **changes: Any) -> PostprocessParams:
    """The post-processing parameters of an edge style (``Options.edges``).

    - ``auto``: the defaults: crisp outlines stay crisp; wide (soft) transitions get a
      closed-form matte where the background beside them is plain and a colour model
      fits, then a soft colour-guided alpha.
    - ``crisp``: every edge is treated as an outline (no matte, no soft colour fit):
      hard objects, products, everyday photos with clean outlines.
    - ``soft``: the matte at every soft transition over a plain background, whether or
      not a colour model fits, and allowed to reach past the model's own transition
      (hair, fur, fluff, plants that the model cut too tight); where the model doubts
      over a wide area, its mask lifted (``doubt_gamma``): such areas are more often
      subject than the mask says (leaves, mesh, a second flower).

    Measured on every set of ``benchmarks/quality.py`` (RESULTS.md).
    """
    if edges not in EDGES:
        raise ValueError(f"unknown edges {edges!r}: use one of {', '.join(EDGES)}")
    return PostprocessParams(**(_EDGE_STYLES[edges] | changes))


class _Graph:
    """Tiny graph builder: deterministic names, constants as initializers."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0
        self._consts: dict[tuple[str, bytes, tuple[int, ...]], str] = {}
        self.work_hw: str | None = None  # int64 [2]: working (h, w), post graph only
        self.ref_hw: str | None = None  # int64 [2]: reference (h, w) that radii are measured in
        self.half_hw: str | None = None  # int64 [2]: the photo at half ``work_size`` (at most its own size)

    def _name(self, op: str) -> str:
        self._n += 1
        return f"{op.lower()}_{self._n}"

    def op(self, op: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        name = out or self._name(op)
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=f"n_{name}", **attrs))
        return name

    def ops(self, op: str, *inputs: str, n: int, **attrs: Any) -> list[str]:
        names = [self._name(op) for _ in range(n)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=f"n_{names[0]}", **attrs))
        return names

    def const(self, value: object, dtype: type = np.float32) -> str:
        arr: np.ndarray = np.asarray(value, dtype=dtype)
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


def _box(g: _Graph, x: str, radius: int) -> str:
    """Exact box mean over a (2r+1)^2 window, renormalised at the borders: two 1-D AveragePools."""
    k = 2 * radius + 1
    x = g.op("AveragePool", x, kernel_shape=[1, k], pads=[0, radius, 0, radius], count_include_pad=0)
    return g.op("AveragePool", x, kernel_shape=[k, 1], pads=[radius, 0, radius, 0], count_include_pad=0)


def _inverse3(g: _Graph, mean: list[str], mean_products: list[str], eps: float) -> tuple[list[str], str]:
    """The windows' colour covariance plus ``eps`` on its diagonal, inverted.

    ``mean`` holds the three channel means, ``mean_products`` the six means of
    the products (00, 01, 02, 11, 12, 22). Returns the six cofactors (the
    symmetric adjugate, in the same order) and 1 / determinant: eps > 0 keeps
    the matrix positive definite.
    """
    m0, m1, m2 = mean
    e = g.const(eps)

    def variance(mean_square: str, m: str) -> str:
        # E[x^2] - E[x]^2 can come out a little below 0 in float32 on flat colour: never below.
        return g.add(g.op("Relu", g.sub(mean_square, g.mul(m, m))), e)

    s00 = variance(mean_products[0], m0)
    s01 = g.sub(mean_products[1], g.mul(m0, m1))
    s02 = g.sub(mean_products[2], g.mul(m0, m2))
    s11 = variance(mean_products[3], m1)
    s12 = g.sub(mean_products[4], g.mul(m1, m2))
    s22 = variance(mean_products[5], m2)

    def det2(a: str, b: str, c: str, d: str) -> str:
        return g.sub(g.mul(a, b), g.mul(c, d))

    c00 = det2(s11, s22, s12, s12)
    c01 = det2(s02, s12, s01, s22)
    c02 = det2(s01, s12, s02, s11)
    c11 = det2(s00, s22, s02, s02)
    c12 = det2(s01, s02, s00, s12)
    c22 = det2(s00, s11, s01, s01)
    det = g.add(g.add(g.mul(s00, c00), g.mul(s01, c01)), g.mul(s02, c02))
    # A positive definite matrix whose eigenvalues are all >= eps has det >= eps^3; rounding
    # on flat colour must not take it to 0 (or below), where the inverse would be inf.
    det = g.op("Max", det, g.const(eps**3))
    return [c00, c01, c02, c11, c12, c22], g.op("Reciprocal", det)


def _solve3(g: _Graph, inverse: tuple[list[str], str], v: list[str]) -> str:
    """The inverse from :func:`_inverse3` times the 3-vector ``v`` (three [1,1,h,w] maps): [1,3,h,w]."""
    (c00, c01, c02, c11, c12, c22), inv_det = inverse

    def row(x: str, y: str, z: str) -> str:
        dot = g.add(g.add(g.mul(x, v[0]), g.mul(y, v[1])), g.mul(z, v[2]))
        return g.mul(dot, inv_det)

    return g.op("Concat", row(c00, c01, c02), row(c01, c11, c12), row(c02, c12, c22), axis=1)


def _guided_filter(
    g: _Graph, guide: str, p: str, eps: float, mean: Callable[[str], str], mean2: Callable[[str], str]
) -> tuple[str, str, str]:
    """Colour guided filter (He et al.) and how well its local colour model fits.

    ``guide`` is [1,3,h,w] centred on 0, ``p`` is [1,1,h,w]. ``mean`` takes the
    window means (a grid of cells, or an exact box at working resolution), the
    per-window 3x3 system is solved on its output, and ``mean2`` is the
    filter's second averaging (the mean of ``a``, ``b`` over the windows a pixel
    belongs to). Returns ``a`` [1,3,..], ``b`` [1,1,..] (``q = sum_c a_c *
    guide_c + b``) and ``fit`` [1,1,..]: the share of the mask's variance in the
    window that the colours explain (R^2, 0..1). Where the photo's colours do
    not explain the mask (a busy background, a subject coloured like it), the
    fit is low and the colour model must not replace the mask.
    """
    i0, i1, i2 = (g.channel(guide, c, c + 1) for c in range(3))
    products = [g.mul(x, y) for x, y in ((i0, i0), (i0, i1), (i0, i2), (i1, i1), (i1, i2), (i2, i2))]
    stack = g.op("Concat", guide, p, *products, g.mul(guide, p), g.mul(p, p), axis=1)
    m = g.ops("Split", mean(stack), g.i64(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1), n=12, axis=1)
    mi = m[0:3]
    mp = m[3]
    mii = m[4:10]
    mip = m[10]
    mpp = m[11]
    mi3 = g.op("Concat", *mi, axis=1)
    cov_ip = g.sub(mip, g.mul(mi3, mp))
    v = g.ops("Split", cov_ip, g.i64(1, 1, 1), n=3, axis=1)
    inverse = _inverse3(g, mi, mii, eps)
    a = _solve3(g, inverse, v)
    b = g.sub(mp, g.op("ReduceSum", g.mul(a, mi3), g.i64(1), keepdims=1))
    # R^2 of the window's fit: explained variance a . cov(I, p) over var(p).
    var_p = g.sub(mpp, g.mul(mp, mp))
    explained = g.op("ReduceSum", g.mul(a, cov_ip), g.i64(1), keepdims=1)
    fit = g.clip(g.div(explained, g.add(var_p, g.const(1e-4))))
    abf = mean2(g.op("Concat", a, b, fit, axis=1))
    a_mean, b_mean, fit_mean = g.ops("Split", abf, g.i64(3, 1, 1), n=3, axis=1)
    return a_mean, b_mean, fit_mean


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


def _ramp(g: _Graph, x: str, ramp: tuple[float, float]) -> str:
    """0 at or below ``ramp[0]``, 1 at or above ``ramp[1]``, linear between."""
    low, high = ramp
    return g.clip(g.mul(g.sub(x, g.const(low)), g.const(1 / (high - low))))


def _work_fraction(g: _Graph, n: int) -> str:
    """The working size divided by ``n`` (each side at least 1 px): where coarse statistics run."""
    assert g.work_hw is not None
    return g.op("Max", g.op("Div", g.work_hw, g.i64(n, n)), g.i64(1, 1))


def _unsure(g: _Graph, p: str) -> str:
    """1.0 where the mask is unsure (0.05 < p < 0.95), else 0.0."""
    return g.op(
        "Cast",
        g.op("And", g.op("Greater", p, g.const(0.05)), g.op("Less", p, g.const(0.95))),
        to=TensorProto.FLOAT,
    )


def _coarse_stats(g: _Graph, guide: str, p: str, params: PostprocessParams, n: int) -> tuple[str, str, str]:
    """The coarse colour guided filter (``gf_radius``) taken at 1/n of the working size (boxes of
    radius / n: the same windows): ``a``, ``b``, ``fit`` at that size."""
    small = _work_fraction(g, n)
    rc = max(1, params.gf_radius // n)
    return _guided_filter(
        g, g.to_size(guide, small), g.to_size(p, small), params.gf_eps, lambda x: _box(g, x, rc), lambda x: _box(g, x, rc)
    )


def _coarse_guided_filter(g: _Graph, guide: str, p: str, params: PostprocessParams) -> tuple[str, str, str]:
    """The coarse colour guided filter (``gf_radius``) at working resolution: ``a``, ``b``, ``fit``.

    Its statistics are taken at half the working resolution (boxes of half the radius): a
    quarter of the pixels and half the taps, the same windows; the results are upsampled.
    """
    assert g.work_hw is not None
    coarse = g.to_size(g.op("Concat", *_coarse_stats(g, guide, p, params, 2), axis=1), g.work_hw)
    a, b, fit = g.ops("Split", coarse, g.i64(3, 1, 1), n=3, axis=1)
    return a, b, fit


def _soft_edges(g: _Graph, p: str, params: PostprocessParams) -> str:
    """0 at crisp outlines, 1 at soft ones (fur, hair, fluff), from the width of the mask's transition.

    The width is the share of uncertain mask pixels (0.05..0.95) within
    ``soft_radius``, times the window's width, in working pixels; it ramps
    from ``soft_low`` to ``soft_high``.
    """
    width = g.mul(_box(g, _unsure(g, p), params.soft_radius), g.const(float(2 * params.soft_radius + 1)))
    return _ramp(g, width, (params.soft_low, params.soft_high))


def _doubt(g: _Graph, p: str, params: PostprocessParams) -> str | None:
    """0 at edges, 1 in wide areas the model is unsure of as a whole (``None`` when off).

    The share of unsure mask pixels (0.05..0.95) within ``doubt_radius``
    working pixels, ramped over ``params.doubt``. An edge, even a wide furry
    one, is a band between sure subject and sure background, so the share
    stays well below one half in so large a window; a half-transparent plant,
    or a second object the model half takes for the subject, fills it. There
    the model is not saying where an edge lies but that it does not know what
    the subject is, and no local colour model knows better: measured on the
    matting photos, refining such areas made three of twenty worse than the
    mask itself, and the rule made none worse on any set
    (``benchmarks/RESULTS.md``). Box means over a quarter-size copy (radius /
    4): the same windows at a sixteenth of the work.
    """
    if params.doubt is None:
        return None
    assert g.work_hw is not None
    share = _box(g, g.to_size(_unsure(g, p), _work_fraction(g, 4)), max(1, params.doubt_radius // 4))
    return g.to_size(_ramp(g, share, params.doubt), g.work_hw)


COLOUR_LEVELS = 8  # per channel, in the subject/background colour histograms (512 bins)


def _subject_colours(g: _Graph, small: str, p: str, ramp: tuple[float, float]) -> str:
    """0..1 at working resolution: whether each pixel's colour is the subject's rather than the
    background's, by this photo's own sure pixels.

    Histograms (``COLOUR_LEVELS`` per channel) of the colours where the mask is sure of the
    subject (> 0.95) and sure of the background (< 0.05), over a quarter-size copy, each with
    one count added to every bin and normalised; the share of the subject's at each pixel's
    bin, box-smoothed (radius 2), ramped over ``ramp``.
    """
    levels = COLOUR_LEVELS
    weights = g.const(np.array([levels * levels, levels, 1], np.float32).reshape(1, 3, 1, 1))

    def bins(rgb: str) -> str:
        q = g.op("Floor", g.mul(g.op("Min", rgb, g.const(1.0 - 1e-6)), g.const(float(levels))))
        flat = g.op("Reshape", g.op("ReduceSum", g.mul(q, weights), g.i64(1), keepdims=1), g.i64(-1))
        return g.op("Cast", flat, to=TensorProto.INT64)

    quarter = _work_fraction(g, 4)
    p_q = g.op("Reshape", g.to_size(p, quarter), g.i64(-1))
    idx_q = bins(g.to_size(small, quarter))
    empty = g.const(np.zeros(levels**3, np.float32))

    def histogram(sure: str) -> str:
        counts = g.op("ScatterElements", empty, idx_q, g.op("Cast", sure, to=TensorProto.FLOAT), axis=0, reduction="add")
        counts = g.add(counts, g.const(1.0))
        return g.div(counts, g.op("ReduceSum", counts, keepdims=1))

    subject = histogram(g.op("Greater", p_q, g.const(0.95)))
    background = histogram(g.op("Less", p_q, g.const(0.05)))
    share = g.div(subject, g.add(subject, background))
    like = g.op("Reshape", g.op("Gather", share, bins(small), axis=0), g.op("Shape", p))
    return _ramp(g, _box(g, like, 2), ramp)


def _plain_background(g: _Graph, guide: str, p: str, params: PostprocessParams) -> str:
    """1 where the sure background next to an edge is plain, 0 where it is textured.

    The texture is the mean colour deviation over 3x3 windows (0..1 colours) of the
    background pixels (mask below 0.05) within 16 working pixels, ramped down over
    ``matting_plain``: a colour-line matte separates a subject from a smooth background
    (a wall, sky, a studio sweep, an out-of-focus scene) and picks up the texture of a busy one.
    The deviation is taken at working resolution, the wide means over a quarter-size copy
    (radius 16 / 4): a tall 33-px box at working resolution cost more than the matte itself.
    """
    assert params.matting_plain is not None and g.work_hw is not None
    m = _box(g, g.op("Concat", guide, g.mul(guide, guide), axis=1), 1)
    mean, mean_sq = g.ops("Split", m, g.i64(3, 3), n=2, axis=1)
    var = g.op("Relu", g.sub(mean_sq, g.mul(mean, mean)))
    dev = g.op("ReduceMean", g.op("Sqrt", var), g.i64(1), keepdims=1)
    bg = g.op("Cast", g.op("Less", p, g.const(0.05)), to=TensorProto.FLOAT)
    sums = g.to_size(g.op("Concat", g.mul(dev, bg), bg, axis=1), _work_fraction(g, 4))
    dev_bg, share = g.ops("Split", _box(g, sums, 4), g.i64(1, 1), n=2, axis=1)
    texture = g.div(dev_bg, g.add(share, g.const(1e-4)))
    return g.to_size(g.sub(g.const(1.0), _ramp(g, texture, params.matting_plain)), g.work_hw)


def _matting(g: _Graph, guide: str, p: str, params: PostprocessParams) -> str:
    """Closed-form matting (Levin et al.) inside the mask's own transition, at working resolution.

    Solves ``(L + lambda C) alpha = lambda C prior`` where ``L`` is the matting
    Laplacian over ``(2r+1)^2`` windows (``r`` = ``matting_radius``) and ``C``
    is a per-pixel confidence: 1 where the model is sure (mask below / above
    ``matting_known``; the prior there is the mask's 0 or 1), ``matting_weak``
    inside its transition (the prior there is the mask itself, a weak pull that
    keeps the solution near the model where the colours say nothing). The
    Laplacian is never formed: ``L x = |w| (x - GF(x))``, GF being the colour
    guided filter of ``x`` with ``eps / |w|`` (He, Sun and Tang 2010), so each
    conjugate-gradient step is two exact box means and per-pixel arithmetic.
    ``matting_iters`` steps from the prior, unrolled (the same fixed work for
    every photo, and the same graph in the browser). Only the mask's
    uncertain pixels are free: the solution follows the photo's colours
    there (strands of fur and hair get partial coverage). With
    ``matting_half`` the system is solved at half ``work_size`` (320 px on the
    long side; a smaller photo's own size, so the windows mean the same share
    of any photo down to 320 px) and the matte upsampled: the same windows
    then span twice the working pixels, so the fixed number of steps carries
    the known alpha twice as far into fur, at a quarter of the work
    (measured: the lemur's edge error 0.76x raw against 0.81x at full working
    resolution). With ``matting_soft_only`` the
    matte replaces the mask only where its transition is wide
    (``_soft_edges``); with ``matting_plain``, where the background next to it
    is plain (``_plain_background``); and with ``matting_fit``, where a colour
    model explains the mask over a wide window (on a busy background the matte
    picks up the background's texture); the rest of the refinement
    (``_adaptive_alpha``) takes the result as its mask.
    """
    r = params.matting_radius
    p_full, guide_full = p, guide
    if params.matting_half:
        assert g.half_hw is not None
        guide, p = g.to_size(guide, g.half_hw), g.to_size(p, g.half_hw)

    def box(x: str) -> str:
        return _box(g, x, r)

    i = [g.channel(guide, c, c + 1) for c in range(3)]
    products = [g.mul(x, y) for x, y in ((i[0], i[0]), (i[0], i[1]), (i[0], i[2]), (i[1], i[1]), (i[1], i[2]), (i[2], i[2]))]
    m = g.ops("Split", box(g.op("Concat", guide, *products, axis=1)), g.i64(1, 1, 1, 1, 1, 1, 1, 1, 1), n=9, axis=1)
    mu = g.op("Concat", *m[0:3], axis=1)
    inverse = _inverse3(g, m[0:3], m[3:9], params.matting_eps / (2 * r + 1) ** 2)

    def laplacian(x: str) -> str:
        """(L / |w|) x = x - GF(x)."""
        mx, mix = g.ops("Split", box(g.op("Concat", x, g.mul(guide, x), axis=1)), g.i64(1, 3), n=2, axis=1)
        cov = g.ops("Split", g.sub(mix, g.mul(mu, mx)), g.i64(1, 1, 1), n=3, axis=1)
        a = _solve3(g, inverse, cov)
        b = g.sub(mx, g.op("ReduceSum", g.mul(a, mu), g.i64(1), keepdims=1))
        ma, mb = g.ops("Split", box(g.op("Concat", a, b, axis=1)), g.i64(3, 1), n=2, axis=1)
        return g.sub(x, g.add(g.op("ReduceSum", g.mul(ma, guide), g.i64(1), keepdims=1), mb))

    low, high = params.matting_known
    known = g.op("Or", g.op("Less", p, g.const(low)), g.op("Greater", p, g.const(high)))
    weight = g.op("Where", known, g.const(1.0), g.const(params.matting_weak))
    prior = g.op("Where", known, g.op("Cast", g.op("Greater", p, g.const(0.5)), to=TensorProto.FLOAT), p)

    def system(x: str) -> str:
        return g.add(laplacian(x), g.mul(weight, x))

    def dot(x: str, y: str) -> str:
        return g.op("ReduceSum", g.mul(x, y), keepdims=0)

    tiny = g.const(1e-30)
    x = prior
    res = g.sub(g.mul(weight, prior), system(x))
    d, rr = res, dot(res, res)
    for _ in range(params.matting_iters):
        ad = system(d)
        step = g.div(rr, g.add(dot(d, ad), tiny))
        x = g.add(x, g.mul(step, d))
        res = g.sub(res, g.mul(step, ad))
        rr_next = dot(res, res)
        d = g.add(res, g.mul(g.div(rr_next, g.add(rr, tiny)), d))
        rr = rr_next
    # Belt and braces: a step that failed numerically leaves the mask as it was.
    x = g.op("Where", g.op("IsNaN", x), p, x)
    if params.matting_half:
        assert g.work_hw is not None
        x = g.to_size(x, g.work_hw)
        p, guide = p_full, guide_full
    if not params.matting_soft_only:
        return g.clip(x)
    # Only where the transition is wide: at crisp outlines the mask stays as it is.
    gate = _soft_edges(g, p, params)
    if params.matting_plain is not None:
        gate = g.mul(gate, _plain_background(g, guide, p, params))
    if params.matting_fit is not None:
        # ... and where the photo's colours explain the mask over a wide window (a colour
        # line model fits): on a busy background the matte picks up its texture (grass
        # between legs) and the mask is the better guess.
        # The fit is a gate, not a value: taken at a quarter of the working size (a sixteenth
        # of the work; measured no worse than at half on any set).
        assert g.work_hw is not None
        fit = g.to_size(_coarse_stats(g, guide, p, params, 4)[2], g.work_hw)
        gate = g.mul(gate, _ramp(g, fit, params.matting_fit))
    return g.add(p, g.mul(gate, g.sub(g.clip(x), p)))


def _adaptive_alpha(
    g: _Graph, guide: str, p: str, upscale: str, params: PostprocessParams, bounds: str
) -> tuple[str, str, str, str]:
    """The refined alpha as ``clamp(a . guide + b, lo, hi)``, all maps at working resolution.

    Working pixels are the photo's own, or the photo scaled to ``work_size``
    for larger photos, so the widths and radii below mean the same from a
    200-px thumbnail to 50 MP. Three estimates of the alpha, each used where it
    can be trusted:

    - the model's mask, sharpened about 0.5 by ``sharpen`` times the upscale
      factor (photo long side / working long side, at least 1): an outline as
      crisp in the photo's pixels as at working resolution, whatever the
      photo's size;
    - where the mask's transition is wide (fur, hair, fluff: the share of
      uncertain mask pixels within ``soft_radius``, as a width in pixels, from
      ``soft_low`` to ``soft_high``) and the photo's colours explain the mask
      (the fit R^2, from ``fit_low`` to ``fit_high``): colour guided filters,
      a fine one (exact ``fine_radius`` boxes) then a coarse one
      (``gf_radius`` grid cells), applied at full resolution: a soft alpha
      that follows the strands in the photo.

    Crisp outlines keep the (sharpened) mask: a colour model smears them on
    busy backgrounds and softens them where the truth is hard. Then the result
    is clamped to the minimum and maximum within ``clamp_radius`` of
    ``bounds``, the model's own mask (``p`` may be the matte that replaced it at
    soft edges; the ``soft`` style passes the matte, ``clamp_to_mask``): the
    refinement may move and soften the edge inside the model's transition,
    never spread alpha past it (no haze, no ghost of the background) nor punch
    holes in what the model is sure of.
    """
    r = params.fine_radius
    a_f, b_f, fit_f = _guided_filter(
        g, guide, p, params.gf_eps, lambda x: _box(g, x, r), lambda x: _box(g, x, r)
    )
    fits = [(a_f, b_f, _ramp(g, fit_f, params.fine_fit))]
    soft = _soft_edges(g, p, params) if params.soft_edges else None
    if soft is not None:
        a_c, b_c, fit_c = _coarse_guided_filter(g, guide, p, params)
        fits.append((a_c, b_c, g.mul(_ramp(g, fit_c, params.coarse_fit), soft)))

    # Sharpened mask: k (p - 0.5) + 0.5, clipped, then the colour fits blended in.
    k = g.mul(upscale, g.const(params.sharpen))
    if soft is not None and not params.sharpen_soft:
        k = g.add(k, g.mul(soft, g.sub(g.const(1.0), k)))  # 1 (the mask as it is) on soft edges
    sharp = g.add(g.mul(g.sub(p, g.const(0.5)), k), g.const(0.5))
    b = g.clip(sharp)
    keep = g.const(1.0)  # the share of the result that is still the sharpened mask
    a: str | None = None
    for a_s, b_s, w in fits:
        a = g.mul(w, a_s) if a is None else g.add(a, g.mul(w, g.sub(a_s, a)))
        b = g.add(b, g.mul(w, g.sub(b_s, b)))
        keep = g.mul(keep, g.sub(g.const(1.0), w))
    assert a is not None
    # On photos larger than the mask the maps are upsampled: there the sharpened mask's
    # part keeps its overshoot past 0..1, so that the clip at full resolution gives an
    # outline as crisp in the photo's pixels as in the model's (linear: upsamples exactly).
    larger = g.clip(g.sub(upscale, g.const(1.0)))
    b = g.add(b, g.mul(g.sub(sharp, g.clip(sharp)), g.mul(keep, larger)))
    rho = params.clamp_radius
    window, pads = [2 * rho + 1] * 2, [rho] * 4
    hi = g.op("MaxPool", bounds, kernel_shape=window, pads=pads)
    lo = g.op("Neg", g.op("MaxPool", g.op("Neg", bounds), kernel_shape=window, pads=pads))
    return a, b, lo, hi


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
    g.work_hw, g.ref_hw, g.half_hw = hw_work, scaled(REF_SIZE), scaled(params.work_size // 2)
    mask = "mask"  # clipped after resizing: fewer pixels

    def placeholder(out: str, channels: int = 3) -> None:
        """A [1,C,1,1] zero map for an output the apply stage will not read (added only when
        used: an unused initializer makes onnxruntime warn at every session)."""
        name = f"coef_unused{channels}"
        if not any(init.name == name for init in g.inits):
            g.inits.append(numpy_helper.from_array(np.zeros((1, channels, 1, 1), np.float32), name))
        g.op("Identity", name, out=out)

    if not params.refine:
        # Plain upsample (the baseline the refinement is measured against):
        # b is the mask itself, at most at the photo's size.
        hw_mask = g.op("Slice", g.op("Shape", mask), g.i64(2), g.i64(4))
        m = g.resize(mask, sizes(1, g.op("Min", hw_mask, hw_full)))
        placeholder("coef_a")
        placeholder("coef_lim", 2)
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
        guide = g.sub(small, g.const(0.5))
        mask_p = p
        if params.matting and params.matting_iters:
            p = _matting(g, guide, p, params)
        # How much the apply stage upsamples the working-resolution maps.
        upscale = g.op("Max", g.div(longest, g.const([float(params.work_size)])), g.const([1.0]))
        a, b, lo, hi = _adaptive_alpha(g, guide, p, upscale, params, mask_p if params.clamp_to_mask else p)
        doubt = _doubt(g, mask_p, params)
        if doubt is not None:
            # Where the model doubts what the subject is, its mask as it is: no colour
            # model, no sharpening (a linear blend of the coefficients, so it upsamples
            # exactly), and bounds that let the mask through.
            kept = mask_p
            if params.doubt_gamma != 1:
                if params.doubt_colour is None:
                    exponent = g.const(params.doubt_gamma)
                else:
                    # 1 (kept as it is) where the colours are the background's, doubt_gamma where
                    # they are the subject's.
                    like = _subject_colours(g, small, mask_p, params.doubt_colour)
                    exponent = g.add(g.const(1.0), g.mul(like, g.const(params.doubt_gamma - 1.0)))
                kept = g.op("Pow", mask_p, exponent)
            a = g.mul(a, g.sub(g.const(1.0), doubt))
            b = g.add(b, g.mul(doubt, g.sub(kept, b)))
            lo = g.sub(lo, g.mul(doubt, g.op("Relu", g.sub(lo, kept))))
            hi = g.add(hi, g.mul(doubt, g.op("Relu", g.sub(kept, hi))))
        # Fold the snap and the centring into the coefficients so the
        # full-resolution work is one multiply-sum-add and a clamp.
        k = 1.0 / (params.snap_high - params.snap_low)
        a = g.mul(a, g.const(k))
        b = g.mul(g.sub(b, g.const(params.snap_low)), g.const(k))
        b = g.sub(b, g.mul(g.op("ReduceSum", a, g.i64(1), keepdims=1), g.const(0.5)))
        # Where the model is sure, the clamp's bounds are exactly 0 or 1 (snapped like alpha),
        # so is alpha; elsewhere they are the mask's own. The lower bound never exceeds the
        # upper one: where the upper one snapped to 0, a faint mask (under ``snap_low``) would
        # otherwise lift alpha to its own value, and only in the windows the apply stage runs.
        hi = g.op("Where", g.op("Greater", hi, g.const(params.snap_low)), hi, g.const(0.0))
        lo = g.op("Min", lo, hi)
        lo = g.op("Where", g.op("Less", lo, g.const(params.snap_high)), lo, g.const(1.0))
        q = g.add(g.op("ReduceSum", g.mul(a, small), g.i64(1), keepdims=1), b)
        alpha_small = g.clip(g.op("Max", g.op("Min", q, hi), lo), out="alpha_small")
        # The apply stage sees 0..255 colours: fold 1/255 into a.
        _coef(g, a, 1 / 255, out="coef_a")
        _coef(g, b, 1.0, out="coef_b")
        _coef(g, g.op("Concat", lo, hi, axis=1), 1.0, out="coef_lim")
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


def _apply(g: _Graph, params: PostprocessParams, region: str) -> None:
    """Full-resolution stage on a window of the photo: ``image`` (the window), coefficient maps -> ``alpha``, ``rgba``.

    ``region`` is int64 [4]: the window's first row and first column, and the
    whole photo's height and width. Each map is upsampled bilinearly
    (half-pixel centres, clamped at the borders, like Resize) with explicit
    coordinates: first along the columns, on the few grid rows the window
    needs, then along the rows, each as ``v0 + w (v1 - v0)``. So any window
    gives bit-identical values to the same pixels of a whole-image run, and a
    constant stretch of a map upsamples to exactly that constant (what lets
    the engine and the page skip windows the model is sure of: see
    :func:`plan_windows`).
    """
    shape = g.op("Shape", "image")
    n = g.op("Slice", shape, g.i64(1), g.i64(2))
    m = g.op("Slice", shape, g.i64(2), g.i64(3))
    first_row, first_col, height, width = g.ops("Split", region, g.i64(1, 1, 1, 1), n=4, axis=0)

    def coordinates(first: str, count: str, full: str, grid: str) -> tuple[str, str, str, str]:
        """For ``count`` photo pixels from ``first`` on an axis of ``full`` pixels and a map's
        ``grid`` cells: the first cell needed and one past the last (int64 [1]), each
        pixel's lower cell relative to the first (int64 [count]) and its weight (float [count])."""
        start = g.op("Squeeze", first, g.i64(0))
        pos = g.op("Range", start, g.add(start, g.op("Squeeze", count, g.i64(0))), g.const(1, np.int64))
        pos = g.op("Add", g.op("Cast", pos, to=TensorProto.FLOAT), g.const(0.5))
        grid_f = g.op("Cast", grid, to=TensorProto.FLOAT)
        last = g.sub(grid_f, g.const(1.0))
        scale = g.div(grid_f, g.op("Cast", full, to=TensorProto.FLOAT))
        s = g.op("Max", g.op("Min", g.sub(g.mul(pos, scale), g.const(0.5)), last), g.const(0.0))
        i0f = g.op("Floor", s)
        weight = g.sub(s, i0f)
        i0 = g.op("Cast", i0f, to=TensorProto.INT64)
        lo = g.op("Slice", i0, g.i64(0), g.i64(1))
        hi = g.op("Min", g.add(g.op("Slice", i0, g.i64(-1), g.op("Shape", i0)), g.i64(1)), g.op("Cast", last, to=TensorProto.INT64))
        return lo, g.add(hi, g.i64(1)), g.sub(i0, lo), weight

    def lerp(x: str, index: str, weight: str, axis: int) -> str:
        """``x`` resampled along ``axis`` at ``index + weight`` (``index + 1`` may be one past
        the end only where the weight is 0)."""
        step = g.sub(
            g.op("Slice", x, g.i64(1), g.i64(2**62), g.i64(axis)),
            g.op("Slice", x, g.i64(0), g.i64(-1), g.i64(axis)),
        )
        # The last cell's step is never used with a non-zero weight: pad it with zeros.
        pad = g.op("Slice", x, g.i64(0), g.i64(1), g.i64(axis))
        step = g.op("Concat", step, g.sub(pad, pad), axis=axis)
        return g.add(g.op("Gather", x, index, axis=axis), g.mul(weight, g.op("Gather", step, index, axis=axis)))

    def upsample(maps: list[str], parts: tuple[int, ...]) -> list[str]:
        """Maps of one grid (the first's), upsampled together and split into ``parts``
        channels: one set of coordinates and one chain of steps for all (each step copies
        values or is elementwise, so the values are those of one map at a time)."""
        cshape = g.op("Shape", maps[0])
        grid_h = g.op("Slice", cshape, g.i64(2), g.i64(3))
        grid_w = g.op("Slice", cshape, g.i64(3), g.i64(4))
        r0, r1, ri, rw = coordinates(first_row, n, height, grid_h)
        c0, c1, ci, cw = coordinates(first_col, m, width, grid_w)
        starts, ends = g.op("Concat", r0, c0, axis=0), g.op("Concat", r1, c1, axis=0)
        blocks = [g.op("Slice", name, starts, ends, g.i64(2, 3)) for name in maps]
        block = blocks[0] if len(blocks) == 1 else g.op("Concat", *blocks, axis=1)
        # Along the columns on the few grid rows needed, then along the rows. Each Gather
        # works on the outer axis of what it reads, so it copies whole runs of values
        # (a Gather on the last axis copies one value at a time, 3-4x slower): the block
        # is turned columns-first for the first pass and back for the second.
        cols = g.op("Transpose", block, perm=[3, 0, 1, 2])  # [K, 1, C, R]
        across = lerp(cols, ci, g.op("Reshape", cw, g.i64(-1, 1, 1, 1)), axis=0)  # [m, 1, C, R]
        across = g.op("Transpose", across, perm=[1, 2, 3, 0])  # [1, C, R, m]
        full = lerp(across, ri, g.op("Reshape", rw, g.i64(1, 1, -1, 1)), axis=2)
        if len(parts) == 1:
            return [full]
        return g.ops("Split", full, g.i64(*parts), n=len(parts), axis=1)

    rgb8 = g.op("Transpose", g.op("Slice", "image", g.i64(0), g.i64(3), g.i64(3)), perm=[0, 3, 1, 2])
    image = g.op("Cast", rgb8, to=TensorProto.FLOAT)  # 0..255, [1,3,n,m]
    if params.refine:
        # coef_a, coef_b and coef_lim share the working grid (coef_b's).
        b, a, lo, hi = upsample(["coef_b", "coef_a", "coef_lim"], parts=(1, 3, 1, 1))
        q = g.op("ReduceSum", g.mul(a, image), g.i64(1), keepdims=1)
        b = g.op("Max", g.op("Min", g.add(q, b), hi), lo)
    else:
        (b,) = upsample(["coef_b"], parts=(1,))
    alpha = g.clip(b, out="alpha")
    alpha8 = g.op("Cast", g.op("Round", g.mul(alpha, g.const(255.0))), to=TensorProto.UINT8)
    if params.foreground:
        fb, bb = upsample(["coef_fg", "coef_bg"], parts=(3, 3))
        # F = Fb + a (I - Bb - a (Fb - Bb)), in 0..255
        resid = g.sub(g.sub(image, bb), g.mul(alpha, g.sub(fb, bb)))
        f = g.clip(g.add(fb, g.mul(alpha, resid)), 0.0, 255.0)
        rgb8 = g.op("Cast", g.op("Round", f), to=TensorProto.UINT8)
    # Fully transparent pixels carry no colour (RGB 0): nothing of the background is kept
    # where no one sees it, and the files are smaller.
    rgb8 = g.op("Where", g.op("Greater", alpha8, g.const(0, np.uint8)), rgb8, g.const(0, np.uint8))
    g.op("Transpose", g.op("Concat", rgb8, alpha8, axis=1), perm=[0, 2, 3, 1], out="rgba")


def _coef_infos() -> list[onnx.ValueInfoProto]:
    return [
        helper.make_tensor_value_info("coef_a", TensorProto.FLOAT, [1, 3, "ga", "gb"]),
        helper.make_tensor_value_info("coef_b", TensorProto.FLOAT, [1, 1, "ga", "gb"]),
        helper.make_tensor_value_info("coef_fg", TensorProto.FLOAT, [1, 3, "fa", "fb"]),
        helper.make_tensor_value_info("coef_bg", TensorProto.FLOAT, [1, 3, "fa", "fb"]),
        helper.make_tensor_value_info("coef_lim", TensorProto.FLOAT, [1, 2, "la", "lb"]),
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
    :func:`build_apply_graph` over any split of the photo into windows.
    """
    params = params or PostprocessParams()
    g = _Graph()
    _coefficients(g, params)
    hw = g.op("Slice", g.op("Shape", "image"), g.i64(1), g.i64(3))
    _apply(g, params, g.op("Concat", g.i64(0, 0), hw, axis=0))
    return g.model([_image_input(), _mask_input()], [*_apply_outputs(), _alpha_small_info()], "alphacut_postprocess")


def build_coefficients_graph(params: PostprocessParams | None = None) -> onnx.ModelProto:
    """Working-resolution stage: photo + mask -> small ``coef_*`` maps and ``alpha_small``."""
    params = params or PostprocessParams()
    g = _Graph()
    _coefficients(g, params)
    return g.model([_image_input(), _mask_input()], [*_coef_infos(), _alpha_small_info()], "alphacut_coefficients")


def build_apply_graph(params: PostprocessParams | None = None) -> onnx.ModelProto:
    """Full-resolution stage on a window: photo window + ``region`` + ``coef_*`` maps -> ``alpha``, ``rgba``."""
    params = params or PostprocessParams()
    g = _Graph()
    _apply(g, params, "region")
    region = helper.make_tensor_value_info("region", TensorProto.INT64, [4])
    return g.model([_image_input(), region, *_coef_infos()], _apply_outputs(), "alphacut_apply")


# How the apply stage's windows are planned (:func:`plan_windows`).
CLEAR, OPAQUE, COMPUTE = 0, 1, 2
WINDOW = 128  # side of the square windows the photo is planned in, in pixels


def _cells(start: int, stop: int, full: int, grid: int) -> slice:
    """The map cells that pixels ``start:stop`` of ``full`` can read when upsampled from
    ``grid`` cells (with a cell's margin each side: exact integer bounds, never too few)."""
    return slice(max(0, start * grid // full - 1), min(grid, -(-stop * grid // full) + 2))


def plan_windows(
    lim: np.ndarray, height: int, width: int, window: int = WINDOW
) -> list[tuple[int, int, int, int, int]]:
    """Where the apply stage must run, from the coefficient graph's ``coef_lim`` map.

    Returns ``(y0, y1, x0, x1, kind)`` rows and columns that cover the photo:
    ``COMPUTE`` (run the apply graph there), ``CLEAR`` (alpha exactly 0, RGBA
    0, 0, 0, 0) or ``OPAQUE`` (alpha exactly 1, the photo's own RGB and 255).
    A window is clear or opaque when every map cell its pixels read has both
    clamp bounds at 0 (or both at 1): the graph then gives exactly those values
    there (its bounds are snapped, and its upsampling keeps constants exact),
    so skipping it changes no byte. Consecutive windows of a kind are merged.
    Only for a refining graph (without refinement ``coef_lim`` is a placeholder).
    """
    grid_h, grid_w = lim.shape[-2:]
    clear = lim[0, 1] == 0  # the upper bound 0: alpha is 0
    opaque = lim[0, 0] == 1  # the lower bound 1: alpha is 1
    plan: list[tuple[int, int, int, int, int]] = []
    for y0 in range(0, height, window):
        y1 = min(height, y0 + window)
        rows = _cells(y0, y1, height, grid_h)
        clear_cols, opaque_cols = clear[rows].all(axis=0), opaque[rows].all(axis=0)
        for x0 in range(0, width, window):
            x1 = min(width, x0 + window)
            cols = _cells(x0, x1, width, grid_w)
            kind = CLEAR if clear_cols[cols].all() else OPAQUE if opaque_cols[cols].all() else COMPUTE
            if plan and plan[-1][0] == y0 and plan[-1][3] == x0 and plan[-1][4] == kind:
                plan[-1] = (y0, y1, plan[-1][2], x1, kind)
            else:
                plan.append((y0, y1, x0, x1, kind))
    return plan


def to_bytes(model: onnx.ModelProto) -> bytes:
    """Serialise deterministically (same model -> same bytes)."""
    data: bytes = model.SerializeToString(deterministic=True)
    return data
