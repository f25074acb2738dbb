"""Unattended work at scale: cut out a whole folder tree into a mirrored output folder.

A pipeline, not a loop: :func:`alphacut.pipeline.stream` decodes the next inputs in
threads while the model runs, full-resolution post-processing overlaps the next
model call, and encoding plus the atomic write happen in a writer thread. On a GPU
several images share one model call (``batch_size``); on a CPU one at a time is
fastest, with several calls at once (:meth:`~alphacut.session.Session.for_work`).

The work itself is the jobs layer's :class:`~alphacut.jobs.FolderJob`: the ledger in
the output folder, the skip/resume rule, the per-input boundary (one input's failure,
whatever raised it, is its ``failed`` row and the run carries on) and the lock that
keeps a second run out of the output folder. Only what stops every input (the ledger
cannot be written: a full disk) stops the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .fsutil import clean_partials
from .jobs import FolderJob, Report, Result, scan
from .options import Options
from .session import ModelSession

__all__ = ["run_batch"]


def run_batch(
    in_dir: Path,
    out_dir: Path,
    *,
    options: Options,
    session: ModelSession,
    batch_size: int | None = None,
    model_workers: int = 1,
    on_plan: Callable[[int, int], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> Report:
    """Cut out every image under ``in_dir`` into ``out_dir`` (mirrored); write and return the report.

    ``model_workers`` model calls run at once (see :meth:`~alphacut.session.Session.for_work`).
    ``on_plan(todo, skipped)`` is called once the work is known, ``on_result`` after each input.
    """
    started = time.perf_counter()
    with FolderJob(in_dir, out_dir, options=options, session=session, batch_size=batch_size,
                   model_workers=model_workers) as job:
        clean_partials(job.out_dir)
        images, ignored = scan(job.in_dir, job.out_dir)
        jobs, results = job.plan(images)
        if on_plan is not None:
            on_plan(len(jobs), len(results))
        for result in job.run(jobs):
            results.append(result)
            if on_result is not None:
                on_result(result)
        report = job.report(images, ignored, results, time.perf_counter() - started)
        report.write(job.out_dir)
    return report
