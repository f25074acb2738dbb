"""Model rewrites on a tiny float16 graph (the real model's variants: tests/web/test_app.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from alphacut import variants


def _tiny_fp16_model(path: Path) -> Path:
    """float32 in -> Cast fp16 -> Conv (fp16 weights) -> Relu -> Cast float32 out, plus a side output."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float16), "w")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype(np.float16), "b")
    nodes = [
        helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["x16", "w", "b"], ["y16"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["y16"], ["r16"]),
        helper.make_node("Cast", ["r16"], ["output"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["y16"], ["side"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [
            helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 16, 16]),
            helper.make_tensor_value_info("side", TensorProto.FLOAT, [1, 4, 16, 16]),
        ],
        initializer=[weight, bias],
        value_info=[helper.make_tensor_value_info("y16", TensorProto.FLOAT16, [1, 4, 16, 16])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _run(model: bytes, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model).run(["output"], {"input": x})[0]


def test_f32_compute_keeps_fp16_weights_and_computes_like_fp32(tmp_path: Path) -> None:
    source = _tiny_fp16_model(tmp_path / "tiny.onnx")
    data = variants.derive(source, ["main_output", "f32_compute"])
    model = onnx.load_from_string(data)
    assert [o.name for o in model.graph.output] == ["output"], "pruned to the main output"
    # The weights stay float16, each read through one Cast to float; nothing computes in fp16.
    assert {i.name: i.data_type for i in model.graph.initializer} == {
        "w__fp16": TensorProto.FLOAT16,
        "b__fp16": TensorProto.FLOAT16,
    }
    for node in model.graph.node:
        if node.op_type == "Cast":
            assert node.attribute[0].i == TensorProto.FLOAT
    assert all(v.type.tensor_type.elem_type != TensorProto.FLOAT16 for v in model.graph.value_info)
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    upcast = _run(variants.derive(source, ["main_output", "fp32"]), x)
    np.testing.assert_array_equal(_run(data, x), upcast)
    # And the float16 original agrees up to its precision.
    assert np.abs(_run(source.read_bytes(), x) - upcast).max() < 0.05
    assert data == variants.derive(source, ["main_output", "f32_compute"]), "deterministic"
