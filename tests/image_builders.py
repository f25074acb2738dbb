"""Small images built in memory for the tests (one home for them: no test file builds its own)."""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["encode", "noise", "solid", "tiff_pages"]

Size = tuple[int, int]
Colour = tuple[int, int, int]


def encode(fmt: str, im: Image.Image, **params: Any) -> bytes:
    """``im`` saved as ``fmt`` (PNG, JPEG, TIFF...) with Pillow's ``params``."""
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def solid(size: Size = (40, 30), colour: Colour = (200, 40, 40), fmt: str = "PNG") -> bytes:
    """A ``size`` (width, height) image of one colour."""
    return encode(fmt, Image.new("RGB", size, colour))


def noise(size: Size, seed: int = 0, fmt: str = "PNG") -> bytes:
    """A ``size`` image of seeded RGB noise (incompressible: its file is about as large as its pixels)."""
    rng = np.random.default_rng(seed)
    return encode(fmt, Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)))


def tiff_pages(broken_page: int | None = None) -> bytes:
    """A three-page TIFF; ``broken_page`` gets an unknown compression (Pillow raised KeyError)."""
    pages = [Image.new("RGB", (16, 12), c) for c in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    b = bytearray(encode("TIFF", pages[0], save_all=True, append_images=pages[1:]))
    if broken_page is None:
        return bytes(b)
    (ifd,) = struct.unpack("<I", b[4:8])
    for _ in range(broken_page):
        (count,) = struct.unpack("<H", b[ifd : ifd + 2])
        (ifd,) = struct.unpack("<I", b[ifd + 2 + 12 * count : ifd + 6 + 12 * count])
    (count,) = struct.unpack("<H", b[ifd : ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", b[entry : entry + 2])[0] == 259:  # Compression
            b[entry + 8 : entry + 12] = struct.pack("<I", 0xFFFF)
    return bytes(b)
