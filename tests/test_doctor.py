"""alphacut doctor's GPU line, with the GPU situations simulated (no GPU needed)."""

from __future__ import annotations

import ctypes
from typing import Any

import onnxruntime as ort
import pytest
from click.testing import CliRunner

from alphacut.cli import cli

GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def _doctor() -> str:
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    return result.output


def test_cpu_build_reports_device_and_threads() -> None:
    out = _doctor()
    assert f"build device {ort.get_device()}" in out
    assert "model threads:" in out and "GPU:" in out


def test_gpu_build_with_missing_cuda_libraries_says_which(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: GPU)
    monkeypatch.setattr(ort, "__file__", str(tmp_path / "onnxruntime" / "__init__.py"))
    lib = tmp_path / "onnxruntime" / "capi" / "libonnxruntime_providers_cuda.so"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"")

    def fail(path: str) -> None:
        raise OSError("libcudnn.so.9: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(ctypes, "CDLL", fail)
    line = next(x for x in _doctor().splitlines() if x.startswith("GPU:"))
    assert "UNUSABLE" in line and "libcudnn.so.9" in line


def test_gpu_build_that_falls_back_to_cpu_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    class FallsBack:
        def __init__(self, *a: Any, **k: Any) -> None:
            pass

        def run(self, *a: Any, **k: Any) -> None:
            return None

        def get_providers(self) -> list[str]:
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "get_available_providers", lambda: GPU)
    monkeypatch.setattr(ort, "InferenceSession", FallsBack)
    line = next(x for x in _doctor().splitlines() if x.startswith("GPU:"))
    assert "UNUSABLE" in line and "fell back to the CPU" in line


def test_gpu_build_where_session_creation_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: Any, **k: Any) -> None:
        raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected\nmore detail")

    monkeypatch.setattr(ort, "get_available_providers", lambda: GPU)
    monkeypatch.setattr(ort, "InferenceSession", boom)
    line = next(x for x in _doctor().splitlines() if x.startswith("GPU:"))
    assert line.endswith("no CUDA-capable device is detected") and "more detail" not in _doctor()


def test_usable_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    class Works:
        def __init__(self, *a: Any, **k: Any) -> None:
            pass

        def run(self, *a: Any, **k: Any) -> None:
            return None

        def get_providers(self) -> list[str]:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    monkeypatch.setattr(ort, "get_available_providers", lambda: GPU)
    monkeypatch.setattr(ort, "InferenceSession", Works)
    assert "GPU: CUDA usable, TensorRT available" in _doctor()


def test_json_says_what_the_lines_say() -> None:
    import json

    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["build_device"] == ort.get_device() and found["providers"] == ort.get_available_providers()
    assert found["gpu"] in _doctor().splitlines() and found["cpu_runtime"] in _doctor().splitlines()
    assert set(found["models"]) >= {"medium", "small"}
