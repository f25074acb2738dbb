"""The CPU model runtime choice, and OpenVINO against onnxruntime on the real model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from alphacut import openvino_model
from alphacut.errors import ModelError

PHOTO = Path(__file__).parent / "data" / "photos" / "car-3.jpg"


def test_runtime_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openvino_model, "_capabilities", lambda: ("FP32", "BF16"))
    assert openvino_model.choose_cpu_runtime()[0] == "openvino"
    assert openvino_model.choose_cpu_runtime("onnxruntime")[0] == "onnxruntime"
    monkeypatch.setattr(openvino_model, "_capabilities", lambda: ("FP32",))
    runtime, why = openvino_model.choose_cpu_runtime()
    assert runtime == "onnxruntime" and "bfloat16" in why
    assert openvino_model.choose_cpu_runtime("openvino")[0] == "openvino", "asked for: float32 then"
    monkeypatch.setattr(openvino_model, "_capabilities", lambda: None)
    assert openvino_model.choose_cpu_runtime() == ("onnxruntime", "OpenVINO is not installed")
    with pytest.raises(ModelError, match="pip install openvino"):
        openvino_model.choose_cpu_runtime("openvino")
    monkeypatch.setenv("ALPHACUT_CPU_RUNTIME", "tpu")
    with pytest.raises(ModelError, match="ALPHACUT_CPU_RUNTIME"):
        openvino_model.choose_cpu_runtime()


@pytest.mark.model
def test_openvino_matches_onnxruntime(isnet_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same weights, same masks within rounding, whichever runtime the CPU picks."""
    pytest.importorskip("openvino")
    from alphacut.session import Session

    image = np.asarray(Image.open(PHOTO).convert("RGB"))
    masks: dict[str, Any] = {}
    for runtime in ("onnxruntime", "openvino"):
        monkeypatch.setenv("ALPHACUT_CPU_RUNTIME", runtime)
        session = Session(model_path=isnet_model_path, device="cpu", threads=2)
        assert session.cpu_runtime == runtime
        x = session.preprocess(image)
        masks[runtime] = session.infer(x)
        if runtime == "openvino":  # a group of images goes through one by one
            group = session.infer(np.concatenate([x, x[:, :, :, ::-1]]))
            np.testing.assert_array_equal(group[:1], masks[runtime])
            assert np.abs(group[1:, :, :, ::-1] - masks[runtime]).mean() < 2e-2
    a, b = masks["onnxruntime"], masks["openvino"]
    assert a.shape == b.shape == (1, 1, 1024, 1024)
    assert float(np.abs(a - b).mean()) < 2e-3
    iou = np.logical_and(a > 0.5, b > 0.5).sum() / np.logical_or(a > 0.5, b > 0.5).sum()
    assert iou > 0.99


@pytest.mark.model
def test_openvino_failure_falls_back_unless_asked_for(isnet_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken OpenVINO does not stop the engine: auto falls back to onnxruntime and says why."""
    from alphacut import session as session_module

    class Broken(openvino_model.OpenVinoModel):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ModelError("OpenVINO cannot load the model: broken install")

    monkeypatch.setattr(session_module, "choose_cpu_runtime", lambda: ("openvino", "test"))
    monkeypatch.setattr(session_module, "OpenVinoModel", Broken)
    monkeypatch.delenv("ALPHACUT_CPU_RUNTIME", raising=False)
    s = session_module.Session(model_path=isnet_model_path, device="cpu", threads=2)
    assert s.cpu_runtime == "onnxruntime" and "broken install" in s.cpu_runtime_why
    assert s.runtime.startswith("onnxruntime")
    monkeypatch.setenv("ALPHACUT_CPU_RUNTIME", "openvino")
    with pytest.raises(ModelError, match="broken install"):
        session_module.Session(model_path=isnet_model_path, device="cpu", threads=2)


_NO_NETWORK_PROBE = r"""
import atexit, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[1:2] or args[:1])
    raise OSError("network refused by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
atexit.register(lambda: sys.stderr.write(f"ATTEMPTS {len(attempts)} {attempts!r}\n"))

import numpy as np
import onnx
from onnx import TensorProto, helper
import openvino as ov

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
path = sys.argv[1]
onnx.save(model, path)
compiled = ov.Core().compile_model(path, "CPU")
out = compiled(np.array([[-1, 0, 1, 2]], np.float32))[0]
assert out.tolist() == [[0, 0, 1, 2]], out
"""


def test_openvino_sends_nothing_over_the_network(tmp_path: Path) -> None:
    """OpenVINO ships a telemetry package; loading and running a model must not touch the network
    (its events belong to the model conversion tool, which alphacut never calls)."""
    pytest.importorskip("openvino")
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK_PROBE, str(tmp_path / "probe.onnx")],
        check=False, capture_output=True, text=True, timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ATTEMPTS 0 []" in proc.stderr, proc.stderr[-2000:]
