"""The segmentation model on OpenVINO's CPU plugin, for CPUs with native bfloat16.

On x86 CPUs with AMX or AVX-512 BF16 (recent Xeons), OpenVINO runs ISNet in
bfloat16 about five times faster than onnxruntime runs it in float32, with the
same weights and the same results within rounding (mask mean difference ~2e-4;
lemur composites: the same IoU and edge error; ``tests/test_openvino.py``).
Elsewhere onnxruntime stays the CPU runtime: OpenVINO in float32 is no faster.

``ALPHACUT_CPU_RUNTIME`` picks by hand: ``onnxruntime``, ``openvino`` (bfloat16
when the CPU has it, else float32) or ``auto`` (the default).

Threads: OpenVINO's Python binding builds its element-type <-> numpy dtype tables
in C++ function-local statics the first time any tensor meets numpy. Building them
runs Python code (numpy's C API is imported), so the GIL can pass to another thread
while the static's initialisation guard is held; if that thread reaches the same
static it waits on the guard with the GIL in hand, and both threads wait for ever
(``__cxa_guard_acquire`` / ``take_gil``). :class:`OpenVinoModel` therefore touches
those tables once, on the loading thread under a process-wide lock, before any
caller can run it (``tests/test_stress.py`` runs the parallel first calls under load).
"""

from __future__ import annotations

import os
import queue
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .providers import usable_cores

__all__ = ["CPU_RUNTIMES", "OpenVinoModel", "choose_cpu_runtime", "precision"]

CPU_RUNTIMES = ("auto", "onnxruntime", "openvino")


@lru_cache(maxsize=1)
def _capabilities() -> tuple[str, ...] | None:
    """OpenVINO's CPU capabilities, or None when OpenVINO is not installed or has no CPU."""
    try:
        import openvino as ov
    except ImportError:
        return None
    try:
        return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # noqa: BLE001 - any failure means: do not use it
        return None


def precision() -> str:
    """``bf16`` where the CPU has native bfloat16, else ``f32``: what OpenVINO computes in."""
    return "bf16" if "BF16" in (_capabilities() or ()) else "f32"


def choose_cpu_runtime(setting: str | None = None) -> tuple[str, str]:
    """(``onnxruntime`` | ``openvino``, why) for running the model on the CPU."""
    setting = (setting or os.environ.get("ALPHACUT_CPU_RUNTIME") or "auto").lower()
    if setting not in CPU_RUNTIMES:
        raise ModelError(f"ALPHACUT_CPU_RUNTIME={setting!r}: use one of {', '.join(CPU_RUNTIMES)}")
    caps = _capabilities()
    if setting == "onnxruntime":
        return "onnxruntime", "asked for (ALPHACUT_CPU_RUNTIME)"
    if setting == "openvino":
        if caps is None:
            raise ModelError("ALPHACUT_CPU_RUNTIME=openvino but OpenVINO is not usable here: pip install openvino")
        return "openvino", "asked for (ALPHACUT_CPU_RUNTIME)"
    if caps is None:
        return "onnxruntime", "OpenVINO is not installed"
    if "BF16" not in caps:
        return "onnxruntime", "this CPU has no native bfloat16 (OpenVINO would be no faster)"
    return "openvino", "this CPU has native bfloat16 (AMX / AVX-512 BF16)"


# Held while a model primes the binding's first-use tables (see the module docstring):
# two models loading on two threads at once must not build them together either.
_FIRST_USE_LOCK = threading.Lock()


def _prime_numpy_bridge(ov: Any, request: Any, ports: list[Any]) -> None:
    """Build the binding's dtype tables now, on this thread, rather than in racing first calls."""
    with _FIRST_USE_LOCK:
        ov.Tensor(np.zeros(1, np.float32))  # numpy dtype -> element type
        for port in ports:
            _ = request.get_tensor(port).data  # element type -> numpy dtype, per type this model uses


class OpenVinoModel:
    """A compiled OpenVINO model with onnxruntime's ``run(output_names, feeds)`` call.

    ``threads`` is the threads one call may use (None: all cores); the CPU is split
    into as many streams as that leaves room for, so that concurrent callers (the
    batch pipeline's parallel model calls) each get one. Thread-safe: the infer
    requests (one per stream) are made up front on the loading thread, and each
    call borrows a free one (waiting, without the GIL, while all are busy).
    """

    def __init__(self, path: Path | str, *, threads: int | None = None, input_name: str = "input") -> None:
        import openvino as ov

        cores = usable_cores()
        per_call = max(1, min(threads or cores, cores))
        self.precision = precision()
        streams = max(1, cores // per_call)
        config = {
            "INFERENCE_PRECISION_HINT": self.precision,
            "NUM_STREAMS": str(streams),
            "INFERENCE_NUM_THREADS": str(cores),
        }
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        try:
            self._compiled = ov.Core().compile_model(str(path), "CPU", config)
            requests = [self._compiled.create_infer_request() for _ in range(streams)]
            _prime_numpy_bridge(ov, requests[0], [*self._compiled.inputs, *self._compiled.outputs])
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises plain RuntimeErrors
            raise ModelError(f"OpenVINO cannot load {path}: {exc}") from None
        for request in requests:
            self._idle.put(request)
        self.input_name = input_name
        self.output_names = [name for out in self._compiled.outputs for name in sorted(out.get_names())]
        self._outputs = {name: self._compiled.output(name) for name in self.output_names}

    @property
    def description(self) -> str:
        return f"OpenVINO {self.precision} (CPU)"

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = feeds[self.input_name]
        ports = [self._outputs[name] for name in names]
        request = self._idle.get()  # blocks without the GIL while every stream is busy
        try:
            outs: list[np.ndarray] = []
            # The compiled model has a batch of one: a group of images goes through one by one.
            for i in range(batch.shape[0]):
                request.start_async({self.input_name: batch[i : i + 1]})
                request.wait()  # the GIL is released while the stream computes
                views = [request.get_tensor(port).data for port in ports]
                if not outs:
                    outs = [np.empty((batch.shape[0], *v.shape[1:]), v.dtype) for v in views]
                for out, view in zip(outs, views, strict=True):
                    out[i] = view[0]  # a copy: the request's tensors are reused by its next call
        finally:
            self._idle.put(request)
        return outs
