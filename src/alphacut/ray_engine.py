"""``alphacut batch --engine ray``: the same batch on a Ray cluster (``pip install 'alphacut[ray]'``).

Ray Data reads the inputs (``read_binary_files``: a local folder or an object-store
prefix such as ``s3://bucket/photos``), and a pool of actors, each owning one
:class:`~alphacut.session.Session` created once, cuts them out and writes the
outputs atomically under the (local or shared) output folder. The driver alone
writes the ledger, with the same rows, names and skip/retry rules as the local
engine; it lists the inputs first (sizes and mtimes, no content) so unchanged,
done inputs are not even read, nor files larger than any image within the megapixel
cap. Each input's failure, whatever raised it, is its own ``failed`` row (the
per-input boundary of :func:`alphacut.jobs.load_input`); one run at a time works in
an output folder (:class:`~alphacut.fsutil.FolderLock`). Ray Data does the
distribution; what counts as an input, the output names, the skip rule, the folder
guard and the per-input boundary are the jobs layer's (:mod:`alphacut.jobs`), as for
the local engine.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .errors import AlphacutError, FolderError, MissingDependencyError, input_failure
from .fsutil import FolderLock, clean_partials
from .imageio import DecodedImage, file_too_large, max_file_bytes
from .jobs import (
    EXTENSIONS,
    Report,
    Result,
    check_folders,
    is_finished,
    is_hidden,
    is_image,
    load_input,
    output_name,
    write_output,
)
from .ledger import LEDGER_NAME, Ledger, fingerprint, sha256_bytes
from .options import Options
from .pipeline import Cutout, cut, cut_batch
from .session import Session, fp32_model_path

__all__ = ["list_inputs", "run_ray"]

_MISSING = "the ray engine needs Ray: pip install 'alphacut[ray]' (or run without --engine ray)"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError(_MISSING) from None
    assert ray.data is not None  # imported for its side effect: ray.data is usable
    return ray


def list_inputs(uri: str) -> tuple[Any, list[tuple[str, str, int, int]]]:
    """The file system and ``(path, rel, size, mtime_ns)`` of each image under ``uri``."""
    import pyarrow.fs as pafs

    if "://" not in uri:
        uri = str(Path(uri).resolve())
    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as exc:
        raise FolderError(f"cannot list {uri}: {exc}") from None
    root = root.rstrip("/")
    found = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(root) + 1 :] if info.path.startswith(root + "/") else info.base_name
        if is_hidden(PurePosixPath(rel)) or not is_image(PurePosixPath(rel)):
            continue
        found.append((info.path, rel, int(info.size or 0), int(info.mtime_ns or 0)))
    return fs, sorted(found, key=lambda f: f[1])


class _Cutter:
    """A Ray actor: one Session for its lifetime, many batches."""

    def __init__(self, options: dict[str, Any], model: str, device: str, threads: int | None, out_dir: str,
                 names: dict[str, tuple[str, str]], done: dict[str, str]) -> None:
        self.options = Options(**options)
        # The layout the local engine uses for one call at a time: on a CPU the float32-computing
        # copy of the model, on a GPU the free-batch copy.
        self.session, _ = Session.for_work(model, device=device, threads=threads, parallel=False)
        self.out_dir = Path(out_dir)
        self.names = names  # path -> (rel, output rel)
        self.done = done  # rel -> sha256 of a done row whose output exists

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: list[dict[str, Any]] = []
        decoded: list[DecodedImage] = []
        waiting: list[tuple[dict[str, Any], str, float]] = []
        for data, path in zip(batch["bytes"], batch["path"]):
            started = time.perf_counter()
            rel, out = self.names[str(path)]
            raw = bytes(data)
            row = {"path": rel, "sha256": sha256_bytes(raw), "status": "failed", "output": "", "error": "",
                   "confidence": float("nan"), "needs_review": -1, "seconds": 0.0}
            rows.append(row)
            if self.done.get(rel) == row["sha256"]:
                row["status"] = "skipped"
                continue
            try:
                decoded.append(load_input(raw, self.options))
                waiting.append((row, out, started))
            except AlphacutError as exc:
                row["error"] = str(exc)
        if decoded:
            cutouts: list[Cutout | None]
            try:
                cutouts = list(cut_batch(decoded, options=self.options, session=self.session))
            except Exception as exc:  # noqa: BLE001 - one image of the batch failing must not lose the actor
                cutouts = self._one_by_one(decoded, waiting, exc)
            for (row, out, started), cutout in zip(waiting, cutouts):
                if cutout is None:
                    continue
                try:
                    write_output(self.out_dir / out, cutout, self.options, overwrite=True)
                except AlphacutError as exc:
                    row["error"] = str(exc)
                    continue
                row.update(status="done", output=out, confidence=float(cutout.confidence.score),
                           needs_review=int(cutout.confidence.needs_review), seconds=time.perf_counter() - started)
        columns = ("path", "sha256", "status", "output", "error")
        result = {k: np.array([r[k] for r in rows], dtype=object) for k in columns}
        result["confidence"] = np.array([r["confidence"] for r in rows], dtype=np.float64)
        result["needs_review"] = np.array([r["needs_review"] for r in rows], dtype=np.int8)
        result["seconds"] = np.array([r["seconds"] for r in rows], dtype=np.float64)
        return result

    def _one_by_one(self, decoded: list[DecodedImage], waiting: list[tuple[dict[str, Any], str, float]],
                    first: Exception) -> list[Cutout | None]:
        """After a shared model call failed: each image alone, so only the bad one fails."""
        if len(decoded) == 1:
            waiting[0][0]["error"] = str(input_failure(first))
            return [None]
        cutouts: list[Cutout | None] = []
        for image, (row, _, _) in zip(decoded, waiting):
            try:
                cutouts.append(cut(image, options=self.options, session=self.session))
            except Exception as exc:  # noqa: BLE001 - the per-input boundary: this image's row
                row["error"] = str(input_failure(exc))
                cutouts.append(None)
        return cutouts


def run_ray(
    input_uri: str,
    output_dir: Path,
    *,
    options: Options,
    model: str = "medium",
    device: str = "auto",
    threads: int | None = None,
    batch_size: int | None = None,
    address: str | None = None,
    actors: int | None = None,
    num_cpus: int | None = None,
) -> Report:
    """Cut out every image under ``input_uri`` into ``output_dir`` on Ray; write and return the report.

    Without ``address`` a local Ray instance is started (``num_cpus`` caps it) and
    stopped afterwards. ``actors`` defaults to one per GPU, else one.
    """
    ray = _import_ray()
    from . import models

    out_dir = Path(output_dir)
    spec = models.get_spec(model)
    models.model_path(spec)  # fail here, with the command that fetches it, not in every actor
    fp32_model_path(spec)  # derive the CPU copy once here rather than in every local actor
    fp = fingerprint(options, spec.sha256)
    ext = EXTENSIONS[options.format]
    started = time.perf_counter()
    if "://" not in input_uri:
        check_folders(Path(input_uri), out_dir)
    fs, listing = list_inputs(input_uri)
    if "://" not in input_uri:
        listing = [f for f in listing if not Path(f[0]).resolve().is_relative_to(out_dir.resolve())]
    with FolderLock(out_dir):
        clean_partials(out_dir)
        report = _run_locked(ray, input_uri, out_dir, fs, listing, options=options, model=model, device=device,
                             threads=threads, batch_size=batch_size, address=address, actors=actors,
                             num_cpus=num_cpus, fp=fp, ext=ext, started=started)
        report.write(out_dir)
    return report


def _run_locked(ray: Any, input_uri: str, out_dir: Path, fs: Any, listing: list[tuple[str, str, int, int]], *,
                options: Options, model: str, device: str, threads: int | None, batch_size: int | None,
                address: str | None, actors: int | None, num_cpus: int | None, fp: str, ext: str,
                started: float) -> Report:
    too_big = max_file_bytes(options.max_megapixels)
    results: list[Result] = []
    with Ledger(out_dir / LEDGER_NAME) as ledger:
        claimed = ledger.outputs()
        names: dict[str, tuple[str, str]] = {}
        stats: dict[str, tuple[int, int]] = {}
        done: dict[str, str] = {}
        todo: list[str] = []
        for path, rel, size, mtime_ns in listing:
            entry = ledger.get(rel)
            finished = is_finished(entry, fp, out_dir)
            if finished and entry is not None and (entry.size, entry.mtime_ns) == (size, mtime_ns):
                results.append(Result(rel=rel, status="skipped", output=entry.output))
                continue
            if size > too_big:  # not even read: a 1 TB sparse file would take the actor down
                error = str(file_too_large(Path(rel).name, size, options.max_megapixels))
                ledger.record(rel, sha256="", size=size, mtime_ns=mtime_ns, options=fp, status="failed", error=error)
                results.append(Result(rel=rel, status="failed", error=error))
                continue
            if finished and entry is not None:
                done[rel] = entry.sha256  # changed mtime: the actor compares the content hash
            out = output_name(rel, ext, entry, claimed)
            claimed[out] = rel
            names[path] = (rel, out)
            stats[rel] = (size, mtime_ns)
            todo.append(path)

        if todo:
            started_ray = not ray.is_initialized()
            if started_ray:
                env = {k: v for k, v in os.environ.items() if k in ("ALPHACUT_HOME", "PYTHONPATH")}
                ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                         log_to_driver=False, logging_level="ERROR",
                         runtime_env={"env_vars": env} if env else None)
            try:
                ctx = ray.data.DataContext.get_current()
                ctx.enable_progress_bars = sys.stderr.isatty()
                gpus = int(ray.cluster_resources().get("GPU", 0)) if device != "cpu" else 0
                pool = actors or max(1, gpus)
                size = batch_size or (8 if gpus else 1)
                ds = ray.data.read_binary_files(todo, include_paths=True, filesystem=fs)
                ds = ds.map_batches(
                    _Cutter,
                    fn_constructor_kwargs={"options": dataclasses.asdict(options), "model": model, "device": device,
                                           "threads": threads, "out_dir": str(out_dir.resolve()), "names": names,
                                           "done": done},
                    batch_size=size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=pool),
                    num_cpus=1, num_gpus=1 if gpus else None,
                )
                for row in ds.iter_rows():
                    rel = str(row["path"])
                    size_, mtime_ns = stats[rel]
                    if row["status"] == "skipped":
                        ledger.touch(rel, size=size_, mtime_ns=mtime_ns)
                        results.append(Result(rel=rel, status="skipped"))
                    elif row["status"] == "done":
                        ledger.record(rel, sha256=str(row["sha256"]), size=size_, mtime_ns=mtime_ns, options=fp,
                                      status="done", output=str(row["output"]),
                                      confidence=float(row["confidence"]),
                                      needs_review=bool(row["needs_review"]), seconds=float(row["seconds"]))
                        results.append(Result(rel=rel, status="done", output=str(row["output"])))
                    else:
                        ledger.record(rel, sha256=str(row["sha256"]), size=size_, mtime_ns=mtime_ns, options=fp,
                                      status="failed", error=str(row["error"]))
                        results.append(Result(rel=rel, status="failed", error=str(row["error"])))
            finally:
                if started_ray:
                    ray.shutdown()

        wanted = {rel for _, rel, _, _ in listing}
        report = Report(input_dir=input_uri, output_dir=str(out_dir), seconds=time.perf_counter() - started,
                        entries=[e for e in ledger.entries() if e.path in wanted])
        report.count(results)
    return report
