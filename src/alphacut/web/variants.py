"""Model variants the browser needs, derived deterministically from the verified file.

All variants keep only the graph output the engine reads (``output``): ISNet's six
side outputs are training aids, and onnxruntime computes every node of the graph
whatever is fetched, so dropping them saves about 10 % of the inference time.

- ``wasm``: the verified file, pruned to its main output.
- ``webgpu-f16``: the same, with MaxPool ``ceil_mode=1`` rewritten to 0. At ISNet's 1024 input every
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
RECIPE_VERSION = 2


def variant_key(model_sha256: str, variant: Variant) -> str:
    """A content-derived key: it changes whenever the input file or the recipe changes."""
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


def build_variant(path: Path, variant: Variant, *, output: str = "output") -> bytes:
    """The bytes of ``variant`` of the model file at ``path``, computing only ``output``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    model = onnx.load(str(path))
    _prune(model.graph, output)
    if variant != "wasm":
        _fix_ceil_mode(model.graph)
    if variant == "webgpu-f32":
        _upcast_fp16(model.graph)
    return model.SerializeToString(deterministic=True)


def _prune(graph: onnx.GraphProto, output: str) -> None:
    """Keep ``output`` and only the nodes and initializers it depends on."""
    if output not in {o.name for o in graph.output}:
        return  # not this model's layout: leave it whole
    producers = {name: i for i, node in enumerate(graph.node) for name in node.output}
    needed: set[str] = set()
    keep: set[int] = set()
    stack = [output]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        index = producers.get(name)
        if index is not None and index not in keep:
            keep.add(index)
            stack.extend(i for i in graph.node[index].input if i)
            for attr in graph.node[index].attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    raise ValueError("models with subgraphs are not pruned")
    nodes = [node for i, node in enumerate(graph.node) if i in keep]
    inits = [init for init in graph.initializer if init.name in needed]
    outputs = [o for o in graph.output if o.name == output]
    infos = [v for v in graph.value_info if v.name in needed]
    for field_, items in ((graph.node, nodes), (graph.initializer, inits), (graph.output, outputs), (graph.value_info, infos)):
        del field_[:]
        field_.extend(items)


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
