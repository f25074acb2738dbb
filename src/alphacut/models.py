"""Models are data: a :class:`ModelSpec` registry, fetched, verified and cached.

The built-in ISNet weights ship in the npm package
``@imgly/background-removal-data`` as 4 MiB chunks listed in ``dist/resources.json``.
``pull`` gets that tarball with the npm client (``npm pack``), checks the tarball's
SHA-512 integrity, every chunk's SHA-256 and the reassembled file's SHA-256, and
moves the ``.onnx`` file into the cache atomically. Users with internet can add
any other ONNX model by URL and SHA-256 (``alphacut models add``).

The cache lives in the platform's cache folder; ``ALPHACUT_HOME`` moves it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import IntegrityError, ModelError, ModelNotFoundError

__all__ = [
    "BUILTIN_MODELS",
    "ModelSpec",
    "NpmSource",
    "UrlSource",
    "add_model",
    "cached_models",
    "get_spec",
    "home",
    "model_path",
    "pull",
    "registry",
    "sha256_file",
]

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while fetching."""

_CHUNK = 1 << 20


# What a model outputs: "probability" is already 0..1 (ISNet); "logits" need a sigmoid.
OutputKind = Literal["probability", "logits"]


@dataclass(frozen=True)
class NpmSource:
    """A model stored as hashed chunks in an npm package (``dist/resources.json``)."""

    package: str
    version: str
    integrity: str  # the tarball's "sha512-<base64>" as the registry publishes it
    resource: str  # key in dist/resources.json, e.g. "/models/medium"

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


@dataclass(frozen=True)
class UrlSource:
    """A model file at a URL (http, https or file)."""

    url: str


@dataclass(frozen=True)
class ModelSpec:
    """Everything the engine needs to know about a segmentation model."""

    name: str
    sha256: str
    source: NpmSource | UrlSource
    size: int | None = None
    input_size: int = 1024
    # Normalisation on 0..255 values: (rgb - mean) / std. Fixed per model, never per image.
    mean: float = 128.0
    std: float = 256.0
    input_name: str = "input"
    output_name: str = "output"
    # "probability": the output is already 0..1 (ISNet here); "logits": apply a sigmoid.
    output_kind: OutputKind = "probability"
    description: str = ""
    license: str = ""

    def to_json(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data["source"] = {"kind": "npm" if isinstance(self.source, NpmSource) else "url", **data["source"]}
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ModelSpec:
        data = dict(data)
        src = dict(data.pop("source"))  # type: ignore[call-overload]
        kind = src.pop("kind")
        source: NpmSource | UrlSource = NpmSource(**src) if kind == "npm" else UrlSource(**src)
        return cls(source=source, **data)  # type: ignore[arg-type]


_IMGLY = ("@imgly/background-removal-data", "1.4.5")
_IMGLY_INTEGRITY = (
    "sha512-iRXZpPd7YirbJ4eOZ3SlvbdJkAc/LxVjzWLMHOezmRrVThPJPdPc+Y2kHEAVFEVvpDIuvBDyOfTTFBSJT2QR5w=="
)

BUILTIN_MODELS: dict[str, ModelSpec] = {
    "medium": ModelSpec(
        name="medium",
        sha256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
        size=88188479,
        source=NpmSource(*_IMGLY, integrity=_IMGLY_INTEGRITY, resource="/models/medium"),
        description="ISNet, fp16 weights (default)",
        license="MIT (ISNet, github.com/xuebinqin/DIS)",
    ),
    "small": ModelSpec(
        name="small",
        sha256="7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
        size=44342436,
        source=NpmSource(*_IMGLY, integrity=_IMGLY_INTEGRITY, resource="/models/small"),
        description="ISNet, quint8 weights (half the download)",
        license="MIT (ISNet, github.com/xuebinqin/DIS)",
    ),
}


def home() -> Path:
    """The cache folder: ``$ALPHACUT_HOME`` or the platform's user cache folder."""
    env = os.environ.get("ALPHACUT_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("alphacut"))


def _user_registry_file() -> Path:
    return home() / "models.json"


def registry() -> dict[str, ModelSpec]:
    """Built-in models plus the ones the user added with :func:`add_model`."""
    models = dict(BUILTIN_MODELS)
    path = _user_registry_file()
    if path.exists():
        try:
            entries = json.loads(path.read_text())
            for entry in entries:
                spec = ModelSpec.from_json(entry)
                models[spec.name] = spec
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"{path} is not a valid model registry ({exc}): fix or delete it") from None
    return models


def get_spec(name: str) -> ModelSpec:
    models = registry()
    if name not in models:
        raise ModelNotFoundError(
            f"unknown model {name!r}: known models are {', '.join(sorted(models))}"
            " (add one with `alphacut models add NAME URL --sha256 HEX`)"
        )
    return models[name]


def _cache_file(spec: ModelSpec) -> Path:
    return home() / "models" / f"{spec.name}-{spec.sha256[:12]}.onnx"


def model_path(name_or_spec: str | ModelSpec) -> Path:
    """The cached model file; raises :class:`ModelNotFoundError` naming the command to run."""
    spec = get_spec(name_or_spec) if isinstance(name_or_spec, str) else name_or_spec
    path = _cache_file(spec)
    if not path.exists():
        raise ModelNotFoundError(
            f"model {spec.name!r} is not downloaded yet: run `alphacut models pull {spec.name}`"
            f" (cache folder: {home()})"
        )
    return path


def cached_models() -> list[tuple[ModelSpec, Path | None]]:
    """Every known model with its cached file, or None when not downloaded."""
    out = []
    for spec in registry().values():
        path = _cache_file(spec)
        out.append((spec, path if path.exists() else None))
    return out


def add_model(spec: ModelSpec) -> None:
    """Register a user model (by URL + SHA-256) in ``$ALPHACUT_HOME/models.json``."""
    if spec.name in BUILTIN_MODELS:
        raise ModelError(f"{spec.name!r} is a built-in model name: choose another name")
    if len(spec.sha256) != 64 or any(c not in "0123456789abcdef" for c in spec.sha256):
        raise ModelError(f"sha256 must be 64 lowercase hex digits, got {spec.sha256!r}")
    path = _user_registry_file()
    entries = json.loads(path.read_text()) if path.exists() else []
    entries = [e for e in entries if e.get("name") != spec.name] + [spec.to_json()]
    with _atomic_path(path) as tmp:
        tmp.write_text(json.dumps(entries, indent=2) + "\n")


def pull(
    name: str,
    *,
    tarball: Path | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Fetch, verify and cache a model; returns its path. Idempotent unless ``force``.

    ``tarball`` uses an already downloaded npm tarball instead of running ``npm pack``.
    """
    spec = get_spec(name)
    dest = _cache_file(spec)
    if dest.exists() and not force:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_path(dest) as tmp:
        if isinstance(spec.source, NpmSource):
            tgz = tarball or _npm_pack(spec.source)
            _check_integrity(tgz, spec.source.integrity)
            _assemble_from_tarball(tgz, spec.source.resource, tmp, progress)
        else:
            _download(spec.source.url, tmp, progress)
        digest = sha256_file(tmp)
        if digest != spec.sha256:
            raise IntegrityError(
                f"model {spec.name!r} has SHA-256 {digest}, expected {spec.sha256}:"
                " the download is corrupt or the source changed; nothing was saved, try again"
            )
    return dest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it over ``dest`` only on success."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _npm_pack(source: NpmSource) -> Path:
    """Download the package tarball with the npm client into the cache's downloads folder."""
    downloads = home() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    expected = downloads / (source.package.lstrip("@").replace("/", "-") + f"-{source.version}.tgz")
    if expected.exists():
        return expected
    npm = os.environ.get("ALPHACUT_NPM", "npm")
    if shutil.which(npm) is None:
        raise ModelError(
            f"the npm client ({npm!r}) is needed to fetch {source.spec}: install Node.js/npm,"
            " or download the tarball elsewhere and pass it with `alphacut models pull --tarball FILE`"
        )
    with tempfile.TemporaryDirectory(dir=downloads) as tmpdir:
        proc = subprocess.run(
            [npm, "pack", source.spec, "--json", "--pack-destination", tmpdir],
            capture_output=True,
            text=True,
            check=False,  # the return code is checked below, with npm's own words
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ModelError(
                f"`npm pack {source.spec}` failed: {' / '.join(tail)}; check your network or npm"
                " configuration, then run the command again"
            )
        produced = list(Path(tmpdir).glob("*.tgz"))
        if len(produced) != 1:
            raise ModelError(f"`npm pack {source.spec}` produced no tarball; run it again")
        os.replace(produced[0], expected)
    return expected


def _check_integrity(tgz: Path, integrity: str) -> None:
    algo, _, want = integrity.partition("-")
    h = hashlib.new(algo)
    with open(tgz, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    got = base64.b64encode(h.digest()).decode()
    if got != want:
        tgz.unlink(missing_ok=True)
        raise IntegrityError(
            f"{tgz.name} fails its {algo} integrity check (corrupt or tampered download):"
            " it was deleted; run the pull again"
        )


def _assemble_from_tarball(tgz: Path, resource: str, out: Path, progress: Progress | None) -> None:
    """Concatenate the resource's chunks in order into ``out``, checking each chunk's SHA-256.

    The tarball is read as a stream (seeking in a gzip stream re-decompresses it):
    one pass finds ``resources.json``, a second collects the chunks it lists.
    """
    try:
        index = json.loads(_read_members(tgz, {"package/dist/resources.json"})["package/dist/resources.json"])
        if resource not in index:
            raise ModelError(f"{tgz.name} has no resource {resource!r}; is it the right package?")
        entry = index[resource]
        chunks = entry["chunks"]
        total = int(entry["size"])
        data = _read_members(tgz, {f"package/dist/{c['hash']}" for c in chunks})
        done = 0
        with open(out, "wb") as sink:
            for chunk in chunks:
                blob = data[f"package/dist/{chunk['hash']}"]  # identical chunks may repeat
                start, end = chunk["offsets"]
                if hashlib.sha256(blob).hexdigest() != chunk["hash"] or len(blob) != end - start:
                    raise IntegrityError(
                        f"chunk {chunk['hash'][:12]}… of {resource} in {tgz.name} fails its SHA-256"
                        " check: the tarball is corrupt; delete it and pull again"
                    )
                sink.write(blob)
                done += len(blob)
                if progress:
                    progress(done, total)
    except (tarfile.TarError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot read {tgz}: {exc}; delete it and pull again") from None


def _read_members(tgz: Path, names: set[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with tarfile.open(tgz, "r|gz") as tar:
        for member in tar:
            if member.name in names and member.isfile():
                f = tar.extractfile(member)
                if f is not None:
                    found[member.name] = f.read()
                if len(found) == len(names):
                    break
    missing = names - found.keys()
    if missing:
        raise ModelError(
            f"{tgz.name} lacks {sorted(missing)[0]} ({len(missing)} file(s) missing): delete it and pull again"
        )
    return found


def _download(url: str, out: Path, progress: Progress | None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(out, "wb") as sink:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            for block in iter(lambda: resp.read(_CHUNK), b""):
                sink.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except OSError as exc:
        raise ModelError(f"cannot download {url}: {exc}; check the URL and your connection") from None
