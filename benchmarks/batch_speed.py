"""Folder throughput: `alphacut batch` against rembg's folder mode, same model, same photos, same run.

rembg side: ``rembg.new_session("dis_custom", model_path=<the medium .onnx>)`` and, per file,
read -> ``rembg.remove`` -> write PNG, sequentially, as ``rembg p`` does, with onnxruntime's
default threads (all cores). alphacut side: what ``alphacut batch`` does,
:meth:`alphacut.session.Session.for_work` (on a CPU: the same weights, in bfloat16 on OpenVINO where
the CPU has native bfloat16, else as float32 on onnxruntime; parallel model calls) and :func:`alphacut.batch.run_batch` (decode, model, refinement and encode pipelined;
ledger and report included). Session creation is excluded from both timings; one warm-up
image each first.

    PYTHONPATH=src ALPHACUT_HOME=... python benchmarks/batch_speed.py [--photos DIR] [--rounds N]

Writes the ``batch`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PHOTOS, machine, write_section

from alphacut import Options, models
from alphacut.batch import run_batch
from alphacut.jobs import scan
from alphacut.session import Session


def time_rembg(photos: list[Path], out: Path, model_path: Path) -> tuple[float, float]:
    import rembg

    session = rembg.new_session("dis_custom", model_path=str(model_path))
    rembg.remove(photos[0].read_bytes(), session=session)  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    for p in photos:
        (out / f"{p.stem}.png").write_bytes(rembg.remove(p.read_bytes(), session=session))
    return time.perf_counter() - started, time.process_time() - cpu


def time_alphacut(folder: Path, out: Path) -> tuple[float, float]:
    session, workers = Session.for_work("medium")  # what `alphacut batch` uses
    warm = out.parent / "warm"
    warm.mkdir()
    for photo in sorted(folder.iterdir())[:workers]:  # one warm-up image per parallel model call
        shutil.copy(photo, warm)
    run_batch(warm, out.parent / "warm-out", options=Options(), session=session, model_workers=workers)
    started, cpu = time.perf_counter(), time.process_time()
    report = run_batch(folder, out, options=Options(), session=session, model_workers=workers)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert report.done == len(report.entries), report.failures
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--rounds", type=int, default=1, help="alternate rembg/alphacut this many times")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args()

    photos, _ = scan(args.photos)
    from alphacut.openvino_model import choose_cpu_runtime

    runtime = {"openvino": "OpenVINO, bfloat16", "onnxruntime": "onnxruntime, float32"}[choose_cpu_runtime()[0]]
    model_path = models.model_path("medium")
    load_before = os.getloadavg()[0]
    rembg_s: list[float] = []
    ours_s: list[float] = []
    rembg_cpu: list[float] = []
    ours_cpu: list[float] = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "rembg").mkdir()
            wall, cpu = time_rembg(photos, Path(tmp) / "rembg", model_path)
            rembg_s.append(wall)
            rembg_cpu.append(cpu)
            wall, cpu = time_alphacut(args.photos, Path(tmp) / "alphacut")
            ours_s.append(wall)
            ours_cpu.append(cpu)
        print(f"round: rembg {rembg_s[-1]:.1f} s ({rembg_cpu[-1]:.1f} CPU s), alphacut {ours_s[-1]:.1f} s"
              f" ({ours_cpu[-1]:.1f} CPU s), load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    n = len(photos)
    r_rate, a_rate = n / min(rembg_s), n / min(ours_s)
    ratio = a_rate / r_rate
    verdict = "meets" if ratio >= 1.3 else "MISSES"
    text = f"""## Batch throughput (CPU): `alphacut batch` vs rembg folder mode

{n} photos from `{args.photos.name}/` (480x360 to 1440x1079 px and one 987x1481 PNG), model `medium`
(ISNet fp16 weights, the same .onnx file for both; alphacut's model runtime: {runtime}), best of {args.rounds} round(s), rembg and alphacut
alternating in the same process. Machine: {machine()}; 1-min load average {load_before:.1f} at the start.

| engine | seconds (best) | images/s | CPU seconds per image (least) |
|---|---|---|---|
| rembg 2.x (`new_session("dis_custom")` + `remove`, sequential) | {min(rembg_s):.1f} | {r_rate:.3f} | {min(rembg_cpu) / n:.2f} |
| `alphacut batch` (pipelined; also refines edges and estimates foreground colours) | {min(ours_s):.1f} | {a_rate:.3f} | {min(ours_cpu) / n:.2f} |

alphacut / rembg, images/s: **{ratio:.2f}x** ({verdict} the 1.3x goal); CPU work per image, rembg / alphacut:
{min(rembg_cpu) / min(ours_cpu):.2f}x. All rounds, wall seconds: rembg {', '.join(f'{s:.1f}' for s in rembg_s)};
alphacut {', '.join(f'{s:.1f}' for s in ours_s)}; CPU seconds: rembg {', '.join(f'{s:.1f}' for s in rembg_cpu)};
alphacut {', '.join(f'{s:.1f}' for s in ours_cpu)}. Other processes shared this machine's CPUs during
the run (see the load averages), so wall-clock figures move from round to round; CPU seconds per
image are the steadier comparison of work done.

GPU: `benchmarks/gpu.py` (images/s at batch 1, 8 and 32 and the pure-model ceiling) was **not run**:
there was no GPU in this environment.
"""
    print(text)
    if not args.no_write:
        write_section("batch", text)


if __name__ == "__main__":
    main()
