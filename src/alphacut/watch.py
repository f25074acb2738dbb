"""Watch a folder: cut out each image once it has been completely written.

Polling, on purpose: it works the same on every OS, on network shares and in
containers. A file is taken when its size and modification time have not changed
across ``settle`` consecutive polls (a copy in progress keeps changing both). The
same :class:`~alphacut.jobs.FolderJob` and ledger as ``alphacut batch`` do the work,
so stopping and starting again (or running a batch over the same folders) never
does an input twice. A file replaced later with new content is cut out again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from .fsutil import clean_partials
from .jobs import FolderJob, Report, Result, scan
from .options import Options
from .session import ModelSession

__all__ = ["Watcher", "watch"]

_Stat = tuple[int, int]  # (size, mtime_ns)


class Watcher:
    """Polls ``in_dir`` every ``interval`` seconds; see :func:`watch`."""

    def __init__(
        self,
        in_dir: Path,
        out_dir: Path,
        *,
        options: Options,
        session: ModelSession,
        interval: float = 1.0,
        settle: int = 2,
        batch_size: int | None = None,
    ) -> None:
        if interval <= 0 or settle < 1:
            raise ValueError(f"interval must be > 0 and settle >= 1, got {interval!r} and {settle!r}")
        self.job = FolderJob(in_dir, out_dir, options=options, session=session, batch_size=batch_size)
        self.interval = interval
        self.settle = settle
        self._seen: dict[Path, tuple[_Stat, int]] = {}  # path -> (last stat, polls unchanged)
        self._handled: dict[Path, _Stat] = {}  # path -> the stat it was handled at
        self.results: list[Result] = []
        clean_partials(self.job.out_dir)

    def close(self) -> None:
        self.job.close()

    def ready(self) -> list[Path]:
        """One poll: the files whose size and mtime held still long enough and are not handled yet."""
        images, _ = scan(self.job.in_dir, self.job.out_dir)
        present = set(images)
        for gone in [p for p in self._seen if p not in present]:
            del self._seen[gone]
        out: list[Path] = []
        for path in images:
            try:
                st = path.stat()
            except OSError:
                continue
            stat = (st.st_size, st.st_mtime_ns)
            if self._handled.get(path) == stat:
                continue
            last, count = self._seen.get(path, (None, 0))
            count = count + 1 if last == stat else 1
            self._seen[path] = (stat, count)
            if count >= self.settle:
                out.append(path)
        return out

    def process(self, paths: list[Path], stop: threading.Event | None = None,
                on_result: Callable[[Result], None] | None = None) -> list[Result]:
        jobs, results = self.job.plan(paths)
        for path in paths:
            try:
                st = path.stat()
                self._handled[path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                pass
        done = {r.rel for r in results}
        for result in self.job.run(jobs):
            results.append(result)
            done.add(result.rel)
            if on_result is not None:
                on_result(result)
            if stop is not None and stop.is_set():
                break  # the rest stays unhandled: the next start does it
        for path in paths:
            if self.job.rel(path) not in done:
                self._handled.pop(path, None)
        self.results.extend(results)
        return results

    def report(self, seconds: float) -> Report:
        images, ignored = scan(self.job.in_dir, self.job.out_dir)
        report = self.job.report(images, ignored, self.results, seconds)
        report.write(self.job.out_dir)
        return report


def watch(
    in_dir: Path,
    out_dir: Path,
    *,
    options: Options,
    session: ModelSession,
    interval: float = 1.0,
    settle: int = 2,
    stop: threading.Event | None = None,
    once: bool = False,
    timeout: float | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> Report:
    """Cut out images arriving in ``in_dir`` into ``out_dir`` until ``stop`` is set.

    ``once`` handles what is (completely) there now and returns; ``timeout`` stops
    after that many seconds. The report is rewritten after every change.
    """
    stop = stop or threading.Event()
    started = time.monotonic()
    watcher = Watcher(in_dir, out_dir, options=options, session=session, interval=interval, settle=settle)
    try:
        polls = 0
        while not stop.is_set():
            ready = watcher.ready()
            polls += 1
            if ready:
                watcher.process(ready, stop, on_result)
                watcher.report(time.monotonic() - started)
            if once and polls >= settle:
                break
            if timeout is not None and time.monotonic() - started >= timeout:
                break
            stop.wait(interval)
        return watcher.report(time.monotonic() - started)
    finally:
        watcher.close()
