"""The loop that cuts out many images and writes them, and its per-input boundary.

Whatever one input makes fail (a damaged file can make a decoder raise anything, a
huge one ``MemoryError``, a file where a folder should be ``NotADirectoryError``)
comes out of :func:`load_input` or :func:`write_output` as the
:class:`~alphacut.errors.AlphacutError` that input's record gets; the run carries on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .. import imageio
from ..errors import AlphacutError, input_failure
from ..fsutil import atomic_write
from ..imageio import DecodedImage
from ..options import Options
from ..pipeline import Cutout, stream
from ..session import ModelSession

__all__ = ["cut_and_write", "load_input", "write_output"]

T = TypeVar("T")
R = TypeVar("R")


def load_input(read: Callable[[], bytes] | bytes, options: Options) -> DecodedImage:
    """Read and decode one input: the per-input boundary of every run over many images.

    ``read`` returns the input's bytes (or is them). Whatever ``read`` or the decoders raise (bar ``KeyboardInterrupt`` and
    ``SystemExit``) comes out as the :class:`AlphacutError` the input's record gets.
    """
    try:
        data = read if isinstance(read, bytes) else read()
        return imageio.decode(data, max_megapixels=options.max_megapixels, color=options.color)
    except Exception as exc:
        raise input_failure(exc, doing="reading") from exc


def write_output(path: Path, cutout: Cutout, options: Options, *, overwrite: bool) -> None:
    """Encode ``cutout`` as ``options`` say and write it atomically to ``path``: the other
    side of the per-input boundary (see :func:`load_input`)."""
    try:
        atomic_write(path, cutout.encode(options), overwrite=overwrite)
    except Exception as exc:
        raise input_failure(exc, doing="writing") from exc


def cut_and_write(
    items: Iterable[T],
    *,
    read: Callable[[T], DecodedImage],
    save: Callable[[T, Cutout, float], R],
    failed: Callable[[T, AlphacutError, float], R],
    options: Options,
    session: ModelSession,
    batch_size: int = 1,
    prefetch: int = 2,
    post_workers: int = 1,
    model_workers: int = 1,
    writers: int = 1,
) -> Iterator[R]:
    """Cut out ``items`` in a pipeline (:func:`~alphacut.pipeline.stream`) and hand each
    cutout to ``save`` in a writer thread; yields what ``save`` (or, for an input that
    failed, ``failed``) returns, in input order, as soon as it is ready.

    Both get the seconds the pipeline spent on the item since the previous one. Memory is
    bounded: at most ``2 * writers + 1`` full-resolution cutouts wait to be written.
    """
    pending: deque[Future[R]] = deque()
    last = time.perf_counter()
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="alphacut-write") as writer:
        for item, result in stream(items, read=read, options=options, session=session, prefetch=prefetch,
                                   batch_size=batch_size, post_workers=post_workers, model_workers=model_workers):
            now = time.perf_counter()
            seconds, last = now - last, now
            if isinstance(result, AlphacutError):
                pending.append(_resolved(failed(item, result, seconds)))
            else:
                pending.append(writer.submit(save, item, result, seconds))
            while pending and pending[0].done():
                yield pending.popleft().result()
            while len(pending) > 2 * writers + 1:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _resolved(value: R) -> Future[R]:
    fut: Future[R] = Future()
    fut.set_result(value)
    return fut
