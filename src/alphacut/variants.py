"""Model variants derived deterministically from a verified model file.

Each recipe is a small graph rewrite that keeps the model's function (the same
weights, at the same or higher precision):

- ``main_output``: only the output the engine reads and the nodes it depends on.
  ISNet's side outputs are training aids, and onnxruntime computes every node of
  the graph whatever is fetched, so dropping them saves about 10 % of the time.
- ``fp32``: float16 weights, constants and casts upcast to float32: a model file twice
  the size that computes in float32 (the reference ``f32_compute`` is tested against).
- ``f32_compute``: float32 arithmetic, float16 storage. Every float16 weight is
  kept as it is and feeds a ``Cast`` to float32 (onnxruntime folds those casts
  once, when the session is created); constants, casts and activations become
  float32. It computes exactly what ``fp32`` computes, from a file of the
  original's size. What the CPU runs, in Python and in the browser: onnxruntime's
  x86 and WASM kernels run ISNet's float16 graph slower than a float32 one (casts
  around most nodes at every run), and WebGPU adapters without ``shader-f16`` need it.
- ``batched``: the batch dimension named instead of fixed to 1 (none of ISNet's
  operators depends on it), so a GPU can take several images per call.
- ``ceil_mode``: MaxPool ``ceil_mode=1`` rewritten to 0. At ISNet's 1024 input every
  pooled size is even, so the output is identical; some WebGPU MaxPool kernels do
  not implement ceil mode.

The engine caches derived files beside the models (:func:`derived_path`); the web
app builds them in memory (:func:`derive`). Nothing derived is committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from . import models
from .fsutil import atomic_write

__all__ = ["RECIPES", "RECIPE_VERSION", "Recipe", "derive", "derived_path", "has_fp16"]

Recipe = Literal["main_output", "fp32", "f32_compute", "batched", "ceil_mode"]
RECIPES: tuple[Recipe, ...] = ("main_output", "fp32", "f32_compute", "batched", "ceil_mode")
RECIPE_VERSION = 3  # bump when a rewrite changes, so cached and served copies change name


def has_fp16(model: onnx.ModelProto) -> bool:
    return any(init.data_type == TensorProto.FLOAT16 for init in model.graph.initializer)


def derive(source: Path, recipes: Iterable[Recipe], *, output: str = "output") -> bytes:
    """The bytes of the model at ``source`` with ``recipes`` applied, in order
    (``main_output`` keeps the graph output named ``output``)."""
    model = onnx.load(str(source))
    for recipe in recipes:
        if recipe == "main_output":
            _prune(model.graph, output)
        else:
            _REWRITES[recipe](model.graph)
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def derived_path(spec: models.ModelSpec, recipes: Iterable[Recipe], source: Path | None = None) -> Path:
    """A cached derived copy of a model (built on first use, atomically)."""
    recipes = tuple(recipes)
    source = source or models.model_path(spec)
    if not recipes:
        return source
    tag = "-".join(recipes)
    target = models.home() / "derived" / f"{spec.name}-{spec.sha256[:12]}-{tag}-v{RECIPE_VERSION}.onnx"
    if not target.exists():
        atomic_write(target, derive(source, recipes, output=spec.output_name), overwrite=True)
    return target


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


def _upcast_tensor(tensor: onnx.TensorProto) -> None:
    if tensor.data_type == TensorProto.FLOAT16:
        array = numpy_helper.to_array(tensor).astype(np.float32)
        tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))


def _upcast_fp16(graph: onnx.GraphProto, *, keep_weights: bool = False) -> None:
    upcasts = []
    inputs = {i.name for i in graph.input}  # old-style graphs list initializers as inputs too
    for init in graph.initializer:
        if keep_weights and init.data_type == TensorProto.FLOAT16 and init.name not in inputs:
            # The float16 tensor moves to a new name; a Cast gives the old name its float32 value.
            name = init.name
            init.name = f"{name}__fp16"
            upcasts.append(onnx.helper.make_node("Cast", [init.name], [name], name=f"{name}__upcast", to=TensorProto.FLOAT))
        else:
            _upcast_tensor(init)
    if upcasts:
        nodes = [*upcasts, *graph.node]
        del graph.node[:]
        graph.node.extend(nodes)
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


def _free_batch(graph: onnx.GraphProto) -> None:
    for value in (*graph.input, *graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    del graph.value_info[:]  # inferred shapes would still say 1


def _fix_ceil_mode(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        if node.op_type == "MaxPool":
            for attr in node.attribute:
                if attr.name == "ceil_mode":
                    attr.i = 0


def _f32_compute(graph: onnx.GraphProto) -> None:
    _upcast_fp16(graph, keep_weights=True)


_REWRITES = {"fp32": _upcast_fp16, "f32_compute": _f32_compute, "batched": _free_batch, "ceil_mode": _fix_ceil_mode}
