"""A stand-in for :class:`alphacut.Session` for tests of the plumbing (no model, milliseconds)."""

from __future__ import annotations

import threading
import time

import numpy as np

from alphacut.graphs import PostprocessParams
from alphacut.models import ModelSpec, UrlSource
from alphacut.session import ModelSession

_SPEC = ModelSpec(name="fake", sha256="0" * 64, source=UrlSource("file:///nonexistent/fake.onnx"))


class FakeSession:
    """Alpha: an opaque disc in the middle of the image; ``delay`` seconds per model call.

    A :class:`~alphacut.session.ModelSession` like the real one (checked below, by mypy too).
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.spec = _SPEC
        self.delay = delay
        self.active_providers = ["CPUExecutionProvider"]
        self.on_gpu = False
        self.batch_dimension = 1
        self.runtime = "fake"
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self.post_masks: list[np.ndarray] = []  # the masks postprocess was given (the model's, or a start mask)
        self.post_params: list[PostprocessParams] = []  # and the parameters
        self._lock = threading.Lock()

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return np.zeros((1, 3, 8, 8), np.float32)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self.running -= 1
        # The mask matches the alpha postprocess gives: the disc (confidence scores the mask).
        yy, xx = np.mgrid[0:32, 0:32]
        disc = ((yy - 15.5) ** 2 + (xx - 15.5) ** 2 <= (32 / 3) ** 2).astype(np.float32)
        return np.broadcast_to(disc, (batch.shape[0], 1, 32, 32)).copy()

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        return self.infer(self.preprocess(image))

    def postprocess(
        self, image: np.ndarray, mask: np.ndarray, params: PostprocessParams
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.post_masks.append(mask)
        self.post_params.append(params)
        h, w = image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        r = min(h, w) / 3
        alpha = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= r * r).astype(np.float32)
        # The real contract: the RGBA cutout as uint8 (colours = the photo here).
        rgba = np.dstack([image[..., :3], np.rint(alpha * 255.0).astype(np.uint8)])
        return alpha, rgba, alpha


_CHECK: type[ModelSession] = FakeSession  # the fake keeps the protocol's shape
