"""Speed and memory: alphacut vs rembg with the same ISNet weights, same photos, same run.

    python benchmarks/speed.py                 # print
    python benchmarks/speed.py --write         # also update benchmarks/RESULTS.md

Both tools read each file and write a PNG cutout, as their CLIs do; both sessions are
created before timing, and a warm-up image runs first. Rounds alternate between the two
tools so that drift on a shared machine hits both alike. Peak memory for a 24-megapixel
photo is measured in a fresh process for each tool (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PHOTOS, ROOT, machine, write_section

from alphacut import Options, Session, models
from alphacut.fsutil import atomic_write
from alphacut.pipeline import stream

MATTING = ROOT / "tests" / "data" / "matting"


def run_alphacut(session: Session, photos: list[Path], out: Path, workers: int) -> float:
    """What `alphacut cut FOLDER -o OUT` does (same session layout, same stream)."""
    t = time.perf_counter()
    opts = Options()
    for path, result in stream(photos, read=Path.read_bytes, options=opts, session=session,
                               model_workers=workers, post_workers=1):
        if isinstance(result, Exception):
            raise result
        atomic_write(out / f"{path.stem}-cutout.png", result.encode(opts), overwrite=True)
    return time.perf_counter() - t


def run_rembg(session: object, photos: list[Path], out: Path) -> float:
    from rembg import remove

    t = time.perf_counter()
    for path in photos:
        (out / f"{path.stem}.png").write_bytes(remove(path.read_bytes(), session=session))
    return time.perf_counter() - t


def lemur_iou(session: Session, rembg_session: object) -> dict[str, float]:
    """Mean IoU (alpha > 0.5) over the lemur composites, for both tools."""
    import io

    from rembg import remove

    fg = np.asarray(Image.open(MATTING / "lemur_foreground.png").convert("RGB"), np.float32)
    truth = np.asarray(Image.open(MATTING / "lemur_alpha.png").convert("L"), np.float32) / 255
    bgs = [(220, 30, 30), (20, 200, 40), (30, 40, 220), (255, 255, 255), (0, 0, 0)]
    real = np.asarray(Image.open(MATTING / "lemur_background.png").convert("RGB"), np.float32)
    scores: dict[str, list[float]] = {"alphacut": [], "rembg": []}
    for bg in [real, *[np.broadcast_to(np.array(c, np.float32), fg.shape) for c in bgs]]:
        photo = np.round(fg * truth[..., None] + bg * (1 - truth[..., None])).astype(np.uint8)
        ours = session_cut(session, photo)
        theirs = np.asarray(Image.open(io.BytesIO(remove(_png(photo), session=rembg_session))))[..., 3] / 255
        for name, alpha in (("alphacut", ours), ("rembg", theirs)):
            x, y = alpha > 0.5, truth > 0.5
            scores[name].append(float((x & y).sum() / (x | y).sum()))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def session_cut(session: Session, photo: np.ndarray) -> np.ndarray:
    from alphacut import remove_background

    return remove_background(photo, session=session).alpha


def _png(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def peak_memory(tool: str, model: Path, megapixels: float = 24.0) -> float:
    """Peak RSS (GiB) of a fresh process cutting one photo of ``megapixels``, read to written."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.jpg"
        im = Image.open(PHOTOS / "animal-3.jpg").convert("RGB")
        w = int((megapixels * 1e6 * 3 / 2) ** 0.5)
        im.resize((w, int(megapixels * 1e6 / w)), Image.Resampling.BICUBIC).save(src, quality=92)
        code = {
            "alphacut": (
                "from alphacut import Session, Options, remove_background;"
                f"s=Session(model_path={str(model)!r});"
                f"c=remove_background({str(src)!r}, session=s, options=Options(max_megapixels=100));"
                f"open({tmp!r}+'/o.png','wb').write(c.encode())"
            ),
            "rembg": (
                "from PIL import Image; Image.MAX_IMAGE_PIXELS=None;"
                "from rembg import remove, new_session;"
                f"s=new_session('dis_custom', model_path={str(model)!r});"
                f"open({tmp!r}+'/o.png','wb').write(remove(open({str(src)!r},'rb').read(), session=s))"
            ),
        }[tool]
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child started by this
        # (large) process would report the parent's peak; a new address space's VmHWM starts at 0.
        code += ";import re;print(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return int(out.stdout.strip().splitlines()[-1]) / 2**20  # kB -> GB


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=PHOTOS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="medium")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args(argv)

    from rembg import new_session

    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    model = models.model_path(args.model)
    session, workers = Session.for_work(args.model, parallel=True)
    rembg_session = new_session("dis_custom", model_path=str(model))
    times: dict[str, list[float]] = {"alphacut": [], "rembg": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run_alphacut(session, photos[:2], out, workers)  # warm-up
        run_rembg(rembg_session, photos[:1], out)
        for r in range(args.rounds):
            for tool in (("alphacut", "rembg") if r % 2 == 0 else ("rembg", "alphacut")):
                if tool == "alphacut":
                    times[tool].append(run_alphacut(session, photos, out, workers))
                else:
                    times[tool].append(run_rembg(rembg_session, photos, out))
                print(f"round {r + 1} {tool}: {len(photos) / times[tool][-1]:.3f} images/s", flush=True)
    rate = {k: len(photos) / statistics.median(v) for k, v in times.items()}
    iou = lemur_iou(session, rembg_session)
    memory = {} if args.no_memory else {t: peak_memory(t, model) for t in ("alphacut", "rembg")}
    result = {"images_per_s": rate, "ratio": rate["alphacut"] / rate["rembg"], "lemur_iou": iou, "peak_gb_24mp": memory}
    print(json.dumps(result, indent=2))

    lines = [
        "## Speed (engine, CPU)",
        "",
        f"Machine: {machine()}.",
        f"Photos: the {len(photos)} photos of `shared/data/photos` ({', '.join(p.name for p in photos)}),"
        f" read from disk and written as PNG cutouts, as `alphacut cut` and rembg's `remove` do;"
        f" model `{args.model}` (the same ONNX file for both; alphacut runs it with {session.runtime},"
        " rembg with onnxruntime in its float16 graph; `ALPHACUT_CPU_RUNTIME=onnxruntime` gives"
        " alphacut's float32 onnxruntime path, measured at 1.21-1.32x before the OpenVINO path);"
        f" median of {args.rounds} alternating rounds. `benchmarks/speed.py`.",
        "",
        "| tool | images/s | ratio vs rembg | lemur IoU (6 composites) |" + (" peak RSS, 24 MP photo |" if memory else ""),
        "|---|---|---|---|" + ("---|" if memory else ""),
    ]
    for tool in ("alphacut", "rembg"):
        row = f"| {tool} | {rate[tool]:.3f} | {rate[tool] / rate['rembg']:.2f}x | {iou[tool]:.4f} |"
        lines.append(row + (f" {memory[tool]:.2f} GiB |" if memory else ""))
    lines += ["", "alphacut's figure includes its edge refinement and foreground colour estimation;"
              " rembg's default cutout does neither."]
    if args.write:
        write_section("speed", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
