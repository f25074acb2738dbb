"""A folder cut out into a mirrored output folder, remembered in a ledger.

:class:`FolderJob` is what ``alphacut batch`` and ``alphacut watch`` run: ``plan``
decides what to do (the skip/resume rule, :func:`is_finished`) and names the outputs
(:func:`output_name`), ``run`` cuts the jobs out and writes them
(:func:`~alphacut.jobs.run.cut_and_write`), ``report`` sums up the ledger. Every input
is accounted for in the :class:`~alphacut.ledger.Ledger` in the output folder, so a
rerun (after a crash, a ``kill -9`` or new files) skips what is done and retries what
failed. Outputs are written with :func:`~alphacut.fsutil.atomic_write`; inputs are only
ever read. One run at a time works in an output folder
(:class:`~alphacut.fsutil.FolderLock`): a second one refuses at once.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

from .. import imageio
from ..errors import AlphacutError, OutputError
from ..fsutil import FolderLock, atomic_write
from ..imageio import DecodedImage
from ..ledger import LEDGER_NAME, Entry, Ledger, fingerprint, sha256_bytes
from ..options import Options
from ..pipeline import Cutout
from ..session import ModelSession, default_batch_size
from .inputs import EXTENSIONS, check_folders, output_file_name
from .run import cut_and_write, load_input, write_output

__all__ = ["REPORT_CSV", "REPORT_JSON", "FolderJob", "Job", "Report", "Result", "Status", "is_finished",
           "output_name"]

REPORT_JSON = "alphacut-report.json"
REPORT_CSV = "alphacut-report.csv"
# What happened to an input in a run: cut out now, cut out by an earlier run, or failed.
Status = Literal["done", "failed", "skipped"]
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
    status: Status
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


class FolderJob:
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
        session: ModelSession,
        batch_size: int | None = None,
        prefetch: int = 2,
        post_workers: int = 1,
        model_workers: int = 1,
        writers: int = 1,
    ) -> None:
        self.in_dir = Path(in_dir)
        self.out_dir = Path(out_dir)
        check_folders(self.in_dir, self.out_dir)
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

    def __enter__(self) -> Self:
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
            output = output_name(rel, self.ext, entry, claimed)
            claimed[output] = rel
            jobs.append(Job(rel=rel, source=path, output_rel=output, size=st.st_size, mtime_ns=st.st_mtime_ns))
        return jobs, skipped

    def _is_done(self, entry: Entry, path: Path, st: os.stat_result) -> bool:
        if not is_finished(entry, self.fingerprint, self.out_dir):
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

    def run(self, jobs: Sequence[Job]) -> Iterator[Result]:
        """Cut out ``jobs``; yields each input's :class:`Result` once its ledger row is written."""

        def read_bytes(job: Job) -> bytes:
            data = imageio.read_file(job.source, max_megapixels=self.options.max_megapixels)
            job.sha256 = sha256_bytes(data)
            return data

        def read(job: Job) -> DecodedImage:
            return load_input(lambda: read_bytes(job), self.options)

        def save(job: Job, cutout: Cutout, seconds: float) -> Result:
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

        yield from cut_and_write(jobs, read=read, save=save, failed=self._failed, options=self.options,
                                 session=self.session, prefetch=self.prefetch, batch_size=self.batch_size,
                                 post_workers=self.post_workers, model_workers=self.model_workers,
                                 writers=self.writers)

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


def is_finished(entry: Entry | None, options_fingerprint: str, out_dir: Path) -> bool:
    """The skip rule's first half: the ledger says the input is done with these options
    and model, and its output is still there. The second half is that the input has not
    changed: same size and mtime, or else the same content hash."""
    return (entry is not None and entry.status == "done" and entry.options == options_fingerprint
            and bool(entry.output) and (out_dir / (entry.output or "")).is_file())


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
    candidates = [output_file_name(p, ext)]
    candidates += [output_file_name(p, ext, keep_suffix=True, number=n) for n in range(1, 10000)]
    for name in candidates:
        out = parent + name
        if claimed.get(out, rel) == rel:
            return out
    raise OutputError(f"no free output name for {rel}")  # pragma: no cover
