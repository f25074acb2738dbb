"""What ``alphacut doctor`` reports: versions, providers, whether a GPU is usable and why not,
the CPU model runtime, cores and the model cache, as data (the CLI prints it, as lines or JSON)."""

from __future__ import annotations

import ctypes
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy
import onnxruntime as ort
import PIL

from . import __version__, models
from .errors import AlphacutError
from .providers import usable_cores

__all__ = ["Diagnosis", "diagnose"]


@dataclass(frozen=True)
class Diagnosis:
    """The state of this machine for alphacut; :meth:`lines` is what ``alphacut doctor`` prints."""

    alphacut: str
    python: str
    platform: str
    onnxruntime: str
    build_device: str
    providers: list[str]
    gpu: str  # one line: is a GPU usable, and if one is expected but is not, why
    cpu_runtime: str  # one line: what runs the model on a CPU, and why
    numpy: str
    pillow: str
    cpu_cores: int | None
    usable_cores: int
    model_cache: str
    models: dict[str, str | None]  # name -> cached file, or None when missing

    def lines(self) -> list[str]:
        out = [
            f"alphacut {self.alphacut} on Python {self.python} ({self.platform})",
            f"onnxruntime {self.onnxruntime} (build device {self.build_device}): providers"
            f" {', '.join(self.providers)}",
            self.gpu,
            self.cpu_runtime,
            f"numpy {self.numpy}, Pillow {self.pillow}",
            f"CPU cores: {self.cpu_cores} ({self.usable_cores} usable by this process);"
            f" model threads: {self.usable_cores} by default (--threads N to change)",
            f"model cache: {self.model_cache}",
        ]
        for name, path in self.models.items():
            out.append(f"  {name}: {'cached ' + path if path else 'missing: alphacut models pull ' + name}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose() -> Diagnosis:
    """Probe this machine (a CUDA session is tried when onnxruntime offers CUDA)."""
    available = list(ort.get_available_providers())
    return Diagnosis(
        alphacut=__version__,
        python=platform.python_version(),
        platform=platform.platform(),
        onnxruntime=ort.__version__,
        build_device=ort.get_device(),
        providers=available,
        gpu=gpu_status(available),
        cpu_runtime=cpu_runtime_status(),
        numpy=numpy.__version__,
        pillow=PIL.__version__,
        cpu_cores=os.cpu_count(),
        usable_cores=usable_cores(),
        model_cache=str(models.home()),
        models={spec.name: str(path) if path else None for spec, path in models.cached_models()},
    )


def gpu_status(available: list[str]) -> str:
    """One line: is a GPU usable, and if one is expected but is not, why."""
    nvidia = Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia").exists()
    if "CUDAExecutionProvider" not in available:
        if nvidia:
            return ("GPU: an NVIDIA GPU is present but this onnxruntime build is CPU-only:"
                    " pip install 'alphacut[gpu]' (onnxruntime-gpu replaces onnxruntime)")
        return "GPU: none (this onnxruntime build is CPU-only)"
    lib = Path(ort.__file__).parent / "capi" / (
        "onnxruntime_providers_cuda.dll" if os.name == "nt" else "libonnxruntime_providers_cuda.so")
    if lib.exists():
        try:
            ctypes.CDLL(str(lib))
        except OSError as exc:  # names the missing CUDA/cuDNN library
            return f"GPU: UNUSABLE: onnxruntime-gpu is installed but its CUDA provider cannot load: {exc}"
    try:
        from onnx import TensorProto, helper

        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        so = ort.SessionOptions()
        so.log_severity_level = 4
        sess = ort.InferenceSession(probe.SerializeToString(), so,
                                    providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        sess.run(None, {"x": numpy.zeros(1, numpy.float32)})
    except Exception as exc:  # noqa: BLE001 - any failure here is the answer we report
        reason = (str(exc).strip().splitlines() or [repr(exc)])[0]
        return f"GPU: UNUSABLE: a CUDA session cannot be created: {reason}"
    if sess.get_providers()[0] != "CUDAExecutionProvider":
        return ("GPU: UNUSABLE: onnxruntime-gpu fell back to the CPU (no CUDA device, or the driver, CUDA and"
                " cuDNN versions do not match this onnxruntime-gpu build)")
    return "GPU: CUDA usable" + (", TensorRT available" if "TensorrtExecutionProvider" in available else "")


def cpu_runtime_status() -> str:
    """One line: what runs the model on a CPU (OpenVINO or onnxruntime), and why."""
    from .openvino_model import choose_cpu_runtime, precision

    try:
        runtime, why = choose_cpu_runtime()
    except AlphacutError as exc:
        return f"CPU model runtime: ERROR: {exc}"
    if runtime == "openvino":
        import openvino

        kind = {"bf16": "bfloat16", "f32": "float32"}[precision()]
        return f"CPU model runtime: OpenVINO {openvino.__version__.split('-')[0]} in {kind} ({why})"
    return f"CPU model runtime: onnxruntime ({why}; ALPHACUT_CPU_RUNTIME=openvino|onnxruntime picks by hand)"
