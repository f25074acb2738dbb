"""Execution providers: pick CUDA/TensorRT when present, explain clearly when not."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort

from .errors import ProviderError

__all__ = ["DEVICES", "Device", "check_providers", "resolve_providers", "usable_cores"]

Device = Literal["auto", "cpu", "cuda", "tensorrt"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")
_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}

ProviderList = list[str | tuple[str, dict[str, Any]]]


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity on Linux, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_providers(device: str, cache_dir: Path | None = None) -> ProviderList:
    """The onnxruntime provider list for ``device``.

    ``auto`` uses TensorRT and CUDA when this onnxruntime build has them (the ``gpu``
    extra installs onnxruntime-gpu), else the CPU. An explicit ``cuda`` or ``tensorrt``
    that this build lacks is an error that says why, not a silent CPU fallback.
    """
    if device not in DEVICES:
        raise ProviderError(f"unknown device {device!r}: use one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = ["tensorrt", "cuda"] if device in ("auto", "tensorrt") else ["cuda"]
    if device == "auto" and os.environ.get("ALPHACUT_NO_TENSORRT"):
        wanted = ["cuda"]
    chosen: ProviderList = []
    for key in wanted:
        name = _NAMES[key]
        if name not in available:
            continue
        if key == "tensorrt":
            options: dict[str, Any] = {"trt_fp16_enable": True}
            if cache_dir is not None:
                cache_dir.mkdir(parents=True, exist_ok=True)
                options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir))
            chosen.append((name, options))
        else:
            chosen.append(name)
    if device != "auto" and not chosen:
        raise ProviderError(_why_missing(device, available))
    return chosen + ["CPUExecutionProvider"]


def check_providers(session: ort.InferenceSession, device: str) -> None:
    """Fail when a GPU was asked for explicitly but onnxruntime fell back to the CPU."""
    if device in ("cuda", "tensorrt") and session.get_providers()[0] == "CPUExecutionProvider":
        raise ProviderError(
            f"{device} was requested but onnxruntime could not initialise it and fell back to the CPU:"
            " check that the NVIDIA driver, CUDA and cuDNN versions match your onnxruntime-gpu"
            " build (`alphacut doctor` shows versions), or run with --device cpu"
        )


def _why_missing(device: str, available: list[str]) -> str:
    if "CUDAExecutionProvider" not in available:
        return (
            f"{device} was requested but this onnxruntime build ({ort.__version__}, providers:"
            f" {', '.join(available)}) has no GPU support: `pip install 'alphacut[gpu]'`"
            " (onnxruntime-gpu replaces onnxruntime), or run with --device cpu"
        )
    return (
        f"{device} was requested but onnxruntime offers only {', '.join(available)}:"
        " install TensorRT libraries matching onnxruntime-gpu, or use --device cuda"
    )
