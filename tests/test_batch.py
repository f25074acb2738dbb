"""alphacut batch: mirrored outputs, the ledger's skip/retry rules, bad inputs, reports, kill -9."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_session import FakeSession
from image_builders import solid, tiff_pages
from PIL import Image

from alphacut import Options, imageio
from alphacut.batch import run_batch
from alphacut.errors import AlphacutError, FolderError
from alphacut.fsutil import clean_partials
from alphacut.jobs import REPORT_CSV, REPORT_JSON, FolderJob, scan
from alphacut.ledger import LEDGER_NAME, Ledger
from alphacut.pipeline import cut, stream

PHOTOS = Path(__file__).parent / "data" / "photos"


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _small_jpeg(path: Path, colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "JPEG")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    _small_jpeg(src / "a.jpg")
    _small_jpeg(src / "deep" / "er" / "b.jpg", (10, 200, 10))
    _small_jpeg(src / "deep" / "c.jpeg", (10, 10, 200))
    (src / "notes.txt").write_text("not an image suffix: ignored")
    (src / "fake.png").write_text("text with an image name")
    good = (PHOTOS / "girl-1.jpg").read_bytes()
    (src / "deep" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (src / "empty.webp").write_bytes(b"")
    _small_jpeg(src / ".hidden" / "skip.jpg")
    _small_jpeg(src / ".skip.jpg")
    return src


def test_mirrors_tree_records_failures_and_never_touches_inputs(folder: Path, tmp_path: Path) -> None:
    before = _tree(folder)
    out = tmp_path / "out"
    report = run_batch(folder, out, options=Options(), session=FakeSession())
    assert _tree(folder) == before

    for rel in ("a.png", "deep/er/b.png", "deep/c.png"):
        with Image.open(out / rel) as im:
            assert im.mode == "RGBA" and im.size == (64, 48)
    assert not (out / "deep" / "truncated.png").exists() and not (out / ".hidden").exists()

    data = json.loads((out / REPORT_JSON).read_text())
    assert data["counts"] == {"inputs": 6, "ok": 3, "failed": 3, "needs_review": 0, "ignored": 1,
                              "this_run": {"done": 3, "skipped": 0, "failed": 3}}
    errors = {f["input"]: f["error"] for f in data["failures"]}
    assert set(errors) == {"fake.png", "deep/truncated.jpg", "empty.webp"}
    assert "not an image" in errors["fake.png"]
    assert "truncated" in errors["deep/truncated.jpg"]
    assert "empty" in errors["empty.webp"]
    assert data["ignored"] == ["notes.txt"]
    rows = list(csv.DictReader(io.StringIO((out / REPORT_CSV).read_text())))
    assert sorted(r["input"] for r in rows) == sorted(["a.jpg", "deep/er/b.jpg", "deep/c.jpeg", "fake.png",
                                                       "deep/truncated.jpg", "empty.webp"])
    assert report.total == 6 and len(report.failures) == 3


def test_rerun_skips_done_retries_failed_and_redoes_changes(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(folder, out, options=Options(), session=FakeSession())
    first = (out / "a.png").stat().st_mtime_ns

    fake = FakeSession()
    report = run_batch(folder, out, options=Options(), session=fake)
    assert report.as_dict()["counts"]["this_run"] == {"done": 0, "skipped": 3, "failed": 3}
    assert fake.calls == 0 and (out / "a.png").stat().st_mtime_ns == first

    shutil.copy(PHOTOS / "girl-1.jpg", folder / "deep" / "truncated.jpg")  # the failed one, repaired
    os.utime(folder / "a.jpg")  # touched, same content: the hash says skip
    _small_jpeg(folder / "deep" / "c.jpeg", (0, 0, 0))  # new content: redone
    fake = FakeSession()
    report = run_batch(folder, out, options=Options(), session=fake)
    assert report.as_dict()["counts"]["this_run"] == {"done": 2, "skipped": 2, "failed": 2}
    assert fake.calls == 2
    with Ledger(out / LEDGER_NAME) as ledger:
        assert ledger.get("deep/truncated.jpg").status == "done"  # type: ignore[union-attr]
        assert ledger.get("deep/truncated.jpg").attempts == 3  # failed twice, then done  # type: ignore[union-attr]
        assert ledger.get("a.jpg").attempts == 1  # type: ignore[union-attr]

    # Other options: everything is redone, under the new format's names.
    report = run_batch(folder, out, options=Options(format="webp"), session=FakeSession())
    assert report.as_dict()["counts"]["this_run"]["done"] == 4
    assert (out / "deep" / "er" / "b.webp").is_file()


def test_deleted_output_is_redone(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(folder, out, options=Options(), session=FakeSession())
    (out / "a.png").unlink()
    report = run_batch(folder, out, options=Options(), session=FakeSession())
    assert report.done == 1 and (out / "a.png").is_file()


def test_same_stem_gets_distinct_outputs(tmp_path: Path) -> None:
    src = tmp_path / "in"
    _small_jpeg(src / "x.jpg")
    Image.new("RGB", (20, 20), (1, 2, 3)).save(src / "x.png")
    out = tmp_path / "out"
    run_batch(src, out, options=Options(), session=FakeSession())
    with Ledger(out / LEDGER_NAME) as ledger:
        outputs = {e.path: e.output for e in ledger.entries()}
    assert outputs == {"x.jpg": "x.png", "x.png": "x-png.png"}
    with Image.open(out / "x-png.png") as im:
        assert im.size == (20, 20)


def test_output_inside_input_is_excluded_and_input_inside_output_refused(tmp_path: Path) -> None:
    src = tmp_path / "in"
    _small_jpeg(src / "a.jpg")
    run_batch(src, src / "out", options=Options(), session=FakeSession())
    report = run_batch(src, src / "out", options=Options(), session=FakeSession())
    assert report.total == 1 and report.skipped == 1
    assert scan(src, src / "out")[0] == [src / "a.jpg"]
    with pytest.raises(FolderError, match="contains the input folder"):
        FolderJob(src, tmp_path, options=Options(), session=FakeSession())
    with pytest.raises(FolderError, match="contains the input folder"):
        FolderJob(src, src, options=Options(), session=FakeSession())


def test_clean_partials_removes_only_temporary_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".a.png.k2j3h_x.part").write_bytes(b"half")
    (tmp_path / "a.png").write_bytes(b"whole")
    (tmp_path / "notes.part").write_bytes(b"not ours")
    assert clean_partials(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png", "notes.part"]


def test_clean_partials_leaves_a_live_writers_file(tmp_path: Path) -> None:
    import fcntl

    live = tmp_path / ".b.png.live1.part"
    with live.open("wb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # what atomic_write holds while it writes
        (tmp_path / ".a.png.dead1.part").write_bytes(b"left by kill -9")
        assert clean_partials(tmp_path) == 1
        assert live.exists() and not (tmp_path / ".a.png.dead1.part").exists()
    assert clean_partials(tmp_path) == 1 and not live.exists()


def test_any_failure_of_one_input_is_its_row_and_the_rest_are_done(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in"
    _small_jpeg(src / "a.jpg")
    (src / "pages.tif").write_bytes(tiff_pages())
    (src / "broken-first.tif").write_bytes(tiff_pages(broken_page=0))
    (src / "broken-later.tif").write_bytes(tiff_pages(broken_page=2))  # the first page is still cut out
    with (src / "huge.jpg").open("wb") as f:  # `truncate -s 1T huge.jpg`: MemoryError when read whole
        f.truncate(1 << 40)
    crc = bytearray(solid((8, 8), (9, 9, 9)))
    crc[29] ^= 0xFF  # the IHDR chunk's CRC
    (src / "crc.png").write_bytes(bytes(crc))
    _small_jpeg(src / "z.jpg")
    # Anything else a decoder raises: a bug in a decoder is still one input's failure.
    real_decode = imageio.decode

    def decode(data, **kw):  # type: ignore[no-untyped-def]
        if isinstance(data, bytes) and data[:4] == b"\xff\xd8\xff\xe0" and b"POISON" in data:
            raise struct.error("unpack requires a buffer of 4 bytes")
        return real_decode(data, **kw)

    monkeypatch.setattr(imageio, "decode", decode)
    (src / "poison.jpg").write_bytes((src / "a.jpg").read_bytes() + b"POISON")

    out = tmp_path / "out"
    report = run_batch(src, out, options=Options(), session=FakeSession())
    errors = {f["input"]: f["error"] for f in report.failures}
    assert set(errors) == {"broken-first.tif", "huge.jpg", "crc.png", "poison.jpg"}
    assert "corrupt TIFF" in errors["broken-first.tif"]
    assert "1.1 TB" in errors["huge.jpg"] and "--max-megapixels" in errors["huge.jpg"]
    assert "corrupt PNG" in errors["crc.png"]
    assert "unexpected error" in errors["poison.jpg"] and "re-export" in errors["poison.jpg"]
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "broken-later.png", "pages.png", "z.png"]
    data = json.loads((out / REPORT_JSON).read_text())
    assert data["counts"]["failed"] == 4 and data["counts"]["ok"] == 4
    with Ledger(out / LEDGER_NAME) as ledger:
        assert ledger.get("huge.jpg").status == "failed"  # type: ignore[union-attr]


def test_an_input_folder_named_like_an_output_does_not_collide(tmp_path: Path) -> None:
    src = tmp_path / "in"
    _small_jpeg(src / "x.jpg")  # would be OUT/x.png...
    _small_jpeg(src / "x.png" / "y.jpg")  # ...where the folder x.png/ is mirrored
    out = tmp_path / "out"
    report = run_batch(src, out, options=Options(), session=FakeSession())
    assert not report.failures
    assert (out / "x-jpg.png").is_file() and (out / "x.png" / "y.png").is_file()


def test_a_file_in_the_way_in_out_is_that_inputs_failure(tmp_path: Path) -> None:
    src = tmp_path / "in"
    _small_jpeg(src / "sub" / "a.jpg")
    _small_jpeg(src / "b.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the folder sub/ must go")
    report = run_batch(src, out, options=Options(), session=FakeSession())
    errors = {f["input"]: f["error"] for f in report.failures}
    assert list(errors) == ["sub/a.jpg"] and "in the way" in errors["sub/a.jpg"]
    assert (out / "b.png").is_file()


def test_a_second_run_on_the_same_out_refuses_at_once(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = FolderJob(folder, out, options=Options(), session=FakeSession())
    try:
        with pytest.raises(AlphacutError, match=f"another alphacut run \\(process {os.getpid()}\\) is working in"):
            run_batch(folder, out, options=Options(), session=FakeSession())
        # In another process too (the lock is the operating system's, not this process's).
        code = ("import sys; from alphacut.fsutil import FolderLock\n"
                "try:\n    FolderLock(sys.argv[1]).acquire()\nexcept Exception as e:\n    print(e); sys.exit(3)")
        other = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=60,
                               check=False)
        assert other.returncode == 3 and "wait for it to finish" in other.stdout
    finally:
        first.close()
    report = run_batch(folder, out, options=Options(), session=FakeSession())  # released: runs
    assert report.done == 3


def test_a_killed_run_leaves_the_lock_free(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = ("import sys, time; from alphacut.fsutil import FolderLock\n"
            "FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(AlphacutError, match="another alphacut run"):
            run_batch(folder, out, options=Options(), session=FakeSession())
    finally:
        proc.kill()
        proc.wait()
    assert run_batch(folder, out, options=Options(), session=FakeSession()).done == 3


def test_a_full_disk_stops_the_run_and_keeps_the_ledger(folder: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from alphacut import ledger as ledger_module

    out = tmp_path / "out"
    run_batch(folder, out, options=Options(), session=FakeSession())
    (out / "deep" / "c.png").unlink()  # one input to redo
    original = ledger_module.Ledger.record

    def record(self, *args, **kw):  # type: ignore[no-untyped-def]
        with ledger_module._translated(self.path):  # what SQLite raises on a full disk, as the ledger sees it
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ledger_module.Ledger, "record", record)
    with pytest.raises(AlphacutError) as info:
        run_batch(folder, out, options=Options(), session=FakeSession())
    assert "free some space" in str(info.value) and "move it away" not in str(info.value)
    monkeypatch.setattr(ledger_module.Ledger, "record", original)
    report = run_batch(folder, out, options=Options(), session=FakeSession())  # space freed: it resumes
    assert report.skipped == 3 and report.failed == 3 and (out / "deep" / "c.png").is_file()


@pytest.mark.parametrize(("batch_size", "post_workers", "model_workers"), [(1, 0, 1), (1, 1, 1), (3, 2, 1), (1, 0, 2),
                                                                          (2, 1, 3)])
def test_stream_keeps_order_with_batches_and_workers(batch_size: int, post_workers: int, model_workers: int) -> None:
    items = [b"junk", *[solid((10 + i, 8), (i * 20, 0, 0), "JPEG") for i in range(5)], b"", solid((19, 8), (180, 0, 0), "JPEG")]
    fake = FakeSession()
    got = list(stream(range(len(items)), read=lambda i: items[i], options=Options(), session=fake,
                      batch_size=batch_size, post_workers=post_workers, model_workers=model_workers))
    assert [i for i, _ in got] == list(range(len(items)))
    assert [isinstance(r, AlphacutError) for _, r in got] == [True, False, False, False, False, False, True, False]
    assert fake.calls == -(-6 // batch_size)  # six good images, batch_size per model call
    widths = [r.rgba.shape[1] for _, r in got if not isinstance(r, AlphacutError)]
    assert widths == [10 + i for i in (0, 1, 2, 3, 4, 9)]


def test_model_workers_call_the_model_concurrently() -> None:
    items = [solid((10 + i, 8), (i * 20, 0, 0), "JPEG") for i in range(6)]
    fake = FakeSession(delay=0.2)
    got = list(stream(range(6), read=lambda i: items[i], options=Options(), session=fake,
                      model_workers=2))
    assert [i for i, _ in got] == list(range(6)) and fake.max_running == 2


def test_cpu_layout() -> None:
    from alphacut.session import cpu_layout

    assert cpu_layout(cores=2) == (2, 1)
    assert cpu_layout(cores=16) == (4, 4)
    assert cpu_layout(cores=1) == (1, 1)
    assert cpu_layout(threads=2, cores=2) == (1, 2)


# --- with the real model ----------------------------------------------------------------------


@pytest.mark.model
def test_real_batch_matches_single_cutouts(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(PHOTOS / "girl-1.jpg", src / "girl-1.jpg")
    shutil.copy(PHOTOS / "car-3.jpg", src / "sub" / "car-3.jpg")
    out = tmp_path / "out"
    report = run_batch(src, out, options=Options(), session=session)
    assert report.done == 2 and not report.failures
    single = cut(__import__("alphacut").imageio.decode(src / "girl-1.jpg"), options=Options(), session=session)
    with Image.open(out / "girl-1.png") as im:
        alpha = np.asarray(im)[..., 3]
    assert np.array_equal(alpha, single.rgba[..., 3])
    entry = next(e for e in report.entries if e.path == "girl-1.jpg")
    assert entry.confidence == pytest.approx(single.confidence.score)


@pytest.mark.model
@pytest.mark.slow
def test_kill_9_then_rerun_accounts_for_every_input_once(isnet_model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    names = []
    for i, photo in enumerate(["girl-1.jpg", "car-3.jpg", "animal-2.jpg"] * 2):
        rel = f"{'ab'[i // 3]}/{photo}"
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        with Image.open(PHOTOS / photo) as im:  # small inputs: the model's cost is fixed, the rest is not
            im.convert("RGB").resize((im.width // 3, im.height // 3)).save(src / rel, "JPEG")
        names.append(rel)
    (src / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "alphacut", "batch", str(src), str(out), "--threads", "2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.rglob("*.png")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_with = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert 1 <= len(killed_with) < 6

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert again.returncode == 1, again.stderr  # the broken input fails; everything else is done
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
    with Ledger(out / LEDGER_NAME) as ledger:
        rows = list(ledger.entries())
    assert sorted(r.path for r in rows) == sorted([*names, "b/broken.jpg"])
    assert {r.path for r in rows if r.status == "failed"} == {"b/broken.jpg"}
    outputs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert outputs == sorted(n.replace(".jpg", ".png") for n in names)
    for p in outputs:
        with Image.open(out / p) as im:
            im.load()
            assert im.mode == "RGBA"
    data = json.loads((out / REPORT_JSON).read_text())
    assert data["counts"]["inputs"] == 7 and data["counts"]["ok"] == 6
    assert data["counts"]["this_run"]["skipped"] >= len(killed_with) - 1  # one may have missed its ledger row


def test_listing_preset_over_a_folder(folder: Path, tmp_path: Path) -> None:
    """Every cutout of the folder becomes the preset's listing photo, in the mirrored tree."""
    out = tmp_path / "out"
    options = Options.from_preset("portrait-4x5", canvas="160x200", upscale=True)
    report = run_batch(folder, out, options=options, session=FakeSession())
    assert report.as_dict()["counts"]["ok"] == 3
    for rel in ("a.png", "deep/er/b.png", "deep/c.png"):
        with Image.open(out / rel) as im:
            px = np.asarray(im)
            assert im.size == (160, 200) and (px[0, 0] == (255, 255, 255)).all()
            cols = np.nonzero((px != 255).any(axis=(0, 2)))[0]
            assert cols.max() + 1 - cols.min() == 136  # 85 % of 160: the disc upscaled to fill
