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


@pytest.mark.model
@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
def test_lemur_composites_match_the_true_alpha(session: Session, background: str) -> None:
    photo, truth = lemur(background)
    cutout = remove_background(photo, session=session)
    assert cutout.alpha.shape == truth.shape
    assert iou(cutout.alpha, truth) >= 0.93
    assert float(np.abs(cutout.alpha - truth).mean()) <= 0.04


@pytest.mark.model
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


@pytest.mark.model
def test_no_subject_stays_transparent(session: Session) -> None:
    """A flat image has no subject: the matte must not be stretched into an opaque blob."""
    flat = np.full((300, 400, 3), 128, np.uint8)
    cutout = remove_background(flat, session=session)
    assert cutout.alpha.mean() < 0.2


@pytest.mark.model
def test_every_input_kind_gives_the_same_cutout(session: Session) -> None:
    path = DATA / "photos/car-3.jpg"
    by_path = remove_background(path, session=session)
    by_bytes = remove_background(path.read_bytes(), session=session)
    by_pil = remove_background(Image.open(path), session=session)
    by_array = remove_background(np.asarray(Image.open(path).convert("RGB")), session=session)
    for other in (by_bytes, by_pil, by_array):
        assert np.array_equal(other.rgba, by_path.rgba)


@pytest.mark.model
def test_exports_are_deterministic(session: Session) -> None:
    path = DATA / "photos/girl-1.jpg"
    first = remove_background(path, session=session)
    second = remove_background(path, session=session)
    for fmt in ("png", "webp", "jpeg"):
        opts = Options(format=fmt)  # type: ignore[arg-type]
        assert first.encode(opts) == second.encode(opts)


@pytest.mark.model
def test_existing_transparency_is_kept(session: Session) -> None:
    plants = decode(DATA / "photos/plants-1.jpg")  # a PNG with an (opaque) alpha channel
    assert plants.has_alpha
    rgba = np.asarray(Image.open(DATA / "photos/girl-1.jpg").convert("RGBA")).copy()
    rgba[:, 250:350, 3] = 0  # a transparent band through the subject
    rgba[:, 250:350, :3] = 77  # with arbitrary colours under it
    cutout = remove_background(rgba, session=session)
    assert cutout.rgba[:, 250:350, 3].max() == 0
    assert cutout.rgba[:, 250:350, :3].max() == 0, "no colour where the cutout is transparent"
    assert cutout.alpha[:, 200:250].mean() > 0.2, "the subject beside the band is still found"


@pytest.mark.model
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
    clear = out[..., 3] == 0
    assert clear.mean() > 0.1 and out[..., :3][clear].max() == 0, "no colour where the cutout is transparent"


@pytest.mark.model
def test_options_change_the_result(session: Session) -> None:
    photo, _ = lemur("green")
    refined = remove_background(photo, session=session)
    raw = remove_background(photo, options=Options(refine=False, foreground=False), session=session)
    assert not np.array_equal(refined.alpha, raw.alpha)
    # Without colour estimation the RGB is the photo itself (none where alpha is 0).
    visible = raw.rgba[..., 3] > 0
    assert 0.1 < visible.mean() < 0.9
    assert np.array_equal(raw.rgba[visible][:, :3], photo[visible])
    assert raw.rgba[~visible][:, :3].max() == 0


@pytest.mark.model
def test_edge_styles_do_what_they_say(session: Session) -> None:
    """``edges``: auto's matte follows the lemur's fur much more closely than the same
    refinement without it, and soft at least as closely; crisp leaves fewer partly
    transparent pixels (and is the wrong choice for fur: its error is the highest)."""
    from scipy import ndimage

    from alphacut.graphs import edge_params

    for background in ("real", "green", "blue", "red"):
        photo, truth = lemur(background)
        band = ndimage.binary_dilation((truth > 0.02) & (truth < 0.98), iterations=6)
        alphas = {
            edges: remove_background(photo, options=Options(edges=edges), session=session).alpha
            for edges in ("auto", "crisp", "soft")
        }
        alphas["no matte"] = session.postprocess(photo, session.predict_mask(photo), edge_params("auto", matting=False))[0]
        error = {k: float(np.abs(a - truth)[band].mean()) for k, a in alphas.items()}
        partial = {k: int(((a > 0.1) & (a < 0.9)).sum()) for k, a in alphas.items()}
        assert error["auto"] < 0.9 * error["no matte"] and error["auto"] < 0.8 * error["crisp"], (background, error)
        assert error["soft"] <= 1.01 * error["auto"], (background, error)
        assert partial["crisp"] < 0.85 * partial["auto"], (background, partial)


@pytest.mark.model
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


# --- a corrected mask as the starting point (start_mask) ---------------------------------------------


def _photo(w: int = 120, h: int = 80) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _box_mask(w: int, h: int) -> np.ndarray:
    """uint8 HxW: a subject box with a soft ramp on its left side (so the forms below can differ)."""
    m = np.zeros((h, w), np.uint8)
    m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
    m[h // 4 : 3 * h // 4, w // 4 - 10 : w // 4] = np.linspace(0, 250, 10).astype(np.uint8)
    return m


def test_start_mask_is_refined_instead_of_the_models_mask() -> None:
    """The model is not called; post-processing gets the given mask at its own size, as 0..1
    floats; the confidence scores that mask."""
    from alphacut.confidence import edge_confidence

    fake = FakeSession()
    mask = _box_mask(60, 40)  # half the photo's size: any size with its aspect ratio
    cutout = remove_background(_photo(), session=fake, start_mask=mask)
    assert fake.calls == 0, "the model was not called"
    (given,) = fake.post_masks
    assert given.shape == (1, 1, 40, 60) and given.dtype == np.float32
    assert np.array_equal(given[0, 0], mask.astype(np.float32) / 255.0)
    assert cutout.size == (120, 80)
    assert cutout.confidence == edge_confidence(mask.astype(np.float32) / 255.0)
    assert "model" not in cutout.timings
    # Without a start mask the model runs (the same session).
    remove_background(_photo(), session=fake)
    assert fake.calls == 1


def test_start_mask_without_a_session_loads_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library call refines a given mask with the post-processing graphs alone: the default
    session (which loads, and may fetch, the model) is never made."""
    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    from alphacut.confidence import edge_confidence

    monkeypatch.setattr("alphacut.session.Session.__init__", no_model)
    monkeypatch.setattr("alphacut.session._default", [])  # as if no call had made it yet
    mask = _box_mask(120, 80)
    cutout = remove_background(_photo(), start_mask=mask)
    alpha = cutout.alpha
    assert alpha[40, 60] == 1.0 and alpha[5, 5] == 0.0 and alpha[75, 115] == 0.0
    assert cutout.confidence == edge_confidence(mask.astype(np.float32) / 255.0)
    with pytest.raises(AssertionError, match="the model was loaded"):
        remove_background(_photo())


def test_default_refiner_is_the_default_session_once_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that made the default session does not build the post-processing graphs twice."""
    from alphacut import session as session_module

    fake = FakeSession()
    monkeypatch.setattr("alphacut.session._default", [fake])
    assert session_module.default_refiner() is fake


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_start_mask_forms_all_read_the_same(tmp_path: Path) -> None:
    """Arrays (uint8, uint16, bool, float 0..1, HxWx1), a PIL image, bytes and a path; an RGBA
    cutout by its alpha, a grey mask saved as opaque RGBA by its luminance, a 16-bit grey PNG."""
    from alphacut.startmask import read_start_mask

    m8 = _box_mask(60, 40)
    want = m8.astype(np.float32) / 255.0
    grey = Image.fromarray(m8, "L")
    path = tmp_path / "fixed-mask.png"
    grey.save(path)
    cutout_png = Image.fromarray(np.dstack([_photo(60, 40), m8]), "RGBA")  # colours anything, alpha the mask
    opaque_rgba = Image.fromarray(np.dstack([m8, m8, m8, np.full_like(m8, 255)]), "RGBA")
    sixteen = Image.fromarray(m8.astype(np.uint16) * 257)  # mode I;16
    forms = {
        "uint8": m8,
        "uint16": m8.astype(np.uint16) * 257,
        "float": want,
        "HxWx1": m8[..., None],
        "HxWx4 array": np.asarray(cutout_png),
        "PIL L": grey,
        "bytes": _png(grey),
        "path": path,
        "str path": str(path),
        "RGBA cutout": _png(cutout_png),
        "opaque RGBA": _png(opaque_rgba),
        "16-bit PNG": _png(sixteen),
    }
    for name, form in forms.items():
        got = read_start_mask(form)
        assert got.dtype == np.float32 and got.shape == (40, 60), name
        assert float(np.abs(got - want).max()) <= 1e-6, name
    binary = read_start_mask(m8 > 127)
    assert np.array_equal(binary, (m8 > 127).astype(np.float32))
    # A colour mask: its luminance (Rec. 601), as Pillow's convert("L").
    red = np.zeros((40, 60, 3), np.uint8)
    red[..., 0] = 200
    assert read_start_mask(red)[0, 0] == pytest.approx(0.299 * 200 / 255, abs=1e-6)


def test_start_mask_refusals_say_what_to_do() -> None:
    from alphacut.errors import DecodeError, InputError

    fake = FakeSession()
    photo = _photo(120, 80)  # 1.5
    with pytest.raises(InputError, match=r"aspect ratios .* differ by 1\.7%, more than 1%") as info:
        remove_background(photo, session=fake, start_mask=np.zeros((40, 61), np.uint8))  # 1.525
    assert "120x80" in str(info.value) and "61x40" in str(info.value)
    with pytest.raises(InputError, match="aspect"):
        remove_background(photo, session=fake, start_mask=np.zeros((120, 80), np.uint8))  # rotated
    # Within 1 %: a mask of a copy a pixel narrower still fits.
    remove_background(photo, session=fake, start_mask=np.zeros((80, 119), np.uint8))
    for bad, words in [
        (np.full((40, 60), 255.0, np.float32), "divide a 0..255 mask by 255"),
        (np.full((40, 60), np.nan, np.float32), "values in [0, 1]"),
        (np.zeros((40, 60), np.int64), "ambiguous"),
        (np.zeros((40, 60, 2), np.uint8), "HxW"),
        (b"not an image at all", "not an image"),
    ]:
        with pytest.raises(InputError, match="^the start mask") as info:
            remove_background(photo, session=fake, start_mask=bad)
        assert words in str(info.value), (words, str(info.value))
    assert isinstance(info.value, DecodeError)
    assert fake.calls == 0 and len(fake.post_masks) == 1, "only the mask that fits was refined"


@pytest.mark.model
def test_start_mask_with_a_region_removed(session: Session) -> None:
    """The model's own mask with a part erased (what a person fixing it does) gives a cutout
    with nothing left there, and the model's cutout everywhere else."""
    path = DATA / "photos/girl-1.jpg"
    model = remove_background(path, session=session)
    h = model.alpha.shape[0]
    assert model.alpha[: h // 2].mean() > 0.05, "the subject reaches into the erased half"
    fixed = np.rint(model.alpha * 255).astype(np.uint8)
    fixed[: h // 2] = 0
    cutout = remove_background(path, session=session, start_mask=Image.fromarray(fixed, "L"))
    assert float(cutout.alpha[: h // 2 - 2].max()) <= 1 / 255, "nothing left where the mask was erased"
    rest = slice(h // 2 + 8, None)
    assert iou(cutout.alpha[rest], model.alpha[rest]) >= 0.98
    assert float(np.abs(cutout.alpha[rest] - model.alpha[rest]).mean()) <= 0.01
    # The model's own mask given back gives the model's cutout.
    same = remove_background(path, session=session, start_mask=model.alpha)
    assert iou(same.alpha, model.alpha) >= 0.98
