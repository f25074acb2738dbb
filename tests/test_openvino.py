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
