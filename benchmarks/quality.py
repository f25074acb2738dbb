"""Edge-quality harness over varied photos: alphacut's default and raw mask vs rembg, same ONNX weights.

    python benchmarks/quality.py                          # every set, raw / default / rembg
    python benchmarks/quality.py --sets ecssd,products    # some sets
    python benchmarks/quality.py --methods raw,default,alphacut:foreground=false
    python benchmarks/quality.py --methods default,post:clamp_radius=4,fine_fit=0.4/0.8
    python benchmarks/quality.py --limit 10               # the first 10 photos of each set
    python benchmarks/quality.py --write                  # also update RESULTS.md
    python benchmarks/quality.py --ceiling                # also: how far edge refinement could go

Sets (``--sets``), read from the shared data folder beside the checkout
(``ALPHACUT_DATA`` moves it; nothing is copied into the repository):

- ``alphamatting``: 20 real photos with a measured soft alpha (alphamatting.com).
- ``ecssd``: 200 everyday photos, about 400 px, with a binary hand-drawn mask.
- ``lemur``: the pymatting lemur foreground with its true alpha over its real
  background and five flat colours (true foreground colours known).
- ``products``: generated here, deterministically: crisp anti-aliased objects
  (bottle, box, shoe, lettering, mug, gear, chair, headphones; textured fills)
  over a plain colour, a gradient and a crop of a real photo (a part of an
  ``ecssd/`` photo outside its subject's mask), at 300 and 1000 px long side, and at 4000 px over one of
  the three backgrounds each (56 photos). Drawn at 4x and box-downscaled, so the true alpha is exact
  and edges are anti-aliased over about one pixel; the true foreground is known.

Methods (``--methods``, columns): ``raw`` (``alphacut:refine=false``, what
``alphacut cut --no-refine`` gives: the model's mask upsampled), ``default``
(``alphacut``: the current default options, whatever they do), ``rembg``
(``new_session("dis_custom", model_path=...)`` and ``remove()``), and any
``alphacut:key=value,...`` (fields of :class:`alphacut.Options`, e.g.
``alphacut:foreground=false``). alphacut runs through :func:`alphacut.remove_background`,
so a column measures exactly what the library and the CLI do. ``post:key=value,...``
runs the post-processing graphs alone with those fields of
:class:`alphacut.graphs.PostprocessParams` changed (tuples as ``low/high``, e.g.
``post:clamp_radius=4,fine_fit=0.4/0.8``): for trying refinement settings that no
option exposes. ``matte[:grow=N]``: a reference, not a candidate: closed-form matting
(Levin, Lischinski and Weiss, 2008; pymatting's ``estimate_alpha_cf``, solved to
convergence; rembg, a dev dependency, installs it) inside a trimap from the model's mask
(sure where it is under 0.05 or over 0.95, unknown where it is unsure, grown by ``N`` px
per 800 px of the photo's long side, 4 by default), at most 1000 px on the long side.

Metrics per photo, averaged per set:

- ``mae``: mean |alpha - truth| over the photo.
- ``edge``: mean |alpha - truth| over the band where the truth is soft
  (0.02 < a < 0.98) or at its 0.5 outline, grown by 6 px.
- ``spread``: the share of the pixels more than 6 px outside the true subject
  (truth < 0.02) to which the cutout gives alpha > 0.05: ghosts and smoke.
- ``iou``: alpha > 0.5 against truth > 0.5.
- ``halo`` (sets with true foregrounds): the cutout over 0.5 grey against the
  true foreground with the true alpha over the same grey, mean abs error over the band.
- ``width`` (products): the 10-90 % transition width at the crisp outlines, in
  pixels: (area of 0.1 < alpha < 0.9 within the band) / (outline length), the
  length being the sum of the truth's gradient magnitude. The truth's own width
  is given beside it.
- ``worse`` / ``better``: photos whose edge is more than 2 % above / below raw's.

On ``ecssd`` the edge-confidence triage: the share of photos flagged
``needs_review`` and the share of the worst tenth by IoU that is flagged.

Model masks are the slow part and the same for every alphacut column: they are
cached in ``benchmarks/.cache/`` (keyed by the model input's bytes, the model
file and the runtime), as are rembg's cutouts, so a rerun costs the
post-processing alone. Another script can evaluate its own post-processing on
every set with :func:`evaluate_postprocess`.

Contact sheets (``benchmarks/sheets/``): the 8 photos of each set where the
default's edge is most above raw's, raw beside default beside the truth, and a
crop at 200 % around the worst edge region.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2  # opencv-python-headless, with rembg: fast exact morphology
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, write_section

sys.path.insert(0, str(ROOT / "src"))
from alphacut import models
from alphacut.graphs import PostprocessParams
from alphacut.options import Options
from alphacut.pipeline import remove_background
from alphacut.session import Session

DATA = Path(os.environ.get("ALPHACUT_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("ALPHACUT_QUALITY_CACHE", ROOT / "benchmarks" / ".cache"))
SHEETS = ROOT / "benchmarks" / "sheets"
DEFAULT_MODEL = os.environ.get("ALPHACUT_TEST_MODEL") or str(models.model_path("medium"))

SETS = ("alphamatting", "ecssd", "lemur", "products")
METHODS = ("raw", "default", "rembg")
ALIASES = {"raw": "alphacut:refine=false", "default": "alphacut"}
BAND_PX = 6  # edge band and spread margin, pixels
SOFT = (0.02, 0.98)  # truth strictly inside this is soft
SPREAD_ALPHA = 0.05  # alpha above this far outside the subject counts as spread
WORSE = 1.02  # edge more than 2 % above raw's: worse
PRODUCT_SIZES = (300, 1000, 4000)
SUPERSAMPLE = 4


# ---------------------------------------------------------------- samples


@dataclass
class Sample:
    """One photo with its truth: ``image`` uint8 HxWx3, ``alpha`` float32 in [0, 1],
    ``foreground`` (uint8 HxWx3, the true subject colours) where known."""

    set: str
    name: str
    image: np.ndarray
    alpha: np.ndarray
    foreground: np.ndarray | None = None
    crisp: bool = False  # outlines are crisp by construction: measure the transition width
    size: int = 0  # products: the long side it was drawn at

    @cached_property
    def truth(self) -> Truth:
        return Truth(self.alpha)


@dataclass
class SampleRef:
    """A sample that is loaded (or drawn) when needed: 4000 px products do not all fit in memory."""

    set: str
    name: str
    load: Callable[[], Sample]


class Truth:
    """What the metrics need from a true alpha, computed once per photo.

    All of it is computed on the subject's bounding box grown by the band:
    outside it the truth is background, more than the band away from the subject.
    """

    def __init__(self, alpha: np.ndarray) -> None:
        self.alpha = alpha
        self.hard = alpha > 0.5
        subject = alpha >= SOFT[0]
        self.band = np.zeros(alpha.shape, bool)
        self.far = np.ones(alpha.shape, bool)
        self.outline_length = 0.0
        rows, cols = np.nonzero(subject.any(axis=1))[0], np.nonzero(subject.any(axis=0))[0]
        if len(rows):
            m = BAND_PX + 2
            box = (slice(max(0, rows[0] - m), rows[-1] + m + 1), slice(max(0, cols[0] - m), cols[-1] + m + 1))
            a, hard = alpha[box], self.hard[box]
            # The 0.5 outline on both sides (4-neighbours); the frame's border is no outline.
            outline = (_dilate(hard, 1) & ~_erode(hard)) if hard.any() else hard
            self.band[box] = _dilate(((a > SOFT[0]) & (a < SOFT[1])) | outline, BAND_PX)
            self.far[box] = ~_dilate(subject[box], BAND_PX)
            gy, gx = np.gradient(a)
            self.outline_length = float(np.hypot(gx, gy).sum())
        self.own_width = self.width(alpha)

    def width(self, alpha: np.ndarray) -> float:
        """Pixels with 0.1 < alpha < 0.9 within the band, per pixel of true outline."""
        inside = alpha[self.band]
        mid = (inside > 0.1) & (inside < 0.9)
        return float(mid.sum() / max(self.outline_length, 1e-9))


def _disk(radius: int) -> np.ndarray:
    if radius == 1:
        return cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return ((x * x + y * y) <= radius * radius).astype(np.uint8)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (Euclidean; 1: the 4-neighbours) of ``mask``: the same set as
    a distance transform <= radius, at a fraction of its cost on 12 MP photos."""
    return cv2.dilate(mask.view(np.uint8), _disk(radius)).view(bool)


def _erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbour erosion; outside the array counts as ``mask`` (no outline at the frame)."""
    return cv2.erode(mask.view(np.uint8), _disk(1)).view(bool)


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")).astype(np.float32) / 255


def _need(folder: Path) -> Path:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is missing: the quality sets live in the shared data folder beside the checkout"
            " (set ALPHACUT_DATA to where it is)"
        )
    return folder


def alphamatting_set(root: Path | None = None, names: Sequence[str] | None = None) -> list[SampleRef]:
    root = _need(root or DATA / "alphamatting")
    stems = names or sorted(p.stem for p in (root / "images").glob("*.png"))

    def load(stem: str) -> Sample:
        image, alpha = _rgb(root / "images" / f"{stem}.png"), _grey(root / "alpha" / f"{stem}.png")
        return Sample("alphamatting", stem, image, alpha)

    return [SampleRef("alphamatting", s, lambda s=s: load(s)) for s in stems]


def ecssd_set(root: Path | None = None, names: Sequence[str] | None = None) -> list[SampleRef]:
    root = _need(root or DATA / "ecssd")
    stems = names or sorted(p.stem for p in (root / "images").glob("*.jpg"))

    def load(stem: str) -> Sample:
        return Sample("ecssd", stem, _rgb(root / "images" / f"{stem}.jpg"), _grey(root / "masks" / f"{stem}.png"))

    return [SampleRef("ecssd", s, lambda s=s: load(s)) for s in stems]


LEMUR_BACKGROUNDS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}


def lemur_set(root: Path | None = None, names: Sequence[str] | None = None) -> list[SampleRef]:
    """The lemur foreground with its true alpha over its real background and five flat colours."""
    root = _need(root or DATA / "matting")

    def load(bg_name: str) -> Sample:
        fg = _rgb(root / "lemur_foreground.png")
        alpha = _grey(root / "lemur_alpha.png")
        if bg_name == "real":
            bg = _rgb(root / "lemur_background.png").astype(np.float32)
        else:
            bg = np.broadcast_to(np.float32(LEMUR_BACKGROUNDS[bg_name]), fg.shape)
        comp = fg * alpha[..., None] + bg * (1 - alpha[..., None])
        image = np.clip(np.round(comp), 0, 255).astype(np.uint8)
        return Sample("lemur", f"lemur-{bg_name}", image, alpha, fg)

    stems = names or ["real", *LEMUR_BACKGROUNDS]
    return [SampleRef("lemur", f"lemur-{s}", lambda s=s: load(s)) for s in (n.removeprefix("lemur-") for n in stems)]


# ---------------------------------------------------------------- generated product set

# Shapes in frame units: the frame is (4/3) x 1, y down. Each draws the subject at 255
# (holes at 0) with ``d`` (an ImageDraw whose coordinates are already scaled).
_W = 4 / 3


class _Scaled:
    """ImageDraw in frame units: multiplies every coordinate by the pixel scale."""

    def __init__(self, draw: ImageDraw.ImageDraw, scale: float) -> None:
        self.d, self.s = draw, scale

    def _p(self, pts: Iterable[float]) -> list[float]:
        return [v * self.s for v in pts]

    def polygon(self, pts: Sequence[tuple[float, float]], fill: int = 255) -> None:
        self.d.polygon([(x * self.s, y * self.s) for x, y in pts], fill=fill)

    def ellipse(self, box: Sequence[float], fill: int = 255) -> None:
        self.d.ellipse(self._p(box), fill=fill)

    def rect(self, box: Sequence[float], radius: float = 0.0, fill: int = 255) -> None:
        self.d.rounded_rectangle(self._p(box), radius=radius * self.s, fill=fill)

    def line(self, pts: Sequence[tuple[float, float]], width: float, fill: int = 255) -> None:
        self.d.line([(x * self.s, y * self.s) for x, y in pts], fill=fill, width=max(1, round(width * self.s)))

    def arc(self, box: Sequence[float], start: float, end: float, width: float, fill: int = 255) -> None:
        self.d.arc(self._p(box), start, end, fill=fill, width=max(1, round(width * self.s)))

    def text(self, xy: tuple[float, float], text: str, size: float, fill: int = 255) -> None:
        font = ImageFont.load_default(size=max(8, round(size * self.s)))  # Pillow's bundled font: same everywhere
        self.d.text((xy[0] * self.s, xy[1] * self.s), text, font=font, fill=fill, anchor="mm",
                    stroke_width=max(1, round(size * self.s / 18)), stroke_fill=fill)


def _bottle(d: _Scaled) -> None:
    cx = 0.62
    d.rect((cx - 0.13, 0.36, cx + 0.13, 0.93), radius=0.05)
    d.polygon([(cx - 0.13, 0.42), (cx - 0.045, 0.23), (cx + 0.045, 0.23), (cx + 0.13, 0.42)])
    d.rect((cx - 0.045, 0.12, cx + 0.045, 0.26))
    d.rect((cx - 0.055, 0.07, cx + 0.055, 0.14), radius=0.012)


def _box(d: _Scaled) -> None:
    d.polygon([(0.35, 0.35), (0.62, 0.22), (1.0, 0.3), (1.0, 0.78), (0.72, 0.92), (0.35, 0.82)])


def _shoe(d: _Scaled) -> None:
    d.rect((0.18, 0.72, 1.16, 0.8), radius=0.035)
    d.ellipse((0.68, 0.5, 1.16, 0.78))
    d.polygon([(0.2, 0.76), (0.22, 0.34), (0.44, 0.3), (0.56, 0.46), (0.8, 0.52), (0.9, 0.76)])
    d.ellipse((0.27, 0.27, 0.45, 0.37), fill=0)  # the opening
    for i in range(4):  # laces: thin crisp lines
        x = 0.52 + 0.06 * i
        d.line([(x, 0.45 + 0.02 * i), (x + 0.07, 0.4 + 0.02 * i)], width=0.008)


def _lettering(d: _Scaled) -> None:
    d.text((_W / 2, 0.5), "Ag&5%", size=0.34)


def _mug(d: _Scaled) -> None:
    d.rect((0.38, 0.28, 0.78, 0.86), radius=0.06)
    d.ellipse((0.66, 0.4, 0.98, 0.72))
    d.ellipse((0.74, 0.48, 0.9, 0.64), fill=0)  # the handle's hole


def _gear(d: _Scaled) -> None:
    cx, cy, teeth = _W / 2, 0.5, 14
    pts = []
    for i in range(teeth * 4):
        r = 0.38 if (i // 2) % 2 == 0 else 0.31
        t = 2 * math.pi * i / (teeth * 4)
        pts.append((cx + r * math.cos(t), cy + r * math.sin(t)))
    d.polygon(pts)
    d.ellipse((cx - 0.1, cy - 0.1, cx + 0.1, cy + 0.1), fill=0)


def _chair(d: _Scaled) -> None:
    d.rect((0.42, 0.1, 0.5, 0.6), radius=0.01)  # back post
    d.rect((0.42, 0.1, 0.86, 0.2), radius=0.02)  # back rail
    d.rect((0.78, 0.1, 0.86, 0.6), radius=0.01)
    d.rect((0.4, 0.56, 0.9, 0.62))  # seat
    for x in (0.42, 0.5, 0.8, 0.87):  # thin legs
        d.rect((x - 0.0075, 0.6, x + 0.0075, 0.94))
    d.line([(0.42, 0.8), (0.87, 0.8)], width=0.01)


def _headphones(d: _Scaled) -> None:
    d.arc((0.36, 0.1, 0.98, 0.8), 180, 360, width=0.05)
    d.rect((0.3, 0.42, 0.43, 0.72), radius=0.05)
    d.rect((0.91, 0.42, 1.04, 0.72), radius=0.05)
    d.line([(0.38, 0.72), (0.45, 0.95)], width=0.006)  # a thin cable


SHAPES: dict[str, Callable[[_Scaled], None]] = {
    "bottle": _bottle,
    "box": _box,
    "shoe": _shoe,
    "lettering": _lettering,
    "mug": _mug,
    "gear": _gear,
    "chair": _chair,
    "headphones": _headphones,
}
PRODUCT_BACKGROUNDS = ("plain", "gradient", "busy")


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in frame units (height 1)."""
    y = (np.arange(h, dtype=np.float32) + 0.5) / h
    x = (np.arange(w, dtype=np.float32) + 0.5) / h
    return y[:, None], x[None, :]


def _background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "plain":
        return np.broadcast_to(rng.integers(0, 256, 3).astype(np.float32), (h, w, 3))
    if kind == "gradient":
        c0, c1 = rng.integers(0, 256, (2, 3)).astype(np.float32)
        t = rng.uniform(0, math.pi)
        y, x = _coords(h, w)
        s = (x * math.cos(t) + y * math.sin(t)) / (_W + 1)
        s = (s - s.min()) / max(float(s.max() - s.min()), 1e-6)
        return c0 + (c1 - c0) * s[..., None]
    return _busy_crop(h, w, rng).astype(np.float32)


def _busy_crop(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A textured crop of a real photo with no subject in it: the largest window of an
    ``ecssd`` photo that its hand-drawn mask leaves (almost) empty, scaled to the frame."""
    root = DATA / "ecssd"
    stems = sorted(p.stem for p in (root / "images").glob("*.jpg")) if (root / "images").is_dir() else []
    if not stems:
        raise FileNotFoundError(f"busy product backgrounds are cropped from {root}/images, which is missing")
    for _ in range(100):
        stem = stems[int(rng.integers(len(stems)))]
        photo = Image.open(root / "images" / f"{stem}.jpg").convert("RGB")
        subject = np.asarray(Image.open(root / "masks" / f"{stem}.png").convert("L")) > 127
        ih, iw = subject.shape
        table = np.pad(subject.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        for frac in (0.8, 0.65, 0.5):
            ch = int(min(ih, iw * h / w) * frac)
            cw = int(ch * w / h)
            if ch < 96 or cw > iw:
                continue
            ys, xs = np.arange(0, ih - ch + 1, 4), np.arange(0, iw - cw + 1, 4)
            sums = table[ys[:, None] + ch, xs[None] + cw] - table[ys[:, None], xs[None] + cw]
            sums = sums - table[ys[:, None] + ch, xs[None]] + table[ys[:, None], xs[None]]
            iy, ix = np.unravel_index(int(np.argmin(sums)), sums.shape)
            if sums[iy, ix] > 0.002 * ch * cw:
                continue
            crop = photo.crop((int(xs[ix]), int(ys[iy]), int(xs[ix]) + cw, int(ys[iy]) + ch))
            if np.asarray(crop.convert("L")).std() < 30:  # busy: not a plain wall or sky
                break
            return np.asarray(crop.resize((w, h), Image.Resampling.BICUBIC))
    raise RuntimeError("no subject-free busy crop found in ecssd")


def _fill(shape: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A textured subject colour: a base colour, a pattern in frame units, and fine grain."""
    base = rng.integers(20, 236, 3).astype(np.float32)
    other = rng.integers(20, 236, 3).astype(np.float32)
    y, x = _coords(h, w)
    kind = ("stripes", "checks", "shade", "label")[_seed(shape) % 4]
    if kind == "stripes":
        t = (np.sin(2 * math.pi * (x * 9 + y * 4)) > 0).astype(np.float32)
    elif kind == "checks":
        t = ((np.floor(x * 12) + np.floor(y * 12)) % 2).astype(np.float32)
    elif kind == "shade":
        t = np.clip(0.5 + 0.5 * np.sin(x * 5.0) * np.cos(y * 3.0), 0, 1).astype(np.float32)
    else:
        t = ((y > 0.5) & (y < 0.7)).astype(np.float32) * np.ones_like(x)
    colour = base + (other - base) * t[..., None]
    # Fine grain: a tile of noise repeated (drawing 12 M normal numbers costs seconds).
    tile = np.random.default_rng(_seed(shape)).normal(0, 6, (251, 257, 1)).astype(np.float32)
    grain = np.tile(tile, (-(-h // 251), -(-w // 257), 1))[:h, :w]
    colour += grain
    return np.clip(colour, 0, 255, out=colour)


def product_sample(shape: str, background: str, size: int) -> Sample:
    """One generated product photo: the same scene at every size (drawn anew, not rescaled)."""
    w, h = size, round(size * 3 / 4)
    big = Image.new("L", (w * SUPERSAMPLE, h * SUPERSAMPLE), 0)
    SHAPES[shape](_Scaled(ImageDraw.Draw(big), h * SUPERSAMPLE))
    alpha = np.asarray(big.reduce(SUPERSAMPLE)).astype(np.float32) / 255
    del big
    rng = np.random.default_rng(_seed(shape, background))
    bg = _background(background, h, w, rng)
    fg = np.round(_fill(shape, h, w, rng)).astype(np.uint8)
    comp = fg.astype(np.float32)  # fg * a + bg * (1 - a), in place (12 MP temporaries)
    comp -= bg
    comp *= alpha[..., None]
    comp += bg
    image = np.clip(np.round(comp, out=comp), 0, 255, out=comp).astype(np.uint8)
    return Sample("products", f"{shape}-{background}-{size}", image, alpha, fg, crisp=True, size=size)


def products_set(names: Sequence[str] | None = None, sizes: Sequence[int] = PRODUCT_SIZES) -> list[SampleRef]:
    refs = []
    for z in sizes:
        for i, s in enumerate(SHAPES):
            # Above 2000 px, one background per shape (in turn): drawing, measuring and
            # cutting out 12 MP photos is what costs time here.
            for b in PRODUCT_BACKGROUNDS if z <= 2000 else PRODUCT_BACKGROUNDS[i % 3 : i % 3 + 1]:
                refs.append(SampleRef("products", f"{s}-{b}-{z}", lambda s=s, b=b, z=z: product_sample(s, b, z)))
    return [r for r in refs if names is None or r.name in names]


def load_set(name: str, names: Sequence[str] | None = None) -> list[SampleRef]:
    """The photos of one set (all, or the ``names`` given), loaded lazily."""
    loaders: dict[str, Callable[..., list[SampleRef]]] = {
        "alphamatting": lambda: alphamatting_set(names=names),
        "ecssd": lambda: ecssd_set(names=names),
        "lemur": lambda: lemur_set(names=names),
        "products": lambda: products_set(names=names),
    }
    if name not in loaders:
        raise ValueError(f"unknown set {name!r}: choose from {', '.join(SETS)}")
    return loaders[name]()


# ---------------------------------------------------------------- methods and caches


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _image_key(*parts: object, image: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((*parts, image.shape, str(image.dtype))).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class MaskCache:
    """The model's mask (1x1xSxS float32) for a model input, cached on disk.

    Masks are stored as uint16 (steps of 1/65535, far below what 8-bit output
    shows) and returned the same way on the first run and later ones, so a
    cached rerun gives identical numbers. ``folder=None``: memory only.
    """

    def __init__(self, session: Session, folder: Path | None) -> None:
        self.session = session
        self.folder = folder
        self.tag = (_file_digest(session.model_path), session.runtime)
        self.hits = self.misses = 0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        key = _image_key(*self.tag, image=image)
        path = self.folder / "masks" / f"{key}.npz" if self.folder else None
        if path is not None and path.exists():
            self.hits += 1
            with np.load(path) as z:
                q = z["mask"]
        else:
            self.misses += 1
            mask = self.session.predict_mask(image)
            q = np.round(np.clip(mask, 0, 1) * 65535).astype(np.uint16)
            if path is not None:
                _atomic_write(path, lambda p: _save_npz(p, q))
        return q.astype(np.float32) / 65535


def _save_npz(path: Path, mask: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, mask=mask)


class CachedMaskSession:
    """A :class:`Session` whose model masks come from a :class:`MaskCache`; everything
    else (the post-processing graphs, the runtime's description) is the real session's."""

    def __init__(self, session: Session, cache: MaskCache) -> None:
        self._session = session
        self._cache = cache

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        return self._cache(image)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


@dataclass
class Result:
    """One method's cutout of one photo: alpha float32, straight colours uint8 (or None)."""

    alpha: np.ndarray
    rgb: np.ndarray | None
    needs_review: bool | None = None


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    if "/" in text:
        return tuple(_value(part) for part in text.split("/"))
    try:
        return float(text) if "." in text or "e-" in low else int(text)
    except ValueError:
        return text


def split_methods(text: str) -> list[str]:
    """``raw,post:a=1,b=2,default`` -> ``["raw", "post:a=1,b=2", "default"]``: a comma starts a new
    method only where a method's name follows it (key=value lists have commas of their own)."""
    parts = re.split(r",(?=\s*(?:raw|default|rembg|alphacut|post|matte)\s*(?:[:,]|$))", text)
    return [p.strip() for p in parts if p.strip()]


def parse_method(spec: str) -> tuple[str, dict[str, Any]]:
    """``raw``, ``default``, ``rembg``, ``alphacut[:key=value,...]`` (Options fields) or
    ``post[:key=value,...]`` (PostprocessParams fields) -> (kind, fields)."""
    spec = ALIASES.get(spec, spec)
    if spec == "rembg":
        return "rembg", {}
    kind, _, rest = spec.partition(":")
    if kind == "matte":
        if rest and not re.fullmatch(r"grow=\d+(\.\d+)?", rest):
            raise ValueError(f"bad option in {spec!r}: use matte or matte:grow=N")
        return "matte", {"grow": float(rest.partition("=")[2]) if rest else 4.0}
    if kind not in ("alphacut", "post"):
        raise ValueError(
            f"unknown method {spec!r}: use raw, default, rembg, alphacut:key=value,... or post:key=value,..."
        )
    fields = {f.name for f in dataclasses.fields(Options if kind == "alphacut" else PostprocessParams)}
    kwargs: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in fields:
            raise ValueError(f"bad option {item!r} in {spec!r}: use key=value with keys from {', '.join(sorted(fields))}")
        kwargs[key] = _value(value)
    if kind == "post":
        PostprocessParams(**kwargs)  # validated here, not halfway through a run
    return kind, kwargs


class Runner:
    """Holds the model session and the caches; ``run(method, sample)`` gives a :class:`Result`.

    ``postprocess``: extra methods given as callables ``f(image_uint8, mask) -> alpha``
    (or ``(alpha, rgb_uint8)``), ``mask`` being the model's SxS float32 mask
    (``mask[None, None]`` is what :meth:`Session.postprocess` takes).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        cache: Path | None = CACHE,
        threads: int | None = None,
        postprocess: dict[str, Callable[[np.ndarray, np.ndarray], Any]] | None = None,
        session: Session | None = None,
    ) -> None:
        self.model = str(session.model_path) if session else model
        self.cache = cache
        self.session = session or Session(model_path=Path(model), threads=threads, device="cpu")
        self.masks = MaskCache(self.session, cache)
        self.cached_session = CachedMaskSession(self.session, self.masks)
        self.postprocess = dict(postprocess or {})
        self._rembg: Any = None

    def run(self, method: str, sample: Sample) -> Result:
        if method in self.postprocess:
            out = self.postprocess[method](sample.image, self.masks(sample.image)[0, 0])
            alpha, rgb = out if isinstance(out, tuple) else (out, None)
            return Result(np.asarray(alpha, np.float32), rgb)
        kind, kwargs = parse_method(method)
        if kind == "rembg":
            return self._rembg_cutout(sample.image)
        if kind == "matte":
            return Result(reference_matte(sample.image, self.run("raw", sample).alpha, kwargs["grow"]), None)
        if kind == "post":
            alpha, rgba, _ = self.session.postprocess(sample.image, self.masks(sample.image), PostprocessParams(**kwargs))
            return Result(alpha, rgba[..., :3])
        session: Any = self.cached_session  # a Session in all but the masks
        cut = remove_background(sample.image, options=Options(**kwargs), session=session)
        return Result(cut.alpha, cut.rgba[..., :3], cut.confidence.needs_review)

    def _rembg_cutout(self, image: np.ndarray) -> Result:
        import rembg

        key = _image_key("rembg", rembg.__version__, self.masks.tag[0], image=image)
        path = self.cache / "rembg" / f"{key}.png" if self.cache else None
        if path is not None and path.exists():
            rgba = np.asarray(Image.open(path))
        else:
            if self._rembg is None:
                self._rembg = rembg.new_session("dis_custom", model_path=self.model)
            rgba = np.asarray(rembg.remove(Image.fromarray(image[..., :3]), session=self._rembg).convert("RGBA"))
            if path is not None:
                _atomic_write(path, lambda p: Image.fromarray(rgba).save(p, format="PNG", compress_level=1))
        return Result(rgba[..., 3].astype(np.float32) / 255, rgba[..., :3])


MATTE_SIDE = 1000  # the reference matte's long side at most: the solver's memory grows with the pixels


def reference_matte(image: np.ndarray, raw: np.ndarray, grow: float) -> np.ndarray:
    """Closed-form matting inside the model's unsure pixels (see ``matte`` in the module docstring)."""
    try:
        from pymatting import estimate_alpha_cf
    except ImportError as exc:
        raise SystemExit("the matte method needs pymatting: bash scripts/setup.sh --dev (rembg brings it) or pip install pymatting") from exc
    h, w = raw.shape
    scale = min(1.0, MATTE_SIDE / max(h, w))
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    rgb = np.asarray(Image.fromarray(image[..., :3]).resize(small, Image.BILINEAR), np.float64) / 255
    mask = np.asarray(Image.fromarray(raw).resize(small, Image.BILINEAR), np.float32)
    fg, bg = mask >= 0.95, mask <= 0.05
    radius = max(1, round(grow * max(small) / 800))
    unknown = _dilate(~(fg | bg), radius)
    trimap = np.full(mask.shape, 0.5)
    trimap[fg & ~unknown], trimap[bg & ~unknown] = 1.0, 0.0
    if not (trimap == 1).any() or not (trimap == 0).any():
        return raw
    matte = np.clip(estimate_alpha_cf(rgb, trimap, laplacian_kwargs={"epsilon": 1e-6}), 0, 1).astype(np.float32)
    if scale < 1:
        matte = np.asarray(Image.fromarray(matte).resize((w, h), Image.BILINEAR), np.float32)
        unknown = np.asarray(Image.fromarray(unknown).resize((w, h), Image.NEAREST))
    return np.where(unknown, matte, raw).astype(np.float32)


# ---------------------------------------------------------------- metrics


def photo_metrics(result: Result, sample: Sample) -> dict[str, float]:
    """The per-photo metrics of one cutout (see the module docstring)."""
    pred, gt, t = result.alpha, sample.alpha, sample.truth
    if pred.shape != gt.shape:
        raise ValueError(f"{sample.set}/{sample.name}: cutout is {pred.shape}, truth {gt.shape}")
    err = np.abs(pred - gt)
    hard = pred > 0.5
    out = {
        "mae": float(err.mean()),
        "edge": float(err[t.band].mean()) if t.band.any() else 0.0,
        "spread": float((pred[t.far] > SPREAD_ALPHA).mean()) if t.far.any() else 0.0,
        "iou": float((hard & t.hard).sum() / max((hard | t.hard).sum(), 1)),
    }
    if sample.foreground is not None and result.rgb is not None and t.band.any():
        a, g = pred[t.band][:, None], gt[t.band][:, None]
        ours = a * (result.rgb[t.band] / 255.0) + (1 - a) * 0.5
        true = g * (sample.foreground[t.band] / 255.0) + (1 - g) * 0.5
        out["halo"] = float(np.abs(ours - true).mean())
    if sample.crisp:
        out["width"] = t.width(pred)
    return out


@dataclass
class SetReport:
    """Per-photo metrics of every method on one set, and what is derived from them."""

    name: str
    methods: list[str]
    photos: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # photo -> method -> metrics
    review: dict[str, dict[str, bool]] = field(default_factory=dict)  # method -> photo -> needs_review
    truth_width: dict[str, float] = field(default_factory=dict)  # products: the truth's own width
    sizes: dict[str, int] = field(default_factory=dict)  # products: photo -> long side

    def __repr__(self) -> str:  # pytest prints it in failures: keep it short
        return f"SetReport({self.name!r}, {len(self.photos)} photos, methods={self.methods})"

    def mean(self, method: str, key: str, photos: Iterable[str] | None = None) -> float:
        vals = [self.photos[p][method][key] for p in (photos or self.photos) if key in self.photos[p][method]]
        return float(np.mean(vals)) if vals else float("nan")

    def keys(self) -> list[str]:
        first = next(iter(self.photos.values()))
        return [k for k in ("mae", "edge", "spread", "iou", "halo", "width") if any(k in m for m in first.values())]

    def compare(self, method: str, base: str = "raw") -> tuple[int, int]:
        """(worse, better): photos whose edge is more than 2 % above / below ``base``'s."""
        worse = better = 0
        for row in self.photos.values():
            e, b = row[method]["edge"], row[base]["edge"]
            worse += e > b * WORSE + 1e-9
            better += e < b / WORSE - 1e-9
        return worse, better

    def triage(self, method: str) -> tuple[float, float] | None:
        """(share flagged needs_review, share of the worst tenth by IoU that is flagged)."""
        flags = self.review.get(method)
        if not flags:
            return None
        ranked = sorted(self.photos, key=lambda p: self.photos[p][method]["iou"])
        worst = ranked[: max(1, len(ranked) // 10)]
        return float(np.mean(list(flags.values()))), float(np.mean([flags[p] for p in worst]))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def evaluate(
    runner: Runner,
    sets: dict[str, list[SampleRef]],
    methods: Sequence[str],
    *,
    progress: bool = True,
) -> dict[str, SetReport]:
    """Run every method on every photo; per-photo metrics, grouped by set."""
    reports: dict[str, SetReport] = {}
    for set_name, refs in sets.items():
        rep = reports[set_name] = SetReport(set_name, list(methods))
        t0 = time.perf_counter()
        for i, ref in enumerate(refs):
            sample = ref.load()
            row: dict[str, dict[str, float]] = {}
            for method in methods:
                result = runner.run(method, sample)
                row[method] = photo_metrics(result, sample)
                if result.needs_review is not None:
                    rep.review.setdefault(method, {})[sample.name] = result.needs_review
            rep.photos[sample.name] = row
            if sample.crisp:
                rep.truth_width[sample.name] = sample.truth.own_width
                rep.sizes[sample.name] = sample.size
            if progress and (i + 1) % 10 == 0:
                print(f"  {set_name}: {i + 1}/{len(refs)} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if progress:
            print(f"{set_name}: {len(refs)} photos in {time.perf_counter() - t0:.0f} s", flush=True)
    return reports


def evaluate_postprocess(
    postprocess: Callable[[np.ndarray, np.ndarray], Any],
    *,
    sets: Sequence[str] = SETS,
    baselines: Sequence[str] = ("raw", "default"),
    limit: int | None = None,
    runner: Runner | None = None,
) -> dict[str, SetReport]:
    """Measure a post-processing callable on every set beside ``baselines``, with cached masks.

    ``postprocess(image_uint8 HxWx3, mask SxS float32) -> alpha HxW float32``
    (or ``(alpha, rgb_uint8 HxWx3)`` to get a halo figure). Prints the tables;
    returns the reports. Example::

        from quality import evaluate_postprocess
        evaluate_postprocess(my_refine, sets=["ecssd", "alphamatting"])
    """
    runner = runner or Runner(postprocess={"custom": postprocess})
    runner.postprocess.setdefault("custom", postprocess)
    chosen = {s: load_set(s)[:limit] for s in sets}
    reports = evaluate(runner, chosen, [*baselines, "custom"])
    print(render(reports, [], focus="custom"))
    return reports


# ---------------------------------------------------------------- contact sheets


def _over(alpha: np.ndarray, rgb: np.ndarray, colour: tuple[int, int, int] = (46, 110, 190)) -> np.ndarray:
    a = alpha[..., None]
    return np.clip(np.round(rgb * a + np.float32(colour) * (1 - a)), 0, 255).astype(np.uint8)


def _label(tile: Image.Image, text: str) -> Image.Image:
    out = Image.new("RGB", (tile.width, tile.height + 16), (255, 255, 255))
    out.paste(tile, (0, 16))
    ImageDraw.Draw(out).text((3, 2), text, fill=(0, 0, 0), font=ImageFont.load_default(size=12))
    return out


def contact_sheet(
    runner: Runner,
    refs: list[SampleRef],
    report: SetReport,
    path: Path,
    *,
    a: str = "raw",
    b: str = "default",
    n: int = 8,
) -> Path | None:
    """The ``n`` photos where ``b``'s edge is most above ``a``'s: overview and a 200 % crop of each."""
    if a not in report.methods or b not in report.methods:
        return None
    by_name = {r.name: r for r in refs}
    worst = sorted(report.photos, key=lambda p: report.photos[p][a]["edge"] - report.photos[p][b]["edge"])[:n]
    rows = []
    for name in worst:
        sample = by_name[name].load()
        ra, rb = runner.run(a, sample), runner.run(b, sample)
        truth_rgb = sample.foreground if sample.foreground is not None else sample.image
        views = [(a, ra.alpha, ra.rgb if ra.rgb is not None else sample.image),
                 (b, rb.alpha, rb.rgb if rb.rgb is not None else sample.image),
                 ("truth", sample.alpha, truth_rgb)]
        # The worst edge region: where b's error exceeds a's most, over a window.
        win = 64
        gain = np.abs(rb.alpha - sample.alpha) - np.abs(ra.alpha - sample.alpha)
        score = ndimage.uniform_filter(gain, size=win)
        y, x = np.unravel_index(int(np.argmax(score)), score.shape)
        h, w = sample.alpha.shape
        y0, x0 = min(max(0, y - win), max(0, h - 2 * win)), min(max(0, x - win), max(0, w - 2 * win))
        scale = 240 / max(h, w)
        tiles = []
        for label, alpha, rgb in views:
            comp = Image.fromarray(_over(alpha, rgb))
            small = comp.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
            ImageDraw.Draw(small).rectangle(
                [x0 * scale, y0 * scale, (x0 + 2 * win) * scale, (y0 + 2 * win) * scale], outline=(255, 255, 0)
            )
            tiles.append(_label(small, f"{label}"))
        for label, alpha, rgb in views:
            box = (slice(y0, y0 + 2 * win), slice(x0, x0 + 2 * win))
            crop = Image.fromarray(_over(alpha[box], rgb[box]))
            crop = crop.resize((crop.width * 2, crop.height * 2), Image.Resampling.NEAREST)
            tiles.append(_label(crop, f"{label} 200%"))
        m = report.photos[name]
        head = (
            f"{name}: edge {a} {m[a]['edge']:.4f}, {b} {m[b]['edge']:.4f};"
            f" spread {m[a]['spread']:.4f} / {m[b]['spread']:.4f}"
        )
        width = sum(t.width + 4 for t in tiles)
        height = max(t.height for t in tiles) + 18
        row = Image.new("RGB", (width, height), (255, 255, 255))
        ImageDraw.Draw(row).text((3, 2), head, fill=(0, 0, 0), font=ImageFont.load_default(size=13))
        xoff = 0
        for t in tiles:
            row.paste(t, (xoff, 18))
            xoff += t.width + 4
        rows.append(row)
    if not rows:
        return None
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 6 for r in rows)), (200, 200, 200))
    yoff = 0
    for r in rows:
        sheet.paste(r, (0, yoff))
        yoff += r.height + 6
    _atomic_write(path, lambda p: sheet.save(p, format="PNG"))
    return path


# ---------------------------------------------------------------- timing


def time_postprocess(
    runner: Runner, sizes_mp: Sequence[float] = (1, 12, 24), repeats: int = 3
) -> list[tuple[float, float, float]]:
    """Post-processing wall time of the default options on upscales of a real photo,
    as ``Cutout.timings['postprocess']`` (model mask cached: not counted)."""
    photo = Image.open(DATA / "photos" / "animal-3.jpg").convert("RGB")
    rows = []
    for mp in sizes_mp:
        w = round((mp * 1e6 * 4 / 3) ** 0.5)
        h = round(mp * 1e6 / w)
        x = np.asarray(photo.resize((w, h), Image.Resampling.BILINEAR))
        times = []
        session: Any = runner.cached_session
        for i in range(repeats + 1):  # the first is a warm-up (and fills the mask cache)
            t = time.perf_counter()
            cut = remove_background(x, session=session)
            took = cut.timings.get("postprocess", time.perf_counter() - t)
            if i:
                times.append(took)
        rows.append((w * h / 1e6, float(np.median(times)) * 1000, float(np.min(times)) * 1000))
        print(f"post {w}x{h}: median {rows[-1][1]:.0f} ms, best {rows[-1][2]:.0f} ms", flush=True)
    return rows


# ---------------------------------------------------------------- ceiling

CEILING_PX = (4, 8)  # the thin band: unsure pixels within this many pixels of both sure sides
CEILING_COLUMNS = ("raw", *(f"thin {px} px" for px in CEILING_PX), "all unsure")


def edge_ceiling(runner: Runner, refs: Sequence[SampleRef]) -> dict[str, float]:
    """How far any edge refinement of the model's mask could go, from the truth itself.

    The raw cutout (the model's mask upsampled) with the truth put in place of
    its unsure pixels (0.05 < mask < 0.95): in a thin band, those within
    ``CEILING_PX`` pixels of both a sure-subject and a sure-background pixel
    (an edge), and in all of them (also wide areas where the model cannot
    decide what the subject is). A refinement that keeps the model's sure
    pixels and works at its edges cannot beat the thin-band figure; the
    rest of the error is the model's. Returns mean edge figures by ``CEILING_COLUMNS``.
    """
    rows: list[list[float]] = []
    for ref in refs:
        sample = ref.load()
        raw = runner.run("raw", sample).alpha
        truth = sample.alpha
        band = sample.truth.band
        unsure = (raw > 0.05) & (raw < 0.95)
        near_fg = ndimage.distance_transform_edt(~(raw >= 0.95))
        near_bg = ndimage.distance_transform_edt(~(raw <= 0.05))
        row = [float(np.abs(raw - truth)[band].mean())]
        for px in CEILING_PX:
            thin = unsure & (near_fg <= px) & (near_bg <= px)
            row.append(float(np.abs(np.where(thin, truth, raw) - truth)[band].mean()))
        row.append(float(np.abs(np.where(unsure, truth, raw) - truth)[band].mean()))
        rows.append(row)
    means = np.mean(rows, axis=0)
    return dict(zip(CEILING_COLUMNS, map(float, means), strict=True))


def render_ceiling(ceilings: dict[str, dict[str, float]]) -> str:
    names = CEILING_COLUMNS
    lines = [
        "Edge ceiling: the raw cutout with the truth put in place of the model's unsure pixels "
        "(0.05 < mask < 0.95), in a thin band (within N px of both a sure-subject and a "
        "sure-background pixel: the edges) or everywhere (also where the model cannot decide what "
        "the subject is). Edge, and its ratio to raw's:",
        "",
        "| set | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for name, c in ceilings.items():
        lines.append(f"| {name} | " + " | ".join(f"{c[k]:.4f} ({c[k] / c['raw']:.2f}x)" for k in names) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- report

SET_LABELS = {
    "alphamatting": "`alphamatting/` (real photos, measured soft alpha)",
    "ecssd": "`ecssd/` (everyday photos, ~400 px, binary truth)",
    "lemur": "lemur composites (real and flat backgrounds, true foreground)",
    "products": "generated products (crisp anti-aliased objects, 300/1000/4000 px)",
}


def _cell(x: float, digits: int) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def _ratio(x: float, y: float) -> str:
    return f"{x / y:.2f}x" if y > 0 and not math.isnan(x) and not math.isnan(y) else "n/a"


def render(
    reports: dict[str, SetReport],
    timing: Sequence[tuple[float, float, float]],
    *,
    focus: str = "default",
    runtime: str = "",
) -> str:
    lines = ["## Quality", "", f"Machine: {machine()}." + (f" Model runtime: {runtime}." if runtime else ""), ""]
    lines += [
        "raw: `--no-refine` (the model's mask upsampled); default: alphacut's default options;"
        " rembg: `new_session(\"dis_custom\")` with the same weights. edge: mean |alpha - truth| in the band"
        f" where the truth is soft or at its outline, grown by {BAND_PX} px; spread: share of the pixels more"
        f" than {BAND_PX} px outside the subject given alpha > {SPREAD_ALPHA}; width: 10-90 % transition width at"
        " the outline, px; worse / better: photos whose edge is more than 2 % above / below raw's.",
    ]
    for name, rep in reports.items():
        keys = rep.keys()
        lines += ["", f"### {SET_LABELS.get(name, name)}: {len(rep.photos)} photos", ""]
        cmp = "raw" in rep.methods
        head = ["method", *keys] + (["worse / better than raw"] if cmp else [])
        lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for m in rep.methods:
            cells = [_cell(rep.mean(m, k), 2 if k == "width" else 4) for k in keys]
            if cmp:
                cells.append("" if m == "raw" else "{} / {}".format(*rep.compare(m)))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        if focus in rep.methods:
            parts = []
            for base in ("raw", "rembg"):
                if base in rep.methods and base != focus:
                    r = ", ".join(
                        f"{k} {_ratio(rep.mean(focus, k), rep.mean(base, k))}" for k in keys if k not in ("iou",)
                    )
                    parts.append(f"{focus} / {base}: {r}")
            if parts:
                lines += ["", "; ".join(parts) + " (lower is better)."]
        if rep.truth_width:
            sizes = sorted(set(rep.sizes.values()))
            lines += ["", "Transition width by size, px (mean; max over photos):", ""]
            lines += ["| size | truth | " + " | ".join(rep.methods) + " |", "|---" * (len(rep.methods) + 2) + "|"]
            for z in sizes:
                ps = [p for p, s in rep.sizes.items() if s == z]
                cells = [f"{np.mean([rep.truth_width[p] for p in ps]):.2f}"]
                for m in rep.methods:
                    vals = [rep.photos[p][m]["width"] for p in ps]
                    cells.append(f"{np.mean(vals):.2f}; {np.max(vals):.2f}")
                lines.append(f"| {z} px | " + " | ".join(cells) + " |")
        for m in rep.methods:
            tri = rep.triage(m)
            if tri and name == "ecssd":
                lines += ["", f"Edge-confidence triage ({m}): {100 * tri[0]:.0f} % flagged `needs_review`;"
                          f" it catches {100 * tri[1]:.0f} % of the worst tenth by IoU."]
    if timing:
        lines += ["", "Post-processing of the default options (`Cutout.timings['postprocess']`), wall time:", ""]
        lines += ["| megapixels | median ms | best ms | median ms/MP |", "|---|---|---|---|"]
        for mp, med, best in timing:
            lines.append(f"| {mp:.1f} | {med:.0f} | {best:.0f} | {med / mp:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    ap.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated: raw, default, rembg, alphacut:key=value,... (Options), post:key=value,... (PostprocessParams)",
    )
    ap.add_argument("--limit", type=int, help="at most this many photos of each set (the first ones)")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="ISNet ONNX file")
    ap.add_argument("--no-cache", action="store_true", help=f"do not read or write cached masks ({CACHE})")
    ap.add_argument("--no-timing", action="store_true", help="skip the 1-24 MP post-processing timing")
    ap.add_argument("--no-sheets", action="store_true", help=f"skip the contact sheets ({SHEETS})")
    ap.add_argument("--json", type=Path, help="write the per-photo metrics here")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument(
        "--ceiling", action="store_true", help="also report how far edge refinement could go (truth in the unsure band)"
    )
    args = ap.parse_args(argv)
    methods = split_methods(args.methods)
    for m in methods:
        try:
            parse_method(m)
        except ValueError as exc:
            ap.error(str(exc))
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    for s in sets:
        if s not in SETS:
            ap.error(f"unknown set {s!r}; choose from {', '.join(SETS)}")
    t0 = time.perf_counter()
    runner = Runner(args.model, cache=None if args.no_cache else CACHE)
    chosen = {s: load_set(s)[: args.limit] for s in sets}
    reports = evaluate(runner, chosen, methods)
    print(f"model masks: {runner.masks.hits} cached, {runner.masks.misses} computed; {time.perf_counter() - t0:.0f} s")
    if not args.no_sheets:
        for s, rep in reports.items():
            path = contact_sheet(runner, chosen[s], rep, SHEETS / f"{s}.png")
            if path:
                print(f"contact sheet: {path}")
    timing = [] if args.no_timing else time_postprocess(runner)
    text = render(reports, timing, runtime=runner.session.runtime)
    if args.ceiling:
        text += "\n\n" + render_ceiling({s: edge_ceiling(runner, chosen[s]) for s in sets})
    print(text)
    if args.json:
        blob = json.dumps({k: r.to_json() for k, r in reports.items()}, indent=1)
        _atomic_write(args.json, lambda p: p.write_text(blob))
    if args.write:
        write_section("quality", text)


if __name__ == "__main__":
    main()
