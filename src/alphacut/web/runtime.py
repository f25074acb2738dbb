"""The browser-side packages, fetched like the models: never committed, never fetched at serve time.

``pull_runtime`` gets each pinned npm package with the npm client (``npm pack``),
checks the tarball's SHA-512 integrity against the value pinned here, and extracts
only the files needed into ``$ALPHACUT_HOME/runtime/<package>-<version>/``:

- ``onnxruntime-web``: runs the model in the page;
- ``client-zip``: builds the "Download all" ZIP in the page (store-only, streamed);
- ``axe-core``: the accessibility audit the browser tests run (never served).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from .. import models
from ..errors import ModelError, RuntimeNotFoundError

__all__ = [
    "ORT_VERSION",
    "PULL_COMMAND",
    "RUNTIME_FILES",
    "RuntimeNotFoundError",  # defined in alphacut.errors; here too for callers of runtime_path()
    "axe_path",
    "pull_runtime",
    "runtime_dir",
    "runtime_path",
    "zip_path",
]

ORT_VERSION = "1.30.0"
_ORT_SOURCE = models.NpmSource(
    package="onnxruntime-web",
    version=ORT_VERSION,
    integrity="sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ==",
    resource="",
)

# Two bundles: the plain WASM build (fastest on CPU) and the WebGPU build, whose
# built-in WebGPU execution provider lives in the "asyncify" WASM binary.
RUNTIME_FILES: tuple[str, ...] = (
    "ort.wasm.min.mjs",
    "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm",
    "ort.webgpu.min.mjs",
    "ort-wasm-simd-threaded.asyncify.mjs",
    "ort-wasm-simd-threaded.asyncify.wasm",
)

PULL_COMMAND = "alphacut runtime pull"

ZIP_VERSION = "2.5.1"
_ZIP_SOURCE = models.NpmSource(
    package="client-zip",
    version=ZIP_VERSION,
    integrity="sha512-yOvNSBsQX1B7wtdvIVXJEIIShrlPiX+adhli7sWvQhsx3nX1DjvpSt+AwOxaX+3DCsT/Yx0nRy5hIjRLIYfebw==",
    resource="",
)
ZIP_FILE = "client-zip.js"

AXE_VERSION = "4.14.1"
_AXE_SOURCE = models.NpmSource(
    package="axe-core",
    version=AXE_VERSION,
    integrity="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
    resource="",
)
AXE_FILE = "axe.min.js"

# Per package: the source, its cache folder, tarball member -> file name, and whether only the
# tests need it (fetched by `runtime pull --test-tools`, which the test set-up runs; never served).
_PACKAGES: tuple[tuple[models.NpmSource, str, dict[str, str], bool], ...] = (
    (
        _ORT_SOURCE,
        f"onnxruntime-web-{ORT_VERSION}",
        {**{f"package/dist/{n}": n for n in RUNTIME_FILES}, "package/package.json": "package.json"},
        False,
    ),
    (
        _ZIP_SOURCE,
        f"client-zip-{ZIP_VERSION}",
        {"package/index.js": ZIP_FILE, "package/LICENSE.txt": "LICENSE", "package/package.json": "package.json"},
        False,
    ),
    (
        _AXE_SOURCE,
        f"axe-core-{AXE_VERSION}",
        {"package/axe.min.js": AXE_FILE, "package/LICENSE": "LICENSE", "package/package.json": "package.json"},
        True,
    ),
)


def runtime_dir() -> Path:
    return models.home() / "runtime" / f"onnxruntime-web-{ORT_VERSION}"


def runtime_path() -> Path:
    """The folder holding :data:`RUNTIME_FILES`; raises naming the command that fetches it."""
    folder = runtime_dir()
    missing = [name for name in RUNTIME_FILES if not (folder / name).is_file()]
    if missing:
        raise RuntimeNotFoundError(
            f"the in-browser runtime (onnxruntime-web {ORT_VERSION}) is not downloaded yet:"
            f" run `{PULL_COMMAND}` (cache folder: {models.home()})"
        )
    return folder


def _package_file(folder: str, name: str, what: str, command: str = PULL_COMMAND) -> Path:
    path = models.home() / "runtime" / folder / name
    if not path.is_file():
        raise RuntimeNotFoundError(
            f"{what} is not downloaded yet: run `{command}` (cache folder: {models.home()})"
        )
    return path


def zip_path() -> Path:
    """client-zip's ES module, which builds the page's "Download all" ZIP."""
    return _package_file(f"client-zip-{ZIP_VERSION}", ZIP_FILE, f"the ZIP library (client-zip {ZIP_VERSION})")


def axe_path() -> Path:
    """axe-core's browser build, for the accessibility audit of the tests."""
    return _package_file(f"axe-core-{AXE_VERSION}", AXE_FILE, f"the accessibility checker (axe-core {AXE_VERSION})",
                         f"{PULL_COMMAND} --test-tools")


def pull_runtime(*, tarball: Path | None = None, force: bool = False, test_tools: bool = False) -> Path:
    """Fetch, verify and unpack the pinned packages the page needs (with ``test_tools``, also
    the accessibility checker of the browser tests); idempotent unless ``force``.

    ``tarball`` uses an already downloaded ``onnxruntime-web-<version>.tgz`` for
    onnxruntime-web (the small packages are fetched with npm if missing).
    Returns the onnxruntime-web folder.
    """
    for source, folder, wanted, test_only in _PACKAGES:
        if test_only and not test_tools:
            continue
        dest = models.home() / "runtime" / folder
        if not force and all((dest / name).is_file() for name in wanted.values()):
            continue
        given = tarball if source is _ORT_SOURCE else None
        _unpack(given or models._npm_pack(source), source, dest, wanted)
    return runtime_path()


def _unpack(tgz: Path, source: models.NpmSource, dest: Path, wanted: dict[str, str]) -> None:
    """Check ``tgz`` against the pinned integrity, then atomically replace ``dest`` with ``wanted``."""
    models._check_integrity(tgz, source.integrity)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        found = 0
        with tarfile.open(tgz, "r|gz") as tar:
            for member in tar:
                name = wanted.get(member.name)
                if name is None or not member.isfile():
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                with open(tmp / name, "wb") as sink:
                    shutil.copyfileobj(src, sink)
                found += 1
        if found != len(wanted):
            raise ModelError(f"{tgz.name} lacks some of the files needed: delete it and pull again")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelError(f"cannot unpack {tgz}: {exc}; delete it and pull again") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
