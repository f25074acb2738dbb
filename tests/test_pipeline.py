"""The real ISNet model end to end on real photos, checked with tolerances."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fake_session import FakeSession
from PIL import Image

from alphacut import Options, Session, remove_background
from alphacut.graphs import PostprocessParams
from alphacut.imageio import decode

pytestmark = pytest.mark.model
DATA = Path(__file__).parent / "data"
BACKGROUNDS = {
    "real": None,
    "red": (220, 30, 30),
    "green": (20, 200, 40),
    "blue": (30, 40, 220),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}


def lemur(background: str) -> tuple[np.ndarray, np.ndarray]:
    """A photo with known truth: the lemur's foreground and alpha over ``background``."""
    fg = np.asarray(Image.open(DATA / "matting/lemur_foreground.png").convert("RGB"), np.float32)
    alpha = np.asarray(Image.open(DATA / "matting/lemur_alpha.png").convert("L"), np.float32) / 255.0
    colour = BACKGROUNDS[background]
    if colour is None:
        bg = np.asarray(Image.open(DATA / "matting/lemur_background.png").convert("RGB"), np.float32)
    else:
        bg = np.broadcast_to(np.array(colour, np.float32), fg.shape)
    photo = fg * alpha[..., None] + bg * (1.0 - alpha[..., None])
    return np.round(photo).astype(np.uint8), alpha


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a > 0.5, b > 0.5
    return float((x & y).sum() / max((x | y).sum(), 1))


@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
def test_lemur_composites_match_the_true_alpha(session: Session, background: str) -> None:
    photo, truth = lemur(background)
    cutout = remove_background(photo, session=session)
    assert cutout.alpha.shape == truth.shape
    assert iou(cutout.alpha, truth) >= 0.93
    assert float(np.abs(cutout.alpha - truth).mean()) <= 0.04


@pytest.mark.parametrize("name", ["girl-1.jpg", "car-3.jpg", "animal-2.jpg"])
def test_real_photos_give_a_plausible_soft_matte(session: Session, name: str) -> None:
    cutout = remove_background(DATA / "photos" / name, session=session)
    a = cutout.alpha
    assert a.dtype == np.float32 and np.isfinite(a).all()
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert 0.05 < a.mean() < 0.6, "the subject is a sizeable part of these photos, not all of it"
    assert ((a > 0.02) & (a < 0.98)).mean() < 0.15, "soft at edges and glass, not all over"
    assert (a > 0.98).mean() > 0.03 and (a < 0.02).mean() > 0.3
    assert not cutout.confidence.empty
    assert cutout.rgba.shape == (*a.shape, 4) and cutout.rgba.dtype == np.uint8
    assert np.array_equal(cutout.rgba[..., 3], np.round(a * 255).astype(np.uint8))


def test_no_subject_stays_transparent(session: Session) -> None:
    """A flat image has no subject: the matte must not be stretched into an opaque blob."""
    flat = np.full((300, 400, 3), 128, np.uint8)
    cutout = remove_background(flat, session=session)
    assert cutout.alpha.mean() < 0.2


def test_every_input_kind_gives_the_same_cutout(session: Session) -> None:
    path = DATA / "photos/car-3.jpg"
    by_path = remove_background(path, session=session)
    by_bytes = remove_background(path.read_bytes(), session=session)
    by_pil = remove_background(Image.open(path), session=session)
    by_array = remove_background(np.asarray(Image.open(path).convert("RGB")), session=session)
    for other in (by_bytes, by_pil, by_array):
        assert np.array_equal(other.rgba, by_path.rgba)


def test_exports_are_deterministic(session: Session) -> None:
    path = DATA / "photos/girl-1.jpg"
    first = remove_background(path, session=session)
    second = remove_background(path, session=session)
    for fmt in ("png", "webp", "jpeg"):
        opts = Options(format=fmt)  # type: ignore[arg-type]
        assert first.encode(opts) == second.encode(opts)


def test_existing_transparency_is_kept(session: Session) -> None:
    plants = decode(DATA / "photos/plants-1.jpg")  # a PNG with an (opaque) alpha channel
    assert plants.has_alpha
    rgba = np.asarray(Image.open(DATA / "photos/girl-1.jpg").convert("RGBA")).copy()
    rgba[:, 250:350, 3] = 0  # a transparent band through the subject
    rgba[:, 250:350, :3] = 0  # with arbitrary colours under it
    cutout = remove_background(rgba, session=session)
    assert cutout.rgba[:, 250:350, 3].max() == 0
    assert cutout.alpha[:, 200:250].mean() > 0.2, "the subject beside the band is still found"


def test_16bit_in_16bit_out(session: Session) -> None:
    import cv2

    rgb8 = np.asarray(Image.open(DATA / "photos/car-3.jpg").convert("RGB"))
    rgb16 = rgb8.astype(np.uint16) * 257 + np.random.default_rng(1).integers(0, 200, rgb8.shape).astype(np.uint16)
    ok, png = cv2.imencode(".png", rgb16[..., ::-1])
    assert ok
    cutout = remove_background(png.tobytes(), session=session)
    assert cutout.rgba.dtype == np.uint16
    out = cv2.imdecode(np.frombuffer(cutout.encode(Options()), np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape[2] == 4
    inside = cutout.alpha > 0.999
    # Where the subject is opaque, the 16-bit colours survive exactly (not rounded to 8 bits).
    assert np.abs(out[..., :3][..., ::-1][inside].astype(int) - rgb16[inside].astype(int)).max() <= 300
    assert len(np.unique(out[..., 0][inside] % 257)) > 50


def test_options_change_the_result(session: Session) -> None:
    photo, _ = lemur("green")
    refined = remove_background(photo, session=session)
    raw = remove_background(photo, options=Options(refine=False, foreground=False), session=session)
    assert not np.array_equal(refined.alpha, raw.alpha)
    # Without colour estimation the RGB is the photo itself.
    assert np.array_equal(raw.rgba[..., :3], photo)


def test_mask_and_jpeg_exports(session: Session) -> None:
    cutout = remove_background(DATA / "photos/girl-1.jpg", session=session)
    mask = Image.open(io.BytesIO(cutout.encode(Options(mask=True))))
    assert mask.mode == "L" and mask.size == cutout.size
    jpeg = Image.open(io.BytesIO(cutout.encode(Options(format="jpeg", background="#000000"))))
    assert jpeg.mode == "RGB" and jpeg.format == "JPEG"


class _FailingSession(FakeSession):
    """Runs out of memory on the model call for images 7 px wide, and post-processing raises on 9."""

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        if image.shape[1] == 7:
            raise MemoryError
        return super().predict_mask(image)

    def postprocess(
        self, image: np.ndarray, mask: np.ndarray, params: PostprocessParams
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if image.shape[1] == 9:
            raise KeyError("boom")
        return super().postprocess(image, mask, params)


@pytest.mark.parametrize("post_workers", [0, 1])
def test_stream_turns_any_failure_into_that_inputs_error(post_workers: int) -> None:
    from alphacut.errors import AlphacutError
    from alphacut.pipeline import stream

    widths = [8, 7, 8, 9, 8]
    images = [np.full((6, w, 3), 100, np.uint8) for w in widths]
    results = list(
        stream(
            range(len(images)),
            read=lambda i: images[i],
            options=Options(),
            session=_FailingSession(),
            post_workers=post_workers,
        )
    )
    assert [i for i, _ in results] == list(range(len(images)))
    kinds = [type(r).__name__ for _, r in results]
    assert kinds[0] == kinds[2] == kinds[4] == "Cutout", kinds
    assert isinstance(results[1][1], AlphacutError) and "memory" in str(results[1][1])
    assert isinstance(results[3][1], AlphacutError) and "KeyError" in str(results[3][1])
