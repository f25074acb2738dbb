"""The command line: exit codes, output naming, stdin/stdout, --json, overwrite rules."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest
from click.testing import CliRunner
from fake_session import FakeSession
from image_builders import solid
from PIL import Image

from alphacut.cli import cli

DATA = Path(__file__).parent / "data"


def run(*args: str, input: bytes | None = None) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout_bytes, result.stderr


def small_photo(dest: Path, name: str = "girl-1.jpg") -> Path:
    im = Image.open(DATA / "photos" / name)
    im.thumbnail((240, 240))
    dest.parent.mkdir(parents=True, exist_ok=True)
    im.save(dest, "JPEG", quality=92)
    return dest


# --- no model needed ------------------------------------------------------------------------------


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("cut")[0] == 2  # no input
    assert run("cut", "x.jpg", "--format", "gif")[0] == 2
    code, _, err = run("cut", "a.jpg", "b.jpg", "-o", "-")
    assert code == 2 and "exactly one input" in err
    code, _, err = run("cut", "a.jpg", "--background", "notacolour")
    assert code == 2 and "#rrggbb" in err


def test_missing_model_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "empty-home"))
    photo = small_photo(tmp_path / "p.jpg")
    code, _, err = run("cut", str(photo))
    assert code == 1 and "alphacut models pull medium" in err


def test_help_lists_every_command() -> None:
    code, out, _ = run("--help")
    assert code == 0
    listed = out.decode().split("Commands:", 1)[1].splitlines()
    names = {line.split()[0] for line in listed if line.startswith("  ") and line.split()}
    assert names == {"cut", "models", "runtime", "serve", "doctor", "batch", "watch"}


def test_models_list_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path))
    code, out, _ = run("models", "list", "--json")
    assert code == 0
    entries = {e["name"]: e for e in json.loads(out)}
    assert set(entries) >= {"medium", "small"} and not entries["medium"]["cached"]


def test_runtime_pull_refuses_a_wrong_tarball(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))
    bad = tmp_path / "onnxruntime-web.tgz"
    bad.write_bytes(b"not the real tarball")
    code, _, err = run("runtime", "pull", "--tarball", str(bad))
    assert code == 1 and "integrity" in err.lower(), err
    assert not (tmp_path / "home" / "runtime").exists() or not any((tmp_path / "home" / "runtime").iterdir())


# --- cut over many files, with a stand-in for the model ---------------------------------------------


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> FakeSession:
    """`cut` runs on a FakeSession (two model calls at once, as on a 2-core CPU)."""
    fake = FakeSession()
    monkeypatch.setattr("alphacut.cli.common.make_session", lambda *a, **k: (fake, 2))
    monkeypatch.setattr("alphacut.cli.common.make_refiner", lambda *a, **k: fake)
    return fake


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_cut_never_takes_its_own_outputs_as_inputs(tmp_path: Path, fake_model: FakeSession) -> None:
    small_photo(tmp_path / "shots" / "car-1.jpg", "car-3.jpg")
    for _ in range(3):  # three runs over the same folder: one output, never an output of an output
        code, _, err = run("cut", str(tmp_path / "shots"))
        assert code == 0, err
    assert _files(tmp_path / "shots") == ["car-1-cutout.png", "car-1.jpg"]
    assert "car-1-cutout.png exists (pass --overwrite to replace it)" in err and "0 done, 1 skipped" in err
    # Globs leave outputs out too; an output named on the command line is skipped, and says why.
    code, _, err = run("cut", str(tmp_path / "shots" / "*"), "--mask")
    assert code == 0 and _files(tmp_path / "shots") == ["car-1-cutout.png", "car-1-mask.png", "car-1.jpg"]
    code, out, _ = run("cut", str(tmp_path / "shots" / "car-1-cutout.png"), "-o", str(tmp_path / "o"), "--json")
    record = json.loads(out)
    assert code == 0 and record["status"] == "skipped" and "named like an alphacut output" in record["reason"]
    # -o's folder inside the input folder: what is in it is never an input.
    assert run("cut", str(tmp_path / "shots"), "-o", str(tmp_path / "shots" / "out"))[0] == 0
    assert run("cut", str(tmp_path / "shots"), "-o", str(tmp_path / "shots" / "out"))[0] == 0
    assert _files(tmp_path / "shots" / "out") == ["car-1-cutout.png"]


def test_cut_says_which_cutouts_to_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cutout the edge confidence flags (the model's outline never commits) is named on
    standard error with what to look at, and counted in the summary; a sure one is not."""

    class Unsure(FakeSession):
        def infer(self, batch: np.ndarray) -> np.ndarray:
            mask = super().infer(batch)
            return (0.35 + 0.3 * mask).astype(np.float32)  # 0.35 outside, 0.65 inside: mush

    small_photo(tmp_path / "in" / "a.jpg")
    small_photo(tmp_path / "in" / "b.jpg", "car-3.jpg")
    monkeypatch.setattr("alphacut.cli.common.make_session", lambda *a, **k: (Unsure(), 2))
    code, _, err = run("cut", str(tmp_path / "in"), "-o", str(tmp_path / "unsure"))
    assert code == 0, err
    assert "alphacut: check: " in err and "unsure of part of the outline" in err, err
    assert "2 done (2 to check by eye), 0 skipped, 0 failed" in err
    monkeypatch.setattr("alphacut.cli.common.make_session", lambda *a, **k: (FakeSession(), 2))
    code, _, err = run("cut", str(tmp_path / "in"), "-o", str(tmp_path / "sure"))
    assert code == 0 and "check" not in err and "2 done, 0 skipped, 0 failed" in err, err


def test_cut_names_shared_outputs_by_one_rule(tmp_path: Path, fake_model: FakeSession) -> None:
    small_photo(tmp_path / "a.jpg")
    shutil.copy(tmp_path / "a.jpg", tmp_path / "a.png")
    small_photo(tmp_path / "b.jpg")
    # The same file twice (itself and through its folder) is one input; a.jpg and a.png both keep
    # their extension, whatever the order.
    code, out, _ = run("cut", str(tmp_path / "b.jpg"), str(tmp_path / "a.png"), str(tmp_path), "-o",
                       str(tmp_path / "o"), "--json")
    records = [json.loads(line) for line in out.decode().splitlines()]
    assert code == 0 and len(records) == 3
    assert _files(tmp_path / "o") == ["a-jpg-cutout.png", "a-png-cutout.png", "b-cutout.png"]
    notes = {Path(r["output"]).name: r["warnings"] for r in records}
    assert any("another input also makes a-cutout.png" in w for w in notes["a-png-cutout.png"])
    assert notes["b-cutout.png"] == []


def test_cut_cleans_the_temporary_files_a_killed_run_left(tmp_path: Path, fake_model: FakeSession) -> None:
    small_photo(tmp_path / "a.jpg")
    (tmp_path / ".a-cutout.png.x8k2_q.part").write_bytes(b"half an image, left by kill -9")
    (tmp_path / ".b-cutout.png.k3j4hq.part").write_bytes(b"another input's, left by kill -9")
    (tmp_path / ".notes.txt.abcdef.part").write_bytes(b"not alphacut's: kept")
    assert run("cut", str(tmp_path / "a.jpg"))[0] == 0
    assert _files(tmp_path) == [".notes.txt.abcdef.part", "a-cutout.png", "a.jpg"]


def test_cut_carries_on_past_any_bad_input(tmp_path: Path, fake_model: FakeSession) -> None:
    src = tmp_path / "in"
    small_photo(src / "a.jpg")
    with (src / "huge.jpg").open("wb") as f:  # `truncate -s 1T`: was a MemoryError and a traceback
        f.truncate(1 << 40)
    data = bytearray(solid((8, 8), (5, 5, 5)))
    data[29] ^= 0xFF  # the IHDR chunk's CRC
    (src / "crc.png").write_bytes(bytes(data))
    (src / "x.png").mkdir()  # a folder named like an image, beside a file of the same name's output
    small_photo(src / "x.png" / "y.jpg")
    small_photo(src / "z.jpg")
    out = tmp_path / "out"
    (out / "z-cutout.png").mkdir(parents=True)  # a folder in the way of an output
    code, stdout, err = run("cut", str(src), "-o", str(out), "--json")
    assert code == 1 and "Traceback" not in err
    records = {Path(r["path"]).name: r for r in map(json.loads, stdout.decode().splitlines())}
    assert {n: r["status"] for n, r in records.items()} == {
        "a.jpg": "ok", "huge.jpg": "error", "crc.png": "error", "y.jpg": "ok", "z.jpg": "error"}
    assert "1.1 TB" in records["huge.jpg"]["error"] and "corrupt PNG" in records["crc.png"]["error"]
    assert "in the way" in records["z.jpg"]["error"]
    assert _files(out) == ["a-cutout.png", "x.png/y-cutout.png"]


def test_ctrl_c_exits_130_and_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Interrupted(FakeSession):
        def infer(self, batch: np.ndarray) -> np.ndarray:
            if self.calls >= 2:
                raise KeyboardInterrupt  # what Ctrl-C raises in the thread that has it
            return super().infer(batch)

    fake = Interrupted()
    monkeypatch.setattr("alphacut.cli.common.make_session", lambda *a, **k: (fake, 1))
    for i in range(5):
        small_photo(tmp_path / f"p{i}.jpg")
    result = CliRunner().invoke(cli, ["cut", str(tmp_path)])
    assert result.exit_code == 130 and "run the same command again" in result.stderr
    outputs = [p for p in tmp_path.iterdir() if "cutout" in p.name]
    assert len(outputs) < 5 and not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    for p in outputs:
        with Image.open(p) as im:
            im.load()  # whole


def test_batch_refuses_an_out_another_run_holds(tmp_path: Path, fake_model: FakeSession) -> None:
    from alphacut.fsutil import FolderLock

    small_photo(tmp_path / "in" / "a.jpg")
    with FolderLock(tmp_path / "out"):
        code, _, err = run("batch", str(tmp_path / "in"), str(tmp_path / "out"))
        assert code == 1 and "another alphacut run" in err and "wait for it to finish" in err
        assert not (tmp_path / "out" / "a.png").exists()
    code, _, err = run("batch", str(tmp_path / "in"), str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "a.png").is_file(), err


def test_cut_with_a_start_mask_refines_it_without_the_model(tmp_path: Path, fake_model: FakeSession) -> None:
    photo = small_photo(tmp_path / "photo.jpg")
    with Image.open(photo) as im:
        w, h = im.size
    mask = np.zeros((h * 2, w * 2), np.uint8)  # another size, the same aspect ratio
    mask[h // 2 : h, w // 2 : w] = 255
    Image.fromarray(mask).save(tmp_path / "fixed-mask.png")
    code, out, err = run("cut", str(photo), "--start-mask", str(tmp_path / "fixed-mask.png"), "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "ok" and record["output"] == str(tmp_path / "photo-cutout.png")
    assert fake_model.calls == 0, "the model was not run"
    (given,) = fake_model.post_masks
    assert np.array_equal(given[0, 0], mask.astype(np.float32) / 255.0)
    with Image.open(tmp_path / "photo-cutout.png") as im:
        assert im.size == (w, h) and im.mode == "RGBA"


def test_cut_with_a_start_mask_needs_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real post-processing on a start mask, with an empty model cache and no way to fetch a model."""
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("alphacut.models.model_path", _no_model)
    monkeypatch.setattr("alphacut.cli.common.make_session", _no_model)
    photo = small_photo(tmp_path / "photo.jpg")
    with Image.open(photo) as im:
        w, h = im.size
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
    Image.fromarray(mask).save(tmp_path / "fixed-mask.png")
    code, out, err = run("cut", str(photo), "--start-mask", str(tmp_path / "fixed-mask.png"), "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "ok"
    with Image.open(tmp_path / "photo-cutout.png") as im:
        alpha = np.asarray(im.getchannel("A"))
    assert alpha[h // 2, w // 2] == 255 and alpha[2, 2] == 0 and alpha[h - 3, w - 3] == 0
    assert not (tmp_path / "empty-cache").exists() or not any((tmp_path / "empty-cache").rglob("*.onnx"))


def _no_model(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("the model was asked for")


def test_cut_edges_picks_the_edge_style(tmp_path: Path, fake_model: FakeSession) -> None:
    from alphacut.graphs import edge_params

    photo = small_photo(tmp_path / "photo.jpg")
    for edges in ("crisp", "soft", "auto"):
        code, _, err = run("cut", str(photo), "--edges", edges, "-o", str(tmp_path / f"{edges}.png"))
        assert code == 0, err
        assert fake_model.post_params[-1] == edge_params(edges)
    assert edge_params("crisp") != edge_params("auto") != edge_params("soft")
    code, _, err = run("cut", str(photo), "--edges", "blurry")
    assert code == 2 and "auto" in err and "crisp" in err and "soft" in err


def test_cut_start_mask_refusals(tmp_path: Path, fake_model: FakeSession) -> None:
    photo = small_photo(tmp_path / "photo.jpg")
    other = small_photo(tmp_path / "other.jpg", "car-3.jpg")
    with Image.open(photo) as im:
        w, h = im.size
    Image.new("L", (w, h)).save(tmp_path / "m.png")
    # One input only: several files, or a folder of several, is a usage error.
    for args in ([str(photo), str(other)], [str(tmp_path)]):
        code, _, err = run("cut", *args, "--start-mask", str(tmp_path / "m.png"))
        assert code == 2 and "give exactly one input" in err, err
    code, _, err = run("cut", str(photo), "--start-mask", str(tmp_path / "nothing.png"))
    assert code == 2 and "no such file" in err
    # A mask whose aspect ratio is not the photo's is that input's error, and says so.
    Image.new("L", (h, w)).save(tmp_path / "rotated.png")
    code, _, err = run("cut", str(photo), "--start-mask", str(tmp_path / "rotated.png"))
    assert code == 1 and "aspect ratios" in err and "more than 1%" in err, err
    (tmp_path / "text.png").write_text("not a mask")
    code, _, err = run("cut", str(photo), "--start-mask", str(tmp_path / "text.png"))
    assert code == 1 and "the start mask: not an image" in err, err
    assert fake_model.calls == 0 and not (tmp_path / "photo-cutout.png").exists()


# --- with the real model ----------------------------------------------------------------------------


@pytest.mark.model
def test_batch_of_good_and_bad_inputs(tmp_path: Path, isnet_model_path: Path) -> None:
    src = tmp_path / "in"
    good = small_photo(src / "photo.jpg")
    small_photo(src / "sub" / "car.jpg", "car-3.jpg")
    (src / "broken.jpg").write_bytes(good.read_bytes()[:300])  # truncated
    (src / "notes.png").write_text("not an image")  # wrong extension, text inside
    out = tmp_path / "out"
    code, stdout, _ = run("cut", str(src), "-o", str(out), "--json")
    assert code == 1, "some inputs failed"
    records = {Path(r["path"]).name: r for r in map(json.loads, stdout.decode().splitlines())}
    assert records["photo.jpg"]["status"] == "ok" and records["car.jpg"]["status"] == "ok"
    assert records["broken.jpg"]["status"] == "error" and "re-" in records["broken.jpg"]["error"]
    assert records["notes.png"]["status"] == "error" and "not an image" in records["notes.png"]["error"]
    for r in records.values():
        assert set(r) >= {"path", "output", "status", "error"}
    ok = records["photo.jpg"]
    assert ok["size"] == list(Image.open(good).size) and ok["seconds"] > 0 and "score" in ok["confidence"]
    # Folder structure mirrored, names derived, nothing written for failures.
    assert (out / "photo-cutout.png").exists() and (out / "sub" / "car-cutout.png").exists()
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["car-cutout.png", "photo-cutout.png"]
    assert Image.open(out / "photo-cutout.png").mode == "RGBA"


@pytest.mark.model
def test_outputs_never_overwrite_inputs_or_existing_files(tmp_path: Path, isnet_model_path: Path) -> None:
    photo = small_photo(tmp_path / "a.jpg")
    shutil.copy(photo, tmp_path / "a.png")  # a.jpg and a.png would both become a-cutout.png
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, _, err = run("cut", str(tmp_path / "a.png"), str(tmp_path / "a.jpg"))
    assert code == 0
    # Both keep their extension in the name, whatever the order, and say so.
    assert (tmp_path / "a-jpg-cutout.png").exists() and (tmp_path / "a-png-cutout.png").exists()
    assert not (tmp_path / "a-cutout.png").exists() and "another input also makes a-cutout.png" in err
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, "inputs are never modified"
    # A second run skips the existing output, and says why...
    assert run("cut", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "a-cutout.png"))[0] == 0
    stamp = (tmp_path / "a-cutout.png").stat().st_mtime_ns
    code, _, err = run("cut", str(tmp_path / "a.jpg"))
    assert code == 0 and "skipped" in err and "--overwrite" in err
    assert (tmp_path / "a-cutout.png").stat().st_mtime_ns == stamp
    # ...and replaces it with --overwrite.
    assert run("cut", str(tmp_path / "a.jpg"), "--overwrite")[0] == 0
    assert (tmp_path / "a-cutout.png").stat().st_mtime_ns != stamp
    # Naming the input as the output is refused before any work, even with --overwrite.
    code, _, err = run("cut", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "a.jpg"), "--overwrite")
    assert code == 2 and "inputs are never overwritten" in err
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))


@pytest.mark.model
def test_stdin_to_stdout_and_formats(tmp_path: Path, isnet_model_path: Path) -> None:
    photo = small_photo(tmp_path / "p.jpg").read_bytes()
    code, out, _ = run("cut", "-", input=photo)
    assert code == 0
    png = Image.open(io.BytesIO(out))
    assert png.format == "PNG" and png.mode == "RGBA"
    code, out, _ = run("cut", "-", "-o", "-", "--format", "webp", "--mask", input=photo)
    assert code == 0
    mask = Image.open(io.BytesIO(out))
    assert mask.format == "WEBP"
    assert np.array_equal(np.asarray(mask.convert("L")), np.asarray(png)[..., 3])
    # The format follows -o's extension; JPEG is flattened over the background colour.
    code, _, _ = run("cut", str(tmp_path / "p.jpg"), "-o", str(tmp_path / "flat.jpg"), "--background", "#ff0000")
    assert code == 0
    flat = Image.open(tmp_path / "flat.jpg")
    assert flat.format == "JPEG" and flat.mode == "RGB"
    corner = np.asarray(flat)[:5, :5].reshape(-1, 3).mean(axis=0)
    assert corner[0] > 200 and corner[1] < 60


@pytest.mark.model
def test_glob_and_missing_inputs(tmp_path: Path, isnet_model_path: Path) -> None:
    small_photo(tmp_path / "x1.jpg")
    code, stdout, _ = run("cut", str(tmp_path / "x*.jpg"), str(tmp_path / "nothing*.png"),
                          str(tmp_path / "gone.jpg"), "-o", str(tmp_path / "out"), "--json")
    records = [json.loads(line) for line in stdout.decode().splitlines()]
    assert code == 1
    assert [r["status"] for r in records].count("ok") == 1
    assert [r["status"] for r in records].count("error") == 2


# --- listing photos -------------------------------------------------------------------------------


def _dark_photo(path: Path, size: tuple[int, int], colour: tuple[int, int, int] = (30, 60, 90)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "JPEG", quality=95)
    return path


def _subject_box(px: np.ndarray) -> tuple[int, int, int, int]:
    """The box of the pixels that are not near-white."""
    rows, cols = np.nonzero((px[..., :3].astype(int) < 200).any(axis=2))
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def test_cut_listing_photo_of_the_issue(tmp_path: Path, fake_model: FakeSession) -> None:
    """`cut shoe.jpg -o shoe.jpg --crop --canvas 2000x2000 --fill 85 --background white`: a 2000x2000
    JPEG, the subject's longer side 1700 px, centred (the stand-in's subject: a 1707-px disc)."""
    shoe = _dark_photo(tmp_path / "in" / "shoe.jpg", (2560, 2560))
    out = tmp_path / "out" / "shoe.jpg"
    out.parent.mkdir()
    code, _, err = run("cut", str(shoe), "-o", str(out), "--crop", "--canvas", "2000x2000", "--fill", "85",
                       "--background", "white")
    assert code == 0, err
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (2000, 2000)
        px = np.asarray(im)
    x0, y0, x1, y1 = _subject_box(px)
    assert abs(max(x1 + 1 - x0, y1 + 1 - y0) - 1700) <= 1
    assert abs((x0 + x1) / 2 - 999.5) <= 1 and abs((y0 + y1) / 2 - 999.5) <= 1
    assert (px[:100, :100] >= 250).all()


def test_cut_says_when_a_small_subject_stays_under_the_fill(tmp_path: Path, fake_model: FakeSession) -> None:
    """A small photo on a large canvas is not upscaled unless asked, and the run says so (and how to fix it)."""
    small = _dark_photo(tmp_path / "small.jpg", (300, 300))
    code, _, err = run("cut", str(small), "-o", str(tmp_path / "a.png"), "--preset", "square-white")
    assert code == 0 and "on the 2000x2000 canvas" in err and "--upscale" in err, err
    code, _, err = run("cut", str(small), "-o", str(tmp_path / "b.png"), "--preset", "square-white", "--upscale")
    assert code == 0 and "--upscale" not in err, err


def test_cut_listing_flags(tmp_path: Path, fake_model: FakeSession) -> None:
    photo = _dark_photo(tmp_path / "p.jpg", (300, 300))
    backdrop = tmp_path / "backdrop.png"
    Image.new("RGB", (50, 50), (0, 200, 0)).save(backdrop)
    # A preset with explicit options beside it: the explicit ones win; --canvas none drops the canvas.
    code, _, err = run("cut", str(photo), "-o", str(tmp_path / "a.png"), "--preset", "square-white",
                       "--canvas", "400x300", "--fill", "50")
    assert code == 0, err
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (400, 300)
        _, y0, _, y1 = _subject_box(np.asarray(im))
        assert y1 + 1 - y0 == 150  # 50 % of 300
    code, _, err = run("cut", str(photo), "-o", str(tmp_path / "b.png"), "--preset", "square-white", "--canvas", "none")
    assert code == 0, err
    with Image.open(tmp_path / "b.png") as im:
        assert im.size == (201, 201)  # the crop alone: the stand-in's disc is 201 px wide
    # --background FILE puts the image behind the subject; --shadow alone is a drop shadow.
    code, _, err = run("cut", str(photo), "-o", str(tmp_path / "c.png"), "--background", str(backdrop),
                       "--shadow", "--crop", "--margin", "20px")
    assert code == 0, err
    with Image.open(tmp_path / "c.png") as im:
        px = np.asarray(im)
        assert im.size == (241, 241) and (px[0, 0, :3] == (0, 200, 0)).all()
        assert px[222, 120, 1] < 190 and px[5, 120, 1] == 200  # the shadow darkens the green under the disc
    code, _, err = run("cut", str(photo), "-o", str(tmp_path / "d.png"), "--fill", "85")
    assert code == 2 and "needs a canvas" in err and "85" in err
    code, _, err = run("cut", str(photo), "-o", str(tmp_path / "d.png"), "--margin", "5%")
    assert code == 2 and "needs a crop" in err
    code, _, err = run("cut", str(photo), "-o", str(tmp_path / "d.png"), "--crop", "--canvas", "4.5:5")
    assert code == 2 and "'4.5:5'" in err and "4:5" in err
    code, _, err = run("cut", str(photo), "-o", str(tmp_path / "d.png"), "--preset", "nope")
    assert code == 2 and "square-white" in err


def test_batch_with_a_preset_over_a_folder(tmp_path: Path, fake_model: FakeSession) -> None:
    for name in ("a.jpg", "sub/b.jpg", "sub/deeper/c.jpg"):
        _dark_photo(tmp_path / "in" / name, (240, 180))
    code, _, err = run("batch", str(tmp_path / "in"), str(tmp_path / "out"), "--preset", "square-white",
                       "--format", "jpeg")
    assert code == 0, err
    outputs = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg"))
    assert outputs == ["a.jpg", "sub/b.jpg", "sub/deeper/c.jpg"]
    for rel in outputs:
        with Image.open(tmp_path / "out" / rel) as im:
            px = np.asarray(im)
            assert im.size == (2000, 2000) and (px[:50, :50] >= 250).all()
            x0, _, x1, _ = _subject_box(px)
            assert x1 + 1 - x0 <= 122 and abs((x0 + x1) / 2 - 999.5) <= 1  # the 120-px disc, not upscaled
    # The same preset again: all skipped (the ledger knows the options); another canvas redoes them.
    code, _, err = run("batch", str(tmp_path / "in"), str(tmp_path / "out"), "--preset", "square-white",
                       "--format", "jpeg")
    assert code == 0 and fake_model.calls == 3
    code, _, err = run("batch", str(tmp_path / "in"), str(tmp_path / "out"), "--preset", "square-white",
                       "--format", "jpeg", "--canvas", "1000x1000")
    assert code == 0 and fake_model.calls == 6
    with Image.open(tmp_path / "out" / "a.jpg") as im:
        assert im.size == (1000, 1000)
