"""Decoding real-world and broken inputs, and deterministic encoding."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from image_builders import encode, tiff_pages
from PIL import Image, ImageCms

from alphacut import imageio
from alphacut.errors import DecodeError, ImageTooLargeError, InputError

PHOTOS = Path(__file__).parent / "data" / "photos"


def _png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header claims a size; the pixel data is a token."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


# --- the bad-input corpus: each gets one clear error that says what to do ---------------------

BAD_INPUTS = {
    "empty": (b"", "empty"),
    "text": (b"hello, this is a text file\n" * 20, "not an image"),
    "truncated_jpeg": ((PHOTOS / "girl-1.jpg").read_bytes()[:4000], "truncated"),
    "truncated_png": ((PHOTOS / "plants-1.jpg").read_bytes()[:5000], "re-"),
    "garbage_after_magic": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, ""),
    "zero_size_header": (_png_with_header(0, 10), ""),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_gets_one_clear_error(name: str) -> None:
    data, words = BAD_INPUTS[name]
    with pytest.raises(InputError) as info:
        imageio.decode(data)
    message = str(info.value)
    assert words in message.lower()
    assert "\n" not in message and len(message) < 300
    # Every message tells the user what to do next.
    assert any(v in message for v in ("use ", "re-", "check", "raise", "downscale", "nothing to"))


def test_absurd_dimensions_stopped_before_decoding() -> None:
    data = _png_with_header(100_000, 100_000)
    with pytest.raises(ImageTooLargeError, match="10000 megapixels.*--max-megapixels"):
        imageio.decode(data)


def test_megapixel_cap_is_configurable() -> None:
    data = encode("PNG", Image.new("RGB", (2000, 1000)))
    with pytest.raises(ImageTooLargeError):
        imageio.decode(data, max_megapixels=1.5)
    assert imageio.decode(data, max_megapixels=2.5).size == (2000, 1000)


def test_png_with_a_broken_header_crc_is_corrupt_not_unknown() -> None:
    data = bytearray(encode("PNG", Image.new("RGB", (8, 8))))
    data[29] ^= 0xFF  # the IHDR chunk's CRC
    assert imageio.sniff_format(bytes(data)) == "PNG"
    with pytest.raises(DecodeError, match="corrupt PNG.*re-export"):
        imageio.decode(bytes(data))


def test_a_side_too_long_is_refused_before_any_allocation() -> None:
    # 240 megapixels, under the default cap, but one row no decoder can hold: Pillow raised MemoryError.
    with pytest.raises(ImageTooLargeError, match="side over 65535"):
        imageio.decode(_png_with_header(240_000_000, 1))


def test_a_file_larger_than_any_image_within_the_cap_is_not_read(tmp_path: Path) -> None:
    huge = tmp_path / "b.jpg"
    with huge.open("wb") as f:  # sparse: `truncate -s 1T b.jpg`
        try:
            f.truncate(1 << 40)
        except OSError:
            pytest.skip("this file system cannot hold a 1 TB sparse file")
    with pytest.raises(ImageTooLargeError, match="1.1 TB.*--max-megapixels"):
        imageio.decode(huge)
    assert imageio.max_file_bytes(250) < (1 << 40)
    small = tmp_path / "s.png"
    small.write_bytes(encode("PNG", Image.new("RGB", (4, 4))))
    assert imageio.read_file(small, max_megapixels=1) == small.read_bytes()


def _patch_tiff_entry(data: bytes, page: int, tag: int, *, new_tag: int | None = None,
                      value: int | None = None) -> bytes:
    """Rewrite one directory entry of page ``page`` of a little-endian TIFF."""
    b = bytearray(data)
    (ifd,) = struct.unpack("<I", b[4:8])
    for _ in range(page):
        (count,) = struct.unpack("<H", b[ifd : ifd + 2])
        (ifd,) = struct.unpack("<I", b[ifd + 2 + 12 * count : ifd + 6 + 12 * count])
    (count,) = struct.unpack("<H", b[ifd : ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", b[entry : entry + 2])[0] == tag:
            if new_tag is not None:
                b[entry : entry + 2] = struct.pack("<H", new_tag)
            if value is not None:
                b[entry + 8 : entry + 12] = struct.pack("<I", value)
    return bytes(b)


@pytest.mark.parametrize(("tag", "change"), [
    (256, {"new_tag": 0xFFFF}),  # no ImageWidth: Pillow raises TypeError on reaching the page
    (259, {"value": 0xFFFF}),  # unknown compression: KeyError
    (262, {"value": 99}),  # unknown photometric interpretation: SyntaxError
])
def test_damagedtiff_pages(tag: int, change: dict[str, int]) -> None:
    data = tiff_pages()
    # The first page damaged: a corrupt TIFF (it was "not an image").
    with pytest.raises(DecodeError, match="corrupt TIFF.*re-export"):
        imageio.decode(_patch_tiff_entry(data, 0, tag, **change))
    # A later page damaged (counting the pages raised the error itself): the first page is still
    # cut out, with a warning.
    decoded = imageio.decode(_patch_tiff_entry(data, 1, tag, **change))
    assert decoded.size == (16, 12) and decoded.pixels[0, 0, 0] == 200
    assert any("damaged pages" in w for w in decoded.warnings)


def test_an_icc_tag_damaged_into_a_number_is_ignored() -> None:
    buf = io.BytesIO()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(buf, "TIFF", icc_profile=icc)
    b = bytearray(buf.getvalue())
    (ifd,) = struct.unpack("<I", b[4:8])
    (count,) = struct.unpack("<H", b[ifd : ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", b[entry : entry + 2])[0] == 34675:  # InterColorProfile
            b[entry + 2 : entry + 8] = struct.pack("<HI", 4, 1)  # now one LONG: Pillow gives an int
    decoded = imageio.decode(bytes(b))
    assert decoded.icc_profile is None and any("ICC" in w for w in decoded.warnings)
    rgba = np.dstack([decoded.pixels, np.full((6, 8), 255, np.uint8)])
    assert imageio.encode(rgba, format="png", icc_profile=decoded.icc_profile)  # encoding it raised TypeError


def test_a_damaged_icc_profile_is_ignored_not_fatal() -> None:
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[16] = 0xA6  # the colour space signature ("RGB "), not ASCII any more: Pillow raised UnicodeDecodeError
    decoded = imageio.decode(encode("PNG", Image.new("RGB", (8, 8), (10, 20, 30)), icc_profile=bytes(icc)))
    assert decoded.pixels[0, 0].tolist() == [10, 20, 30]
    assert decoded.icc_profile is None and any("ICC" in w for w in decoded.warnings)


def test_whatever_a_decoder_raises_becomes_a_decode_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kw: object) -> None:
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(imageio, "_is_16bit_color", explode)
    with pytest.raises(DecodeError, match=r"corrupt \(error: unpack"):
        imageio.decode(encode("PNG", Image.new("RGB", (4, 4))))

    def no_memory(*args: object, **kw: object) -> None:
        raise MemoryError

    monkeypatch.setattr(imageio, "_is_16bit_color", no_memory)
    with pytest.raises(ImageTooLargeError, match="not enough memory.*--max-megapixels"):
        imageio.decode(encode("PNG", Image.new("RGB", (4, 4))))


def test_directory_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="folder"):
        imageio.decode(tmp_path)
    with pytest.raises(DecodeError, match="cannot read"):
        imageio.decode(tmp_path / "nope.png")


# --- images as users really have them ---------------------------------------------------------


def test_content_is_sniffed_not_the_extension() -> None:
    decoded = imageio.decode(PHOTOS / "plants-1.jpg")
    assert decoded.format == "PNG"
    assert decoded.has_alpha and decoded.pixels.shape[2] == 4


def test_exif_orientation_applied() -> None:
    im = Image.new("RGB", (60, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    decoded = imageio.decode(encode("JPEG", im, exif=exif.tobytes(), quality=95))
    assert decoded.size == (20, 60)
    top = decoded.pixels[:5].reshape(-1, 3).mean(axis=0)
    assert top[2] > 200 and top[0] < 60  # the left strip is now on top


def test_cmyk_jpeg_becomes_srgb_and_says_so() -> None:
    im = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red in CMYK
    decoded = imageio.decode(encode("JPEG", im))
    assert decoded.pixels.shape == (32, 32, 3)
    r, g, b = decoded.pixels.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60
    assert any("CMYK" in w for w in decoded.warnings)
    assert decoded.icc_profile is None


def test_16bit_png_keeps_16_bits() -> None:
    import cv2

    ramp = (np.linspace(0, 65535, 256, dtype=np.float64)[None, :, None] * np.ones((8, 1, 3))).astype(np.uint16)
    ok, buf = cv2.imencode(".png", ramp)
    assert ok
    decoded = imageio.decode(buf.tobytes())
    assert decoded.bit_depth == 16
    assert len(np.unique(decoded.pixels[0, :, 0])) == 256  # no banding to 8 bits
    assert decoded.srgb8.dtype == np.uint8


def test_16bit_grayscale_png() -> None:
    gray = (np.arange(64 * 64, dtype=np.uint32) * 16).reshape(64, 64).astype(np.uint16)
    decoded = imageio.decode(encode("PNG", Image.fromarray(gray)))
    assert decoded.bit_depth == 16 and decoded.pixels.shape == (64, 64, 3)
    assert np.array_equal(decoded.pixels[..., 0], gray)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "1", "RGBA"])
def test_modes_become_rgb_or_rgba(mode: str) -> None:
    im = Image.new("RGB", (16, 16), (10, 200, 30)).convert(mode)
    if mode == "P":
        im.info["transparency"] = 0
    decoded = imageio.decode(encode("PNG", im, **({"transparency": 0} if mode == "P" else {})))
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.shape[2] == (4 if mode in ("LA", "P", "RGBA") else 3)


def test_animated_gif_gives_first_frame_with_warning() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    decoded = imageio.decode(buf.getvalue())
    assert any("first frame" in w and "3 frames" in w for w in decoded.warnings)
    assert decoded.pixels[..., 0].mean() > 200  # red: the first frame


def test_heic_is_read() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    im = Image.new("RGB", (64, 48), (200, 100, 50))
    buf = io.BytesIO()
    try:
        im.save(buf, "HEIF", quality=90)
    except (KeyError, OSError, ValueError) as exc:  # a libheif build without an encoder
        pytest.skip(f"this pillow-heif {pillow_heif.__version__} cannot encode HEIF: {exc}")
    decoded = imageio.decode(buf.getvalue())
    assert decoded.format in ("HEIF", "HEIC") and decoded.size == (64, 48)


def test_non_srgb_profile_kept_and_model_sees_srgb() -> None:
    decoded = imageio.decode(PHOTOS / "animal-2.jpg")
    assert decoded.icc_profile is not None
    assert not np.array_equal(decoded.srgb8, decoded.pixels)  # converted for the model only
    srgb = imageio.decode(PHOTOS / "animal-2.jpg", color="srgb")
    assert srgb.icc_profile is None and np.array_equal(srgb.pixels, srgb.srgb8)


# --- encoding -----------------------------------------------------------------------------------


def _rgba(h: int = 24, w: int = 32, dtype: type = np.uint8) -> np.ndarray:
    rng = np.random.default_rng(0)
    top = 65535 if dtype == np.uint16 else 255
    return rng.integers(0, top + 1, size=(h, w, 4), dtype=np.int64).astype(dtype)


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_lossless_roundtrip_and_determinism(fmt: str) -> None:
    rgba = _rgba()
    data = imageio.encode(rgba, format=fmt)
    assert data == imageio.encode(rgba, format=fmt)
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    assert np.array_equal(back, rgba)  # WebP 'exact' keeps colours under transparency


def test_16bit_png_roundtrip_with_icc() -> None:
    import cv2

    rgba = _rgba(dtype=np.uint16)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = imageio.encode(rgba, format="png", icc_profile=icc)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[..., [2, 1, 0, 3]]
    assert np.array_equal(back, rgba)
    assert Image.open(io.BytesIO(data)).info.get("icc_profile") == icc


def test_jpeg_flattens_over_background() -> None:
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent
    white = Image.open(io.BytesIO(imageio.encode(rgba, format="jpeg")))
    assert white.mode == "RGB" and np.asarray(white).min() >= 250
    red = Image.open(io.BytesIO(imageio.encode(rgba, format="jpeg", flatten=(255, 0, 0))))
    assert np.asarray(red)[..., 0].min() >= 250 and np.asarray(red)[..., 1].max() <= 5


def test_mask_output_is_the_alpha() -> None:
    rgba = _rgba()
    mask = Image.open(io.BytesIO(imageio.encode(rgba, format="png", mask=True)))
    assert mask.mode == "L" and np.array_equal(np.asarray(mask), rgba[..., 3])


def test_16bit_mask_png() -> None:
    rgba = _rgba(dtype=np.uint16)
    mask = Image.open(io.BytesIO(imageio.encode(rgba, format="png", mask=True)))
    assert mask.mode.startswith("I;16") and np.array_equal(np.asarray(mask), rgba[..., 3])
