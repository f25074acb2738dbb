"""A mask given by hand as the starting point of a cutout (``start_mask``).

When the model gets a part wrong, a person fixes its mask (in the page's touch-up, or
in any image editor) and the engine starts from that mask instead of the model's: the
same refinement and colour estimation run on it, the model is not called. The mask may
have any size with the photo's aspect ratio (the post-processing graph resizes it);
0 is background, full scale is subject.

How a mask is read:

- an image (a path, bytes or a PIL image): a grayscale image as it is, 8 or 16 bits;
  an image with an alpha channel that is *not* opaque everywhere by its alpha (so a
  cutout, the page's or another program's, works as a mask); any other colour image by
  its luminance (Rec. 601 weights, as Pillow's ``convert("L")``). An RGBA file whose
  alpha is all opaque is a grey mask saved with a needless alpha channel: its luminance
  counts, not the alpha;
- an array: HxW ``uint8`` (0..255), ``uint16`` (0..65535), ``bool``, or a float in
  [0, 1] (the range of :attr:`~alphacut.pipeline.Cutout.alpha`; never rescaled, so a
  float mask in 0..255 is refused); HxWx3 and HxWx4 arrays follow the image rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import imageio
from .errors import AlphacutError, InputError

__all__ = ["ASPECT_TOLERANCE", "MaskInput", "check_aspect", "read_start_mask"]

MaskInput = bytes | str | Path | Image.Image | np.ndarray
# A mask drawn on a rounded-down or cropped-by-a-pixel copy of the photo still fits;
# a mask of another photo (or a rotated one) does not.
ASPECT_TOLERANCE = 0.01
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def read_start_mask(source: MaskInput, *, max_megapixels: float = 250.0) -> np.ndarray:
    """The mask as float32 HxW in [0, 1] (see the module docstring for the rules).

    Raises :class:`~alphacut.errors.InputError` (or its :class:`~alphacut.errors.DecodeError`)
    whose message starts with "the start mask".
    """
    try:
        if isinstance(source, np.ndarray):
            return _from_array(source)
        decoded = imageio.decode(source, max_megapixels=max_megapixels, color="keep")
        return _from_pixels(decoded.pixels)
    except AlphacutError as exc:
        if str(exc).startswith("the start mask"):
            raise
        raise type(exc)(f"the start mask: {exc}") from None


def check_aspect(mask: np.ndarray, size: tuple[int, int]) -> None:
    """Refuse a mask whose aspect ratio is not the photo's (``size`` is the photo's width, height)."""
    mh, mw = mask.shape[:2]
    pw, ph = size
    mask_ratio, photo_ratio = mw / mh, pw / ph
    off = abs(mask_ratio / photo_ratio - 1.0)
    if off > ASPECT_TOLERANCE:
        raise InputError(
            f"the start mask is {mw}x{mh} and the photo {pw}x{ph}: their aspect ratios ({mask_ratio:.3f} and"
            f" {photo_ratio:.3f}) differ by {off:.1%}, more than {ASPECT_TOLERANCE:.0%}; give the mask made for"
            " this photo (the same size, or scaled with it, not cropped or rotated)"
        )


def _from_array(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.size == 0 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(f"the start mask must be an HxW (or HxWx3/4) array, got shape {a.shape}")
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.floating):
        if a.ndim != 2:
            raise InputError("the start mask: a float mask must be HxW (values 0..1); colour masks are uint8 or uint16")
        lo, hi = float(np.min(a)), float(np.max(a))
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
            raise InputError(
                f"the start mask: a float mask holds values in [0, 1] (0 background, 1 subject), this one"
                f" {lo:g}..{hi:g}; divide a 0..255 mask by 255, or pass it as uint8"
            )
        return a.astype(np.float32)
    if a.dtype not in (np.uint8, np.uint16):
        raise InputError(
            f"the start mask: a {a.dtype} array is ambiguous; pass uint8 (0..255), uint16 (0..65535) or float (0..1)"
        )
    if a.ndim == 2:
        return _scaled(a)
    return _from_pixels(a)


def _from_pixels(px: np.ndarray) -> np.ndarray:
    """HxWx3/4 uint8/uint16 pixels: the alpha when it is not opaque everywhere, else the luminance."""
    full = 65535 if px.dtype == np.uint16 else 255
    if px.shape[2] == 4 and int(px[..., 3].min()) < full:
        return _scaled(px[..., 3])
    rgb = px[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return _scaled(rgb[..., 0])  # grey: exact, no weights
    luma: np.ndarray = (rgb.astype(np.float32) @ _LUMA) / np.float32(full)
    return np.clip(luma, 0.0, 1.0)


def _scaled(a: np.ndarray) -> np.ndarray:
    full = np.float32(65535.0 if a.dtype == np.uint16 else 255.0)
    out: np.ndarray = a.astype(np.float32) / full
    return out
