"""The engine's model runtime: one :class:`Session` owns the model and the graph sessions.

A session loads the segmentation model once (onnxruntime; on CPUs with native
bfloat16, OpenVINO: see :mod:`alphacut.openvino_model`), plus the pre- and post-processing
graphs of :mod:`alphacut.graphs` (the same graphs the browser runs), and is then
reused for any number of images. It holds no per-image state, so one session can
serve several threads.

The layout for the work at hand lives here too: which copy of the model a device runs
fastest (:func:`fp32_model_path` on a CPU, :func:`batched_model_path` on a GPU) and how
many model calls to run at once (:func:`cpu_layout`); :meth:`Session.for_work` puts
them together. A plain ``Session()`` runs the same copy as ``alphacut cut``.
:class:`ModelSession` is the protocol the pipeline needs from a session (the real one
and the tests' stand-in both satisfy it); :func:`default_session` is the one
:func:`~alphacut.pipeline.remove_background` shares when it is given none.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from . import models, variants
from .errors import ModelError
from .graphs import (
    CLEAR,
    COMPUTE,
    OPAQUE,
    PostprocessParams,
    build_apply_graph,
    build_coefficients_graph,
    build_preprocess_graph,
    plan_windows,
    to_bytes,
)
from .openvino_model import OpenVinoModel, choose_cpu_runtime
from .options import DEFAULT_MODEL
from .providers import check_providers, resolve_providers, usable_cores

__all__ = [
    "GPU_BATCH_SIZE",
    "ModelSession",
    "Refiner",
    "Refines",
    "Session",
    "apply_windows",
    "batched_model_path",
    "cpu_layout",
    "default_batch_size",
    "default_refiner",
    "default_session",
    "fp32_model_path",
]

GPU_BATCH_SIZE = 8  # images per model call on a GPU (when the model allows it)

_GRAPH_NORM = (128.0, 256.0)  # (mean, std) baked into the pre-processing graph
# Pixels per apply-graph call at most: a quarter megapixel, so the chain of per-pixel
# steps works in the CPU caches (1 MP strips were ~10 % slower; bounds memory too).
_STRIP_PIXELS = 1 << 18


def apply_windows(
    apply: ort.InferenceSession, coefs: dict[str, np.ndarray], x: np.ndarray, *, refine: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The apply graph over a photo (``x``: uint8 [1, H, W, C]) in windows: alpha (HxW
    float32) and RGBA (HxWx4 uint8), exactly what one call on the whole photo gives.

    With ``refine``, only where the model is unsure (:func:`~alphacut.graphs.plan_windows`:
    windows it is sure of are filled here with the very values the graph gives there);
    compute windows run in pieces of at most about ``_STRIP_PIXELS`` pixels, so no
    full-resolution float temporaries exist. ``coefs`` are the coefficient graph's maps.
    """
    h, w = x.shape[1:3]
    alpha = np.empty((h, w), np.float32)
    rgba = np.empty((h, w, 4), np.uint8)
    if refine:
        plan = plan_windows(coefs["coef_lim"], h, w)
    else:
        step = max(1, _STRIP_PIXELS // w)
        plan = [(y0, min(h, y0 + step), 0, w, COMPUTE) for y0 in range(0, h, step)]
    binding = apply.io_binding()
    for name, value in coefs.items():
        binding.bind_cpu_input(name, value)
    for y0, y1, x0, x1, kind in plan:
        if kind == CLEAR:
            alpha[y0:y1, x0:x1] = 0
            rgba[y0:y1, x0:x1] = 0
            continue
        if kind == OPAQUE:
            alpha[y0:y1, x0:x1] = 1
            rgba[y0:y1, x0:x1, :3] = x[0, y0:y1, x0:x1, :3]
            rgba[y0:y1, x0:x1, 3] = 255
            continue
        step = max(1, _STRIP_PIXELS // (y1 - y0))
        for c0 in range(x0, x1, step):
            c1 = min(x1, c0 + step)
            binding.bind_cpu_input("image", np.ascontiguousarray(x[:, y0:y1, c0:c1]))
            binding.bind_cpu_input("region", np.array([y0, c0, h, w], np.int64))
            if c1 - c0 == w:  # whole rows: written in place
                binding.bind_output("alpha", "cpu", 0, np.float32, [1, 1, y1 - y0, w], alpha[y0:y1].ctypes.data)
                binding.bind_output("rgba", "cpu", 0, np.uint8, [1, y1 - y0, w, 4], rgba[y0:y1].ctypes.data)
                apply.run_with_iobinding(binding)
            else:
                binding.bind_output("alpha", "cpu")
                binding.bind_output("rgba", "cpu")
                apply.run_with_iobinding(binding)
                part_alpha, part_rgba = binding.copy_outputs_to_cpu()
                alpha[y0:y1, c0:c1] = part_alpha[0, 0]
                rgba[y0:y1, c0:c1] = part_rgba[0]
    return alpha, rgba


class Refines(Protocol):
    """What refining a given mask needs: a :class:`Refiner` (a :class:`Session` is one), or a stand-in."""

    def postprocess(
        self, image: np.ndarray, mask: np.ndarray, params: PostprocessParams
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class ModelSession(Refines, Protocol):
    """What the pipeline and the jobs need from a session: :class:`Session`, or a stand-in."""

    @property
    def spec(self) -> models.ModelSpec: ...

    @property
    def on_gpu(self) -> bool: ...

    @property
    def batch_dimension(self) -> int | str | None: ...

    def preprocess(self, image: np.ndarray) -> np.ndarray: ...

    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def predict_mask(self, image: np.ndarray) -> np.ndarray: ...


class Refiner:
    """The post-processing graphs alone: refines a given mask against its photo (edges and
    colours at full resolution). Loads no model: what refining a mask fixed by hand needs
    (``start_mask``), and what :class:`Session` builds on.

    ``threads`` caps onnxruntime's intra-op threads (default: all cores).
    """

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads
        self._post: dict[PostprocessParams, tuple[ort.InferenceSession, ort.InferenceSession]] = {}
        self._lock = threading.Lock()

    def _options(self, *, arena: bool = True) -> ort.SessionOptions:
        so = ort.SessionOptions()
        # The pre/post graphs see full-resolution images of any size: an arena would keep
        # the largest image's peak (GBs at 24 MP) for the life of the session.
        so.enable_cpu_mem_arena = arena
        if self.threads:
            so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        return so

    def postprocess(
        self, image: np.ndarray, mask: np.ndarray, params: PostprocessParams
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Full-resolution alpha (HxW float32), the RGBA cutout (HxWx4 uint8) and the working-size alpha.

        The coefficient graph runs once at working resolution; the apply graph then runs
        in windows, only where the model is unsure (:func:`apply_windows`).
        """
        coefficients, apply = self._post_session(params)
        x = _nhwc(image)
        names = [o.name for o in coefficients.get_outputs()]
        outputs = dict(zip(names, coefficients.run(names, {"image": x, "mask": mask})))
        small = outputs.pop("alpha_small")
        alpha, rgba = apply_windows(apply, outputs, x, refine=params.refine)
        return alpha, rgba, small[0, 0]

    def _post_session(self, params: PostprocessParams) -> tuple[ort.InferenceSession, ort.InferenceSession]:
        with self._lock:
            pair = self._post.get(params)
            if pair is None:

                # An arena is safe here: the coefficient graph's tensors are working-size
                # and the apply graph's window-size, whatever the photo's size.
                def load(model: bytes) -> ort.InferenceSession:
                    return ort.InferenceSession(model, self._options(), providers=["CPUExecutionProvider"])

                pair = (
                    load(to_bytes(build_coefficients_graph(params))),
                    load(to_bytes(build_apply_graph(params))),
                )
                self._post[params] = pair
            return pair


class Session(Refiner):
    """Loads a model once; turns 8-bit sRGB pixels into a soft alpha matte.

    ``threads`` caps onnxruntime's intra-op threads (default: all cores).
    ``device`` is ``auto`` (GPU when this onnxruntime build has one), ``cpu``,
    ``cuda`` or ``tensorrt``; an explicit GPU that cannot be used raises
    :class:`~alphacut.errors.ProviderError` with the reason. Without ``model_path``
    the session runs the copy of the model its device runs fastest (the one the CLI
    runs): on a CPU :func:`fp32_model_path`, on a GPU :func:`batched_model_path`.
    """

    def __init__(
        self,
        model: str | models.ModelSpec = DEFAULT_MODEL,
        *,
        device: str = "auto",
        threads: int | None = None,
        model_path: Path | None = None,
    ) -> None:
        super().__init__(threads=threads)
        self.spec = models.get_spec(model) if isinstance(model, str) else model
        self.device = device
        self.providers = resolve_providers(device, cache_dir=models.home() / "tensorrt")
        on_cpu = self.providers[0] == "CPUExecutionProvider"
        if model_path:
            self.model_path = Path(model_path)
        else:
            self.model_path = fp32_model_path(self.spec) if on_cpu else batched_model_path(self.spec)
        self.cpu_runtime, self.cpu_runtime_why = choose_cpu_runtime() if on_cpu else ("", "")
        self._model = self._load_model()
        if isinstance(self._model, OpenVinoModel):
            names = set(self._model.output_names)
        else:
            names = {o.name for o in self._model.get_outputs()}
        if self.spec.output_name not in names:
            raise ModelError(
                f"model {self.spec.name!r} has no output {self.spec.output_name!r} (it has"
                f" {', '.join(sorted(names))}): fix its spec"
            )
        # The small graphs run on the CPU: they are memory-bound and full-resolution.
        self._pre = ort.InferenceSession(
            to_bytes(build_preprocess_graph(self.spec.input_size)),
            self._options(arena=False),
            providers=["CPUExecutionProvider"],
        )

    def _load_model(self) -> ort.InferenceSession | OpenVinoModel:
        if self.cpu_runtime == "openvino":
            try:
                return OpenVinoModel(self.model_path, threads=self.threads, input_name=self.spec.input_name)
            except ModelError as exc:
                if os.environ.get("ALPHACUT_CPU_RUNTIME"):
                    raise  # asked for by hand: say so rather than fall back
                self.cpu_runtime, self.cpu_runtime_why = "onnxruntime", f"OpenVINO failed: {exc}"
        try:
            model = ort.InferenceSession(str(self.model_path), self._options(), providers=self.providers)
        except (ort.capi.onnxruntime_pybind11_state.Fail, RuntimeError, ValueError) as exc:
            raise ModelError(
                f"onnxruntime cannot load {self.model_path}: {exc}; delete the file and run"
                f" `alphacut models pull {self.spec.name}`"
            ) from None
        check_providers(model, self.device)
        return model

    @property
    def active_providers(self) -> list[str]:
        """onnxruntime's providers for the model; on OpenVINO, the CPU's (it runs there)."""
        if isinstance(self._model, OpenVinoModel):
            return ["CPUExecutionProvider"]
        return list(self._model.get_providers())

    @property
    def on_gpu(self) -> bool:
        return self.active_providers[0] != "CPUExecutionProvider"

    @property
    def runtime(self) -> str:
        """What runs the model, in words (for reports and ``alphacut doctor``)."""
        if isinstance(self._model, OpenVinoModel):
            return self._model.description
        return f"onnxruntime {self.active_providers[0].removesuffix('ExecutionProvider')}"

    @property
    def batch_dimension(self) -> int | str | None:
        """The model input's batch size (an int when fixed), for GPU batching."""
        if isinstance(self._model, OpenVinoModel):
            return 1
        dim: int | str | None = self._model.get_inputs()[0].shape[0]
        return dim

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """HxWx3/4 uint8 sRGB -> the model's normalised 1x3xSxS float32 input."""
        x: np.ndarray
        (x,) = self._pre.run(["input"], {"image": _nhwc(image)})
        if (self.spec.mean, self.spec.std) != _GRAPH_NORM:
            # The graph computes (rgb - 128) / 256; re-map for models normalised otherwise.
            x = ((x * _GRAPH_NORM[1] + _GRAPH_NORM[0]) - self.spec.mean) / self.spec.std
        return x

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Nx3xSxS model input -> Nx1xSxS soft masks in [0, 1] (only the main output is fetched)."""
        (out,) = self._model.run([self.spec.output_name], {self.spec.input_name: batch})
        if self.spec.output_kind == "logits":
            out = 1.0 / (1.0 + np.exp(-out))
        return np.asarray(out, dtype=np.float32)

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        """HxWx3/4 uint8 sRGB -> 1x1xSxS soft mask in [0, 1]."""
        return self.infer(self.preprocess(image))

    @classmethod
    def for_work(
        cls,
        model: str | models.ModelSpec = DEFAULT_MODEL,
        *,
        device: str = "auto",
        threads: int | None = None,
        batch_size: int | None = None,
        parallel: bool = True,
    ) -> tuple[Session, int]:
        """A session laid out for the work at hand, and how many model calls to run at once.

        GPU: the model copy with a free batch dimension (:func:`batched_model_path`) when
        calls take several images, one call at a time. CPU: the float32 copy
        (:func:`fp32_model_path`) and, for many images (``parallel``), :func:`cpu_layout`'s
        parallel calls; for one image, one call over ``threads`` (default: every core),
        which finishes it soonest.
        """
        spec = models.get_spec(model) if isinstance(model, str) else model
        if _first_provider(device) != "CPUExecutionProvider":
            path = batched_model_path(spec) if (batch_size or GPU_BATCH_SIZE) > 1 else models.model_path(spec)
            return cls(spec, device=device, threads=threads, model_path=path), 1
        workers, per_call = cpu_layout(threads) if parallel else (1, threads)
        return cls(spec, device=device, threads=per_call, model_path=fp32_model_path(spec)), workers

    def __repr__(self) -> str:
        return f"Session(model={self.spec.name!r}, runtime={self.runtime!r})"


def _first_provider(device: str) -> str:
    first = resolve_providers(device)[0]
    return first if isinstance(first, str) else first[0]


def batched_model_path(spec: models.ModelSpec, source: Path | None = None) -> Path:
    """A copy of the model whose batch dimension is free (see :mod:`alphacut.variants`)."""
    return variants.derived_path(spec, ["main_output", "batched"], source)


def fp32_model_path(spec: models.ModelSpec, source: Path | None = None) -> Path:
    """The copy of the model the CPU runs fastest: its main output alone, computing in
    float32 when its weights are float16 (about 20 % less CPU time per ISNet call on x86).
    The weights stay float16 on disk, read through casts that onnxruntime folds when the
    session is created, so the copy is no larger than the original (recipe ``f32_compute``,
    the same as the browser's; see :mod:`alphacut.variants`)."""
    return variants.derived_path(spec, ["main_output", "f32_compute"], source)


def cpu_layout(threads: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """(model calls at once, threads each) for a CPU: parallel single-ish-threaded calls
    scale better than one call over every core; at most 4 calls, to bound memory."""
    if cores is None:
        cores = usable_cores()
    if threads is not None:
        return max(1, cores // threads), threads
    workers = max(1, min(4, cores))
    return workers, max(1, cores // workers)


def default_batch_size(session: ModelSession) -> int:
    """Images per model call: several on a GPU (when the model allows it), one on a CPU."""
    dim = session.batch_dimension
    accepts_batches = not isinstance(dim, int) or dim != 1
    return GPU_BATCH_SIZE if session.on_gpu and accepts_batches else 1


_default: list[Session] = []
_default_lock = threading.Lock()
_default_refiner: list[Refiner] = []


def default_refiner() -> Refiner:
    """The post-processing graphs that calls refining a given mask without a session share
    (made once): the default session's, when a call has made it already."""
    with _default_lock:
        if _default:
            return _default[0]
        if not _default_refiner:
            _default_refiner.append(Refiner())
        return _default_refiner[0]


def default_session() -> Session:
    """The session for the default model that calls without a session share (made once)."""
    with _default_lock:
        if not _default:
            _default.append(Session())
        return _default[0]


def _nhwc(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 or HxWx4 uint8 array, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)[None]
