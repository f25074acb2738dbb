"""The command line: exit codes, output naming, stdin/stdout, --json, overwrite rules."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
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
    for command in ("cut", "models", "runtime", "serve", "doctor", "batch", "watch"):
        assert command in out.decode()


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
    code, out, err = run("runtime", "pull", "--tarball", str(bad))
    assert code == 1 and "integrity" in err.lower(), err
    assert not (tmp_path / "home" / "runtime").exists() or not any((tmp_path / "home" / "runtime").iterdir())


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
    code, _, _ = run("cut", str(tmp_path / "a.jpg"), str(tmp_path / "a.png"))
    assert code == 0
    assert (tmp_path / "a-cutout.png").exists() and (tmp_path / "a-png-cutout.png").exists()
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, "inputs are never modified"
    # A second run refuses to replace the outputs without --overwrite...
    stamp = (tmp_path / "a-cutout.png").stat().st_mtime_ns
    code, _, err = run("cut", str(tmp_path / "a.jpg"))
    assert code == 1 and "--overwrite" in err
    assert (tmp_path / "a-cutout.png").stat().st_mtime_ns == stamp
    # ...and replaces them with it.
    assert run("cut", str(tmp_path / "a.jpg"), "--overwrite")[0] == 0
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
