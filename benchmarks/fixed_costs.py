"""Fixed costs beside the model: building the ONNX graphs and scoring edge confidence.

    python benchmarks/fixed_costs.py            # print
    python benchmarks/fixed_costs.py --write    # also update benchmarks/RESULTS.md

Each is reported as a ratio against one model call measured in the same run on the same
machine (the model at its CPU layout for one image, as ``alphacut cut`` runs it): graph
building happens once per session and option set, edge confidence once per image (here on
a 12-megapixel matte). These were timing asserts in the tests; a speed figure belongs here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_section

from alphacut.confidence import edge_confidence
from alphacut.graphs import build_apply_graph, build_coefficients_graph, build_postprocess_graph, to_bytes
from alphacut.session import Session


def _best(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _disk_matte(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    r = min(h, w) / 3
    d = np.sqrt((yy - h / 2) ** 2 + (xx - w / 2) ** 2)
    return np.clip((r - d) / 4 + 0.5, 0, 1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    session, _ = Session.for_work(parallel=False)
    x = session.preprocess(np.full((1024, 1024, 3), 128, np.uint8))
    session.infer(x)  # warm-up
    model = statistics.median(_best(lambda: session.infer(x), 1) for _ in range(args.rounds))

    def build() -> None:
        to_bytes(build_postprocess_graph())
        to_bytes(build_coefficients_graph())
        to_bytes(build_apply_graph())

    graphs = _best(build, args.rounds)
    matte = _disk_matte(3000, 4000)
    confidence = _best(lambda: edge_confidence(matte), args.rounds)
    rows = [("building the post-processing graphs (once per session and options)", graphs),
            ("edge confidence of a 12-megapixel matte (once per image)", confidence)]
    lines = ["| step | seconds | x one model call |", "|---|---:|---:|"]
    lines += [f"| {name} | {sec:.3f} | {sec / model:.3f} |" for name, sec in rows]
    text = "\n".join([
        "## Fixed costs beside the model (`benchmarks/fixed_costs.py`)",
        "",
        f"One model call ({session.runtime}): {model:.3f} s, median of {args.rounds}; each step is the best"
        f" of {args.rounds} rounds.",
        "",
        *lines,
        "",
        f"Machine: {machine()}.",
        "",
    ])
    print(text)
    if args.write:
        write_section("Fixed costs beside the model", text)


if __name__ == "__main__":
    main()
