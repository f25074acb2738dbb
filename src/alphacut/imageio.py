"""Decoding images as users really have them, and encoding cutouts.

Decode: content is sniffed (never trusted to the extension); EXIF orientation is
applied; 16-bit PNG/TIFF keep their 16 bits; grayscale, palette, CMYK, alpha and
HEIC/HEIF inputs become RGB(A); animated files give their first frame with a
warning; a megapixel cap (and a cap on each side) stops decompression bombs before
any pixel is decoded, and a byte cap derived from it stops files no image within the
cap can be (a 1 TB sparse file named ``.jpg``) before they are read. Whatever a
damaged file makes the decoders raise becomes a :class:`DecodeError` (or
:class:`ImageTooLargeError`) that says what to do.

Colour: the model sees sRGB (``DecodedImage.srgb8``); the output keeps the input's
pixel values and ICC profile (``color="keep"``) or is converted to sRGB
(``color="srgb"``). CMYK inputs always come out as sRGB, and say so.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import AlphacutError, DecodeError, ImageTooLargeError, OutputError

__all__ = [
    "MAX_SIDE", "DecodedImage", "decode", "encode", "file_too_large", "max_file_bytes", "read_file", "sniff_format",
    "to_8bit",
]

try:  # HEIC/HEIF support is optional at import time, present in the default install
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover
    pass

# No camera, scanner or editor makes an image wider or taller than this (JPEG's own
# limit); past it, decoders fail in their own ways (a 240000000x1 PNG is "only" 240 MP,
# but its single row overflows Pillow's decoder).
MAX_SIDE = 65_535
# The most bytes a pixel can take in a file (16-bit RGBA, uncompressed), and room
# for metadata (EXIF, ICC, thumbnails, extra pages) on top of the pixels.
_BYTES_PER_PIXEL = 8
_METADATA_BYTES = 64 << 20
# Leading bytes of the formats alphacut reads: a file that starts like one of them but
# does not open is a damaged image ("corrupt"), not something else ("not an image").
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

_SRGB = ImageCms.createProfile("sRGB")
_SRGB_BYTES = ImageCms.ImageCmsProfile(_SRGB).tobytes()



def to_8bit(values: np.ndarray) -> np.ndarray:
    """16-bit samples rounded to 8 bits (65535 -> 255; the one rounding rule everywhere)."""
    out: np.ndarray = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return out

@dataclass
class DecodedImage:
    """An input image ready for the engine.

    ``pixels`` is HxWx3 (or HxWx4 when the input had alpha), uint8 or uint16, in the
    colour space named by ``icc_profile`` (None = sRGB). ``srgb8`` is the same image
    as 8-bit sRGB RGB, what the model sees.
    """

    pixels: np.ndarray
    srgb8: np.ndarray
    icc_profile: bytes | None
    format: str
    warnings: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def has_alpha(self) -> bool:
        return bool(self.pixels.shape[2] == 4)

    @property
    def pixels8(self) -> np.ndarray:
        """The RGB pixels (input colour space) at 8 bits."""
        rgb = self.pixels[..., :3]
        if rgb.dtype == np.uint16:
            return to_8bit(rgb)
        return rgb


def sniff_format(data: bytes) -> str | None:
    """The image format from the content (e.g. 'PNG', 'JPEG'), or None if not an image.

    A file that starts like an image format but does not open (a PNG whose header
    CRC is broken) is still that format: a damaged image, not something else.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return im.format
    except Exception:  # noqa: BLE001 - whatever a damaged header makes Pillow raise: fall back to the signature
        return _signature(data)


def _signature(data: bytes) -> str | None:
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1",
                                               b"msf1", b"avif", b"avis"):
        return "AVIF" if data[8:12] in (b"avif", b"avis") else "HEIF"
    return None


def max_file_bytes(max_megapixels: float) -> int:
    """The largest file an image within the megapixel cap can be (16-bit RGBA, uncompressed,
    plus metadata): anything larger is refused before it is read."""
    return int(max_megapixels * 1e6 * _BYTES_PER_PIXEL) + _METADATA_BYTES


def read_file(path: str | Path, *, max_megapixels: float = 250.0) -> bytes:
    """The bytes of the image file ``path``; a :class:`DecodeError` (or, for a file larger than
    any image within the cap, :class:`ImageTooLargeError`) that says what to do otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise DecodeError(f"{path} is a folder, not an image")
        if size > max_file_bytes(max_megapixels):
            raise file_too_large(path.name, size, max_megapixels)
        return path.read_bytes()
    except OSError as exc:
        raise DecodeError(f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions") from None
    except MemoryError:
        raise DecodeError(f"not enough memory to read {path.name}: close other programs and try again") from None


def file_too_large(name: str, size: int, max_megapixels: float) -> ImageTooLargeError:
    """The error for a file of ``size`` bytes, over :func:`max_file_bytes`."""
    cap = max_file_bytes(max_megapixels)
    return ImageTooLargeError(
        f"{name} is {_human(size)}, more than any image within the {max_megapixels:g} MP cap can take"
        f" ({_human(cap)}, uncompressed at 16 bits with alpha): check it is the file you meant; raise"
        " --max-megapixels if it is a genuine image"
    )


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"  # pragma: no cover


def decode(
    source: bytes | str | Path | Image.Image,
    *,
    max_megapixels: float = 250.0,
    color: str = "keep",
) -> DecodedImage:
    """Decode an image from bytes, a path or a PIL image.

    Raises :class:`DecodeError` for anything that is not a usable image, whatever the
    decoders raised on it, and :class:`ImageTooLargeError` above the caps.
    """
    try:
        return _decode(source, max_megapixels, color)
    except AlphacutError:
        raise
    except MemoryError:
        raise ImageTooLargeError(
            "not enough memory to decode this image: close other programs, or lower --max-megapixels to refuse"
            " images this large"
        ) from None
    except Exception as exc:  # a damaged file can make Pillow, pillow-heif or LittleCMS raise anything
        detail = _detail(exc)
        raise DecodeError(
            f"the image is corrupt ({type(exc).__name__}{': ' + detail if detail else ''}): re-export it from its"
            " source, or re-download it"
        ) from exc


def _decode(source: bytes | str | Path | Image.Image, max_megapixels: float, color: str) -> DecodedImage:
    if isinstance(source, Image.Image):
        return _from_pil(source, "PIL", max_megapixels, color, None)
    if isinstance(source, (str, Path)):
        data = read_file(source, max_megapixels=max_megapixels)
    else:
        data = bytes(source)
    if not data:
        raise DecodeError("the file is empty (0 bytes): nothing to cut out; check the file was copied fully")

    # Dimensions are checked from the header before any pixel is decoded.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        old_cap = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            fmt = _signature(data)
            if fmt is not None:
                raise DecodeError(
                    f"corrupt {fmt}: its header is damaged (it starts like a {fmt} but does not open): re-export it"
                    " from its source, or re-download it"
                ) from None
            raise DecodeError(
                "not an image, or a format alphacut cannot read: use PNG, JPEG, WebP, TIFF, GIF, BMP or HEIC"
            ) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise DecodeError(f"corrupt image header ({_detail(exc)}): re-export the file from its source") from None
        finally:
            Image.MAX_IMAGE_PIXELS = old_cap
    _check_size(im.size, max_megapixels)
    fmt = im.format or "unknown"
    if _is_16bit_color(data, im):
        return _decode_16bit(data, im, fmt, color)
    return _from_pil(im, fmt, max_megapixels, color, data)


def _check_size(size: tuple[int, int], max_megapixels: float) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise DecodeError(f"the image header claims an empty size {w}x{h}: the file is corrupt; re-export it")
    mp = w * h / 1e6
    if mp > max_megapixels:
        raise ImageTooLargeError(
            f"{w}x{h} is {mp:.0f} megapixels, over the {max_megapixels:g} MP cap (a guard against"
            " decompression bombs): raise it with --max-megapixels if the image is genuine, or downscale it"
        )
    if max(w, h) > MAX_SIDE:
        raise ImageTooLargeError(
            f"{w}x{h} has a side over {MAX_SIDE} pixels, the most alphacut takes (a guard against"
            " decompression bombs; no camera makes such images): crop or downscale it"
        )


def _icc_of(im: Image.Image, notes: list[str]) -> bytes | None:
    """The embedded ICC profile's bytes; a damaged tag can make it a number or a tuple instead."""
    icc = im.info.get("icc_profile") or None
    if icc is None or isinstance(icc, bytes):
        return icc
    notes.append("the embedded ICC colour profile is damaged: ignored, colours read as sRGB")
    return None


def _detail(exc: BaseException) -> str:
    """A decoder's own words, on one line and short enough for a report."""
    return " ".join(str(exc).split())[:120]


def _load(im: Image.Image) -> None:
    try:
        im.load()
    except (OSError, ValueError, SyntaxError, struct.error, EOFError) as exc:
        msg = _detail(exc)
        hint = "truncated (the file ends early)" if "truncat" in msg.lower() else f"corrupt ({msg})"
        raise DecodeError(f"the image is {hint}: re-download or re-export it") from None


def _from_pil(
    im: Image.Image, fmt: str, max_megapixels: float, color: str, data: bytes | None
) -> DecodedImage:
    notes: list[str] = []
    _check_size(im.size, max_megapixels)
    try:
        frames = getattr(im, "n_frames", 1)
    except Exception:  # noqa: BLE001 - counting frames reads every page's header: a damaged later page raises here
        notes.append(f"{fmt} with damaged pages after the first: only the first page was cut out")
        im.seek(0)
    else:
        if frames > 1:
            notes.append(f"animated {fmt} with {frames} frames: only the first frame was cut out")
            im.seek(0)
    _load(im)
    im = ImageOps.exif_transpose(im) or im
    icc = _icc_of(im, notes)

    if im.mode == "CMYK":
        try:
            src = _profile(icc) if icc else None
            im = (ImageCms.profileToProfile(im, src, _SRGB, outputMode="RGB") or im) if src else im.convert("RGB")
        except Exception:  # noqa: BLE001 - a damaged profile: convert without it
            notes.append("the embedded ICC colour profile is damaged: ignored")
            im = im.convert("RGB")
        notes.append("CMYK input: converted to sRGB RGB")
        icc = None
    elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: keep the 16 bits, replicated to RGB.
        arr = np.asarray(im, dtype=np.uint32 if im.mode == "I" else np.uint16)
        luma = np.clip(arr, 0, 65535).astype(np.uint16)
        pixels = np.repeat(luma[..., None], 3, axis=2)
        return _finish(pixels, icc, fmt, notes, color, gray_icc=True)
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")

    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    gray = im.mode in ("L", "LA", "1", "La")
    im = im.convert("RGBA" if has_alpha else "RGB")
    pixels = np.asarray(im)
    return _finish(pixels, icc, fmt, notes, color, gray_icc=gray)


def _finish(
    pixels: np.ndarray, icc: bytes | None, fmt: str, notes: list[str], color: str, gray_icc: bool
) -> DecodedImage:
    rgb8 = pixels[..., :3]
    if rgb8.dtype == np.uint16:
        rgb8 = to_8bit(rgb8)
    srgb8 = rgb8
    try:
        src = _profile(icc) if icc else None
        if src is not None and (gray_icc or src.profile.xcolor_space.strip() != "RGB"):
            # A grayscale profile cannot describe RGB pixels; gray is neutral in any case.
            src, icc = None, None
        if src is not None and not _is_srgb(icc):
            converted = ImageCms.profileToProfile(Image.fromarray(np.ascontiguousarray(rgb8), "RGB"), src, _SRGB)
            srgb8 = np.asarray(converted)
    except Exception:  # noqa: BLE001 - a damaged profile (LittleCMS errors, undecodable text): the pixels are still good
        src, icc = None, None
        notes.append("the embedded ICC colour profile is damaged: ignored, colours read as sRGB")
    if src is not None and srgb8 is not rgb8:
        if color == "srgb":
            if pixels.dtype == np.uint16:
                notes.append("16-bit output converted to sRGB at 8-bit precision per channel")
            pixels = _with_alpha_of(pixels, srgb8)
            icc = None
            notes.append("colours converted to sRGB (--color srgb)")
        else:
            notes.append("output keeps the input's ICC profile")
    return DecodedImage(
        pixels=np.ascontiguousarray(pixels), srgb8=np.ascontiguousarray(srgb8), icc_profile=icc, format=fmt, warnings=notes
    )


def _with_alpha_of(pixels: np.ndarray, rgb8: np.ndarray) -> np.ndarray:
    if pixels.shape[2] == 4:
        a = pixels[..., 3]
        if a.dtype == np.uint16:
            a = to_8bit(a)
        return np.dstack([rgb8, a])
    return rgb8


def _profile(icc: bytes | None) -> ImageCms.ImageCmsProfile | None:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc)) if icc else None
    except (OSError, ValueError, TypeError):
        return None


def _is_srgb(icc: bytes | None) -> bool:
    if not icc:
        return True
    prof = _profile(icc)
    if prof is None:
        return True  # unreadable profile: treat as sRGB, the common case
    desc = (ImageCms.getProfileDescription(prof) or "").lower()
    return "srgb" in desc or "iec61966" in desc


def _is_16bit_color(data: bytes, im: Image.Image) -> bool:
    """Pillow reads 16-bit RGB(A) PNG/TIFF as 8 bits; detect them to decode with OpenCV."""
    if im.format == "PNG" and len(data) > 25:
        bit_depth, color_type = data[24], data[25]
        return bit_depth == 16 and color_type in (2, 4, 6)
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258)  # BitsPerSample (TIFF images have tag_v2)
        if isinstance(bits, tuple):
            return bool(bits) and bits[0] == 16 and len(bits) >= 3
        return False
    return False


def _decode_16bit(data: bytes, im: Image.Image, fmt: str, color: str) -> DecodedImage:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise DecodeError(f"cannot decode this 16-bit {fmt}: it is corrupt or truncated; re-export it")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.shape[2] == 2:  # gray + alpha
        arr = np.dstack([arr[..., 0]] * 3 + [arr[..., 1]])
    elif arr.shape[2] == 3:
        arr = arr[..., ::-1]
    else:
        arr = arr[..., [2, 1, 0, 3]]
    orientation = im.getexif().get(0x0112, 1)
    arr = _orient(arr, orientation)
    notes: list[str] = []
    return _finish(np.ascontiguousarray(arr), _icc_of(im, notes), fmt, notes, color, gray_icc=False)


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    ops: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 1)[::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return ops[orientation](arr) if orientation in ops else arr


def encode(
    rgba: np.ndarray,
    *,
    format: str,
    icc_profile: bytes | None = None,
    flatten: tuple[int, int, int] | None = None,
    mask: bool = False,
    quality: int | None = None,
) -> bytes:
    """Encode an HxWx4 uint8/uint16 cutout (or, with ``mask``, its alpha) to bytes.

    PNG keeps 16 bits when given 16; WebP is lossless (``exact``: colours kept under
    transparency), or lossy at ``quality`` when one is given; JPEG is flattened over
    ``flatten`` (white by default), at ``quality`` (default 95), 4:4:4.
    Deterministic: the same array gives the same bytes.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise OutputError(f"expected an HxWx4 array, got shape {rgba.shape}")
    sixteen = rgba.dtype == np.uint16
    if mask:
        alpha = rgba[..., 3]
        if sixteen and format == "png":
            return _save(Image.fromarray(np.ascontiguousarray(alpha)), "PNG")  # mode I;16
        return _save(Image.fromarray(_to8(alpha), "L"), format.upper(), quality=quality)
    if flatten is not None or format == "jpeg":
        bg = np.array(flatten or (255, 255, 255), np.float32) / 255.0
        scale = 65535.0 if sixteen else 255.0
        a = rgba[..., 3:4].astype(np.float32) / scale
        rgb = rgba[..., :3].astype(np.float32) / scale * a + bg * (1 - a)
        if sixteen and format == "png":
            flat16 = np.round(rgb * 65535).astype(np.uint16)
            return _png16(np.dstack([flat16, np.full(flat16.shape[:2], 65535, np.uint16)]), icc_profile)
        rgb8 = np.round(rgb * 255).astype(np.uint8)
        return _save(Image.fromarray(rgb8, "RGB"), format.upper(), icc_profile=icc_profile, quality=quality)
    if sixteen and format == "png":
        return _png16(rgba, icc_profile)
    return _save(Image.fromarray(_to8(rgba), "RGBA"), format.upper(), icc_profile=icc_profile, quality=quality)


def _to8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint16:
        return to_8bit(arr)
    return arr


def _save(im: Image.Image, fmt: str, icc_profile: bytes | None = None, quality: int | None = None) -> bytes:
    buf = io.BytesIO()
    extra: dict[str, object] = {}
    if icc_profile:
        extra["icc_profile"] = icc_profile
    if fmt == "WEBP":
        if quality is None:
            extra.update(lossless=True, quality=100, method=4, exact=True)
        else:
            extra.update(lossless=False, quality=quality, method=4, exact=True)
    elif fmt == "JPEG":
        extra.update(quality=95 if quality is None else quality, subsampling=0)
    elif fmt == "PNG":
        extra.update(compress_level=6)
    else:
        raise OutputError(f"unknown output format {fmt.lower()!r}: use png, webp or jpeg")
    im.save(buf, fmt, **extra)
    return buf.getvalue()


def _png16(rgba16: np.ndarray, icc_profile: bytes | None) -> bytes:
    """16-bit RGBA PNG (Pillow cannot write it), with the ICC profile as an iCCP chunk."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgba16[..., [2, 1, 0, 3]]))
    if not ok:
        raise OutputError("the 16-bit PNG encoder failed")
    png = buf.tobytes()
    if icc_profile:
        body = b"icc\x00\x00" + zlib.compress(icc_profile)
        chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
        ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, IHDR length, type, data, CRC
        png = png[:ihdr_end] + chunk + png[ihdr_end:]
    return png
