"""alphacut watch: files are taken once completely written, with the batch ledger; clean stops."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_session import FakeSession
from image_builders import solid

from alphacut import Options
from alphacut.jobs import Report
from alphacut.ledger import LEDGER_NAME, Ledger
from alphacut.watch import Watcher, watch


def test_file_is_taken_only_when_size_and_mtime_hold_still(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    watcher = Watcher(src, out, options=Options(), session=FakeSession(), settle=2)
    try:
        data = solid(colour=(200, 10, 10), fmt="JPEG")
        target = src / "arriving.jpg"
        target.write_bytes(data[:100])  # a copy in progress
        assert watcher.ready() == []
        with target.open("ab") as f:
            f.write(data[100:])
        assert watcher.ready() == []  # changed since the last poll: not yet
        assert watcher.ready() == [target]
        results = watcher.process([target])
        assert [r.status for r in results] == ["done"]
        assert watcher.ready() == []  # handled
        (src / "later.jpg").write_bytes(solid(colour=(0, 0, 255), fmt="JPEG"))
        assert watcher.ready() == []
        assert watcher.ready() == [src / "later.jpg"]
    finally:
        watcher.close()
    assert (out / "arriving.png").is_file()


def test_once_processes_what_is_there_and_shares_the_batch_ledger(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.jpg").write_bytes(solid(colour=(200, 10, 10), fmt="JPEG"))
    (src / "bad.jpg").write_bytes(b"nope")
    report = watch(src, out, options=Options(), session=FakeSession(), interval=0.05, once=True)
    assert (out / "sub" / "a.png").is_file()
    assert report.total == 2 and len(report.failures) == 1
    with Ledger(out / LEDGER_NAME) as ledger:
        assert {e.path: e.status for e in ledger.entries()} == {"sub/a.jpg": "done", "bad.jpg": "failed"}
    fake = FakeSession()
    report = watch(src, out, options=Options(), session=fake, interval=0.05, once=True)
    assert fake.calls == 0 and report.skipped == 1


def test_stop_event_ends_the_watch(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    stop = threading.Event()
    results: list[str] = []
    reports: list[Report] = []

    def run() -> None:
        reports.append(watch(src, out, options=Options(), session=FakeSession(), interval=0.05, stop=stop,
                             on_result=lambda r: results.append(r.rel)))

    watcher = threading.Thread(target=run)
    watcher.start()
    (src / "one.jpg").write_bytes(solid(colour=(200, 10, 10), fmt="JPEG"))
    deadline = time.monotonic() + 60  # a guard against a hang, not a speed requirement
    while not (out / "one.png").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    watcher.join(timeout=60)
    assert not watcher.is_alive(), "the watch goes on after stop was set"
    assert results == ["one.jpg"] and reports[0].done == 1


def test_timeout_stops_an_idle_watch(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    started = time.monotonic()
    report = watch(tmp_path / "in", tmp_path / "out", options=Options(), session=FakeSession(),
                   interval=0.05, timeout=0.3)
    assert time.monotonic() - started >= 0.3, "it watched until the timeout"
    assert report.total == 0


@pytest.mark.model
@pytest.mark.slow
def test_cli_watch_stops_cleanly_on_sigterm(isnet_model_path: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "alphacut", "watch", str(src), str(out), "--interval", "0.2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        shutil.copy(Path(__file__).parent / "data" / "photos" / "girl-1.jpg", src / "girl-1.jpg")
        deadline = time.monotonic() + 120
        while not (out / "girl-1.png").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (out / "girl-1.png").exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping" in err and "1 inputs: 1 ok" in err
    assert json.loads((out / "alphacut-report.json").read_text())["counts"]["ok"] == 1


def test_a_second_watcher_or_batch_on_the_same_out_refuses(tmp_path: Path) -> None:
    from alphacut.batch import run_batch
    from alphacut.errors import AlphacutError

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.jpg").write_bytes(solid(colour=(200, 10, 10), fmt="JPEG"))
    watcher = Watcher(src, out, options=Options(), session=FakeSession())
    try:
        with pytest.raises(AlphacutError, match="another alphacut run .* is working in"):
            Watcher(src, out, options=Options(), session=FakeSession())
        with pytest.raises(AlphacutError, match="wait for it to finish"):
            run_batch(src, out, options=Options(), session=FakeSession())
    finally:
        watcher.close()
    assert run_batch(src, out, options=Options(), session=FakeSession()).done == 1
