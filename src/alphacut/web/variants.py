"""Model variants the browser needs, derived deterministically from the verified file.

All variants keep only the graph output the engine reads (``output``): ISNet's six
side outputs are training aids, and onnxruntime computes every node of the graph
whatever is fetched, so dropping them saves about 10 % of the inference time.

- ``wasm``: the verified file, pruned to its main output, computing in float32 from
  its float16 weights (recipe ``f32_compute``): onnxruntime-web's WASM kernels are
  float32, so a float16 graph pays for casts around most nodes at every run (about
  5 % of the time); the download stays the size of the original.
- ``webgpu-f16``: the verified file pruned to its main output, in float16, with MaxPool
  ``ceil_mode=1`` rewritten to 0. At ISNet's 1024 input every pooled size is even, so the
  output is identical; some WebGPU MaxPool kernels do not implement ceil mode.
- ``webgpu-f32``: the same rewrites, computing in float32 from the float16 weights like
  ``wasm``, for adapters without ``shader-f16`` (software adapters such as SwiftShader).

Variants are built on the server when first asked for (with the rewrites of
:mod:`alphacut.variants`) and never stored on disk or committed: the same verified
input and recipe version give the same bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import onnx

from ..variants import RECIPE_VERSION, Recipe, derive, has_fp16

__all__ = ["RECIPE_VERSION", "VARIANTS", "Variant", "build_variant", "variant_key", "webgpu_variants"]

Variant = Literal["wasm", "webgpu-f16", "webgpu-f32"]
VARIANTS: tuple[Variant, ...] = ("wasm", "webgpu-f16", "webgpu-f32")


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
    return ("webgpu-f16", "webgpu-f32") if has_fp16(model) else ("webgpu-f32",)


_RECIPES: dict[Variant, tuple[Recipe, ...]] = {
    "wasm": ("main_output", "f32_compute"),
    "webgpu-f16": ("main_output", "ceil_mode"),
    "webgpu-f32": ("main_output", "ceil_mode", "f32_compute"),
}


def build_variant(path: Path, variant: Variant, *, output: str = "output") -> bytes:
    """The bytes of ``variant`` of the model file at ``path``, computing only ``output``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    return derive(path, _RECIPES[variant], output=output)
