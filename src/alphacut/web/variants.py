"""Model variants the browser needs, derived deterministically from the verified file.

- ``wasm``: the verified file itself, byte for byte.
- ``webgpu-f16``: MaxPool ``ceil_mode=1`` rewritten to 0. At ISNet's 1024 input every
  pooled size is even, so the output is identical; some WebGPU MaxPool kernels do
  not implement ceil mode.
- ``webgpu-f32``: the same, with fp16 weights, constants and casts upcast to fp32,
  for adapters without ``shader-f16`` (software adapters such as SwiftShader).

Variants are built on the server when first asked for and never stored on disk
or committed: the same verified input and recipe version give the same bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

__all__ = ["Variant", "VARIANTS", "RECIPE_VERSION", "variant_key", "build_variant", "webgpu_variants"]

Variant = Literal["wasm", "webgpu-f16", "webgpu-f32"]
VARIANTS: tuple[Variant, ...] = ("wasm", "webgpu-f16", "webgpu-f32")
RECIPE_VERSION = 1


def variant_key(model_sha256: str, variant: Variant) -> str:
    """A content-derived key: it changes whenever the input file or the recipe changes."""
    if variant == "wasm":
        return model_sha256[:16]
    text = f"{model_sha256}:{variant}:{RECIPE_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_QUANTIZED_OPS = {"ConvInteger", "DynamicQuantizeLinear", "QLinearConv", "MatMulInteger", "QLinearMatMul"}


def webgpu_variants(path: Path) -> tuple[Variant, ...]:
    """The WebGPU variants worth offering for this model (none for integer-quantized ones,
    whose kernels run on the CPU anyway)."""
    model = onnx.load(str(path), load_external_data=False)
    ops = {node.op_type for node in model.graph.node}
    if ops & _QUANTIZED_OPS:
        return ()
    has_fp16 = any(init.data_type == TensorProto.FLOAT16 for init in model.graph.initializer)
    return ("webgpu-f16", "webgpu-f32") if has_fp16 else ("webgpu-f32",)


def build_variant(path: Path, variant: Variant) -> bytes:
    """The bytes of ``variant`` of the model file at ``path``."""
    if variant == "wasm":
        return path.read_bytes()
    model = onnx.load(str(path))
    _fix_ceil_mode(model.graph)
    if variant == "webgpu-f32":
        _upcast_fp16(model.graph)
    elif variant != "webgpu-f16":
        raise ValueError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    return model.SerializeToString(deterministic=True)


def _fix_ceil_mode(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        if node.op_type == "MaxPool":
            for attr in node.attribute:
                if attr.name == "ceil_mode":
                    attr.i = 0


def _upcast_tensor(tensor: onnx.TensorProto) -> None:
    if tensor.data_type != TensorProto.FLOAT16:
        return
    array = numpy_helper.to_array(tensor).astype(np.float32)
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))


def _upcast_fp16(graph: onnx.GraphProto) -> None:
    for init in graph.initializer:
        _upcast_tensor(init)
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                _upcast_tensor(attr.t)
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT
    for info in (*graph.input, *graph.output, *graph.value_info):
        tensor_type = info.type.tensor_type
        if tensor_type.elem_type == TensorProto.FLOAT16:
            tensor_type.elem_type = TensorProto.FLOAT
