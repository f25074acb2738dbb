"""The onnxruntime-web files the page runs the model with, fetched like the models.

``pull_runtime`` gets the pinned ``onnxruntime-web`` tarball with the npm client
(``npm pack``), checks its SHA-512 integrity against the value pinned here, and
extracts only the files the page needs into ``$ALPHACUT_HOME/runtime/``. Nothing
of it is committed to the repository and nothing is fetched at serve time.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from .. import models
from ..errors import ModelError

__all__ = [
    "ORT_VERSION",
    "RUNTIME_FILES",
    "PULL_COMMAND",
    "RuntimeNotFoundError",
    "runtime_dir",
    "runtime_path",
    "pull_runtime",
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


class RuntimeNotFoundError(ModelError):
    """The onnxruntime-web files are not in the cache."""


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


def pull_runtime(*, tarball: Path | None = None, force: bool = False) -> Path:
    """Fetch, verify and unpack the pinned onnxruntime-web; idempotent unless ``force``.

    ``tarball`` uses an already downloaded ``onnxruntime-web-<version>.tgz``.
    """
    dest = runtime_dir()
    if not force:
        try:
            return runtime_path()
        except RuntimeNotFoundError:
            pass
    tgz = tarball or models._npm_pack(_ORT_SOURCE)
    models._check_integrity(tgz, _ORT_SOURCE.integrity)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        wanted = {f"package/dist/{name}": name for name in RUNTIME_FILES}
        wanted["package/package.json"] = "package.json"  # version and licence (MIT)
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
            raise ModelError(f"{tgz.name} lacks some runtime files: delete it and pull again")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelError(f"cannot unpack {tgz}: {exc}; delete it and pull again") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
