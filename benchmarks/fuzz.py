"""Fuzz, the long run: thousands of damaged image files through `alphacut batch` and the HTTP API.

The files come from ``tests/fuzz_images.py`` (seeded mutations of small valid PNG, JPEG,
WebP, TIFF, GIF, HEIC and BMP files; every tenth file is an unmutated seed, a good file
beside the bad ones). The model is the tests' stand-in (``tests/fake_session.py``): what
is fuzzed is everything around it, decoding to writing, ledger and report. Three
passes over the same files:

- decode: ``alphacut.imageio.decode`` on each file: anything but an alphacut error is a crash;
- batch: ``run_batch`` over the folder: a crash is the run stopping, a file without its row,
  or a row whose error is not one clean line that says what to do;
- API: each file POSTed to the in-process app (``create_app`` + ``api_routes``): a crash is
  a 5xx or a 4xx without a clean JSON error.

    PYTHONPATH=src python benchmarks/fuzz.py [--files 5000] [--seed 2024] [--max-megapixels 16]

Writes the ``fuzz`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from common import machine, write_section  # noqa: E402
from fake_session import FakeSession  # noqa: E402
from fuzz_images import SUFFIX, cases, is_clean_error  # noqa: E402

from alphacut import Options, imageio  # noqa: E402
from alphacut.batch import run_batch  # noqa: E402
from alphacut.errors import AlphacutError  # noqa: E402


def fuzz_decode(batch: list, max_mp: float) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    for case in batch:
        try:
            imageio.decode(case.data, max_megapixels=max_mp)
            counts["done"] += 1
        except AlphacutError as exc:
            counts["clean errors" if is_clean_error(str(exc)) else "crashes"] += 1
        except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
            counts["crashes"] += 1
            print(f"decode crash: {case.name} ({case.recipe}): {exc!r}", file=sys.stderr)
    return dict(counts)


def fuzz_batch(batch: list, max_mp: float) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        for case in batch:
            (src / case.name).write_bytes(case.data)
        try:
            report = run_batch(src, out, options=Options(max_megapixels=max_mp), session=FakeSession())
        except Exception as exc:  # noqa: BLE001 - a crash is what the fuzz counts
            print(f"batch crash: {exc!r}", file=sys.stderr)
            return {"crashes": len(batch)}
        rows = {e.path: e for e in report.entries}
        for case in batch:
            row = rows.get(case.name)
            if row is None:
                counts["crashes"] += 1
            elif row.status == "done":
                counts["done"] += 1
                counts["good done"] += case.recipe == "good"
            elif is_clean_error(row.error):
                counts["clean errors"] += 1
            else:
                counts["crashes"] += 1
                print(f"batch unclean: {case.name} ({case.recipe}): {row.error!r}", file=sys.stderr)
    return dict(counts)


def fuzz_api(batch: list, max_mp: float) -> dict[str, int]:
    import httpx

    from alphacut.web.api import api_routes
    from alphacut.web.app import create_app

    fake = FakeSession()
    app = create_app(extra_routes=api_routes(lambda: fake))
    counts: collections.Counter[str] = collections.Counter()

    async def post_all() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=120) as client:
            for case in batch:
                r = await client.post(f"/api/v1/cutout?max_megapixels={max_mp}", content=case.data,
                                      headers={"Content-Type": "application/octet-stream"})
                counts[f"HTTP {r.status_code}"] += 1
                if r.status_code == 200:
                    counts["done"] += 1
                    counts["good done"] += case.recipe == "good"
                elif r.status_code < 500 and r.headers.get("content-type", "").startswith("application/json") \
                        and is_clean_error(r.json().get("error")):
                    counts["clean errors"] += 1
                else:
                    counts["crashes"] += 1
                    print(f"api crash: {case.name} ({case.recipe}): {r.status_code} {r.text[:200]!r}",
                          file=sys.stderr)

    asyncio.run(post_all())
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--max-megapixels", type=float, default=16.0,
                        help="the cap for the run (decodable mutants may claim sizes up to it)")
    parser.add_argument("--no-write", action="store_true", help="print, do not update RESULTS.md")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # Pillow warns about every damaged TIFF tag

    batch = list(cases(args.files, seed=args.seed))
    formats = collections.Counter(Path(c.name).suffix for c in batch)
    good = sum(c.recipe == "good" for c in batch)
    rows = []
    for name, run in (("decode", fuzz_decode), ("batch", fuzz_batch), ("API", fuzz_api)):
        started = time.perf_counter()
        counts = run(batch, args.max_megapixels)
        seconds = time.perf_counter() - started
        rows.append((name, counts, seconds))
        print(name, counts, f"{seconds:.1f} s", flush=True)

    by_suffix = {v: k for k, v in SUFFIX.items()}
    lines = [
        f"{args.files} files (seed {args.seed}; {good} of them good, unmutated seeds), megapixel cap"
        f" {args.max_megapixels:g}; by format: "
        + ", ".join(f"{by_suffix.get(s, s)} {n}" for s, n in sorted(formats.items())) + ".",
        "The model is the tests' stand-in: what is fuzzed is decoding, the pipeline, writing, the ledger,"
        " the reports and the API around the model. A crash is an exception escaping, a file without its"
        " record, a 5xx, or an error that is not one clean line saying what to do. Times are wall-clock on"
        " the machine below, with its load average: a bound for CI, not a speed comparison.",
        "",
        "| pass | files | done | good files done | clean errors | crashes | time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, counts, seconds in rows:
        good_done = f"{counts.get('good done', 0)} / {good}" if name != "decode" else "-"
        lines.append(f"| {name} | {args.files} | {counts.get('done', 0)} | {good_done} | {counts.get('clean errors', 0)}"
                     f" | {counts.get('crashes', 0)} | {seconds:.1f} s |")
    api = rows[2][1]
    lines += ["", "API answers: " + ", ".join(f"{k} x{v}" for k, v in sorted(api.items()) if k.startswith("HTTP")) + ".",
              "", f"Machine: {machine()}.",
              "", f"    PYTHONPATH=src python benchmarks/fuzz.py --files {args.files} --seed {args.seed}"]
    text = "## Fuzz: damaged files through batch and the API (`benchmarks/fuzz.py`)\n\n" + "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section("fuzz", text)
    if any(counts.get("crashes", 0) for _, counts, _ in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
