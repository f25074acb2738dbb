"""Unattended work at scale: cut out a whole folder tree into a mirrored output folder.

A pipeline, not a loop: :func:`alphacut.pipeline.stream` decodes the next inputs in
threads while the model runs, full-resolution post-processing overlaps the next
model call, and encoding plus the atomic write happen in a writer thread. On a GPU
several images share one model call (``batch_size``); on a CPU one at a time is
fastest.

Every input is accounted for in the :class:`~alphacut.ledger.Ledger` in the output
folder, so a rerun (after a crash, a ``kill -9`` or new files) skips what is done
and retries what failed. Outputs are written with
:func:`~alphacut.fsutil.atomic_write`; the temporary files a killed run leaves are
removed by the next run. Inputs are only ever read. One run at a time works in an
output folder (:class:`~alphacut.fsutil.FolderLock`): a second one refuses at once.

Whatever one input makes fail (a damaged file can make a decoder raise anything, a
huge one ``MemoryError``, a file where a folder should be ``NotADirectoryError``)
becomes that input's ``failed`` row, through :func:`load_input` and
:func:`write_output`, the per-input boundary ``cut`` uses too; the run carries on.
Only what stops every input (the ledger cannot be written: a full disk) stops it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import imageio, models, variants
from .errors import AlphacutError, OutputError, input_failure
from .fsutil import FolderLock, atomic_write, clean_partials
from .imageio import DecodedImage
from .ledger import LEDGER_NAME, Entry, Ledger, fingerprint, sha256_bytes
from .options import Options
from .providers import resolve_providers, usable_cores
from .session import Session

__all__ = [
    "IMAGE_SUFFIXES",
    "REPORT_JSON",
    "REPORT_CSV",
    "Batch",
    "Job",
    "Result",
    "Report",
    "run_batch",
    "scan",
    "clean_partials",
    "load_input",
    "write_output",
    "batched_model_path",
    "default_batch_size",
    "output_name",
    "fp32_model_path",
    "cpu_layout",
    "open_session",
]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".avif"}
)
REPORT_JSON = "alphacut-report.json"
REPORT_CSV = "alphacut-report.csv"
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
GPU_BATCH_SIZE = 8
_FOLDER = "\0folder"  # claims an output name that an input folder's mirror needs


@dataclass
class Job:
    """One input to cut out."""

    rel: str  # relative to the input folder, '/' separated: the ledger key
    source: Path
    output_rel: str  # relative to the output folder
    size: int
    mtime_ns: int
    sha256: str | None = None  # set when the bytes are read


@dataclass
class Result:
    """What happened to one input in this run."""

    rel: str
    status: str  # done, failed or skipped (done by an earlier run)
    output: str | None = None
    error: str | None = None
    confidence: float | None = None
    needs_review: bool | None = None
    seconds: float | None = None


@dataclass
class Report:
    """The state of every input of the input folder after a run."""

    input_dir: str
    output_dir: str
    done: int = 0  # cut out by this run
    skipped: int = 0  # done by an earlier run, unchanged
    failed: int = 0
    ignored: list[str] = field(default_factory=list)  # files without an image suffix
    entries: list[Entry] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.entries)

    def count(self, results: Iterable[Result]) -> None:
        """Add this run's results to the counts."""
        for r in results:
            if r.status == "done":
                self.done += 1
            elif r.status == "skipped":
                self.skipped += 1
            else:
                self.failed += 1

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [{"input": e.path, "error": e.error} for e in self.entries if e.status == "failed"]

    @property
    def review(self) -> list[dict[str, Any]]:
        return [
            {"input": e.path, "output": e.output, "confidence": e.confidence}
            for e in self.entries
            if e.status == "done" and e.needs_review
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_dir": self.input_dir,
            "output_dir": self.output_dir,
            "counts": {
                "inputs": self.total,
                "ok": sum(e.status == "done" for e in self.entries),
                "failed": len(self.failures),
                "needs_review": len(self.review),
                "this_run": {"done": self.done, "skipped": self.skipped, "failed": self.failed},
                "ignored": len(self.ignored),
            },
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.done / self.seconds, 3) if self.seconds and self.done else None,
            "failures": self.failures,
            "needs_review": self.review,
            "ignored": self.ignored,
        }

    def csv_text(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["input", "status", "output", "sha256", "confidence", "needs_review", "error", "attempts"])
        for e in self.entries:
            writer.writerow([e.path, e.status, e.output or "", e.sha256, "" if e.confidence is None else e.confidence,
                             "" if e.needs_review is None else int(e.needs_review), e.error or "", e.attempts])
        return buf.getvalue()

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """Write the JSON and CSV reports into ``out_dir`` (atomically, replacing the last ones)."""
        as_json = Path(out_dir) / REPORT_JSON
        as_csv = Path(out_dir) / REPORT_CSV
        atomic_write(as_json, (json.dumps(self.as_dict(), indent=2) + "\n").encode(), overwrite=True)
        atomic_write(as_csv, self.csv_text().encode(), overwrite=True)
        return as_json, as_csv


def scan(in_dir: Path, out_dir: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Image files under ``in_dir`` (recursive, sorted) and the other files, ignored.

    Hidden files and folders are skipped, and so is ``out_dir`` when it lies inside.
    """
    in_dir = Path(in_dir)
    out_resolved = Path(out_dir).resolve() if out_dir is not None else None
    images: list[Path] = []
    ignored: list[Path] = []
    for root, dirs, files in os.walk(in_dir):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and (out_resolved is None or (root_path / d).resolve() != out_resolved)
        )
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = root_path / name
            if not path.is_file():
                continue
            (images if path.suffix.lower() in IMAGE_SUFFIXES else ignored).append(path)
    return sorted(images), sorted(ignored)


def load_input(read: Callable[[], bytes], options: Options) -> DecodedImage:
    """Read and decode one input: the per-input boundary of every run over many images.

    Whatever ``read`` or the decoders raise (bar ``KeyboardInterrupt`` and
    ``SystemExit``) comes out as the :class:`AlphacutError` the input's record gets.
    """
    try:
        return imageio.decode(read(), max_megapixels=options.max_megapixels, color=options.color)
    except Exception as exc:
        raise input_failure(exc, doing="reading") from exc


def write_output(path: Path, cutout: Any, options: Options, *, overwrite: bool) -> None:
    """Encode ``cutout`` as ``options`` say and write it atomically to ``path``: the other
    side of the per-input boundary (see :func:`load_input`)."""
    try:
        atomic_write(path, cutout.encode(options), overwrite=overwrite)
    except Exception as exc:
        raise input_failure(exc, doing="writing") from exc


def default_batch_size(session: Session) -> int:
    """Images per model call: several on a GPU (when the model allows it), one on a CPU."""
    return GPU_BATCH_SIZE if session.on_gpu and _accepts_batches(session) else 1


def _accepts_batches(session: Session) -> bool:
    dim = session.batch_dimension
    return not isinstance(dim, int) or dim != 1


def batched_model_path(spec: models.ModelSpec, source: Path | None = None) -> Path:
    """A copy of the model whose batch dimension is free (see :mod:`alphacut.variants`)."""
    return variants.derived_path(spec, ["main_output", "batched"], source)


def fp32_model_path(spec: models.ModelSpec, source: Path | None = None) -> Path:
    """The copy of the model the CPU runs fastest: its main output alone, computing in
    float32 when its weights are float16 (about 20 % less CPU time per ISNet call on x86).
    The weights stay float16 on disk, read through casts that onnxruntime folds when the
    session is created, so the copy is no larger than the original (recipe ``f32_compute``,
    the same as the browser's; see :mod:`alphacut.variants`)."""
    return variants.derived_path(spec, ["main_output", "f32_compute"], source)


def cpu_layout(threads: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """(model calls at once, threads each) for a CPU: parallel single-ish-threaded calls
    scale better than one call over every core; at most 4 calls, to bound memory."""
    if cores is None:
        cores = usable_cores()
    if threads is not None:
        return max(1, cores // threads), threads
    workers = max(1, min(4, cores))
    return workers, max(1, cores // workers)


def open_session(model: str = "medium", *, device: str = "auto", threads: int | None = None,
                 batch_size: int | None = None, parallel: bool = True) -> tuple[Session, int]:
    """A session laid out for the work at hand, and how many model calls to run at once.

    GPU: the model copy with a free batch dimension (:func:`batched_model_path`), one
    call at a time. CPU: the float32 copy (:func:`fp32_model_path`) and, for many
    images (``parallel``), :func:`cpu_layout`'s parallel calls; for one image, one call
    over ``threads`` (default: every core), which finishes it soonest.
    """
    spec = models.get_spec(model)
    first = resolve_providers(device)[0]
    on_gpu = (first if isinstance(first, str) else first[0]) != "CPUExecutionProvider"
    if on_gpu:
        path = batched_model_path(spec) if (batch_size or GPU_BATCH_SIZE) > 1 else None
        return Session(spec, device=device, threads=threads, model_path=path), 1
    workers, per_call = cpu_layout(threads) if parallel else (1, threads)
    return Session(spec, device=device, threads=per_call, model_path=fp32_model_path(spec)), workers


class Batch:
    """Cut out ``in_dir`` into ``out_dir``, remembering everything in the ledger.

    ``plan`` decides what to do (and what is already done), ``run`` does it and
    yields one :class:`Result` per job as soon as its output is on disk.
    """

    def __init__(
        self,
        in_dir: Path,
        out_dir: Path,
        *,
        options: Options,
        session: Session,
        batch_size: int | None = None,
        prefetch: int = 2,
        post_workers: int = 1,
        model_workers: int = 1,
        writers: int = 1,
    ) -> None:
        self.in_dir = Path(in_dir)
        self.out_dir = Path(out_dir)
        if not self.in_dir.is_dir():
            raise AlphacutError(f"{self.in_dir} is not a folder: batch takes an input folder and an output folder")
        in_res, out_res = self.in_dir.resolve(), self.out_dir.resolve()
        if in_res == out_res or in_res.is_relative_to(out_res):
            raise AlphacutError(
                f"the output folder {self.out_dir} contains the input folder {self.in_dir}: choose an output"
                " folder outside it, so inputs are never overwritten"
            )
        self.options = options
        self.session = session
        self.batch_size = batch_size or default_batch_size(session)
        self.prefetch = max(prefetch, self.batch_size)
        self.post_workers = post_workers
        self.model_workers = model_workers
        self.writers = writers
        self.fingerprint = fingerprint(options, session.spec.sha256)
        self.lock = FolderLock(self.out_dir).acquire()  # before anything is read or cleaned in OUT
        try:
            self.ledger = Ledger(self.out_dir / LEDGER_NAME)
        except BaseException:
            self.lock.release()
            raise
        self.ext = EXTENSIONS[options.format]

    def close(self) -> None:
        try:
            self.ledger.close()
        finally:
            self.lock.release()

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rel(self, path: Path) -> str:
        return Path(path).relative_to(self.in_dir).as_posix()

    def plan(self, paths: Iterable[Path]) -> tuple[list[Job], list[Result]]:
        """Jobs to run, and the inputs skipped because an earlier run did them."""
        claimed = self.ledger.outputs()  # output -> input
        paths = list(paths)
        for path in paths:  # an input folder x.png/ mirrored in OUT: no output file may take its name
            for folder in Path(self.rel(path)).parents:
                if str(folder) != ".":
                    claimed.setdefault(folder.as_posix(), _FOLDER)
        jobs: list[Job] = []
        skipped: list[Result] = []
        for path in paths:
            rel = self.rel(path)
            try:
                st = path.stat()
            except OSError:
                continue  # vanished since the scan: not an input any more
            entry = self.ledger.get(rel)
            if entry is not None and self._is_done(entry, path, st):
                skipped.append(Result(rel=rel, status="skipped", output=entry.output,
                                      confidence=entry.confidence, needs_review=entry.needs_review))
                continue
            output = self._output_name(rel, entry, claimed)
            claimed[output] = rel
            jobs.append(Job(rel=rel, source=path, output_rel=output, size=st.st_size, mtime_ns=st.st_mtime_ns))
        return jobs, skipped

    def _is_done(self, entry: Entry, path: Path, st: os.stat_result) -> bool:
        if entry.status != "done" or entry.options != self.fingerprint or not entry.output:
            return False
        if not (self.out_dir / entry.output).is_file():
            return False
        if (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return True
        # Touched or copied: the content hash decides.
        try:
            same = sha256_bytes(path.read_bytes()) == entry.sha256
        except OSError:
            return False
        if same:
            self.ledger.touch(entry.path, size=st.st_size, mtime_ns=st.st_mtime_ns)
        return same

    def _output_name(self, rel: str, entry: Entry | None, claimed: dict[str, str]) -> str:
        return output_name(rel, self.ext, entry, claimed)

    def run(self, jobs: Sequence[Job]) -> Iterator[Result]:
        """Cut out ``jobs``; yields each input's :class:`Result` once its ledger row is written."""
        from .pipeline import stream

        def read_bytes(job: Job) -> bytes:
            data = imageio.read_file(job.source, max_megapixels=self.options.max_megapixels)
            job.sha256 = sha256_bytes(data)
            return data

        def read(job: Job) -> DecodedImage:
            return load_input(lambda: read_bytes(job), self.options)

        def save(job: Job, cutout: Any, seconds: float) -> Result:
            try:
                write_output(self.out_dir / job.output_rel, cutout, self.options, overwrite=True)
            except AlphacutError as exc:
                return self._failed(job, exc, seconds)
            self.ledger.record(
                job.rel, sha256=job.sha256 or "", size=job.size, mtime_ns=job.mtime_ns, options=self.fingerprint,
                status="done", output=job.output_rel, confidence=cutout.confidence.score,
                needs_review=cutout.confidence.needs_review, warnings=cutout.warnings, seconds=seconds,
            )
            return Result(rel=job.rel, status="done", output=job.output_rel, confidence=cutout.confidence.score,
                          needs_review=cutout.confidence.needs_review, seconds=round(seconds, 3))

        pending: list[Future[Result]] = []
        last = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="alphacut-write") as writer:
            for job, result in stream(jobs, read=read, options=self.options, session=self.session,
                                      prefetch=self.prefetch, batch_size=self.batch_size,
                                      post_workers=self.post_workers, model_workers=self.model_workers):
                now = time.perf_counter()
                seconds, last = now - last, now
                if isinstance(result, AlphacutError):
                    pending.append(_resolved(self._failed(job, result, seconds)))
                else:
                    pending.append(writer.submit(save, job, result, seconds))
                while pending and pending[0].done():
                    yield pending.pop(0).result()
                # Bound memory: encoded-but-unwritten cutouts are full-resolution arrays.
                while len(pending) > 2 * self.writers + 1:
                    yield pending.pop(0).result()
            for fut in pending:
                yield fut.result()

    def _failed(self, job: Job, exc: AlphacutError, seconds: float) -> Result:
        # No hash when the read itself failed: reading again (a 1 TB file) would fail the same way.
        self.ledger.record(job.rel, sha256=job.sha256 or "", size=job.size, mtime_ns=job.mtime_ns, options=self.fingerprint,
                           status="failed", error=str(exc), seconds=seconds)
        return Result(rel=job.rel, status="failed", error=str(exc), seconds=round(seconds, 3))

    def report(self, inputs: Iterable[Path], ignored: Iterable[Path], results: Iterable[Result],
               seconds: float) -> Report:
        """The report over ``inputs`` (each exactly once), counting this run's ``results``."""
        wanted = {self.rel(p) for p in inputs}
        entries = [e for e in self.ledger.entries() if e.path in wanted]
        report = Report(input_dir=str(self.in_dir), output_dir=str(self.out_dir), seconds=seconds,
                        entries=entries, ignored=[self.rel(p) for p in ignored])
        report.count(results)
        return report


def output_name(rel: str, ext: str, entry: Entry | None, claimed: dict[str, str]) -> str:
    """The output of input ``rel`` (relative to OUT): the same folders and stem, the format's extension.

    An input keeps the output the ledger gave it. Names ``claimed`` by another input
    (``a.jpg`` and ``a.png`` side by side) or by an input folder mirrored in OUT (``x.jpg``
    beside a folder ``x.png/``) get the source's extension added: ``a-png.png``, ``x-jpg.png``.
    """
    if entry is not None and entry.output and entry.output.endswith("." + ext):
        return entry.output
    p = Path(rel)
    parent = "" if str(p.parent) == "." else p.parent.as_posix() + "/"
    suffix = p.suffix.lstrip(".").lower()
    candidates = [f"{p.stem}.{ext}", f"{p.stem}-{suffix}.{ext}"]
    candidates += [f"{p.stem}-{suffix}-{n}.{ext}" for n in range(2, 10000)]
    for name in candidates:
        out = parent + name
        if claimed.get(out, rel) == rel:
            return out
    raise OutputError(f"no free output name for {rel}")  # pragma: no cover


def _resolved(result: Result) -> Future[Result]:
    fut: Future[Result] = Future()
    fut.set_result(result)
    return fut


def run_batch(
    in_dir: Path,
    out_dir: Path,
    *,
    options: Options,
    session: Session,
    batch_size: int | None = None,
    model_workers: int = 1,
    on_plan: Callable[[int, int], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> Report:
    """Cut out every image under ``in_dir`` into ``out_dir`` (mirrored); write and return the report.

    ``model_workers`` model calls run at once (see :func:`open_session`). ``on_plan(todo, skipped)`` is called once the work is known, ``on_result`` after each input.
    """
    started = time.perf_counter()
    with Batch(in_dir, out_dir, options=options, session=session, batch_size=batch_size,
               model_workers=model_workers) as batch:
        clean_partials(batch.out_dir)
        images, ignored = scan(batch.in_dir, batch.out_dir)
        jobs, results = batch.plan(images)
        if on_plan is not None:
            on_plan(len(jobs), len(results))
        for result in batch.run(jobs):
            results.append(result)
            if on_result is not None:
                on_result(result)
        report = batch.report(images, ignored, results, time.perf_counter() - started)
        report.write(batch.out_dir)
    return report
