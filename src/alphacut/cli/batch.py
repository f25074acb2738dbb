"""``alphacut batch`` and ``alphacut watch``: a folder into a mirrored output folder, with a ledger."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ..errors import AlphacutError
from ..jobs import REPORT_JSON, Report, Result
from . import common
from .common import Engine, engine_options

__all__ = ["batch", "watch"]


def _rate_column() -> Any:
    """Images per second, for rich's progress bar (built lazily: rich is only needed on a TTY)."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("-- img/s" if speed is None else f"{speed:.2f} img/s", style="progress.data.speed")

    return Rate()


def _progress() -> Any:
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    _rate_column(), TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))


def _summary(report: Report) -> None:
    d = report.as_dict()
    c = d["counts"]
    run = c["this_run"]
    click.echo(
        f"{c['inputs']} inputs: {c['ok']} ok, {c['failed']} failed, {c['needs_review']} to check by eye"
        f" (this run: {run['done']} done, {run['skipped']} already done, {run['failed']} failed"
        + (f", {d['images_per_second']:.2f} img/s" if d["images_per_second"] else "") + ")",
        err=True,
    )
    for f in d["failures"]:
        click.echo(f"alphacut: failed: {f['input']}: {f['error']}", err=True)
    click.echo(f"report: {Path(report.output_dir) / REPORT_JSON} (and .csv)", err=True)


@click.command()
@click.argument("input_dir", metavar="IN")
@click.argument("output_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@engine_options
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="images per model call (default: 8 on a GPU, 1 on a CPU)")
@click.option("--engine", "engine_name", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: run on a Ray cluster (pip install 'alphacut[ray]'); IN may be s3://...")
@click.option("--address", default=None, help="Ray cluster address (default: start a local one)")
def batch(input_dir: str, output_dir: Path, engine: Engine, batch_size: int | None, engine_name: str,
          address: str | None) -> None:
    """Cut out every image under IN into OUT, mirroring the folders.

    A ledger in OUT remembers every input: run again to skip what is done and retry
    what failed (also after a crash). OUT gets alphacut-report.json and .csv with
    failures and cutouts to check by eye. Inputs are never modified.
    """
    from ..batch import run_batch

    options = engine.options()
    if engine_name == "ray":
        from ..ray_engine import run_ray

        try:
            report = run_ray(input_dir, output_dir, options=options, model=engine.model, device=engine.device,
                             threads=engine.threads, batch_size=batch_size, address=address)
        except AlphacutError as exc:
            raise common.fail(exc) from None
        _summary(report)
        sys.exit(1 if report.failures else 0)
    if not Path(input_dir).is_dir():
        raise click.BadParameter(f"{input_dir} is not a folder", param_hint="IN")
    session, model_workers = common.make_session(engine, parallel=True, batch_size=batch_size)
    progress = _progress()
    task: list[Any] = []

    def on_plan(todo: int, skipped: int) -> None:
        if progress is not None:
            progress.start()
            task.append(progress.add_task("cutting out", total=todo))
        elif skipped:
            click.echo(f"{skipped} already done, {todo} to do", err=True)

    def on_result(result: Result) -> None:
        if progress is not None and task:
            progress.advance(task[0])

    try:
        report = run_batch(Path(input_dir), output_dir, options=options, session=session, batch_size=batch_size,
                           model_workers=model_workers, on_plan=on_plan, on_result=on_result)
    except AlphacutError as exc:
        raise common.fail(exc) from None
    except KeyboardInterrupt:
        click.echo("alphacut: interrupted: run the same command again to carry on", err=True)
        sys.exit(130)
    finally:
        if progress is not None:
            progress.stop()
    _summary(report)
    sys.exit(1 if report.failures else 0)


@click.command()
@click.argument("input_dir", metavar="IN", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("output_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@engine_options
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="seconds between polls of IN")
@click.option("--settle", type=click.IntRange(min=1), default=2, show_default=True,
              help="polls a file's size and mtime must stay unchanged before it is taken")
@click.option("--once", is_flag=True, help="handle the files completely there now, then exit")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="stop after this many seconds")
def watch(input_dir: Path, output_dir: Path, engine: Engine, interval: float, settle: int, once: bool,
          timeout: float | None) -> None:
    """Cut out images as they arrive in IN, into OUT (same ledger as batch); Ctrl-C stops."""
    from ..watch import watch as run_watch

    options = engine.options()
    session, _ = common.make_session(engine)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        click.echo("alphacut: stopping after the current image (Ctrl-C again to stop now)", err=True)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_result(result: Result) -> None:
        if result.status == "failed":
            click.echo(f"alphacut: failed: {result.rel}: {result.error}", err=True)
        elif result.status == "done":
            review = " (check by eye)" if result.needs_review else ""
            click.echo(f"{result.rel} -> {result.output}{review}", err=True)

    click.echo(f"watching {input_dir} (Ctrl-C to stop)", err=True)
    try:
        report = run_watch(input_dir, output_dir, options=options, session=session, interval=interval,
                           settle=settle, stop=stop, once=once, timeout=timeout, on_result=on_result)
    except AlphacutError as exc:
        raise common.fail(exc) from None
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    _summary(report)
