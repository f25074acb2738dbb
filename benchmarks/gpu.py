"""GPU throughput: images/s of `alphacut batch` at batch 1, 8 and 32, and the pure-model ceiling.

Needs onnxruntime-gpu (``pip install 'alphacut[gpu]'``) and a CUDA GPU. All figures in one run:

- pipeline: :func:`alphacut.batch.run_batch` over a folder (decode, model, refinement,
  encode, atomic writes, ledger) with ``batch_size`` 1, 8 and 32 (the model copy with a
  free batch dimension from :func:`alphacut.session.batched_model_path`);
- ceiling: ``Session.infer`` alone on ready-made input tensors at the same batch sizes,
  what the model allows with no I/O at all.

    PYTHONPATH=src ALPHACUT_HOME=... python benchmarks/gpu.py [--photos DIR] [--copies 8] [--device cuda]

The photo folder is repeated ``--copies`` times (as hard links or copies in a temporary
folder) so each run has enough images to fill batches of 32. Writes the ``gpu`` section
of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PHOTOS, write_section

from alphacut import Options, Session, models
from alphacut.batch import run_batch
from alphacut.jobs import scan
from alphacut.session import batched_model_path

SIZES = (1, 8, 32)


def gpu_name() -> str:
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip().replace("\n", "; ") or "unknown GPU"
    except (OSError, subprocess.SubprocessError):
        return "unknown GPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--device", default="cuda", choices=["cuda", "tensorrt"])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    spec = models.get_spec("medium")
    session = Session(spec, device=args.device, model_path=batched_model_path(spec))
    photos, _ = scan(args.photos)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        for c in range(args.copies):
            for p in photos:
                target = folder / f"copy{c}" / p.name
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(p, target)
                except OSError:
                    shutil.copy(p, target)
        n = args.copies * len(photos)
        warm = Path(tmp) / "warm"
        run_batch(folder / "copy0", warm, options=Options(), session=session, batch_size=8)  # warm-up, engines
        for size in SIZES:
            out = Path(tmp) / f"out{size}"
            started = time.perf_counter()
            report = run_batch(folder, out, options=Options(), session=session, batch_size=size)
            seconds = time.perf_counter() - started
            assert report.done == n, report.failures
            x = np.random.default_rng(0).standard_normal((size, 3, 1024, 1024)).astype(np.float32) * 0.5
            session.infer(x)  # warm-up at this shape
            reps = max(2, 64 // size)
            t0 = time.perf_counter()
            for _ in range(reps):
                session.infer(x)
            ceiling = reps * size / (time.perf_counter() - t0)
            rows.append((size, n / seconds, ceiling))
            print(f"batch {size}: pipeline {n / seconds:.1f} img/s, model alone {ceiling:.1f} img/s", file=sys.stderr)
    table = "\n".join(f"| {s} | {p:.1f} | {c:.1f} | {p / c * 100:.0f} % |" for s, p, c in rows)
    text = f"""## GPU throughput (`benchmarks/gpu.py`)

{gpu_name()}; providers {', '.join(session.active_providers)}; {n} images ({args.copies} copies of
`{args.photos.name}/`), model `medium`.

| batch | `alphacut batch` images/s | model alone images/s | pipeline / ceiling |
|---|---|---|---|
{table}
"""
    print(text)
    if not args.no_write:
        write_section("gpu", text)


if __name__ == "__main__":
    main()
