"""A cutout made into a listing photo as :class:`~alphacut.options.Options` say.

The glue between the options and the two halves that the page shares:
:func:`alphacut.listing.layout` (where things go, exact integers) and the
composition graph of :mod:`alphacut.listing_graph` (the pixels).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from . import imageio
from .errors import AlphacutError, InputError, OptionsError
from .listing import Layout, layout
from .listing_graph import ListingComposer, default_composer
from .options import Options

__all__ = ["listing_canvas", "listing_layout", "read_background_image"]


def listing_layout(alpha: np.ndarray, options: Options) -> Layout:
    """The :class:`~alphacut.listing.Layout` of a cutout's alpha (uint8 HxW) under ``options``."""
    plan = layout(
        alpha,
        crop=options.crop,
        margin=options.margin,
        canvas=options.canvas,
        fill=options.fill,
        align=options.align,
        upscale=options.upscale,
        shadow=options.shadow,
        shadow_blur=options.shadow_blur,
        shadow_offset=options.shadow_offset,
    )
    cw, ch = plan.canvas
    if cw * ch > options.max_megapixels * 1e6:
        raise OptionsError(
            f"the canvas would be {cw}x{ch} ({cw * ch / 1e6:.0f} MP), over max_megapixels"
            f" ({options.max_megapixels:g}): choose a smaller canvas or a larger fill"
        )
    return plan


def read_background_image(source: str | Path | bytes, *, max_megapixels: float) -> np.ndarray:
    """A background image (a path or the file's bytes) as 8-bit sRGB HxWx3 (its alpha ignored)."""
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise InputError(f"background image {str(source)!r} is not a file: give the path of an image")
    try:
        decoded = imageio.decode(source, max_megapixels=max_megapixels, color="srgb")
    except AlphacutError as exc:  # say which of the images was refused
        raise type(exc)(f"the background image: {exc}") from None
    return np.ascontiguousarray(decoded.pixels8)


def _background_file(path: str, max_megapixels: float) -> np.ndarray:
    """:func:`read_background_image` of a file, decoded once for a whole batch (until it changes)."""
    file = Path(path)
    if not file.is_file():
        return read_background_image(file, max_megapixels=max_megapixels)  # raises, saying what to do
    stat = file.stat()
    return _decoded_background(str(file.resolve()), stat.st_mtime_ns, stat.st_size, max_megapixels)


@functools.lru_cache(maxsize=2)
def _decoded_background(path: str, mtime_ns: int, size: int, max_megapixels: float) -> np.ndarray:
    pixels = read_background_image(path, max_megapixels=max_megapixels)
    pixels.setflags(write=False)  # shared by every cutout of the run
    return pixels


def listing_canvas(
    rgba: np.ndarray,
    options: Options,
    *,
    photo: np.ndarray | None = None,
    background_image: np.ndarray | None = None,
    composer: ListingComposer | None = None,
) -> tuple[np.ndarray, Layout]:
    """The listing photo (uint8 CHxCWx4, straight RGBA) of the cutout ``rgba`` (HxWx4, uint8 or uint16).

    ``photo`` (the original, HxWx3/4, uint8 or uint16) is needed for the ``blur`` background;
    ``background_image`` (hxwx3 uint8) replaces reading ``options.background_image``.
    With ``options.mask`` the canvas is transparent and shadowless (its alpha is the mask).
    """
    rgba8 = imageio.to_8bit(rgba) if rgba.dtype == np.uint16 else rgba
    plan = listing_layout(np.ascontiguousarray(rgba8[..., 3]), options)
    kind = "image" if background_image is not None else options.background_kind
    shadow = options.shadow
    if options.mask:
        kind, shadow = "transparent", "none"
    bgimage = None
    if kind == "blur" and photo is None:
        raise OptionsError("the blur background needs the original photo: cut the image out in this run")
    if kind == "image":
        if background_image is None:
            assert options.background_image is not None
            background_image = _background_file(options.background_image, options.max_megapixels)
        bgimage = background_image
    canvas = (composer or default_composer()).compose(
        rgba8,
        plan,
        background=kind,
        color=options.flatten_color,
        shadow=shadow,
        shadow_opacity=options.shadow_opacity,
        photo=_photo8(photo) if kind == "blur" else None,
        bgimage=bgimage,
    )
    return canvas, plan


def _photo8(photo: np.ndarray | None) -> np.ndarray | None:
    if photo is None or photo.dtype == np.uint8:
        return photo
    return imageio.to_8bit(photo[..., :3])
