"""A seeded generator of damaged image files, for the fuzz tests and ``benchmarks/fuzz.py``.

Seeds are small valid files made here with Pillow and pillow-heif: PNG (RGB, RGBA,
16-bit, palette, grey), JPEG (EXIF orientation, ICC profile, CMYK), WebP (lossy,
lossless, animated), TIFF (single and multi-page, 16-bit, compressed), GIF
(animated), HEIC and BMP. Each fuzz case is one seed put through one to three
mutations that know where formats keep their fragile parts: header fields set to
extreme values (sizes, counts, offsets), chunks with or without a fixed CRC, TIFF
directory entries, truncation, inserted or repeated bytes, splices of two seeds.
The same ``seed`` gives the same files, so a failure can be replayed.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms

__all__ = ["SUFFIX", "Case", "cases", "is_clean_error", "seeds"]

SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "GIF": ".gif", "HEIF": ".heic",
          "BMP": ".bmp"}
_EXTREMES = (0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


@dataclass(frozen=True)
class Case:
    """One fuzz input: ``name`` (with the seed's suffix), its bytes, and how it was made."""

    name: str
    data: bytes
    recipe: str


_ADVICE = ("re-export", "re-download", "use ", "check", "raise", "crop", "downscale", "close other", "nothing to",
           "move it", "free some", "writable", "report", "send ")


def is_clean_error(message: str | None) -> bool:
    """An error as a user should see it: one line, no traceback, and it says what to do."""
    return (bool(message) and "\n" not in str(message) and "Traceback" not in str(message)
            and len(str(message)) < 400 and any(hint in str(message) for hint in _ADVICE))


def _picture(w: int, h: int, seed: int, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), (xx + yy) % 256] +
                    ([np.full_like(xx, 200)] if channels == 4 else []), axis=-1)
    return np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def seeds() -> dict[str, bytes]:
    """Small valid files of every format alphacut reads, by name (the suffix says the format)."""
    rgb = Image.fromarray(_picture(24, 16, 1))
    rgba = Image.fromarray(_picture(20, 14, 2, channels=4), "RGBA")
    frames = [Image.fromarray(_picture(16, 12, s)) for s in (3, 4, 5)]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    sixteen = (_picture(12, 10, 6).astype(np.uint16) * 257)
    out = {
        "rgb.png": _save(rgb, "PNG"),
        "rgba.png": _save(rgba, "PNG"),
        "palette.png": _save(rgb.convert("P"), "PNG", transparency=0),
        "grey16.png": _save(Image.fromarray(sixteen[..., 0]), "PNG"),
        "rgb.jpg": _save(rgb, "JPEG", quality=90),
        "exif-icc.jpg": _save(rgb, "JPEG", exif=exif.tobytes(), icc_profile=icc),
        "cmyk.jpg": _save(rgb.convert("CMYK"), "JPEG"),
        "lossy.webp": _save(rgb, "WEBP", quality=80),
        "lossless.webp": _save(rgba, "WEBP", lossless=True),
        "animated.webp": _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50),
        "rgb.tif": _save(rgb, "TIFF"),
        "deflate.tif": _save(rgba, "TIFF", compression="tiff_adobe_deflate"),
        "pages.tif": _save(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
        "animated.gif": _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0),
        "rgb.bmp": _save(rgb, "BMP"),
    }
    try:
        import cv2

        ok, png16 = cv2.imencode(".png", np.ascontiguousarray(sixteen[..., ::-1]))
        if ok:
            out["rgb16.png"] = png16.tobytes()
        ok, tif16 = cv2.imencode(".tif", np.ascontiguousarray(sixteen[..., ::-1]))
        if ok:
            out["rgb16.tif"] = tif16.tobytes()
    except ImportError:  # pragma: no cover
        pass
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        out["rgb.heic"] = _save(rgb, "HEIF", quality=80)
    except (ImportError, KeyError, OSError):  # pragma: no cover  (no HEIF encoder in this build)
        pass
    return out


# --- mutations: each takes the bytes and a Random, returns new bytes and a short description ---------

Mutation = Callable[[bytes, random.Random], tuple[bytes, str]]


def _flip(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    b = bytearray(data)
    n = rng.choice((1, 2, 4, 8, 32))
    head = rng.random() < 0.6  # the header is where damage changes the decoder's path
    for _ in range(n):
        i = rng.randrange(min(len(b), 96) if head else len(b))
        b[i] = rng.randrange(256)
    return bytes(b), f"flip{n}{'h' if head else ''}"


def _truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    cut = rng.choice((rng.randrange(1, 64), rng.randrange(len(data)), len(data) - rng.randrange(1, 16)))
    cut = max(0, min(len(data) - 1, cut))
    return data[:cut], f"trunc{cut}"


def _insert(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    i = rng.randrange(len(data))
    blob = rng.choice((bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), data[: rng.randrange(1, 64)],
                       b"\x00" * rng.randrange(1, 4096)))
    return data[:i] + blob + data[i:], f"ins{len(blob)}@{i}"


def _repeat(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randrange(1, 256))
    return data[:j] + data[i:j] * rng.randrange(1, 8) + data[j:], f"rep{i}:{j}"


def _extreme(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    b = bytearray(data)
    width = rng.choice((2, 4))
    limit = min(len(b), 128)
    if limit < width + 1:
        return data, "extreme-"
    i = rng.randrange(limit - width)
    value = rng.choice(_EXTREMES) & (0xFFFF if width == 2 else 0xFFFFFFFF)
    order = rng.choice((">", "<"))
    b[i : i + width] = struct.pack(order + ("H" if width == 2 else "I"), value)
    return bytes(b), f"ext{width}{order}{value:x}@{i}"


def _png_chunk(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Rewrite a field of a PNG chunk (sizes, bit depth, colour type...), CRC fixed or not."""
    if not data.startswith(b"\x89PNG"):
        return _extreme(data, rng)
    chunks = []
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 12 + length
        if end > len(data):
            break
        chunks.append((pos, length))
        pos = end
    if not chunks:
        return _flip(data, rng)
    start, length = rng.choice(chunks)
    body = bytearray(data[start + 8 : start + 8 + length])
    kind = data[start + 4 : start + 8]
    what = rng.random()
    if kind == b"IHDR" and what < 0.5:
        w, h = rng.choice(((240_000_000, 1), (1, 240_000_000), (100_000, 100_000), (0, 5), (70_000, 2),
                           (rng.randrange(1, 5000), rng.randrange(1, 5000))))
        body[0:8] = struct.pack(">II", w, h)
        if rng.random() < 0.5:
            body[8] = rng.choice((1, 2, 4, 8, 16, 3, 0))
            body[9] = rng.choice((0, 2, 3, 4, 6, 5, 7))
    elif body:
        for _ in range(rng.randrange(1, 4)):
            body[rng.randrange(len(body))] = rng.randrange(256)
    fix_crc = rng.random() < 0.7
    crc = zlib.crc32(kind + bytes(body)) if fix_crc else rng.getrandbits(32)
    new = struct.pack(">I", len(body)) + kind + bytes(body) + struct.pack(">I", crc)
    return data[:start] + new + data[start + 12 + length :], f"png-{kind.decode('latin-1')}{'' if fix_crc else '-crc'}"


def _tiff_ifd(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Rewrite a TIFF directory entry: its tag, type, count or value/offset."""
    if data[:4] not in (b"II*\x00", b"MM\x00*") or len(data) < 8:
        return _extreme(data, rng)
    order = "<" if data[:2] == b"II" else ">"
    b = bytearray(data)
    (ifd,) = struct.unpack(order + "I", data[4:8])
    hops = rng.randrange(3)  # the first, second or third page's directory
    for _ in range(hops):
        if ifd + 2 > len(b):
            break
        (count,) = struct.unpack(order + "H", b[ifd : ifd + 2])
        nxt = ifd + 2 + 12 * count
        if nxt + 4 > len(b):
            break
        (following,) = struct.unpack(order + "I", b[nxt : nxt + 4])
        if not following or following + 2 > len(b):
            break
        ifd = following
    if ifd + 2 > len(b):
        return _flip(data, rng)
    (count,) = struct.unpack(order + "H", b[ifd : ifd + 2])
    if count == 0 or ifd + 2 + 12 * count > len(b):
        return _flip(data, rng)
    entry = ifd + 2 + 12 * rng.randrange(count)
    field = rng.choice(("tag", "type", "count", "value"))
    if field == "tag":
        b[entry : entry + 2] = struct.pack(order + "H", rng.choice((256, 257, 258, 259, 262, 273, 277, 279, 284,
                                                                    320, 34675, 0xFFFF)))
    elif field == "type":
        b[entry + 2 : entry + 4] = struct.pack(order + "H", rng.randrange(0, 20))
    elif field == "count":
        b[entry + 4 : entry + 8] = struct.pack(order + "I", rng.choice(_EXTREMES))
    else:
        b[entry + 8 : entry + 12] = struct.pack(order + "I", rng.choice(_EXTREMES + (len(data) - 2,)))
    return bytes(b), f"tiff-ifd{hops}-{field}"


def _splice(data: bytes, rng: random.Random, other: bytes = b"") -> tuple[bytes, str]:
    if not other:
        return _repeat(data, rng)
    i, j = rng.randrange(len(data)), rng.randrange(len(other))
    return data[:i] + other[j:], f"splice{i}+{j}"


_MUTATIONS: tuple[tuple[Mutation, float], ...] = (
    (_flip, 3.0), (_truncate, 2.0), (_insert, 1.0), (_repeat, 1.0), (_extreme, 2.0), (_png_chunk, 2.0),
    (_tiff_ifd, 2.0),
)


def cases(count: int, *, seed: int = 0, good_every: int = 10) -> Iterator[Case]:
    """``count`` fuzz cases; every ``good_every``-th is an unmutated seed (the good files beside the bad)."""
    rng = random.Random(seed)
    base = seeds()
    names = sorted(base)
    mutations, weights = zip(*_MUTATIONS)
    for n in range(count):
        name = names[n % len(names)] if good_every and n % good_every == 0 else rng.choice(names)
        data = base[name]
        stem, suffix = name.rsplit(".", 1)
        if good_every and n % good_every == 0:
            yield Case(f"{n:05d}-good-{stem}.{suffix}", data, "good")
            continue
        steps = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            if not data:
                break
            mutate = rng.choices(mutations, weights)[0]
            if rng.random() < 0.05:
                data, step = _splice(data, rng, base[rng.choice(names)])
            else:
                data, step = mutate(data, rng)
            steps.append(step)
        yield Case(f"{n:05d}-{stem}.{suffix}", data, f"{name}: {' '.join(steps)}")
