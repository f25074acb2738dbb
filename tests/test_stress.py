"""The parallel model path under a competing CPU load: no run may hang.

OpenVINO's first calls from two threads at once could deadlock inside its Python
binding (see :mod:`alphacut.openvino_model`). The race is on process-wide first-use
state, so every round runs in a fresh process: a fresh model, and several threads'
first calls released together by a barrier, while a busy process competes for the
CPU. Each round has a deadline; a round past it is sent SIGABRT, which makes
``faulthandler`` print the stuck threads' stacks, and fails the test instead of
hanging the run.

``ALPHACUT_STRESS_ROUNDS`` raises the round count (the CI default keeps the test
well under a minute and a half on two cores).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

PHOTOS = Path(__file__).parent / "data" / "photos"
ROUNDS = int(os.environ.get("ALPHACUT_STRESS_ROUNDS", "8"))
# Deadlines far above a round's time on a loaded two-core machine (a few seconds for a
# small-graph round, under a minute for the cut): a hung round never ends.
ROUND_DEADLINE_S = 90
CUT_DEADLINE_S = 300

# One round: a fresh OpenVinoModel on a small graph (the binding's first calls are
# the same whatever the model's size), its first calls from more threads than it has
# streams, all at once; then a second model loaded on two threads at once.
_ROUND = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save
    from alphacut.openvino_model import OpenVinoModel

    path = sys.argv[1]
    weight = numpy_helper.from_array(np.full((1, 3, 3, 3), 0.1, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["conv"], pads=[1, 1, 1, 1]),
         helper.make_node("Sigmoid", ["conv"], ["mask"])],
        "stress",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 64, 64])],
        [weight],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)

    def at_once(n, work):
        barrier = threading.Barrier(n)
        results = [None] * n
        def call(i):
            barrier.wait()
            results[i] = work(i)
        threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    model = OpenVinoModel(path, threads=1)
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    masks = at_once(4, lambda i: model.run(["mask"], {"input": x})[0])
    assert all(m.shape == (2, 1, 64, 64) for m in masks), [m.shape for m in masks]
    assert all(np.array_equal(m, masks[0]) for m in masks), "threads disagree"
    assert not np.array_equal(masks[0][0], masks[0][1]), "a group's images got one result"
    models = at_once(2, lambda i: OpenVinoModel(path, threads=1))
    assert all(np.array_equal(m.run(["mask"], {"input": x})[0], masks[0]) for m in models)
    print("round done")
    """
)


@pytest.fixture
def busy_cpu() -> Iterator[None]:
    """A process spinning on one core for the length of the test (the reported hangs needed load)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def _run_round(
    args: list[str], *, what: str, deadline_s: float, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a Python process; fails the test with its stacks if it hangs."""
    child = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        out, err = child.communicate(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGABRT)  # faulthandler dumps every thread's stack
        try:
            out, err = child.communicate(timeout=30)
        finally:
            child.kill()
        pytest.fail(f"{what} hung for {deadline_s} s, its threads:\n{err[-8000:]}")
    return child.returncode, out, err


def test_parallel_first_calls_never_hang(tmp_path: Path, busy_cpu: None) -> None:
    """Fresh models' first calls from several threads at once, round after round, under load."""
    pytest.importorskip("openvino")
    script = tmp_path / "round.py"
    script.write_text(_ROUND)
    for round_ in range(1, ROUNDS + 1):
        what = f"round {round_} of {ROUNDS}"
        rc, out, err = _run_round([str(script), str(tmp_path / "stress.onnx")], what=what, deadline_s=ROUND_DEADLINE_S)
        assert rc == 0 and "round done" in out, f"{what} failed (rc {rc}):\n{err[-6000:]}"


@pytest.mark.model
def test_cut_folder_in_parallel_on_openvino_under_load(
    isnet_model_path: Path, tmp_path: Path, busy_cpu: None
) -> None:
    """The reported case, end to end: ``alphacut cut FOLDER`` on OpenVINO's CPU path, busy machine."""
    pytest.importorskip("openvino")
    env = {**os.environ, "ALPHACUT_CPU_RUNTIME": "openvino"}
    photos = sorted(PHOTOS.glob("*.jpg"))[:2]  # two images: two model calls start together
    rc, _, err = _run_round(
        ["-m", "alphacut", "cut", *map(str, photos), "-o", str(tmp_path / "out"), "--device", "cpu"],
        what="alphacut cut", deadline_s=CUT_DEADLINE_S, env=env,
    )
    assert rc == 0, err[-6000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{p.stem}-cutout.png" for p in photos)
