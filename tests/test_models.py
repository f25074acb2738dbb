"""Model fetch and verification, against local tarballs, a fake npm client and a local HTTP server."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from alphacut import models
from alphacut.errors import IntegrityError, ModelError, ModelNotFoundError

# 10,496 bytes: chunks 0 and 1 are identical (as zero pages of weights can be), then a tail.
PAYLOAD = bytes(range(256)) * 32 + bytes(range(255, -1, -1)) * 9
CHUNK = 4096


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _tarball(path: Path, payload: bytes = PAYLOAD, corrupt_chunk: int | None = None) -> str:
    """Write an npm-style tarball holding ``payload`` as hashed chunks; return its integrity."""
    chunks = [payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK)]
    index = {
        "/models/tiny": {
            "chunks": [
                {"hash": hashlib.sha256(c).hexdigest(), "offsets": [i * CHUNK, i * CHUNK + len(c)]}
                for i, c in enumerate(chunks)
            ],
            "size": len(payload),
            "mime": "application/octet-stream",
        }
    }
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for i, c in enumerate(chunks):
            data = bytes([c[0] ^ 0xFF]) + c[1:] if i == corrupt_chunk else c
            add(f"package/dist/{hashlib.sha256(c).hexdigest()}", data)
        add("package/dist/resources.json", json.dumps(index).encode())
    digest = base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()
    return f"sha512-{digest}"


def _register(monkeypatch: pytest.MonkeyPatch, integrity: str, sha: str | None = None) -> None:
    spec = models.ModelSpec(
        name="tiny",
        sha256=sha or hashlib.sha256(PAYLOAD).hexdigest(),
        source=models.NpmSource("@example/tiny-data", "1.0.0", integrity=integrity, resource="/models/tiny"),
    )
    monkeypatch.setitem(models.BUILTIN_MODELS, "tiny", spec)


def test_pull_from_tarball_assembles_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tgz = tmp_path / "tiny.tgz"
    _register(monkeypatch, _tarball(tgz))
    seen: list[tuple[int, int]] = []
    path = models.pull("tiny", tarball=tgz, progress=lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert models.model_path("tiny") == path
    assert models.pull("tiny", tarball=tgz) == path  # idempotent


def test_corrupt_chunk_is_rejected_and_nothing_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tgz = tmp_path / "tiny.tgz"
    _register(monkeypatch, _tarball(tgz, corrupt_chunk=1))
    with pytest.raises(IntegrityError, match="fails its SHA-256"):
        models.pull("tiny", tarball=tgz)
    with pytest.raises(ModelNotFoundError, match="alphacut models pull tiny"):
        models.model_path("tiny")
    assert not list((models.home() / "models").glob("*")), "no partial file may be left behind"


def test_tampered_tarball_fails_integrity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tgz = tmp_path / "tiny.tgz"
    _tarball(tgz)
    _register(monkeypatch, "sha512-" + base64.b64encode(b"\0" * 64).decode())
    with pytest.raises(IntegrityError, match="integrity"):
        models.pull("tiny", tarball=tgz)


def test_wrong_final_hash_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tgz = tmp_path / "tiny.tgz"
    _register(monkeypatch, _tarball(tgz), sha="0" * 64)
    with pytest.raises(IntegrityError, match="expected 0000"):
        models.pull("tiny", tarball=tgz)


def test_pull_runs_the_npm_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tgz = tmp_path / "source.tgz"
    _register(monkeypatch, _tarball(tgz))
    fake_npm = tmp_path / "npm"
    log = tmp_path / "npm.log"
    # A stand-in for `npm pack SPEC --json --pack-destination DIR`: records its arguments, copies the tarball.
    fake_npm.write_text(f'#!/bin/sh\necho "$@" > {log}\ncp {tgz} "$5/example-tiny-data-1.0.0.tgz"\necho "[]"\n')
    fake_npm.chmod(0o755)
    monkeypatch.setenv("ALPHACUT_NPM", str(fake_npm))
    path = models.pull("tiny")
    assert path.read_bytes() == PAYLOAD
    assert log.read_text().split()[:2] == ["pack", "@example/tiny-data@1.0.0"]


def test_failing_npm_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "sha512-x")
    fake_npm = tmp_path / "npm"
    fake_npm.write_text("#!/bin/sh\necho 'npm error code E404' >&2\nexit 1\n")
    fake_npm.chmod(0o755)
    monkeypatch.setenv("ALPHACUT_NPM", str(fake_npm))
    with pytest.raises(ModelError, match="npm pack .*E404.*run the command again"):
        models.pull("tiny")


@pytest.fixture()
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_user_model_by_url_and_sha256(http_server: tuple[str, Path]) -> None:
    base, root = http_server
    (root / "m.onnx").write_bytes(PAYLOAD)
    spec = models.ModelSpec(
        name="mine", sha256=hashlib.sha256(PAYLOAD).hexdigest(), source=models.UrlSource(f"{base}/m.onnx"), input_size=320
    )
    models.add_model(spec)
    assert models.get_spec("mine") == spec  # survives the JSON round trip
    assert models.pull("mine").read_bytes() == PAYLOAD


def test_user_model_with_wrong_hash_leaves_nothing(http_server: tuple[str, Path]) -> None:
    base, root = http_server
    (root / "m.onnx").write_bytes(PAYLOAD + b"tampered")
    models.add_model(
        models.ModelSpec(name="mine", sha256=hashlib.sha256(PAYLOAD).hexdigest(), source=models.UrlSource(f"{base}/m.onnx"))
    )
    with pytest.raises(IntegrityError):
        models.pull("mine")
    assert not any((models.home() / "models").iterdir())


def test_unreachable_url_is_a_clear_error(http_server: tuple[str, Path]) -> None:
    base, _ = http_server
    models.add_model(models.ModelSpec(name="gone", sha256="a" * 64, source=models.UrlSource(f"{base}/missing.onnx")))
    with pytest.raises(ModelError, match="cannot download .*check the URL"):
        models.pull("gone")


def test_registry_guards() -> None:
    with pytest.raises(ModelError, match="built-in"):
        models.add_model(models.ModelSpec(name="medium", sha256="a" * 64, source=models.UrlSource("file:///x")))
    with pytest.raises(ModelError, match="64 lowercase hex"):
        models.add_model(models.ModelSpec(name="x", sha256="abc", source=models.UrlSource("file:///x")))
    with pytest.raises(ModelNotFoundError, match="unknown model 'nope'"):
        models.get_spec("nope")


def test_home_moves_with_env(home: Path) -> None:
    assert models.home() == home
    with pytest.raises(ModelNotFoundError, match="alphacut models pull medium"):
        models.model_path("medium")
