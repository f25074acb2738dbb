"""decode -> model -> refine at full resolution -> compose RGBA -> encode.

:func:`remove_background` is the library's front door. :func:`stream` runs the
same steps over many inputs with decoding overlapped with inference.
:func:`cut_from_mask` starts from a mask a person fixed (:mod:`alphacut.startmask`)
instead of the model's.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from . import imageio
from .compose import listing_canvas
from .confidence import Confidence, edge_confidence
from .errors import AlphacutError, InputError, input_failure
from .graphs import edge_params
from .imageio import DecodedImage
from .options import Options
from .session import ModelSession, Refines, default_refiner, default_session
from .startmask import MaskInput, check_aspect, read_start_mask

__all__ = ["Cutout", "ImageInput", "cut", "cut_batch", "cut_from_mask", "remove_background", "stream"]

ImageInput = bytes | str | Path | Image.Image | np.ndarray | DecodedImage
T = TypeVar("T")


@dataclass
class Cutout:
    """The result for one image.

    ``rgba`` holds the estimated foreground colours and the refined alpha, HxWx4,
    uint8 (or uint16 for 16-bit inputs). ``alpha`` is the float32 matte in [0, 1].
    """

    rgba: np.ndarray
    alpha: np.ndarray
    confidence: Confidence
    icc_profile: bytes | None = None
    source_format: str = "unknown"
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    photo: np.ndarray | None = field(default=None, repr=False)  # the decoded pixels (a blurred listing background)
    options: Options | None = None  # what it was cut out with: encode's default

    @property
    def size(self) -> tuple[int, int]:
        return self.rgba.shape[1], self.rgba.shape[0]

    @property
    def image(self) -> Image.Image:
        """The cutout as an 8-bit RGBA PIL image."""
        rgba = self.rgba
        if rgba.dtype == np.uint16:
            rgba = imageio.to_8bit(rgba)
        return Image.fromarray(rgba, "RGBA")

    def encode(self, options: Options | None = None, *, background_image: np.ndarray | None = None) -> bytes:
        """Encode as ``options`` say (format, mask, background, quality; a listing canvas when
        any listing option is given: see :meth:`listing`); by default as the options it was
        cut out with."""
        options = options or self.options or Options()
        listing = options.listing or background_image is not None
        pixels = self.listing(options, background_image=background_image) if listing else self.rgba
        return imageio.encode(
            pixels,
            format=options.format,
            icc_profile=self.icc_profile,
            flatten=options.flatten_color,
            mask=options.mask,
            quality=options.quality,
        )

    def listing(self, options: Options, *, background_image: np.ndarray | None = None) -> np.ndarray:
        """The listing photo ``options`` describe (crop, canvas, background, shadow): uint8 HxWx4.

        ``background_image`` (HxWx3 uint8) is the image behind the subject instead of
        reading ``options.background_image``. A layout warning (no subject found) is
        added to :attr:`warnings`.
        """
        canvas, plan = listing_canvas(self.rgba, options, photo=self.photo, background_image=background_image)
        self.warnings.extend(w for w in plan.warnings if w not in self.warnings)
        return canvas


def remove_background(
    image: ImageInput,
    *,
    options: Options | None = None,
    session: ModelSession | None = None,
    start_mask: MaskInput | None = None,
) -> Cutout:
    """Cut the subject out of ``image`` (a path, bytes, PIL image or HxWx3/4 array).

    Pass a :class:`~alphacut.session.Session` to choose the model, device or threads;
    without one, the default model's session is loaded on the first call and shared
    by the later ones (:func:`~alphacut.session.default_session`). With ``start_mask`` and
    no session the model is not loaded at all (:func:`~alphacut.session.default_refiner`).

    ``start_mask`` (a path, bytes, PIL image or HxW array of any size with the photo's
    aspect ratio; 0 = background, 255 = subject; see :mod:`alphacut.startmask`) is a
    corrected mask to start from instead of the model's: the edges and colours are
    refined from it, the model is not called, and the confidence scores it.
    """
    options = options or Options()
    decoded = _decode(image, options)
    if start_mask is not None:
        mask = read_start_mask(start_mask, max_megapixels=options.max_megapixels)
        return cut_from_mask(decoded, mask, options=options, session=session or default_refiner())
    return cut(decoded, options=options, session=session or default_session())


def _decode(image: ImageInput, options: Options) -> DecodedImage:
    if isinstance(image, DecodedImage):
        return image
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype not in (np.uint8, np.uint16):
            raise InputError(
                f"expected an HxW, HxWx3 or HxWx4 uint8/uint16 array, got {image.dtype} {image.shape}"
            )
        image = Image.fromarray(image) if image.dtype == np.uint8 else image
        if isinstance(image, np.ndarray):  # 16-bit arrays: no PIL mode holds RGB(A) at 16 bits
            px = np.ascontiguousarray(image)
            srgb8 = imageio.to_8bit(px[..., :3])
            return DecodedImage(pixels=px, srgb8=srgb8, icc_profile=None, format="array")
    return imageio.decode(image, max_megapixels=options.max_megapixels, color=options.color)


def cut(decoded: DecodedImage, *, options: Options, session: ModelSession) -> Cutout:
    """Run the model and the post-processing on an already decoded image."""
    t0 = time.perf_counter()
    in_alpha, model_in = _model_input(decoded)
    mask = session.predict_mask(model_in)
    return _finish(decoded, in_alpha, mask, options, session, {"model": time.perf_counter() - t0})


def cut_from_mask(decoded: DecodedImage, mask: np.ndarray, *, options: Options, session: Refines) -> Cutout:
    """:func:`cut` from a given mask (float32 HxW in [0, 1], any size with the photo's aspect
    ratio: :func:`~alphacut.startmask.read_start_mask`) instead of the model's; the model is not called."""
    check_aspect(mask, decoded.size)
    graph_mask = np.ascontiguousarray(mask, dtype=np.float32)[None, None]
    return _finish(decoded, _input_alpha(decoded), graph_mask, options, session, {})


def cut_batch(decoded: Sequence[DecodedImage], *, options: Options, session: ModelSession) -> list[Cutout]:
    """:func:`cut` for several images with one model call (faster on a GPU; the model
    must accept a batch dimension larger than one, see :func:`alphacut.session.batched_model_path`)."""
    t0 = time.perf_counter()
    prepared = [_model_input(d) for d in decoded]
    masks = _predict(session, prepared)
    share = (time.perf_counter() - t0) / len(decoded)
    return [
        _finish(d, in_alpha, masks[i : i + 1], options, session, {"model": share})
        for i, (d, (in_alpha, _)) in enumerate(zip(decoded, prepared))
    ]


def _model_input(decoded: DecodedImage) -> tuple[np.ndarray | None, np.ndarray]:
    in_alpha = _input_alpha(decoded)
    return in_alpha, _over_white(decoded.srgb8, in_alpha)


def _predict(session: ModelSession, prepared: Sequence[tuple[np.ndarray | None, np.ndarray]]) -> np.ndarray:
    """The masks (Nx1xSxS) of images prepared by :func:`_model_input`, in one model call."""
    if len(prepared) == 1:
        return session.predict_mask(prepared[0][1])
    return session.infer(np.concatenate([session.preprocess(m) for _, m in prepared]))


def _finish(
    decoded: DecodedImage,
    in_alpha: np.ndarray | None,
    mask: np.ndarray,
    options: Options,
    session: Refines,
    timings: dict[str, float],
) -> Cutout:
    t1 = time.perf_counter()
    # Refinement and colours work in the output's colour space, the model in sRGB.
    # The graphs ignore a 4th channel: 8-bit pixels go in as they are (no copy).
    opaque_8bit = in_alpha is None and decoded.bit_depth == 8
    photo = decoded.pixels if opaque_8bit else _over_white(decoded.pixels8, in_alpha)
    params = edge_params(options.edges, refine=options.refine, foreground=options.foreground)
    alpha, cutout, _ = session.postprocess(photo, mask, params)
    if in_alpha is not None:
        # Transparency the input already had stays transparent.
        alpha = alpha * in_alpha
    rgba = _compose(decoded, alpha, cutout)
    timings["postprocess"] = time.perf_counter() - t1
    return Cutout(
        rgba=rgba,
        alpha=alpha,
        confidence=edge_confidence(mask),
        icc_profile=decoded.icc_profile,
        source_format=decoded.format,
        warnings=list(decoded.warnings),
        timings=timings,
        photo=decoded.pixels,  # a reference: made 8-bit only if a blurred background needs it
        options=options,
    )


def _input_alpha(decoded: DecodedImage) -> np.ndarray | None:
    if not decoded.has_alpha:
        return None
    a = decoded.pixels[..., 3]
    scale = 65535.0 if a.dtype == np.uint16 else 255.0
    if a.min() == scale:
        return None  # an alpha channel that is opaque everywhere changes nothing
    return a.astype(np.float32) / scale


def _over_white(rgb8: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """What is under transparent pixels is arbitrary: show the model the image over white."""
    if alpha is None:
        return rgb8[..., :3]
    a = alpha[..., None]
    over: np.ndarray = np.round(rgb8[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a)).astype(np.uint8)
    return over


def _compose(decoded: DecodedImage, alpha: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """The output pixels from the matte and the uint8 HxWx4 cutout ``postprocess`` gave."""
    if decoded.bit_depth == 16:
        # Keep the input's 16 bits: apply the foreground estimate as a correction of
        # the 8-bit view the graph saw, so untouched pixels keep full precision.
        orig = decoded.pixels[..., :3].astype(np.float32) / 65535.0
        colours = rgba[..., :3].astype(np.float32) / 255.0
        seen = decoded.pixels8.astype(np.float32) / 255.0
        rgb = np.clip(orig + (colours - seen), 0.0, 1.0)
        out = np.empty((*alpha.shape, 4), np.uint16)
        out[..., :3] = np.round(rgb * 65535.0)
        out[..., 3] = np.round(alpha * 65535.0)
        out[out[..., 3] == 0, :3] = 0  # fully transparent: no colour, as the graph gives
        return out
    if decoded.has_alpha:  # the matte was multiplied by the input's alpha
        np.rint(alpha * 255.0, out=rgba[..., 3], casting="unsafe")
        rgba[rgba[..., 3] == 0, :3] = 0
    return rgba


def stream(
    items: Iterable[T],
    *,
    read: Callable[[T], ImageInput],
    options: Options,
    session: ModelSession,
    prefetch: int = 2,
    batch_size: int = 1,
    post_workers: int = 0,
    model_workers: int = 1,
) -> Iterator[tuple[T, Cutout | AlphacutError]]:
    """Cut out many images in order, decoding the next ones while the model runs.

    Each item yields ``(item, Cutout)`` or ``(item, error)``: one bad input never
    stops the rest. ``batch_size`` images go through the model in one call (see
    :func:`cut_batch`); ``post_workers`` threads run the full-resolution
    post-processing while the model works on the next images (0: in line);
    ``model_workers`` threads call the model at the same time (on a CPU, two
    single-threaded calls get more done than one call with two threads).
    """
    if batch_size < 1 or post_workers < 0 or prefetch < 0 or model_workers < 1:
        raise ValueError(
            f"bad stream sizes: batch_size={batch_size}, post_workers={post_workers}, prefetch={prefetch},"
            f" model_workers={model_workers}"
        )

    def load(item: T) -> DecodedImage:
        return _decode(read(item), options)

    Slot = Future  # holds a Cutout or the input's error
    depth = max(prefetch, batch_size * model_workers)
    pending: deque[tuple[T, Future[DecodedImage]]] = deque()
    done: deque[tuple[T, Future[Cutout | AlphacutError]]] = deque()  # results in input order
    group: list[tuple[DecodedImage, Future[Cutout | AlphacutError]]] = []
    iterator = iter(items)
    in_flight = model_workers + post_workers + 1
    with ThreadPoolExecutor(max_workers=max(1, prefetch), thread_name_prefix="alphacut-decode") as pool, \
            ThreadPoolExecutor(max_workers=max(1, post_workers), thread_name_prefix="alphacut-post") as post, \
            ThreadPoolExecutor(max_workers=model_workers, thread_name_prefix="alphacut-model") as model:

        def fill() -> None:
            while len(pending) < depth + 1:
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                pending.append((item, pool.submit(load, item)))

        def finish_one(decoded: DecodedImage, in_alpha: np.ndarray | None, mask: np.ndarray) -> Cutout | AlphacutError:
            try:
                return _finish(decoded, in_alpha, mask, options, session, {})
            except Exception as exc:  # noqa: BLE001 - any failure is this input's, the run goes on
                return input_failure(exc)

        def process(members: list[tuple[DecodedImage, Future[Cutout | AlphacutError]]]) -> None:
            try:
                t0 = time.perf_counter()
                try:
                    prepared = [_model_input(d) for d, _ in members]
                    masks = _predict(session, prepared)
                except Exception as exc:  # noqa: BLE001 - the group's inputs fail, the run goes on
                    error = input_failure(exc)
                    for _, slot in members:
                        slot.set_result(error)
                    return
                share = (time.perf_counter() - t0) / len(members)
                for i, ((decoded, slot), (in_alpha, _)) in enumerate(zip(members, prepared)):
                    mask = masks[i : i + 1]
                    if post_workers:
                        fut = post.submit(finish_one, decoded, in_alpha, mask)
                        fut.add_done_callback(functools.partial(_settle, slot, model_seconds=share))
                    else:
                        result = finish_one(decoded, in_alpha, mask)
                        if isinstance(result, Cutout):
                            result.timings = {"model": share, **result.timings}
                        slot.set_result(result)
            except BaseException as exc:  # a bug, not a bad input: hand it to the consumer
                for _, slot in members:
                    if not slot.done():
                        slot.set_exception(exc)
                raise

        def run_group() -> None:
            members = list(group)
            group.clear()
            if model_workers > 1:
                model.submit(process, members)
            else:
                process(members)

        fill()
        while pending:
            item, future = pending.popleft()
            fill()
            slot: Future[Cutout | AlphacutError] = Slot()
            done.append((item, slot))
            try:
                group.append((future.result(), slot))
            except Exception as exc:  # noqa: BLE001 - a bad input becomes its error record
                slot.set_result(input_failure(exc, doing="reading"))
            if len(group) >= batch_size or (group and not pending):
                run_group()
            # Hand out finished results; wait only for work already handed to a thread.
            while done and (done[0][1].done() or (not group and len(done) > in_flight)):
                head, result = done.popleft()
                yield head, result.result()
        if group:
            run_group()
        while done:
            head, result = done.popleft()
            yield head, result.result()


def _settle(slot: Future[Cutout | AlphacutError], fut: Future[Cutout | AlphacutError], *, model_seconds: float) -> None:
    exc = fut.exception()
    if exc is not None:  # a bug, not a bad input: surface it to the consumer
        slot.set_exception(exc)
        return
    result = fut.result()
    if isinstance(result, Cutout):
        result.timings = {"model": model_seconds, **result.timings}
    slot.set_result(result)
